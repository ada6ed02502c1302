"""Update rules pinned to the authors' code (issue 14 items 5, 6, 10), as numpy ports of their lines.

The full cross-framework comparisons (torch / the authors' Keras) live in bench/reference/ and run
outside CI; these tests re-derive the same rules in numpy so a regression fails fast.
"""
import lqbench  # noqa: F401  (selects tf-keras)

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from lqbench import Binarization, models
from lqbench import methods
from lqbench import optimizers as O
from lqbench.methods.bmd import BMDSchedule


def _tiny_model():
    inputs = tf.keras.Input((6,))
    x = tf.keras.layers.Dense(8, name="first")(inputs)
    x = lq.layers.QuantDense(8, kernel_quantizer="ste_sign", kernel_constraint="weight_clip", name="hidden")(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(3, name="last")(x))


def _authors_bmd_betas(rho, epochs):
    """Alasdair-P/bnew prox.py: prox_opt.__init__ -> adjust_reg(); binary_main.py calls _epoch(e) after epoch e."""
    epoch, used = 0.0, []
    reg = float(min(rho**epoch, 10**35))
    for e in range(epochs):
        used.append(reg)
        epoch = e
        reg = float(min(rho**epoch, 10**35))
    return used


# ------------------------------------------------------------------ item 5: BMD
def test_bmd_beta_follows_the_authors_epoch_rule_and_cap():
    from lqbench.optimizers.bmd import BETA_MAX, bmd_beta, bmd_beta_epoch

    for rho in (1.003, 1.01, 1.3):
        assert [bmd_beta_epoch(e, rho) for e in range(40)] == pytest.approx(_authors_bmd_betas(rho, 40), rel=1e-12)
    # 1.3 ** 2706 overflows a Python float; the authors cap beta at 1e35
    assert BETA_MAX == 1e35
    assert bmd_beta(2706, 1.3, 1) == 1e35 and bmd_beta(10**9, 1.3, 100) == 1e35
    assert bmd_beta_epoch(10**6, 1.3) == 1e35
    assert bmd_beta(7, 1.1, 3) == pytest.approx(1.1**2)
    assert methods.get("bmd").interval == "epoch"


def test_bmd_schedule_default_grows_beta_once_per_epoch():
    model = _tiny_model()
    methods.get("bmd").prepare(model)
    beta = model.get_layer("hidden").kernel_quantizer.beta
    seen = []
    record = tf.keras.callbacks.LambdaCallback(on_train_batch_begin=lambda b, logs: seen.append(float(beta.numpy())))
    x = np.random.default_rng(0).normal(size=(8, 6)).astype("float32")
    y = np.arange(8) % 3
    model.compile(O.build("bmd", 1e-3), loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=4, epochs=4, verbose=0, shuffle=False, callbacks=[BMDSchedule(rho=1.5), record])
    assert seen == pytest.approx([1.0, 1.0, 1.0, 1.0, 1.5, 1.5, 2.25, 2.25])
    with pytest.raises(ValueError, match="interval=0 must be 'epoch' or an integer >= 1"):
        BMDSchedule(interval=0)


def test_bmd_latent_weights_are_not_clipped_and_the_clip_comes_back_after_finalize():
    model = _tiny_model()
    methods.get("bmd").prepare(model)
    kernel = model.get_layer("hidden").kernel
    latent = kernel.latent_variable
    latent.assign(np.full((8, 8), 0.999, "float32"))
    opt = O.build("bmd", 0.01)
    others = [v for v in model.trainable_variables if v is not kernel]
    opt.apply_gradients([(tf.fill((8, 8), -1.0), kernel)] + [(tf.zeros_like(v), v) for v in others])
    # the authors' mirror_binary: w <- Adam(w, g), no clamp (first Adam step moves by ~lr)
    np.testing.assert_allclose(latent.numpy(), 0.999 + 0.01, rtol=1e-5)
    methods.get("bmd").finalize(model)
    assert latent.constraint is not None
    assert set(np.unique(latent.numpy())) == {1.0}


