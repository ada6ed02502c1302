"""Readers of the datasets' original file formats, with validation.

Every reader returns uint8 NHWC images and int32 labels, or raises `DataError` with one line
naming the file, what is wrong and how to obtain the data (the ``hint``). Nothing here
guesses or repairs: a truncated, mislabelled or partial file is an error.

Formats (see ``/work/shared/data/README.md``):

- IDX (MNIST, Fashion-MNIST): gzip-compressed (or plain) big-endian files; images have magic
  2051 and dims ``(N, 28, 28)``, labels magic 2049 and dims ``(N,)``.
- CIFAR python batches: pickles written by Python 2, dicts with ``b'data'`` (uint8, shape
  ``(N, 3072)``, channel-major) and ``b'labels'`` (CIFAR-10) or ``b'fine_labels'``
  (CIFAR-100); read from the extracted folder or straight from the ``.tar.gz``.
- SVHN cropped digits: MATLAB files ``{train,test}_32x32.mat`` with ``X`` of shape
  ``(32, 32, 3, N)`` and ``y`` in 1..10 (10 is the digit 0).
- Image folders: one sub-folder per class holding JPEG/PNG/GIF/BMP files.
"""
from __future__ import annotations

import gzip
import pathlib
import pickle
import tarfile
import zlib

import numpy as np

from lqbench._lazy import lazy_module
from lqbench.data.errors import DataError

tf = lazy_module("tensorflow")

IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
_IMAGE_MAGICS = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


# ----------------------------------------------------------------------------------- IDX


