"""The ``lqbench`` command line: one sub-command module per job in `lqbench.commands`.

Each module ``lqbench/commands/<name>.py`` exposes ``register(subparsers)``, which adds its
parser and sets ``func`` to the function that runs it. Command modules declare the
TensorFlow-backed modules they run with `lqbench._lazy.lazy_module`, so building the parser
loads no TensorFlow: ``lqbench --help`` and ``lqbench <command> --help`` answer at once.

Errors a user can fix derive from `lqbench.errors.LqbenchError` (bad names, wrong types,
impossible values, incompatible settings, missing or corrupt data); they are printed as one
line and exit with status 2, as is a missing file (``FileNotFoundError``). Every other
exception is a bug and keeps its traceback. ``LQBENCH_DEBUG=1`` shows the traceback of user
errors too.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

import lqbench
from lqbench.errors import LqbenchError, UsageError

__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]

COMMANDS = ("run", "train", "tune", "sweep", "report", "convert", "bench", "models", "datasets")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lqbench",
        description="Train, compare and deploy binary neural networks with Larq.",
    )
    parser.add_argument("--version", action="version", version=f"lqbench {lqbench.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"lqbench.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        result = args.func(args)
    except (LqbenchError, FileNotFoundError) as error:
        if os.environ.get("LQBENCH_DEBUG"):
            raise
        message = error.args[0] if error.args else repr(error)
        print(f"lqbench {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lqbench {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
