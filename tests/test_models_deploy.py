"""Deployment-friendly model options: binary dense layers as 1x1 binary convolutions, GAP head."""
import numpy as np
import pytest

import lqbench
import lqbench.models as models
import tensorflow as tf

from lqbench.tflite import ConversionError, convert


def _copy_dense_into_conv(dense_model, conv_model):
    for layer in dense_model.layers:
        if not layer.weights:
            continue
        target = conv_model.get_layer(layer.name)
        target.set_weights([w.reshape(t.shape) for w, t in zip(layer.get_weights(), target.get_weights())])


def test_dense_as_conv_computes_the_same_function():
    kwargs = dict(hidden_units=(32, 16))
    dense = models.build("binarynet_mlp", (8, 8, 1), 10, **kwargs)
    conv = models.build("binarynet_mlp", (8, 8, 1), 10, dense_as_conv=True, **kwargs)
    assert dense.count_params() == conv.count_params()
    # the first layer (real weights) and the classifier stay dense; the binary hidden one is a 1x1 conv
    assert [type(l).__name__ for l in conv.layers if l.weights and "bn" not in l.name] == [
        "QuantDense", "QuantConv2D", "QuantDense"]
    rng = np.random.default_rng(0)
    for layer in dense.layers:
        if layer.weights:
            layer.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in layer.get_weights()])
    _copy_dense_into_conv(dense, conv)
    x = rng.normal(size=(5, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(conv(x, training=False), dense(x, training=False), rtol=1e-5, atol=1e-5)


def test_dense_as_conv_is_what_the_converter_does_by_default():
    """``dense_as_conv=True`` (kept for compatibility) and the default model convert to the same binary ops."""
    build = dict(hidden_units=(64, 64, 64))
    conv = models.build("binarynet_mlp", (8, 8, 1), 10, dense_as_conv=True, **build)
    report = convert(conv, None, verify=False, compare_float=False)
    assert report.op_counts.get("LceBconv2d", 0) == 2  # the two binary hidden layers
    assert not report.fallbacks and report.rewrites == []  # nothing left to rewrite
    dense = models.build("binarynet_mlp", (8, 8, 1), 10, **build)
    rewritten = convert(dense, None, verify=False, compare_float=False)
    assert rewritten.op_counts.get("LceBconv2d", 0) == 2 and not rewritten.fallbacks
    assert [s.layer for s in rewritten.rewrites] == ["fc2", "fc3"] or len(rewritten.rewrites) == 2
    assert abs(rewritten.size_bytes - report.size_bytes) < 0.02 * report.size_bytes
    with pytest.raises(ConversionError, match="fall back to float"):
        convert(dense, None, verify=False, compare_float=False, rewrite=False)


def test_vgg_small_average_pool_head_shrinks_the_classifier():
    flat = models.build("vgg_small", (32, 32, 3), 10, width_multiplier=0.25)
    avg = models.build("vgg_small", (32, 32, 3), 10, width_multiplier=0.25, head="avg")
    features = 128  # 512 * 0.25 channels
    assert flat.get_layer("classifier").kernel.shape == (features * 4 * 4, 10)
    assert avg.get_layer("classifier").kernel.shape == (features, 10)
    assert flat.count_params() - avg.count_params() == features * 15 * 10
    with pytest.raises(ValueError, match="head"):
        models.build("vgg_small", (32, 32, 3), 10, head="max")