def _read_bytes(path: pathlib.Path, hint: str) -> bytes:
    """The decompressed content of ``path`` (gzip if it ends in ``.gz``)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: truncated or corrupt gzip file ({e}); {hint}") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e}); {hint}") from None


def read_idx(
    path: pathlib.Path,
    *,
    magic: int,
    count: int | None,
    shape: tuple[int, ...] = (),
    num_classes: int | None = None,
    hint: str,
) -> np.ndarray:
    """Read one IDX file and check its magic, count, per-item shape and length.

    # Arguments
        path: the ``.gz`` (or uncompressed) IDX file.
        magic: 2051 for images, 2049 for labels.
        count: the expected number of items (None: any).
        shape: the expected shape of one item, e.g. ``(28, 28)`` for images, ``()`` for labels.
        num_classes: for labels, every value must be below it.
        hint: how to obtain the data, appended to every error.
    """
    raw = _read_bytes(path, hint)
    if len(raw) < 4:
        raise DataError(f"{path}: file has {len(raw)} bytes, too short for an IDX header; {hint}")
    got_magic = int.from_bytes(raw[:4], "big")
    if got_magic != magic:
        raise DataError(f"{path}: bad IDX magic {got_magic} (expected {magic}); {hint}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} of {header} bytes); {hint}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if count is not None and dims[0] != count:
        raise DataError(f"{path}: IDX header counts {dims[0]} items (expected {count}); {hint}")
    if dims[1:] != tuple(shape):
        raise DataError(
            f"{path}: IDX item shape {dims[1:]} (expected {tuple(shape)}); {hint}"
        )
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DataError(
            f"{path}: IDX data {problem}: {len(raw) - header} bytes for dims {dims} "
            f"(expected {expected - header}); {hint}"
        )
    data = np.frombuffer(raw, np.uint8, offset=header).reshape(dims)
    if num_classes is not None and data.size and int(data.max()) >= num_classes:
        raise DataError(
            f"{path}: label {int(data.max())} out of range 0..{num_classes - 1}; {hint}"
        )
    return data


def read_idx_pair(
    directory: pathlib.Path, prefix: str, count: int, hint: str
) -> tuple[np.ndarray, np.ndarray]:
    """The images (N, 28, 28, 1) and labels (N,) of an MNIST-style split (``train``/``t10k``)."""
    paths = [_idx_path(directory, f"{prefix}-{kind}-ubyte") for kind in ("images-idx3", "labels-idx1")]
    images = read_idx(paths[0], magic=IDX_IMAGES_MAGIC, count=count, shape=(28, 28), hint=hint)
    labels = read_idx(paths[1], magic=IDX_LABELS_MAGIC, count=count, num_classes=10, hint=hint)
    if images.shape[0] != labels.shape[0]:  # only reachable with count=None
        raise DataError(
            f"{paths[0]}: {images.shape[0]} images but {paths[1].name} has "
            f"{labels.shape[0]} labels; {hint}"
        )
    return images[..., None], labels.astype(np.int32)


def _idx_path(directory: pathlib.Path, stem: str) -> pathlib.Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.exists():
            return candidate
    return directory / f"{stem}.gz"


IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def idx_files_present(directory: pathlib.Path) -> list[str]:
    """Which of the four MNIST-style files exist in ``directory`` (``.gz`` or plain)."""
    return [s for s in IDX_FILES if (directory / f"{s}.gz").exists() or (directory / s).exists()]


# --------------------------------------------------------------------------------- CIFAR


def _unpickle(blob: bytes, where: str, hint: str) -> dict:
    try:
        obj = pickle.loads(blob, encoding="bytes")
    except Exception as e:  # any unpickling failure means a corrupt file
        raise DataError(f"{where}: not a readable CIFAR pickle ({type(e).__name__}: {e}); {hint}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where}: CIFAR pickle holds a {type(obj).__name__}, expected a dict; {hint}")
    return obj


def parse_cifar_batch(
    blob: bytes, where: str, label_key: bytes, num_classes: int, hint: str
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and labels (N,) int32 of one pickled CIFAR batch."""
    batch = _unpickle(blob, where, hint)
    if b"data" not in batch or label_key not in batch:
        raise DataError(
            f"{where}: CIFAR batch lacks key {b'data' if b'data' not in batch else label_key!r} "
            f"(keys: {sorted(batch)}); {hint}"
        )
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", type(data).__name__)
        raise DataError(f"{where}: CIFAR b'data' has shape {shape} (expected (N, 3072)); {hint}")
    if data.dtype != np.uint8:
        raise DataError(f"{where}: CIFAR b'data' has dtype {data.dtype} (expected uint8); {hint}")
    try:
        labels = np.asarray(batch[label_key])
    except Exception:
        labels = np.zeros(0, object)
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise DataError(
            f"{where}: {labels.shape[0] if labels.ndim == 1 else labels.shape} labels for "
            f"{data.shape[0]} images; {hint}"
        )
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: CIFAR labels have type {labels.dtype} (expected int); {hint}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{where}: label {int(labels.max() if labels.max() >= num_classes else labels.min())} "
            f"out of range 0..{num_classes - 1}; {hint}"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int32)


def parse_cifar_meta(blob: bytes, where: str, names_key: bytes, hint: str) -> tuple[str, ...] | None:
    meta = _unpickle(blob, where, hint)
    names = meta.get(names_key)
    if names is None:
        return None
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


class CifarArchive:
    """Uniform access to the members of an extracted CIFAR folder or its ``.tar.gz``."""

    def __init__(self, path: pathlib.Path, folder: str, hint: str):
        self.path, self.folder, self.hint = path, folder, hint
        self._tar_members: dict[str, bytes] | None = None
        if path.is_file():
            try:
                with tarfile.open(path, "r:*") as tar:
                    self._tar_members = {}
                    for member in tar.getmembers():
                        if member.isfile():
                            f = tar.extractfile(member)
                            self._tar_members[member.name.lstrip("./")] = f.read()
            except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
                raise DataError(f"{path}: truncated or corrupt CIFAR archive ({e}); {hint}") from None

    def read(self, member: str, required: bool = True) -> tuple[bytes | None, str]:
        if self._tar_members is not None:
            key = f"{self.folder}/{member}"
            where = f"{self.path}:{key}"
            if key not in self._tar_members:
                if required:
                    raise DataError(f"{where}: missing from the archive; {self.hint}")
                return None, where
            return self._tar_members[key], where
        file = self.path / member
        if not file.exists():
            if required:
                raise DataError(f"{file}: missing CIFAR file; {self.hint}")
            return None, str(file)
        return file.read_bytes(), str(file)


