"""The deployment table and Pareto figure of a results folder (lqbench report --deployment)."""
import itertools
import json

import numpy as np
import pytest

from lqbench import report


def _dominated(points, i):
    c, a = points[i]
    return any((q[0] <= c and q[1] >= a) and (q[0] < c or q[1] > a) for q in points)


@pytest.mark.parametrize("seed", range(5))
def test_pareto_front_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    points = [(float(c), float(a)) for c, a in zip(rng.integers(1, 6, 12), rng.integers(0, 5, 12))]
    front = report.pareto_front(points)
    undominated = [i for i in range(len(points)) if not _dominated(points, i)]
    # duplicates of an undominated point: one of them is kept
    assert {points[i] for i in front} == {points[i] for i in undominated}
    assert len(front) == len({points[i] for i in undominated})
    assert [points[i][0] for i in front] == sorted(points[i][0] for i in front)
    assert report.pareto_front([(1.0, 0.5), (2.0, 0.4), (3.0, 0.9)]) == [0, 2]


def _records():
    rows = []
    for config, size, latency, accs in (("vgg_small", 900e3, 7.0, (0.80, 0.82)), ("resnet20", 70e3, 3.0, (0.70, 0.74)),
                                        ("lenet", 20e3, 0.5, (0.50, 0.52)), ("big_bad", 2e6, 9.0, (0.60, 0.60))):
        for seed, acc in enumerate(accs):
            rows.append({"config": config, "seed": seed, "test_accuracy_best_val": acc, "binary_bytes": size,
                         "size_ratio": 25.0, "latency_ms": latency + 0.1 * seed, "where": "host: x86_64 (not ARM latency)",
                         "verdict": "exact"})
    rows.append({"config": "broken", "seed": 0, "error": "ConversionError: mis-converted"})
    return rows


def test_deployment_summary_table_and_figure(tmp_path):
    rows = report.deployment_summary(_records())
    by = {r["config"]: r for r in rows}
    assert set(by) == {"vgg_small", "resnet20", "lenet", "big_bad"}
    assert by["vgg_small"]["test_accuracy_best_val_mean"] == pytest.approx(0.81)
    assert by["vgg_small"]["test_accuracy_best_val_std"] == pytest.approx(np.std([0.80, 0.82], ddof=1))
    assert by["resnet20"]["latency_ms"] == pytest.approx(3.05) and by["lenet"]["binary_kib"] == pytest.approx(20e3 / 1024)
    assert [r["config"] for r in rows if r["pareto_size"]] == ["lenet", "resnet20", "vgg_small"]
    assert not by["big_bad"]["pareto_latency"] and by["lenet"]["pareto_latency"]
    markdown, files = report.write_deployment(_records(), tmp_path)
    assert "| vgg_small | 2 | 81.0 ± 1.4 | 878.9 * |" in markdown and "broken (seed 0)" in markdown
    assert "not ARM latency" in markdown
    assert sorted(f.name for f in files) == ["deployment.csv", "deployment.md", "deployment.png"]
    assert (tmp_path / "deployment.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="no run with a converted model"):
        report.plot_deployment([_records()[-1]], tmp_path / "x.png")


def test_report_command_measures_saved_models(tmp_path, capsys):
    """End to end: a results folder with a saved binary model -> converted, timed, cached, tabled."""
    import tensorflow as tf

    from lqbench import cli
    from lqbench.experiment import RunResult
    from test_tflite_rewrite import larq_guide_model

    results = tmp_path / "results"
    for seed, acc in ((0, 0.61), (1, 0.63)):
        folder = results / "guide-abc" / f"seed-{seed}"
        folder.mkdir(parents=True)
        larq_guide_model().save(folder / "model.keras")
        RunResult(name="guide", spec_key="abc", seed=seed, status="ok", test_accuracy_best_val=acc, test_accuracy=acc,
                  model_path=str(folder / "model.keras"), spec={"model": "guide", "dataset": "mnist"}
                  ).save(folder / "result.json")
    argv = ["report", str(results), "--no-hparams", "--deployment", "--deployment-runs", "3"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "### Deployment" in out and "| guide | 2 | 62.0 ± 1.4 |" in out and "exact" in out
    for seed in (0, 1):
        path = results / "guide-abc" / f"seed-{seed}" / "deployment.json"
        cache = json.loads(path.read_text())
        assert cache["measurement"]["bconv"] == 4 and cache["measurement"]["latency_ms"] > 0
        # cached: a second report reuses the measurements (marked here to prove it; the table shows their mean)
        cache["measurement"]["latency_ms"] = 123.0
        path.write_text(json.dumps(cache))
    assert cli.main(argv) == 0
    assert "123" in capsys.readouterr().out
    assert (results / "report" / "deployment.png").exists()
    assert cli.main(["report", str(results), "--deployment", "--deployment-runs", "0"]) == 2
    assert "--deployment-runs must be >= 1, got 0" in capsys.readouterr().err
