"""Make sure TensorFlow runs with Keras 2 (``tf-keras``), which Larq needs.

TensorFlow 2.16 ships Keras 3 as ``tf.keras`` unless the environment variable
``TF_USE_LEGACY_KERAS=1`` is set *before TensorFlow is first imported*. Larq 0.14 and
Larq Compute Engine 0.16 only work with Keras 2, so lqbench sets the variable on import
and refuses to continue when TensorFlow was already imported with Keras 3.
"""
import inspect
import os
import pathlib
import random
import sys

LEGACY_KERAS_VARIABLE = "TF_USE_LEGACY_KERAS"


def uses_tf_keras(tf) -> bool:
    """Whether ``tf.keras`` is tf-keras (Keras 2), judged by where its package lives."""
    return "tf_keras" in pathlib.Path(getattr(tf.keras, "__file__", "") or "").parts


class KerasVersionError(ImportError):
    """TensorFlow was imported with Keras 3 before lqbench could select Keras 2."""


def ensure_legacy_keras() -> None:
    """Select tf-keras (Keras 2) for TensorFlow, or raise if it is too late to do so."""
    tf_already_imported = "tensorflow" in sys.modules
    if not tf_already_imported:
        os.environ[LEGACY_KERAS_VARIABLE] = "1"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        return
    if os.environ.get(LEGACY_KERAS_VARIABLE, "").lower() in ("1", "true", "yes"):
        return
    tf = sys.modules["tensorflow"]  # already imported: this is only a lookup

    if uses_tf_keras(tf):
        return
    keras_version = tf.keras.version() if hasattr(tf.keras, "version") else "3"
    raise KerasVersionError(
        "TensorFlow was imported with Keras "
        f"{keras_version} before lqbench; Larq needs Keras 2. Import lqbench before "
        "tensorflow, or set TF_USE_LEGACY_KERAS=1 in the environment before starting Python."
    )


def skip_autograph_for_tf_keras() -> None:
    """Stop AutoGraph from converting tf-keras's own code (measured: 19 s -> 4 s first epoch).

    AutoGraph never converts the ``keras`` package (it is in TensorFlow's
    ``CONVERSION_RULES``), but tf-keras lives in ``tf_keras``, which the rules miss: tracing a
    training function then runs all of tf-keras's internals through AutoGraph. Adding the same
    rule for ``tf_keras`` restores Keras 2's behaviour; user code (``train_step`` overrides,
    Larq quantizers) is still converted.
    """
    from tensorflow.python.autograph.core import config

    rule = config.DoNotConvert("tf_keras")
    if not any(getattr(r, "_prefix", None) == "tf_keras" for r in config.CONVERSION_RULES):
        config.CONVERSION_RULES = tuple(config.CONVERSION_RULES) + (rule,)


def integral_seed_draws() -> None:
    """Let tf-keras's seeded initializers run on Python 3.12, with the same seeds as on 3.10 and 3.11.

    After ``tf.keras.utils.set_random_seed(s)``, tf-keras 2.16 draws the seed of every initializer
    and random layer with ``generator.randint(1, 1e9)``: a float bound, deprecated since Python
    3.10 and a ``TypeError`` from 3.12 (keras-team/tf-keras#803, still in 2.17), so nothing with
    a seeded initializer could be built there. When the installed tf-keras has that draw, this
    replaces it by ``randint(1, 10**9)``: Python 3.10 and 3.11 truncate the float bound to that
    same integer, so every version draws the same seeds from the same ``s``.
    """
    from tf_keras.src import backend

    create = backend.RandomGenerator._create_seed
    try:
        needed = "randint(1, 1e9)" in inspect.getsource(create)
    except (OSError, TypeError):  # no source to read: leave tf-keras as it is
        needed = False
    if not needed:
        return

    def _create_seed(self, user_specified_seed):
        if user_specified_seed is not None:
            return user_specified_seed
        generator = getattr(backend._SEED_GENERATOR, "generator", None)
        return (generator or random).randint(1, 10**9)

    _create_seed.__doc__ = create.__doc__
    backend.RandomGenerator._create_seed = _create_seed
