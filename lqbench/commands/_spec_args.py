"""Command-line flags that build or override an `ExperimentSpec` (shared by train/tune/run)."""
from __future__ import annotations

import argparse
import json

from lqbench.spec import ExperimentSpec

_SCALARS = {
    "name": str,
    "dataset": str,
    "data_dir": str,
    "model": str,
    "algorithm": str,
    "optimizer": str,
    "learning_rate": float,
    "weight_decay": float,
    "schedule": str,
    "epochs": int,
    "batch_size": int,
}


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", help="TOML experiment spec; the flags below override its fields")
    for field, kind in _SCALARS.items():
        parser.add_argument(f"--{field.replace('_', '-')}", dest=field, type=kind, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds to repeat")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--skip-connections", action=argparse.BooleanOptionalAction, default=None)
    add_execution_arguments(parser)
    parser.add_argument("--post-training-binarization", action=argparse.BooleanOptionalAction, default=None,
                        help="train in full precision, binarize afterwards (paper 003's naive baseline)")
    parser.add_argument("--image-size", type=int, nargs=2, default=None, metavar=("H", "W"))
    parser.add_argument("--binary-weights", dest="b_weights", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--binary-activations", dest="b_activations", action=argparse.BooleanOptionalAction,
                        default=None)
    parser.add_argument("--weight-estimator", dest="b_weight_estimator", default=None)
    parser.add_argument("--activation-estimator", dest="b_activation_estimator", default=None)
    parser.add_argument("--keep-first-last", dest="b_keep_first_last", action=argparse.BooleanOptionalAction,
                        default=None)
    parser.add_argument("--model-args", type=json.loads, default=None, metavar="JSON",
                        help='architecture arguments, e.g. \'{"hidden_units": [512, 512]}\'')
    parser.add_argument("--algorithm-args", type=json.loads, default=None, metavar="JSON")
    parser.add_argument("--optimizer-args", type=json.loads, default=None, metavar="JSON")


def add_execution_arguments(parser: argparse.ArgumentParser) -> None:
    """``--xla {auto,on,off}`` (``--no-xla`` = ``--xla off``; ``--xla`` alone = on); `lqbench.execution`."""
    parser.add_argument("--xla", dest="xla", choices=("auto", "on", "off"), nargs="?", const="on", default=None,
                        help="execution mode of the train step: auto (default: time both, keep the faster), "
                             "on (XLA), off (graph)")
    parser.add_argument("--no-xla", dest="xla", action="store_const", const="off", help="same as --xla off")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="TensorFlow intra-op CPU threads (default: TensorFlow's, one per core)")


def apply_execution_arguments(args: argparse.Namespace) -> None:
    """Size TensorFlow's thread pools from ``--threads`` (call before any TensorFlow op)."""
    threads = getattr(args, "threads", None)
    if threads is not None:
        from lqbench.cli import UsageError
        from lqbench.execution import configure_threads

        if threads < 0:
            raise UsageError(f"--threads: {threads} must be >= 0 (0: TensorFlow's default, one per core)")
        configure_threads(threads or None)


def spec_from_arguments(args: argparse.Namespace, base: ExperimentSpec | None = None) -> ExperimentSpec:
    """The spec of ``--spec`` (or ``base``, or the defaults) with every given flag applied."""
    spec = ExperimentSpec.load(args.spec) if getattr(args, "spec", None) else (base or ExperimentSpec())
    values = {}
    for field in [*_SCALARS, "seeds", "augment", "skip_connections", "xla", "post_training_binarization",
                  "image_size", "model_args", "algorithm_args", "optimizer_args"]:
        value = getattr(args, field, None)
        if value is not None:
            values[field] = list(value) if isinstance(value, tuple) else value
    for key, value in vars(args).items():
        if key.startswith("b_") and value is not None:
            values[f"binarization.{key[2:]}"] = value
    return spec.with_values(values) if values else spec
