"""KerasTuner search over a spec's grid: hyperparameters, selection, resume, final seeds."""
import json
import math

import pytest

import lqbench  # noqa: F401
from lqbench import experiment, tuning
from lqbench.experiment import RunResult
from lqbench.spec import ExperimentSpec, SpecError

TINY = dict(dataset="digits", model="binarynet_mlp", model_args={"hidden_units": [32]}, epochs=1, batch_size=64)


class FakeRunner:
    """Validation accuracy peaks at lr 1e-2 and grows with gamma; lr 1.0 diverges (NaN)."""

    def __init__(self):
        self.calls = []

    def __call__(self, spec, seed, output_dir, **kwargs):
        self.calls.append((spec.learning_rate, spec.algorithm_args.get("gamma"), seed))
        folder = experiment.run_dir(spec, seed, output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        if spec.learning_rate >= 1.0:
            result = RunResult(name=spec.name, spec_key=spec.key(), seed=seed, status="failed",
                               error="loss became nan at epoch 1, batch 1", spec=spec.to_dict())
        else:
            val = 0.9 - abs(math.log10(spec.learning_rate) + 2) / 10 + spec.algorithm_args.get("gamma", 0) / 1000
            result = RunResult(name=spec.name, spec_key=spec.key(), seed=seed, status="ok", best_val_accuracy=val,
                               test_accuracy_best_val=val - 0.05 + seed / 100, test_accuracy=val - 0.06,
                               history={"val_loss": [1.0 - val]}, spec=spec.to_dict())
        result.save(folder / "result.json")
        return result


def test_grid_becomes_choice_hyperparameters_and_back():
    grid = {"learning_rate": [1e-3, 1e-4], "algorithm_args.alpha": [1, 0.1], "model_args.hidden_units": [[32], [64]],
            "augment": [True, False], "algorithm": ["bp", "dfa"]}
    hp = tuning.hyperparameters(grid)
    assert [p.name for p in hp.space] == list(grid)
    assert hp.values == {"learning_rate": 1e-3, "algorithm_args.alpha": 1.0, "model_args.hidden_units": "[32]",
                         "augment": True, "algorithm": "bp"}  # first value is the default
    assert hp.space[1].values == [1.0, 0.1]  # mixed int/float -> float
    assert tuning.point_from_hyperparameters(hp.values, grid) == {
        "learning_rate": 1e-3, "algorithm_args.alpha": 1, "model_args.hidden_units": [32], "augment": True,
        "algorithm": "bp"}
    with pytest.raises(SpecError, match="duplicate"):
        tuning.hyperparameters({"learning_rate": [1e-3, 1e-3]})


def test_default_grids_are_used_without_a_grid():
    assert tuning.search_grid(ExperimentSpec(**TINY, algorithm="hsic")) == {
        "learning_rate": [1e-3, 1e-4, 1e-5], "algorithm_args.gamma": [2.0, 20.0, 200.0]}
    assert tuning.search_grid(ExperimentSpec(**TINY, grid={"epochs": [1, 2]})) == {"epochs": [1, 2]}
    assert tuning.final_seed_list(ExperimentSpec(**TINY, seeds=[3, 0]), 4) == [3, 0, 1, 2]


def test_search_picks_best_skips_diverged_trials_and_resumes(tmp_path):
    spec = ExperimentSpec(name="s", **TINY, algorithm="hsic", seeds=[7],
                          grid={"learning_rate": [1.0, 1e-2, 1e-4], "algorithm_args.gamma": [2.0, 200.0]})
    runner = FakeRunner()
    found = tuning.search(spec, tmp_path, final_seeds=3, runner=runner)
    assert len(found.trials) == 6
    assert sorted(t["status"] for t in found.trials) == ["COMPLETED"] * 4 + ["FAILED"] * 2
    failed = [t for t in found.trials if t["status"] == "FAILED"]
    assert all(t["point"]["learning_rate"] == 1.0 and "loss became nan" in t["message"] for t in failed)
    assert found.best_values == {"learning_rate": 1e-2, "algorithm_args.gamma": 200.0}
    assert found.best_score == pytest.approx(1.1)
    assert found.final_seeds == [7, 0, 1]
    assert found.best_spec.learning_rate == 1e-2 and found.best_spec.seeds == [7, 0, 1]
    # 6 trials with seed 7, then seeds 0 and 1 only: the seed-7 trial run is reused for the final
    assert [c for c in runner.calls if c[2] != 7] == [(1e-2, 200.0, 0), (1e-2, 200.0, 1)]
    assert len(runner.calls) == 8
    finals = [0.9 + 0.2 - 0.05 + s / 100 for s in (7, 0, 1)]
    assert found.test_accuracy_mean == pytest.approx(sum(finals) / 3)
    assert found.test_accuracy_std == pytest.approx(
        math.sqrt(sum((f - sum(finals) / 3) ** 2 for f in finals) / 2))
    assert (tmp_path / "final" / f"s-{found.best_spec.key()}" / "seed-7" / "result.json").is_file()
    saved = json.loads((tmp_path / "search.json").read_text())
    assert saved["best_values"] == found.best_values and saved["n"] == 3

    # started again: KerasTuner reloads its project, nothing is trained again
    again = tuning.search(spec, tmp_path, final_seeds=3, runner=runner)
    assert len(runner.calls) == 8
    assert again.best_values == found.best_values and again.test_accuracy_mean == found.test_accuracy_mean
    # overwrite starts from scratch
    tuning.search(spec, tmp_path, final_seeds=1, runner=runner, overwrite=True)
    assert len(runner.calls) == 8 + 6


def test_interrupted_search_resumes_the_unfinished_trials(tmp_path):
    spec = ExperimentSpec(name="s", **TINY, grid={"learning_rate": [1e-1, 1e-2, 1e-3]})

    class Interrupt(FakeRunner):
        def __call__(self, spec, seed, output_dir, **kwargs):
            if spec.learning_rate == 1e-3:
                raise KeyboardInterrupt  # like Ctrl-C (or a kill) in the middle of the third trial
            return super().__call__(spec, seed, output_dir, **kwargs)

    first = Interrupt()
    with pytest.raises(KeyboardInterrupt):
        tuning.search(spec, tmp_path, final_seeds=0, runner=first)
    assert [c[0] for c in first.calls] == [1e-1, 1e-2]
    second = FakeRunner()
    found = tuning.search(spec, tmp_path, final_seeds=0, runner=second)
    assert [c[0] for c in second.calls] == [1e-3]  # only the unfinished trial
    assert found.best_values == {"learning_rate": 1e-2} and found.final is None


def test_random_and_bayesian_tuners_and_val_loss(tmp_path):
    spec = ExperimentSpec(name="s", **TINY, grid={"learning_rate": [1e-1, 1e-2, 1e-3]})
    for tuner in ("random", "bayesian"):
        found = tuning.search(spec, tmp_path / tuner, tuner=tuner, final_seeds=0, runner=FakeRunner())
        assert found.best_values == {"learning_rate": 1e-2}
        assert sorted(t["point"]["learning_rate"] for t in found.trials) == [1e-3, 1e-2, 1e-1]
    found = tuning.search(spec, tmp_path / "loss", objective="val_loss", final_seeds=0, runner=FakeRunner(),
                          max_trials=2)
    assert [t["point"]["learning_rate"] for t in found.trials] == [1e-1, 1e-2]  # grid order, first 2
    assert found.best_values == {"learning_rate": 1e-2} and found.best_score == pytest.approx(0.1)


def test_search_errors(tmp_path):
    spec = ExperimentSpec(name="s", **TINY, grid={"learning_rate": [1.0, 2.0]})
    with pytest.raises(tuning.SearchError, match="every trial of the search failed; first error: .*loss became nan"):
        tuning.search(spec, tmp_path, runner=FakeRunner())
    with pytest.raises(SpecError, match="tuner: unknown value 'hyperband'; allowed: grid, random, bayesian"):
        tuning.search(spec, tmp_path, tuner="hyperband")
    with pytest.raises(SpecError, match="objective: unknown value 'test_accuracy'"):
        tuning.search(spec, tmp_path, objective="test_accuracy")
    with pytest.raises(SpecError, match="max_trials"):
        tuning.search(spec, tmp_path, max_trials=0)


# ---------------------------------------------------------------------------- real training
def test_grid_search_picks_the_working_learning_rate_and_reruns_it(tmp_path):
    """digits, tiny MLP, 1 epoch: lr 1e-1 learns, lr 1e-9 stays at chance; the best runs for 2 seeds."""
    spec = ExperimentSpec(name="lr", **TINY, binarization={"weights": False, "activations": False},
                          grid={"learning_rate": [1e-9, 1e-1]})
    found = tuning.search(spec, tmp_path, final_seeds=2, save_model=False)
    scores = {t["point"]["learning_rate"]: t["score"] for t in found.trials}
    assert scores[1e-1] > scores[1e-9] + 0.2, scores
    assert found.best_values == {"learning_rate": 1e-1}
    assert [r.seed for r in found.final_results] == [0, 1]
    assert all(r.status == "ok" and r.test_accuracy_best_val > 0.5 for r in found.final_results)
    values = [r.test_accuracy_best_val for r in found.final_results]
    assert found.test_accuracy_mean == pytest.approx(sum(values) / 2)
    assert found.test_accuracy_std == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2))
    trial_run = tmp_path / "_trials" / f"lr-{found.best_spec.key()}" / "seed-0" / "result.json"
    final_run = tmp_path / "final" / f"lr-{found.best_spec.key()}" / "seed-0" / "result.json"
    assert RunResult.load(final_run).test_accuracy_best_val == RunResult.load(trial_run).test_accuracy_best_val


def test_a_search_never_writes_outside_its_folder(tmp_path):
    """Issue #16 re-run (B5): `lqbench tune` with name = "../../escape" wrote the tuner's folder
    beside --output before any trial refused the name."""
    spec = ExperimentSpec(name="../../escape", dataset="digits", epochs=1, model_args={"hidden_units": [8]})
    output = tmp_path / "a" / "b" / "out"
    with pytest.raises(ValueError, match="name '../../escape' cannot name a run folder"):
        tuning.search(spec, output)
    assert sorted(p.name for p in tmp_path.rglob("*")) == []
