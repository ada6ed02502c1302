"""lqbench's sign estimators vs paper 003's formulas (numpy) and IR-Net's EDE code (torch).

Network: x (16 x 6) -> float Dense A (6 -> 8, no bias) -> h -> q(h) -> float Dense W (8 -> 3,
no bias), mean squared error, plain SGD (lr 0.1) for a few steps on the whole batch. q is the
estimator under test (Larq's sign forward, the estimator's pseudo-gradient backward), so A's
update goes through the pseudo-gradient. The reference side recomputes every step in numpy with
the paper's formula (eqs. 3, 5, 6, 7 of paper 003; BNN+'s SignSwish; two-category Gumbel-softmax
with the same Gumbel noise, injected on both sides) and, for EDE, with IR-Net's own
``BinaryQuantize`` (torch autograd) and its ``Log_UP`` schedule. Compared: forward values,
pseudo-gradients at the first step, and A and W after every step.

    .venv/bin/python bench/reference/estimators.py
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H  # noqa: E402

tf = H.quiet_tf()
import larq as lq  # noqa: E402
import torch  # noqa: E402

from lqbench import estimators  # noqa: E402

N, D_IN, HID, OUT, LR, STEPS = 16, 6, 8, 3, 0.1, 4
NETWORK = f"x ({N}x{D_IN}) -> Dense {D_IN}->{HID} -> sign estimator -> Dense {HID}->{OUT}, MSE, SGD lr {LR}, full batch"
PAPER = {"repo": "paper 003 (So, A Survey of Gradient Estimators for BNNs)", "commit": "-",
         "file": "shared/papers/003_9ed3c6ad537fdbce.txt"}
IRNET = {"repo": "htqin/IR-Net", "commit": "f63a590", "file": "CIFAR-10/VGG-Small/modules/binaryfunction.py"}
TEST = "tests/test_estimators.py::test_forward_is_larq_sign_and_backward_matches_formula"
SIGN0 = {"name": "sign(0)", "reason": "Larq's sign(0) = +1 (LCE's convention); the formulas' and torch's sign(0) = 0; "
                                      "measure-zero for real inputs"}


def sech2(z):
    return 1.0 / np.cosh(z) ** 2


FORMULAS = {  # name: (pseudo-gradient, reference symbol, estimator kwargs)
    "ste": (lambda x: np.ones_like(x), "STE, identity ('set to the identity function', §III)", {}),
    "ste_clipped": (lambda x: (np.abs(x) <= 1).astype(x.dtype), "eq. (3), clipped STE", {}),
    "approx_sign": (lambda x: np.where(np.abs(x) <= 1, 2 - 2 * np.abs(x), 0.0), "eq. (5), second-order approximation", {}),
    "tanh": (lambda x: 1 - np.tanh(x) ** 2, "eq. (6), tanh", {}),
    "cosh2": (lambda x: (2 / np.cosh(x)) ** 2, "eq. (7), (2 / cosh x)^2", {}),
    "swish_sign": (lambda x: 5 * (2 - 5 * x * np.tanh(2.5 * x)) / (1 + np.cosh(5 * x)),
                   "BNN+ SignSwish derivative, beta 5 (Darabi et al. 2018; larq.quantizers.SwishSign)", {}),
}


def build(quantizer):
    inputs = tf.keras.Input((D_IN,))
    h = tf.keras.layers.Dense(HID, use_bias=False, name="A")(inputs)
    y = lq.layers.QuantDense(OUT, use_bias=False, input_quantizer=quantizer, name="W")(h)
    return tf.keras.Model(inputs, y)


def numpy_step(x, t, a, w, forward, pseudo_grad):
    """One SGD step of the reference: returns new (a, w), q, q'(h)."""
    h = x.astype("float64") @ a
    q = forward(h)
    y = q @ w
    dy = 2.0 * (y - t) / y.size  # Keras MeanSquaredError: mean over batch and outputs
    gw = q.T @ dy
    dh = (dy @ w.T) * pseudo_grad(h)
    ga = x.T @ dh
    return a - LR * ga, w - LR * gw, q, pseudo_grad(h)


