"""LCE conversion, verification and host benchmark of lqbench.tflite (real conversions, tiny models)."""
import json
import os
import pathlib
import platform
import warnings

import larq as lq
import larq_compute_engine as lce
import numpy as np
import pytest
import tensorflow as tf

import lqbench
import lqbench.tflite as tfl
from lqbench import estimators
from lqbench.tflite import analysis, verification

BINARY = dict(
    input_quantizer="ste_sign",
    kernel_quantizer="ste_sign",
    kernel_constraint="weight_clip",
    pad_values=1.0,
    padding="same",
    use_bias=False,
)


def _randomize_batch_norm(model, seed=0):
    """Non-trivial inference statistics, so BN folding into LceBconv2d is really tested."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([
                rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.5, beta.shape),
                rng.normal(0, 2.0, mean.shape), rng.uniform(0.5, 4.0, var.shape),
            ])


def binary_convs(model):
    """Keras layers with a 1-bit input and a 1-bit kernel quantizer that are QuantConv2D."""
    return [
        layer.name for layer in model.layers
        if isinstance(layer, lq.layers.QuantConv2D) and layer.input_quantizer is not None
        and layer.kernel_quantizer is not None
    ]


def small_bnn():
    """Float first conv, three binary convs (BN before both max-pools), float classifier."""
    x = inputs = tf.keras.Input((16, 16, 3))
    x = lq.layers.QuantConv2D(32, 3, padding="same", use_bias=False)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(32, 3, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.MaxPool2D()(x)
    x = lq.layers.QuantConv2D(64, 3, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.MaxPool2D()(x)
    x = lq.layers.QuantConv2D(64, 3, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(10)(x))
    _randomize_batch_norm(model)
    return model


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tf.keras.utils.set_random_seed(7)
    folder = tmp_path_factory.mktemp("tflite")
    model = small_bnn()
    x = np.random.default_rng(3).standard_normal((5, 16, 16, 3)).astype(np.float32)
    keras_out = model(x, training=False).numpy()
    model.save(folder / "bnn.keras")
    report = tfl.convert(model, folder / "bnn.tflite", float_path=folder / "bnn_float.tflite")
    return {
        "folder": folder, "report": report, "x": x, "keras_out": keras_out,
        "binary_convs": binary_convs(model), "path": folder / "bnn.tflite",
        "float_path": folder / "bnn_float.tflite",
    }


def test_binary_convs_become_lce_ops(converted):
    report = converted["report"]
    flatbuffer = converted["path"].read_bytes()
    counts = tfl.op_counts(flatbuffer)
    assert len(converted["binary_convs"]) == 3
    assert counts["LceBconv2d"] == report.bconv == report.binary_layers == 3
    assert counts["LceBMaxPool2d"] == report.bmaxpool == report.expected_bmaxpool == 2
    assert sorted(report.converted) == sorted(converted["binary_convs"])
    assert report.fallbacks == [] and report.errors == [] and report.count_mismatch is None and report.ok
    assert counts["CONV_2D"] == 1 and counts["FULLY_CONNECTED"] == 1  # the float first and last layers
    float_counts = tfl.op_counts(converted["float_path"].read_bytes())
    assert not any(name.startswith("Lce") for name in float_counts) and float_counts["CONV_2D"] == 4


def test_lce_outputs_equal_keras(converted):
    report = converted["report"]
    interpreter = lce.testing.Interpreter(converted["path"].read_bytes())
    lce_out = interpreter.predict(converted["x"])
    keras_out = converted["keras_out"]
    assert lce_out.shape == keras_out.shape == (5, 10)
    tolerance = 1e-4 * (1 + np.abs(keras_out).max())
    np.testing.assert_allclose(lce_out, keras_out, atol=tolerance, rtol=0)
    assert set(report.kernel_diffs) == {"default", "indirect", "reference"}
    assert report.max_abs_diff <= tolerance and report.verify_samples == 4


def test_report_sizes_and_serialisation(converted):
    report = converted["report"]
    assert report.size_bytes == os.path.getsize(converted["path"])
    assert report.float_size_bytes == os.path.getsize(converted["float_path"])
    # float twin: 32-bit weights for 3*3*(32*32 + 32*64 + 64*64) binary-conv weights alone
    assert report.float_size_bytes > 4 * 9 * (32 * 32 + 32 * 64 + 64 * 64)
    assert report.size_ratio == pytest.approx(report.float_size_bytes / report.size_bytes)
    assert report.size_ratio > 5
    data = json.loads(json.dumps(report.to_dict()))
    assert data["bconv"] == 3 and data["op_counts"]["LceBconv2d"] == 3
    text = str(report)
    assert "LceBconv2d x3" in text and "smaller" in text and "max |LCE - Keras|" in text


def test_lqbench_estimators_convert_to_binary_ops():
    x = inputs = tf.keras.Input((8, 8, 32))
    x = tf.keras.layers.Conv2D(32, 3, padding="same")(x)
    for name in estimators.available():
        x = lq.layers.QuantConv2D(
            32, 3, padding="same", pad_values=1.0, use_bias=False, name=f"bconv_{name}",
            input_quantizer=estimators.get(name), kernel_quantizer=estimators.get("ste"),
            kernel_constraint="weight_clip",
        )(x)
        x = tf.keras.layers.BatchNormalization()(x)
    model = tf.keras.Model(inputs, tf.keras.layers.GlobalAveragePooling2D()(x))
    _randomize_batch_norm(model)
    report = tfl.convert(model, None)
    assert report.bconv == len(estimators.available()) == report.binary_layers
    assert report.fallbacks == [] and report.count_mismatch is None
    assert report.max_abs_diff <= 1e-3 * (1 + report.max_abs_output)


def _dense_model():
    x = inputs = tf.keras.Input((8, 8, 3))
    x = tf.keras.layers.Conv2D(32, 3, padding="same")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(32, 3, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(16, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                             kernel_constraint="weight_clip", name="binary_dense")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(10)(x))


def test_binary_dense_is_a_reported_fallback_without_the_rewrite(tmp_path):
    model = _dense_model()
    path = tmp_path / "dense.tflite"
    rewritten = tfl.convert(model, path)  # default: the binary dense layer runs as a 1x1 binary conv
    assert rewritten.bconv == rewritten.binary_layers == 2 and rewritten.fallbacks == []
    assert [s.layer for s in rewritten.rewrites] == ["binary_dense"] and "dense_as_conv" in str(rewritten)
    path.unlink()
    with pytest.warns(tfl.ConversionWarning, match="binary_dense"):
        with pytest.raises(tfl.ConversionError, match=r"binary_dense \(QuantDense\).*fully-connected"):
            tfl.convert(model, path, rewrite=False)
    assert not path.exists()
    with pytest.warns(tfl.ConversionWarning, match="binary_dense.*falls back|falls back.*binary_dense"):
        report = tfl.convert(model, path, allow_fallback=True, rewrite=False)
    assert path.exists()
    assert [(f.layer, f.type) for f in report.fallbacks] == [("binary_dense", "QuantDense")]
    assert report.binary_layers == 2 and report.bconv == 1 and report.count_mismatch is None
    assert "FALLBACK to float (avoidable): binary_dense" in str(report) and report.fallback_policy == "any"
    assert report.op_counts["FULLY_CONNECTED"] == 2  # the binary dense runs as a float matmul


def _mixed_model():
    x = inputs = tf.keras.Input((8, 8, 32))
    x = tf.keras.layers.Conv2D(32, 3, padding="same")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantDepthwiseConv2D(3, padding="same", pad_values=1.0, input_quantizer="ste_sign",
                                       depthwise_quantizer="ste_sign", use_bias=False, name="depthwise")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(32, 3, padding="same", kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                              use_bias=False, name="kernel_only")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(32, 3, **{**BINARY, "input_quantizer": "ste_heaviside"}, name="heaviside")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(32, 3, groups=2, **BINARY, name="grouped16")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(32, 3, **{**BINARY, "kernel_quantizer": "magnitude_aware_sign"}, name="magnitude")(x)
    x = tf.keras.layers.MaxPool2D(name="pool_before_bn")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(32, 3, **{**BINARY, "pad_values": 0.0}, name="zero_pad")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    return tf.keras.Model(inputs, tf.keras.layers.GlobalAveragePooling2D()(x))


def test_static_analysis_reasons():
    model = _mixed_model()
    arm = {f.layer: f for f in tfl.analyze(model, "arm").layers}
    assert {name: f.status for name, f in arm.items()} == {
        "depthwise": "fallback", "kernel_only": "fallback", "heaviside": "fallback",
        "grouped16": "fallback", "magnitude": "binary", "zero_pad": "binary",
    }
    # no LCE binary op exists for depthwise, W1A32 or 16-channel groups; a Heaviside input is the user's choice
    assert {name: f.unavoidable for name, f in arm.items() if f.status == "fallback"} == {
        "depthwise": True, "kernel_only": True, "heaviside": False, "grouped16": True}
    assert "depthwise" in arm["depthwise"].reason and "kernel-only" in arm["kernel_only"].reason
    assert "{0, 1}" in arm["heaviside"].reason and "16 input channels per group" in arm["grouped16"].reason
    assert "zero padding" in arm["zero_pad"].reason  # converts on arm, output stays float
    xcore = {f.layer: f for f in tfl.analyze(model, "xcore").layers}
    assert xcore["zero_pad"].status == "fallback" and "'xcore'" in xcore["zero_pad"].reason
    pools = tfl.analyze(model, "arm").pools
    assert [(p.layer, p.binary) for p in pools] == [("pool_before_bn", False)]
    assert "max-pool before BN" in pools[0].reason
    with pytest.raises(ValueError, match="unknown target 'x86'; allowed: arm, xcore"):
        tfl.analyze(model, "x86")


def test_fallbacks_cross_checked_with_flatbuffer():
    model = _mixed_model()
    _randomize_batch_norm(model)
    with pytest.warns(tfl.ConversionWarning):
        report = tfl.convert(model, None, allow_fallback=True)
    assert report.bconv == report.expected_bconv == 2 and report.count_mismatch is None
    assert {f.layer for f in report.fallbacks} == {"depthwise", "kernel_only", "heaviside", "grouped16"}
    # the rewrite moved the batch norm before the pool (exact: positive scales): a binary max-pool
    assert report.bmaxpool == 1 and report.pool_fallbacks == []
    assert [(s.layer, s.kind) for s in report.rewrites] == [("pool_before_bn", "bn_before_pool")]
    assert report.max_abs_diff <= 1e-3 * (1 + report.max_abs_output) and report.verdict == "exact"
    with pytest.warns(tfl.ConversionWarning):
        plain = tfl.convert(model, None, allow_fallback=True, rewrite=False, verify=False, compare_float=False)
    assert plain.bmaxpool == 0 and [p.layer for p in plain.pool_fallbacks] == ["pool_before_bn"]


def test_fallback_policy_accepts_only_layers_lce_has_no_binary_op_for_by_default(tmp_path):
    """Default ``fallback="unavoidable"``: depthwise/W1A32/16-channel groups convert (reported), a
    Heaviside input is refused; ``"none"`` refuses all, ``"any"`` (``allow_fallback=True``) accepts all."""
    model = _mixed_model()
    _randomize_batch_norm(model)
    with pytest.warns(tfl.ConversionWarning), pytest.raises(
            tfl.ConversionError, match=r"^1 binary layer\(s\) fall back to float ops that LCE could run as binary ops: heaviside ") as error:
        tfl.convert(model, tmp_path / "mixed.tflite", verify=False, compare_float=False)
    assert not (tmp_path / "mixed.tflite").exists()
    report = error.value.report
    assert report.fallback_policy == "unavoidable"
    assert {f.layer for f in report.unavoidable_fallbacks} == {"depthwise", "kernel_only", "grouped16"}
    assert [f.layer for f in report.avoidable_fallbacks] == ["heaviside"]
    assert report.fallback_summary() == ("4 binary layer(s) run as float ops: 3 no LCE binary op (QuantDepthwiseConv2D "
                                         "x1, QuantConv2D x2); 1 avoidable (QuantConv2D x1)")
    # the same report under the other policies
    tfl.enforce(report, "any")
    tfl.enforce(report, allow_fallback=True)
    with pytest.raises(tfl.ConversionError, match=r"^4 binary layer\(s\) fall back to float ops \(fallback='none'\): depthwise"):
        tfl.enforce(report, allow_fallback=False)  # the old default: strict
    # without the avoidable layer the model converts by default; strict mode still refuses
    x = inputs = tf.keras.Input((8, 8, 32))
    x = lq.layers.QuantDepthwiseConv2D(3, padding="same", pad_values=1.0, input_quantizer="ste_sign",
                                       depthwise_quantizer="ste_sign", use_bias=False, name="depthwise")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(32, 1, **BINARY, name="pointwise")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    separable = tf.keras.Model(inputs, x)
    _randomize_batch_norm(separable)
    with pytest.warns(tfl.ConversionWarning, match="1 binary layer\\(s\\) have no LCE binary op.*depthwise"):
        ok = tfl.convert(separable, tmp_path / "sep.tflite")
    assert (tmp_path / "sep.tflite").exists() and ok.bconv == 1 and ok.verdict == "exact"
    assert [(f.layer, f.unavoidable) for f in ok.fallbacks] == [("depthwise", True)] and not ok.ok
    text = str(ok)
    assert "fallbacks (policy 'unavoidable'): 1 binary layer(s) run as float ops: 1 no LCE binary op" in text
    assert "FALLBACK to float (no LCE binary op): depthwise (QuantDepthwiseConv2D" in text
    data = ok.to_dict()
    assert data["fallback_policy"] == "unavoidable" and data["fallbacks"][0]["unavoidable"] is True
    assert json.loads(json.dumps(data))["fallback_summary"].startswith("1 binary layer(s)")
    with pytest.warns(tfl.ConversionWarning), pytest.raises(tfl.ConversionError, match="depthwise.*fallback='any'"):
        tfl.convert(separable, None, fallback="none", verify=False, compare_float=False)


def test_ste_tern_input_is_an_error_even_with_fallback_allowed(tmp_path):
    x = inputs = tf.keras.Input((8, 8, 32))
    x = tf.keras.layers.Conv2D(32, 3, padding="same")(x)
    x = lq.layers.QuantConv2D(32, 3, **{**BINARY, "input_quantizer": "ste_tern"}, name="ternary_in")(x)
    model = tf.keras.Model(inputs, tf.keras.layers.GlobalAveragePooling2D()(x))
    with pytest.warns(tfl.ConversionWarning, match="MIS-CONVERTED ternary_in"):
        with pytest.raises(tfl.ConversionError, match="mis-converted.*ternary_in.*SteTern") as error:
            tfl.convert(model, tmp_path / "t.tflite", allow_fallback=True)
    assert not (tmp_path / "t.tflite").exists()
    report = error.value.report
    assert [f.layer for f in report.errors] == ["ternary_in"]
    assert report.bconv == 1  # LCE really made a binary conv out of it...
    assert report.max_abs_diff > 0.1  # ...that computes something else


def test_zero_padding_into_a_binary_layer_converts_exactly():
    """A zero-padded binary conv feeding another binary conv: LCE 0.16 keeps its output float
    (no bit-packed output, a note says so) and the converted model equals Keras (measured: every
    bconv kernel, with and without BN between, 32 and 64 channels)."""
    x = inputs = tf.keras.Input((8, 8, 32))
    x = lq.layers.QuantConv2D(32, 3, **{**BINARY, "pad_values": 0.0}, name="zero_pad")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(32, 3, **BINARY)(x)
    model = tf.keras.Model(inputs, x)
    _randomize_batch_norm(model)
    report = tfl.convert(model, None)
    assert not report.errors and not report.fallbacks
    assert report.binary_layers == 2 and sorted(report.converted) == sorted(
        layer.name for layer in model.layers if isinstance(layer, lq.layers.QuantConv2D))
    assert report.bconv == 2 and "zero_pad" in report.converted
    assert any("bit-packed" in note for note in report.notes)
    assert report.verdict == "exact" and report.max_abs_diff < 1e-4


def test_max_pool_into_a_float_weight_layer_with_binary_input_stays_float():
    """A max-pool whose only consumer takes a sign input but has float weights (a classifier kept
    float, as the zoo's VGG-small) is a float MAX_POOL_2D in LCE: predicted so, counts agree."""
    x = inputs = tf.keras.Input((4, 4, 32))  # the last pool's 1x1 map: Flatten keeps channels
    x = lq.layers.QuantConv2D(32, 3, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(32, 3, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.MaxPool2D()(x)  # binary: feeds a binary conv
    x = lq.layers.QuantConv2D(32, 3, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.MaxPool2D(name="last_pool")(x)  # float: feeds the float-weight classifier
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(10, input_quantizer="ste_sign", name="classifier")(x)
    model = tf.keras.Model(inputs, x)
    _randomize_batch_norm(model)
    pools = {p.layer: p for p in tfl.analyze(model).pools}
    assert not pools["last_pool"].binary and "float weights" in pools["last_pool"].reason
    report = tfl.convert(model, None)
    assert report.bmaxpool == report.expected_bmaxpool == 1
    assert report.verdict == "exact"


def test_float_twin_drops_quantizers_keeps_weights():
    model = small_bnn()
    twin = tfl.float_twin(model)
    for original, clone in zip(model.layers, twin.layers):
        assert type(original) is type(clone)
        assert getattr(clone, "input_quantizer", None) is None and getattr(clone, "kernel_quantizer", None) is None
        for a, b in zip(original.get_weights(), clone.get_weights()):
            np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype(np.float32)
    assert not np.allclose(twin(x, training=False), model(x, training=False))


def test_benchmark_records(converted):
    binary = tfl.benchmark(converted["path"], threads=1, runs=5, warmup=1, kernel="auto")
    assert binary.kernel in ("default", "indirect", "reference")
    assert binary.notes[0].startswith("auto kernel: " + binary.kernel)
    assert 0 < binary.low_ms <= binary.median_ms <= binary.high_ms and binary.spread == "p10-p90"
    assert binary.where == tfl.host_label() and platform.machine() in binary.where
    if platform.machine() == "x86_64":
        assert binary.where == "host: x86_64 (not ARM latency)"
    assert binary.size_bytes == os.path.getsize(converted["path"]) and binary.runs == 5
    floating = tfl.benchmark(converted["float_path"], threads=2, runs=3, warmup=0)
    assert floating.kernel == "xnnpack" and floating.median_ms > 0 and floating.threads == 2
    reference = tfl.benchmark(converted["path"], runs=2, warmup=0, kernel="reference")
    assert reference.kernel == "reference" and reference.notes == []
    comparison = tfl.compare(converted["path"], converted["float_path"], threads=1, runs=4, warmup=1)
    assert comparison.ratio == pytest.approx(comparison.binary.latency_ms / comparison.float.latency_ms)
    assert comparison.size_ratio == pytest.approx(converted["report"].size_ratio)
    assert comparison.binary.runs == comparison.float.runs == 4 and comparison.float.kernel == "xnnpack"
    assert any("interleaved" in note for note in comparison.binary.notes)
    separate = tfl.compare(converted["path"], converted["float_path"], runs=2, warmup=0, interleave=False)
    assert not any("interleaved" in note for note in separate.binary.notes) and separate.ratio > 0


def test_benchmark_bad_arguments(converted, tmp_path):
    with pytest.raises(ValueError, match="unknown kernel 'fast'; allowed: auto, default, indirect, reference"):
        tfl.benchmark(converted["path"], kernel="fast")
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        tfl.benchmark(converted["path"], threads=0)
    (tmp_path / "x.tflite").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        tfl.benchmark(tmp_path / "x.tflite")
    with pytest.raises(FileNotFoundError, match="no .tflite file"):
        tfl.benchmark(tmp_path / "missing.tflite")


def test_auto_kernel_skips_kernels_that_cannot_run(tmp_path):
    """Zero padding with 3 input channels: the reference kernel refuses (lce.md); auto skips it."""
    x = inputs = tf.keras.Input((8, 8, 3))
    x = lq.layers.QuantConv2D(32, 3, **{**BINARY, "pad_values": 0.0})(x)
    x = tf.keras.layers.BatchNormalization()(x)
    model = tf.keras.Model(inputs, tf.keras.layers.GlobalAveragePooling2D()(x))
    report = tfl.convert(model, tmp_path / "z.tflite")
    assert report.bconv == 1 and "reference" in report.kernel_failures
    assert "Zero-padding" in report.kernel_failures["reference"]
    result = tfl.benchmark(tmp_path / "z.tflite", runs=2, warmup=0, kernel="auto")
    assert result.kernel in ("default", "indirect") and "Zero-padding" in result.skipped["reference"]
    with pytest.raises(RuntimeError, match="kernel reference cannot run z.tflite: .*Zero-padding"):
        tfl.benchmark(tmp_path / "z.tflite", runs=2, kernel="reference")


def test_convert_command(converted, tmp_path, capsys):
    from lqbench import cli

    out = tmp_path / "cli.tflite"
    assert cli.main(["convert", str(converted["folder"] / "bnn.keras"), "--output", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["bconv"] == 3 and data["path"] == str(out) and out.exists()
    assert data["size_bytes"] == os.path.getsize(out)

    dense = tmp_path / "dense.keras"
    _dense_model().save(dense)
    assert cli.main(["convert", str(dense)]) == 0 and "dense_as_conv" in capsys.readouterr().out
    (tmp_path / "dense.tflite").unlink()
    assert cli.main(["convert", str(dense), "--no-rewrite"]) == 2
    captured = capsys.readouterr()
    assert "binary_dense (QuantDense)" in captured.err and "(no file written)" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert not (tmp_path / "dense.tflite").exists()
    assert cli.main(["convert", str(dense), "--no-rewrite", "--fallback", "any", "--no-verify"]) == 0
    assert "FALLBACK to float (avoidable): binary_dense" in capsys.readouterr().out
    assert cli.main(["convert", str(dense), "--no-rewrite", "--allow-fallback", "--no-verify"]) == 0
    capsys.readouterr()
    assert cli.main(["convert", str(tmp_path / "none.keras")]) == 2
    assert "no model at" in capsys.readouterr().err


def test_bench_command_on_host(converted, tmp_path, capsys):
    """A saved Keras model is converted on the fly, its float twin built automatically."""
    from lqbench import cli

    out_csv, out_json = tmp_path / "b.csv", tmp_path / "b.json"
    assert cli.main([
        "bench", str(converted["folder"] / "bnn.keras"), "--runs", "3",
        "--warmup", "1", "--threads", "1", "2", "--csv", str(out_csv), "--json", str(out_json),
    ]) == 0
    printed = capsys.readouterr().out
    assert "LceBconv2d x3" in printed  # the conversion report
    assert "not ARM latency" in printed or platform.machine() not in ("x86_64",)
    payload = json.loads(out_json.read_text())
    assert payload["conversion"]["bconv"] == 3
    assert payload["rows"][0]["size_ratio"] == pytest.approx(converted["report"].size_ratio, abs=0.01)
    assert [row["threads"] for row in payload["rows"]] == [1, 2]
    for row in payload["rows"]:
        assert row["binary_ms"] > 0 and row["float_ms"] > 0
        assert row["ratio"] == pytest.approx(row["binary_ms"] / row["float_ms"], rel=1e-2)
        assert row["kernel"] in ("default", "indirect", "reference")
    assert len(out_csv.read_text().splitlines()) == 3

# The zoo conversions (every conv model at a reduced size, verified) are in test_tflite_rewrite.py.


def test_bench_refuses_a_truncated_flatbuffer_in_one_line(converted, tmp_path):
    """Issue #16 row 3: a truncated .tflite made the interpreter segfault (exit 139, no message)."""
    import subprocess
    import sys

    whole = pathlib.Path(converted["path"]).read_bytes()
    for cut in (len(whole) // 2, len(whole) - 100, 40):
        (tmp_path / f"cut{cut}.tflite").write_bytes(whole[:cut])
        with pytest.raises(ValueError, match="truncated or corrupt TFLite flatbuffer"):
            tfl.check_flatbuffer((tmp_path / f"cut{cut}.tflite").read_bytes(), f"cut{cut}.tflite")
    tfl.check_flatbuffer(whole)  # the whole file passes
    truncated = tmp_path / f"cut{len(whole) // 2}.tflite"
    run = subprocess.run([sys.executable, "-m", "lqbench.cli", "bench", str(truncated), "--runs", "1"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, (run.returncode, run.stderr[-2000:])
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lqbench bench: error: ") and "truncated or corrupt" in lines[0]


# --------------------------------------------------------------------------- to_flatbuffer's fast path


def _lce_convert_keras_model(model, target="arm"):
    """What `to_flatbuffer` called before: LCE's own Keras conversion (its graphdef-fallback warning silenced)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Saved-model conversion failed")
        return lce.convert_keras_model(model, target=target)


def _not_called(*args, **kwargs):
    raise AssertionError("lce.convert_keras_model ran: the fast path was not taken")


def _zoo(name, **kwargs):
    import lqbench.models as models

    tf.keras.utils.set_random_seed(0)
    return models.build(name, (32, 32, 3), 10, binarization=lqbench.Binarization(), **kwargs)


def _first_blocks(model, last):
    """``model`` up to layer ``last`` (the whole zoo model converts twice in ~16 s, 5 blocks in ~4 s;
    its whole-model byte identity is in ``bench/conversion_time.py``)."""
    return tf.keras.Model(model.input, model.get_layer(last).output)


# a binary conv net (max-pools, BN), one with skips, depthwise layers LCE keeps float, a dense
# net the rewrite turns into binary convolutions; each as `convert` hands it to the converter
FAST_CASES = {
    "small_bnn-arm": (small_bnn, "arm", {"LceBconv2d": 3, "LceBMaxPool2d": 2}),
    "small_bnn-xcore": (small_bnn, "xcore", {"LceBconv2d": 3}),
    "resnet20-skips": (lambda: _zoo("resnet20", depth=8, width=8), "arm", {"LceBconv2d": 6, "ADD": 6}),
    "mobilenet_v2-depthwise": (lambda: _first_blocks(_zoo("mobilenet_v2", width_multiplier=0.35), "block5_add"), "arm",
                               {"LceBconv2d": 9, "DEPTHWISE_CONV_2D": 5, "ADD": 2}),
    "binarynet_mlp-dense_as_conv": (lambda: _zoo("binarynet_mlp", hidden_units=[64, 64]), "arm", {"LceBconv2d": 1}),
}


@pytest.mark.parametrize("build,target,expected_ops", FAST_CASES.values(), ids=FAST_CASES)
def test_fast_conversion_is_byte_identical_to_lce_convert_keras_model(build, target, expected_ops, monkeypatch):
    """`to_flatbuffer` saves only the serving function: same operators in the same order (LCE's
    custom ops included), same inputs and outputs, same outputs, and in fact the same bytes as
    ``lce.convert_keras_model``, which saves the whole Keras model."""
    model = tfl.audit(build(), target).model
    with monkeypatch.context() as patch, warnings.catch_warnings():
        patch.setattr(lce, "convert_keras_model", _not_called)
        warnings.simplefilter("error", tfl.ConversionWarning)  # no fallback either
        fast = tfl.to_flatbuffer(model, target)
    old = _lce_convert_keras_model(model, target)
    ops = analysis.op_list(fast)
    assert ops == analysis.op_list(old)
    assert {op: ops.count(op) for op in expected_ops} == expected_ops, analysis.op_counts(fast)
    assert "LceQuantize" in ops
    fast_interpreter, old_interpreter = verification._interpreter(fast), verification._interpreter(old)
    for attribute in ("input_shapes", "input_types", "output_shapes", "output_types"):
        assert getattr(fast_interpreter, attribute) == getattr(old_interpreter, attribute), attribute
    assert fast_interpreter.input_shapes == [(1, *model.input_shape[1:])]
    if target == "arm":  # the xcore flatbuffer's ops have no host kernels
        x = verification.random_inputs(model, 2)[0]
        for sample in x:
            np.testing.assert_array_equal(fast_interpreter.predict(sample[None]), old_interpreter.predict(sample[None]))
    assert fast == old


def test_dense_net_case_is_rewritten():
    """The binarynet_mlp case above really goes through the dense-as-conv rewrite."""
    checked = tfl.audit(FAST_CASES["binarynet_mlp-dense_as_conv"][0]())
    assert [step.kind for step in checked.rewrites.rewrites] == ["dense_as_conv"]


def test_conversion_falls_back_to_lce_convert_keras_model_when_the_fast_path_raises(monkeypatch):
    import sys

    convert_module = sys.modules["lqbench.tflite.convert"]
    model = small_bnn()

    def fails(model, target):
        raise RuntimeError("saving failed\nsecond line")

    monkeypatch.setattr(convert_module, "_saved_model_flatbuffer", fails)
    with pytest.warns(tfl.ConversionWarning, match=r"fast conversion failed \(RuntimeError: saving failed\); "
                                                   "converting with larq_compute_engine.convert_keras_model"):
        fallback = tfl.to_flatbuffer(model)
    assert fallback == _lce_convert_keras_model(model)
    assert analysis.op_counts(fallback)["LceBconv2d"] == 3
