r"""The dataset registry: where each dataset comes from, its splits, and the public functions.

Sources, tried in this order (never another dataset in place of the one asked for):

1. **files** -- the original distribution files under ``data_dir`` (argument) or the
   environment variable ``LQBENCH_DATA_DIR``:

   | name | expected layout under DATA_DIR |
   | --- | --- |
   | ``mnist``, ``fashion_mnist`` | ``<name>/{train-images-idx3-ubyte,train-labels-idx1-ubyte,t10k-images-idx3-ubyte,t10k-labels-idx1-ubyte}.gz`` (or uncompressed) |
   | ``cifar10`` | ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz`` (also inside ``cifar10/``) |
   | ``cifar100`` | ``cifar-100-python/`` or ``cifar-100-python.tar.gz`` (also inside ``cifar100/``) |
   | ``svhn_cropped`` | ``svhn_cropped/`` or ``svhn/`` with ``train_32x32.mat`` and ``test_32x32.mat`` |
   | ``imagenette`` | ``imagenette/`` (or ``imagenette2``, ``imagenette2-320``, ``imagenette2-160``, as extracted from fast.ai's archives) with ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG`` |
   | ``indoor67`` | ``indoor67/`` (or ``indoorCVPR_09/``) with ``Images/<class>/*.jpg`` as extracted from ``indoorCVPR_09.tar``, plus the official ``TrainImages.txt`` / ``TestImages.txt`` beside ``Images/`` if present; or ``train/<class>/``, ``test/<class>/``; or ``<class>/`` directly |
   | ``folder:PATH`` | ``PATH/<class>/<image>`` (one split) or ``PATH/{train,val|test}/<class>/<image>`` |

   A folder with both ``train/`` and ``test/`` (or ``val/``/``validation/``) uses the second as
   the test split (ImageNette's ``val`` is its test split). A folder dataset with a single
   split gets a fixed stratified 20% test split (`splits.TEST_SEED`, independent of
   ``seed``). Found-but-broken files raise `DataError`: no fallback.
2. **tfds** -- tensorflow-datasets (``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100``,
   ``svhn_cropped``, ``imagenette/320px-v2``) in ``LQBENCH_TFDS_DIR`` or ``TFDS_DATA_DIR`` (else
   TFDS's default ``~/tensorflow_datasets``). A dataset that is not prepared there fails at
   once with a `DataError` naming what was looked for and how to obtain it; TFDS downloads
   only when asked (``download=True``, ``lqbench ... --download`` or ``LQBENCH_DOWNLOAD=1``;
   ``LQBENCH_OFFLINE=1`` refuses even then), so TFDS is never asked to touch the network by
   default (offline, its retries take minutes).
3. **embedded** -- ``digits`` only: scikit-learn's 8x8 digits (1797 images, values 0..16),
   the offline default. Its test split is a fixed stratified 20% (360 images), so
   train/val/test = 1294/144/359 for every seed.

Splits: ``test`` is the dataset's official test split (or the fixed 20% above); ``val`` is a
stratified 10% of the official train split chosen by ``seed`` (`splits.stratified_holdout`),
and ``train`` is the other 90%. MNIST: 54000 / 6000 / 10000.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import hashlib
import os
import pathlib
import tempfile
import zipfile

import numpy as np

from lqbench.data import formats
from lqbench.data.errors import DataError
from lqbench.data.pipeline import Preprocessing, make_dataset
from lqbench.data.splits import TEST_SEED, TEST_TAG, VAL_TAG, stratified_holdout
from lqbench.errors import ConfigValueError

SPLITS = ("train", "val", "test")
VAL_FRACTION = 0.1
TEST_FRACTION = 0.2  # single-split datasets only
DEFAULT_FOLDER_SIZE = (224, 224)  # imagenette, indoor67: paper 000's input size
FOLDER_PREFIX = "folder:"

_IMAGENET = Preprocessing(255.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), True)
_DIGIT_NAMES = tuple(str(d) for d in range(10))
_IMAGENETTE_WNIDS = {
    "n01440764": "tench",
    "n02102040": "English springer",
    "n02979186": "cassette player",
    "n03000684": "chain saw",
    "n03028079": "church",
    "n03394916": "French horn",
    "n03417042": "garbage truck",
    "n03425413": "gas pump",
    "n03445777": "golf ball",
    "n03888257": "parachute",
}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a dataset looks like before any ``image_size`` resize.

    # Attributes
        name: the dataset name as passed to `load`.
        input_shape: (H, W, C) of one image as the pipeline yields it without ``image_size``.
        num_classes: number of classes; labels are 0..num_classes-1.
        class_names: the class names in label order, or None when unknown.
        sizes: ``{"train": n, "val": n, "test": n}`` example counts (also as ``splits``).
        source: ``"files"``, ``"tfds"`` (prepared locally), ``"embedded"``, or
            ``"tfds-download"`` (not here; TFDS would download it because downloading was
            asked for: the sizes are the published ones).
        location: where the data are (folder, archive or TFDS folder), or what would be
            downloaded.
        horizontal_flip: whether a horizontal flip keeps labels meaningful (used by augment).
        mean, std: per-channel normalisation statistics of pixels scaled to [0, 1].
    """

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    class_names: tuple[str, ...] | None
    sizes: dict = dataclasses.field(hash=False)
    source: str
    horizontal_flip: bool
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    location: str = ""

    @property
    def splits(self) -> dict:
        """Alias of `sizes`."""
        return self.sizes


