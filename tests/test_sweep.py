"""Sweeps: expand/sweep files, resumability (fake runner, then SIGKILL of the real CLI), failures."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

import lqbench  # noqa: F401
from lqbench import experiment, sweep
from lqbench.experiment import RunResult
from lqbench.spec import ExperimentSpec, SpecError

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = dict(dataset="digits", model="binarynet_mlp", model_args={"hidden_units": [32]}, epochs=1, batch_size=64)


def _base(**values):
    return ExperimentSpec(**{"name": "mlp", **TINY, **values})


# ---------------------------------------------------------------------------- expand and sweep files
def test_expand_products_with_readable_names():
    base = _base(binarization={"activation_estimator": "tanh"})
    specs = sweep.expand(base, {"algorithm": ["bp", "dfa"], "binarization": ["W1A1", "W32A1"],
                                "learning_rate": [1e-3], "skip_connections": [False]})
    assert [s.name for s in specs] == [
        "mlp-bp-W1A1-lr0.001-no-skips", "mlp-bp-W32A1-lr0.001-no-skips",
        "mlp-dfa-W1A1-lr0.001-no-skips", "mlp-dfa-W32A1-lr0.001-no-skips",
    ]
    assert [(s.algorithm, s.binarization.label) for s in specs] == [
        ("bp", "W1A1"), ("bp", "W32A1"), ("dfa", "W1A1"), ("dfa", "W32A1")]
    assert all(s.binarization.activation_estimator == "tanh" for s in specs)  # label keeps the estimators
    assert len({s.key() for s in specs}) == 4
    tables = sweep.expand(base, {"binarization": [{"weights": False, "weight_estimator": "ste"}],
                                 "model_args": [{"hidden_units": [16, 8]}], "algorithm_args.gamma": [20.0],
                                 "algorithm": ["hsic"]})
    assert tables[0].name == "mlp-W32A1-ste-hiddenunits16x8-gamma20-hsic"
    assert tables[0].model_args == {"hidden_units": [16, 8]} and tables[0].algorithm_args == {"gamma": 20.0}


@pytest.mark.parametrize("axes, fragment", [
    ({"seeds": [[0], [1]]}, "'seeds' cannot be an axis"),
    ({"algorithm": []}, "algorithm must be a non-empty list"),
    ({"binarization": ["W2A1"]}, "'W2A1' is not one of W1A1"),
    ({"algorithm": ["bp", "sgd"]}, "{'algorithm': 'sgd'}: algorithm: unknown value 'sgd'"),
    ({"colour": ["red"]}, "colour"),
])
def test_expand_errors(axes, fragment):
    with pytest.raises(SpecError) as error:
        sweep.expand(_base(), axes)
    assert fragment in str(error.value)


SWEEP_TOML = """
name = "s"

[base]
dataset = "digits"
model = "binarynet_mlp"
model_args = {hidden_units = [32]}
epochs = 1
batch_size = 64
seeds = [0, 1]

[base.binarization]
activation_estimator = "tanh"

[axes]
algorithm = ["bp", "dfa"]
binarization = ["W1A1", "W32A32"]

[[group]]
name = "noskip"
set = {skip_connections = false, binarization = {weights = false}}
axes = {learning_rate = [1e-2, 1e-3]}

