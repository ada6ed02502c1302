"""Tests of `lqbench.algorithms`: every method's update against numpy, every zoo model, MNIST."""
import itertools

import lqbench  # noqa: F401  (selects tf-keras before TensorFlow)

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from lqbench import Binarization
from lqbench import algorithms as A

C = 3
BATCH = 8
# binary activations (saturating STE) and binary hidden weights, no clipping so SGD updates are
# read exactly as gradients
B = Binarization(weights=True, activations=True, clip_weights=False)


# ----------------------------------------------------------------------------- numpy reference
def sign(x):
    return np.where(x >= 0, 1.0, -1.0)


def ste(x):
    return (np.abs(x) <= 1.0).astype(np.float64)


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def patches(x, k=3, pad_value=0.0):
    """im2col for a 'same' kxk convolution, stride 1: (B, H, W, k*k*C)."""
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), constant_values=pad_value)
    b, h, w, c = x.shape
    cols = np.empty((b, h, w, k, k, c))
    for i in range(k):
        for j in range(k):
            cols[:, :, :, i, j, :] = xp[:, i:i + h, j:j + w, :]
    return cols.reshape(b, h, w, k * k * c)


class DenseNet:
    """x(6) -> Dense 5 (first) -> [sign] -> Dense 4 (hidden, binary W) -> [sign] -> Dense C (last)."""

    input_shape = (6,)

    @staticmethod
    def keras():
        x = tf.keras.Input(DenseNet.input_shape)
        h = lq.layers.QuantDense(5, **B.dense_kwargs("first"))(x)
        h = lq.layers.QuantDense(4, **B.dense_kwargs("hidden"))(h)
        out = lq.layers.QuantDense(C, **B.dense_kwargs("last"))(h)
        return tf.keras.Model(x, out)

    @staticmethod
    def forward(w, x):
        """Returns a list of (pre-activation h_k, layer input) and the logits."""
        (w1, b1), (w2, b2), (w3, b3) = w
        z1 = x @ w1 + b1
        z2 = sign(z1) @ sign(w2) + b2
        z3 = sign(z2) @ w3 + b3
        return {"x": x, "z1": z1, "z2": z2, "logits": z3}

    @staticmethod
    def updates(w, f, d1, d2, e_out):
        """Weight updates (SGD lr=1) from the gradients d1 = dL/dz1, d2 = dL/dz2, e_out = dL/dz3."""
        return [
            -(f["x"].T @ d1), -d1.sum(0),
            -(sign(f["z1"]).T @ d2), -d2.sum(0),
            -(sign(f["z2"]).T @ e_out), -e_out.sum(0),
        ]

    taps = ("z1", "z2")  # tap k is the pre-sign tensor feeding weight layer k+2
    positions = (1, 1)


