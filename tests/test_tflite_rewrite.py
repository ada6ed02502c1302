"""Rewriting Larq models for LCE (exact in Keras, binary in LCE) and tie-aware verification."""
import os
import warnings

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

import lqbench
import lqbench.tflite as tfl
from lqbench.tflite import rewriting, verification

SIGN = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")


def _random_weights(model, seed=0):
    """Latent weights in [-1, 1] and batch norms with non-degenerate, positive-scale statistics."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            weights = layer.get_weights()
            shape = weights[0].shape
            values = {"gamma": rng.uniform(0.5, 1.5, shape), "beta": rng.normal(0, 0.5, shape),
                      "moving_mean": rng.normal(0, 2.0, shape), "moving_variance": rng.uniform(1.0, 9.0, shape)}
            layer.set_weights([values[w.name.split("/")[-1].split(":")[0]] for w in layer.weights])
        elif layer.weights:
            layer.set_weights([rng.uniform(-1, 1, w.shape).astype(np.float32) for w in layer.get_weights()])


def larq_guide_model():
    """A user's model as Larq's guide writes it: Sequential, max-pool *before* batch norm, binary dense head."""
    model = tf.keras.Sequential([
        tf.keras.Input((16, 16, 3)),
        tf.keras.layers.Conv2D(32, 3, use_bias=False),
        tf.keras.layers.BatchNormalization(scale=False),
        lq.layers.QuantConv2D(32, 3, use_bias=False, **SIGN),
        tf.keras.layers.MaxPooling2D(),
        tf.keras.layers.BatchNormalization(scale=False),
        lq.layers.QuantConv2D(64, 3, use_bias=False, **SIGN),
        tf.keras.layers.MaxPooling2D(),
        tf.keras.layers.BatchNormalization(scale=False),
        tf.keras.layers.Flatten(),
        lq.layers.QuantDense(256, use_bias=False, **SIGN),
        tf.keras.layers.BatchNormalization(scale=False),
        lq.layers.QuantDense(64, use_bias=False, **SIGN),
        tf.keras.layers.BatchNormalization(scale=False),
        tf.keras.layers.Dense(10),
    ])
    _random_weights(model)
    return model


def test_binary_dense_and_conv1d_become_conv2d_with_identical_outputs():
    tokens = inputs = tf.keras.Input((6, 24))
    x = lq.layers.QuantConv1D(32, 3, padding="same", pad_values=1.0, name="conv1d", **SIGN)(tokens)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantDense(16, name="token_dense", **SIGN)(x)  # acts on the last axis of (6, 32)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(8, name="flat_dense", activation="relu", **SIGN)(x)
    shared = lq.layers.QuantDense(8, name="shared", **SIGN)
    y = tf.keras.layers.Add()([shared(x), shared(x * 2.0)])
    x = lq.layers.QuantDense(4, input_quantizer="ste_sign", name="float_kernel")(y)
    model = tf.keras.Model(inputs, x)
    _random_weights(model)
    result = tfl.rewrite(model)
    assert {(s.layer, s.kind) for s in result.rewrites} == {
        ("conv1d", "conv1d_as_conv2d"), ("token_dense", "dense_as_conv"), ("flat_dense", "dense_as_conv")}
    assert [(s.layer, s.reason) for s in result.declined] == [("shared", "the layer is called more than once")]
    new = result.model
    assert new is not model and all(not isinstance(l, lq.layers.QuantConv1D) for l in new.layers)
    assert isinstance(new.get_layer("token_dense"), lq.layers.QuantConv2D)
    assert new.get_layer("token_dense").kernel.shape == (1, 1, 32, 16)
    assert new.get_layer("conv1d").kernel_size == (1, 3) and new.get_layer("conv1d").pad_values == 1.0
    assert isinstance(new.get_layer("float_kernel"), lq.layers.QuantDense)  # float weights: nothing to gain
    assert model.count_params() == new.count_params()
    x = np.random.default_rng(1).standard_normal((8, 6, 24)).astype(np.float32)
    # the same integer binary sums: bit-identical outputs
    np.testing.assert_array_equal(new(x, training=False).numpy(), model(x, training=False).numpy())


def test_user_sequential_model_converts_fully_binary_and_exact(tmp_path):
    model = larq_guide_model()
    report = tfl.convert(model, tmp_path / "guide.tflite")
    kinds = sorted((s.kind, s.layer) for s in report.rewrites)
    assert [k for k, _ in kinds] == ["bn_before_pool", "bn_before_pool", "dense_as_conv", "dense_as_conv"]
    assert report.bconv == report.binary_layers == 4 and report.fallbacks == [] and report.ok
    assert report.bmaxpool == report.expected_bmaxpool == 1  # the pool feeding Flatten stays float (measured)
    assert "MUL" not in report.op_counts and "ADD" not in report.op_counts  # every batch norm folded
    assert report.rewrite_keras_diff == 0.0
    assert report.verdict == "exact" and report.max_abs_diff <= 1e-5 * max(1.0, report.max_abs_output)
    assert report.size_ratio > 12, report  # tiny model: the graph itself is a third of the file
    text = str(report)
    assert "rewrite: dense (QuantDense): dense_as_conv" in text or "dense_as_conv" in text
    assert sum(tfl.weight_bytes((tmp_path / "guide.tflite").read_bytes()).values()) == report.size_bytes
    # the same model without the rewrite: silent float fallbacks, refused by default
    with pytest.warns(tfl.ConversionWarning), pytest.raises(tfl.ConversionError, match="fully-connected.*rewrite=True"):
        tfl.convert(model, None, rewrite=False, verify=False, compare_float=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tfl.ConversionWarning)
        plain = tfl.convert(model, None, rewrite=False, allow_fallback=True, verify=False)
    assert plain.bconv == 2 and plain.bmaxpool == 0 and plain.rewrites == [] and "rewrite: off" in str(plain)
    assert plain.size_bytes > 8 * report.size_bytes and "below 25x" in str(plain)


def test_pool_rewrite_declined_when_batch_norm_reverses_the_order():
    x = inputs = tf.keras.Input((8, 8, 32))
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, use_bias=False, **SIGN)(x)
    x = tf.keras.layers.MaxPooling2D(name="pool")(x)
    x = tf.keras.layers.BatchNormalization(name="bn")(x)
    x = lq.layers.QuantConv2D(32, 3, use_bias=False, **SIGN)(x)
    model = tf.keras.Model(inputs, tf.keras.layers.GlobalAveragePooling2D()(x))
    _random_weights(model)
    bn = model.get_layer("bn")
    gamma = bn.gamma.numpy()
    gamma[5] = -0.5
    bn.gamma.assign(gamma)
    result = tfl.rewrite(model)
    assert result.rewrites == [] and result.model is model
    assert [s.layer for s in result.declined] == ["pool"] and "channel 5" in result.declined[0].reason
    xcore = tfl.rewrite(model, target="xcore")
    assert "'xcore' has no LceBMaxPool2d" in xcore.declined[0].reason
    gamma[5] = 0.5
    bn.gamma.assign(gamma)
    swapped = tfl.rewrite(model).model
    order = [l.name for l in swapped.layers]
    assert order.index("bn") < order.index("pool")
    x = np.random.default_rng(2).standard_normal((4, 8, 8, 32)).astype(np.float32)
    np.testing.assert_array_equal(swapped(x, training=False).numpy(), model(x, training=False).numpy())
    with pytest.raises(ValueError, match="unknown rewrite\\(s\\) 'fold'; allowed: sign_at_zero_as_sign, dense_as_conv"):
        tfl.rewrite(model, kinds=("fold",))
    with pytest.raises(TypeError, match="rewrite must be True, False or a list of rewrite kinds, got 'yes'"):
        tfl.convert(model, None, rewrite="yes")


def test_subclassed_model_is_left_alone():
    class Net(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = lq.layers.QuantDense(4, **SIGN)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(np.zeros((1, 8), np.float32))
    result = tfl.rewrite(net)
    assert result.model is net and result.rewrites == [] and "not a functional" in result.notes[0]


def _ternary_model(depth=2):
    """A ternary input quantizer: LCE matches its sign pattern and drops the zeros (a mis-conversion)."""
    x = inputs = tf.keras.Input((8, 8, 32))
    x = tf.keras.layers.Conv2D(32, 3, padding="same")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, use_bias=False, name="ternary",
                              **{**SIGN, "input_quantizer": lq.quantizers.SteTern(threshold_value=0.3)})(x)
    x = tf.keras.layers.BatchNormalization()(x)
    for i in range(depth - 1):
        x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, use_bias=False, name=f"bconv{i}", **SIGN)(x)
        x = tf.keras.layers.BatchNormalization()(x)
    return tf.keras.Model(inputs, x)


def test_a_mis_conversion_cannot_hide_behind_ties():
    """Untrained batch norm: every sample ties, so the model alone cannot tell; the calibrated copy can."""
    tf.keras.utils.set_random_seed(3)
    model = _ternary_model(depth=3)
    x = np.random.default_rng(0).standard_normal((4, 8, 8, 32)).astype(np.float32)
    ties, per_layer = tfl.sign_ties(model, x)
    assert (ties > 0).all() and set(per_layer) == {"bconv0", "bconv1"}
    check = tfl.verify(model, tfl.to_flatbuffer(model), x, convert_fn=tfl.to_flatbuffer)
    assert check.tied_samples == 4 and check.diffs == {} and check.tie_max_abs_diff > check.tolerance
    assert check.calibrated is not None and check.calibrated.tie_free_samples >= 1
    assert check.verdict == "mis-converted" and set(check.misconverted) == {"default", "indirect", "reference"}
    # the calibrated copy has the model's weights and non-degenerate statistics
    copy = tfl.calibrated_copy(model, x)
    for a, b in zip(model.layers, copy.layers):
        if isinstance(a, tf.keras.layers.BatchNormalization):
            assert np.abs(b.moving_mean.numpy()).max() > 0 and not np.allclose(b.moving_variance.numpy(), 1.0)
        elif a.weights:
            for u, v in zip(a.get_weights(), b.get_weights()):
                np.testing.assert_array_equal(u, v)
    without_copy = tfl.verify(model, tfl.to_flatbuffer(model), x, convert_fn=tfl.to_flatbuffer, calibrate="never")
    assert without_copy.verdict == "inconclusive" and without_copy.misconverted == {}


def test_mis_conversion_found_on_tie_free_samples():
    model = _ternary_model()
    _random_weights(model)
    flatbuffer = tfl.to_flatbuffer(model)
    check = tfl.verify(model, flatbuffer, verification.random_inputs(model, 4))
    assert check.tie_free_samples >= 1 and check.calibrated is None
    assert check.verdict == "mis-converted" and set(check.misconverted) == {"default", "indirect", "reference"}
    with pytest.raises(ValueError, match="unknown calibrate 'maybe'; allowed: auto, always, never"):
        tfl.verify(model, flatbuffer, verification.random_inputs(model, 1), calibrate="maybe")


def test_weight_bytes_add_up_and_binary_filters_are_bits():
    x = inputs = tf.keras.Input((8, 8, 64))
    x = lq.layers.QuantConv2D(64, 3, padding="same", pad_values=1.0, use_bias=False, **SIGN)(x)
    model = tf.keras.Model(inputs, x)
    flatbuffer = tfl.to_flatbuffer(model)
    sizes = tfl.weight_bytes(flatbuffer)
    assert sum(sizes.values()) == len(flatbuffer)
    assert 3 * 3 * 64 * 64 / 8 <= sizes["LceBconv2d"] < 3 * 3 * 64 * 64 / 8 + 64 * 4 * 4


# Each conv zoo model at a reduced size (fast), plus the dense zoo models (the rewrite makes their
# binary layers binary convolutions); LQBENCH_FULL_ZOO=1 adds the default sizes.
ZOO_SMALL = {
    "binarynet_mlp": {"hidden_units": [256, 256]},
    "lenet": {}, "binarynet_cnn": {"width_multiplier": 0.25}, "vgg_small": {"width_multiplier": 0.25},
    "vgg19": {"width_multiplier": 0.125}, "resnet20": {"width": 8}, "reactnet_a": {"width_multiplier": 0.125},
    "mobilenet_v2": {"width_multiplier": 0.35},
}
ZOO_CASES = [pytest.param(name, args, id=f"{name}-small") for name, args in ZOO_SMALL.items()]
ZOO_CASES += [
    pytest.param(name, {}, id=f"{name}-default",
                 marks=pytest.mark.skipif(os.environ.get("LQBENCH_FULL_ZOO") != "1",
                                          reason="default sizes convert in 1-3 min: set LQBENCH_FULL_ZOO=1"))
    for name in ZOO_SMALL
]


@pytest.mark.parametrize("name,args", ZOO_CASES)
def test_conv_zoo_converts_fully_binary_and_exact(name, args):
    """Untrained, W1A1: every binary layer LCE can run is binary, outputs verified exactly (ties apart)."""
    import lqbench.models as models

    model = models.build(name, (32, 32, 3), 10, binarization=lqbench.Binarization(), **args)
    depthwise = name == "mobilenet_v2"  # binary depthwise convolutions have no LCE kernel: float ops
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tfl.ConversionWarning)
        report = tfl.convert(model, None)  # the default policy: only fallbacks LCE has no binary op for
    if depthwise:  # refused in strict mode
        with pytest.raises(tfl.ConversionError, match="QuantDepthwiseConv2D.*no binary depthwise"):
            tfl.enforce(report, "none")
        assert report.fallbacks and all(f.unavoidable for f in report.fallbacks)
        assert "no LCE binary op (QuantDepthwiseConv2D x" in report.fallback_summary()
    assert report.errors == [] and report.count_mismatch is None
    assert {f.type for f in report.fallbacks} <= ({"QuantDepthwiseConv2D"} if depthwise else set()), report
    assert report.bconv == report.binary_layers - len(report.fallbacks)
    assert report.bmaxpool == report.expected_bmaxpool
    assert report.verdict == "exact", report
    assert report.max_abs_diff <= 1e-5 * max(1.0, report.max_abs_output), report
    if name == "mobilenet_v2" and args:  # measured: ties flip outputs by ~3, the calibrated copy is exact
        assert report.tie_max_abs_diff > 0.1 and report.verified_on == "calibrated"
    if report.size_ratio < 25:
        assert report.size_note(), report  # the reason is reported


# --------------------------------------------------------------------------- sign with -1 at 0 (issue #14)


def _sign_at_zero():
    """Paper 000's sign, -1 at exactly 0 (``Binarization(sign_at_zero=-1.0)``)."""
    return lqbench.estimators.SignAtZero(lq.quantizers.SteSign(), value=-1.0)


