"""lqbench.continuous: PCF/SBAF math and gradients, staged schedule, conversion."""
import lqbench  # noqa: F401

import numpy as np
import pytest
import tensorflow as tf

from lqbench import continuous, recipes
from lqbench.methods.cb import stage_epochs


def test_pcf_forward_and_true_gradients_match_numpy():
    x = np.array([-3.0, -0.6, -0.2, 0.0, 0.1, 0.4, 0.7, 2.0], "float32")
    m, alpha = 0.4, 1.5
    layer = continuous.PCF(slope=m, scale=alpha)
    xt = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = layer(xt)
        loss = tf.reduce_sum(y * tf.range(1.0, 9.0))
    gx, gm, ga = tape.gradient(loss, [xt, layer.slope, layer.scale])
    u = x / m + alpha / 2
    np.testing.assert_allclose(y.numpy(), np.clip(u, 0, alpha), rtol=1e-6)
    c = np.arange(1.0, 9.0)
    inside = (u > 0) & (u < alpha)
    np.testing.assert_allclose(gx.numpy(), c * inside / m, rtol=1e-5)
    np.testing.assert_allclose(gm.numpy(), np.sum(c * inside * (-x / m**2)), rtol=1e-5)
    np.testing.assert_allclose(ga.numpy(), np.sum(c * (inside * 0.5 + (u >= alpha))), rtol=1e-5)


def test_sbaf_mode_and_slope_penalty():
    x = np.array([-1.0, 0.0, 0.3], "float32")
    layer = continuous.PCF(slope=0.5, scale=2.0, slope_regularizer="l1")
    layer(x)
    layer.binary.assign(1.0)
    np.testing.assert_array_equal(layer(x).numpy(), [0.0, 0.0, 2.0])
    layer.slope_lambda.assign(0.1)
    layer(x)
    assert float(layer.losses[-1]) == pytest.approx(0.1 * 0.5)
    l2 = continuous.PCF(slope=0.5, scale=2.0, slope_regularizer="l2")
    l2(x)
    l2.slope_lambda.assign(2.0)
    l2(x)
    assert float(l2.losses[-1]) == pytest.approx(2.0 * 0.25)


def test_following_kind_and_stage_epochs():
    model = continuous.cnn((8, 8, 1), 3, architecture=("4C3", "MP2", "4C3", "8FC"))
    kinds = [continuous.following_kind(model, p) for p in continuous.pcf_layers(model)]
    assert kinds == ["pool", "fc", "fc"]
    assert stage_epochs(10, 3, 0.4, 2.0) == [4, 3, 2, 1]
    assert sum(stage_epochs(3, 3, 0.4, 2.0)) == 3
    with pytest.raises(ValueError, match="fewer than the 3 stages"):
        stage_epochs(2, 3, 0.4, 2.0)


def test_cb_recipe_ends_with_sbaf_everywhere_and_freezes_early_layers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 5)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    model = continuous.mlp((5,), 2, hidden=(16, 16, 16))
    seen = []

    class Watch(tf.keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append((self.model.get_layer("dense1").kernel.numpy().copy(),
                         [p.is_binary for p in continuous.pcf_layers(self.model)]))

    history = recipes.fit(model, (x, y), epochs=6, optimizer="cb", learning_rate=1e-2, jit_compile=False,
                          verbose=0, callbacks=[Watch()],
                          hparams={"batch_size": 32, "slope_lambdas": [1.0, 1.0, 1.0]})
    assert [p["name"] for p in history.phases] == ["pretrain", "stage1", "stage2", "stage3"]
    assert [flags for _, flags in seen] == [[False] * 3, [False] * 3, [True, False, False], [True, True, False]]
    # dense1 is frozen from stage 2 on (it precedes activation 1, which is SBAF then)
    np.testing.assert_array_equal(seen[2][0], seen[3][0])
    assert all(p.is_binary for p in continuous.pcf_layers(model))
    h1 = tf.keras.Model(model.input, model.get_layer("act1").output)(x).numpy()
    alpha = float(model.get_layer("act1").scale.numpy())
    assert set(np.unique(h1)) <= {0.0, np.float32(alpha)}
    assert all(layer.trainable for layer in model.layers)


def test_from_float_replaces_hidden_activations_and_keeps_weights():
    inputs = tf.keras.Input((4,))
    x = tf.keras.layers.Dense(8, name="d1")(inputs)
    x = tf.keras.layers.Activation("relu", name="a1")(x)
    outputs = tf.keras.layers.Dense(2, name="d2")(x)
    model = tf.keras.Model(inputs, outputs)
    converted = continuous.from_float(model)
    assert [type(l).__name__ for l in converted.layers] == ["InputLayer", "Dense", "PCF", "Dense"]
    np.testing.assert_array_equal(converted.get_layer("d1").kernel.numpy(), model.get_layer("d1").kernel.numpy())
    with pytest.raises(ValueError, match="no replaceable activation"):
        continuous.from_float(tf.keras.Model(inputs, tf.keras.layers.Dense(2)(inputs)))
