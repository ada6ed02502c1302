"""Shared test setup: Keras 2, real MNIST from ../shared/data, small and deterministic."""
import os
import pathlib

import pytest

import lqbench  # noqa: F401  (selects tf-keras before TensorFlow is imported)

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()

if "LQBENCH_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
    os.environ["LQBENCH_DATA_DIR"] = str(SHARED_DATA)

# Never let a test wait on a network download.
os.environ.setdefault("LQBENCH_OFFLINE", "1")


def _mnist_dir():
    root = os.environ.get("LQBENCH_DATA_DIR")
    if root and (pathlib.Path(root) / "mnist" / "train-images-idx3-ubyte.gz").exists():
        return pathlib.Path(root) / "mnist"
    return None


@pytest.fixture(scope="session")
def mnist_dir():
    """Folder with the four official MNIST .gz files; the test skips with a reason if absent."""
    path = _mnist_dir()
    if path is None:
        pytest.skip("real MNIST not found: set LQBENCH_DATA_DIR to a folder holding mnist/*.gz")
    return path


@pytest.fixture(autouse=True)
def _seed():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(1234)
    yield
    tf.keras.backend.clear_session()
