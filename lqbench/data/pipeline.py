r"""tf.data pipelines: shuffle, decode, batch, augment and normalise, all vectorised per batch.

Normalisation maps a raw pixel \\(p\\) (0..255, or 0..16 for ``digits``) of channel \\(c\\) to
\\[ x = \frac{p / s - \mu_c}{\sigma_c} \\]
with the dataset's scale \\(s\\) and per-channel statistics \\(\mu, \sigma\\) (`Preprocessing`).

Augmentation (train split only, the seed papers' recipe) draws, per image, a horizontal flip
\\(f \in \{1, -1\}\\) (only where a flip keeps the label meaningful), a rotation angle
\\(\theta \sim U[-10°, 10°]\\) and an integer translation \\(t \in [-p, p]^2\\) with
\\(p = \max(1, \lfloor H / 8 \rfloor)\\) pixels (4 for 32x32, 3 for 28x28, 1 for 8x8), which is
exactly "pad by \\(p\\) with zeros and crop at a random offset". The three are composed into one
affine map from an output pixel \\(q\\) to the input position
\\[ q_{in} = c + t + R(\theta) \operatorname{diag}(f, 1) (q - c) \\]
(\\(c\\) the image centre) and applied to the whole batch by one
``ImageProjectiveTransformV3`` op (bilinear, zero fill on raw pixels, i.e. black borders,
before normalisation). Random draws are stateless, seeded from a `tf.data.Dataset.random`
stream seeded by ``seed``: the same seed gives the same augmented batches in every run, and
each epoch (each new iterator) gets fresh draws.
"""
from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

MAX_ROTATION_DEGREES = 10.0


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """Per-dataset scaling, normalisation and which augmentations make sense."""

    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    horizontal_flip: bool

    def channel_stats(self, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) for images with ``channels`` channels (averaged when they differ)."""
        if len(self.mean) == channels:
            return self.mean, self.std
        return (sum(self.mean) / len(self.mean),) * channels, (sum(self.std) / len(self.std),) * channels

    def normalise(self, images: tf.Tensor) -> tf.Tensor:
        """Raw float pixels (N, H, W, C) -> normalised float32."""
        mean, std = self.channel_stats(int(images.shape[-1]))
        mean = tf.constant(mean, tf.float32)
        inv_std = tf.constant([1.0 / s for s in std], tf.float32)
        return (images * (1.0 / self.scale) - mean) * inv_std


def crop_padding(height: int, width: int) -> tuple[int, int]:
    """Pixels of pad-and-crop per axis: 4 for 32, proportionally fewer for smaller images."""
    return max(1, height // 8), max(1, width // 8)


def affine_transforms(flip, angle, shift_y, shift_x, height: int, width: int) -> tf.Tensor:
    """The (B, 8) projective transforms of flip, rotation (radians) and shift, per image.

    Each row ``[a0, a1, a2, b0, b1, b2, 0, 0]`` maps an output pixel ``(x, y)`` to the input
    position ``(a0 x + a1 y + a2, b0 x + b1 y + b2)``, as ``ImageProjectiveTransformV3`` expects.
    """
    sign = tf.where(flip, -1.0, 1.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    a0, a1 = cos * sign, -sin
    b0, b1 = sin * sign, cos
    a2 = cx + shift_x - (a0 * cx + a1 * cy)
    b2 = cy + shift_y - (b0 * cx + b1 * cy)
    zeros = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def apply_transforms(images: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    """Warp a float batch (B, H, W, C) by per-image transforms (bilinear, zero fill); same shape.

    The output keeps the input's static shape (the raw op's output shape is a tensor, so its
    height and width would otherwise be unknown in the dataset's ``element_spec``, and a model
    or a synthetic batch built from that spec would not know the image size)."""
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=tf.cast(transforms, tf.float32),
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    warped.set_shape(images.shape)
    return warped


def random_augment(images: tf.Tensor, seed: tf.Tensor, horizontal_flip: bool) -> tf.Tensor:
    """Random flip (if ``horizontal_flip``), rotation ±10° and pad-and-crop of a float batch.

    # Arguments
        images: raw (unnormalised) float32 batch (B, H, W, C) with static H and W.
        seed: int64 scalar; the draws are ``tf.random.stateless_*`` functions of it.
        horizontal_flip: draw flips with probability 1/2.
    """
    height, width = int(images.shape[1]), int(images.shape[2])
    batch = tf.shape(images)[0]
    seeds = [tf.stack([tf.cast(seed, tf.int64), tf.constant(k, tf.int64)]) for k in range(4)]
    if horizontal_flip:
        flip = tf.random.stateless_uniform([batch], seeds[0]) < 0.5
    else:
        flip = tf.zeros([batch], tf.bool)
    max_angle = math.radians(MAX_ROTATION_DEGREES)
    angle = tf.random.stateless_uniform([batch], seeds[1], -max_angle, max_angle)
    pad_y, pad_x = crop_padding(height, width)
    shift_y = tf.random.stateless_uniform([batch], seeds[2], -pad_y, pad_y + 1, tf.int32)
    shift_x = tf.random.stateless_uniform([batch], seeds[3], -pad_x, pad_x + 1, tf.int32)
    transforms = affine_transforms(
        flip, angle, tf.cast(shift_y, tf.float32), tf.cast(shift_x, tf.float32), height, width
    )
    return apply_transforms(images, transforms)


def make_dataset(
    source,
    labels,
    *,
    preprocessing: Preprocessing,
    batch_size: int,
    shuffle: bool,
    augment: bool,
    seed: int,
    image_size: tuple[int, int] | None = None,
    drop_remainder: bool = False,
    decode=None,
) -> tf.data.Dataset:
    """Batches ``(images float32 NHWC normalised, labels int32)`` of one split.

    ``source`` is either a uint8 NHWC array held in memory (``decode=None``: it is the
    decoded, pre-augmentation data, so nothing is decoded twice and no ``cache()`` is
    needed), or a vector of file paths / encoded images read and decoded lazily by
    ``decode(item) -> uint8 (H, W, C)`` in a parallel map. The shuffle buffer holds the
    whole split (uniform shuffling; reshuffled every epoch, deterministically from
    ``seed``); batching comes before the vectorised augment/normalise map.
    """
    n = len(labels)
    ds = tf.data.Dataset.from_tensor_slices((source, labels))
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if decode is not None:
        ds = ds.map(lambda item, label: (decode(item), label), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    size = tuple(image_size) if image_size is not None else None

    def prepare(images, labels, random=None):
        x = tf.cast(images, tf.float32)
        if size is not None and tuple(x.shape[1:3]) != size:
            x = tf.image.resize(x, size)
        if random is not None:
            x = random_augment(x, random, preprocessing.horizontal_flip)
        return preprocessing.normalise(x), tf.cast(labels, tf.int32)

    if augment:
        randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, randoms)).map(
            lambda xy, r: prepare(xy[0], xy[1], r), num_parallel_calls=tf.data.AUTOTUNE
        )
    else:
        ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
