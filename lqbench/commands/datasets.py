"""``lqbench datasets``: list the datasets and where each would be loaded from, here and now."""
from __future__ import annotations

from lqbench._lazy import lazy_module

data = lazy_module("lqbench.data")
_SOURCES = {
    "files": "files",
    "tfds": "TFDS, prepared",
    "embedded": "embedded",
    "tfds-download": "TFDS download (--download)",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "datasets", help="list datasets and where each would come from",
        description="For every dataset name accepted by --dataset (and folder:PATH for an image folder): shape, "
                    "classes, train/val/test sizes and where `lqbench train` would read it from, checked now: "
                    "original files under --data-dir (or LQBENCH_DATA_DIR), a TFDS copy already prepared in "
                    "LQBENCH_TFDS_DIR/TFDS_DATA_DIR/~/tensorflow_datasets, the embedded digits, or a TFDS "
                    "download when --download is given. Otherwise: not available, and how to get it.")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="folder with the original dataset files, e.g. DIR/mnist/*.gz (default: LQBENCH_DATA_DIR)")
    parser.set_defaults(func=run)


def run(args) -> int:
    for name in data.available():
        try:
            info = data.info(name, data_dir=args.data_dir)
        except data.DataError as error:
            message = " ".join(str(error).split())
            message = message[len(name) + 2:] if message.startswith(f"{name}: ") else message
            print(f"{name:14s} not available here: {message}")
            continue
        sizes = "/".join(str(info.sizes[s]) for s in ("train", "val", "test"))
        where = f": {info.location}" if info.location else ""
        print(f"{name:14s} {str(info.input_shape):14s} {info.num_classes:4d} classes  "
              f"train/val/test {sizes:18s} from {_SOURCES.get(info.source, info.source)}{where}")
    return 0
