"""``lqbench sweep``: run a sweep file (or a spec with --axis products) resumably."""
from __future__ import annotations

import pathlib
from typing import Any

from lqbench._compat import tomllib
from lqbench._lazy import lazy_module
from lqbench.commands._spec_args import add_execution_arguments, add_strategy_argument, apply_execution_arguments
from lqbench.errors import UsageError

distribute = lazy_module("lqbench.distribute")
experiment = lazy_module("lqbench.experiment")
presets = lazy_module("lqbench.presets")
storage = lazy_module("lqbench.storage")
sweep = lazy_module("lqbench.sweep")
tuning = lazy_module("lqbench.tuning")
from lqbench._keras_env import progress_verbosity
from lqbench.commands._types import non_negative_int, positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep", help="run many specs x seeds resumably (kill and restart at will)",
        description="Run every configuration of a sweep file ([base] + [axes] tables, see lqbench.sweep) or of a "
                    "spec file times --axis products, for every seed, into --output. A restarted sweep skips "
                    "finished runs and redoes half-written ones; failed runs (NaN loss, errors) are recorded and "
                    "the sweep goes on. SWEEP may be a file or a preset name (lqbench.presets).")
    parser.add_argument("sweep_file", metavar="SWEEP", help="sweep or spec TOML file, or a preset name")
    parser.add_argument("--axis", action="append", default=[], metavar="KEY=V1,V2",
                        help="add a product axis (repeatable), e.g. algorithm=bp,dfa or binarization=W1A1,W32A32")
    parser.add_argument("--output", default="lqbench-results/sweep", help="results folder")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=None, metavar="SEED",
                        help="override every spec's seeds")
    parser.add_argument("--epochs", type=positive_int, default=None, help="override every spec's epochs")
    add_execution_arguments(parser)
    parser.add_argument("--retry-failed", action="store_true", help="redo runs recorded as failed")
    parser.add_argument("--resume-partial", action="store_true",
                        help="continue half-written runs from their Keras backup instead of redoing them")
    parser.add_argument("--tune", action="store_true",
                        help="grid-search every configuration first (paper 000's protocol; also `tune = true`)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and their state, train nothing")
    parser.add_argument("--quiet", action="store_true",
                        help="no training progress (default: a progress bar per batch on a terminal, one line "
                             "per epoch otherwise)")
    parser.add_argument("--in-process", action="store_true",
                        help="train every run in this process instead of one fresh process per run (saves the "
                             "~5 s start of each; peak memory then depends on the runs before)")
    add_strategy_argument(parser)
    parser.set_defaults(func=run)


def parse_values(text: str) -> list:
    """``"1e-3,1e-4"`` -> ``[0.001, 0.0001]``; TOML values (numbers, booleans, quoted strings,
    arrays, inline tables) or bare words (``bp,dfa`` -> ``["bp", "dfa"]``)."""
    try:
        return list(tomllib.loads(f"v = [{text}]")["v"])
    except tomllib.TOMLDecodeError:
        return [word.strip() for word in text.split(",") if word.strip()]


def parse_assignment(text: str) -> tuple[str, list]:
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise UsageError(f"{text!r} is not KEY=V1,V2,...")
    return key.strip(), parse_values(values)


def load(sweep_file: str, axes: list[str], overrides: dict[str, Any]):
    path = pathlib.Path(sweep_file)
    if not path.exists() and sweep_file in presets.available():
        path = presets.path(sweep_file)
    sweep_spec = sweep.SweepSpec.load(path)
    if overrides:
        sweep_spec.base = sweep_spec.base.with_values(overrides)
    if axes:
        extra = dict(parse_assignment(text) for text in axes)
        for group in sweep_spec.groups:
            group["axes"] = {**group["axes"], **extra}
    return sweep_spec


def run(args) -> int:
    apply_execution_arguments(args)  # thread pools: before any TensorFlow op
    overrides = {k: v for k, v in (("seeds", args.seeds), ("epochs", args.epochs),
                                   ("xla", getattr(args, "xla", None))) if v is not None}
    sweep_spec = load(args.sweep_file, args.axis, overrides)
    specs = sweep_spec.specs()
    for spec in specs:  # before anything is written: run folders must stay inside --output
        experiment.check_name(spec.name)
    output = pathlib.Path(args.output)
    runs = sum(len(s.seeds) for s in specs)
    print(f"sweep {sweep_spec.name}: {len(specs)} configuration(s), {runs} run(s) -> {output}")
    if args.dry_run:  # in the order the sweep would train them
        for spec, seed in sweep.training_order(specs, sweep_spec.order):
            folder = experiment.run_dir(spec, seed, output)
            done, problem = sweep.read_result(folder / sweep.RESULT)
            state = ("not started" if not folder.exists() else f"done ({done.status})" if done is not None
                     else "training in another process" if sweep.is_busy(folder)
                     else "partial (will be redone)" if problem == "missing"
                     else f"unusable result.json, will be redone: {problem}")
            print(f"  {folder.relative_to(output)}: {state}")
        return 0
    output.mkdir(parents=True, exist_ok=True)
    storage.write_atomic(output / "sweep.toml", sweep_spec.to_toml())
    kwargs = dict(verbose=progress_verbosity(args.quiet))
    strategy = distribute.strategy_from_arguments(args)
    if strategy is not None:
        kwargs["strategy"] = strategy
    if args.tune or sweep_spec.tune:
        outcome = tuning.tune_each(specs, output, tuner=sweep_spec.tuner, max_trials=sweep_spec.max_trials, **kwargs)
    else:
        outcome = sweep.sweep(specs, output, retry_failed=args.retry_failed, resume_partial=args.resume_partial,
                              isolate=not args.in_process, order=sweep_spec.order, **kwargs)
    print(f"finished: {len(outcome.results)} run(s) ({len(outcome.trained)} trained now, {len(outcome.reused)} done "
          f"before, {len(outcome.failed)} failed, {len(outcome.busy)} running elsewhere); "
          f"`lqbench report {output}` for the tables")
    return 1 if outcome.failed or outcome.busy else 0