class ConvNet:
    """x(6,6,2) -> conv 3 (first) -> [sign] -> conv 3 (hidden, binary W, pad +1) -> GAP -> [sign] -> Dense C."""

    input_shape = (6, 6, 2)

    @staticmethod
    def keras():
        x = tf.keras.Input(ConvNet.input_shape)
        h = lq.layers.QuantConv2D(3, 3, padding="same", **B.conv_kwargs("first"))(x)
        h = lq.layers.QuantConv2D(3, 3, padding="same", **B.conv_kwargs("hidden"))(h)
        h = tf.keras.layers.GlobalAveragePooling2D()(h)
        out = lq.layers.QuantDense(C, **B.dense_kwargs("last"))(h)
        return tf.keras.Model(x, out)

    @staticmethod
    def forward(w, x):
        (w1, b1), (w2, b2), (w3, b3) = w
        z1 = patches(x) @ w1.reshape(-1, w1.shape[-1]) + b1
        c2 = patches(sign(z1), pad_value=1.0) @ sign(w2).reshape(-1, w2.shape[-1]) + b2
        z2 = c2.mean(axis=(1, 2))
        z3 = sign(z2) @ w3 + b3
        return {"x": x, "z1": z1, "z2": z2, "logits": z3}

    @staticmethod
    def updates(w, f, d1, d2, e_out):
        (w1, _), (w2, _), _ = w
        hw = f["z1"].shape[1] * f["z1"].shape[2]
        dc2 = np.broadcast_to(d2[:, None, None, :] / hw, f["z1"].shape[:3] + (d2.shape[-1],))
        p1 = patches(f["x"]).reshape(-1, w1.size // w1.shape[-1])
        p2 = patches(sign(f["z1"]), pad_value=1.0).reshape(-1, w2.size // w2.shape[-1])
        return [
            -(p1.T @ d1.reshape(-1, d1.shape[-1])).reshape(w1.shape), -d1.sum((0, 1, 2)),
            -(p2.T @ dc2.reshape(-1, dc2.shape[-1])).reshape(w2.shape), -dc2.sum((0, 1, 2)),
            -(sign(f["z2"]).T @ e_out), -e_out.sum(0),
        ]

    taps = ("z1", "z2")
    positions = (36, 1)


NETS = {"dense": DenseNet, "conv": ConvNet}


def _weights(model):
    return [(l.kernel.numpy().astype(np.float64), l.bias.numpy().astype(np.float64))
            for l in model.layers if isinstance(l, (lq.layers.QuantDense, lq.layers.QuantConv2D))]


def _one_step(method, net, x, y, **hparams):
    """One SGD(lr=1) step of ``method``; returns (trainer, weights before, updates, before-forward)."""
    model = net.keras()
    trainer = A.build(method, model, seed=3, **hparams)
    trainer.compile(tf.keras.optimizers.legacy.SGD(1.0), run_eagerly=True)
    w0 = _weights(model)
    fw = net.forward(w0, x.astype(np.float64))
    trainer.fit(x, y, batch_size=len(x), epochs=1, verbose=0, shuffle=False)
    w1 = _weights(model)
    got = [b - a for (ka, ba), (kb, bb) in zip(w0, w1) for a, b in ((ka, kb), (ba, bb))]
    return trainer, w0, got, fw


def _data(net, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1.0, (BATCH, *net.input_shape)).astype(np.float32)
    y = rng.integers(0, C, BATCH)
    return x, y


def _assert_updates(got, want, names=("W1", "b1", "W2", "b2", "W3", "b3")):
    for g, w, n in zip(got, want, names):
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-5, err_msg=n)


@pytest.mark.parametrize("net", list(NETS))
def test_dfa_update_matches_numpy(net):
    net = NETS[net]
    x, y = _data(net)
    trainer, w0, got, f = _one_step("dfa", net, x, y)
    e = softmax(f["logits"]) - np.eye(C)[y]
    fb = [v.numpy().astype(np.float64) for v in trainer.feedback]
    assert [v.shape for v in fb] == [(C, f["z1"].shape[-1]), (C, f["z2"].shape[-1])]
    d = []
    for k, tap in enumerate(net.taps):
        signal = (e @ fb[k]) / BATCH
        signal = signal.reshape((BATCH,) + (1,) * (f[tap].ndim - 2) + (-1,))
        d.append(signal * ste(f[tap]))
    _assert_updates(got, net.updates(w0, f, d[0], d[1], e / BATCH))
    assert any(np.abs(u).max() > 0 for u in got[:4]), "hidden layers did not move"


@pytest.mark.parametrize("net", list(NETS))
@pytest.mark.parametrize("target", ["centred", "onehot"])
def test_drtp_update_matches_numpy(net, target):
    net = NETS[net]
    x, y = _data(net, 1)
    trainer, w0, got, f = _one_step("drtp", net, x, y, target=target)
    t = np.eye(C)[y] - (1.0 / C if target == "centred" else 0.0)
    e = softmax(f["logits"]) - np.eye(C)[y]
    fb = [v.numpy().astype(np.float64) for v in trainer.feedback]
    d = []
    for k, tap in enumerate(net.taps):
        signal = (t @ fb[k]).reshape((BATCH,) + (1,) * (f[tap].ndim - 2) + (-1,))
        d.append(signal * ste(f[tap]))
    _assert_updates(got, net.updates(w0, f, d[0], d[1], e / BATCH))


def _np_hsic(a, b):
    m = a.shape[0]
    h = np.eye(m) - np.ones((m, m)) / m
    return np.trace(a @ h @ b @ h) / m**2


def _np_cos(z):
    z = z.reshape(len(z), -1)
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    return zn @ zn.T


def _np_hsic_loss(z, y, gamma):
    labels = np.eye(C)[y] - 1.0 / C
    kz = _np_cos(z)
    return _np_hsic(kz, kz) - gamma * _np_hsic(_np_cos(labels), kz)


def _numeric_grad(fn, z, eps=1e-6):
    g = np.zeros_like(z)
    flat, gflat = z.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = fn(z)
        flat[i] = old - eps
        down = fn(z)
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return g


@pytest.mark.parametrize("net", list(NETS))
def test_hsic_loss_and_update_match_numpy(net):
    net = NETS[net]
    gamma = 20.0
    x, y = _data(net, 2)
    trainer, w0, got, f = _one_step("hsic", net, x, y, gamma=gamma)
    e = softmax(f["logits"]) - np.eye(C)[y]
    history_losses = trainer.get_metrics_result()
    d = []
    for k, tap in enumerate(net.taps):
        z = sign(f[tap])
        want_loss = _np_hsic_loss(z, y, gamma)
        np.testing.assert_allclose(float(history_losses[f"hsic_{k}"]), want_loss, rtol=1e-4, atol=1e-6)
        # gradient of the loss w.r.t. the tap view, by central differences in float64
        grad = _numeric_grad(lambda v: _np_hsic_loss(v, y, gamma), z.copy())
        d.append(grad * ste(f[tap]))
    _assert_updates(got, net.updates(w0, f, d[0], d[1], e / BATCH))


@pytest.mark.parametrize("jit", [False, True])
def test_gram_gradient_is_the_matmul_gradient(jit):
    """HSIC's kernel product Z Z^T: one-matmul custom gradient = autodiff of tf.matmul (any upstream)."""
    rng = np.random.default_rng(3)
    z = tf.constant(rng.standard_normal((6, 40)), tf.float32)
    weights = tf.constant(rng.standard_normal((6, 6)), tf.float32)  # not symmetric

    @tf.function(jit_compile=jit)
    def grads(z):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(z)
            fast = tf.reduce_sum(weights * A.hsic.gram(z) ** 2)
            plain = tf.reduce_sum(weights * tf.matmul(z, z, transpose_b=True) ** 2)
        return A.hsic.gram(z), tape.gradient(fast, z), tape.gradient(plain, z)

    value, fast, plain = grads(z)
    np.testing.assert_allclose(value.numpy(), z.numpy() @ z.numpy().T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast.numpy(), plain.numpy(), rtol=1e-4, atol=1e-4)
    assert np.abs(fast.numpy()).max() > 1.0


def _sigprop_sites(net, w, f):
    """The authors' (pepita.py) SigpropTL error sites: (layer input u, activation a, P, conv?)."""
    if net is DenseNet:
        return [(f["x"], sign(f["z1"]), 1, False), (sign(f["z1"]), sign(f["z2"]), 1, False)]
    (w1, b1), (w2, b2), _ = w
    c2 = patches(sign(f["z1"]), pad_value=1.0) @ sign(w2).reshape(-1, w2.shape[-1]) + b2
    # conv2 -> GAP -> sign: the activation right after conv2 is sign(conv2 output), unpooled
    return [(f["x"], sign(f["z1"]), 36, True), (sign(f["z1"]), sign(c2), 36, True)]


@pytest.mark.parametrize("net", list(NETS))
def test_sigprop_update_matches_authors_code(net):
    """Error at the activation output right after each weight layer (before pooling), used as
    the gradient of the weight layer's output; kernel gradient / P (unpooled positions), bias
    gradient the plain sum (binary_nn_extended pepita.py)."""
    net = NETS[net]
    x, y = _data(net, 3)
    results = {}
    for alpha in (1.0, 0.05):
        trainer, w0, got, f = _one_step("sigprop", net, x, y, alpha=alpha)
        e = softmax(f["logits"]) - np.eye(C)[y]
        feedback = trainer.input_feedback.numpy().astype(np.float64)
        x_err = x.astype(np.float64) + alpha * (e @ feedback).reshape(x.shape)
        clean = _sigprop_sites(net, w0, f)
        noisy = _sigprop_sites(net, w0, net.forward(w0, x_err))
        want = []
        for (u, a, p, conv), (_, a_err, _, _) in zip(clean, noisy):
            err = a - a_err
            if conv:
                cols = patches(u, pad_value=0.0 if u is f["x"] else 1.0)
                cols = cols.reshape(-1, cols.shape[-1])
                dw = (cols.T @ err.reshape(-1, err.shape[-1])).reshape(-1, err.shape[-1]) / p
            else:
                dw = u.T @ err / p
            want += [-dw, -err.reshape(-1, err.shape[-1]).sum(0)]
        want += [-(sign(f["z2"]).T @ (e / BATCH)), -(e / BATCH).sum(0)]
        want[0] = want[0].reshape(got[0].shape)
        want[2] = want[2].reshape(got[2].shape)
        _assert_updates(got, want)
        results[alpha] = got
    assert any(np.abs(u).max() > 0 for u in results[1.0][:4]), "alpha=1 left the hidden layers unchanged"
    assert not all(np.allclose(a, b) for a, b in zip(results[1.0][:4], results[0.05][:4])), "alpha had no effect"


def test_sigprop_pass1_in_eval_mode_and_batch_norm_fixed():
    """Pass 1 in eval mode: the error comes from BN's moving statistics, the moving statistics
    move once per step (pass 2, on the 2B batch), BN's scale and offset do not train."""
    x, y = _data(DenseNet, 9)
    inp = tf.keras.Input(DenseNet.input_shape)
    h = lq.layers.QuantDense(5, **B.dense_kwargs("first"))(inp)
    bn = tf.keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3)
    h = bn(h)
    h = lq.layers.QuantDense(4, **B.dense_kwargs("hidden"))(h)
    model = tf.keras.Model(inp, lq.layers.QuantDense(C, **B.dense_kwargs("last"))(h))
    ws = [(l.kernel.numpy().astype(np.float64), l.bias.numpy().astype(np.float64))
          for l in model.layers if isinstance(l, lq.layers.QuantDense)]
    trainer = A.build("sigprop", model, seed=3, alpha=1.0)
    trainer.compile(tf.keras.optimizers.legacy.SGD(1.0), run_eagerly=True)
    trainer.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    (w1, b1), (w2, b2), (w3, b3) = ws

    def forward(v, scale):
        z1 = v @ w1 + b1
        return z1, (sign(z1 * scale) @ sign(w2) + b2)

    eval_scale = 1.0 / np.sqrt(1.0 + 1e-3)  # moving mean 0, variance 1
    z1, z2 = forward(x.astype(np.float64), eval_scale)
    e = softmax(sign(z2) @ w3 + b3) - np.eye(C)[y]
    x_err = x + (e @ trainer.input_feedback.numpy().astype(np.float64)).reshape(x.shape)
    both = np.concatenate([z1, x_err @ w1 + b1])
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.1 * both.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.gamma.numpy(), 1.0)
    np.testing.assert_allclose(bn.beta.numpy(), 0.0)
    # the output layer's step used the eval-mode logits
    np.testing.assert_allclose(model.layers[-1].bias.numpy() - b3, -(e / BATCH).sum(0), rtol=2e-4, atol=2e-5)


