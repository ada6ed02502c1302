"""``lqbench datasets``: list the datasets and where each would be loaded from."""
from __future__ import annotations

from lqbench._lazy import lazy_module

data = lazy_module("lqbench.data")


def register(subparsers) -> None:
    parser = subparsers.add_parser("datasets", help="list datasets and their sources")
    parser.add_argument("--data-dir", default=None)
    parser.set_defaults(func=run)


def run(args) -> int:
    for name in data.available():
        try:
            info = data.info(name, data_dir=args.data_dir)
            sizes = "/".join(str(info.sizes[s]) for s in ("train", "val", "test"))
            print(f"{name:14s} {str(info.input_shape):14s} {info.num_classes:4d} classes  "
                  f"train/val/test {sizes}  from {info.source}")
        except Exception as error:  # noqa: BLE001 - listing must go on
            print(f"{name:14s} not available here: {str(error).splitlines()[0]}")
    return 0
