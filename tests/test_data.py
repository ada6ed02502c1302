"""lqbench.data on real MNIST and the embedded digits: splits, pipelines, augmentation."""
import collections
import math

import numpy as np
import pytest

import lqbench  # noqa: F401  (tf-keras before TensorFlow)
import lqbench.data as data
import tensorflow as tf
from lqbench.data import pipeline
from lqbench.data.splits import stratified_holdout

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def _hashes(x):
    return [hash(row.tobytes()) for row in x]


def _collect(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


# ------------------------------------------------------------------------------- MNIST


def test_mnist_arrays_sizes_dtypes_and_test_class_counts(mnist_dir):
    sizes = {}
    for split in ("train", "val", "test"):
        x, y = data.load_arrays("mnist", split)
        assert x.dtype == np.uint8 and x.shape[1:] == (28, 28, 1)
        assert y.dtype == np.int32 and y.shape == (x.shape[0],)
        sizes[split] = len(y)
    assert sizes == {"train": 54000, "val": 6000, "test": 10000}
    assert np.bincount(data.load_arrays("mnist", "test")[1]).tolist() == MNIST_TEST_COUNTS
    meta = data.info("mnist")
    assert meta.sizes == sizes and meta.source == "files" and meta.input_shape == (28, 28, 1)
    assert meta.num_classes == 10 and not meta.horizontal_flip


def test_mnist_val_is_stratified_disjoint_and_seeded(mnist_dir):
    train, val = data.load_arrays("mnist", "train", seed=0), data.load_arrays("mnist", "val", seed=0)
    # stratified: every class has 10% of its official train count, to within one image
    expected = 0.1 * np.asarray(MNIST_TRAIN_COUNTS)
    assert np.all(np.abs(np.bincount(val[1], minlength=10) - expected) < 1)
    # disjoint, and together exactly the official 60000 training images (MNIST train has no duplicates)
    h_train, h_val = _hashes(train[0]), _hashes(val[0])
    assert not set(h_train) & set(h_val)
    assert len(set(h_train) | set(h_val)) == 60000
    # labels travel with their images: train+val label counts are the official ones
    assert (np.bincount(train[1]) + np.bincount(val[1])).tolist() == MNIST_TRAIN_COUNTS
    # same seed -> same split; another seed -> another split, same size
    assert _hashes(data.load_arrays("mnist", "val", seed=0)[0]) == h_val
    other = _hashes(data.load_arrays("mnist", "val", seed=1)[0])
    assert len(other) == 6000 and len(set(other) & set(h_val)) < 1500  # ~600 expected by chance
    # the test split never depends on the seed
    assert _hashes(data.load_arrays("mnist", "test", seed=3)[0]) == _hashes(data.load_arrays("mnist", "test")[0])


def test_mnist_pipeline_normalisation_and_epoch(mnist_dir):
    x_raw, y_raw = data.load_arrays("mnist", "test")
    x, y = _collect(data.load("mnist", "test", batch_size=1000))  # no shuffle for test
    assert x.dtype == np.float32 and x.shape == (10000, 28, 28, 1) and y.dtype == np.int32
    expected = (x_raw.astype(np.float64) / 255.0 - 0.1307) / 0.3081
    np.testing.assert_allclose(x, expected, atol=1e-5)
    np.testing.assert_array_equal(y, y_raw)
    assert math.isclose(x.min(), -0.1307 / 0.3081, rel_tol=1e-5)
    assert math.isclose(x.max(), (1 - 0.1307) / 0.3081, rel_tol=1e-5)
    # MNIST's statistics are those of its training set: normalised train data ~ N(0, 1)
    train = data.load("mnist", "train", batch_size=4096)
    n, total, total_sq, labels = 0, 0.0, 0.0, collections.Counter()
    first_order = None
    for xb, yb in train:
        assert xb.shape[1:] == (28, 28, 1)
        if first_order is None:
            first_order = yb.numpy()[:50].copy()
        n += xb.shape[0]
        total += float(tf.reduce_sum(tf.cast(xb, tf.float64)))
        total_sq += float(tf.reduce_sum(tf.square(tf.cast(xb, tf.float64))))
        labels.update(yb.numpy().tolist())
    assert n == 54000
    mean = total / (n * 784)
    std = math.sqrt(total_sq / (n * 784) - mean**2)
    assert abs(mean) < 0.01 and abs(std - 1) < 0.01
    assert [labels[c] for c in range(10)] == np.bincount(data.load_arrays("mnist", "train")[1]).tolist()
    # the train split is shuffled, and reshuffled at the next epoch
    assert not np.array_equal(first_order, data.load_arrays("mnist", "train")[1][:50])
    assert not np.array_equal(first_order, next(iter(train))[1].numpy()[:50])


# ------------------------------------------------------------------------------ digits


def test_digits_sizes_fixed_test_split_and_determinism():
    sizes = {s: len(data.load_arrays("digits", s)[1]) for s in ("train", "val", "test")}
    assert sizes == {"train": 1294, "val": 144, "test": 359}
    assert data.info("digits").sizes == sizes and data.info("digits").source == "embedded"
    x0, _ = data.load_arrays("digits", "test", seed=0)
    x7, _ = data.load_arrays("digits", "test", seed=7)
    np.testing.assert_array_equal(x0, x7)  # the test split ignores seed
    v0 = _hashes(data.load_arrays("digits", "val", seed=0)[0])
    assert v0 == _hashes(data.load_arrays("digits", "val", seed=0)[0])
    assert v0 != _hashes(data.load_arrays("digits", "val", seed=1)[0])
    assert data.load_arrays("digits", "train")[0].max() == 16
    # same seed -> the same shuffled batches; another seed -> another order
    first = lambda s: next(iter(data.load("digits", "train", 64, seed=s)))[1].numpy()  # noqa: E731
    np.testing.assert_array_equal(first(3), first(3))
    assert not np.array_equal(first(3), first(4))


def test_digits_augment_changes_images_keeps_shape_and_is_seeded():
    plain = _collect(data.load("digits", "train", 100, seed=5, shuffle=False))
    ds = data.load("digits", "train", 100, augment=True, seed=5, shuffle=False)
    epoch1, epoch2 = _collect(ds), _collect(ds)
    again = _collect(data.load("digits", "train", 100, augment=True, seed=5, shuffle=False))
    assert epoch1[0].shape == plain[0].shape == (1294, 8, 8, 1)
    assert ds.element_spec[0].shape.as_list() == [None, 8, 8, 1]  # static image size kept (synthetic batches)
    np.testing.assert_array_equal(epoch1[1], plain[1])
    assert np.mean(np.abs(epoch1[0] - plain[0])) > 0.1  # images changed
    np.testing.assert_array_equal(epoch1[0], again[0])  # seeded: reproducible
    assert not np.allclose(epoch1[0], epoch2[0])  # fresh draws every epoch
    other = _collect(data.load("digits", "train", 100, augment=True, seed=6, shuffle=False))
    assert not np.allclose(epoch1[0], other[0])
    # augmentation only ever touches the train split
    val = _collect(data.load("digits", "val", 50, augment=True))
    np.testing.assert_array_equal(val[0], _collect(data.load("digits", "val", 50))[0])


def test_digits_image_size_resizes_and_drop_remainder():
    xb, yb = next(iter(data.load("digits", "test", 32, image_size=(16, 24))))
    assert xb.shape == (32, 16, 24, 1) and yb.shape == (32,)
    small = next(iter(data.load("digits", "test", 32)))[0].numpy()
    # bilinear resizing is linear and keeps constants, so it commutes with normalisation
    np.testing.assert_allclose(xb.numpy(), tf.image.resize(small, (16, 24)).numpy(), atol=1e-5)
    batches = [y.shape[0] for _, y in data.load("digits", "test", 100)]
    assert batches == [100, 100, 100, 59]
    assert [y.shape[0] for _, y in data.load("digits", "test", 100, drop_remainder=True)] == [100] * 3


# ------------------------------------------------------------------------ augmentation


def test_affine_transforms_match_numpy_flip_shift_and_rotation():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (3, 8, 8, 2)).astype(np.float32)
    zeros = tf.zeros([3])

    def warp(flip, angle, dy, dx):
        t = pipeline.affine_transforms(
            tf.constant(flip), tf.constant(angle, tf.float32), tf.constant(dy, tf.float32),
            tf.constant(dx, tf.float32), 8, 8,
        )
        return pipeline.apply_transforms(tf.constant(images), t).numpy()

    np.testing.assert_allclose(warp([True] * 3, zeros, zeros, zeros), images[:, :, ::-1], atol=1e-4)
    # pad-and-crop with offset (dy + pad, dx + pad) == shift by (dy, dx) with zero fill
    shifted = warp([False] * 3, zeros, [1.0, -2.0, 0.0], [0.0, 1.0, -1.0])
    for i, (dy, dx) in enumerate([(1, 0), (-2, 1), (0, -1)]):
        padded = np.pad(images[i], ((2, 2), (2, 2), (0, 0)))
        np.testing.assert_allclose(shifted[i], padded[2 + dy : 10 + dy, 2 + dx : 10 + dx], atol=1e-4)
    rotated = warp([False] * 3, [math.pi / 2] * 3, zeros, zeros)
    np.testing.assert_allclose(rotated, np.rot90(images, k=1, axes=(1, 2)), atol=1e-3)