# ------------------------------------------------------------------ item 6: Bop2 "unbiased"
def test_bop2_bias_correction_is_the_authors_unbiased_rule():
    rng = np.random.default_rng(3)
    w = np.where(rng.normal(size=(200,)) >= 0, 1.0, -1.0).astype("float32")
    var = tf.Variable(w)
    gamma, sigma, tau = 1e-3, 1e-2, 1.2
    opt = O.Bop2(threshold=tau, gamma=gamma, sigma=sigma, bias_correction=True)
    m = v = np.zeros_like(w, dtype="float64")
    expected, adam_style = w.astype("float64"), w.astype("float64")
    base = rng.normal(size=w.shape)
    for t in range(1, 6):
        g = (base + 0.3 * rng.normal(size=w.shape)).astype("float32")
        opt.apply_gradients([(tf.constant(g), var)])
        m = m + gamma * (g - m)
        v = v + sigma * (g * g - v)
        # CuauSuarez/Bop2ndOrder@bf29ed4 (branch conference) bnn_optimization/optimizers.py:238
        x = (m / gamma) / (np.sqrt(v / sigma) + 1e-10)
        expected = np.sign(-np.sign(expected * x - tau) * expected)
        xa = (m / (1 - (1 - gamma) ** t)) / (np.sqrt(v / (1 - (1 - sigma) ** t)) + 1e-10)
        adam_style = np.where(adam_style * xa > tau, -adam_style, adam_style)
        np.testing.assert_array_equal(var.numpy(), expected)
    assert (expected != adam_style).any()  # the former (Adam-style) rule decides differently here


# ------------------------------------------------------------------ the authors' projection order
def _keras_adam(w, g, lr, eps=1e-7):
    return w - lr * np.sqrt(1 - 0.999) / (1 - 0.9) * (0.1 * g) / (np.sqrt(0.001 * g * g) + eps)


@pytest.mark.parametrize("method", ["bnew", "proxquant_l1", "proxquant_l2"])
def test_project_first_applies_the_projection_before_the_adam_step(method):
    w = np.array([0.5, -0.5, 0.9, -0.2, 0.3, 0.97], "float32")
    g = np.array([0.1, -0.1, 0.05, 0.3, 0.2, -0.4], "float32")
    lr, reg = 0.01, 0.05
    var = tf.Variable(w)
    sign = np.where(w >= 0, 1.0, -1.0)
    if method == "bnew":  # prox.py u_reg: clamp(w + 2 w reg, -1, 1), then optimizer.step()
        opt, projected = O.BNEW(lr, reg=reg, project_first=True), np.clip(w + 2 * w * reg, -1, 1)
    elif method == "proxquant_l1":  # prox.py w_reg: clamp(w + sign(w) reg, -1, 1); lqbench kappa = lr * reg
        opt, projected = O.ProxQuant(lr, reg=reg / lr, project_first=True), np.clip(w + sign * reg, -1, 1)
    else:  # prox.py U_reg: clamp((w + sign(w) reg) / (1 + reg), -1, 1)
        opt = O.ProxQuant(lr, reg=reg / lr, prox="l2", project_first=True)
        projected = np.clip((w + sign * reg) / (1 + reg), -1, 1)
    opt.apply_gradients([(tf.constant(g), var)])
    np.testing.assert_allclose(var.numpy(), _keras_adam(projected, g, lr), rtol=1e-5, atol=1e-6)
    assert opt.get_config()["project_first"] is True
    with pytest.raises(ValueError, match="project_first='yes' must be true or false"):
        O.BNEW(lr, project_first="yes")


