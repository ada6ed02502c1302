"""``lqbench report``: tables (Markdown, CSV), figures and TensorBoard HParams of a results folder."""
from __future__ import annotations


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
    parser.set_defaults(func=run)


def run(args) -> int:
    from lqbench import report

    written = report.write_report(args.results_dir, args.output, figures=args.figures, hparams=args.hparams)
    print(written.markdown)
    print("written: " + ", ".join(str(p) for p in written.files))
    if written.skipped:
        print(f"skipped {len(written.skipped)} (listed under 'Skipped' in report.md): "
              + "; ".join(f"{path}: {reason}" for path, reason in written.skipped[:3])
              + (" ..." if len(written.skipped) > 3 else ""))
    return 0
