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
