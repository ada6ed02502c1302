"""``lqbench run``: the main job, offline, in minutes on two CPU cores.

1. trains a small binary CNN with every training algorithm (BP, DFA, DRTP, HSIC bottleneck,
   SigpropTL) and its full-precision twin with BP, for each seed, on the embedded digits
   (or MNIST with ``--data-dir``), as a resumable sweep (`lqbench.sweep`);
2. prints the table (mean ± std over seeds) and writes the figures (`lqbench.report`);
3. converts the best binary model with Larq Compute Engine (`lqbench.tflite.convert`, with
   the fallback audit and the Keras/LCE output check) and benchmarks it against its float
   twin on this host (`lqbench.tflite.compare`; x86 latencies are not ARM latencies).

Everything lands in ``--output`` (default ``lqbench-results/run``); running the command again
reuses finished runs.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import time
from collections import defaultdict

from lqbench._lazy import lazy_module
from lqbench.binarization import Binarization
from lqbench.commands._spec_args import add_execution_arguments, add_strategy_argument, apply_execution_arguments
from lqbench.spec import ExperimentSpec

distribute = lazy_module("lqbench.distribute")
experiment = lazy_module("lqbench.experiment")
report = lazy_module("lqbench.report")
sweep = lazy_module("lqbench.sweep")
tf = lazy_module("tensorflow")
tflite = lazy_module("lqbench.tflite")

from lqbench._keras_env import progress_verbosity
from lqbench.commands._types import non_negative_int, positive_int

#: The model of the main job: a VGG-style binary CNN whose binary convolutions all become
#: LCE binary ops, small enough for two CPU cores.
MODEL = "vgg_small"
MODEL_ARGS = {"width_multiplier": 0.25}
ALGORITHMS = ("bp", "dfa", "drtp", "hsic", "sigprop")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="the main job: every algorithm on a small binary CNN, report, LCE deploy",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--output", default="lqbench-results/run", help="results, report and .tflite files")
    parser.add_argument("--dataset", default=None, help="default: digits, or mnist when --data-dir is given")
    parser.add_argument("--data-dir", default=None, help="folder with original dataset files (e.g. mnist/*.gz)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="default: 15 on digits, 2 on other datasets")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0, 1],
                        help="seeds of every configuration (default: 0 1)")
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), metavar="NAME")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="examples per batch (default: 64)")
    add_execution_arguments(parser)
    parser.add_argument("--bench-runs", type=positive_int, default=50, help="timed inferences per model (default: 50)")
    add_strategy_argument(parser)
    parser.set_defaults(func=run)


def base_spec(args: argparse.Namespace):
    dataset = args.dataset or ("mnist" if args.data_dir else "digits")
    epochs = args.epochs if args.epochs is not None else (15 if dataset == "digits" else 2)
    return ExperimentSpec(
        name="run",
        dataset=dataset,
        data_dir=args.data_dir,
        model=MODEL,
        model_args=dict(MODEL_ARGS),
        epochs=epochs,
        batch_size=args.batch_size,
        seeds=list(args.seeds),
        learning_rate=1e-3,
        weight_decay=1e-5,
        xla=getattr(args, "xla", None) or "auto",
    )


def run(args: argparse.Namespace) -> int:
    apply_execution_arguments(args)  # thread pools: before any TensorFlow op
    strategy = distribute.strategy_from_arguments(args)
    started = time.perf_counter()
    output = pathlib.Path(args.output)
    base = base_spec(args)
    specs = sweep.expand(base, {"algorithm": list(args.algorithms)})
    specs.append(base.with_values({"name": "run-bp-W32A32", "binarization": Binarization.full_precision().to_dict()}))
    total = sum(len(s.seeds) for s in specs)
    print(f"lqbench run: {len(specs)} configurations x {len(base.seeds)} seeds = {total} runs of "
          f"{base.model} on {base.dataset}, {base.epochs} epochs each -> {output}", flush=True)
    # one fresh process per run (its peak memory is its own); a distributed strategy stays in this one
    extra = ({"strategy": strategy, "extra_callbacks": (_epoch_progress(),)} if strategy is not None
             else {"isolate": True, "verbose": progress_verbosity(False)})
    outcome = sweep.sweep(specs, output / "runs", log=lambda line: print(line, flush=True), **extra)
    if not distribute.is_chief(strategy or tf.distribute.get_strategy()):  # the chief reports and deploys
        print("lqbench run: worker done; the chief writes the report and deploys")
        return 1 if outcome.failed else 0

    rendered = report.write_report(output / "runs", output)
    print()
    print(rendered.markdown)
    print("figures: " + ", ".join(str(f) for f in rendered.files if f.suffix == ".png"), flush=True)

    summary = {"runs": len(outcome.results), "failed": len(outcome.failed)}
    best = _best_binary(outcome.results)
    if best is None:
        print("no binary run finished: nothing to deploy")
    else:
        summary["deployment"] = _deploy(best, output, args.bench_runs)
    summary["wall_time_s"] = time.perf_counter() - started
    (output / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"\nlqbench run: done in {summary['wall_time_s'] / 60:.1f} min; summary: {output / 'summary.json'}")
    return 1 if outcome.failed else 0


def _best_binary(results):
    """The seed-run of the binary configuration with the best mean test accuracy."""
    groups = defaultdict(list)
    for result in results:
        if result.status == "ok" and not Binarization.from_dict(result.spec["binarization"]).is_full_precision:
            groups[result.spec_key].append(result)
    if not groups:
        return None
    best_group = max(groups.values(), key=lambda g: sum(r.test_accuracy_best_val for r in g) / len(g))
    return max(best_group, key=lambda r: r.test_accuracy_best_val)


def _deploy(result, output: pathlib.Path, runs: int) -> dict:
    print(f"\nDeploying the best binary model: {result.name} seed {result.seed} "
          f"(test accuracy {result.test_accuracy_best_val:.4f})", flush=True)
    model = experiment.load_model(result.model_path)
    binary_path, float_path = output / "best-binary.tflite", output / "best-float.tflite"
    conversion = tflite.convert(model, binary_path, float_path=float_path)
    print(conversion, flush=True)
    rows = []
    for threads in (1, 2):
        comparison = tflite.compare(binary_path, float_path, threads=threads, runs=runs)
        rows.append(comparison)
    print(f"\n| threads | binary ms (kernel) | float ms (XNNPACK) | binary/float | size KiB binary / float |")
    print("|---|---|---|---|---|")
    for threads, c in zip((1, 2), rows):
        print(f"| {threads} | {c.binary.latency_ms:.3f} ({c.binary.kernel}) | {c.float.latency_ms:.3f} | "
              f"{c.ratio:.2f} | {c.binary.size_bytes / 1024:.1f} / {c.float.size_bytes / 1024:.1f} |")
    print(f"Latencies measured on this host ({rows[0].binary.where}); ARM devices: `lqbench bench --device ...`.")
    return {
        "model": result.name,
        "seed": result.seed,
        "conversion": conversion.to_dict(),
        "benchmarks": [c.to_dict() for c in rows],
    }


def _epoch_progress():
    """A Keras callback printing one short line per epoch (the progress of the main job)."""

    class EpochProgress(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            parts = [f"epoch {epoch + 1}"] + [f"{k} {logs[k]:.4f}" for k in ("loss", "accuracy", "val_accuracy")
                                              if k in logs]
            print("    " + ", ".join(parts), flush=True)

    return EpochProgress()
