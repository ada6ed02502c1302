"""lqbench: train, compare and deploy binary neural networks with Larq.

Importing lqbench selects Keras 2 (tf-keras) for TensorFlow, as Larq requires; import it
before ``tensorflow`` (or export ``TF_USE_LEGACY_KERAS=1``).
"""
from lqbench._keras_env import KerasVersionError, ensure_legacy_keras, skip_autograph_for_tf_keras

ensure_legacy_keras()

__version__ = "0.1.0"

from lqbench.binarization import Binarization  # noqa: E402

skip_autograph_for_tf_keras()

from lqbench._keras_env import integral_seed_draws  # noqa: E402

integral_seed_draws()  # seeded tf-keras initializers on Python 3.12

__all__ = ["Binarization", "KerasVersionError", "__version__"]
