"""Reports: mean ± std over seeds from hand-written result files, the papers' tables, figures, HParams."""
import csv
import io
import json
import pathlib

import numpy as np
import pytest

import lqbench  # noqa: F401
from lqbench import experiment, report
from lqbench.experiment import RunResult
from lqbench.spec import ExperimentSpec

# (model, algorithm, binarization label) -> per-seed test accuracies (best-val epoch); None = failed run
ACCURACIES = {
    ("binarynet_mlp", "bp", "W1A1"): [0.61, 0.63, 0.62],
    ("binarynet_mlp", "dfa", "W1A1"): [0.40, 0.52, None],
    ("binarynet_mlp", "bp", "W32A32"): [0.90, 0.92, 0.91],
    ("binarynet_mlp", "dfa", "W32A32"): [0.70, 0.74, 0.75],
    ("lenet", "bp", "W1A1"): [0.55, 0.57, 0.59],
    ("lenet", "dfa", "W1A1"): [None, None, None],
    ("lenet", "bp", "W32A32"): [0.80, 0.85, 0.83],
    ("lenet", "dfa", "W32A32"): [0.66, 0.60, 0.63],
}
MEMORY = {"bp": 300 * 2**20, "dfa": 310 * 2**20}


def _write_results(root: pathlib.Path) -> None:
    for (model, algorithm, label), values in ACCURACIES.items():
        spec = ExperimentSpec(
            name=f"{model}-{algorithm}-{label}", dataset="digits", model=model, algorithm=algorithm,
            model_args={}, seeds=[0, 1, 2],
            binarization={"weights": label.startswith("W1"), "activations": label.endswith("A1")},
        )
        for seed, value in enumerate(values):
            if value is None:
                result = RunResult(name=spec.name, spec_key=spec.key(), seed=seed, status="failed",
                                   error="loss became nan at epoch 1, batch 3", spec=spec.to_dict(),
                                   history={"loss": [2.0, float("nan")]})
            else:
                result = RunResult(
                    name=spec.name, spec_key=spec.key(), seed=seed, status="ok", test_accuracy=value - 0.01,
                    test_accuracy_best_val=value, best_val_accuracy=value + 0.02, wall_time_s=10.0 + seed,
                    peak_memory_bytes=MEMORY[algorithm] + seed * 2**20, memory_method="process VmHWM",
                    history={"loss": [2.0, 1.5 - seed / 10], "val_accuracy": [0.3, value]}, spec=spec.to_dict(),
                )
            # the layout experiment.run writes
            result.save(experiment.run_dir(spec, seed, root) / "result.json")


@pytest.fixture()
def results_dir(tmp_path):
    _write_results(tmp_path / "results")
    return tmp_path / "results"


def _expected(values):
    ok = np.array([v for v in values if v is not None])
    if len(ok) == 0:
        return None, None, 0, len(values)
    return ok.mean(), (ok.std(ddof=1) if len(ok) > 1 else None), len(ok), len(values) - len(ok)


def test_load_results_reads_every_run_and_skips_corrupt_files(results_dir):
    results = report.load_results(results_dir)
    assert len(results) == 24
    assert sum(r.status == "failed" for r in results) == 4
    bad = results_dir / "broken-abc" / "seed-0" / "result.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    (results_dir / "_search" / "x" / "seed-0").mkdir(parents=True)
    RunResult(name="x", spec_key="k", seed=0, status="ok").save(results_dir / "_search" / "x" / "seed-0" / "result.json")
    with pytest.warns(UserWarning, match="broken-abc"):
        assert len(report.load_results(results_dir)) == 24
    with pytest.raises(FileNotFoundError, match="does not exist"):
        report.load_results(results_dir / "nope")


