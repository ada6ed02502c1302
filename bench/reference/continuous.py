"""lqbench's continuous binarization (PCF / SBAF) vs paper 002's equations (no public code).

Network: x (16 x 6) -> Dense A (6 -> 8, no bias) -> activation -> Dense W (8 -> 3, no bias), MSE
plus the slope penalty lambda m^2, plain SGD on A, W, m and alpha. The activation is the PCF of
paper 002 eq. (1), clip(h / m + alpha / 2, 0, alpha), with its true gradients for 4 steps
(Algorithm 1's stage of that layer: m and alpha learnt, L2-regularised slope), then the SBAF
alpha 1_{h > 0} (the definition just before eq. (1)) for 2 steps (later stages: the layer is
binary, only alpha gets a gradient through it). The reference is numpy written from the
equations; weights, m and alpha are compared after every step.

    .venv/bin/python bench/reference/continuous.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H  # noqa: E402

tf = H.quiet_tf()

from lqbench import continuous  # noqa: E402

N, D_IN, HID, OUT, LR, LAMBDA, PCF_STEPS, SBAF_STEPS = 16, 6, 8, 3, 0.05, 0.1, 4, 2


def main():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D_IN)).astype("float32")
    t = rng.normal(size=(N, OUT)).astype("float32")
    a0 = (rng.normal(size=(D_IN, HID)) * 0.4).astype("float32")
    w0 = (rng.normal(size=(HID, OUT)) * 0.5).astype("float32")
    m0, alpha0 = 0.5, 2.0

    # ---- lqbench
    inputs = tf.keras.Input((D_IN,))
    h = tf.keras.layers.Dense(HID, use_bias=False, name="A")(inputs)
    act = continuous.PCF(slope=m0, scale=alpha0, slope_regularizer="l2", name="pcf")
    y = tf.keras.layers.Dense(OUT, use_bias=False, name="W")(act(h))
    model = tf.keras.Model(inputs, y)
    model.get_layer("A").kernel.assign(a0)
    model.get_layer("W").kernel.assign(w0)
    act.slope_lambda.assign(LAMBDA)
    model.compile(tf.keras.optimizers.legacy.SGD(LR), loss="mse")
    ours = []
    for step in range(PCF_STEPS + SBAF_STEPS):
        if step == PCF_STEPS:
            act.binary.assign(1.0)
            act.slope_lambda.assign(0.0)
        model.train_on_batch(x, t)
        ours.append([model.get_layer("A").kernel.numpy(), model.get_layer("W").kernel.numpy(),
                     np.array(act.slope.numpy()), np.array(act.scale.numpy())])

    # ---- numpy from the paper's equations
    a, w, m, alpha = a0.astype("float64"), w0.astype("float64"), m0, alpha0
    xd = x.astype("float64")
    ref = []
    for step in range(PCF_STEPS + SBAF_STEPS):
        binary = step >= PCF_STEPS
        hh = xd @ a
        u = hh / m + alpha / 2
        if binary:  # SBAF: alpha 1_{h > 0}
            s = alpha * (hh > 0)
            ds_dh, ds_dm, ds_dalpha = np.zeros_like(hh), np.zeros_like(hh), (hh > 0).astype(float)
        else:  # PCF, eq. (1), true (sub)gradients
            s = np.clip(u, 0, alpha)
            inside = (u > 0) & (u < alpha)
            ds_dh, ds_dm = inside / m, inside * (-hh / m**2)
            ds_dalpha = inside * 0.5 + (u >= alpha)
        yy = s @ w
        dy = 2.0 * (yy - t) / yy.size
        gw = s.T @ dy
        ds = dy @ w.T
        ga = xd.T @ (ds * ds_dh)
        gm = np.sum(ds * ds_dm) + (0.0 if binary else 2 * LAMBDA * m)  # L2 slope penalty lambda m^2
        galpha = np.sum(ds * ds_dalpha)
        a, w = a - LR * ga, w - LR * gw
        m, alpha = max(m - LR * gm, 1e-4), alpha - LR * galpha  # lqbench keeps m >= min_slope (1e-4)
        ref.append([a, w, np.array(m), np.array(alpha)])

    diff = max(H.max_abs_diff(r, o) for r, o in zip(ref, ours))
    H.write_result(
        "continuous",
        reference={"repo": "paper 002 (Sakr et al., continuous binarization)", "commit": "-",
                   "file": "shared/papers/002_e719c6ac15dc88d0.txt",
                   "symbol": "eq. (1) PCF, the SBAF definition before it, Algorithm 1 (L2 slope regularisation)"},
        network=f"x ({N}x{D_IN}) -> Dense {D_IN}->{HID} -> PCF/SBAF -> Dense {HID}->{OUT}, MSE + {LAMBDA} m^2, "
                f"SGD lr {LR}: {PCF_STEPS} PCF steps then {SBAF_STEPS} SBAF steps",
        steps=PCF_STEPS + SBAF_STEPS, max_abs_weight_diff=diff, tolerance=1e-5,
        test="tests/test_continuous.py::test_pcf_forward_and_true_gradients_match_numpy",
        deviations=[
            {"name": "no public code", "reason": "the authors' code is not public; compared with the paper's equations"},
            {"name": "slope floor", "reason": "lqbench keeps m >= 1e-4 (min_slope) after every step so the PCF stays "
                                              "defined; the paper does not say how m is kept positive"},
        ])


if __name__ == "__main__":
    main()