def test_sigprop_pass2_normalises_both_halves_with_shared_statistics():
    """Pass 2 normalises the clean and the modulated half with the statistics of the 2B batch
    (the authors' ``torch.cat([x, perturbed_input])``): the hidden update equals the numpy one
    with 2B statistics and differs from the one with each half's own statistics (what running
    the halves one after the other with ordinary batch norm would give)."""
    x, y = _data(DenseNet, 11)
    alpha = 3.0
    inp = tf.keras.Input(DenseNet.input_shape)
    h = lq.layers.QuantDense(5, **B.dense_kwargs("first"))(inp)
    h = tf.keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3)(h)
    h = tf.keras.layers.Activation("tanh")(h)  # a float activation: err is tanh(BN(z)) - tanh(BN(z_err))
    model = tf.keras.Model(inp, lq.layers.QuantDense(C, **B.dense_kwargs("last"))(h))
    (w1, b1), (w3, b3) = [(l.kernel.numpy().astype(np.float64), l.bias.numpy().astype(np.float64))
                          for l in model.layers if isinstance(l, lq.layers.QuantDense)]
    trainer = A.build("sigprop", model, seed=5, alpha=alpha)
    trainer.compile(tf.keras.optimizers.legacy.SGD(1.0), run_eagerly=True)
    trainer.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    got = model.layers[1].kernel.numpy() - w1

    x64 = x.astype(np.float64)
    z = x64 @ w1 + b1
    # pass 1 in eval mode (moving mean 0, variance 1); the classifier reads sign(tanh(.))
    e = softmax(sign(np.tanh(z / np.sqrt(1.0 + 1e-3))) @ w3 + b3) - np.eye(C)[y]
    z_err = (x64 + alpha * e @ trainer.input_feedback.numpy().astype(np.float64)) @ w1 + b1

    def update(mean_c, var_c, mean_e, var_e):
        err = np.tanh((z - mean_c) / np.sqrt(var_c + 1e-3)) - np.tanh((z_err - mean_e) / np.sqrt(var_e + 1e-3))
        return -(x64.T @ err)

    both = np.concatenate([z, z_err])
    shared = update(both.mean(0), both.var(0), both.mean(0), both.var(0))
    separate = update(z.mean(0), z.var(0), z_err.mean(0), z_err.var(0))
    np.testing.assert_allclose(got, shared, rtol=2e-4, atol=2e-5)
    assert np.abs(shared - separate).max() > 100 * 2e-5 + 2e-4 * np.abs(shared).max()


