"""lqbench: train, compare and deploy binary neural networks with Larq.

Importing lqbench selects Keras 2 (tf-keras) for TensorFlow, as Larq requires; import it
before ``tensorflow`` (or export ``TF_USE_LEGACY_KERAS=1``). Importing lqbench does not load
TensorFlow itself (``lqbench --help`` answers at once); the modules that train do.
"""
from lqbench._keras_env import KerasVersionError, ensure_legacy_keras, integral_seed_draws, skip_autograph_for_tf_keras
from lqbench._lazy import after_import

ensure_legacy_keras()

__version__ = "0.1.0"

from lqbench.binarization import Binarization  # noqa: E402
from lqbench.errors import LqbenchError  # noqa: E402

# As soon as TensorFlow is imported: stop AutoGraph from converting tf-keras's own code, and let
# tf-keras's seeded initializers run on Python 3.12.
after_import("tensorflow", lambda _: (skip_autograph_for_tf_keras(), integral_seed_draws()))

__all__ = ["Binarization", "KerasVersionError", "LqbenchError", "__version__"]
