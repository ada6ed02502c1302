"""Render the reference-equivalence results into one JSON and docs/fidelity.md (generated files).

Reads every ``bench/results/reference/<method>.json`` (written by the scripts in
``bench/reference/``; schema in ``_harness.write_result``), checks the schema, and writes
``bench/results/reference_equivalence.json`` and ``docs/fidelity.md``. Never edit the outputs
by hand: re-run the scripts, then

    .venv/bin/python bench/reference/render.py [--check]

``--check`` only validates the inputs and exits 1 if the rendered files are out of date.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "reference"
OUT_JSON = ROOT / "bench" / "results" / "reference_equivalence.json"
OUT_MD = ROOT / "docs" / "fidelity.md"
REQUIRED = {"method": str, "reference": dict, "network": str, "steps": int, "max_abs_weight_diff": (int, float),
            "tolerance": (int, float), "equal": bool, "test": str, "deviations": list, "command": str}
REFERENCE_KEYS = ("repo", "commit", "file", "symbol")
GROUPS = (
    ("Training algorithms (backprop and its alternatives)", ("bp", "dfa", "drtp", "hsic", "sigprop",
                                                           "seed000_cnn_bp", "seed000_cnn_dfa", "seed000_cnn_drtp",
                                                           "seed000_cnn_hsic", "seed000_cnn_sigprop")),
    ("Binarizing optimizers", ("ste", "bop", "bop2", "bop2_unbiased", "bnew", "proxquant", "bmd", "continuous")),
    ("Sign gradient estimators", ("estimator_ste", "estimator_ste_clipped", "estimator_approx_sign", "estimator_tanh",
                                  "estimator_cosh2", "estimator_swish_sign", "estimator_gumbel", "estimator_ede")),
)

# Methods of the README's method table with no weight-level comparison above, each with the
# reason and the test that pins what can be pinned (issue 14, "Show": every method listed).
NOT_COMPARED = (
    ("estimator_rsign", "ReActNet's RSign, sign(x - b) with a learnt per-channel b",
     "not compared yet: liuzechun/ReActNet is public but no script here runs it. Its pseudo-gradient is the "
     "authors' (ReActNet's BinaryActivation, mobilenet/2_step2/reactnet.py: ApproxSign, max(0, 2 - 2|x - b|)), "
     "pinned to that formula; `RSign(gradient=\"ste\")` keeps lqbench's earlier clipped-STE 1_{|x - b| <= 1}. "
     "Forward: Larq's sign (+1 at 0), the authors' torch.sign is 0 at 0",
     "tests/test_estimators.py::test_rsign_pseudo_gradient_default_is_the_authors"),
    ("post_training_binarization", "naive post-training binarization",
     "nothing to compare: no update rule of its own; the float network trains by backprop (the `bp` row) and its "
     "kernels and layer inputs are then replaced by their signs",
     "tests/test_experiment.py::test_naive_post_training_binarization_trains_float_and_deploys_binary"),
    ("distillation", "ReActNet's distributional loss (lqbench.distillation), with every algorithm",
     "not compared yet: no script runs ReActNet's utils/KD_loss.py or the BNEW authors' KL_loss.py / dist_main.py; "
     "the loss is pinned to a numpy port of its formula, and each algorithm's update on it is that algorithm's "
     "row above", "tests/test_distillation.py::test_distribution_loss_matches_numpy"),
)


def _check_test(test: str, where: str) -> None:
    test_file, _, test_name = test.partition("::")
    test_name = test_name.split("[")[0]
    if not (ROOT / test_file).is_file() or f"def {test_name}(" not in (ROOT / test_file).read_text():
        raise RenderError(f"{where}: test {test!r} does not exist")


class RenderError(ValueError):
    pass


def load(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RenderError(f"{path.relative_to(ROOT)}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(record, dict):
        raise RenderError(f"{path.relative_to(ROOT)}: expected a JSON object")
    for key, kind in REQUIRED.items():
        if key not in record:
            raise RenderError(f"{path.relative_to(ROOT)}: missing {key!r}; required: {', '.join(REQUIRED)}")
        if not isinstance(record[key], kind) or (kind is int and isinstance(record[key], bool)):
            raise RenderError(f"{path.relative_to(ROOT)}: {key}={record[key]!r} has the wrong type")
    missing = [k for k in REFERENCE_KEYS if k not in record["reference"]]
    if missing:
        raise RenderError(f"{path.relative_to(ROOT)}: reference lacks {', '.join(missing)}")
    for d in record["deviations"]:
        if not (isinstance(d, dict) and isinstance(d.get("name"), str) and isinstance(d.get("reason"), str)):
            raise RenderError(f"{path.relative_to(ROOT)}: every deviation needs a 'name' and a 'reason'")
    _check_test(record["test"], str(path.relative_to(ROOT)))
    if record["method"] != path.stem:
        raise RenderError(f"{path.relative_to(ROOT)}: method {record['method']!r} does not match the file name")
    return record


def ordered(records: dict[str, dict]) -> list[tuple[str, list[dict]]]:
    out, seen = [], set()
    for title, names in GROUPS:
        group = [records[n] for n in names if n in records]
        seen.update(n for n in names if n in records)
        if group:
            out.append((title, group))
    rest = [records[n] for n in sorted(records) if n not in seen]
    if rest:
        out.append(("Other", rest))
    return out


def _fmt(x: float) -> str:
    return "0" if x == 0 else f"{x:.2g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(groups) -> str:
    lines = [
        "# Fidelity: lqbench against the authors' code",
        "",
        "<!-- generated by bench/reference/render.py from bench/results/reference/*.json; do not edit -->",
        "",
        "Each method below was run on both sides -- lqbench, and the authors' code (or, where none is "
        "public, the paper's equations) -- on the same small network with identical initial weights and "
        "identical batches (or gradients). The table gives the largest absolute difference of any weight "
        "after the listed number of update steps, the tolerance (float32 round-off; the `seed000_cnn_*` rows, "
        "paper 000's MNIST CNN, are compared in float64, their float32 differences are in their notes), and "
        "the test in "
        "`tests/` that pins the same formula in CI. The scripts run outside the test suite (they need "
        "torch and the authors' checkouts); every number comes from the command listed with it.",
        "",
    ]
    for title, group in groups:
        lines += [f"## {title}", "",
                  "| method | reference | steps | max \\|Δw\\| | tolerance | equal | test pinning the formula |",
                  "|---|---|---|---|---|---|---|"]
        for r in group:
            ref = r["reference"]
            commit = ref["commit"][:7] if len(ref["commit"]) == 40 else ref["commit"]
            where = f"{ref['repo']} @{commit} `{ref['file']}` ({ref['symbol']})" if ref["commit"] not in ("-", "") \
                else f"{ref['repo']}: `{ref['file']}` ({ref['symbol']})"
            lines.append(f"| `{r['method']}` | {_cell(where)} | {r['steps']} | {_fmt(r['max_abs_weight_diff'])} | "
                         f"{_fmt(r['tolerance'])} | {'yes' if r['equal'] else '**no**'} | `{r['test']}` |")
        lines.append("")
        for r in group:
            lines += [f"### `{r['method']}`", "", f"- network: {r['network']}", f"- command: `{r['command']}`"]
            if r["deviations"]:
                lines.append("- deviations:")
                lines += [f"  - **{_cell(d['name'])}**: {_cell(d['reason'])}" for d in r["deviations"]]
            else:
                lines.append("- deviations: none")
            lines.append("")
    lines += ["## Methods not compared at the weight level", "",
              "| method | what | reason | test pinning the formula |", "|---|---|---|---|"]
    for name, what, reason, test in NOT_COMPARED:
        _check_test(test, f"NOT_COMPARED {name}")
        lines.append(f"| `{name}` | {_cell(what)} | {_cell(reason)} | `{test}` |")
    return "\n".join(lines).rstrip() + "\n"


def render(check: bool = False) -> int:
    paths = sorted(RESULTS.glob("*.json"))
    if not paths:
        raise RenderError(f"no results in {RESULTS.relative_to(ROOT)}; run the scripts in bench/reference/ first")
    records = {}
    for path in paths:
        record = load(path)
        records[record["method"]] = record
    groups = ordered(records)
    summary = {
        "generated_by": "bench/reference/render.py",
        "methods": len(records),
        "equal": sum(r["equal"] for r in records.values()),
        "results": [r for _, group in groups for r in group],
    }
    text_json = json.dumps(summary, indent=2) + "\n"
    text_md = markdown(groups)
    if check:
        stale = [p for p, text in ((OUT_JSON, text_json), (OUT_MD, text_md)) if not p.exists() or p.read_text() != text]
        for p in stale:
            print(f"{p.relative_to(ROOT)} is out of date; run .venv/bin/python bench/reference/render.py")
        return 1 if stale else 0
    OUT_JSON.write_text(text_json)
    OUT_MD.parent.mkdir(parents=True, exist_ok=True)
    OUT_MD.write_text(text_md)
    print(f"{len(records)} methods ({summary['equal']} equal within tolerance) -> "
          f"{OUT_JSON.relative_to(ROOT)}, {OUT_MD.relative_to(ROOT)}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="validate and compare, write nothing")
    args = parser.parse_args(argv)
    try:
        return render(check=args.check)
    except RenderError as e:
        print(f"render: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