@pytest.mark.parametrize("net", list(NETS))
def test_sigprop_tap_option_keeps_earlier_rule(net):
    net = NETS[net]
    x, y = _data(net, 3)
    results = {}
    for alpha in (1.0, 0.05):
        trainer, w0, got, f = _one_step("sigprop", net, x, y, alpha=alpha, error_at="tap", pass1="train")
        e = softmax(f["logits"]) - np.eye(C)[y]
        feedback = trainer.input_feedback.numpy().astype(np.float64)
        assert feedback.shape == (C, int(np.prod(net.input_shape)))
        x_err = x.astype(np.float64) + alpha * (e @ feedback).reshape(x.shape)
        f_err = net.forward(w0, x_err)
        d = [(sign(f[tap]) - sign(f_err[tap])) / p for tap, p in zip(net.taps, net.positions)]
        _assert_updates(got, net.updates(w0, f, d[0], d[1], e / BATCH))
        results[alpha] = got
    assert any(np.abs(u).max() > 0 for u in results[1.0][:4]), "alpha=1 left the hidden layers unchanged"
    assert not all(np.allclose(a, b) for a, b in zip(results[1.0][:4], results[0.05][:4])), "alpha had no effect"


def test_bp_update_is_plain_gradient():
    x, y = _data(DenseNet, 4)
    model = DenseNet.keras()
    reference = tf.keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    trainer = A.build("bp", model)
    trainer.compile(tf.keras.optimizers.legacy.SGD(0.5), run_eagerly=True)
    reference.compile(tf.keras.optimizers.legacy.SGD(0.5), run_eagerly=True,
                      loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    trainer.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, shuffle=False)
    reference.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- API
def test_build_errors_name_allowed_values():
    model = DenseNet.keras()
    with pytest.raises(ValueError, match="available: bp, dfa, drtp, hsic, sigprop"):
        A.build("fa", model)
    with pytest.raises(ValueError, match="unknown hyperparameter.*beta.*allowed: gamma"):
        A.build("hsic", model, beta=1.0)
    with pytest.raises(ValueError, match="target='raw'.*allowed: centred, onehot"):
        A.build("drtp", model, target="raw")
    with pytest.raises(ValueError, match="allowed: none"):
        A.build("bp", model, alpha=1.0)
    assert A.available() == ["bp", "dfa", "drtp", "hsic", "sigprop"]


def test_taps_of_a_residual_model():
    x = tf.keras.Input((4, 4, 2))
    h = tf.keras.layers.Conv2D(4, 3, padding="same")(x)
    r = lq.layers.QuantConv2D(4, 3, padding="same", **B.conv_kwargs("hidden"))(h)
    h = tf.keras.layers.Add()([h, r])
    h = tf.keras.layers.Flatten()(h)
    out = tf.keras.layers.Dense(C)(h)
    model = tf.keras.Model(x, out)
    edge = A.TapGraph(model, granularity="edge")
    # DFA: inputs of the hidden conv and of the output layer; first conv untapped
    assert [t.kind for t in edge.taps] == ["input", "input"]
    assert edge.taps[0].quantizer is not None and edge.taps[1].quantizer is None
    tensor = A.TapGraph(model, granularity="tensor", block_taps=True)
    # DRTP/HSIC/SigpropTL: the block input (fan-out to conv and Add, real-valued view) + output input
    assert [t.kind for t in tensor.taps] == ["block", "input"]
    assert tensor.taps[0].quantizer is None and tensor.taps[0].shape == (4, 4, 4)
    # segments partition the trainable variables
    seg_vars = [id(v) for s in tensor.segments for v in s.variables]
    assert sorted(seg_vars) == sorted(id(v) for v in model.trainable_variables)
    with pytest.raises(ValueError, match="allowed: edge, tensor"):
        A.TapGraph(model, granularity="node")


@pytest.mark.parametrize("method", ["drtp", "hsic", "sigprop"])
def test_segment_methods_checkpoint(tmp_path, method):
    x, y = _data(ConvNet, 5)
    trainer = A.build(method, ConvNet.keras(), seed=7)
    trainer.compile(tf.keras.optimizers.legacy.Adam(1e-2), run_eagerly=True)
    trainer.fit(x, y, batch_size=4, epochs=1, verbose=0)
    trainer.save_weights(str(tmp_path / "ckpt"))
    clone = A.build(method, ConvNet.keras(), seed=7)
    clone(x[:1])
    clone.load_weights(str(tmp_path / "ckpt"))
    np.testing.assert_allclose(clone.predict(x, verbose=0), trainer.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["hsic", "sigprop"])
def test_training_only_losses_are_not_validation_metrics(method):
    """The per-tap local losses are logged while training and left out of ``evaluate``
    (which never computes them) instead of showing as ``val_<name>: 0``."""
    x, y = _data(ConvNet, 5)
    trainer = A.build(method, ConvNet.keras(), seed=7)
    trainer.compile(tf.keras.optimizers.legacy.Adam(1e-2), metrics=["accuracy"], run_eagerly=True)
    history = trainer.fit(x, y, batch_size=4, epochs=1, verbose=0, validation_data=(x, y)).history
    local = sorted(k for k in history if k.startswith(f"{method}_"))
    assert local and all(np.isfinite(history[k][0]) and history[k][0] != 0 for k in local)
    assert sorted(k for k in history if k.startswith("val_")) == ["val_accuracy", "val_loss"]
    assert sorted(trainer.evaluate(x, y, verbose=0, return_dict=True)) == ["accuracy", "loss"]