@dataclasses.dataclass(frozen=True)
class _Spec:
    name: str
    shape: tuple[int, int, int]
    num_classes: int
    class_names: tuple[str, ...] | None
    preprocessing: Preprocessing
    official_sizes: tuple[int, int]  # train, test of the official distribution
    tfds_name: str | None
    tfds_splits: tuple[str, str] = ("train", "test")
    hint: str = ""


def _tfds_hint(tfds_name: str, files: str) -> str:
    return (
        f"download it with tensorflow-datasets (`tfds.load('{tfds_name}')` on a machine with "
        f"network access) or place {files}"
    )


_SPECS = {
    s.name: s
    for s in [
        _Spec(
            "digits", (8, 8, 1), 10, _DIGIT_NAMES,
            Preprocessing(16.0, (0.3053,), (0.3760,), False), (1797, 0), None,
            hint="digits is embedded in scikit-learn: `pip install scikit-learn`",
        ),
        _Spec(
            "mnist", (28, 28, 1), 10, _DIGIT_NAMES,
            Preprocessing(255.0, (0.1307,), (0.3081,), False), (60000, 10000), "mnist",
            hint=_tfds_hint("mnist", "the four official .gz files (train-images-idx3-ubyte.gz, "
                            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
                            "t10k-labels-idx1-ubyte.gz) in DATA_DIR/mnist"),
        ),
        _Spec(
            "fashion_mnist", (28, 28, 1), 10,
            ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
             "Bag", "Ankle boot"),
            Preprocessing(255.0, (0.2860,), (0.3530,), True), (60000, 10000), "fashion_mnist",
            hint=_tfds_hint("fashion_mnist", "the four official .gz files from "
                            "github.com/zalandoresearch/fashion-mnist in DATA_DIR/fashion_mnist"),
        ),
        _Spec(
            "cifar10", (32, 32, 3), 10,
            ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
            Preprocessing(255.0, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), True),
            (50000, 10000), "cifar10",
            hint=_tfds_hint("cifar10", "cifar-10-python.tar.gz from "
                            "https://www.cs.toronto.edu/~kriz/cifar.html in DATA_DIR (or its "
                            "extracted cifar-10-batches-py/)"),
        ),
        _Spec(
            "cifar100", (32, 32, 3), 100, None,
            Preprocessing(255.0, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), True),
            (50000, 10000), "cifar100",
            hint=_tfds_hint("cifar100", "cifar-100-python.tar.gz from "
                            "https://www.cs.toronto.edu/~kriz/cifar.html in DATA_DIR (or its "
                            "extracted cifar-100-python/)"),
        ),
        _Spec(
            "svhn_cropped", (32, 32, 3), 10, _DIGIT_NAMES,
            Preprocessing(255.0, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), False),
            (73257, 26032), "svhn_cropped",
            hint=_tfds_hint("svhn_cropped", "train_32x32.mat and test_32x32.mat from "
                            "http://ufldl.stanford.edu/housenumbers/ in DATA_DIR/svhn_cropped"),
        ),
        _Spec(
            "imagenette", DEFAULT_FOLDER_SIZE + (3,), 10, tuple(_IMAGENETTE_WNIDS.values()),
            _IMAGENET, (9469, 3925), "imagenette/320px-v2", ("train", "validation"),
            hint=_tfds_hint("imagenette/320px-v2", "imagenette2-320.tgz from "
                            "https://github.com/fastai/imagenette extracted as "
                            "DATA_DIR/imagenette/{train,val}/<wnid>/*.JPEG"),
        ),
        _Spec(
            "indoor67", DEFAULT_FOLDER_SIZE + (3,), 67, None, _IMAGENET, (5360, 1340), None,
            hint="download indoorCVPR_09.tar from https://web.mit.edu/torralba/www/indoor.html "
                 "and extract it as DATA_DIR/indoor67/Images/<class>/*.jpg, with the official "
                 "TrainImages.txt and TestImages.txt in DATA_DIR/indoor67/",
        ),
    ]
}