def test_random_augment_draws_stay_in_range():
    assert pipeline.crop_padding(32, 32) == (4, 4)
    assert pipeline.crop_padding(28, 28) == (3, 3)
    assert pipeline.crop_padding(8, 8) == (1, 1)
    # a single bright pixel at the centre moves by at most pad + rotation, never flips for digits
    img = np.zeros((256, 33, 33, 1), np.float32)
    img[:, 16, 24] = 255.0  # right of centre
    out = pipeline.random_augment(tf.constant(img), tf.constant(7, tf.int64), horizontal_flip=False).numpy()
    cols = np.array([np.unravel_index(np.argmax(o[..., 0]), (33, 33))[1] for o in out])
    assert cols.min() >= 24 - 4 - 2 and cols.max() <= 24 + 4 + 1  # shift ±4, rotation ±10° of 8 px
    flipped = pipeline.random_augment(tf.constant(img), tf.constant(7, tf.int64), horizontal_flip=True).numpy()
    fcols = np.array([np.unravel_index(np.argmax(o[..., 0]), (33, 33))[1] for o in flipped])
    assert 0.3 < np.mean(fcols < 16) < 0.7  # about half mirrored to the left


def test_stratified_holdout_largest_remainder():
    labels = np.repeat([0, 1, 2], [15, 7, 3])
    keep, held = stratified_holdout(labels, 0.2, seed=0)
    assert len(held) == 5 and np.bincount(labels[held], minlength=3).tolist() == [3, 1, 1]
    assert sorted(np.concatenate([keep, held]).tolist()) == list(range(25))


# ------------------------------------------------------------------------ bad arguments


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(name="imagenet21k", split="train", batch_size=8), "unknown dataset 'imagenet21k'"),
        (dict(name="digits", split="validation", batch_size=8), "unknown split 'validation'"),
        (dict(name="digits", split="train", batch_size=0), "batch_size must be a positive int"),
        (dict(name="digits", split="train", batch_size=8, seed=-1), "seed must be a non-negative"),
        (dict(name="digits", split="train", batch_size=8, image_size=(8,)), "image_size must be"),
    ],
)
def test_bad_arguments_raise_one_line_value_errors(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment) as err:
        data.load(**kwargs)
    assert "\n" not in str(err.value)


def test_available_lists_every_dataset():
    assert data.available() == sorted(
        ["digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn_cropped", "imagenette", "indoor67"]
    )