def test_save_and_reload_keeps_feedback_and_predictions(tmp_path):
    x, y = _data(ConvNet, 5)
    trainer = A.build("dfa", ConvNet.keras(), seed=7)
    trainer.compile(tf.keras.optimizers.legacy.Adam(1e-2), metrics=["accuracy"], run_eagerly=True)
    trainer.fit(x, y, batch_size=4, epochs=1, verbose=0)
    config = trainer.get_config()
    assert config["seed"] == 7
    clone = A.DFA.from_config(config)
    clone(x[:1])
    path = str(tmp_path / "ckpt")
    trainer.save_weights(path)
    clone.load_weights(path)
    np.testing.assert_allclose(clone.predict(x, verbose=0), trainer.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    for a, b in zip(clone.feedback, trainer.feedback):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # feedback matrices are fixed by the seed
    again = A.build("dfa", ConvNet.keras(), seed=7)
    np.testing.assert_array_equal(again.feedback[0].numpy(), A.build("dfa", ConvNet.keras(), seed=7).feedback[0].numpy())
    assert not np.allclose(A.build("dfa", ConvNet.keras(), seed=8).feedback[0].numpy(), again.feedback[0].numpy())


def test_segment_update_restores_optimizer_iterations():
    x, y = _data(DenseNet, 6)
    for update in ("segment", "step"):
        trainer = A.build("drtp", DenseNet.keras(), update=update)
        trainer.compile(tf.keras.optimizers.legacy.Adam(1e-3))  # graph mode: control deps matter
        trainer.fit(x, y, batch_size=4, epochs=1, verbose=0)
        assert int(trainer.optimizer.iterations.numpy()) == 2, update


@pytest.mark.parametrize("method", ["dfa", "drtp", "hsic", "sigprop"])
def test_non_legacy_keras_optimizers_update_every_segment(method):
    """Keras's new optimizers only update the variables they were built on: compile builds them."""
    x, y = _data(DenseNet, 6)
    model = DenseNet.keras()
    before = [v.numpy().copy() for v in model.trainable_variables]
    # a large alpha so that the perturbation flips signs at the binary taps of this tiny net
    trainer = A.build(method, model, **({"alpha": 10.0} if method == "sigprop" else {}))
    trainer.compile(tf.keras.optimizers.Adam(1e-2))
    trainer.fit(x, y, batch_size=3, epochs=1, verbose=0)
    kernels = [(b, v) for b, v in zip(before, model.trainable_variables) if "kernel" in v.name]
    assert all(not np.allclose(b, v.numpy()) for b, v in kernels)


def test_weight_decay_and_clip_constraints_apply():
    """Coupled weight decay comes from lqbench.optimizers; the clip constraint from apply_gradients."""
    optimizers = pytest.importorskip("lqbench.optimizers")
    b = Binarization()  # clip_weights=True
    x_in = tf.keras.Input((6,))
    h = lq.layers.QuantDense(5, **b.dense_kwargs("first"))(x_in)
    h = lq.layers.QuantDense(4, kernel_initializer=tf.keras.initializers.Constant(0.999), **b.dense_kwargs("hidden"))(h)
    model = tf.keras.Model(x_in, lq.layers.QuantDense(C, **b.dense_kwargs("last"))(h))
    x, y = _data(DenseNet, 7)
    for method in A.available():
        m = tf.keras.models.clone_model(model)
        m.layers[2].set_weights([np.full((5, 4), 0.999, np.float32), np.zeros(4, np.float32)])
        trainer = A.build(method, m)
        trainer.compile(optimizers.build("adam", learning_rate=0.5, weight_decay=1e-2), run_eagerly=True)
        trainer.fit(x, y, batch_size=BATCH, epochs=2, verbose=0)
        kernel = m.layers[2].kernel.numpy()
        assert np.abs(kernel).max() <= 1.0 + 1e-6, method
        assert not np.allclose(kernel, 0.999), method


# ----------------------------------------------------------------------------- zoo
SMALL = {
    "lenet": ((16, 16, 3), {}),
    "binarynet_mlp": ((8, 8, 1), {"hidden_units": (16, 16)}),
    "binarynet_cnn": ((16, 16, 3), {"width_multiplier": 1 / 16, "dense_units": (16, 16)}),
    "vgg_small": ((16, 16, 3), {"width_multiplier": 1 / 16}),
    "vgg19": ((32, 32, 3), {"width_multiplier": 1 / 16, "dense_units": (16, 16)}),
    "resnet20": ((16, 16, 3), {"depth": 8, "width": 8}),
    "reactnet_a": ((32, 32, 3), {"width_multiplier": 0.25}),
    "mobilenet_v2": ((32, 32, 3), {"width_multiplier": 0.35}),
    "mlp_mixer": ((16, 16, 3), {"preset": "small", "hidden_dim": 16, "depth": 2, "tokens_mlp_dim": 16,
                                "channels_mlp_dim": 16}),
}


def _zoo():
    try:
        from lqbench import models
    except ImportError:
        return None
    return models if hasattr(models, "build") else None


def _zoo_names():
    models = _zoo()
    return models.available() if models is not None else ["(no zoo)"]


def _zoo_model(name, skip=True, b=None):
    models = _zoo()
    if models is None:
        pytest.skip("lqbench.models has no build() yet")
    if name not in SMALL:
        pytest.skip(f"no tiny configuration for zoo model {name!r} in this test")
    shape, kwargs = SMALL[name]
    return models.build(name, shape, 4, b or Binarization(), skip_connections=skip, **kwargs), shape


def _changed(model, before):
    return {v.name for v, b in zip(model.trainable_variables, before) if not np.allclose(v.numpy(), b)}


def _fit_every_method(name, skip):
    # one build per model (a trainer leaves the model as it was built; each method starts from the
    # same freshly initialised weights): building a zoo model costs more than its training step
    model, shape = _zoo_model(name, skip)
    initial = model.get_weights()
    for method in A.available():
        model.set_weights(initial)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(4, *shape)).astype(np.float32)
        y = rng.integers(0, 4, 4)
        trainer = A.build(method, model)
        trainer.compile(tf.keras.optimizers.legacy.Adam(1e-3), metrics=["accuracy"], run_eagerly=True)
        history = trainer.fit(x, y, batch_size=4, epochs=1, verbose=0)
        for key, values in history.history.items():
            assert np.isfinite(values).all(), f"{name} {method} skip={skip}: {key}={values}"


