"""The ``lqbench`` command line: one sub-command module per job in `lqbench.commands`.

Each module ``lqbench/commands/<name>.py`` exposes ``register(subparsers)``, which adds its
parser and sets ``func`` to the function that runs it. Errors that users can fix (bad names,
missing files, impossible values) are printed as one line and exit with status 2
(set ``LQBENCH_DEBUG=1`` for the traceback).

Quiet by default: TensorFlow's C++ and Python logs, XLA's info lines and third-party warnings
are hidden (`lqbench._keras_env`); ``--verbose`` on any command shows them. Training shows a
Keras progress bar per batch when stdout is a terminal, one line per epoch otherwise
(`progress_verbosity`). ``--download`` lets tensorflow-datasets download a dataset that is
neither in ``--data-dir`` nor prepared locally (never by default).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

import lqbench

COMMANDS = ("run", "train", "tune", "sweep", "report", "convert", "bench", "models", "datasets")
#: Commands that load datasets (they take ``--download``).
DATA_COMMANDS = ("run", "train", "tune", "sweep", "datasets")


def progress_verbosity(quiet: bool = False) -> int:
    """Keras ``verbose`` for training: 0 when quiet, a progress bar per batch (1) when stdout is
    a terminal, one line per epoch (2) when it is a file or a pipe."""
    if quiet:
        return 0
    try:
        return 1 if sys.stdout.isatty() else 2
    except (AttributeError, ValueError):
        return 2


def _add_common_flags(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="show TensorFlow's own logs and warnings (hidden by default)")
    if name in DATA_COMMANDS:
        parser.add_argument("--download", action="store_true",
                            help="let tensorflow-datasets download a dataset that is neither in --data-dir nor "
                                 "prepared locally (default: fail at once with where to get it; never with "
                                 "LQBENCH_OFFLINE=1)")


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
    for name, subparser in subparsers.choices.items():
        _add_common_flags(subparser, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; ``argv=None`` (the ``lqbench`` program) also filters native logs."""
    from lqbench._keras_env import NativeStderrFilter, quiet_python_logs, verbose_requested

    if argv is None and not verbose_requested():
        NativeStderrFilter().start()  # C++ log lines no TF_CPP_MIN_LOG_LEVEL reaches (XLA's)
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_python_logs(verbose=bool(getattr(args, "verbose", False)))
    if getattr(args, "download", False):
        os.environ["LQBENCH_DOWNLOAD"] = "1"  # read by lqbench.data, here and in run processes
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