def lqbench_run(quantizer, x, t, a, w, callbacks=()):
    model = build(quantizer)
    model.get_layer("A").kernel.assign(a)
    model.get_layer("W").kernel.assign(w)
    model.compile(tf.keras.optimizers.legacy.SGD(LR), loss="mse")
    snaps = []
    cb = tf.keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: snaps.append([model.get_layer("A").kernel.numpy(), model.get_layer("W").kernel.numpy()]))
    model.fit(x, t, batch_size=N, epochs=STEPS, shuffle=False, verbose=0, callbacks=[*callbacks, cb])
    return model, snaps


def first_step_values(quantizer, h):
    h = tf.constant(h.astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(h)
        q = quantizer(h)
    return q.numpy(), tape.gradient(q, h).numpy()


def sign(x):
    return np.where(x >= 0, 1.0, -1.0)


def deterministic(name):
    grad, symbol, kwargs = FORMULAS[name]
    x, t, a, w = H.mlp_problem(N, D_IN, HID, OUT)
    ref, (ra, rw) = [], (a.astype("float64"), w.astype("float64"))
    for _ in range(STEPS):
        ra, rw, _, _ = numpy_step(x, t, ra, rw, sign, grad)
        ref.append([ra, rw])
    _, ours = lqbench_run(estimators.get(name, **kwargs), x, t, a, w)
    h0 = x @ a
    q, g = first_step_values(estimators.get(name, **kwargs), h0)
    fwd, bwd = H.max_abs_diff([q], [sign(h0)]), H.max_abs_diff([g], [grad(h0.astype("float64"))])
    diff = max(H.max_abs_diff(r, o) for r, o in zip(ref, ours))
    deviations = [SIGN0]
    if name == "ste":
        deviations.append({"name": "paper 003's STE rows use the clipped STE",
                           "reason": "paper 003 sends gradients 'via (3)', the hard-tanh-clipped STE: its STE rows "
                                     "are `ste_clipped` (this `ste` is the identity STE used for latent weights, where "
                                     "Larq's weight clip makes the two equal)"})
    if name == "swish_sign":
        deviations.append({"name": "not paper 003's 2/cosh estimator",
                           "reason": "paper 003's '2/cosh x' rows are eq. (7), `cosh2`; SignSwish is the BNN+ member "
                                     "of that family, kept as an option"})
    H.write_result(f"estimator_{name}", reference={**(PAPER if name != "swish_sign" else
                                                     {"repo": "larq/larq", "commit": "fe3ce52", "file": "larq/quantizers.py"}),
                                                  "symbol": symbol},
                   network=NETWORK, steps=STEPS, max_abs_weight_diff=diff, tolerance=1e-5, test=TEST,
                   deviations=deviations, extra={"max_abs_forward_diff": fwd, "max_abs_pseudo_gradient_diff": bwd})


def irnet_log_up(epoch, epochs, t_min=0.1, t_max=10.0):
    """IR-Net main.py:123-137 (Log_UP and the k rule), ported line by line to floats."""
    k_min, k_max = math.log(t_min) / math.log(10), math.log(t_max) / math.log(10)
    t = math.pow(10, k_min + (k_max - k_min) / epochs * epoch)
    k = 1 / t if t < 1 else 1.0
    return t, k


def ede():
    binaryfunction = H.import_file("irnet_binaryfunction", H.REFSRC / "htqin+IR-Net" / "CIFAR-10" / "VGG-Small" /
                                   "modules" / "binaryfunction.py")

    def torch_q(h, t, k, dq=None):
        ht = torch.tensor(h, dtype=torch.float64, requires_grad=True)
        out = binaryfunction.BinaryQuantize.apply(ht, torch.tensor([k], dtype=torch.float64),
                                                  torch.tensor([t], dtype=torch.float64))
        out.backward(torch.ones_like(ht) if dq is None else torch.tensor(dq))
        return out.detach().numpy(), ht.grad.numpy()

    x, t_, a, w = H.mlp_problem(N, D_IN, HID, OUT)
    schedule = [irnet_log_up(e, STEPS) for e in range(STEPS)]
    ref, (ra, rw) = [], (a.astype("float64"), w.astype("float64"))
    for tt, kk in schedule:
        h = x.astype("float64") @ ra
        q, _ = torch_q(h, tt, kk)
        y = q @ rw
        dy = 2.0 * (y - t_) / y.size
        gw = q.T @ dy
        _, dh = torch_q(h, tt, kk, dq=dy @ rw.T)
        ra, rw = ra - LR * (x.T @ dh), rw - LR * gw
        ref.append([ra, rw])
    _, ours = lqbench_run(estimators.get("ede"), x, t_, a, w, [estimators.EDESchedule(STEPS)])
    diff = max(H.max_abs_diff(r, o) for r, o in zip(ref, ours))
    h0 = x @ a
    q, g = first_step_values(estimators.get("ede"), h0)
    rq, rg = torch_q(h0.astype("float64"), *schedule[0])
    sched = max(max(abs(p - q_) for p, q_ in zip(estimators.ede_parameters(e, 300), irnet_log_up(e, 300)))
                for e in range(300))
    H.write_result("estimator_ede", reference={**IRNET, "symbol": "BinaryQuantize.backward; main.py:123-137 Log_UP"},
                   network=NETWORK + "; one IR-Net epoch per step", steps=STEPS, max_abs_weight_diff=diff,
                   tolerance=1e-5, test="tests/test_estimators.py::test_ede_schedule_values_follow_ir_net",
                   deviations=[
                       SIGN0,
                       {"name": "Libra-PB weight balancing not part of the estimator",
                        "reason": "IR-Net's IRConv2d standardises each filter (zero mean, unit std) and scales the "
                                  "signed weights by a power of 2 before the convolution (ir_1w1a.py:17-22); lqbench's "
                                  "`ede` is the estimator alone (paper 003 swaps estimators in a fixed network)"},
                   ],
                   extra={"max_abs_forward_diff": H.max_abs_diff([q], [np.where(rq == 0, 1.0, rq)]),
                          "max_abs_pseudo_gradient_diff": H.max_abs_diff([g], [rg]),
                          "max_abs_schedule_diff_300_epochs": sched})


def gumbel():
    tau = 0.7
    x, t_, a, w = H.mlp_problem(N, D_IN, HID, OUT)
    rng = np.random.default_rng(1)
    noise_u = [rng.uniform(1e-6, 1.0, size=(2, N, HID)).astype("float32") for _ in range(STEPS)]

    def fake_uniform(shape, minval=0, maxval=None, dtype=tf.float32, seed=None, name=None):
        # one fixed draw per step, fed through a variable so the traced graph reads the current one
        return tf.cast(current, dtype)

    current = tf.Variable(noise_u[0])
    ref, (ra, rw) = [], (a.astype("float64"), w.astype("float64"))
    for u in noise_u:
        g = -np.log(-np.log(u.astype("float64")))
        noise = g[0] - g[1]
        h = x.astype("float64") @ ra
        logits = 2 * h + noise
        s = np.tanh(logits / (2 * tau))
        ra, rw, _, _ = numpy_step(x, t_, ra, rw, lambda hh: sign(2 * hh + noise), lambda hh: (1 - s * s) / tau)
        ref.append([ra, rw])

    class Feed(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            current.assign(noise_u[epoch])

    with mock.patch.object(tf.random, "uniform", fake_uniform):
        _, ours = lqbench_run(estimators.get("gumbel", tau=tau), x, t_, a, w, [Feed()])
    diff = max(H.max_abs_diff(r, o) for r, o in zip(ref, ours))
    H.write_result("estimator_gumbel",
                   reference={**PAPER, "symbol": "Gumbel softmax over {-1, +1} (§III; Jang et al. 2017 straight-through, "
                                                  "logits -x, +x)"},
                   network=NETWORK + f"; tau {tau}, identical Gumbel noise on both sides", steps=STEPS,
                   max_abs_weight_diff=diff, tolerance=1e-5,
                   test="tests/test_estimators.py::test_gumbel_is_stochastic_in_training_and_sign_at_inference",
                   deviations=[SIGN0, {"name": "no public code", "reason": "paper 003 gives no formula or code for its "
                                       "Gumbel rows; compared with the two-category straight-through Gumbel-softmax"}])


def main():
    for name in FORMULAS:
        deterministic(name)
    ede()
    gumbel()


if __name__ == "__main__":
    main()