@pytest.mark.parametrize("name", _zoo_names())
def test_every_method_trains_every_zoo_model(name):
    _fit_every_method(name, skip=True)


@pytest.mark.parametrize("name", ["resnet20", "mlp_mixer"])
def test_every_method_trains_without_skip_connections(name):
    _fit_every_method(name, skip=False)


@pytest.mark.parametrize("name", _zoo_names())
def test_gradients_do_not_cross_taps(name):
    """With the hidden signals switched off only the output segment learns (DFA: only what the
    loss reaches without crossing a weight-layer input); with them on, the hidden layers learn."""
    model, shape = _zoo_model(name)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, *shape)).astype(np.float32)
    y = rng.integers(0, 4, 4)
    # (SigpropTL with alpha=0 is not used here: identical samples at different batch positions
    # can differ in the last bit in large convs, flipping signs near 0; its segments are the
    # same as DRTP's and HSIC's, checked below)
    initial = model.get_weights()  # each method starts from them (cheaper than a clone of a zoo model)
    for method, off in (("dfa", {}), ("drtp", {})):
        model.set_weights(initial)
        trainer = A.build(method, model, **off)
        for fb in trainer.feedback:
            fb.assign(tf.zeros_like(fb))
        trainer.compile(tf.keras.optimizers.legacy.SGD(0.1), run_eagerly=True)
        before = [v.numpy() for v in model.trainable_variables]
        trainer.fit(x, y, batch_size=4, epochs=1, verbose=0)
        allowed = {v.name for v in trainer.graph.output_variables}
        changed = _changed(model, before)
        assert changed, f"{method}: nothing trained"
        assert changed <= allowed, f"{method}: {sorted(changed - allowed)[:5]} learned across a tap"
    # HSIC: each local loss only reaches its own segment (one forward pass for all of them)
    model.set_weights(initial)
    trainer = A.build("hsic", model)
    graph = trainer.graph
    labels = tf.one_hot(y, 4)
    with tf.GradientTape(persistent=True) as tape:
        env, _ = graph.run(x, training=True)
        losses = [trainer.local_loss(segment.tap.view(env[segment.tap.key]), A.hsic.cosine_kernel(labels))
                  for segment in graph.segments[:-1]]
    for segment, loss in zip(graph.segments[:-1], losses):
        grads = tape.gradient(loss, trainer.model.trainable_variables)
        reached = {v.name for g, v in zip(grads, trainer.model.trainable_variables) if g is not None}
        assert reached <= {v.name for v in segment.variables}


def test_methods_run_under_xla():
    """Every method that claims XLA support trains a small binary CNN with jit_compile=True."""
    x, y = _data(ConvNet, 8)
    for method in A.available():
        trainer = A.build(method, ConvNet.keras())
        if not trainer.supports_xla:
            continue
        trainer.compile(tf.keras.optimizers.legacy.Adam(1e-3), jit_compile=True)
        history = trainer.fit(x, y, batch_size=4, epochs=1, verbose=0)
        assert trainer.train_function is not None
        assert np.isfinite(history.history["loss"]).all(), method


# ----------------------------------------------------------------------------- MNIST
def _mnist(mnist_dir, n_train, n_test):
    from lqbench.data.formats import read_idx_pair

    xtr, ytr = read_idx_pair(mnist_dir, "train", 60000, hint="see ../shared/data/README.md")
    xte, yte = read_idx_pair(mnist_dir, "t10k", 10000, hint="see ../shared/data/README.md")
    xtr = xtr[:n_train].reshape(n_train, -1) / 255.0
    xte = xte[:n_test].reshape(n_test, -1) / 255.0
    return xtr.astype(np.float32), ytr[:n_train].astype(np.int64), xte.astype(np.float32), yte[:n_test].astype(np.int64)


def _binary_mlp(units=256):
    b = Binarization()
    x = tf.keras.Input((784,))
    h = lq.layers.QuantDense(units, **b.dense_kwargs("first"))(x)
    h = tf.keras.layers.BatchNormalization()(h)
    h = lq.layers.QuantDense(units, **b.dense_kwargs("hidden"))(h)
    h = tf.keras.layers.BatchNormalization()(h)
    return tf.keras.Model(x, lq.layers.QuantDense(10, **b.dense_kwargs("last"))(h))


MNIST_FLOOR = {"bp": 0.8, "dfa": 0.75, "drtp": 0.7, "hsic": 0.65, "sigprop": 0.5}


def test_every_method_learns_binary_mlp_on_mnist(mnist_dir):
    xtr, ytr, xte, yte = _mnist(mnist_dir, 6000, 2000)
    hparams = {"hsic": {"gamma": 20.0}, "sigprop": {"alpha": 0.1}}
    accuracies = {}
    for method in A.available():
        tf.keras.utils.set_random_seed(0)
        trainer = A.build(method, _binary_mlp(), **hparams.get(method, {}))
        trainer.compile(tf.keras.optimizers.legacy.Adam(1e-3), metrics=["accuracy"], jit_compile=True)
        trainer.fit(xtr, ytr, batch_size=100, epochs=2, verbose=0)
        accuracies[method] = trainer.evaluate(xte, yte, batch_size=500, verbose=0)[1]
    print("MNIST subset accuracies:", accuracies)
    for method, acc in accuracies.items():
        assert acc > MNIST_FLOOR[method], accuracies


