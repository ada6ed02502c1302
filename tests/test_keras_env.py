"""Importing lqbench selects Keras 2 and keeps AutoGraph out of tf-keras's internals."""
import os
import subprocess
import sys

import lqbench


def test_tf_keras_is_selected():
    import tensorflow as tf

    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
    assert lqbench._keras_env.uses_tf_keras(tf)
    assert tf.keras.layers.Dense.__module__.startswith("tf_keras")


def test_keras3_import_first_raises_a_clear_error():
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    code = "import tensorflow as tf; tf.keras.layers; import lqbench"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "Larq needs Keras 2. Import lqbench before tensorflow" in done.stderr


def test_autograph_skips_tf_keras_once():
    from tensorflow.python.autograph.core import config

    lqbench._keras_env.skip_autograph_for_tf_keras()  # a second call adds nothing
    rules = [r for r in config.CONVERSION_RULES if getattr(r, "_prefix", None) == "tf_keras"]
    assert len(rules) == 1
    assert rules[0].get_action(sys.modules["tf_keras"]).name == "DO_NOT_CONVERT"