class _NotPrepared(DataError):
    """A TFDS dataset that is not prepared locally and must not be downloaded."""


def available() -> list[str]:
    """Names accepted by `load` (besides ``"folder:PATH"``).

    !!! example
        ```python
        lqbench.data.available()  # ['cifar10', 'cifar100', 'digits', ...]
        ```
    """
    return sorted(_SPECS)


# ------------------------------------------------------------------------ configuration


def _data_dir(data_dir) -> pathlib.Path | None:
    root = data_dir if data_dir is not None else os.environ.get("LQBENCH_DATA_DIR")
    return pathlib.Path(root).expanduser() if root else None


def _tfds_dir() -> str | None:
    return os.environ.get("LQBENCH_TFDS_DIR") or os.environ.get("TFDS_DATA_DIR") or None


_TRUE = ("1", "true", "yes", "on")


def _download_default(download) -> tuple[bool, str]:
    """Whether TFDS may download, and the reason when it may not.

    Downloads happen only on request (``download=True`` or ``LQBENCH_DOWNLOAD=1``, which
    ``--download`` sets); ``LQBENCH_OFFLINE=1`` forbids them even then.
    """
    if download is not None and not download:
        return False, "download=False"
    if os.environ.get("LQBENCH_OFFLINE", "").lower() in _TRUE:
        return False, "LQBENCH_OFFLINE=1"
    if download:
        return True, ""
    if os.environ.get("LQBENCH_DOWNLOAD", "").lower() in _TRUE:
        return True, ""
    return False, "pass --download (or LQBENCH_DOWNLOAD=1) to let tensorflow-datasets fetch it"


def _memory_budget() -> int:
    """Bytes a decoded folder/TFDS-image dataset may take to be held in memory."""
    return int(float(os.environ.get("LQBENCH_MEMORY_MB", "1024")) * 2**20)


def _spec(name: str) -> _Spec:
    if not isinstance(name, str):
        raise ConfigValueError(f"dataset name must be a string, got {name!r}")
    if name.startswith(FOLDER_PREFIX):
        path = name[len(FOLDER_PREFIX):]
        if not path:
            raise ConfigValueError("dataset 'folder:': empty PATH; use 'folder:/path/to/root'")
        return _Spec(
            name, (0, 0, 0), 0, None, _IMAGENET, (0, 0), None,
            hint=f"expected {path}/<class>/<image> or {path}/{{train,test}}/<class>/<image> "
                 "with JPEG/PNG/GIF/BMP images",
        )
    if name not in _SPECS:
        raise ConfigValueError(
            f"unknown dataset {name!r}; available: {', '.join(available())}, or 'folder:PATH'"
        )
    return _SPECS[name]


