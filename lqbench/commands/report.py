"""``lqbench report``: tables (Markdown, CSV), figures and TensorBoard HParams of a results folder."""
from __future__ import annotations

import pathlib

from lqbench._lazy import lazy_module
from lqbench.errors import UsageError

deployment = lazy_module("lqbench.tflite.deployment")
report = lazy_module("lqbench.report")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="tables (mean ± std over seeds), figures and HParams summaries of a results folder",
        description="Read every result.json under RESULTS_DIR and write report.md, summary.csv, one CSV per table, "
                    "accuracy.png, costs.png, curves.png (to --output, default RESULTS_DIR/report) and TensorBoard "
                    "HParams summaries (RESULTS_DIR/hparams). Prints the Markdown tables. Failed runs are counted, "
                    "never averaged.")
    parser.add_argument("results_dir", metavar="RESULTS_DIR")
    parser.add_argument("--output", default=None, help="report folder (default RESULTS_DIR/report)")
    parser.add_argument("--no-figures", dest="figures", action="store_false", help="tables only")
    parser.add_argument("--no-hparams", dest="hparams", action="store_false", help="no TensorBoard HParams")
    parser.add_argument("--deployment", action="store_true",
                        help="also convert each run's saved model with LCE, time it on this host and write "
                             "deployment.md/.csv/.png (accuracy vs size and latency, Pareto fronts; cached per run)")
    parser.add_argument("--deployment-runs", type=int, default=50, metavar="N",
                        help="timed inferences per model for --deployment (default 50)")
    parser.set_defaults(func=run)


def run(args) -> int:
    written = report.write_report(args.results_dir, args.output, figures=args.figures, hparams=args.hparams)
    print(written.markdown)
    files = list(written.files)
    if args.deployment:
        if args.deployment_runs < 1:
            raise UsageError(f"--deployment-runs must be >= 1, got {args.deployment_runs}")
        records = deployment.measure_runs(args.results_dir, runs=args.deployment_runs)
        output = pathlib.Path(args.output) if args.output else pathlib.Path(args.results_dir) / "report"
        markdown, more = report.write_deployment(records, output, figure=args.figures)
        print(markdown)
        files += more
    print("written: " + ", ".join(str(p) for p in files))
    if written.skipped:
        print(f"skipped {len(written.skipped)} (listed under 'Skipped' in report.md): "
              + "; ".join(f"{path}: {reason}" for path, reason in written.skipped[:3])
              + (" ..." if len(written.skipped) > 3 else ""))
    return 0
