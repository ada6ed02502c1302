"""The ``lqbench`` command line: one sub-command module per job in `lqbench.commands`.

Each module ``lqbench/commands/<name>.py`` exposes ``register(subparsers)``, which adds its
parser and sets ``func`` to the function that runs it. Errors that users can fix (bad names,
missing files, impossible values) are printed as one line and exit with status 2
(set ``LQBENCH_DEBUG=1`` for the traceback).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

import lqbench

COMMANDS = ("run", "train", "tune", "sweep", "report", "convert", "bench", "models", "datasets")


class UsageError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lqbench",
        description="Train, compare and deploy binary neural networks with Larq.",
    )
    parser.add_argument("--version", action="version", version=f"lqbench {lqbench.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"lqbench.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"lqbench.commands.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        result = args.func(args)
    except (UsageError, ValueError, FileNotFoundError) as error:
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
