"""Binarization: which layers get which Larq arguments."""
import pytest

import lqbench
import larq as lq
import numpy as np

from lqbench import Binarization, estimators


@pytest.mark.parametrize("weights", [True, False])
@pytest.mark.parametrize("activations", [True, False])
def test_roles_follow_the_four_combinations(weights, activations):
    b = Binarization(weights=weights, activations=activations)
    assert b.label == f"W{1 if weights else 32}A{1 if activations else 32}"
    first, hidden, last = (b.dense_kwargs(r) for r in ("first", "hidden", "last"))
    # first and last weights stay real by default; biases/normalisation are never quantized
    assert first["kernel_quantizer"] is None and last["kernel_quantizer"] is None
    assert (hidden["kernel_quantizer"] is not None) == weights
    assert (hidden["kernel_constraint"] is not None) == weights
    # the image is never binarized; every other weight layer's input is a hidden activation
    assert first["input_quantizer"] is None
    assert (hidden["input_quantizer"] is not None) == activations
    assert (last["input_quantizer"] is not None) == activations
    assert b.activation("relu") == ("linear" if activations else "relu")


def test_default_estimators_are_identity_ste_for_weights_and_clipped_ste_for_activations():
    b = Binarization()
    assert isinstance(b.kernel_quantizer("hidden"), estimators.SteIdentity)
    assert type(b.input_quantizer("hidden")) is lq.quantizers.SteSign
    assert isinstance(b.kernel_constraint("hidden"), lq.constraints.WeightClip)
    assert b.kernel_constraint("hidden").clip_value == 1.0


def test_keep_first_last_false_binarizes_every_weight_layer():
    b = Binarization(keep_first_last=False)
    assert b.kernel_quantizer("first") is not None and b.kernel_quantizer("last") is not None
    assert b.input_quantizer("first") is None


def test_conv_kwargs_pad_with_one_for_binary_inputs():
    assert Binarization().conv_kwargs("hidden")["pad_values"] == 1.0
    assert Binarization().conv_kwargs("first")["pad_values"] == 0.0
    assert Binarization(activations=False).conv_kwargs("hidden")["pad_values"] == 0.0
    depthwise = Binarization().depthwise_kwargs("hidden")
    assert set(depthwise) == {"input_quantizer", "depthwise_quantizer", "depthwise_constraint", "pad_values"}


def test_estimator_choice_and_kwargs_reach_the_quantizers():
    b = Binarization(activation_estimator="tanh", activation_estimator_kwargs={"beta": 2.0},
                     weight_estimator="approx_sign")
    assert isinstance(b.input_quantizer("hidden"), estimators.TanhSign)
    assert b.input_quantizer("hidden").beta == 2.0
    assert isinstance(b.kernel_quantizer("hidden"), lq.quantizers.ApproxSign)
    assert b.estimator_names() == {"tanh", "approx_sign"}


def test_full_precision_has_no_quantizer_anywhere():
    b = Binarization.full_precision()
    assert b.is_full_precision and b.label == "W32A32"
    for role in ("first", "hidden", "last"):
        assert all(v is None for k, v in b.dense_kwargs(role).items())


def test_dict_round_trip_and_errors():
    b = Binarization(weights=False, activation_estimator="ede")
    assert Binarization.from_dict(b.to_dict()) == b
    with pytest.raises(ValueError, match="unknown estimator 'nope'"):
        Binarization(activation_estimator="nope")
    with pytest.raises(ValueError, match="unknown field.*colour"):
        Binarization.from_dict({"colour": 1})
    with pytest.raises(ValueError, match="rsign"):
        Binarization(weight_estimator="rsign")
    with pytest.raises(ValueError, match="unknown layer role 'middle'"):
        b.dense_kwargs("middle")


