"""``lqbench train``: train one spec (every seed) and save the models and results."""
from __future__ import annotations

from lqbench._keras_env import progress_verbosity
from lqbench._lazy import lazy_module
from lqbench.commands._spec_args import (add_spec_arguments, add_strategy_argument, apply_execution_arguments,
                                       spec_from_arguments)

distribute = lazy_module("lqbench.distribute")
experiment = lazy_module("lqbench.experiment")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a zoo model on a dataset and save it",
        description="Train a zoo model with a training algorithm and a binarizing method. Every setting is "
                    "checked before anything is built; --set KEY=VALUE merges into the spec (e.g. "
                    "--set model_args.hidden_units=[512,512] --set method_args.gamma=1e-3).")
    add_spec_arguments(parser)
    parser.add_argument("--output", default="lqbench-results", help="results folder")
    parser.add_argument("--quiet", action="store_true",
                        help="no training progress (default: a progress bar per batch on a terminal, one line "
                             "per epoch otherwise)")
    parser.add_argument("--in-process", action="store_true",
                        help="train the seeds in this process instead of one fresh process per seed (peak memory "
                             "then depends on the seeds before)")
    add_strategy_argument(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    apply_execution_arguments(args)  # thread pools: before any TensorFlow op
    strategy = distribute.strategy_from_arguments(args)
    spec = spec_from_arguments(args)
    failed = 0
    verbose = progress_verbosity(args.quiet)
    for seed in spec.seeds:
        if strategy is None and not args.in_process:  # its own process: its peak memory is its own
            result = experiment.run_isolated(spec, seed, args.output, verbose=verbose)
        else:
            result = experiment.run(spec, seed, args.output, verbose=verbose, strategy=strategy)
        if result.status != "ok":
            failed += 1
            print(f"seed {seed}: FAILED: {result.error}")
            continue
        print(
            f"seed {seed}: test accuracy {result.test_accuracy:.4f} "
            f"(best-val weights {result.test_accuracy_best_val:.4f}), "
            f"{result.params:,} parameters, {result.footprint_bits / 8 / 1024:.1f} KiB deployed, "
            f"{result.wall_time_s:.1f} s ({_execution(result)}); model: {result.model_path}"
        )
    return 1 if failed else 0


def _execution(result) -> str:
    """``graph, measured`` / ``XLA, cached`` / ...: the execution mode of a run and why."""
    decision = result.execution or {}
    mode = "XLA" if result.jit_compile else "graph"
    return f"{mode}, {decision['reason']}" if decision.get("reason") else mode