def read_cifar10(path: pathlib.Path, hint: str):
    """``{"train": (x, y), "test": (x, y)}`` and the class names from a CIFAR-10 folder/tarball."""
    archive = CifarArchive(path, "cifar-10-batches-py", hint)
    parts = [
        parse_cifar_batch(*archive.read(f"data_batch_{i}"), b"labels", 10, hint) for i in range(1, 6)
    ]
    test = parse_cifar_batch(*archive.read("test_batch"), b"labels", 10, hint)
    blob, where = archive.read("batches.meta", required=False)
    names = parse_cifar_meta(blob, where, b"label_names", hint) if blob is not None else None
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return {"train": train, "test": test}, names


def read_cifar100(path: pathlib.Path, hint: str):
    """``{"train": (x, y), "test": (x, y)}`` (fine labels) and class names from CIFAR-100."""
    archive = CifarArchive(path, "cifar-100-python", hint)
    train = parse_cifar_batch(*archive.read("train"), b"fine_labels", 100, hint)
    test = parse_cifar_batch(*archive.read("test"), b"fine_labels", 100, hint)
    blob, where = archive.read("meta", required=False)
    names = parse_cifar_meta(blob, where, b"fine_label_names", hint) if blob is not None else None
    return {"train": train, "test": test}, names


# ---------------------------------------------------------------------------------- SVHN


