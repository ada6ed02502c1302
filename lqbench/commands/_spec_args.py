"""Command-line flags that build or override an `ExperimentSpec` (shared by train/tune).

Flags override the ``--spec`` file's fields; tables merge key by key: ``--model-args``,
``--algorithm-args``, ``--method-args`` (JSON) and ``--set KEY=VALUE`` (repeatable; a dotted
KEY such as ``model_args.hidden_units`` sets one entry of a table, VALUE is read as TOML:
``[512, 512]``, ``true``, ``1e-3``, bare words are strings). Switching ``--model``,
``--algorithm`` or ``--method`` to another name starts that table from the new name's defaults
(another model's arguments are never inherited). This module loads no TensorFlow.
"""
from __future__ import annotations

import argparse
import json

from lqbench._lazy import lazy_module
from lqbench.errors import UsageError
from lqbench.spec import DEFAULT_MODEL_ARGS, LEGACY_OPTIMIZERS, ExperimentSpec, parse_value

execution = lazy_module("lqbench.execution")

__all__ = ["STRATEGIES", "add_execution_arguments", "add_spec_arguments", "add_strategy_argument", "apply_execution_arguments",
           "parse_set", "spec_from_arguments"]

#: `lqbench.distribute.STRATEGIES` (repeated here so that building the parser loads no TensorFlow).
STRATEGIES = ("default", "mirrored", "multiworker")

_SCALARS = {
    "name": str,
    "dataset": str,
    "data_dir": str,
    "model": str,
    "algorithm": str,
    "method": str,
    "learning_rate": float,
    "weight_decay": float,
    "schedule": str,
    "epochs": int,
    "batch_size": int,
}
# A table whose entries belong to the name in another field: switching the name resets it.
_OWNED_TABLES = {"model": "model_args", "algorithm": "algorithm_args", "method": "method_args"}


def add_strategy_argument(parser) -> None:
    """``--strategy default|mirrored|multiworker`` for the training commands."""
    parser.add_argument("--strategy", choices=STRATEGIES, default="default",
                        help="tf.distribute strategy (multiworker reads TF_CONFIG); --batch-size is the global batch")


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", help="TOML experiment spec; the flags below override its fields")
    for field, kind in _SCALARS.items():
        parser.add_argument(f"--{field.replace('_', '-')}", dest=field, type=kind, default=None)
    parser.add_argument("--optimizer", dest="legacy_optimizer", default=None, metavar="NAME",
                        help="earlier name of --method (adam and sgd mean --method ste with that optimizer)")
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
                        help='architecture arguments merged into the spec\'s, e.g. \'{"hidden_units": [512, 512]}\'')
    parser.add_argument("--algorithm-args", type=json.loads, default=None, metavar="JSON")
    parser.add_argument("--method-args", type=json.loads, default=None, metavar="JSON",
                        help='method hyperparameters, e.g. \'{"gamma": 1e-4}\' (lqbench.methods)')
    parser.add_argument("--optimizer-args", dest="legacy_optimizer_args", type=json.loads, default=None,
                        metavar="JSON", help="earlier name of --method-args")
    parser.add_argument("--init-from", dest="init_from", default=None, metavar="PATH",
                        help="start from the weights of this saved model: a .keras/.h5 file, a run folder, or the "
                             "name of a run in --output (same seed); {seed} is replaced by the seed; a relative "
                             "path is looked up in --output, then here (spec field init_from)")
    parser.add_argument("--teacher", "--distill-teacher", dest="d_teacher", default=None, metavar="PATH",
                        help="distil from this saved Keras model, found as --init-from's, with any --algorithm "
                             "(spec table distillation; lqbench.distillation)")
    parser.add_argument("--distill-alpha", dest="d_alpha", type=float, default=None,
                        help="weight of the distributional loss (default 1)")
    parser.add_argument("--distill-temperature", dest="d_temperature", type=float, default=None)
    parser.add_argument("--distill-ce-weight", dest="d_ce_weight", type=float, default=None,
                        help="weight of cross-entropy on the labels (default 0: KD alone, as ReActNet)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="set a spec field or table entry (repeatable), e.g. model_args.hidden_units=[512,512]")


def parse_set(text: str) -> tuple[str, object]:
    """``"model_args.hidden_units=[512, 512]"`` -> ``("model_args.hidden_units", [512, 512])``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--set {text!r} is not KEY=VALUE")
    return key.strip(), parse_value(value.strip())


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
        if threads < 0:
            raise UsageError(f"--threads: {threads} must be >= 0 (0: TensorFlow's default, one per core)")
        execution.configure_threads(threads or None)


def spec_from_arguments(args: argparse.Namespace, base: ExperimentSpec | None = None) -> ExperimentSpec:
    """The spec of ``--spec`` (or ``base``, or the defaults) with every given flag merged in."""
    spec = ExperimentSpec.load(args.spec) if getattr(args, "spec", None) else (base or ExperimentSpec())
    config = spec.to_dict()
    values = {field: getattr(args, field, None) for field in _SCALARS}
    values = {k: v for k, v in values.items() if v is not None}
    legacy = getattr(args, "legacy_optimizer", None)
    fixed: dict = {}
    if legacy is not None and "method" not in values:
        values["method"], fixed = LEGACY_OPTIMIZERS.get(legacy, (legacy, {}))
    for name, table in _OWNED_TABLES.items():
        if name in values and values[name] != config.get(name):
            config[table] = dict(DEFAULT_MODEL_ARGS.get(values[name], {})) if name == "model" else {}
    config.update(values)
    if fixed:
        config["method_args"] = {**config["method_args"], **fixed}
    for field in ("seeds", "augment", "skip_connections", "xla", "post_training_binarization", "image_size",
                  "init_from"):
        value = getattr(args, field, None)
        if value is not None:
            config[field] = list(value) if isinstance(value, tuple) else value
    for field, table in (("model_args", "model_args"), ("algorithm_args", "algorithm_args"),
                         ("method_args", "method_args"), ("legacy_optimizer_args", "method_args")):
        value = getattr(args, field, None)
        if value is not None:
            if not isinstance(value, dict):
                raise UsageError(f"--{field.replace('legacy_', '').replace('_', '-')}: expected a JSON object, got {value!r}")
            config[table] = {**(config.get(table) or {}), **value}
    for key, value in vars(args).items():
        if key.startswith("b_") and value is not None:
            config["binarization"] = {**config["binarization"], key[2:]: value}
        if key.startswith("d_") and value is not None:
            config["distillation"] = {**(config.get("distillation") or {}), key[2:]: value}
    spec = ExperimentSpec.from_dict(config)
    assignments = [parse_set(text) for text in getattr(args, "assignments", []) or []]
    return spec.with_values(dict(assignments)) if assignments else spec
