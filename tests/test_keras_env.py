"""Importing lqbench selects Keras 2 and keeps AutoGraph out of tf-keras's internals."""
import os
import subprocess
import sys

import numpy as np

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


def test_seeded_initializers_draw_integral_seeds_on_every_python():
    # tf-keras 2.16 drew randint(1, 1e9): a DeprecationWarning on 3.10/3.11, a TypeError on 3.12
    import random
    import warnings

    import tensorflow as tf
    from tf_keras.src import backend

    tf.keras.utils.set_random_seed(5)
    expected = random.Random(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        draws = [backend.RandomGenerator(None)._create_seed(None) for _ in range(3)]
        assert draws == [expected.randint(1, 10**9) for _ in range(3)]
        assert backend.RandomGenerator(None)._create_seed(7) == 7
        tf.keras.utils.set_random_seed(5)
        first = tf.keras.layers.Dense(4, kernel_initializer="glorot_uniform")
        first.build((None, 3))
    tf.keras.utils.set_random_seed(5)
    again = tf.keras.layers.Dense(4, kernel_initializer="glorot_uniform")
    again.build((None, 3))
    np.testing.assert_array_equal(first.kernel.numpy(), again.kernel.numpy())
