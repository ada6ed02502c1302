"""lqbench.recipes: whole recipes end in exactly binary, frozen kernels; phases; XLA; errors."""
import lqbench  # noqa: F401

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from lqbench import optimizers as O
from lqbench import recipes


def tiny_model():
    inputs = tf.keras.Input((6,))
    x = lq.layers.QuantDense(12, name="first")(inputs)
    x = tf.keras.layers.BatchNormalization(name="bn")(x)
    x = lq.layers.QuantDense(12, input_quantizer="approx_sign", kernel_quantizer="ste_sign",
                             kernel_constraint="weight_clip", name="hidden")(x)
    x = tf.keras.layers.BatchNormalization(name="bn2")(x)
    x = lq.layers.QuantDense(3, input_quantizer="approx_sign", name="last")(x)
    return tf.keras.Model(inputs, x)


def data(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0.5)


def kernel(model):
    return model.get_layer("hidden").kernel.latent_variable.numpy()


@pytest.mark.parametrize("name, hparams", [
    ("bnew", {"reg": 1e-2, "pretrain_fraction": 0.25, "finetune_fraction": 1 / 3}),
    ("proxquant", {"reg_rate": 1.0, "freeze_fraction": 0.5}),
])
def test_recipe_ends_binary_and_fine_tuning_keeps_kernels_while_real_params_train(name, hparams):
    model = tiny_model()
    x, y = data()
    history = recipes.fit(model, (x, y), epochs=4, optimizer=name, learning_rate=1e-2,
                          schedule="linear", jit_compile=False, verbose=0, hparams={"batch_size": 16, **hparams})
    w = kernel(model)
    assert set(np.unique(w)) == {-1.0, 1.0}
    assert len(history.history["loss"]) == 4 and len(history.epoch) == 4
    assert type(model.get_layer("hidden").kernel_quantizer).__name__ == "SteSign"  # sign quantizer back
    if name == "bnew":
        assert [p["name"] for p in history.phases] == ["pretrain", "quantize", "finetune"]
    # further fine-tuning with binary kernels frozen: kernels identical, real parameters move
    real_before = model.get_layer("first").kernel.numpy().copy()
    model.compile(O.frozen_binary(1e-2), loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    np.testing.assert_array_equal(kernel(model), w)
    assert np.abs(model.get_layer("first").kernel.numpy() - real_before).max() > 1e-5


def test_proxquant_freezes_kernels_at_freeze_epoch_within_the_fit():
    model = tiny_model()
    x, y = data()
    snapshots = []

    class Snap(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append(kernel(model).copy())

    recipes.fit(model, (x, y), epochs=4, optimizer="proxquant", learning_rate=1e-2, jit_compile=False, verbose=0,
                callbacks=[Snap()], hparams={"batch_size": 16, "freeze_fraction": 0.5})
    assert set(np.unique(snapshots[2])) == {-1.0, 1.0}
    np.testing.assert_array_equal(snapshots[2], snapshots[3])
    assert len(np.unique(snapshots[0])) > 2  # still relaxed before the freeze


def test_bnew_uses_xla_and_continues_the_decayed_adam_in_the_finetune_phase():
    model = tiny_model()
    x, y = data()
    lrs = []

    class LR(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            opt = self.model.optimizer.optimizers[-1]
            lrs.append(float(opt._decayed_lr(tf.float32)))

    history = recipes.fit(model, (x, y), epochs=3, optimizer="bnew", learning_rate=1e-2, schedule="linear",
                          verbose=0, callbacks=[LR()], hparams={"batch_size": 16})
    assert model.jit_compile is True  # XLA was used for the last phase's compile
    assert [p["epochs"] for p in history.phases] == [1, 1, 1]
    # phase 1 restarts the decay; phases 2 and 3 share one Adam whose decay spans both (the authors')
    np.testing.assert_allclose(lrs, [1e-2, 1e-2, 5e-3], rtol=1e-5)


def test_bmd_and_bop_recipes_end_binary_and_learn():
    x, y = data(128)
    for name, hparams in (("bmd", {"rho": 1.5, "interval": 2}), ("bop", {"gamma": 1e-3, "threshold": 1e-6})):
        model = tiny_model()
        history = recipes.fit(model, (x, y), epochs=4, optimizer=name, learning_rate=1e-2, jit_compile=False,
                              verbose=0, hparams={"batch_size": 16, **hparams})
        assert set(np.unique(kernel(model))) == {-1.0, 1.0}
        assert history.history["loss"][-1] < history.history["loss"][0]


def test_errors():
    model = tiny_model()
    x, y = data()
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        recipes.fit(model, (x, y), epochs=1, optimizer="nope")
    with pytest.raises(ValueError, match="epochs=0"):
        recipes.fit(model, (x, y), epochs=0)
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        recipes.fit(model, (x, y), epochs=1, optimizer="bop", hparams={"sigma": 0.1})
    with pytest.raises(ValueError, match="steps_per_epoch is required"):
        recipes.fit(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat(), epochs=1)
    with pytest.raises(ValueError, match="needs PCF activations"):
        recipes.fit(model, (x, y), epochs=2, optimizer="cb", verbose=0)


def test_available_names():
    assert {"adam", "sgd", "bop", "bop2", "bnew", "proxquant", "bmd", "cb", "ste", "continuous"} <= set(recipes.available())
