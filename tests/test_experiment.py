"""The experiment runner end to end on the embedded digits: every algorithm, recipes, failures."""
import json

import numpy as np
import pytest

import lqbench
import tensorflow as tf

from lqbench import experiment
from lqbench.spec import ExperimentSpec

TINY = dict(dataset="digits", model="binarynet_mlp", model_args={"hidden_units": [64, 64]}, epochs=3,
            batch_size=64, learning_rate=1e-2)


@pytest.mark.parametrize("algorithm", ["bp", "dfa", "drtp", "hsic", "sigprop"])
def test_every_algorithm_trains_saves_and_reloads(algorithm, tmp_path):
    spec = ExperimentSpec(name=algorithm, algorithm=algorithm, **TINY)
    result = experiment.run(spec, output_dir=tmp_path)
    assert result.status == "ok", result.error
    assert result.execution["requested"] == "auto" and result.execution["reason"].startswith(("measured", "cached"))
    assert result.epochs_run == 3 and len(result.history["loss"]) == 3
    assert result.test_accuracy > 0.3  # 10 classes: chance is 0.1
    assert 0 < result.best_val_accuracy <= 1 and 1 <= result.best_epoch <= 3
    assert result.params > 0 and result.footprint_bits > 0 and result.wall_time_s > 0
    saved = json.loads((experiment.run_dir(spec, 0, tmp_path) / "result.json").read_text())
    assert saved["test_accuracy"] == result.test_accuracy and saved["status"] == "ok"
    reloaded = experiment.load_model(result.model_path)
    x = next(iter(lqbench.data.load("digits", "test", batch_size=16)))[0]
    trained = lqbench.models.build("binarynet_mlp", (8, 8, 1), 10, hidden_units=[64, 64])
    trained.set_weights(reloaded.get_weights())
    np.testing.assert_allclose(reloaded(x, training=False), trained(x, training=False), rtol=1e-5, atol=1e-5)


def test_best_validation_weights_are_evaluated_separately(tmp_path):
    result = experiment.run(ExperimentSpec(name="best", **TINY), output_dir=tmp_path)
    assert result.best_val_accuracy == pytest.approx(max(result.history["val_accuracy"]))
    assert result.best_epoch == int(np.argmax(result.history["val_accuracy"])) + 1


def test_augmented_run_warms_up_on_batches_of_the_image_size(tmp_path):
    """Augmented batches keep their static image size, so the execution mode's synthetic batch
    (built from the dataset's element_spec) has the model's input shape."""
    result = experiment.run(ExperimentSpec(name="aug", augment=True, xla="off", **{**TINY, "epochs": 1}),
                            output_dir=tmp_path)
    assert result.status == "ok" and result.epochs_run == 1


def test_xla_can_be_switched_off(tmp_path):
    result = experiment.run(ExperimentSpec(name="graph", xla="off", **{**TINY, "epochs": 1}),
                            output_dir=tmp_path)
    assert result.status == "ok" and not result.jit_compile


def test_diverging_run_is_recorded_as_failed_with_its_reason(tmp_path):
    spec = ExperimentSpec(name="nan", binarization=lqbench.Binarization.full_precision(), optimizer="sgd",
                          **{**TINY, "learning_rate": 1e30, "model_args": {"hidden_units": [8]}})
    result = experiment.run(spec, output_dir=tmp_path)
    assert result.status == "failed"
    assert "loss became" in result.error and "epoch 1" in result.error
    on_disk = experiment.RunResult.load(experiment.run_dir(spec, 0, tmp_path) / "result.json")
    assert on_disk.status == "failed" and on_disk.error == result.error


def test_naive_post_training_binarization_trains_float_and_deploys_binary(tmp_path):
    spec = ExperimentSpec(name="ptb", post_training_binarization=True, **TINY)
    result = experiment.run(spec, output_dir=tmp_path)
    assert result.status == "ok"
    assert result.test_accuracy is not None and result.best_val_accuracy > 0.3  # float training worked
    model = experiment.load_model(result.model_path)
    assert model.get_layer("fc2").kernel_quantizer is not None, "the saved model must be the binarized twin"
    assert model.get_layer("fc2").input_quantizer is not None