# ----------------------------------------------------------------------------- Keras contract
def _gumbel_net():
    from lqbench import estimators

    x = tf.keras.Input(DenseNet.input_shape)
    h = lq.layers.QuantDense(5, **B.dense_kwargs("first"))(x)
    h = lq.layers.QuantDense(4, input_quantizer=estimators.get("gumbel", tau=1.0),
                             kernel_quantizer="ste_sign", name="gumbel_hidden")(h)
    return tf.keras.Model(x, lq.layers.QuantDense(C, **B.dense_kwargs("last"))(h))


@pytest.mark.parametrize("method", ["dfa", "drtp", "hsic", "sigprop"])
def test_stochastic_quantizers_see_training_mode(method):
    """Issue 14.2: the taps and re-run layers are called in training mode, so the Gumbel sign
    samples (two steps on one batch differ) and passes its pseudo-gradient to the first layer."""
    x, y = _data(DenseNet, 10)
    tf.keras.utils.set_random_seed(1)
    model = _gumbel_net()
    first = model.layers[1].kernel
    before = first.numpy().copy()
    trainer = A.build(method, model, **({"alpha": 10.0} if method == "sigprop" else {}))
    trainer.compile(tf.keras.optimizers.legacy.SGD(0.1), run_eagerly=True)
    trainer.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    assert not np.allclose(first.numpy(), before), f"{method}: no gradient reached the first layer"
    # the re-run graph samples in training: two forward passes of the same batch differ
    env1, _ = trainer.graph.run(x, training=True)
    env2, _ = trainer.graph.run(x, training=True)
    hidden = [op for op in trainer.graph.ops if op.layer.name == "gumbel_hidden"][0].out_keys[0]
    assert not np.allclose(env1[hidden].numpy(), env2[hidden].numpy())
    env3, _ = trainer.graph.run(x, training=False)
    env4, _ = trainer.graph.run(x, training=False)
    np.testing.assert_array_equal(env3[hidden].numpy(), env4[hidden].numpy())


@pytest.mark.parametrize("method", ["dfa", "drtp", "hsic", "sigprop"])
@pytest.mark.parametrize("when", ["before_build", "after_compile"])
def test_frozen_layers_stay_frozen(method, when):
    """Issue 14.3: a layer frozen after the method was built (and, then recompiled, after a
    first fit) is not updated, as with Keras's train_step."""
    x, y = _data(DenseNet, 11)
    model = DenseNet.keras()
    trainer = A.build(method, model, **({"alpha": 10.0} if method == "sigprop" else {}))
    trainer.compile(tf.keras.optimizers.legacy.SGD(0.1), run_eagerly=False)
    if when == "after_compile":
        trainer.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)  # traced with everything trainable
    frozen = model.layers[1]
    frozen.trainable = False
    trainer.compile(tf.keras.optimizers.legacy.SGD(0.1), run_eagerly=False)  # as a phase callback does
    kept = [v.numpy().copy() for v in frozen.weights]
    others = model.layers[2].kernel.numpy().copy()
    trainer.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    for a, v in zip(kept, frozen.weights):
        np.testing.assert_array_equal(a, v.numpy())
    assert not np.allclose(others, model.layers[2].kernel.numpy()), f"{method}: the others stopped training"


@pytest.mark.parametrize("method", ["dfa", "drtp", "hsic", "sigprop"])
def test_regularization_losses_count(method):
    """Issue 14.3: layer losses (kernel regularizers) enter each segment's loss, as in
    Keras's compute_loss: an L2 penalty alone shrinks every regularized kernel by 2 lr l2 W."""
    x, y = _data(DenseNet, 12)
    l2 = 0.5

    def net(reg):
        tf.keras.utils.set_random_seed(4)
        inp = tf.keras.Input(DenseNet.input_shape)
        h = lq.layers.QuantDense(5, kernel_regularizer=reg, **B.dense_kwargs("first"))(inp)
        h = lq.layers.QuantDense(4, kernel_regularizer=reg, **B.dense_kwargs("hidden"))(h)
        return tf.keras.Model(inp, lq.layers.QuantDense(C, kernel_regularizer=reg, **B.dense_kwargs("last"))(h))

    kernels = {}
    for reg in (None, tf.keras.regularizers.L2(l2)):
        model = net(reg)
        w0 = [l.kernel.numpy().copy() for l in model.layers[1:]]
        trainer = A.build(method, model, seed=3, **({"alpha": 10.0} if method == "sigprop" else {}))
        trainer.compile(tf.keras.optimizers.legacy.SGD(0.1), run_eagerly=True)
        history = trainer.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
        kernels[reg is None] = (w0, [l.kernel.numpy() for l in model.layers[1:]], history.history["loss"][0])
    (w0, plain, loss_plain), (_, regular, loss_reg) = kernels[True], kernels[False]
    for a, b, w in zip(plain, regular, w0):
        np.testing.assert_allclose(b - a, -0.1 * 2 * l2 * w, rtol=1e-3, atol=1e-5)
    assert loss_reg > loss_plain, "the loss metric leaves out the regularization"


# ----------------------------------------------------------------------------- issue 14 items 9, 11, 14
@pytest.mark.parametrize("init,bound", [("kaiming_uniform", 3.0), ("frenkel_uniform", 6.0)])
@pytest.mark.parametrize("feedback", ["channel", "position"])
def test_drtp_uniform_init_uses_the_taps_fan_in(init, bound, feedback):
    """Issue 14.11: U(+-sqrt(k / n_k)) with n_k the tap's fan-in (authors: torch kaiming_uniform_,
    k = 3), not sqrt(6 / C)."""
    trainer = A.build("drtp", ConvNet.keras(), init=init, feedback=feedback)
    for tap, fb in zip(trainer.graph.taps, trainer.feedback):
        n = tap.channels if feedback == "channel" else tap.size
        values = fb.numpy()
        assert values.shape == (C, n)
        limit = np.sqrt(bound / n)
        assert np.abs(values).max() <= limit + 1e-7
        if values.size >= 12:
            assert np.abs(values).max() > 0.5 * limit