# ---------------------------------------------------------------------------- raw data


@dataclasses.dataclass(frozen=True)
class _Raw:
    """One dataset's official splits: uint8 arrays, or encoded items decoded lazily."""

    source: str
    shape: tuple[int, int, int]
    class_names: tuple[str, ...] | None
    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray] | None  # None: single split, test is a fixed 20%
    lazy: bool = False  # data are paths (from_files) or encoded bytes
    from_files: bool = True
    where: str = ""

    def num_images(self) -> int:
        return len(self.train[1]) + (len(self.test[1]) if self.test is not None else 0)


_CACHE: "collections.OrderedDict[tuple, _Raw]" = collections.OrderedDict()
_CACHE_SIZE = 4


def _cached(key: tuple, build) -> _Raw:
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    raw = build()
    for part in (raw.train, raw.test):
        if part is not None:
            for array in part:
                array.flags.writeable = False
    _CACHE[key] = raw
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return raw


def _stamp(path: pathlib.Path, depth: int = 2) -> tuple:
    """Modification times and sizes of ``path`` and its entries ``depth`` levels down: the
    in-process cache of a dataset is dropped when any of its files or class folders changes."""
    try:
        stat = os.stat(path)
    except OSError:
        return ()
    stamp = [(str(path), stat.st_mtime_ns, stat.st_size)]
    if depth > 0 and path.is_dir():
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            stamp.extend(_stamp(pathlib.Path(entry.path), depth - 1))
    return tuple(stamp)


def _hint(spec: _Spec, root: pathlib.Path | None) -> str:
    return spec.hint.replace("DATA_DIR", str(root)) if root is not None else spec.hint


def _resolve(spec: _Spec, data_dir, download) -> _Raw:
    """The dataset's raw splits from the first source that has it (see module docstring)."""
    root = _data_dir(data_dir)
    hint = _hint(spec, root)
    if spec.name.startswith(FOLDER_PREFIX):
        path = pathlib.Path(spec.name[len(FOLDER_PREFIX):]).expanduser().resolve()
        return _cached(("folder", str(path), _stamp(path)), lambda: _read_folder(path, None, spec.hint))
    if spec.name == "digits":
        return _cached(("digits",), _read_digits)
    if root is not None:
        found = _find_files(spec, root, hint)
        if found is not None:
            reader, path = found
            return _cached((spec.name, str(path), _stamp(path)), functools.partial(reader, path))
    if spec.tfds_name is None:
        raise DataError(f"{spec.name}: no files found {_looked_in(spec, root)}; {hint}")
    looked = _looked_in(spec, root)
    return _cached(("tfds", spec.tfds_name, _tfds_dir()), lambda: _read_tfds(spec, download, hint, looked))


def _looked_in(spec: _Spec, root: pathlib.Path | None) -> str:
    if root is None:
        return "(no --data-dir and LQBENCH_DATA_DIR is unset)"
    folder = root / spec.name
    if folder.is_dir():
        try:
            empty = not any(folder.iterdir())
        except OSError as error:
            return f"in {root} ({folder}: {error.strerror.lower()})"
        return f"in {root} ({folder} is {'empty' if empty else 'not in a known layout'})"
    return f"in {root}"