def test_summarise_matches_numpy_mean_and_sample_std(results_dir):
    rows = report.summarise(report.load_results(results_dir), by=["model", "algorithm", "binarization"])
    assert len(rows) == len(ACCURACIES)
    for row in rows:
        mean, std, n, failed = _expected(ACCURACIES[(row["model"], row["algorithm"], row["binarization"])])
        assert row["n"] == n and row["failed"] == failed
        if n == 0:
            assert row["test_accuracy_best_val_mean"] is None
            assert row["errors"] == ["loss became nan at epoch 1, batch 3"]
            continue
        assert row["test_accuracy_best_val_mean"] == pytest.approx(mean, abs=1e-12)
        if std is None:
            assert row["test_accuracy_best_val_std"] is None
        else:
            assert row["test_accuracy_best_val_std"] == pytest.approx(std, abs=1e-12)
    # hand-computed: bp/W1A1/mlp = 0.61, 0.63, 0.62 -> mean 0.62, sample std 0.01
    row = next(r for r in rows if (r["model"], r["algorithm"], r["binarization"]) == ("binarynet_mlp", "bp", "W1A1"))
    assert row["test_accuracy_best_val_mean"] == pytest.approx(0.62)
    assert row["test_accuracy_best_val_std"] == pytest.approx(0.01)
    assert row["peak_memory_bytes_mean"] == pytest.approx(301 * 2**20)
    assert row["wall_time_s_std"] == pytest.approx(1.0)


def test_default_grouping_uses_the_fields_that_vary(results_dir):
    results = report.load_results(results_dir)
    assert report.varying_fields(results) == ["algorithm", "model", "binarization"]
    assert len(report.summarise(results)) == 8
    assert report.mean_std([1.0, float("nan"), None, 3.0]) == (2.0, pytest.approx(2 ** 0.5), 2)


def test_paper_tables_cells_and_failures(results_dir):
    tables = report.paper_tables(report.load_results(results_dir))
    accuracy = [t for t in tables if t.title.startswith("Test accuracy")]
    assert len(accuracy) == 2  # one section per binarization (W1A1, W32A32)
    w1a1 = next(t for t in accuracy if "W1A1" in t.title)
    assert w1a1.columns == ["bp", "dfa"]
    body = dict(w1a1.rows)
    assert body["binarynet_mlp"] == ["62.0 (1.00)", f"46.0 ({100 * np.std([0.40, 0.52], ddof=1):.2f}) [1 failed]"]
    assert body["lenet"] == ["57.0 (2.00)", "failed (3/3)"]
    binarization = [t for t in tables if t.title.startswith("Weights x activations")]
    assert {t.title for t in binarization} == {"Weights x activations — binarynet_mlp", "Weights x activations — lenet"}
    lenet = next(t for t in binarization if "lenet" in t.title)
    assert dict(lenet.rows)["W32A32"] == ["82.7 (2.52)", "63.0 (3.00)"]
    memory = next(t for t in tables if t.title.startswith("peak memory") and "W32A32" in t.title)
    assert dict(memory.rows)["lenet"] == ["301 (1.00)", "311 (1.00)"]
    assert any("process VmHWM" in note for note in memory.notes)
    markdown = w1a1.to_markdown()
    assert "| model | bp | dfa |" in markdown and "| lenet | 57.0 (2.00) | failed (3/3) |" in markdown
    rows = list(csv.reader(io.StringIO(w1a1.to_csv())))
    assert rows[0] == ["model", "bp", "dfa"] and rows[2] == ["lenet", "57.0 (2.00)", "failed (3/3)"]


def test_skip_connection_table(tmp_path):
    for skips, values in ((True, [0.8, 0.82]), (False, [0.5, 0.56])):
        spec = ExperimentSpec(name=f"mixer-{skips}", dataset="digits", model="mlp_mixer", model_args={},
                              skip_connections=skips, seeds=[0, 1])
        for seed, value in enumerate(values):
            RunResult(name=spec.name, spec_key=spec.key(), seed=seed, status="ok", test_accuracy_best_val=value,
                      spec=spec.to_dict()).save(experiment.run_dir(spec, seed, tmp_path) / "result.json")
    tables = report.paper_tables(report.load_results(tmp_path))
    skips = next(t for t in tables if t.title.startswith("With and without skip"))
    assert dict(skips.rows) == {"mlp_mixer / skip connections": ["81.0 (1.41)"],
                                "mlp_mixer / no skip connections": ["53.0 (4.24)"]}


