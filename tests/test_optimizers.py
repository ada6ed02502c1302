"""lqbench.optimizers: update rules vs independent numpy formulas, routing, validation, XLA."""
import lqbench  # noqa: F401  (selects tf-keras)

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from lqbench import optimizers as O
from lqbench import recipes
from lqbench.methods.bmd import BMDSchedule
from lqbench.optimizers.bmd import bmd_beta
from lqbench.optimizers.proxquant import prox_l1, prox_l2


def tiny_model(activation_quantizer="ste_sign"):
    inputs = tf.keras.Input((6,))
    x = lq.layers.QuantDense(8, name="first")(inputs)
    x = tf.keras.layers.BatchNormalization(name="bn")(x)
    x = lq.layers.QuantDense(8, input_quantizer=activation_quantizer, kernel_quantizer="ste_sign",
                             kernel_constraint="weight_clip", name="hidden")(x)
    x = lq.layers.QuantDense(3, input_quantizer=activation_quantizer, name="last")(x)
    return tf.keras.Model(inputs, x)


def data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)).astype("float32"), rng.integers(0, 3, n)


def apply(optimizer, grads_and_vars):
    optimizer.apply_gradients([(tf.constant(g, tf.float32), v) for g, v in grads_and_vars])


# ---------------------------------------------------------------- predicate and registry
def test_binary_kernel_predicate_finds_only_one_bit_kernels():
    model = tiny_model()
    kernels = O.binary_kernels(model)
    assert [v.name for v in kernels] == ["hidden/kernel:0"]
    recipes.method_for("adam").prepare(model)
    claimed = [v.name for v in model.trainable_variables if O.is_binary_kernel(v)]
    assert claimed == ["hidden/kernel:0"]


def test_predicate_walks_wrapper_model_attribute():
    class Wrapper(tf.keras.Model):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def call(self, x):
            return self.model(x)

    inner = tiny_model()
    assert [v.name for v in O.binary_kernels(Wrapper(inner))] == ["hidden/kernel:0"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "nope"}, "unknown optimizer 'nope'"),
        ({"name": "adam", "learning_rate": -1.0}, "learning_rate=-1.0"),
        ({"name": "bop", "gamma": 0.0}, r"gamma=0.0 .*\(0.0, 1.0\]"),
        ({"name": "bop2", "sigma": 1.5}, "sigma=1.5"),
        ({"name": "bop", "threshold": -1e-8}, "threshold"),
        ({"name": "proxquant", "prox": "l3"}, "unknown prox 'l3'"),
        ({"name": "sgd", "gamma": 1e-3}, "optimizer 'sgd'.*gamma"),
        ({"name": "adam", "weight_decay": -0.1}, "weight_decay=-0.1"),
    ],
)
def test_bad_input_raises_one_line_error(kwargs, match):
    kwargs = dict(kwargs)
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=match) as info:
        O.build(name, **kwargs)
    assert "\n" not in str(info.value)


def test_binarizing_methods_are_legacy_case_optimizers():
    for name in O.available():
        opt = O.build(name, learning_rate=tf.keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.9))
        assert isinstance(opt, tf.keras.optimizers.legacy.Optimizer)
        if name in ("bop", "bop2", "bnew", "proxquant", "bmd", "frozen"):
            assert isinstance(opt, lq.optimizers.CaseOptimizer)


def test_prepare_rejects_model_without_binary_kernels():
    inputs = tf.keras.Input((4,))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="needs binary kernels"):
        recipes.method_for("bop").prepare(model)


# ---------------------------------------------------------------- coupled weight decay
def test_adam_coupled_weight_decay_matches_numpy():
    w0 = np.array([0.5, -1.0, 2.0], "float32")
    grads = [np.array([0.1, -0.2, 0.3], "float32"), np.array([-0.05, 0.4, 0.1], "float32")]
    lr, wd, b1, b2, eps = 0.01, 0.1, 0.9, 0.999, 1e-7
    var = tf.Variable(w0)
    opt = O.build("adam", learning_rate=lr, weight_decay=wd)
    w, m, v = w0.astype("float64"), 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        apply(opt, [(g, var)])
        g = g + wd * w  # coupled L2
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        w = w - lr_t * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(var.numpy(), w, rtol=1e-5, atol=1e-6)


def test_sgd_coupled_weight_decay_matches_numpy():
    w0 = np.array([0.5, -1.0], "float32")
    var = tf.Variable(w0)
    opt = O.build("sgd", learning_rate=0.1, weight_decay=0.5, momentum=0.9)
    g = np.array([0.2, 0.1], "float32")
    apply(opt, [(g, var)])
    apply(opt, [(g, var)])
    w, buf = w0.astype("float64"), 0.0
    for _ in range(2):
        buf = 0.9 * buf - 0.1 * (g + 0.5 * w)
        w = w + buf
    np.testing.assert_allclose(var.numpy(), w, rtol=1e-5)