def _find_files(spec: _Spec, root: pathlib.Path, hint: str):
    """``(reader, path)`` of the dataset's original files under ``root``, or None if absent."""
    name = spec.name
    if name in ("mnist", "fashion_mnist"):
        directory = root / name
        present = formats.idx_files_present(directory) if directory.is_dir() else []
        if not present:
            return None
        missing = [s for s in formats.IDX_FILES if s not in present]
        if missing:
            raise DataError(f"{directory / (missing[0] + '.gz')}: missing ({len(missing)} of 4 IDX files absent); {hint}")
        return functools.partial(_read_idx_dataset, spec=spec, hint=hint), directory
    if name in ("cifar10", "cifar100"):
        folder, archive = {
            "cifar10": ("cifar-10-batches-py", "cifar-10-python.tar.gz"),
            "cifar100": ("cifar-100-python", "cifar-100-python.tar.gz"),
        }[name]
        for base in (root, root / name):
            for candidate in (base / folder, base / archive):
                if candidate.exists():
                    return functools.partial(_read_cifar, spec=spec, hint=hint), candidate
        return None
    if name == "svhn_cropped":
        for directory in (root / "svhn_cropped", root / "svhn"):
            if (directory / "train_32x32.mat").exists() or (directory / "test_32x32.mat").exists():
                return functools.partial(_read_svhn, hint=hint), directory
        return None
    candidates = {
        "imagenette": ["imagenette", "imagenette2", "imagenette2-320", "imagenette2-160"],
        "indoor67": ["indoor67", "indoorCVPR_09"],
    }[name]
    for sub in candidates:
        if (root / sub).is_dir():
            return functools.partial(_read_folder, default_size=DEFAULT_FOLDER_SIZE, hint=hint, spec=spec), root / sub
    return None


def _read_digits() -> _Raw:
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        raise DataError(f"digits: scikit-learn is not installed; {_SPECS['digits'].hint}") from None
    digits = load_digits()
    x = np.rint(digits.images).astype(np.uint8)[..., None]
    return _Raw("embedded", (8, 8, 1), _DIGIT_NAMES, (x, digits.target.astype(np.int32)), None)


def _read_idx_dataset(directory: pathlib.Path, spec: _Spec, hint: str) -> _Raw:
    n_train, n_test = spec.official_sizes
    train = formats.read_idx_pair(directory, "train", n_train, hint)
    test = formats.read_idx_pair(directory, "t10k", n_test, hint)
    return _Raw("files", spec.shape, spec.class_names, train, test, where=str(directory))


def _read_cifar(path: pathlib.Path, spec: _Spec, hint: str) -> _Raw:
    reader = formats.read_cifar10 if spec.name == "cifar10" else formats.read_cifar100
    parts, names = reader(path, hint)
    return _Raw("files", spec.shape, names or spec.class_names, parts["train"], parts["test"], where=str(path))


def _read_svhn(directory: pathlib.Path, hint: str) -> _Raw:
    parts = []
    for split in ("train", "test"):
        path = directory / f"{split}_32x32.mat"
        if not path.exists():
            raise DataError(f"{path}: missing; {hint}")
        parts.append(formats.read_svhn_mat(path, hint))
    return _Raw("files", (32, 32, 3), _DIGIT_NAMES, parts[0], parts[1], where=str(directory))


