"""``init_from``: start a run from a saved model or an earlier run (paper 001's shared phase-1 model)."""
import json

import numpy as np
import pytest

import lqbench
import tensorflow as tf

from lqbench import cli, experiment, methods, sweep
from lqbench.errors import LqbenchError
from lqbench.results import RunResult
from lqbench.spec import ExperimentSpec, SpecError, SpecTypeError

TINY = dict(dataset="digits", model="binarynet_mlp", model_args={"hidden_units": [32, 32]}, batch_size=64,
            learning_rate=1e-2, xla="off")
W32A1 = {"weights": False, "activations": True, "activation_estimator": "approx_sign"}
W1A1 = {"weights": True, "activations": True, "activation_estimator": "approx_sign"}


@pytest.fixture(scope="module")
def phase1(tmp_path_factory):
    """A results folder with one finished phase-1 run (binary activations, real weights) per seed 0, 1."""
    out = tmp_path_factory.mktemp("results")
    spec = ExperimentSpec(name="p1", binarization=W32A1, epochs=3, seeds=[0, 1], **TINY)
    for seed in spec.seeds:
        assert experiment.run(spec, seed, out).status == "ok"
    tf.keras.backend.clear_session()
    return out, spec


def _phase2(**values):
    return ExperimentSpec(**{**dict(name="p2", binarization=W1A1, epochs=1, init_from="p1", **TINY), **values})