# ------------------------------------------------------------------ item 10: IR-Net's hard tanh
def test_vgg_small_keeps_irnet_hardtanh_before_the_sign():
    b = Binarization(weights=True, activations=True, weight_estimator="ste", activation_estimator="ste")
    kwargs = {"width_multiplier": 1 / 16}
    paper = models.build("vgg_small", (8, 8, 3), 4, b, **kwargs)
    plain = models.build("vgg_small", (8, 8, 3), 4, b, hardtanh_before_sign=False, **kwargs)
    names = [layer.name for layer in paper.layers if isinstance(layer, tf.keras.layers.Activation)]
    assert names == [f"conv{i}_hard_tanh" for i in range(1, 7)]
    assert not [layer for layer in plain.layers if isinstance(layer, tf.keras.layers.Activation)]
    plain.set_weights(paper.get_weights())
    x = tf.constant(np.random.default_rng(0).normal(scale=3.0, size=(2, 8, 8, 3)).astype("float32"))
    grads = []
    for model in (paper, plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = model(x, training=False)
            loss = tf.reduce_sum(out * tf.range(1.0, 5.0))
        grads.append(tape.gradient(loss, x).numpy())
        if model is paper:
            first = out.numpy()
    np.testing.assert_allclose(plain(x, training=False).numpy(), first, rtol=1e-5, atol=1e-5)  # sign(htanh x) = sign x
    assert not np.allclose(grads[0], grads[1])  # the hard tanh clips the backward pass where |x| > 1
    with pytest.raises(TypeError, match="hardtanh_before_sign='yes' .* must be true or false"):  # checked types
        models.build("vgg_small", (8, 8, 3), 4, b, hardtanh_before_sign="yes", **kwargs)


# ------------------------------------------------------------------ seed 000's CNN forward pass
def _authors_cnn_forward(x_nchw, convs, bns, classifier, training):
    """A numpy port of seed 000's binary VGG forward pass (binary_nn_extended @212664d: torchvision's
    conv -> BN -> ReLU -> max-pool order after ``replace_activations_to_sign`` and
    ``apply_binarization_parametrization``): NCHW, ``padding=1`` (zeros), ``SignSatFun``'s
    ``where(x > 0, 1, -1)`` for activations and spared-layer-free weights, BN with eps 1e-5 on the
    batch's biased variance in training, the classifier reading C, H, W-flattened features."""
    def sign(v):
        return np.where(v > 0, 1.0, -1.0)

    h = x_nchw
    for index, ((weight, pool), (gamma, beta, mean, var)) in enumerate(zip(convs, bns)):
        w = weight if index == 0 else sign(weight)  # the first conv is spared
        hp = np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1)))
        size = h.shape[2]
        h = sum(np.einsum("bchw,oc->bohw", hp[:, :, i:i + size, j:j + size], w[:, :, i, j])
                for i in range(3) for j in range(3))
        if training:
            mean, var = h.mean(axis=(0, 2, 3)), h.var(axis=(0, 2, 3))
        h = (h - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
        h = sign(h * gamma[None, :, None, None] + beta[None, :, None, None])
        if pool:
            b, c, s, _ = h.shape
            h = h.reshape(b, c, s // 2, 2, s // 2, 2).max(axis=(3, 5))
    weight, bias = classifier
    return h.reshape(len(h), -1) @ weight.T + bias


@pytest.mark.parametrize("training", [False, True])
def test_paper000_cnn_forward_equals_the_authors_with_their_sign_at_zero(training):
    """Issue 14 (reference equivalence, bench/reference/seed000.py): with the sign in place of each
    activation (zero padding), torchvision's block order and sign(0) = -1, lqbench's binary VGG
    computes the authors' logits from the same weights -- kernels copied HWIO -> OIHW and the
    classifier's rows from Keras's H, W, C flattening to PyTorch's C, H, W -- also at initialisation,
    where untrained BN passes the binary convolutions' integer sums (many exactly 0) to the signs.
    Larq's sign(0) = +1 differs there (inference mode)."""
    x = np.random.default_rng(0).normal(size=(4, 16, 16, 1))
    logits = {}
    for sign_at_zero in (-1.0, 1.0):
        b = Binarization(inputs="activations", pad_values=0.0, sign_at_zero=sign_at_zero)
        tf.keras.utils.set_random_seed(0)
        model = models.build("vgg_small", (16, 16, 1), 5, b, width_multiplier=1 / 32, activation="relu",
                             block_order="conv_bn_act_pool")
        logits[sign_at_zero] = model(x.astype("float32"), training=training).numpy()
    convs = [(model.get_layer(f"conv{i}").kernel.numpy().transpose(3, 2, 0, 1), i % 2 == 0) for i in range(1, 7)]
    bns = [tuple(v.numpy() for v in model.get_layer(f"conv{i}_bn").weights) for i in range(1, 7)]
    h, w, c = 2, 2, 16  # the classifier's input
    rows = np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
    classifier = model.get_layer("classifier")
    authors = _authors_cnn_forward(x.transpose(0, 3, 1, 2), convs, bns,
                                   (classifier.kernel.numpy().T[:, rows], classifier.bias.numpy()), training)
    np.testing.assert_allclose(logits[-1.0], authors, rtol=1e-4, atol=1e-4)
    if not training:
        assert np.abs(logits[1.0] - authors).max() > 0.1  # Larq's sign(0) = +1 at the integer sums' zeros