def test_continuous_binarization_recipe_ends_with_binary_activations(tmp_path):
    from lqbench import continuous

    spec = ExperimentSpec(name="cb", method="cb", binarization=lqbench.Binarization(weights=False, activations=False),
                          **{**TINY, "epochs": 3})
    result = experiment.run(spec, output_dir=tmp_path)
    assert result.status == "ok", result.error
    model = experiment.load_model(result.model_path)
    layers = continuous.pcf_layers(model)
    assert layers and all(bool(layer.binary) for layer in layers)


@pytest.mark.parametrize("optimizer", ["bop", "bnew"])
def test_binarizing_optimizers_leave_binary_kernels(optimizer, tmp_path):
    spec = ExperimentSpec(name=optimizer, optimizer=optimizer, **{**TINY, "learning_rate": 1e-3})
    result = experiment.run(spec, output_dir=tmp_path)
    assert result.status == "ok", result.error
    assert result.test_accuracy > 0.2
    model = experiment.load_model(result.model_path)
    latent = model.get_layer("fc2").kernel.numpy()  # the hidden binary layer's latent weights
    np.testing.assert_array_equal(np.abs(latent), np.ones_like(latent))


class _InterruptAfter(tf.keras.callbacks.Callback):
    """Raise KeyboardInterrupt (what SIGINT does) at the end of epoch ``epoch`` (1-based), after the backup."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise KeyboardInterrupt


def test_resumed_run_records_its_whole_history_time_and_best_epoch(tmp_path):
    """Issue #16 row 9: SIGINT at epoch 3 of 5, same command again -> the record covers all 5 epochs."""
    spec = ExperimentSpec(name="resume", **{**TINY, "epochs": 5, "learning_rate": 3e-2})
    with pytest.raises(KeyboardInterrupt):
        experiment.run(spec, output_dir=tmp_path, extra_callbacks=(_InterruptAfter(3),), save_model=False)
    progress = json.loads((experiment.run_dir(spec, 0, tmp_path) / "backup" / "progress.json").read_text())
    first_segment = progress["history"]["val_accuracy"]
    assert len(first_segment) == 3 and progress["time_s"] > 0

    result = experiment.run(spec, output_dir=tmp_path, save_model=False)
    assert result.status == "ok" and result.resumptions == 1
    assert result.epochs_run == 5 and all(len(v) == 5 for v in result.history.values()), result.history
    assert result.history["val_accuracy"][:3] == pytest.approx(first_segment)  # the first segment's epochs kept
    val = result.history["val_accuracy"]
    assert result.best_val_accuracy == pytest.approx(max(val))  # over all epochs, not the resumed ones only
    assert result.best_epoch == int(np.argmax(val)) + 1
    assert result.wall_time_s >= progress["time_s"]  # both segments' training time
    assert not (experiment.run_dir(spec, 0, tmp_path) / "backup" / "progress.json").exists()  # cleaned up


def test_resumed_run_restores_best_weights_of_the_first_segment(tmp_path):
    """The best epoch may lie before the interruption: its weights are evaluated, not the resumed ones'."""
    spec = ExperimentSpec(name="best-first", **{**TINY, "epochs": 3})
    with pytest.raises(KeyboardInterrupt):
        experiment.run(spec, output_dir=tmp_path, extra_callbacks=(_InterruptAfter(2),), save_model=False)
    folder = experiment.run_dir(spec, 0, tmp_path) / "backup"
    progress = json.loads((folder / "progress.json").read_text())
    # pretend the first segment had a perfect validation epoch (weights: zeros, a constant prediction)
    with np.load(folder / "best.weights.npz") as stored:
        zeros = {k: np.zeros_like(v) for k, v in stored.items()}
    np.savez(folder / "best.weights.npz", **zeros)
    progress.update(best=1.0, best_epoch=0)
    (folder / "progress.json").write_text(json.dumps(progress))
    result = experiment.run(spec, output_dir=tmp_path, save_model=False)
    assert result.best_epoch == 1 and result.best_val_accuracy == 1.0 and result.resumptions == 1
    assert result.test_accuracy_best_val < 0.2  # the zero weights predict one class: about 1/10