[[group]]
name = "single"
set = {optimizer = "sgd"}
"""


def test_sweep_file_groups_round_trip(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP_TOML)
    loaded = sweep.SweepSpec.load(path)
    specs = loaded.specs()
    assert len(specs) == 4 + 2 + 1
    names = [s.name for s in specs]
    assert names[:4] == ["s-bp-W1A1", "s-bp-W32A32", "s-dfa-W1A1", "s-dfa-W32A32"]
    assert names[4:] == ["s-noskip-lr0.01", "s-noskip-lr0.001", "s-single"]
    noskip = specs[4]
    assert noskip.skip_connections is False and noskip.binarization.weights is False
    assert noskip.binarization.activations is True and noskip.binarization.activation_estimator == "tanh"
    assert specs[-1].method_args.get("optimizer") == "sgd" and specs[-1].seeds == [0, 1]
    again = sweep.SweepSpec.from_toml(loaded.to_toml())
    assert [(s.name, s.key()) for s in again.specs()] == [(s.name, s.key()) for s in specs]
    # a plain spec file is a sweep of one configuration
    _base().save(tmp_path / "one.toml")
    assert [s.name for s in sweep.load_specs(tmp_path / "one.toml")] == ["mlp"]


@pytest.mark.parametrize("text, fragment", [
    ("[axes]\nalgorithm = ['bp']\n", "needs a [base] table"),
    ("colour = 1\n[base]\n", "unknown sweep key(s) colour"),
    ("[base]\n[[group]]\nfoo = 1\n", "unknown key(s) foo"),
    ("tuner = 'hyperband'\n[base]\n", "tuner: unknown value 'hyperband'"),
    ("[base]\nepochs = 0\n", "epochs"),
    ("[base]\n[axes]\nmodel = ['nope']\n", "model: unknown value 'nope'"),
])
def test_sweep_file_errors(text, fragment):
    with pytest.raises(SpecError) as error:
        sweep.SweepSpec.from_toml(text)
    assert fragment in str(error.value)


# ---------------------------------------------------------------------------- resumability (fake runner)
class CountingRunner:
    """Writes a result like experiment.run does, counts its calls per run, can fail on demand."""

    def __init__(self, fail_on=()):
        self.calls: dict[str, int] = {}
        self.fail_on = set(fail_on)

    def __call__(self, spec, seed, output_dir, **kwargs):
        folder = experiment.run_dir(spec, seed, output_dir)
        self.calls[str(folder)] = self.calls.get(str(folder), 0) + 1
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "scratch.txt").write_text("partial work")
        if (spec.algorithm, seed) in self.fail_on:
            raise RuntimeError(f"boom in {spec.algorithm}\nsecond line")
        result = RunResult(name=spec.name, spec_key=spec.key(), seed=seed, status="ok",
                           test_accuracy=0.5 + seed / 10, test_accuracy_best_val=0.5 + seed / 10,
                           spec=spec.to_dict())
        result.save(folder / "result.json")
        return result


def test_sweep_order_seeds_trains_every_configuration_before_second_seeds(tmp_path):
    specs = sweep.expand(_base(seeds=[3, 4]), {"algorithm": ["bp", "dfa", "drtp"]})
    order = []

    def runner(spec, seed, output_dir, **kwargs):
        order.append((spec.algorithm, seed))
        return CountingRunner()(spec, seed, output_dir)

    sweep.sweep(specs, tmp_path / "a", runner=runner, log=None, order="seeds")
    assert order == [("bp", 3), ("dfa", 3), ("drtp", 3), ("bp", 4), ("dfa", 4), ("drtp", 4)]
    order.clear()
    sweep.sweep(specs, tmp_path / "b", runner=runner, log=None)  # default "configs"
    assert order == [("bp", 3), ("bp", 4), ("dfa", 3), ("dfa", 4), ("drtp", 3), ("drtp", 4)]
    with pytest.raises(ValueError, match="order: unknown value 'random'; allowed: configs, seeds"):
        sweep.sweep(specs, tmp_path / "c", runner=runner, log=None, order="random")
    loaded = sweep.SweepSpec.from_toml("order = 'seeds'\n[base]\n")
    assert loaded.order == "seeds" and sweep.SweepSpec.from_toml(loaded.to_toml()).order == "seeds"
    with pytest.raises(SpecError, match="order: unknown value 'x'"):
        sweep.SweepSpec.from_toml("order = 'x'\n[base]\n")


def test_sweep_resumes_redoes_partial_and_records_errors(tmp_path):
    specs = sweep.expand(_base(seeds=[0, 1]), {"algorithm": ["bp", "dfa"]})
    runner = CountingRunner(fail_on={("dfa", 1)})
    first = sweep.sweep(specs, tmp_path, runner=runner, log=None)
    assert len(first.results) == 4 and len(first.trained) == 4 and not first.reused
    assert [r.status for r in first.results] == ["ok", "ok", "ok", "failed"]
    failed = first.results[3]
    assert failed.error == "RuntimeError: boom in dfa second line"  # one line
    failed_dir = experiment.run_dir(specs[1], 1, tmp_path)
    assert "Traceback" in (failed_dir / "error.log").read_text()
    assert RunResult.load(failed_dir / "result.json").status == "failed"

    # a half-written run (folder, no result.json) and a corrupt result are redone; the rest is not
    partial = experiment.run_dir(specs[0], 1, tmp_path)
    (partial / "result.json").unlink()
    (partial / "leftover.bin").write_text("x")
    corrupt = experiment.run_dir(specs[1], 0, tmp_path)
    (corrupt / "result.json").write_text('{"name": ')
    second = sweep.sweep(specs, tmp_path, runner=runner, log=None)
    assert sorted(second.trained) == sorted(str(p.relative_to(tmp_path)) for p in (partial, corrupt))
    assert len(second.reused) == 2
    assert not (partial / "leftover.bin").exists()  # cleared before the redo
    assert runner.calls[str(experiment.run_dir(specs[0], 0, tmp_path))] == 1
    assert runner.calls[str(failed_dir)] == 1  # failed runs count as finished
    third = sweep.sweep(specs, tmp_path, runner=runner, log=None, retry_failed=True)
    assert third.trained == [str(failed_dir.relative_to(tmp_path))] and runner.calls[str(failed_dir)] == 2

    index = sweep.load_index(tmp_path)
    assert len(index) == 4 + 2 + 1
    assert {e["path"] for e in index} == {str(experiment.run_dir(s, seed, tmp_path).relative_to(tmp_path))
                                          for s in specs for seed in (0, 1)}


def test_lost_index_line_is_recovered(tmp_path):
    specs = [_base(seeds=[0])]
    sweep.sweep(specs, tmp_path, runner=CountingRunner(), log=None)
    (tmp_path / "index.jsonl").write_text("")  # as if killed between result.json and the index line
    again = sweep.sweep(specs, tmp_path, runner=CountingRunner(), log=None)
    assert again.reused and not again.trained
    assert [e["recovered"] for e in sweep.load_index(tmp_path)] == [True]


def test_run_held_by_another_process_is_skipped(tmp_path):
    spec = _base(seeds=[0])
    folder = experiment.run_dir(spec, 0, tmp_path)
    with sweep.claim(folder) as mine:
        assert mine
        # flock locks belong to the open file, so a second open in this process conflicts like another process
        result = sweep.sweep([spec], tmp_path, runner=CountingRunner(), log=None, wait_busy=False)
    assert result.busy == [str(folder.relative_to(tmp_path))] and not result.results
    assert sweep.sweep([spec], tmp_path, runner=CountingRunner(), log=None).trained


def test_result_json_that_is_not_a_result_is_redone_not_a_traceback(tmp_path, capsys):
    """Issue #16 row 4: a result.json holding [1, 2, 3]: sweep, sweep --dry-run and report go on."""
    from lqbench import cli

    spec = _base(seeds=[0, 1])
    sweep.sweep([spec], tmp_path, runner=CountingRunner(), log=None)
    garbage = experiment.run_dir(spec, 1, tmp_path) / "result.json"
    garbage.write_text("[1, 2, 3]")
    assert sweep.finished_result(garbage.parent) is None
    result, reason = sweep.read_result(garbage)
    assert result is None and "not a run result" in reason and "list" in reason

    sweep_file = tmp_path / "spec.toml"
    spec.save(sweep_file)
    assert cli.main(["sweep", str(sweep_file), "--output", str(tmp_path), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "seed-1: unusable result.json, will be redone: not a run result" in printed
    assert cli.main(["report", str(tmp_path), "--no-figures", "--no-hparams"]) == 0
    printed = capsys.readouterr().out
    assert "skipped 1" in printed and "not a run result" in printed

    runner = CountingRunner()
    again = sweep.sweep([spec], tmp_path, runner=runner, log=None)
    assert again.trained == [str(garbage.parent.relative_to(tmp_path))] and len(again.reused) == 1
    assert RunResult.load(garbage).seed == 1


def test_another_runs_result_copied_in_is_not_taken_as_done(tmp_path):
    """Issue #16 row 11 (sweep side): a result.json copied from another run's folder is redone."""
    import shutil

    spec = _base(seeds=[0, 1])
    sweep.sweep([spec], tmp_path, runner=CountingRunner(), log=None)
    seed0, seed1 = (experiment.run_dir(spec, seed, tmp_path) for seed in (0, 1))
    shutil.copy(seed0 / "result.json", seed1 / "result.json")  # seed 0's result in seed 1's folder
    result, reason = sweep.read_result(seed1 / "result.json")
    assert result is None and "another run" in reason and "seed-0" in reason
    runner = CountingRunner()
    again = sweep.sweep([spec], tmp_path, runner=runner, log=None)
    assert again.trained == [str(seed1.relative_to(tmp_path))]
    assert RunResult.load(seed1 / "result.json").seed == 1


def test_a_name_cannot_write_outside_the_output_folder(tmp_path, capsys):
    """Issue #16 row 8: name = "../../escape" is refused with one line, before anything is written."""
    from lqbench import cli

    output = tmp_path / "a" / "b" / "out"
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text('name = "../../escape"\ndataset = "digits"\nmodel = "binarynet_mlp"\n'
                         'model_args = {hidden_units = [8]}\nepochs = 1\n')
    assert cli.main(["sweep", str(spec_file), "--output", str(output)]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and "'../../escape'" in error and "must not" in error
    assert cli.main(["train", "--spec", str(spec_file), "--output", str(output)]) == 2
    assert "'../../escape'" in capsys.readouterr().err
    for bad in ("../x", "a/b", ".hidden", "", "c\\d"):
        with pytest.raises(ValueError, match="cannot name a run folder"):
            experiment.run_dir(_Named(bad), 0, output)
    assert not any(p.name.startswith("escape") for p in tmp_path.rglob("*"))  # nothing written anywhere
    assert not output.exists()


class _Named:
    """A stand-in spec with any name (the spec may accept names a folder cannot have)."""

    def __init__(self, name):
        self.name = name

    def key(self):
        return "k"


def test_two_sweeps_on_one_folder_wait_for_each_other_without_false_recovery(tmp_path):
    """Issue #16 row 12: another sweep finishes a run while this one works: no "recovered" line,
    nothing left "busy", every result in the outcome."""
    import threading

    first, second = _base(name="first", seeds=[0]), _base(name="second", seeds=[0])
    held = experiment.run_dir(second, 0, tmp_path)
    claimed, finished = threading.Event(), threading.Event()

    def other_sweep():  # holds "second" and finishes it while this sweep trains "first"
        with sweep.claim(held) as mine:
            assert mine
            claimed.set()
            time.sleep(0.5)
            result = CountingRunner()(second, 0, tmp_path)
            sweep._append_index(tmp_path, held, result)
        finished.set()

    class SlowRunner(CountingRunner):
        def __call__(self, spec, seed, output_dir, **kwargs):
            finished.wait(10)
            return super().__call__(spec, seed, output_dir, **kwargs)

    thread = threading.Thread(target=other_sweep)
    thread.start()
    claimed.wait(5)
    # "second" is busy when first reached, and done by the time this sweep looks again
    outcome = sweep.sweep([second, first], tmp_path, runner=SlowRunner(), log=None)
    thread.join()
    assert not outcome.busy and len(outcome.results) == 2 and not outcome.failed
    assert outcome.reused == [str(held.relative_to(tmp_path))]
    assert [e["recovered"] for e in sweep.load_index(tmp_path)] == [False, False]

    # and a sweep that finds a run held by a live process waits for it rather than skipping it
    late = _base(name="late", seeds=[0])
    folder = experiment.run_dir(late, 0, tmp_path)
    release = threading.Event()

    def hold():
        with sweep.claim(folder):
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.1)
    threading.Timer(0.5, release.set).start()
    waited = sweep.sweep([late], tmp_path, runner=CountingRunner(), log=None)
    holder.join()
    assert waited.trained == [str(folder.relative_to(tmp_path))] and not waited.busy


# ---------------------------------------------------------------------------- real training
def _events_pids(folder: pathlib.Path) -> list[str]:
    """The process ids in the names of the TensorBoard event files a training wrote."""
    return sorted(p.name.split(".")[-3] for p in (folder / "logs").rglob("events.out.tfevents.*"))


def test_sweep_cli_survives_sigkill(tmp_path):
    """Kill -9 the sweep CLI after the first result, restart: every run trained exactly once."""
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text(SWEEP_TOML.split("[[group]]")[0].replace('["bp", "dfa"]', '["bp"]')
                          .replace('["W1A1", "W32A32"]', '["W1A1"]'))
    output = tmp_path / "out"
    specs = sweep.load_specs(sweep_file)
    folders = [experiment.run_dir(s, seed, output) for s in specs for seed in s.seeds]
    assert len(folders) == 2  # seeds 0 and 1
    command = [sys.executable, "-m", "lqbench.cli", "sweep", str(sweep_file), "--output", str(output), "--quiet"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.time() + 180
    while not any((f / "result.json").exists() for f in folders):
        assert process.poll() is None, process.stdout.read().decode()[-3000:]
        assert time.time() < deadline, "no result within 180 s"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = {f: (f / "result.json").read_bytes() for f in folders if (f / "result.json").exists()}
    assert 0 < len(done_before) < len(folders), "the kill must interrupt the sweep"
    pids_before = {f: _events_pids(f) if (f / "logs").exists() else [] for f in folders}  # each run's own process

    restart = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert restart.returncode == 0, restart.stdout[-3000:] + restart.stderr[-3000:]
    for folder in folders:
        result = RunResult.load(folder / "result.json")
        assert result.status == "ok"
        pids = _events_pids(folder)
        assert pids and len(set(pids)) == 1, (folder, pids)  # one training wrote this run's logs
        if folder in done_before:
            assert (folder / "result.json").read_bytes() == done_before[folder]  # not redone
            assert pids == pids_before[folder]
        else:
            assert pids[0] not in pids_before[folder]  # the killed run was redone from scratch by the restart
    index = sweep.load_index(output)
    paths = [e["path"] for e in index]
    assert sorted(paths) == sorted(str(f.relative_to(output)) for f in folders)  # each run exactly once
    assert "done before" in restart.stdout


def test_nan_run_is_recorded_and_the_sweep_continues(tmp_path):
    # full precision (nothing clips the weights) and SGD with a learning rate of 1e30: NaN at batch 2
    diverging = _base(name="diverge", optimizer="sgd", learning_rate=1e30, seeds=[0],
                      binarization={"weights": False, "activations": False}, model_args={"hidden_units": [32]})
    healthy = _base(name="ok", seeds=[0])
    outcome = sweep.sweep([diverging, healthy], tmp_path, log=None, save_model=False)
    first, second = outcome.results
    assert first.status == "failed" and "loss became" in first.error, first.error
    assert second.status == "ok" and second.test_accuracy > 0.3
    stored = RunResult.load(experiment.run_dir(diverging, 0, tmp_path) / "result.json")
    assert stored.status == "failed" and stored.error == first.error
    assert [e["status"] for e in sweep.load_index(tmp_path)] == ["failed", "ok"]


def test_a_result_with_non_numeric_metrics_is_not_a_finished_run(tmp_path):
    """Issue #16 re-run (B6): a result.json with test_accuracy "high" counted as done and broke the report."""
    specs = [_base()]
    runner = CountingRunner()
    sweep.sweep(specs, tmp_path, runner=runner, log=None)
    folder = experiment.run_dir(specs[0], 0, tmp_path)
    stored = json.loads((folder / "result.json").read_text())
    for field, value in (("test_accuracy", "high"), ("peak_memory_bytes", "1 GB"), ("wall_time_s", True)):
        (folder / "result.json").write_text(json.dumps({**stored, field: value}))
        result, problem = sweep.read_result(folder / "result.json")
        assert result is None and f"{field} is {value!r}, expected a number" in problem
    again = sweep.sweep(specs, tmp_path, runner=runner, log=None)
    assert again.trained == [str(folder.relative_to(tmp_path))]


def test_a_run_folder_that_cannot_be_written_fails_that_run_only(tmp_path, monkeypatch):
    """Issue #16 re-run (B7): an unwritable run folder stopped the whole sweep with a PermissionError."""
    specs = sweep.expand(_base(), {"algorithm": ["bp", "dfa"]})
    blocked = experiment.run_dir(specs[0], 0, tmp_path)
    touch = pathlib.Path.touch

    def guarded_touch(self, *args, **kwargs):
        if self.parent == blocked:
            raise PermissionError(13, "Permission denied")
        return touch(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "touch", guarded_touch)
    lines = []
    outcome = sweep.sweep(specs, tmp_path, runner=CountingRunner(), log=lines.append)
    assert [r.status for r in outcome.results] == ["failed", "ok"]
    assert "cannot write the run folder" in outcome.results[0].error and "Permission denied" in lines[0]


def test_dry_run_lists_runs_in_training_order_and_the_ones_training_elsewhere(tmp_path, capsys):
    from lqbench import cli

    sweep_file = tmp_path / "s.toml"
    sweep_file.write_text("name = 's'\norder = 'seeds'\n[base]\ndataset = 'digits'\nepochs = 1\nseeds = [0, 1]\n"
                          "model_args = {hidden_units = [8]}\n[axes]\nalgorithm = ['bp', 'dfa']\n")
    specs = sweep.load_specs(sweep_file)
    output = tmp_path / "out"
    assert [(s.algorithm, seed) for s, seed in sweep.training_order(specs, "seeds")] == [
        ("bp", 0), ("dfa", 0), ("bp", 1), ("dfa", 1)]
    busy = experiment.run_dir(specs[1], 0, output)
    with sweep.claim(busy) as mine:  # as a live sweep holds the run it trains
        assert mine and sweep.is_busy(busy)
        assert cli.main(["sweep", str(sweep_file), "--output", str(output), "--dry-run"]) == 0
    assert not sweep.is_busy(busy)
    lines = capsys.readouterr().out.strip().splitlines()[1:]
    assert [line.split("/")[1].split(":")[0] for line in lines] == ["seed-0", "seed-0", "seed-1", "seed-1"]
    assert lines[1].endswith("seed-0: training in another process") and lines[0].endswith("not started")