def test_weight_decay_not_applied_to_binary_kernels_under_case_optimizer():
    model = tiny_model()
    recipes.method_for("bnew").prepare(model)
    opt = O.build("bnew", learning_rate=0.0 + 1e-9, weight_decay=10.0)
    kernel = model.get_layer("hidden").kernel
    dense = model.get_layer("first").kernel
    before_k, before_d = kernel.latent_variable.numpy().copy(), dense.numpy().copy()
    opt.apply_gradients([(tf.zeros_like(kernel), kernel), (tf.zeros_like(dense), dense)])
    np.testing.assert_allclose(kernel.latent_variable.numpy(), before_k, atol=1e-6)
    assert np.abs(dense.numpy() - before_d).max() > 1e-10  # decay moved the real weights


# ---------------------------------------------------------------- Bop and second-order Bop
def test_bop_flips_exactly_where_w_m_exceeds_threshold():
    model = tiny_model()
    recipes.method_for("bop").prepare(model)
    kernel = model.get_layer("hidden").kernel
    w = kernel.latent_variable.numpy()
    assert set(np.unique(w)) <= {-1.0, 1.0}
    gamma, tau = 0.5, 0.05
    rng = np.random.default_rng(1)
    g1, g2 = rng.normal(size=w.shape).astype("float32") * 0.2, rng.normal(size=w.shape).astype("float32") * 0.2
    opt = O.build("bop", learning_rate=1e-3, gamma=gamma, threshold=tau)
    bias = model.get_layer("hidden").bias
    m = np.zeros_like(w)
    expected = w.copy()
    for g in (g1, g2):
        opt.apply_gradients([(tf.constant(g), kernel), (tf.zeros_like(bias), bias)])
        m = (1 - gamma) * m + gamma * g
        expected = np.where(expected * m > tau, -expected, expected)
    np.testing.assert_array_equal(kernel.latent_variable.numpy(), expected)
    assert (expected != w).any() and (expected == w).any()


@pytest.mark.parametrize("bias_correction", [False, True])
def test_bop2_flips_exactly_where_normalised_momentum_exceeds_threshold(bias_correction):
    rng = np.random.default_rng(2)
    w = np.where(rng.normal(size=(40,)) >= 0, 1.0, -1.0).astype("float32")
    var = tf.Variable(w)
    gamma, sigma, tau = 0.3, 0.2, 0.4
    opt = O.Bop2(threshold=tau, gamma=gamma, sigma=sigma, bias_correction=bias_correction)
    m = v = np.zeros_like(w, dtype="float64")
    expected = w.astype("float64")
    for t in range(1, 4):
        g = rng.normal(size=w.shape).astype("float32")
        apply(opt, [(g, var)])
        m = m + gamma * (g - m)
        v = v + sigma * (g * g - v)
        # bias_correction: the authors' Bop2ndOrder_unbiased (conference@bf29ed4, optimizers.py:238)
        mh, vh = (m / gamma, v / sigma) if bias_correction else (m, v)
        expected = np.where(expected * mh / (np.sqrt(vh) + 1e-10) > tau, -expected, expected)
        np.testing.assert_array_equal(var.numpy(), expected)
    assert (expected != w).any()


def test_bop2_schedule_hyperparameter_serialises():
    schedule = tf.keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.5)
    opt = O.Bop2(gamma=schedule)
    config = opt.get_config()
    clone = O.Bop2.from_config(config)
    assert isinstance(clone._get_hyper("gamma"), tf.keras.optimizers.schedules.ExponentialDecay)
    restored = tf.keras.optimizers.deserialize(tf.keras.optimizers.serialize(O.build("bnew")),
                                               use_legacy_optimizer=True)
    assert isinstance(restored, lq.optimizers.CaseOptimizer)


# ---------------------------------------------------------------- BNEW, ProxQuant, BMD
def _adam_step(w, g, lr, b1=0.9, b2=0.999, eps=1e-7):
    m = (1 - b1) * g
    v = (1 - b2) * g * g
    lr_t = lr * np.sqrt(1 - b2) / (1 - b1)
    return w - lr_t * m / (np.sqrt(v) + eps)


def test_bnew_push_and_clip_matches_numpy():
    w = np.array([0.5, -0.5, 0.9, -0.2, 0.0, 0.99], "float32")
    g = np.array([0.1, -0.1, 0.0, 0.3, 0.2, -0.1], "float32")
    var = tf.Variable(w)
    reg, lr = 0.2, 0.01
    opt = O.BNEW(lr, reg=reg)
    apply(opt, [(g, var)])
    expected = np.clip((1 + 2 * reg) * _adam_step(w, g, lr), -1, 1)
    np.testing.assert_allclose(var.numpy(), expected, rtol=1e-5, atol=1e-6)
    opt._set_hyper("frozen", 1.0)
    before = var.numpy().copy()
    apply(opt, [(g, var)])
    np.testing.assert_array_equal(var.numpy(), before)


