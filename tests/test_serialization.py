"""Every registered object round-trips: estimators, layers, optimizers, algorithms, distillation, methods."""
import lqbench  # noqa: F401

import numpy as np
import pytest
import tensorflow as tf

import lqbench.models as models
from lqbench import algorithms, continuous, distillation, estimators, experiment, methods, optimizers
from lqbench.optimizers import MirrorTanh, RealKernel


@pytest.mark.parametrize("name", estimators.available())
def test_estimator_round_trips_through_keras_serialization(name):
    quantizer = estimators.get(name)
    config = tf.keras.utils.serialize_keras_object(quantizer)
    clone = tf.keras.utils.deserialize_keras_object(config)
    assert type(clone) is type(quantizer) and clone.get_config() == quantizer.get_config()
    x = tf.constant(np.linspace(-2, 2, 9, dtype="float32"))
    np.testing.assert_array_equal(clone(x).numpy(), quantizer(x).numpy())


@pytest.mark.parametrize("layer", [
    models.LearnableBias(), models.ChannelScale(), models.RPReLU(), models.ZeroPadShortcut(8, 2),
    continuous.PCF(slope=0.3, scale=1.5, slope_regularizer="l1"),
], ids=lambda layer: type(layer).__name__)
def test_custom_layer_round_trips_through_get_config(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    again = tf.keras.layers.deserialize(tf.keras.layers.serialize(layer))
    assert type(again) is type(layer)


@pytest.mark.parametrize("quantizer", [RealKernel(), MirrorTanh(2.0)], ids=lambda q: type(q).__name__)
def test_method_forward_maps_round_trip(quantizer):
    clone = tf.keras.utils.deserialize_keras_object(tf.keras.utils.serialize_keras_object(quantizer))
    assert type(clone) is type(quantizer) and clone.precision == 1


@pytest.mark.parametrize("name", optimizers.available())
def test_optimizer_round_trips_through_keras_serialization(name):
    optimizer = optimizers.build(name, learning_rate=1e-3)
    clone = tf.keras.optimizers.deserialize(tf.keras.optimizers.serialize(optimizer), use_legacy_optimizer=True)
    assert type(clone) is type(optimizer)
    assert tf.keras.optimizers.serialize(clone)["config"].keys() == tf.keras.optimizers.serialize(optimizer)["config"].keys()


@pytest.mark.parametrize("name", methods.available())
def test_method_round_trips_through_get_config_and_its_optimizer_serializes(name):
    method = methods.get(name)
    clone = type(method).from_config(method.get_config())
    assert clone.get_config() == method.get_config()
    optimizer = method.optimizer(1e-3)
    assert tf.keras.optimizers.deserialize(tf.keras.optimizers.serialize(optimizer), use_legacy_optimizer=True)


def _model():
    return models.build("binarynet_mlp", (8, 8, 1), 10, lqbench.Binarization(), hidden_units=[8])


@pytest.mark.parametrize("name", algorithms.available())
def test_algorithm_round_trips_through_get_config(name):
    trainer = algorithms.build(name, _model(), seed=3)
    clone = type(trainer).from_config(trainer.get_config())
    assert clone.hparams == trainer.hparams and clone.seed == 3
    clone.model.set_weights(trainer.model.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(clone(x, training=False), trainer(x, training=False), rtol=1e-6)


@pytest.mark.parametrize("name", algorithms.available())
def test_distilling_algorithm_round_trips_and_its_student_saves_and_reloads(name, tmp_path):
    teacher = models.build("binarynet_mlp", (8, 8, 1), 10, lqbench.Binarization.full_precision(), hidden_units=[8])
    distill = distillation.Distillation(teacher, alpha=0.7, temperature=3.0, ce_weight=0.3)
    trainer = algorithms.build(name, _model(), seed=3, distillation=distill)
    config = tf.keras.utils.serialize_keras_object(trainer)
    clone = tf.keras.utils.deserialize_keras_object(config)
    assert type(clone) is type(trainer) and clone.hparams == trainer.hparams and clone.seed == 3
    d = clone.distillation
    assert (d.alpha, d.temperature, d.ce_weight) == (0.7, 3.0, 0.3)
    assert [layer.name for layer in d.teacher.layers] == [layer.name for layer in teacher.layers]
    path = tmp_path / "student.keras"
    trainer.model.save(path)
    reloaded = experiment.load_model(path)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(reloaded(x, training=False), trainer(x, training=False), rtol=1e-6)