def _one_line_error(call):
    with pytest.raises(LqbenchError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------- loading
def test_loaded_weights_equal_the_source_and_bnew_prepares_them(phase1):
    out, p1 = phase1
    source = experiment.load_model(experiment.run_dir(p1, 1, out) / "model.keras")
    spec = _phase2(method="bnew", method_args={"pretrain_fraction": 0.0})
    sources = experiment.resolve_sources(spec, 1, out)
    assert sources["init_from"].seed == 1 and sources["init_from"].spec_key == p1.key()
    model, trainer = experiment._build(spec, 1, (8, 8, 1), 10, sources=sources)
    for mine, theirs in zip(model.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)  # every weight, batch-norm statistics included
    # BNEW's latent kernels start from the loaded real weights, clipped to [-1, 1]
    kernels = {layer.name: layer.kernel for layer in model.layers if getattr(layer, "kernel_quantizer", None)}
    assert list(kernels) == ["fc2"]  # the hidden layer; first and last stay real
    real = {name: source.get_layer(name).kernel.numpy() for name in kernels}
    assert max(np.abs(w).max() for w in real.values()) > 0  # trained weights, not zeros
    methods.get("bnew", pretrain_fraction=0.0).prepare(trainer)
    for name, variable in kernels.items():
        np.testing.assert_array_equal(variable.numpy(), np.clip(real[name], -1.0, 1.0))


def test_training_continues_from_the_source_and_result_records_it(phase1):
    out, p1 = phase1
    started = experiment.run(_phase2(binarization=W32A1), 0, out)
    fresh = experiment.run(_phase2(name="fresh", binarization=W32A1, init_from=None), 0, out)
    assert started.status == fresh.status == "ok"
    # the first epoch continues from the phase-1 model: far below a fresh model's first epoch
    assert started.history["loss"][0] < 0.6 * fresh.history["loss"][0], (started.history, fresh.history)
    recorded = json.loads((experiment.run_dir(_phase2(binarization=W32A1), 0, out) / "result.json").read_text())
    assert recorded["init_source"] == {
        "spec": "p1", "path": str((experiment.run_dir(p1, 0, out) / "model.keras").absolute()),
        "run": str(experiment.run_dir(p1, 0, out).absolute()), "name": "p1", "spec_key": p1.key(), "seed": 0}
    assert recorded["teacher_source"] is None and fresh.init_source is None


# ---------------------------------------------------------------------------- finding the source
def test_run_references_and_the_seed_placeholder(phase1, tmp_path, monkeypatch):
    out, p1 = phase1
    folder = f"p1-{p1.key()}"
    for text, seed in [("p1", 1), (folder, 1), (f"{folder}/seed-{{seed}}", 1), ("p1/seed-0", 1),
                       (str(out / folder / "seed-{seed}" / "model.keras"), 0)]:
        found = experiment.resolve_source(text, seed, out)
        expected = 0 if text == "p1/seed-0" else seed
        assert found.path == (out / folder / f"seed-{expected}" / "model.keras").absolute(), text
        assert (found.name, found.spec_key, found.seed) == ("p1", p1.key(), expected)
    # a plain saved model per seed; a relative path is looked up in the output folder, then here
    for seed in (0, 1):
        tf.keras.models.save_model(experiment.load_model(experiment.run_dir(p1, seed, out) / "model.keras"),
                                   tmp_path / f"start-{seed}.keras")
    found = experiment.resolve_source(str(tmp_path / "start-{seed}.keras"), 1)
    assert found.path == tmp_path / "start-1.keras" and found.run is None and found.spec_key is None
    monkeypatch.chdir(tmp_path)
    assert experiment.resolve_source("start-{seed}.keras", 0, out).path == (tmp_path / "start-0.keras").absolute()
    # the trial runs of a search, in <results>/_search/<spec>/_trials, find the runs of <results>
    trials = out / "_search" / "p2-0123456789ab" / "_trials"
    assert experiment.resolve_source("p1", 0, trials).spec_key == p1.key()


def test_distillation_teacher_is_found_by_the_same_rules(phase1):
    out, p1 = phase1
    spec = ExperimentSpec(name="kd", distillation={"teacher": "p1", "ce_weight": 1.0}, epochs=1, **TINY)
    _, distiller = experiment._build(spec, 1, (8, 8, 1), 10, sources=experiment.resolve_sources(spec, 1, out))
    source = experiment.load_model(experiment.run_dir(p1, 1, out) / "model.keras")
    for mine, theirs in zip(distiller.teacher.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert experiment.resolve_sources(spec, 1, out)["teacher"].to_dict()["spec_key"] == p1.key()
    # a relative teacher may name a run that does not exist yet: checked when the run starts
    assert "distillation: teacher 'p1': no saved model or run at" in _one_line_error(
        lambda: experiment.resolve_sources(spec, 0, out / "elsewhere"))


def test_spec_field_validation_and_key():
    assert _phase2().key() != _phase2(init_from="p1/seed-{seed}").key() != _phase2(init_from=None).key()
    # without init_from a spec keeps the key of earlier versions (their results folders stay valid)
    assert ExperimentSpec(epochs=1).key() == "517fd22dc065"
    assert ExperimentSpec.from_toml(_phase2(init_from="r-{seed}").to_toml()).init_from == "r-{seed}"
    assert _phase2().with_values({"init_from": "other"}).init_from == "other"
    with pytest.raises(SpecTypeError, match="init_from=3 .* must be a string"):
        _phase2(init_from=3)
    for bad, fragment in [("", "is empty"), ("p1-{sed}", "placeholder other than {seed}"),
                          ("p1-{}", "placeholder other than {seed}"), ("p1-{seed", "placeholder other than")]:
        with pytest.raises(SpecError, match=fragment):
            _phase2(init_from=bad)


def test_each_error_is_one_line(phase1, tmp_path):
    out, p1 = phase1
    assert "no saved model or run at" in _one_line_error(lambda: experiment.resolve_source("nowhere", 0, out))
    assert "no saved model or run at /nope/m-3.keras" in _one_line_error(
        lambda: experiment.resolve_source("/nope/m-{seed}.keras", 3, out))
    (tmp_path / "notes.txt").write_text("x")
    assert "is not a saved Keras model" in _one_line_error(
        lambda: experiment.resolve_source(str(tmp_path / "notes.txt"), 0))
    assert "no seed-7 run" in _one_line_error(lambda: experiment.resolve_source(f"p1-{p1.key()}", 7, out))
    # a failed run, an unfinished run, two runs of one name
    spec = ExperimentSpec(name="bad", epochs=1)
    failed = experiment.run_dir(spec, 0, tmp_path)
    failed.mkdir(parents=True)
    RunResult(name="bad", spec_key=spec.key(), seed=0, status="failed", error="loss became nan at epoch 1").save(
        failed / "result.json")
    assert "failed: loss became nan at epoch 1" in _one_line_error(lambda: experiment.resolve_source("bad", 0, tmp_path))
    unfinished = experiment.run_dir(spec.with_values({"epochs": 2}), 0, tmp_path)
    unfinished.mkdir(parents=True)
    (unfinished / "spec.toml").write_text("")
    assert "has not finished" in _one_line_error(lambda: experiment.resolve_source(str(unfinished), 0))
    assert "several runs named 'bad'" in _one_line_error(lambda: experiment.resolve_source("bad", 0, tmp_path))
    # a file that is not a Keras model, and another model
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    message = _one_line_error(lambda: experiment._build(
        _phase2(init_from=str(tmp_path / "broken.keras")), 0, (8, 8, 1), 10))
    assert message.startswith(f"init_from '{tmp_path / 'broken.keras'}': cannot load Keras model")
    other = _phase2(model_args={"hidden_units": [16, 32]})
    message = _one_line_error(lambda: experiment._build(other, 0, (8, 8, 1), 10,
                                                        sources=experiment.resolve_sources(other, 0, out)))
    assert "does not fit this binarynet_mlp" in message and "kernel (64, 16)" in message
    assert "kernel (64, 32)" in message and "in the saved model" in message
    deeper = _phase2(model_args={"hidden_units": [32, 32, 32]})
    message = _one_line_error(lambda: experiment._build(deeper, 0, (8, 8, 1), 10,
                                                        sources=experiment.resolve_sources(deeper, 0, out)))
    assert "does not fit" in message


# ---------------------------------------------------------------------------- sweeps and the command line
def test_sweep_trains_phase1_before_the_runs_that_start_from_it(tmp_path):
    text = f"""
name = "s"
order = "seeds"
[base]
dataset = "digits"
model = "binarynet_mlp"
model_args = {{hidden_units = [32, 32]}}
binarization = {{activation_estimator = "approx_sign"}}
epochs = 1
batch_size = 64
learning_rate = 1e-2
xla = "off"
seeds = [0, 1]

[[group]]          # listed first: the sweep still trains its source first
name = "bop"
set = {{method = "bop", init_from = "s-phase1"}}

[[group]]
name = "phase1"
set = {{binarization = {{weights = false}}}}
"""
    specs = sweep.SweepSpec.from_toml(text).specs()
    phase1, bop = sorted(specs, key=lambda s: s.name != "s-phase1")
    # the phase-1 runs do not exist yet: the run fails with one line, retry_failed redoes it later
    alone = sweep.sweep([bop], tmp_path, log=None)
    assert [r.status for r in alone.results] == ["failed", "failed"]
    assert "init_from 's-phase1': no saved model or run at" in alone.results[0].error
    done = sweep.sweep(specs, tmp_path, log=None, order="seeds", retry_failed=True)
    assert [r.status for r in done.results] == ["ok"] * 4, [r.error for r in done.results]
    assert done.trained == [f"s-phase1-{phase1.key()}/seed-0", f"s-bop-{bop.key()}/seed-0",
                            f"s-phase1-{phase1.key()}/seed-1", f"s-bop-{bop.key()}/seed-1"]
    for result in done.results[1::2]:
        assert (result.init_source["name"], result.init_source["spec_key"]) == ("s-phase1", phase1.key())
        assert result.init_source["seed"] == result.seed
    assert sweep.dependency_depths(specs) == {(phase1.name, phase1.key()): 0, (bop.name, bop.key()): 1}


def test_command_line_flag(capsys, tmp_path):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert "--init-from PATH" in capsys.readouterr().out
    assert cli.main(["train", "--init-from", "nowhere-{seed}", "--epochs", "1", "--in-process", "--xla", "off",
                     "--output", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "init_from 'nowhere-{seed}': no saved model or run at" in error[0]
    assert f"{tmp_path}/nowhere-0" in error[0]