def test_inputs_activations_puts_the_sign_in_place_of_activation_functions():
    """Issue 14 item 1: seed 000's replace_activations_to_sign semantics, next to Larq's."""
    all_inputs = Binarization()
    assert all_inputs.inputs == "all"
    assert all_inputs.dense_kwargs("hidden")["input_quantizer"] is not None
    assert all_inputs.activation("relu") == "linear"
    b = Binarization(inputs="activations")
    for role in ("first", "hidden", "last"):
        assert b.dense_kwargs(role)["input_quantizer"] is None
        assert b.conv_kwargs(role)["pad_values"] == 0.0  # no input quantizer: PyTorch's zero padding
    sign = b.activation("relu", name="block_relu_sign")
    assert type(sign) is lq.quantizers.SteSign and sign.name == "block_relu_sign" and sign.precision == 1
    assert b.activation(None) == "linear"
    assert Binarization(activations=False, inputs="activations").activation("relu") == "relu"
    x = np.array([[-2.0, -0.5, 0.5, 2.0]], dtype="float32")
    np.testing.assert_array_equal(sign(x).numpy(), [[-1.0, -1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="Binarization.inputs: unknown value 'some'; allowed: all, activations"):
        Binarization(inputs="some")
    assert Binarization.from_dict(b.to_dict()) == b


def test_pad_values_zero_option_for_replication_runs():
    """Issue 14 item 15: binary-input convolutions pad with +1 (LCE) or 0 (PyTorch references)."""
    assert Binarization(pad_values=0.0).conv_kwargs("hidden")["pad_values"] == 0.0
    assert Binarization(pad_values=0).depthwise_kwargs("hidden")["pad_values"] == 0.0
    assert Binarization(pad_values=1.0).conv_kwargs("hidden")["pad_values"] == 1.0
    assert Binarization(pad_values=0.0).conv_kwargs("first")["pad_values"] == 0.0
    with pytest.raises(ValueError, match="Binarization.pad_values: 0.5 is not allowed; allowed: 0.0, 1.0"):
        Binarization(pad_values=0.5)


@pytest.mark.parametrize("estimator", ["ste", "ste_clipped", "approx_sign", "tanh", "cosh2", "ede"])
def test_sign_at_zero_minus_one_is_the_authors_sign_with_the_same_gradient(estimator):
    """Paper 000's code binarizes with x > 0 ? 1 : -1; Larq's sign is +1 at 0. Only exact zeros
    change, and the pseudo-gradient stays the estimator's (there too)."""
    import tensorflow as tf

    x = tf.constant([-2.0, -0.5, 0.0, 0.5, 2.0])
    authors = Binarization(weight_estimator=estimator, activation_estimator=estimator, inputs="activations",
                           sign_at_zero=-1.0)
    larq = Binarization(weight_estimator=estimator, activation_estimator=estimator, inputs="activations")
    for make in (lambda b: b.kernel_quantizer("hidden"), lambda b: b.activation("relu", name="s"),
                 lambda b: Binarization(**{**b.to_dict(), "inputs": "all"}).input_quantizer("hidden")):
        outputs, grads = [], []
        for b in (authors, larq):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = make(b)(x)
            outputs.append(y.numpy())
            grads.append(tape.gradient(y, x).numpy())
        np.testing.assert_array_equal(outputs[0], [-1, -1, -1, 1, 1])
        np.testing.assert_array_equal(outputs[1], [-1, -1, 1, 1, 1])
        np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)
        assert np.all(grads[0][1:4] > 0)
    assert isinstance(authors.kernel_quantizer("hidden"), estimators.SignAtZero)
    assert authors.kernel_quantizer("hidden").precision == 1


def test_sign_at_zero_serialises_and_rejects_bad_values():
    import tensorflow as tf

    b = Binarization(inputs="activations", sign_at_zero=-1)
    assert b.sign_at_zero == -1.0 and Binarization.from_dict(b.to_dict()) == b
    inputs = tf.keras.Input((4,))
    x = lq.layers.QuantDense(3, kernel_quantizer=b.kernel_quantizer("hidden"), name="dense")(inputs)
    model = tf.keras.Model(inputs, b.activation("relu", name="sign")(x))
    clone = tf.keras.models.model_from_json(model.to_json())
    sign = clone.get_layer("sign")
    assert isinstance(sign, estimators.SignAtZero) and sign.value == -1.0
    assert isinstance(sign.quantizer, lq.quantizers.SteSign)
    assert sign(tf.zeros((1, 2))).numpy().tolist() == [[-1.0, -1.0]]
    with pytest.raises(ValueError, match=r"Binarization.sign_at_zero: 0 is not allowed; allowed: 1.0, -1.0"):
        Binarization(sign_at_zero=0)
    for field in ("activation_estimator", "weight_estimator"):
        with pytest.raises(ValueError, match=f"sign_at_zero: -1.0 is not supported with {field} 'gumbel'"):
            Binarization(sign_at_zero=-1.0, **{field: "gumbel"})
    with pytest.raises(ValueError, match="sign_at_zero: -1.0 is not supported with activation_estimator 'rsign'"):
        Binarization(sign_at_zero=-1.0, activation_estimator="rsign")


def test_sign_at_zero_is_a_spec_field_that_keeps_earlier_keys():
    from lqbench.spec import ExperimentSpec, SpecError

    spec = ExperimentSpec(epochs=1)
    assert spec.binarization.sign_at_zero == 1.0
    assert spec.key() == "517fd22dc065"  # the key before the field existed
    authors = spec.with_values({"binarization.sign_at_zero": -1.0})
    assert authors.binarization.sign_at_zero == -1.0 and authors.key() != spec.key()
    with pytest.raises(SpecError, match="sign_at_zero"):
        spec.with_values({"binarization.sign_at_zero": 0.5})
