"""lqbench.data readers of original files (written here in their formats), errors and TFDS."""
import gzip
import os
import pickle
import socket
import tarfile
import time

import numpy as np
import pytest

import lqbench  # noqa: F401  (tf-keras before TensorFlow)
import lqbench.data as data
import tensorflow as tf
from lqbench.data import formats


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No real data dir, an empty TFDS dir, no download and no network for these tests."""
    monkeypatch.setenv("LQBENCH_DATA_DIR", str(tmp_path / "no-such-dir"))
    monkeypatch.setenv("LQBENCH_TFDS_DIR", str(tmp_path / "empty-tfds"))
    monkeypatch.setenv("LQBENCH_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)


# ------------------------------------------------------------------------------- IDX


def _write_idx(path, magic, dims, payload=None, level=1):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    if payload is None:
        payload = bytes(int(np.prod(dims)))
    with gzip.open(path, "wb", compresslevel=level) as f:
        f.write(header + payload)


def _mnist_folder(tmp_path, mnist_dir, **replace):
    """DATA_DIR/mnist with the real files linked in, except those in ``replace`` (name -> writer)."""
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for name in formats.IDX_FILES:
        target = folder / f"{name}.gz"
        if name in replace:
            replace[name](target)
        else:
            target.symlink_to(mnist_dir / f"{name}.gz")
    return tmp_path / "data"


def _expect_error(fragments, fn, *args, **kwargs):
    with pytest.raises(data.DataError) as err:
        fn(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_idx_bad_magic_names_file_and_remedy(tmp_path, mnist_dir):
    root = _mnist_folder(tmp_path, mnist_dir, **{
        "t10k-images-idx3-ubyte": lambda p: _write_idx(p, 1234, (10000, 28, 28))})
    _expect_error(
        ["t10k-images-idx3-ubyte.gz", "bad IDX magic 1234 (expected 2051)", "tfds.load('mnist')", str(root / "mnist")],
        data.load_arrays, "mnist", "test", data_dir=root,
    )


def test_idx_wrong_label_count(tmp_path, mnist_dir):
    root = _mnist_folder(tmp_path, mnist_dir, **{
        "t10k-labels-idx1-ubyte": lambda p: _write_idx(p, 2049, (9999,))})
    _expect_error(["t10k-labels-idx1-ubyte.gz", "counts 9999 items (expected 10000)"],
                  data.load, "mnist", "train", 32, data_dir=root)


def test_idx_truncated_gzip(tmp_path, mnist_dir):
    def truncated(path):
        blob = (mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()
        path.write_bytes(blob[: len(blob) // 2])

    root = _mnist_folder(tmp_path, mnist_dir, **{"t10k-labels-idx1-ubyte": truncated})
    _expect_error(["t10k-labels-idx1-ubyte.gz", "truncated or corrupt gzip"], data.info, "mnist", data_dir=root)


def test_idx_short_payload_wrong_dims_and_label_range(tmp_path):
    hint = "HINT"
    p = tmp_path / "short.gz"
    _write_idx(p, 2051, (10, 28, 28), payload=bytes(10 * 784 - 5))
    _expect_error(["short.gz", "truncated", "HINT"], formats.read_idx, p, magic=2051, count=10, shape=(28, 28), hint=hint)
    _write_idx(p, 2051, (10, 27, 28))
    _expect_error(["item shape (27, 28) (expected (28, 28))"], formats.read_idx, p, magic=2051, count=10, shape=(28, 28), hint=hint)
    _write_idx(p, 2049, (3,), payload=bytes([1, 12, 3]))
    _expect_error(["label 12 out of range 0..9"], formats.read_idx, p, magic=2049, count=3, num_classes=10, hint=hint)


def test_partial_mnist_folder_is_an_error_not_a_fallback(tmp_path, mnist_dir):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").symlink_to(mnist_dir / "train-images-idx3-ubyte.gz")
    _expect_error(["train-labels-idx1-ubyte.gz", "missing"], data.load_arrays, "mnist", "train", data_dir=tmp_path)


def test_offline_tfds_fails_fast_without_network_and_never_substitutes(tmp_path):
    start = time.perf_counter()
    message = _expect_error(
        ["mnist", "not prepared", "LQBENCH_OFFLINE=1", "tfds.load('mnist')", "no-such-dir/mnist"],
        data.load, "mnist", "train", 32,
    )
    assert "empty-tfds" in message
    _expect_error(["cifar10", "download=False"], data.load, "cifar10", "test", 8, download=False)
    _expect_error(["svhn_cropped", "LQBENCH_OFFLINE=1"], data.info, "svhn_cropped")
    _expect_error(["indoor67", "indoorCVPR_09.tar"], data.info, "indoor67")
    assert time.perf_counter() - start < 5.0
    assert not (tmp_path / "empty-tfds").exists() or not any((tmp_path / "empty-tfds").rglob("*.tfrecord*"))


def test_cli_reports_data_errors_in_one_line(tmp_path, mnist_dir, capsys):
    """Issue #16 row 5: truncated MNIST, or a dataset that is nowhere, through `lqbench train`: one line, exit 2."""
    from lqbench import cli

    def truncated(path):
        path.write_bytes((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()[:100])

    root = _mnist_folder(tmp_path, mnist_dir, **{"t10k-labels-idx1-ubyte": truncated})
    common = ["--model", "binarynet_mlp", "--epochs", "1", "--output", str(tmp_path / "out"), "--in-process"]
    assert cli.main(["train", "--dataset", "mnist", "--data-dir", str(root), *common]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert error.startswith("lqbench train: error: ") and "t10k-labels-idx1-ubyte.gz: truncated or corrupt gzip" in error
    assert cli.main(["train", "--dataset", "cifar10", *common]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cifar10" in error and "not prepared" in error


def test_missing_dataset_fails_at_once_without_a_download_unless_asked(tmp_path, monkeypatch, capsys):
    """Issue #16 row 6: an empty DATA_DIR/mnist and no LQBENCH_OFFLINE: no TFDS download, the hint at once;
    `lqbench datasets` says which datasets are here and which are not."""
    import tensorflow_datasets as tfds

    from lqbench import cli

    def no_download(*args, **kwargs):
        raise AssertionError("a TFDS download was started")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    monkeypatch.delenv("LQBENCH_OFFLINE")
    monkeypatch.delenv("LQBENCH_DOWNLOAD", raising=False)
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    start = time.perf_counter()
    message = _expect_error(["mnist", "is empty", "not prepared", "--download", "tfds.load('mnist')"],
                            data.load, "mnist", "train", 32, data_dir=tmp_path / "data")
    assert str(tmp_path / "data" / "mnist") in message
    assert time.perf_counter() - start < 5.0

    assert cli.main(["datasets", "--data-dir", str(tmp_path / "data")]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "from embedded" in lines["digits"]
    for name in ("mnist", "cifar10", "svhn_cropped", "imagenette", "indoor67"):
        assert "not available here" in lines[name] and "from" not in lines[name].split(":")[0], lines[name]
    assert "--download" in lines["cifar10"] and "indoorCVPR_09.tar" in lines["indoor67"]

    monkeypatch.setenv("LQBENCH_DOWNLOAD", "1")  # what --download sets: now TFDS would fetch it
    assert cli.main(["datasets", "--data-dir", str(tmp_path / "data")]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "from TFDS download (--download)" in lines["cifar10"]
    assert "not available here" in lines["indoor67"]  # TFDS has no Indoor67: files only


def test_info_never_downloads_and_reports_published_metadata(monkeypatch):
    monkeypatch.setenv("LQBENCH_OFFLINE", "0")
    monkeypatch.setenv("LQBENCH_DOWNLOAD", "1")  # downloads asked for, but info() must not start one
    meta = data.info("cifar100")
    assert meta.source == "tfds-download" and "not downloaded yet" in meta.location and meta.sizes == {"train": 45000, "val": 5000, "test": 10000}
    assert meta.input_shape == (32, 32, 3) and meta.num_classes == 100
    assert data.info("svhn_cropped").sizes == {"train": 65931, "val": 7326, "test": 26032}


def test_tfds_source_through_mocked_builder(monkeypatch):
    import tensorflow_datasets as tfds

    # mock_data replaces download_and_prepare and as_dataset with local fakes (the socket
    # guard above would fail the test on any network access), so "download" may be on
    monkeypatch.setenv("LQBENCH_OFFLINE", "0")
    monkeypatch.setenv("LQBENCH_DOWNLOAD", "1")
    with tfds.testing.mock_data(num_examples=40):
        x, y = data.load_arrays("cifar10", "train")
        meta = data.info("cifar10")
        xb, yb = next(iter(data.load("cifar10", "test", 16, augment=True)))
    assert x.shape == (36, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int32
    assert meta.source == "tfds" and meta.sizes == {"train": 36, "val": 4, "test": 40}
    assert meta.class_names[0] == "airplane"
    assert xb.shape == (16, 32, 32, 3) and yb.dtype == tf.int32


# ------------------------------------------------------------------------------ CIFAR


def _cifar_batch(rng, n, label_key=b"labels", num_classes=10):
    return {
        b"batch_label": b"testing",
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        label_key: rng.integers(0, num_classes, n).tolist(),
        b"filenames": [b"x.png"] * n,
    }


def _write_cifar10(folder, rng, n=20, corrupt=None):
    folder.mkdir(parents=True)
    batches = {f"data_batch_{i}": _cifar_batch(rng, n) for i in range(1, 6)}
    batches["test_batch"] = _cifar_batch(rng, n)
    if corrupt:
        corrupt(batches)
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    meta = {b"label_names": names, b"num_cases_per_batch": n, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return batches


def _tar(source_dir, archive, arcname):
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source_dir, arcname=arcname)


def test_cifar10_batches_and_tarball(tmp_path):
    rng = np.random.default_rng(0)
    batches = _write_cifar10(tmp_path / "a" / "cifar-10-batches-py", rng)
    x, y = data.load_arrays("cifar10", "test", data_dir=tmp_path / "a")
    raw, labels = batches["test_batch"][b"data"], batches["test_batch"][b"labels"]
    # channel-major rows: pixel (r, c) of channel k is raw[k * 1024 + r * 32 + c]
    for i, r, c, k in [(0, 0, 0, 0), (3, 5, 31, 2), (19, 31, 7, 1)]:
        assert x[i, r, c, k] == raw[i, k * 1024 + r * 32 + c]
    np.testing.assert_array_equal(y, labels)
    meta = data.info("cifar10", data_dir=tmp_path / "a")
    assert meta.sizes == {"train": 90, "val": 10, "test": 20} and meta.source == "files"
    assert meta.class_names[-1] == "truck" and meta.input_shape == (32, 32, 3) and meta.horizontal_flip
    train = np.concatenate([batches[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
    x_tr, _ = data.load_arrays("cifar10", "train", data_dir=tmp_path / "a")
    x_va, _ = data.load_arrays("cifar10", "val", data_dir=tmp_path / "a")
    together = {r.tobytes() for r in np.concatenate([x_tr, x_va]).transpose(0, 3, 1, 2).reshape(-1, 3072)}
    assert together == {r.tobytes() for r in train}

    _tar(tmp_path / "a" / "cifar-10-batches-py", tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py")
    x_tar, y_tar = data.load_arrays("cifar10", "test", data_dir=tmp_path)
    np.testing.assert_array_equal(x_tar, x)
    np.testing.assert_array_equal(y_tar, y)

    # the pipeline normalises with the CIFAR-10 statistics, per channel
    xb, _ = next(iter(data.load("cifar10", "test", 20, data_dir=tmp_path)))
    mean, std = np.array([0.4914, 0.4822, 0.4465]), np.array([0.2470, 0.2435, 0.2616])
    np.testing.assert_allclose(xb.numpy(), (x / 255.0 - mean) / std, atol=1e-5)
    xa, _ = next(iter(data.load("cifar10", "train", 32, data_dir=tmp_path, augment=True, seed=2)))
    assert xa.shape == (32, 32, 32, 3)


def test_cifar100_fine_labels(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    train, test = _cifar_batch(rng, 50, b"fine_labels", 100), _cifar_batch(rng, 30, b"fine_labels", 100)
    (folder / "train").write_bytes(pickle.dumps(train, protocol=2))
    (folder / "test").write_bytes(pickle.dumps(test, protocol=2))
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": [b"c%d" % i for i in range(100)]}))
    x, y = data.load_arrays("cifar100", "test", data_dir=tmp_path)
    assert x.shape == (30, 32, 32, 3)
    np.testing.assert_array_equal(y, test[b"fine_labels"])
    assert data.info("cifar100", data_dir=tmp_path).class_names[42] == "c42"


@pytest.mark.parametrize(
    "corrupt, fragments",
    [
        (lambda b: b["data_batch_3"].__setitem__(b"data", np.zeros((20, 3000), np.uint8)),
         ["data_batch_3", "shape (20, 3000) (expected (N, 3072))"]),
        (lambda b: b["test_batch"].__setitem__(b"labels", [0] * 19),
         ["test_batch", "19 labels for 20 images"]),
        (lambda b: b["data_batch_1"].__setitem__(b"data", np.zeros((20, 3072), np.float32)),
         ["data_batch_1", "dtype float32 (expected uint8)"]),
        (lambda b: b["data_batch_2"].__setitem__(b"labels", [0.5] * 20),
         ["data_batch_2", "labels have type float64"]),
        (lambda b: b.pop("data_batch_5"), ["data_batch_5", "missing"]),
    ],
)
def test_cifar_corrupt_files(tmp_path, corrupt, fragments):
    _write_cifar10(tmp_path / "cifar-10-batches-py", np.random.default_rng(0), n=20, corrupt=corrupt)
    _expect_error(fragments + ["cifar-10-python.tar.gz"], data.load_arrays, "cifar10", "train", data_dir=tmp_path)


def test_cifar_truncated_tarball(tmp_path):
    _write_cifar10(tmp_path / "src" / "cifar-10-batches-py", np.random.default_rng(0))
    archive = tmp_path / "cifar-10-python.tar.gz"
    _tar(tmp_path / "src" / "cifar-10-batches-py", archive, "cifar-10-batches-py")
    archive.write_bytes(archive.read_bytes()[:-2000])
    _expect_error(["cifar-10-python.tar.gz", "truncated or corrupt"], data.load, "cifar10", "train", 8, data_dir=tmp_path)


# ------------------------------------------------------------------------------- SVHN


def test_svhn_mat_labels_ten_is_zero(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(2)
    folder = tmp_path / "svhn_cropped"
    folder.mkdir()
    for split, n in (("train", 30), ("test", 12)):
        savemat(folder / f"{split}_32x32.mat", {
            "X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
            "y": np.arange(n).reshape(-1, 1) % 10 + 1,
        })
    x, y = data.load_arrays("svhn_cropped", "test", data_dir=tmp_path)
    assert x.shape == (12, 32, 32, 3)
    np.testing.assert_array_equal(y, (np.arange(12) % 10 + 1) % 10)
    assert not data.info("svhn_cropped", data_dir=tmp_path).horizontal_flip


# ----------------------------------------------------------------------------- folders


def _write_images(folder, classes, per_class, size=(6, 5), fmt="png", rng=None):
    rng = rng or np.random.default_rng(3)
    written = {}
    for name in classes:
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size + (3,), dtype=np.uint8)
            encode = tf.io.encode_png if fmt == "png" else tf.io.encode_jpeg
            path = folder / name / f"img{i:02d}.{fmt}"
            path.write_bytes(encode(pixels).numpy())
            written[str(path)] = pixels
    return written


def test_folder_single_split_in_memory_and_lazy(tmp_path, monkeypatch):
    root = tmp_path / "shapes"
    written = _write_images(root, ["circle", "square", "triangle"], 10)
    (root / "square" / "notes.txt").write_text("ignored: not an image")
    name = f"folder:{root}"
    meta = data.info(name)
    assert meta.class_names == ("circle", "square", "triangle") and meta.num_classes == 3
    assert meta.input_shape == (6, 5, 3) and meta.sizes == {"train": 22, "val": 2, "test": 6}
    x, y = data.load_arrays(name, "test", seed=4)
    assert np.bincount(y).tolist() == [2, 2, 2]  # fixed stratified 20%
    pixel_sets = {p.tobytes() for p in written.values()}
    assert all(img.tobytes() in pixel_sets for img in x)  # PNG decodes losslessly
    np.testing.assert_array_equal(data.load_arrays(name, "test", seed=9)[0], x)

    in_memory = [(a.numpy(), b.numpy()) for a, b in data.load(name, "train", 8, shuffle=False)]
    monkeypatch.setenv("LQBENCH_MEMORY_MB", "0")  # force lazy reading from disk
    lazy = [(a.numpy(), b.numpy()) for a, b in data.load(name, "train", 8, shuffle=False)]
    assert len(lazy) == len(in_memory) == 3
    for (xa, ya), (xb, yb) in zip(in_memory, lazy):
        np.testing.assert_allclose(xa, xb, atol=1e-6)
        np.testing.assert_array_equal(ya, yb)
    resized = next(iter(data.load(name, "train", 4, image_size=(12, 10), augment=True)))[0]
    assert resized.shape == (4, 12, 10, 3)


def test_decoded_image_folders_are_cached_on_disk_between_processes(tmp_path, monkeypatch):
    from lqbench.data import datasets, formats

    root = tmp_path / "shapes"
    _write_images(root, ["circle", "square"], 6)
    cache = tmp_path / "cache"
    monkeypatch.setenv("LQBENCH_CACHE_DIR", str(cache))
    name = f"folder:{root}"
    first = data.load_arrays(name, "train", seed=1)
    files = list((cache / "decoded").glob("*.npz"))
    assert len(files) == 1
    decoded = []
    real_decode = formats.decode_images

    def counting_decode(*args, **kwargs):
        decoded.append(1)
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(formats, "decode_images", counting_decode)
    datasets._CACHE.clear()  # as in a new process
    second = data.load_arrays(name, "train", seed=1)
    assert not decoded  # read from the disk cache, not decoded again
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    # a changed image is a new cache entry, never a stale hit
    changed = root / "circle" / "img00.png"
    changed.write_bytes(tf.io.encode_png(np.zeros((6, 5, 3), np.uint8)).numpy())
    os.utime(changed, ns=(1, 1))
    datasets._CACHE.clear()
    data.load_arrays(name, "train", seed=1)
    assert len(decoded) == 1 and len(list((cache / "decoded").glob("*.npz"))) == 2
    # a broken cache file is decoded again and rewritten
    for path in (cache / "decoded").glob("*.npz"):
        path.write_bytes(b"not a zip")
    datasets._CACHE.clear()
    again = data.load_arrays(name, "train", seed=1)
    assert len(decoded) == 2 and again[0].shape == first[0].shape
    # turned off: nothing is written
    monkeypatch.setenv("LQBENCH_CACHE_DIR", "off")
    assert datasets.cache_dir() is None
    datasets._CACHE.clear()
    data.load_arrays(f"folder:{root}", "test")
    assert len(decoded) == 3 and len(list((cache / "decoded").glob("*.npz"))) == 2


def test_folder_with_split_lists_and_train_val_layout(tmp_path):
    root = tmp_path / "scenes"
    _write_images(root / "Images", ["bar", "kitchen"], 5)
    (root / "TrainImages.txt").write_text("bar/img00.png\nbar/img01.png\nbar/img02.png\nkitchen/img00.png\nkitchen/img03.png\n")
    (root / "TestImages.txt").write_text("bar/img04.png\nkitchen/img04.png\n")
    assert data.info(f"folder:{root}").sizes == {"train": 4, "val": 1, "test": 2}
    assert data.load_arrays(f"folder:{root}", "test")[1].tolist() == [0, 1]

    wnids = ["n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
             "n03394916", "n03417042", "n03425413", "n03445777", "n03888257"]
    _write_images(tmp_path / "imagenette2-160" / "train", wnids, 3, size=(20, 16), fmt="jpeg")
    _write_images(tmp_path / "imagenette2-160" / "val", wnids, 1, size=(16, 20), fmt="jpeg")
    meta = data.info("imagenette", data_dir=tmp_path)
    assert meta.class_names[0] == "tench" and meta.input_shape == (224, 224, 3)
    assert meta.sizes == {"train": 27, "val": 3, "test": 10} and meta.source == "files"
    xb, yb = next(iter(data.load("imagenette", "test", 10, data_dir=tmp_path, image_size=(32, 32))))
    assert xb.shape == (10, 32, 32, 3) and sorted(yb.numpy().tolist()) == list(range(10))


def test_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    _expect_error(["empty", "no class sub-folders"], data.info, f"folder:{empty}")
    root = tmp_path / "animals"
    _write_images(root, ["cat", "dog"], 3)
    (root / "emu").mkdir()
    _expect_error([str(root / "emu"), "class folder has no images"], data.load, f"folder:{root}", "train", 4)
    (root / "emu" / "broken.png").write_bytes(b"this is not a png")
    _expect_error(["broken.png", "unreadable image"], data.load_arrays, f"folder:{root}", "train")
    _expect_error(["image folder not found"], data.info, f"folder:{tmp_path / 'missing'}")
    # an image whose header is fine but whose body is garbage fails at decoding, named
    (root / "emu" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    _expect_error(["broken.png", "unreadable image"], data.load_arrays, f"folder:{root}", "test")


def test_grayscale_folder_keeps_one_channel_and_averages_imagenet_stats(tmp_path):
    root = tmp_path / "gray"
    for c, value in (("dark", 0), ("light", 200)):
        (root / c).mkdir(parents=True)
        for i in range(5):
            pixels = np.full((4, 4, 1), value, np.uint8)
            (root / c / f"{i}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    meta = data.info(f"folder:{root}")
    assert meta.input_shape == (4, 4, 1) and meta.mean == pytest.approx((0.449,), abs=1e-3)
    xb, yb = next(iter(data.load(f"folder:{root}", "test", 8)))
    expected = (np.where(yb.numpy() == 0, 0.0, 200.0) / 255.0 - 0.449) / 0.226
    np.testing.assert_allclose(xb.numpy()[:, 0, 0, 0], expected, atol=1e-3)
