"""Sign gradient estimators: forward and backward against their formulas (numpy)."""
import numpy as np
import pytest

import lqbench
import larq as lq
import tensorflow as tf

from lqbench import estimators

X = np.concatenate([np.linspace(-3, 3, 61), [0.0, -1e-7, 1e-7, 1.0, -1.0]]).astype(np.float32)


def _forward_backward(quantizer, x=X, training=None):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = quantizer(x) if training is None else quantizer(x, training=training)
    return y.numpy(), tape.gradient(y, x).numpy()


def _sech2(z):
    return 1.0 / np.cosh(z) ** 2


EXPECTED_GRADIENTS = {
    "ste": lambda x: np.ones_like(x),
    "ste_clipped": lambda x: (np.abs(x) <= 1).astype(np.float32),
    "approx_sign": lambda x: np.where(np.abs(x) <= 1, 2 - 2 * np.abs(x), 0.0),
    "tanh": lambda x: 1 - np.tanh(x) ** 2,
    "swish_sign": lambda x: 5 * (2 - 5 * x * np.tanh(2.5 * x)) / (1 + np.cosh(5 * x)),
    "cosh2": lambda x: (2 / np.cosh(x)) ** 2,
    "ede": lambda x: 10.0 * 0.1 * _sech2(0.1 * x),  # k t sech^2(t x) at epoch 0: t = 0.1, k = 10
    "rsign": lambda x: np.where(np.abs(x) <= 1, 2 - 2 * np.abs(x), 0.0),  # ReActNet's BinaryActivation (threshold 0)
}


def test_available_names_are_the_documented_ones():
    assert estimators.available() == [
        "ste", "ste_clipped", "approx_sign", "tanh", "swish_sign", "cosh2", "gumbel", "ede", "rsign",
    ]


@pytest.mark.parametrize("name", sorted(EXPECTED_GRADIENTS))
def test_forward_is_larq_sign_and_backward_matches_formula(name):
    y, grad = _forward_backward(estimators.get(name))
    np.testing.assert_array_equal(y, np.where(X >= 0, 1.0, -1.0))
    np.testing.assert_allclose(grad, EXPECTED_GRADIENTS[name](X), rtol=1e-5, atol=1e-5)


def test_estimator_parameters_change_the_gradient():
    _, grad = _forward_backward(estimators.get("tanh", beta=3.0))
    np.testing.assert_allclose(grad, 3 * (1 - np.tanh(3 * X) ** 2), rtol=1e-5, atol=1e-5)
    _, grad = _forward_backward(estimators.get("cosh2", beta=2.0))
    np.testing.assert_allclose(grad, (2 / np.cosh(2 * X)) ** 2, rtol=1e-5, atol=1e-5)


def test_larq_quantizers_are_reused_not_rewritten():
    assert isinstance(estimators.get("ste_clipped"), lq.quantizers.SteSign)
    assert isinstance(estimators.get("approx_sign"), lq.quantizers.ApproxSign)
    assert isinstance(estimators.get("swish_sign"), lq.quantizers.SwishSign)
    assert isinstance(estimators.get("ste"), lq.quantizers.SteSign)
    assert estimators.get("ste").clip_value is None


def test_ede_schedule_values_follow_ir_net():
    n = 10
    for epoch in range(n):
        t, k = estimators.ede_parameters(epoch, n)
        expected_t = 0.1 * 10 ** ((epoch / n) * np.log10(10 / 0.1))
        assert t == pytest.approx(expected_t)
        assert k == pytest.approx(max(1 / expected_t, 1.0))
    assert estimators.ede_parameters(0, n) == pytest.approx((0.1, 10.0))
    assert estimators.ede_parameters(n, n)[0] == pytest.approx(10.0)