def _read_folder(root: pathlib.Path, default_size, hint: str, spec: _Spec | None = None) -> _Raw:
    """Scan an image-folder dataset (layouts in the module docstring); images stay on disk."""
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found; {hint}")
    test_dir = next((root / d for d in ("test", "val", "validation") if (root / d).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        names, train_paths, train_y = formats.scan_class_folders(root / "train", hint)
        _, test_paths, test_y = formats.scan_class_folders(test_dir, hint, class_names=names)
        test = (np.asarray(test_paths), test_y)
    elif (root / "Images").is_dir():
        names, train_paths, train_y = formats.scan_class_folders(root / "Images", hint)
        lists = root / "TrainImages.txt", root / "TestImages.txt"
        test = None
        if lists[0].exists() and lists[1].exists():
            train_paths, train_y = formats.read_file_list(lists[0], root / "Images", names, hint)
            test_paths, test_y = formats.read_file_list(lists[1], root / "Images", names, hint)
            test = (np.asarray(test_paths), test_y)
    else:
        names, train_paths, train_y = formats.scan_class_folders(root, hint)
        test = None
    if spec is not None and spec.num_classes and len(names) != spec.num_classes:
        raise DataError(f"{root}: {len(names)} class folders (expected {spec.num_classes}); {hint}")
    if default_size is None:
        shape = formats.first_image_shape(train_paths[0], hint)
    else:
        shape = tuple(default_size) + (3,)
    if spec is not None and spec.name == "imagenette" and set(names) <= set(_IMAGENETTE_WNIDS):
        names = [_IMAGENETTE_WNIDS[n] for n in names]
    return _Raw("files", shape, tuple(names), (np.asarray(train_paths), train_y), test,
                lazy=True, from_files=True, where=str(root))


def _read_tfds(spec: _Spec, download, hint: str, looked: str = "") -> _Raw:
    import tensorflow_datasets as tfds

    if download == "probe":  # info(): never download; the reason is the environment's
        allowed, reason = False, _download_default(None)[1] or "info() never downloads"
    else:
        allowed, reason = _download_default(download)
    builder = tfds.builder(spec.tfds_name, data_dir=_tfds_dir())
    if not builder.is_prepared():
        if not allowed:
            files = f"no files {looked} and " if looked else ""
            raise _NotPrepared(
                f"{spec.name}: {files}TFDS dataset {spec.tfds_name!r} is not prepared in {builder.data_dir}; "
                f"downloading is off ({reason}); {hint}"
            )
        builder.download_and_prepare()
    names = tuple(builder.info.features["label"].names)
    if names == tuple(str(i) for i in range(len(names))):
        names = spec.class_names or names
    if spec.name == "imagenette":
        names = tuple(_IMAGENETTE_WNIDS.get(n, n) for n in names)
    lazy = spec.name == "imagenette"  # keep the JPEG bytes, decode them lazily
    decoders = {"image": tfds.decode.SkipDecoding()} if lazy else None
    parts = []
    for split in spec.tfds_splits:
        ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False, decoders=decoders)
        images, labels = [], []
        for image, label in ds.batch(4096).as_numpy_iterator():
            images.append(image)
            labels.append(label)
        if not labels:
            raise DataError(f"{builder.data_dir}: TFDS split {split!r} of {spec.tfds_name!r} is empty; {hint}")
        x = np.concatenate(images).astype(object if lazy else np.uint8)
        parts.append((x, np.concatenate(labels).astype(np.int32)))
    shape = spec.shape if lazy else tuple(parts[0][0].shape[1:])
    return _Raw("tfds", shape, names, parts[0], parts[1], lazy=lazy, from_files=False,
                where=str(builder.data_dir))


CACHE_VARIABLE = "LQBENCH_CACHE_DIR"


def cache_dir() -> pathlib.Path | None:
    """Where decoded image folders are kept between processes: ``LQBENCH_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/lqbench`` (``~/.cache/lqbench``); ``LQBENCH_CACHE_DIR=off`` (or empty)
    turns the cache off."""
    value = os.environ.get(CACHE_VARIABLE)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "false", "no") else pathlib.Path(value)
    return pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "lqbench"


def _decoded_cache_path(raw: _Raw, shape: tuple[int, int, int]) -> pathlib.Path | None:
    """The cache file of an image folder decoded at ``shape``: named by a digest of every
    image's path, size and modification time (and the shape), so any change to the files is a
    new file, never a stale hit."""
    root = cache_dir()
    if root is None or not raw.from_files:
        return None
    digest = hashlib.sha256(repr(tuple(shape)).encode())
    for part in (raw.train, raw.test):
        if part is None:
            digest.update(b"|none|")
            continue
        paths, labels = part
        digest.update(np.ascontiguousarray(labels).tobytes())
        for item in paths:
            path = item.decode() if isinstance(item, bytes) else str(item)
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return root / "decoded" / f"{shape[0]}x{shape[1]}x{shape[2]}-{digest.hexdigest()[:24]}.npz"


def _read_decoded(path: pathlib.Path | None, raw: _Raw, shape) -> dict | None:
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # a broken cache file: decode again
        return None
    expected = {"train": len(raw.train[1]), "test": len(raw.test[1]) if raw.test is not None else None}
    for split, count in expected.items():
        if count is not None and arrays.get(split, np.empty((0,))).shape != (count, *shape):
            return None
    return arrays


def _write_decoded(path: pathlib.Path | None, arrays: dict) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            np.savez(handle, **arrays)
        os.replace(handle.name, path)  # whole or absent, even if two processes write it
    except OSError:  # a read-only or full cache folder only costs the next process a decode
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(handle.name)