def test_peak_memory_is_a_property_of_the_run_not_of_the_process(tmp_path):
    """Issue #16 row 10: the same configuration before and after a bigger one in one sweep: the same peak."""
    from lqbench import sweep

    # graph mode, not xla="auto": no XLA timing and compilation in each of the three processes, and
    # the big run's peak no longer hangs on that measurement's choice (XLA's fused step needs less:
    # 126 MiB above the build measured with XLA chosen, 303 MiB in graph mode, the small runs 22 MiB)
    small = ExperimentSpec(name="small", **{**TINY, "epochs": 1, "xla": "off"})
    big = ExperimentSpec(name="big", **{**TINY, "epochs": 1, "xla": "off",
                                        "model_args": {"hidden_units": [4096, 4096]}})
    again = small.with_values({"name": "small-again"})
    outcome = sweep.sweep([small, big, again], tmp_path, log=None, isolate=True, save_model=False)
    assert [r.status for r in outcome.results] == ["ok"] * 3, [r.error for r in outcome.results]
    first, bigger, last = (r.peak_memory_bytes for r in outcome.results)
    assert all("own process" in r.memory_method for r in outcome.results), outcome.results[0].memory_method
    # it measures the run: 16.5 M more parameters (with gradients and Adam's moments: ~250 MiB) need more
    assert bigger > first + 100 * 2**20
    assert last == pytest.approx(first, rel=0.1)  # and not what ran before it


@pytest.mark.parametrize("estimator", ["ede", "gumbel"])
def test_estimator_schedule_spans_a_multi_phase_run_through_experiment(estimator, tmp_path):
    """Issue 14 item 7: run through `experiment`, a 3-phase BNEW run's EDE t rises (Gumbel's tau
    falls) over all 6 epochs -- one schedule over the run, not one restarting in every phase."""
    from lqbench import estimators

    cls = {"ede": estimators.EDESign, "gumbel": estimators.GumbelSign}[estimator]
    seen = []

    class Watch(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            quantizer = estimators.quantizers_of(self.model, cls)[0]
            seen.append(float((quantizer.t if estimator == "ede" else quantizer.tau).numpy()))

    spec = ExperimentSpec(name=f"sched-{estimator}", method="bnew", xla="off",
                          method_args={"pretrain_fraction": 0.34, "finetune_fraction": 0.34},
                          binarization=lqbench.Binarization(activation_estimator=estimator),
                          **{**TINY, "epochs": 6, "model_args": {"hidden_units": [16, 16]}})
    result = experiment.run(spec, output_dir=tmp_path, extra_callbacks=(Watch(),), save_model=False)
    assert result.status == "ok", result.error
    if estimator == "ede":
        expected = [estimators.ede_parameters(e, 6)[0] for e in range(6)]
    else:
        expected = [estimators.GumbelTemperatureSchedule().temperature(e) for e in range(6)]
    np.testing.assert_allclose(seen, expected, rtol=1e-5)
    step = 1 if estimator == "ede" else -1
    assert all(step * (b - a) > 0 for a, b in zip(seen, seen[1:]))


@pytest.mark.parametrize("method, args, modes", [
    ("ste", {}, ["returning", "caching", "caching"]),
    ("bnew", {"pretrain_fraction": 0.34, "finetune_fraction": 0.34},  # phases of 2, 3 and 1 epochs
     ["returning", "caching", "returning", "caching", "caching", "returning"]),
])
def test_own_process_measures_memory_over_the_first_epoch_of_each_phase(method, args, modes, tmp_path, monkeypatch):
    """In a run's own process glibc returns freed memory (slow, exact peak) only during the first epoch of
    each ``fit`` (phase); the other epochs train with the caching allocator, outside the monitor's windows."""
    calls, seen = [], []
    monkeypatch.setenv(experiment.ISOLATED_VARIABLE, "1")
    monkeypatch.setattr(experiment, "set_allocator", lambda mode: calls.append(mode) or True)

    class Watch(tf.keras.callbacks.Callback):  # runs before the window callback: the mode the epoch ran in
        def on_epoch_end(self, epoch, logs=None):
            seen.append(calls[-1] if calls else "returning")  # the process starts returning

    spec = ExperimentSpec(name=f"window-{method}", method=method, method_args=args, xla="off",
                          **{**TINY, "epochs": len(modes)})
    result = experiment.run(spec, output_dir=tmp_path, extra_callbacks=(Watch(),), save_model=False)
    assert result.status == "ok", result.error
    assert seen == modes
    assert calls[-1] == "caching"  # evaluated and saved fast
    assert "first epoch of each phase" in result.memory_method
