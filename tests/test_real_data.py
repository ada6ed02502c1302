"""lqbench.data on the real datasets in ../shared/data, read exactly as a user's original files.

MNIST's counts and splits are in `test_data.py`; this file covers Fashion-MNIST (official IDX
content), CIFAR-10 (the JPEG q75 copy, written into a temporary folder in the official
python-batch layout by the converter that ships with it, since ../shared is read-only in CI)
and ImageNette (the 224 px JPEG copy of imagenette2, official split). When ../shared/data is
absent every test here skips and says why.
"""
import collections
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import lqbench  # noqa: F401  (tf-keras before TensorFlow)
import lqbench.data as data
from lqbench.data import datasets

SHARED_DATA = (pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data").resolve()

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
# ../shared/data/README.md: per-class counts of the imagenette2 copy, in WordNet-id order.
IMAGENETTE_TRAIN = [963, 955, 993, 858, 941, 956, 961, 931, 951, 960]
IMAGENETTE_VAL = [387, 395, 357, 386, 409, 394, 389, 419, 399, 390]
IMAGENETTE_CLASSES = ("tench", "English springer", "cassette player", "chain saw", "church",
                      "French horn", "garbage truck", "gas pump", "golf ball", "parachute")


def _shared(sub: str) -> pathlib.Path:
    path = SHARED_DATA / sub
    if not path.exists():
        pytest.skip(f"{path} not found: the real-data tests need ../shared/data (see its README)")
    return path


def _counts(labels, num_classes=10):
    counts = collections.Counter(int(v) for v in labels)
    return [counts[c] for c in range(num_classes)]


def _check_split_partition(name, data_dir, num_classes, train_counts, test_counts):
    """train + val is the official train split, stratified 10% val, disjoint; test official."""
    x_train, y_train = data.load_arrays(name, "train", data_dir=data_dir, seed=0)
    x_val, y_val = data.load_arrays(name, "val", data_dir=data_dir, seed=0)
    _, y_test = data.load_arrays(name, "test", data_dir=data_dir, seed=0)
    assert [a + b for a, b in zip(_counts(y_train, num_classes), _counts(y_val, num_classes))] == train_counts
    assert _counts(y_test, num_classes) == test_counts
    # stratified: every class holds 10% (+-1) of its official train images in val
    for c, n in enumerate(train_counts):
        assert abs(_counts(y_val, num_classes)[c] - 0.1 * n) <= 1
    # disjoint: no val image is also a train image (hash the pixel rows)
    train_hashes = {hash(row.tobytes()) for row in x_train.reshape(len(x_train), -1)}
    overlap = sum(hash(row.tobytes()) in train_hashes for row in x_val.reshape(len(x_val), -1))
    # duplicates exist inside the official datasets themselves; allow a handful, not a split leak
    assert overlap <= 0.005 * len(x_val)
    # another seed chooses another val split
    _, y_val1 = data.load_arrays(name, "val", data_dir=data_dir, seed=1)
    assert len(y_val1) == len(y_val)


def _check_augmented_batch(name, data_dir, shape, batch=32, image_size=None):
    meta = data.info(name, data_dir=data_dir)
    ds = data.load(name, "train", batch_size=batch, data_dir=data_dir, augment=True, seed=3,
                   image_size=image_size)
    x, y = next(iter(ds))
    assert tuple(x.shape) == (batch,) + shape and x.dtype.name == "float32"
    assert y.dtype.name == "int32" and 0 <= int(np.min(y)) and int(np.max(y)) < meta.num_classes
    x = x.numpy()
    assert np.isfinite(x).all()
    # normalised per channel: a batch of real images is roughly zero-mean, unit-variance
    assert abs(float(x.mean())) < 0.6 and 0.4 < float(x.std()) < 1.8
    # the same seed gives the same first augmented batch; another seed another one
    again = next(iter(data.load(name, "train", batch_size=batch, data_dir=data_dir, augment=True,
                                seed=3, image_size=image_size)))[0].numpy()
    other = next(iter(data.load(name, "train", batch_size=batch, data_dir=data_dir, augment=True,
                                seed=4, image_size=image_size)))[0].numpy()
    np.testing.assert_array_equal(x, again)
    assert not np.array_equal(x, other)


# ------------------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_from_official_files():
    root = _shared("fashion_mnist").parent
    meta = data.info("fashion_mnist", data_dir=root)
    assert meta.source == "files"
    assert meta.input_shape == (28, 28, 1) and meta.class_names == FASHION_CLASSES
    assert meta.sizes == {"train": 54000, "val": 6000, "test": 10000}
    assert meta.horizontal_flip  # clothes may be mirrored, digits may not
    _check_split_partition("fashion_mnist", root, 10, [6000] * 10, [1000] * 10)
    _check_augmented_batch("fashion_mnist", root, (28, 28, 1))


# ------------------------------------------------------------------------------ CIFAR-10


@pytest.fixture(scope="module")
def cifar10_dir(tmp_path_factory):
    """The JPEG copy converted to the official python-batch layout in a temporary folder."""
    converter = _shared("cifar10-jpeg") / "to_python_batches.py"
    out = tmp_path_factory.mktemp("cifar10")
    subprocess.run([sys.executable, str(converter), str(out)], check=True, capture_output=True,
                   timeout=300)
    assert sorted(p.name for p in (out / "cifar-10-batches-py").iterdir()) == sorted(
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"])
    return out


def test_cifar10_jpeg_copy_through_the_official_layout(cifar10_dir):
    meta = data.info("cifar10", data_dir=cifar10_dir)
    assert meta.source == "files"
    assert meta.input_shape == (32, 32, 3) and meta.class_names == CIFAR10_CLASSES
    assert meta.sizes == {"train": 45000, "val": 5000, "test": 10000}
    _check_split_partition("cifar10", cifar10_dir, 10, [5000] * 10, [1000] * 10)
    _check_augmented_batch("cifar10", cifar10_dir, (32, 32, 3))


# ---------------------------------------------------------------------------- ImageNette


def test_imagenette_jpeg_copy_official_split_and_class_order(monkeypatch):
    root = _shared("imagenette").parent
    meta = data.info("imagenette", data_dir=root)
    assert meta.source == "files"
    assert meta.input_shape == (224, 224, 3)
    assert meta.class_names == IMAGENETTE_CLASSES
    assert meta.sizes == {"train": 9469 - 947, "val": 947, "test": 3925}
    # labels per split without decoding 13394 JPEGs: the scanned file lists (what `load` reads)
    raw = datasets._resolve(datasets._spec("imagenette"), root, download=False)
    assert _counts(raw.train[1]) == IMAGENETTE_TRAIN
    assert _counts(raw.test[1]) == IMAGENETTE_VAL
    assert all("/val/" in str(p) for p in raw.test[0]) and all("/train/" in str(p) for p in raw.train[0])
    _, y_train = datasets._split(raw, "train", 0)
    _, y_val = datasets._split(raw, "val", 0)
    assert [a + b for a, b in zip(_counts(y_train), _counts(y_val))] == IMAGENETTE_TRAIN
    assert all(abs(v - 0.1 * n) <= 1 for v, n in zip(_counts(y_val), IMAGENETTE_TRAIN))
    # one augmented batch, decoded from disk at the paper's 224 px and at a CPU-scale 64 px
    # (a 1 MB budget keeps the 64 px copy on disk too instead of decoding all 13394 images)
    monkeypatch.setenv("LQBENCH_MEMORY_MB", "1")
    _check_augmented_batch("imagenette", root, (224, 224, 3), batch=8)
    _check_augmented_batch("imagenette", root, (64, 64, 3), batch=8, image_size=(64, 64))