def _materialise(raw: _Raw, shape: tuple[int, int, int], hint: str) -> _Raw:
    """Decode a lazy dataset's images at ``shape`` into uint8 arrays, cached in-process and,
    for image folders, on disk (`cache_dir`): ImageNette at 64x64 px decodes in about a minute
    on two cores, and every run of a sweep is a process of its own."""

    def build():
        path = _decoded_cache_path(raw, shape)
        stored = _read_decoded(path, raw, shape)
        if stored is None:
            stored = {split: formats.decode_images(part[0], raw.from_files, shape, hint)
                      for split, part in (("train", raw.train), ("test", raw.test)) if part is not None}
            _write_decoded(path, stored)
        return dataclasses.replace(raw, train=(stored["train"], raw.train[1]),
                                   test=None if raw.test is None else (stored["test"], raw.test[1]), lazy=False)

    return _cached(("decoded", raw.where, id(raw), shape), build)


# ------------------------------------------------------------------------------ splits


def _split(raw: _Raw, split: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    data, labels = raw.train
    if raw.test is None:
        keep, held = stratified_holdout(labels, TEST_FRACTION, TEST_SEED, TEST_TAG)
        test = data[held], labels[held]
        data, labels = data[keep], labels[keep]
    else:
        test = raw.test
    if split == "test":
        return test
    keep, val = stratified_holdout(labels, VAL_FRACTION, seed, VAL_TAG)
    index = keep if split == "train" else val
    return data[index], labels[index]


def _split_sizes(n_train_official: int, n_test_official: int | None) -> dict:
    if not n_test_official:
        held = int(np.floor(TEST_FRACTION * n_train_official + 0.5))
        n_train_official, n_test_official = n_train_official - held, held
    val = int(np.floor(VAL_FRACTION * n_train_official + 0.5))
    return {"train": n_train_official - val, "val": val, "test": n_test_official}


# ----------------------------------------------------------------------- public functions


def _check_args(split, seed, batch_size=1, image_size=None):
    if split not in SPLITS:
        raise ConfigValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConfigValueError(f"seed must be a non-negative int, got {seed!r}")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if image_size is not None:
        ok = (
            isinstance(image_size, (tuple, list))
            and len(image_size) == 2
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in image_size)
        )
        if not ok:
            raise ConfigValueError(f"image_size must be (height, width) positive ints or None, got {image_size!r}")


def info(name: str, data_dir=None) -> DatasetInfo:
    """Shape, classes, split sizes and source of a dataset, without downloading anything.

    When a TFDS dataset is not prepared locally but downloading was asked for
    (``LQBENCH_DOWNLOAD=1``, ``--download``), the answer is the dataset's published metadata
    with ``source="tfds-download"``; when it may not be downloaded (the default), or files
    are missing or corrupt, `DataError` is raised.

    !!! example
        ```python
        meta = lqbench.data.info("mnist")
        meta.input_shape, meta.num_classes, meta.sizes  # (28, 28, 1), 10, {'train': 54000, ...}
        ```
    """
    spec = _spec(name)
    try:
        raw = _resolve(spec, data_dir, download="probe")
    except _NotPrepared:
        if not _download_default(None)[0]:
            raise
        return DatasetInfo(
            spec.name, spec.shape, spec.num_classes, spec.class_names,
            _split_sizes(*spec.official_sizes), "tfds-download", spec.preprocessing.horizontal_flip,
            spec.preprocessing.mean, spec.preprocessing.std,
            location=f"TFDS {spec.tfds_name!r} into {_tfds_dir() or '~/tensorflow_datasets'} (not downloaded yet)",
        )
    sizes = _split_sizes(len(raw.train[1]), len(raw.test[1]) if raw.test is not None else None)
    prep = spec.preprocessing
    mean, std = prep.channel_stats(int(raw.shape[2]))
    location = raw.where or ("scikit-learn's load_digits" if raw.source == "embedded" else "")
    return DatasetInfo(
        spec.name, tuple(int(v) for v in raw.shape), spec.num_classes or len(raw.class_names or ()),
        raw.class_names, sizes, raw.source, prep.horizontal_flip, mean, std, location=location,
    )