def read_svhn_mat(path: pathlib.Path, hint: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) and labels 0..9 of an SVHN ``*_32x32.mat`` file."""
    try:
        from scipy.io import loadmat

        mat = loadmat(str(path))
    except Exception as e:
        raise DataError(f"{path}: not a readable MATLAB file ({type(e).__name__}: {e}); {hint}") from None
    x, y = mat.get("X"), mat.get("y")
    if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.dtype != np.uint8:
        shape = getattr(x, "shape", None)
        raise DataError(f"{path}: SVHN 'X' has shape {shape} (expected uint8 (32, 32, 3, N)); {hint}")
    if not isinstance(y, np.ndarray) or y.size != x.shape[3]:
        raise DataError(f"{path}: {getattr(y, 'size', 0)} SVHN labels for {x.shape[3]} images; {hint}")
    y = y.reshape(-1).astype(np.int64)
    if y.size and (y.min() < 1 or y.max() > 10):
        raise DataError(f"{path}: SVHN labels outside 1..10; {hint}")
    return np.ascontiguousarray(x.transpose(3, 0, 1, 2)), (y % 10).astype(np.int32)


# ------------------------------------------------------------------------------- folders


def _check_image_file(path: pathlib.Path, hint: str) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise DataError(f"{path}: unreadable image ({e}); {hint}") from None
    if not any(head.startswith(m) for m in _IMAGE_MAGICS):
        raise DataError(
            f"{path}: unreadable image (not a JPEG, PNG, GIF or BMP file: starts with {head!r}); {hint}"
        )


def scan_class_folders(root: pathlib.Path, hint: str, class_names: list[str] | None = None):
    """``(class_names, paths, labels)`` of an image folder with one sub-folder per class.

    Hidden entries and files without an image extension are ignored; every image file's
    header is checked (a file that is not JPEG/PNG/GIF/BMP is an error), and a class folder
    without images, or a root without class folders, is an error. ``class_names`` fixes the
    classes (and their order) that must be present, e.g. those of the train split.
    """
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found; {hint}")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise DataError(f"{root}: no class sub-folders (expected {root}/<class>/<image>); {hint}")
    if class_names is not None and found != list(class_names):
        missing = sorted(set(class_names) - set(found))
        extra = sorted(set(found) - set(class_names))
        raise DataError(
            f"{root}: classes differ from the train split (missing {missing[:5]}, extra {extra[:5]}); {hint}"
        )
    paths, labels = [], []
    for label, name in enumerate(found):
        files = sorted(
            p
            for p in (root / name).iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not files:
            raise DataError(f"{root / name}: class folder has no images ({', '.join(IMAGE_EXTENSIONS)}); {hint}")
        for p in files:
            _check_image_file(p, hint)
        paths += [str(p) for p in files]
        labels += [label] * len(files)
    return found, paths, np.asarray(labels, np.int32)


def read_file_list(list_file: pathlib.Path, images_root: pathlib.Path, class_names, hint: str):
    """Paths and labels of an Indoor67-style split list (``class/file.jpg`` per line)."""
    index = {name: i for i, name in enumerate(class_names)}
    paths, labels = [], []
    for n, line in enumerate(list_file.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        cls = line.replace("\\", "/").split("/")[0]
        path = images_root / line
        if cls not in index:
            raise DataError(f"{list_file}:{n}: unknown class {cls!r}; {hint}")
        if not path.is_file():
            raise DataError(f"{list_file}:{n}: listed image {path} does not exist; {hint}")
        _check_image_file(path, hint)
        paths.append(str(path))
        labels.append(index[cls])
    if not paths:
        raise DataError(f"{list_file}: empty split list; {hint}")
    return paths, np.asarray(labels, np.int32)


def first_image_shape(path: str, hint: str) -> tuple[int, int, int]:
    """(H, W, C) of one image, with C = 1 for grayscale and 3 otherwise."""
    try:
        image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as e:
        raise DataError(f"{path}: unreadable image ({e.message.splitlines()[0]}); {hint}") from None
    h, w, c = image.shape
    return int(h), int(w), 1 if c == 1 else 3


def decode_images(
    items: np.ndarray, from_files: bool, shape: tuple[int, int, int], hint: str
) -> np.ndarray:
    """Decode (and resize to ``shape``) every image of ``items`` into one uint8 NHWC array.

    ``items`` are file paths (``from_files``) or encoded image bytes. Decoding runs in a
    parallel tf.data map; when an image fails, a sequential pass finds it and names it.
    """
    out = np.empty((len(items),) + tuple(shape), np.uint8)
    ds = tf.data.Dataset.from_tensor_slices(items).map(
        lambda item: decode_resize(item, from_files, shape), num_parallel_calls=tf.data.AUTOTUNE
    )
    try:
        start = 0
        for batch in ds.batch(256).prefetch(2):
            out[start : start + batch.shape[0]] = batch.numpy()
            start += batch.shape[0]
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
        for i, item in enumerate(items):
            try:
                decode_resize(tf.constant(item), from_files, shape)
            except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as e:
                where = item if from_files else f"encoded image #{i}"
                where = where.decode() if isinstance(where, bytes) else where
                raise DataError(f"{where}: unreadable image ({e.message.splitlines()[0]}); {hint}") from None
        raise
    return out


def decode_resize(item, from_files: bool, shape: tuple[int, int, int]):
    """One encoded image (path or bytes) -> uint8 tensor of ``shape`` (bilinear resize)."""
    contents = tf.io.read_file(item) if from_files else item
    image = tf.io.decode_image(contents, channels=shape[2], expand_animations=False)
    image = tf.ensure_shape(image, [None, None, shape[2]])
    size = tf.shape(image)[:2]
    image = tf.cond(
        tf.reduce_all(size == tf.constant(shape[:2])),
        lambda: image,
        lambda: tf.cast(
            tf.clip_by_value(tf.round(tf.image.resize(image, shape[:2])), 0, 255), tf.uint8
        ),
    )
    return tf.ensure_shape(image, shape)


__all__ = [
    "CifarArchive",
    "IDX_FILES",
    "decode_images",
    "decode_resize",
    "idx_files_present",
    "read_cifar10",
    "read_cifar100",
    "read_idx",
    "read_idx_pair",
    "read_svhn_mat",
    "scan_class_folders",
]