def _sign_at_zero_model():
    conv = dict(padding="same", pad_values=1.0, use_bias=False, kernel_constraint="weight_clip")
    x = inputs = tf.keras.Input((8, 8, 32))
    x = tf.keras.layers.Conv2D(32, 3, padding="same", name="float_conv")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(32, 3, input_quantizer=_sign_at_zero(), kernel_quantizer=_sign_at_zero(), name="both",
                              **conv)(x)
    x = tf.keras.layers.MaxPooling2D(name="pool")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(32, 3, input_quantizer=_sign_at_zero(), kernel_quantizer="ste_sign", name="input_only",
                              **conv)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(32, 3, input_quantizer="ste_sign", kernel_quantizer=_sign_at_zero(), name="kernel_only",
                              **conv)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    x = lq.layers.QuantDense(16, input_quantizer=_sign_at_zero(), kernel_quantizer=_sign_at_zero(),
                             kernel_constraint="weight_clip", name="head")(x)
    model = tf.keras.Model(inputs, tf.keras.layers.BatchNormalization()(x))
    _random_weights(model)
    return model


def test_sign_at_zero_kernel_folds_and_its_input_sign_becomes_lce_sign(tmp_path):
    model = _sign_at_zero_model()
    found = {f.layer: f for f in tfl.analyze(model).layers}
    assert found["kernel_only"].status == "binary"  # the kernel quantizer is constant-folded, 0 included
    for name in ("both", "input_only"):
        assert found[name].status == "fallback" and not found[name].unavoidable
        assert "matches only its wrapped sign SteSign" in found[name].reason
    # as written: LCE keeps the correction at 0 in float ops, the convolutions float (exact, but slow)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tfl.ConversionWarning)
        with pytest.raises(tfl.ConversionError, match="that LCE could run as binary ops: both .*wrapped sign"):
            tfl.convert(model, None, rewrite=False, verify=False, compare_float=False)
        plain = tfl.convert(model, None, rewrite=False, fallback="any", compare_float=False)
    assert plain.bconv == 1 and plain.op_counts["EQUAL"] >= 2 and plain.op_counts["CONV_2D"] >= 3
    assert plain.verdict == "exact"
    # by default: LCE's sign, every binary layer a binary op, the caveat in the report
    report = tfl.convert(model, tmp_path / "saz.tflite", compare_float=False)
    assert sorted((s.kind, s.layer) for s in report.rewrites) == [
        ("bn_before_pool", "pool"), ("dense_as_conv", "head"), ("sign_at_zero_as_sign", "both"),
        ("sign_at_zero_as_sign", "head"), ("sign_at_zero_as_sign", "input_only")]
    assert report.bconv == report.binary_layers == 4 and report.fallbacks == [] and report.bmaxpool == 1
    assert "EQUAL" not in report.op_counts and report.ok
    assert report.verdict == "exact" and report.max_abs_diff <= 1e-5 * max(1.0, report.max_abs_output)
    assert "only where a pre-sign value is exactly 0" in str(report)
    assert report.rewrite_keras_diff == 0.0  # no exact zeros before a sign on these samples
    # the other rewrites alone leave the sign at zero, as asked
    kept = tfl.audit(model, rewrite=["dense_as_conv", "bn_before_pool"])
    assert [s.kind for s in kept.rewrites.rewrites] == ["dense_as_conv"]  # no LCE sign before the pool: not moved
    assert {f.layer for f in kept.analysis.with_status("fallback")} == {"both", "input_only", "head"}