def load_arrays(name: str, split: str, data_dir=None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The raw, un-batched images and labels of one split, as NumPy arrays.

    Images are uint8 NHWC as stored (0..255; 0..16 for ``digits``; folder datasets decoded and
    resized to ``info(name).input_shape``), labels int32 class indices. The arrays are
    read-only views of an in-process cache when no copy is needed; copy before writing.

    !!! example
        ```python
        x, y = lqbench.data.load_arrays("digits", "train", seed=0)  # (1294, 8, 8, 1), (1294,)
        ```
    """
    _check_args(split, seed)
    spec = _spec(name)
    raw = _resolve(spec, data_dir, download=None)
    if raw.lazy:
        raw = _materialise(raw, raw.shape, _hint(spec, _data_dir(data_dir)))
    return _split(raw, split, seed)


def load(
    name: str,
    split: str,
    batch_size: int,
    data_dir=None,
    augment: bool = False,
    seed: int = 0,
    image_size: tuple[int, int] | None = None,
    shuffle: bool | None = None,
    drop_remainder: bool = False,
    download: bool | None = None,
):
    """A `tf.data.Dataset` of ``(images, labels)`` batches of one split.

    Images are float32 NHWC, normalised per channel (`Preprocessing`), resized to
    ``image_size`` when given; labels are int32 class indices of shape ``(batch,)``.

    # Arguments
        name: one of `available()` or ``"folder:PATH"``.
        split: ``"train"``, ``"val"`` (10% of the official train split, chosen by ``seed``)
            or ``"test"``.
        batch_size: examples per batch.
        data_dir: root of the original files (default: env ``LQBENCH_DATA_DIR``).
        augment: random flip (where meaningful), rotation ±10° and pad-and-crop, seeded by
            ``seed``; applied to the ``train`` split only (ignored for val/test).
        seed: chooses the val split, the shuffling order and the augmentation draws.
        image_size: ``(height, width)`` to resize to (bilinear), e.g. ``(224, 224)``.
        shuffle: reshuffle every epoch; default True for ``train``, False otherwise.
        drop_remainder: drop the last incomplete batch.
        download: let tensorflow-datasets download a dataset that is not prepared locally;
            default False unless env ``LQBENCH_DOWNLOAD=1`` (``--download``); never with
            ``LQBENCH_OFFLINE=1``.

    Datasets that fit in memory (all array datasets; image folders whose decoded images take
    at most ``LQBENCH_MEMORY_MB``, default 1024 MB) are decoded once and held as uint8 (image
    folders also on disk, in `cache_dir`, so the next process skips the decoding);
    larger image folders are read and decoded from disk in a parallel map every epoch.

    !!! example
        ```python
        train = lqbench.data.load("cifar10", "train", batch_size=128, augment=True, seed=1)
        model.fit(train, validation_data=lqbench.data.load("cifar10", "val", 256, seed=1))
        ```
    """
    _check_args(split, seed, batch_size, image_size)
    spec = _spec(name)
    raw = _resolve(spec, data_dir, download)
    size = tuple(int(v) for v in image_size) if image_size is not None else None
    decode = None
    if raw.lazy:
        shape = (size or raw.shape[:2]) + (raw.shape[2],)
        if raw.num_images() * int(np.prod(shape)) <= _memory_budget():
            raw = _materialise(raw, shape, _hint(spec, _data_dir(data_dir)))
        else:
            from_files = raw.from_files
            decode = lambda item: formats.decode_resize(item, from_files, shape)  # noqa: E731
    data, labels = _split(raw, split, seed)
    return make_dataset(
        data,
        labels,
        preprocessing=spec.preprocessing,
        batch_size=int(batch_size),
        shuffle=(split == "train") if shuffle is None else bool(shuffle),
        augment=bool(augment) and split == "train",
        seed=int(seed),
        image_size=size,
        drop_remainder=drop_remainder,
        decode=decode,
    )
