"""lqbench.distillation: the ReActNet distributional loss and the Distiller model."""
import lqbench  # noqa: F401

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from lqbench import distillation, recipes


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_distribution_loss_matches_numpy(temperature):
    rng = np.random.default_rng(0)
    zt, zs = rng.normal(size=(5, 7)).astype("float32"), rng.normal(size=(5, 7)).astype("float32")
    pt = np.exp(_log_softmax(zt / temperature))
    expected = -(temperature**2) * np.mean(np.sum(pt * _log_softmax(zs / temperature), -1))
    got = distillation.distribution_loss(tf.constant(zt), tf.constant(zs), temperature)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_teacher_gets_no_gradient():
    zt, zs = tf.Variable(tf.ones((2, 3))), tf.Variable(tf.zeros((2, 3)))
    with tf.GradientTape() as tape:
        loss = distillation.distribution_loss(zt, zs)
    gt, gs = tape.gradient(loss, [zt, zs])
    assert gt is None and np.abs(gs.numpy()).sum() > 0


def _mlp(width, seed, binary=False):
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input((6,))
    x = lq.layers.QuantDense(width, name="h1")(inputs)
    kw = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip") if binary else {}
    x = lq.layers.QuantDense(width, name="h2", **kw)(tf.keras.layers.BatchNormalization()(x))
    return tf.keras.Model(inputs, lq.layers.QuantDense(3, name="out")(x))


def test_distiller_trains_student_towards_teacher_and_leaves_teacher_unchanged():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(128, 6)).astype("float32")
    teacher = _mlp(16, 0)
    y = np.argmax(teacher.predict(x, verbose=0), -1)
    teacher_weights = [w.copy() for w in teacher.get_weights()]
    student = _mlp(16, 1, binary=True)
    distiller = distillation.Distiller(student, teacher, alpha=1.0)
    before = distillation.distribution_loss(teacher(x), student(x)).numpy()
    history = recipes.fit(distiller, (x, y), epochs=6, optimizer="bop", learning_rate=1e-2, verbose=0,
                          jit_compile=False, hparams={"batch_size": 32, "gamma": 1e-3, "threshold": 1e-6})
    after = distillation.distribution_loss(teacher(x), student(x)).numpy()
    assert after < before
    assert "kd_loss" in history.history
    for a, b in zip(teacher.get_weights(), teacher_weights):
        np.testing.assert_array_equal(a, b)
    assert set(np.unique(student.get_layer("h2").kernel.latent_variable.numpy())) <= {-1.0, 1.0}


def test_bad_weights():
    with pytest.raises(ValueError, match="alpha=-1"):
        distillation.Distiller(_mlp(4, 0), _mlp(4, 0), alpha=-1)
    with pytest.raises(TypeError, match="ce_weight=True"):
        distillation.Distiller(_mlp(4, 0), _mlp(4, 0), ce_weight=True)
    with pytest.raises(ValueError, match="nothing to train on"):
        distillation.Distiller(_mlp(4, 0), _mlp(4, 0), alpha=0.0)