def test_sign_at_zero_rewrite_changes_outputs_only_at_ties():
    x = inputs = tf.keras.Input((4, 4, 32))
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, input_quantizer=_sign_at_zero(),
                              kernel_quantizer="ste_sign", name="b")(x)
    model = tf.keras.Model(inputs, x)
    _random_weights(model)
    samples = np.random.default_rng(4).standard_normal((4, 4, 4, 32)).astype(np.float32)
    samples[0, 1, 1, :5] = 0.0
    samples[2, 0, 0, 0] = 0.0
    result = tfl.rewrite(model)
    assert [(s.layer, s.kind) for s in result.rewrites] == [("b", "sign_at_zero_as_sign")]
    assert type(result.model.get_layer("b").input_quantizer) is lq.quantizers.SteSign
    ours, theirs = result.model(samples).numpy(), model(samples).numpy()
    np.testing.assert_array_equal(ours[[1, 3]], theirs[[1, 3]])
    assert all(np.abs(ours[i] - theirs[i]).max() > 0.5 for i in (0, 2))  # -1 vs +1 at a zero input
    ties, per_layer = tfl.sign_ties(model, samples)
    assert ties[0] >= 5 and ties[2] >= 1 and ties[1] == ties[3] == 0 and set(per_layer) == {"b"}
    report = tfl.convert(model, None, sample_inputs=samples, compare_float=False)
    assert report.bconv == 1 and report.fallbacks == [] and report.rewrite_keras_diff > 0.5
    assert report.verdict == "exact" and report.tied_samples == 2 and report.tie_max_abs_diff > 0.5
    assert report.verification.tie_free_samples == 2 and report.max_abs_diff <= 1e-5 * max(1.0, report.max_abs_output)


