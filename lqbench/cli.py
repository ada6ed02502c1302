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
from lqbench import names
from lqbench._keras_env import NativeStderrFilter, progress_verbosity, quiet_python_logs, verbose_requested  # noqa: F401
from lqbench.errors import LqbenchError, UsageError

__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]

COMMANDS = ("run", "train", "tune", "sweep", "report", "convert", "bench", "models", "datasets")
#: Commands that load datasets (they take ``--download``).
DATA_COMMANDS = ("run", "train", "tune", "sweep", "datasets")


def _add_common_flags(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="show TensorFlow's own logs and warnings (hidden by default)")
    if name in DATA_COMMANDS:
        parser.add_argument("--download", action="store_true",
                            help="let tensorflow-datasets download a dataset that is neither in --data-dir nor "
                                 "prepared locally (default: fail at once with where to get it; never with "
                                 "LQBENCH_OFFLINE=1)")


def _names(kind: str) -> str:
    """The valid names of one registry, for --help (`lqbench.names`: no TensorFlow to load)."""
    return ", ".join(names.names(kind))


#: Help of the spec flags that were registered without one: (text, registry whose names it lists).
_FLAG_HELP = {
    "--name": ("run name, the first part of its folder in --output (no '/' or '\\', not starting with '.')", None),
    "--dataset": ("dataset (`lqbench datasets` shows where each comes from); or folder:PATH", "dataset"),
    "--data-dir": ("folder with the original dataset files, e.g. DIR/mnist/*.gz (default: LQBENCH_DATA_DIR)", None),
    "--model": ("zoo model (`lqbench models NAME` summarises one)", "model"),
    "--algorithm": ("training algorithm", "algorithm"),
    "--optimizer": ("optimizer or multi-phase recipe", "optimizer"),
    "--method": ("training method (optimizer, estimator recipe)", "method"),
    "--learning-rate": ("learning rate", None),
    "--weight-decay": ("weight decay (L2 on latent weights)", None),
    "--schedule": ("learning-rate schedule", "schedule"),
    "--epochs": ("training epochs (>= 1)", None),
    "--batch-size": ("examples per batch (>= 1; the global batch under a distributed strategy)", None),
    "--augment": ("random flips (where meaningful), rotations and pad-and-crop on the train split", None),
    "--skip-connections": ("build the model with (or --no-skip-connections: without) its skip connections", None),
    "--image-size": ("resize images to H W pixels (bilinear)", None),
    "--binary-weights": ("binarize the weights (W1; --no-binary-weights: W32)", None),
    "--binary-activations": ("binarize the activations (A1; --no-binary-activations: A32)", None),
    "--weight-estimator": ("sign estimator of the weights", "estimator"),
    "--activation-estimator": ("sign estimator of the activations", "estimator"),
    "--keep-first-last": ("keep the first and last layers in full precision", None),
    "--algorithm-args": ("the algorithm's hyperparameters as JSON, e.g. '{\"gamma\": 20}' for hsic", None),
    "--optimizer-args": ("the optimizer's hyperparameters as JSON, e.g. '{\"threshold\": 1e-8}' for bop", None),
    "--algorithms": ("training algorithms to compare (default: all)", "algorithm"),
    "--objective": ("what the search selects on (validation metric)", None),
    "--distill-temperature": ("softmax temperature of the distillation loss", None),
}


#: Positional arguments that take a registry's names: (command, dest) -> registry.
_POSITIONAL_NAMES = {("models", "name"): "model", ("sweep", "sweep_file"): "preset", ("tune", "spec"): "preset"}


def describe_flags(parser: argparse.ArgumentParser) -> None:
    """Give every flag registered without help a description, with the valid names where a
    registry has them (looked up only when --help is asked for)."""
    command = parser.prog.split()[-1]
    for action in parser._actions:
        kind = _POSITIONAL_NAMES.get((command, action.dest))
        if not action.option_strings and kind and "one of:" not in (action.help or ""):
            names = _names(kind)
            action.help = f"{action.help}; one of: {names}" if names else action.help
            continue
        text, kind = next((_FLAG_HELP[o] for o in action.option_strings if o in _FLAG_HELP), (None, None))
        if text is None:
            continue
        if action.help is None or (kind and "one of:" not in (action.help or "")):
            names = _names(kind) if kind else ""
            base = action.help or text
            action.help = f"{base}; one of: {names}" if names else base


class OneLineParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose usage errors are one line, like every other lqbench
    error (``lqbench train: error: argument --epochs: invalid int value: 'x' (lqbench train
    --help lists the options)``), instead of the whole usage block above the message."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} ({self.prog} --help lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="lqbench",
        description="Train, compare and deploy binary neural networks with Larq.",
    )
    parser.add_argument("--version", action="version", version=f"lqbench {lqbench.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
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
    if argv is None and not verbose_requested():
        NativeStderrFilter().start()  # C++ log lines no TF_CPP_MIN_LOG_LEVEL reaches (XLA's)
    parser = build_parser()
    words = sys.argv[1:] if argv is None else argv
    if "-h" in words or "--help" in words:  # the names are looked up for --help only
        for subparser in parser._subparsers._group_actions[0].choices.values():
            describe_flags(subparser)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # named by the command they were given to: "lqbench train: error: unrecognized ..."
        commands = parser._subparsers._group_actions[0].choices if parser._subparsers else {}
        where = commands.get(getattr(args, "command", None), parser)
        where.error(f"unrecognized arguments: {' '.join(unknown)}")
    quiet_python_logs(verbose=bool(getattr(args, "verbose", False)))
    if getattr(args, "download", False):
        os.environ["LQBENCH_DOWNLOAD"] = "1"  # read by lqbench.data, here and in run processes
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
    except BrokenPipeError:  # the reader of stdout went away (`lqbench ... | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the interpreter's final flush does not fail again
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by a closed pipe
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