@pytest.mark.parametrize("kappa", [0.0, 0.1, 0.7])
def test_prox_operators_match_numpy(kappa):
    w = np.array([-1.5, -1.0, -0.8, -0.3, 0.0, 0.05, 0.4, 0.95, 1.0, 1.3], "float32")
    a = np.abs(w) - 1
    sign = np.where(w >= 0, 1.0, -1.0)
    l1 = sign * (1 + np.sign(a) * np.maximum(np.abs(a) - kappa, 0))
    l2 = (w + kappa * sign) / (1 + kappa)
    np.testing.assert_allclose(prox_l1(tf.constant(w), kappa).numpy(), l1, atol=1e-6)
    np.testing.assert_allclose(prox_l2(tf.constant(w), kappa).numpy(), l2, atol=1e-6)
    # L1 with a large kappa lands exactly on +-1
    np.testing.assert_array_equal(prox_l1(tf.constant(w), 10.0).numpy(), sign)


@pytest.mark.parametrize("prox", ["l1", "l2"])
def test_proxquant_step_is_adam_then_prox_with_kappa_lr_times_lambda(prox):
    w = np.array([0.5, -0.5, 0.9, -0.2, 0.02], "float32")
    g = np.array([0.1, -0.1, 0.05, 0.3, 0.2], "float32")
    lr, lam = 0.05, 4.0
    var = tf.Variable(w)
    opt = O.ProxQuant(lr, reg=lam, prox=prox)
    apply(opt, [(g, var)])
    u = _adam_step(w, g, lr)
    kappa = lr * lam
    sign = np.where(u >= 0, 1.0, -1.0)
    if prox == "l1":
        a = np.abs(u) - 1
        expected = sign * (1 + np.sign(a) * np.maximum(np.abs(a) - kappa, 0))
    else:
        expected = (u + kappa * sign) / (1 + kappa)
    np.testing.assert_allclose(var.numpy(), np.clip(expected, -1, 1), rtol=1e-5, atol=1e-6)


def test_bmd_forward_is_tanh_beta_w_with_identity_gradient_and_beta_schedule():
    model = tiny_model()
    recipes.method_for("bmd").prepare(model)
    layer = model.get_layer("hidden")
    quantizer = layer.kernel_quantizer
    assert isinstance(quantizer, O.MirrorTanh)
    quantizer.beta.assign(3.0)
    w = layer.kernel.latent_variable
    with tf.GradientTape() as tape:
        with lq.context.quantized_scope(True):
            wb = tf.convert_to_tensor(layer.kernel)
        loss = tf.reduce_sum(wb * tf.constant(np.arange(wb.shape[0] * wb.shape[1], dtype="float32").reshape(wb.shape)))
    np.testing.assert_allclose(wb.numpy(), np.tanh(3.0 * w.numpy()), rtol=1e-6)
    grad = tape.gradient(loss, w)
    np.testing.assert_allclose(grad.numpy(), np.arange(wb.shape[0] * wb.shape[1]).reshape(wb.shape))
    # beta_t = rho ** floor(t / interval)
    assert [bmd_beta(t, 1.1, 3) for t in (0, 2, 3, 7)] == pytest.approx([1.0, 1.0, 1.1, 1.21])
    x, y = data()
    model.compile(O.build("bmd", 1e-2), loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[BMDSchedule(rho=1.1, interval=3)])
    assert float(quantizer.beta.numpy()) == pytest.approx(1.1 ** (7 // 3))  # last batch was step 7
    recipes.method_for("bmd").finalize(model)
    assert type(layer.kernel_quantizer).__name__ == "SteSign"
    assert set(np.unique(layer.kernel.latent_variable.numpy())) <= {-1.0, 1.0}


def test_bop_gamma_schedule_uses_larq_hyperparameter_scheduler():
    model = tiny_model()
    cbs = recipes.method_for("bop", {"gamma": 1e-2, "gamma_schedule": "linear"}).callbacks(epochs=4)
    assert len(cbs) == 1 and isinstance(cbs[0], lq.callbacks.HyperparameterScheduler)
    recipes.method_for("bop").prepare(model)
    x, y = data(8)
    model.compile(O.build("bop", 1e-3, gamma=1e-2), loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, batch_size=4, epochs=4, verbose=0, callbacks=cbs)
    np.testing.assert_allclose(history.history["gamma"], [1e-2, 7.5e-3, 5e-3, 2.5e-3], rtol=1e-5)


@pytest.mark.parametrize("name", ["bop", "bnew", "proxquant"])
def test_every_method_trains_under_xla(name):
    model = tiny_model()
    x, y = data()
    method = recipes.method_for(name)
    method.prepare(model)
    model.compile(method.optimizer(1e-2), loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=method.supports_xla)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=method.callbacks(2))
    assert model.jit_compile is True
    assert set(np.unique(model.get_layer("hidden").kernel.latent_variable.numpy())) <= {-1.0, 1.0}