def test_sign_layers_of_paper000_binarization_are_analysed_and_rewritten():
    """``Binarization(inputs="activations", sign_at_zero=-1.0)``: the sign is a layer before a
    kernel-only Larq layer; LCE fuses it into LceBconv2d unless a reshape separates them."""
    kernel = dict(kernel_quantizer=_sign_at_zero(), use_bias=False)
    x = inputs = tf.keras.Input((8, 8, 32))
    x = tf.keras.layers.Conv2D(32, 3, padding="same")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = _sign_at_zero()(x)
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=0.0, name="c1", **kernel)(x)  # the authors' padding
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.MaxPooling2D(name="pool")(x)
    x = _sign_at_zero()(x)
    x = lq.layers.QuantConv2D(32, 3, name="c2", **kernel)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = _sign_at_zero()(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(16, name="fc", **kernel)(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(10)(tf.keras.layers.BatchNormalization()(x)))
    _random_weights(model)
    assert len(verification.sign_layers(model)) == 3  # ties are looked for before each sign layer
    assert not any(isinstance(l, lq.quantizers.Quantizer) for l in tfl.float_twin(model).layers)
    before = {f.layer: f for f in tfl.analyze(model).layers}
    assert "matches only its wrapped sign" in before["c1"].reason and not before["c1"].unavoidable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tfl.ConversionWarning)
        with pytest.raises(tfl.ConversionError, match="fc .*through a reshape"):
            tfl.convert(model, None, verify=False, compare_float=False)
        report = tfl.convert(model, None, fallback="any")
    assert sorted((s.kind, s.layer) for s in report.rewrites if s.kind != "sign_at_zero_as_sign") == [
        ("dense_as_conv", "fc")]
    assert sum(s.kind == "sign_at_zero_as_sign" for s in report.rewrites) == 3
    assert report.bconv == report.expected_bconv == 2 and report.count_mismatch is None
    assert report.bmaxpool == report.expected_bmaxpool == 1
    assert [(f.layer, f.unavoidable) for f in report.fallbacks] == [("fc", False)]
    assert report.errors == []  # zero padding into a sign layer keeps float output: exact (measured)
    assert report.verdict == "exact" and report.max_abs_diff <= 1e-5 * max(1.0, report.max_abs_output)
