"""Make sure TensorFlow runs with Keras 2 (``tf-keras``), which Larq needs.

TensorFlow 2.16 ships Keras 3 as ``tf.keras`` unless the environment variable
``TF_USE_LEGACY_KERAS=1`` is set *before TensorFlow is first imported*. Larq 0.14 and
Larq Compute Engine 0.16 only work with Keras 2, so lqbench sets the variable on import
and refuses to continue when TensorFlow was already imported with Keras 3.
"""
import os
import sys

LEGACY_KERAS_VARIABLE = "TF_USE_LEGACY_KERAS"


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
    import tensorflow as tf  # already imported: this is only a lookup

    if tf.keras.__name__.startswith("tf_keras"):
        return
    keras_version = tf.keras.version() if hasattr(tf.keras, "version") else "3"
    raise KerasVersionError(
        "TensorFlow was imported with Keras "
        f"{keras_version} before lqbench; Larq needs Keras 2. Import lqbench before "
        "tensorflow, or set TF_USE_LEGACY_KERAS=1 in the environment before starting Python."
    )