def _token_mixer():
    x = tf.keras.Input((4, 6))  # 4 tokens of 6 hidden channels
    h = lq.layers.QuantDense(6, **B.dense_kwargs("first"))(x)
    h = tf.keras.layers.LayerNormalization()(h)
    h = tf.keras.layers.Permute((2, 1))(h)  # (hidden 6, tokens 4)
    h = lq.layers.QuantDense(5, **B.dense_kwargs("hidden"))(h)  # token mixing
    h = lq.layers.QuantDense(4, **B.dense_kwargs("hidden"))(h)
    h = tf.keras.layers.Permute((2, 1))(h)
    h = tf.keras.layers.Flatten()(h)
    return tf.keras.Model(x, lq.layers.QuantDense(C, **B.dense_kwargs("last"))(h))


@pytest.mark.parametrize("method", ["dfa", "drtp"])
def test_token_mixing_feedback_over_hidden_axis(method):
    """Issue 14.9: token-mixing taps get feedback over the hidden axis, broadcast over tokens."""
    trainer = A.build(method, _token_mixer())
    shapes = [tuple(fb.shape) for fb in trainer.feedback]
    assert shapes == [(C, 6), (C, 6), (C, 24)], shapes
    tap = trainer.graph.taps[1]
    assert tap.shape == (6, 5) and tap.channels == 6 and tap.positions == 5
    signal = A.taps.tap_signal(tf.ones((2, 6)), tap)
    assert tuple(signal.shape) == (2, 6, 1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4, 6)).astype(np.float32)
    trainer.compile(tf.keras.optimizers.legacy.SGD(0.1), run_eagerly=True)
    history = trainer.fit(x, rng.integers(0, C, 8), batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def _np_nhsic(a, b, eps):
    m = a.shape[0]
    h = np.eye(m) - np.ones((m, m)) / m

    def r(k):
        k = h @ k @ h
        return k @ np.linalg.inv(k + eps * m * np.eye(m))

    return np.trace(r(a) @ r(b))


def test_nhsic_is_ma_et_al_normalised_hsic():
    """Issue 14.14: objective='nhsic' is tr(R_Z R_Y), R = K (K + eps m I)^-1 (centred K);
    centred kernel alignment keeps its own name, 'cka'; gamma defaults to 20."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(BATCH, 5))
    xin = rng.normal(size=(BATCH, 6))
    y = rng.integers(0, C, BATCH)
    labels = np.eye(C)[y] - 1.0 / C
    kz, kx, ky = _np_cos(z), _np_cos(xin), _np_cos(labels)
    for eps in (1e-5, 1e-2):
        got = float(A.hsic.nhsic(tf.constant(kz), tf.constant(ky), eps))
        np.testing.assert_allclose(got, _np_nhsic(kz, ky, eps), rtol=1e-6)
    trainer = A.build("hsic", DenseNet.keras(), objective="nhsic")
    assert trainer.hparams["gamma"] == 20.0
    loss = float(trainer.local_loss(tf.constant(z), tf.constant(ky), tf.constant(kx)))
    np.testing.assert_allclose(loss, _np_nhsic(kz, kx, 1e-5) - 20.0 * _np_nhsic(kz, ky, 1e-5), rtol=1e-5)
    cka = A.build("hsic", DenseNet.keras(), objective="cka", gamma=2.0)
    want = (_np_hsic(kz, kx) / np.sqrt(_np_hsic(kz, kz) * _np_hsic(kx, kx))
            - 2.0 * _np_hsic(kz, ky) / np.sqrt(_np_hsic(kz, kz) * _np_hsic(ky, ky)))
    np.testing.assert_allclose(float(cka.local_loss(tf.constant(z), tf.constant(ky), tf.constant(kx))), want, rtol=1e-5)
    x, yy = _data(DenseNet, 13)
    trainer.compile(tf.keras.optimizers.legacy.SGD(0.1), run_eagerly=True)
    assert np.isfinite(trainer.fit(x, yy, batch_size=BATCH, epochs=1, verbose=0).history["loss"]).all()


@pytest.mark.parametrize("method", ["bp", "dfa", "drtp", "hsic", "sigprop"])
def test_float64_models_train_with_the_same_update(method):
    """With Keras's floatx float64 (the reference comparisons' round-off check) the fixed feedback
    matrices and targets follow it, and one step moves every weight as in float32."""
    x, y = _data(DenseNet, 13)
    steps = {}
    for dtype in ("float32", "float64"):
        tf.keras.backend.clear_session()
        tf.keras.backend.set_floatx(dtype)
        try:
            tf.keras.utils.set_random_seed(3)
            model = DenseNet.keras()
            if dtype == "float32":
                initial = model.get_weights()
            model.set_weights([w.astype(dtype) for w in initial])  # the same start in both types
            before = [v.numpy().astype(np.float64) for v in model.trainable_variables]
            trainer = A.build(method, model, seed=0, **({"alpha": 10.0} if method == "sigprop" else {}))
            trainer.compile(tf.keras.optimizers.legacy.SGD(0.5), run_eagerly=True)
            trainer.train_on_batch(x.astype(dtype), y)
            assert all(v.dtype == dtype for v in model.trainable_variables + trainer.non_trainable_variables
                       if v.dtype.is_floating)
            steps[dtype] = [v.numpy() - b for v, b in zip(model.trainable_variables, before)]
        finally:
            tf.keras.backend.set_floatx("float32")
    assert any(np.abs(s).max() > 1e-3 for s in steps["float64"])
    for a, b in zip(steps["float32"], steps["float64"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