def test_ede_callback_sets_every_quantizer_per_epoch():
    inputs = tf.keras.Input((4,))
    x = lq.layers.QuantDense(3, input_quantizer=estimators.get("ede"), kernel_quantizer="ste_sign")(inputs)
    model = tf.keras.Model(inputs, x)
    model.compile("sgd", "mse")
    schedule = estimators.EDESchedule(total_epochs=4)
    seen = []

    class Record(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            (quantizer,) = estimators.quantizers_of(self.model, estimators.EDESign)
            seen.append((float(quantizer.t.numpy()), float(quantizer.k.numpy())))

    model.fit(np.ones((8, 4)), np.ones((8, 3)), epochs=4, verbose=0, callbacks=[schedule, Record()])
    for epoch, (t, k) in enumerate(seen):
        assert (t, k) == pytest.approx(estimators.ede_parameters(epoch, 4), rel=1e-6)


def test_gumbel_is_stochastic_in_training_and_sign_at_inference():
    x = np.full((2000,), 0.3, np.float32)
    quantizer = estimators.get("gumbel", tau=1.0)
    y_inference, _ = _forward_backward(quantizer, x, training=False)
    np.testing.assert_array_equal(y_inference, np.ones_like(x))
    y_train, grad = _forward_backward(quantizer, x, training=True)
    assert set(np.unique(y_train)) == {-1.0, 1.0}
    # P(sign(2x + g1 - g2) = +1) = sigmoid(2x) for the logistic difference of two Gumbels.
    assert np.mean(y_train == 1.0) == pytest.approx(1 / (1 + np.exp(-0.6)), abs=0.04)
    assert np.all(grad > 0) and np.all(grad <= 1.0 / 1.0 + 1e-6)


def test_gumbel_temperature_schedule():
    schedule = estimators.GumbelTemperatureSchedule(initial=2.0, rate=0.5, minimum=0.3)
    assert [schedule.temperature(e) for e in range(4)] == pytest.approx([2.0, 1.0, 0.5, 0.3])
    with pytest.raises(ValueError, match="rate"):
        estimators.GumbelTemperatureSchedule(rate=0.0)


def test_rsign_threshold_is_learned():
    quantizer = estimators.get("rsign")
    x = tf.constant([[0.5, -0.5, 2.0]])
    quantizer.build(x.shape)
    quantizer.threshold.assign([1.0, -1.0, 0.0])
    with tf.GradientTape() as tape:
        y = quantizer(x)
    np.testing.assert_array_equal(y.numpy(), [[-1.0, 1.0, 1.0]])
    grad = tape.gradient(y, quantizer.threshold).numpy()
    np.testing.assert_array_equal(grad, [-1.0, -1.0, 0.0])


@pytest.mark.parametrize("gradient, expected", [
    ("approx_sign", lambda u: np.maximum(0.0, 2.0 - 2.0 * np.abs(u))),  # ReActNet's BinaryActivation
    ("ste", lambda u: (np.abs(u) <= 1.0).astype(np.float32)),
])
def test_rsign_pseudo_gradient_default_is_the_authors(gradient, expected):
    quantizer = estimators.RSign() if gradient == "approx_sign" else estimators.RSign(gradient=gradient)
    assert quantizer.gradient == gradient
    quantizer.build(tf.TensorShape([X.size]))
    quantizer.threshold.assign(np.full(X.size, 0.25, np.float32))
    y, grad = _forward_backward(quantizer)
    u = X - 0.25
    np.testing.assert_array_equal(y, np.where(u >= 0, 1.0, -1.0))
    np.testing.assert_allclose(grad, expected(u), atol=1e-6)
    clone = estimators.RSign.from_config(quantizer.get_config())
    assert clone.gradient == gradient and clone.clip_value == 1.0


def test_rsign_unknown_gradient_names_the_allowed_ones():
    with pytest.raises(ValueError, match="'sign'.*allowed: approx_sign, ste"):
        estimators.RSign(gradient="sign")


def test_unknown_estimator_names_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown estimator 'sgn'.*approx_sign"):
        estimators.get("sgn")
    with pytest.raises(ValueError, match="beta"):
        estimators.get("tanh", beta=-1)


@pytest.mark.parametrize("name", estimators.available())
def test_quantizers_serialise_by_string_and_with_saved_models(name, tmp_path):
    keras_name = {"tanh": "tanh_sign"}.get(name, name)
    inputs = tf.keras.Input((6,))
    x = lq.layers.QuantDense(4, input_quantizer=keras_name, kernel_quantizer="ste")(inputs)
    model = tf.keras.Model(inputs, x)
    assert type(model.layers[1].input_quantizer) is type(estimators.get(name))
    path = tmp_path / "model.keras"
    model.save(path)
    restored = tf.keras.models.load_model(path)
    data = np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32)
    np.testing.assert_allclose(restored(data, training=False), model(data, training=False), rtol=1e-6)
    assert type(restored.layers[1].input_quantizer) is type(model.layers[1].input_quantizer)


def test_callbacks_for_names_the_schedules_needed():
    kinds = [type(c) for c in estimators.callbacks_for({"ede", "gumbel", "ste"}, epochs=5)]
    assert kinds == [estimators.EDESchedule, estimators.GumbelTemperatureSchedule]
    assert estimators.callbacks_for({"ste"}, epochs=5) == []


@pytest.mark.parametrize("sign_at_zero", [1.0, -1.0])
def test_schedules_reach_sign_layers_and_wrapped_estimators(sign_at_zero):
    """With Binarization(inputs="activations") the signs are layers of their own (and with
    sign_at_zero=-1 wrapped in SignAtZero): the EDE schedule must still set every one."""
    from lqbench import Binarization, models

    b = Binarization(weight_estimator="ede", activation_estimator="ede", inputs="activations",
                     sign_at_zero=sign_at_zero)
    model = models.build("vgg_small", (8, 8, 1), 3, b, width_multiplier=1 / 32, activation="relu",
                         block_order="conv_bn_act_pool")
    signs = [layer for layer in model.layers if isinstance(layer, lq.quantizers.Quantizer)]
    assert len(signs) == 6
    found = estimators.quantizers_of(model, estimators.EDESign)
    assert len(found) == 6 + 5  # six activation signs, five binary kernels
    schedule = estimators.EDESchedule(total_epochs=4)
    schedule.set_model(model)
    model(np.zeros((1, 8, 8, 1), "float32"))  # build the quantizers' variables
    schedule.on_epoch_begin(3)
    t, k = estimators.ede_parameters(3, 4)
    for quantizer in found:
        assert (float(quantizer.t.numpy()), float(quantizer.k.numpy())) == pytest.approx((t, k), rel=1e-6)
