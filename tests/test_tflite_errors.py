"""Bad user input to lqbench.tflite raises the project's one-line errors (issue #15).

Each case must raise an `LqbenchError` that is also the matching builtin (`ValueError` for an
impossible value or unknown name, `TypeError` for a wrong type), with a one-line message naming
the value. None of them converts or runs a model.
"""
import pytest

import lqbench  # noqa: F401  (Keras 2 first)
import tensorflow as tf

from lqbench.errors import ConfigTypeError, ConfigValueError, LqbenchError
from lqbench import tflite
from lqbench.tflite import analysis, device, rewriting, verification


def _model(shape=(4,)):
    inputs = tf.keras.Input(shape=shape)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(2)(inputs))


def _mixed_precision_model():
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        return _model()
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def _not_tflite(tmp_path):
    path = tmp_path / "x.tflite"
    path.write_bytes(b"\0" * 32)
    return path


CASES = [
    ("analyze target", lambda p: analysis.analyze(_model(), target="x86"), ConfigValueError, "unknown target 'x86'"),
    ("audit target", lambda p: tflite.audit(_model(), target="x86"), ConfigValueError, "unknown target 'x86'"),
    ("audit model", lambda p: tflite.audit("model.h5"), ConfigTypeError, "needs a tf.keras.Model, got str"),
    ("audit rewrite", lambda p: tflite.audit(_model(), rewrite="yes"), ConfigTypeError, "rewrite must be True"),
    ("to_flatbuffer target", lambda p: tflite.to_flatbuffer(_model(), target="x86"), ConfigValueError,
     "unknown target 'x86'; allowed: arm, xcore"),
    ("to_flatbuffer model", lambda p: tflite.to_flatbuffer("model.h5"), ConfigTypeError,
     "LCE converts a tf.keras.Model, got str"),
    ("to_flatbuffer mixed precision", lambda p: tflite.to_flatbuffer(_mixed_precision_model()), ConfigValueError,
     "dtype policy 'mixed_float16' \\(allowed: float32\\)"),
    ("rewrite target", lambda p: rewriting.rewrite(_model(), target="x86"), ConfigValueError, "unknown target"),
    ("rewrite kinds", lambda p: rewriting.rewrite(_model(), kinds=("fold",)), ConfigValueError, "unknown rewrite"),
    ("fallback policy", lambda p: tflite.fallback_policy("maybe"), ConfigValueError,
     "unknown fallback policy 'maybe'; allowed: unavoidable, any, none"),
    ("fallback twice", lambda p: tflite.convert(_model(), None, fallback="any", allow_fallback=True),
     ConfigValueError, "pass fallback='any' or allow_fallback=True, not both"),
    ("allow_fallback type", lambda p: tflite.fallback_policy(allow_fallback="yes"), ConfigTypeError,
     "allow_fallback must be True or False, got 'yes'"),
    ("rewrite kinds in convert", lambda p: tflite.audit(_model(), rewrite=["fold"]), ConfigValueError,
     "unknown rewrite\\(s\\) 'fold'; allowed: sign_at_zero_as_sign"),
    ("bench kernel", lambda p: tflite.benchmark(_not_tflite(p), kernel="fast"), ConfigValueError, "unknown kernel"),
    ("bench threads", lambda p: tflite.benchmark(_not_tflite(p), threads=0), ConfigValueError, "threads must be"),
    ("bench runs", lambda p: tflite.benchmark(_not_tflite(p), runs=0), ConfigValueError, "runs must be"),
    ("bench warmup", lambda p: tflite.benchmark(_not_tflite(p), warmup=-1), ConfigValueError, "warmup must be"),
    ("bench file", lambda p: tflite.benchmark(_not_tflite(p)), ConfigValueError, "is not a TFLite flatbuffer"),
    ("calibrate", lambda p: verification.verify(_model(), b"", None, calibrate="maybe"), ConfigValueError,
     "unknown calibrate 'maybe'"),
    ("interpreter kernel", lambda p: verification._interpreter(b"", kernel="fast"), ConfigValueError,
     "unknown binary kernel 'fast'"),
    ("unknown input shape", lambda p: verification.random_inputs(_model((None, 3))), ConfigValueError,
     "unknown dimensions"),
    ("device kernel", lambda p: device.benchmark_flags("m.tflite", kernel="fast"), ConfigValueError, "unknown kernel"),
    ("device counts", lambda p: device.benchmark_flags("m.tflite", threads=0), ConfigValueError, "threads >= 1"),
    ("device spec", lambda p: device.runner_for("usb", "lce_benchmark_model"), ConfigValueError,
     "unknown device 'usb'"),
    ("ssh host", lambda p: device.SshRunner("lce_benchmark_model", host="-oProxyCommand=x"), ConfigValueError,
     "invalid ssh host"),
]


@pytest.mark.parametrize("call, error, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_a_one_line_lqbench_error(call, error, match, tmp_path):
    with pytest.raises(error, match=match) as raised:
        call(tmp_path)
    assert isinstance(raised.value, LqbenchError)
    assert isinstance(raised.value, TypeError if error is ConfigTypeError else ValueError)
    assert "\n" not in str(raised.value)


def test_runtime_failures_are_not_user_errors():
    # the tool's output without a timing line is the device's failure, not the user's input
    with pytest.raises(ValueError) as raised:
        device.parse_benchmark_output("ERROR: unresolved custom op\n")
    assert not isinstance(raised.value, LqbenchError)


def test_cli_fallback_choices_are_the_policies():
    from lqbench.commands._types import FALLBACK_CHOICES

    assert FALLBACK_CHOICES == tflite.FALLBACK_POLICIES and tflite.fallback_policy() == "unavoidable"
    assert tflite.fallback_policy(allow_fallback=True) == "any" and tflite.fallback_policy(allow_fallback=False) == "none"
    assert tflite.fallback_policy(True) == "any" and tflite.fallback_policy(False) == "none"  # enforce(report, True)