def _is_png(path: pathlib.Path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_report_files_figures_and_hparams(results_dir, tmp_path):
    written = report.write_report(results_dir, tmp_path / "report")
    assert written.runs == 24 and written.failed == 4
    for name in ("accuracy.png", "costs.png", "curves.png"):
        assert _is_png(tmp_path / "report" / name), name
    text = (tmp_path / "report" / "report.md").read_text()
    assert "24 runs (20 ok, 4 failed)" in text and "### Failed runs" in text and "62.0 (1.00)" in text
    summary = list(csv.DictReader((tmp_path / "report" / "summary.csv").open()))
    assert len(summary) == 8 and {"algorithm", "model", "binarization", "n", "failed"} <= set(summary[0])
    assert len(list((tmp_path / "report").glob("*.csv"))) == 1 + len(written.tables)
    # TensorBoard HParams: one summary per run, plus the experiment config
    hparams = results_dir / "hparams"
    runs = [p for p in hparams.iterdir() if p.is_dir()]
    assert len(runs) == 24 and all(list(p.glob("events.out.tfevents.*")) for p in runs)
    assert list(hparams.glob("events.out.tfevents.*"))
    import tensorflow as tf
    from tensorboard.plugins.hparams import plugin_data_pb2

    run = next(p for p in runs if "lenet-bp-W1A1" in p.name and p.name.endswith("seed0"))
    values, scalars = {}, {}
    for event in tf.compat.v1.train.summary_iterator(str(next(run.glob("events.out.tfevents.*")))):
        for value in event.summary.value:
            if value.tag == "_hparams_/session_start_info":
                data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                values = {k: json.loads(json.dumps(v.number_value or v.string_value or v.bool_value))
                          for k, v in data.session_start_info.hparams.items()}
            elif value.tag in ("test_accuracy_best_val", "failed"):
                scalars[value.tag] = float(tf.make_ndarray(value.tensor))
    assert values["model"] == "lenet" and values["algorithm"] == "bp" and values["binarization"] == "W1A1"
    assert scalars == {"failed": 0.0, "test_accuracy_best_val": pytest.approx(0.55)}
    # a second report rewrites the HParams folder instead of duplicating it
    report.write_report(results_dir, tmp_path / "report", figures=False)
    assert len([p for p in hparams.iterdir() if p.is_dir()]) == 24
    assert all(len(list(p.glob("events.out.tfevents.*"))) == 1 for p in hparams.iterdir() if p.is_dir())


def test_report_cli_prints_the_table(results_dir, tmp_path, capsys):
    from lqbench import cli

    assert cli.main(["report", str(results_dir), "--output", str(tmp_path / "r"), "--no-hparams"]) == 0
    out = capsys.readouterr().out
    assert "| lenet | 57.0 (2.00) | failed (3/3) |" in out
    assert (tmp_path / "r" / "report.md").is_file()
    assert cli.main(["report", str(tmp_path / "empty")]) == 2


def test_report_lists_what_it_skipped_and_why(results_dir, tmp_path, monkeypatch):
    """Issue #16 row 11: an unreadable run folder and another run's result copied in are listed, not dropped."""
    import os
    import shutil

    runs = sorted(p.parent for p in results_dir.rglob("result.json"))
    foreign = results_dir / "copied-abc" / "seed-0"
    foreign.mkdir(parents=True)
    shutil.copy(runs[0] / "result.json", foreign / "result.json")
    locked = runs[1]
    real_scandir = os.scandir

    def scandir(path="."):  # what a folder without read permission does (tests may run as root)
        if pathlib.Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    skipped = []
    with pytest.warns(UserWarning, match="Permission denied"):
        results = report.load_results(results_dir, skipped=skipped)
    assert len(results) == 23  # 24 runs, one unreadable; the copy is not counted
    reasons = dict(skipped)
    assert "cannot be read (Permission denied)" in reasons[str(locked)]
    assert "another run" in reasons[str(foreign / "result.json")]

    written = report.write_report(results_dir, tmp_path / "r", figures=False, hparams=False)
    assert written.runs == 23 and len(written.skipped) == 2
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert "### Skipped" in markdown and "2 file(s) or folder(s)" in markdown
    assert f"| {locked.relative_to(results_dir)} | cannot be read (Permission denied) |" in markdown
    assert "| copied-abc/seed-0/result.json | holds the result of another run" in markdown
