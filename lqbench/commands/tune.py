"""``lqbench tune``: grid-search a spec's hyperparameters, then run the best point for N seeds."""
from __future__ import annotations

import json
import pathlib

from lqbench._lazy import lazy_module
from lqbench.commands._spec_args import add_spec_arguments, apply_execution_arguments, spec_from_arguments
from lqbench.commands.sweep import parse_assignment
from lqbench.spec import OBJECTIVES, TUNERS

presets = lazy_module("lqbench.presets")
tuning = lazy_module("lqbench.tuning")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "tune", help="search a spec's grid (KerasTuner), then run the best configuration for N seeds",
        description="Search the spec's [grid] (default: the paper's grid for its algorithm: learning rate "
                    "{1e-3, 1e-4, 1e-5}, HSIC gamma {2, 20, 200}, SigpropTL alpha {1, 0.1, 0.01}) on validation "
                    "accuracy, then run the best configuration for --final-seeds seeds and print the test accuracy "
                    "mean ± std. Interrupted searches resume from --output. --spec also takes a preset name "
                    "(lqbench.presets). KerasTuner's distributed mode: set KERASTUNER_TUNER_ID (chief/worker id), "
                    "KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT and start this command once per process.")
    add_spec_arguments(parser)
    parser.add_argument("--output", default="lqbench-results/tune", help="search folder (resumed if it exists)")
    parser.add_argument("--max-trials", type=int, default=None, help="at most this many grid points")
    parser.add_argument("--final-seeds", type=int, default=5, help="seeds the best configuration is run for")
    parser.add_argument("--tuner", choices=TUNERS, default="grid", help="search strategy (default: grid)")
    parser.add_argument("--objective", choices=tuple(OBJECTIVES), default="val_accuracy")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="replace the spec's grid entry KEY (repeatable), e.g. learning_rate=1e-2,1e-3")
    parser.add_argument("--overwrite", action="store_true", help="start the search again from scratch")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    parser.set_defaults(func=run)


def run(args) -> int:
    apply_execution_arguments(args)  # thread pools: before any TensorFlow op
    if args.spec and not pathlib.Path(args.spec).exists() and args.spec in presets.available():
        args.spec = str(presets.path(args.spec))
    spec = spec_from_arguments(args)
    if args.grid:
        grid = dict(spec.grid)
        for text in args.grid:
            key, values = parse_assignment(text)
            grid[key] = values
        spec = spec.with_values({"grid": grid})
    print(f"searching {json.dumps(tuning.search_grid(spec))} for {spec.name} ({args.tuner}, {args.objective}); "
          f"folder {args.output}")
    found = tuning.search(spec, args.output, max_trials=args.max_trials, objective=args.objective,
                          tuner=args.tuner, final_seeds=args.final_seeds, overwrite=args.overwrite,
                          log=print, verbose=0 if args.quiet else 2)
    if found.role == "worker":
        print("worker finished: the oracle has no more trials (the chief runs the final seeds)")
        return 0
    for trial in found.trials:
        score = "failed" if trial["score"] is None else f"{trial['score']:.4f}"
        extra = f"  ({trial['message']})" if trial["score"] is None and trial["message"] else ""
        print(f"  trial {trial['trial_id']}: {json.dumps(trial['point'])} -> {args.objective} {score}{extra}")
    print(f"best configuration: {json.dumps(found.best_values)} ({args.objective} {found.best_score:.4f})")
    if found.final is not None:
        mean, std, n = found.test_accuracy_mean, found.test_accuracy_std, found.n
        if mean is None:
            print(f"final runs: all {found.failed_final} failed")
            return 1
        spread = f" ± {100 * std:.2f}" if std is not None else ""
        print(f"test accuracy (best-validation epoch) over {n} seed(s) {found.final_seeds}: "
              f"{100 * mean:.2f}{spread} %" + (f"; {found.failed_final} failed" if found.failed_final else ""))
    print(f"results: {pathlib.Path(args.output) / 'search.json'}")
    return 1 if found.failed_final else 0
