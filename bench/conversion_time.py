"""Time `lqbench.tflite.to_flatbuffer` against ``lce.convert_keras_model`` (what it called before)
on the zoo models the tests convert, and check the two flatbuffers are byte-identical.

Each model is built untrained (W1A1, 32x32x3 inputs, 10 classes) at the reduced size of
``tests/test_tflite_rewrite.py::ZOO_SMALL`` and rewritten as `lqbench.tflite.convert` rewrites
it (`lqbench.tflite.audit`); a tiny model converts first so that neither path pays the warm-up.
Prints a Markdown table (seconds per conversion, one conversion each, fast path first).
A measurement, not a test (pytest does not collect it); run it alone on the machine:

    python bench/conversion_time.py [MODEL ...]
"""
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import lqbench  # noqa: E402  (before TensorFlow: Keras 2)
import lqbench.models as models  # noqa: E402
import lqbench.tflite as tfl  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
from test_tflite_rewrite import ZOO_SMALL  # noqa: E402

convert_module = sys.modules["lqbench.tflite.convert"]


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main(names):
    warm = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])
    tfl.to_flatbuffer(warm), convert_module._keras_model_flatbuffer(warm, "arm")
    print("| model (test size) | layers | lce.convert_keras_model (s) | to_flatbuffer (s) | speed-up | identical |")
    print("|---|---:|---:|---:|---:|---|")
    totals = [0.0, 0.0]
    for name in names:
        tf.keras.utils.set_random_seed(0)
        model = models.build(name, (32, 32, 3), 10, binarization=lqbench.Binarization(), **ZOO_SMALL[name])
        model = tfl.audit(model).model
        new, t_new = timed(tfl.to_flatbuffer, model)
        old, t_old = timed(convert_module._keras_model_flatbuffer, model, "arm")
        totals[0] += t_old
        totals[1] += t_new
        args = ", ".join(f"{k}={v}" for k, v in ZOO_SMALL[name].items())
        print(f"| {name} ({args}) | {len(model.layers)} | {t_old:.2f} | {t_new:.2f} | {t_old / t_new:.1f}x "
              f"| {'yes' if new == old else 'NO'} |", flush=True)
    print(f"| total | | {totals[0]:.2f} | {totals[1]:.2f} | {totals[0] / totals[1]:.1f}x | |")


if __name__ == "__main__":
    unknown = [n for n in sys.argv[1:] if n not in ZOO_SMALL]
    if unknown:
        sys.exit(f"unknown model(s) {', '.join(unknown)}; allowed: {', '.join(ZOO_SMALL)}")
    main(sys.argv[1:] or list(ZOO_SMALL))
