#!/usr/bin/env python3
r"""Why SigpropTL stays at chance on ``lqbench run``'s network: a measured diagnosis (issue #14).

The network is the main job's: VGG-small width 0.25 (convolutions 32-32-M-64-64-M-128-128-M,
BN, hard tanh / sign, one float classifier), W1A1 except the first and last layers, embedded
8x8 digits, Adam 1e-3, batch 64, 15 epochs, seed 0. Every 5 epochs the script records the test
accuracy, the mean absolute cosine between the filters of ``conv1``, ``conv3`` and ``conv5``
(flattened 3x3xC kernels) and the effective rank \\(\exp H(p)\\), \\(p_i = s_i^2 / \sum s_j^2\\)
(\\(s\\) the singular values of the centred 128-d features the classifier reads, eval mode, 359
test images), and SigpropTL's per-layer error \\(\operatorname{mean}(a(x) - a(x_{err}))^2\\).

Runs: ``readout`` (backprop with every layer but the classifier frozen: how much a linear
readout gets from the untrained features), ``sigprop`` (lqbench's defaults),
``sigprop_authors`` (``normalize_error=True``: the authors' update exactly, see
``bench/results/reference/sigprop.json``) and ``bp``; each with W1A1 and full precision.

    .venv/bin/python bench/sigprop_diagnosis.py [--epochs 15] [--runs readout sigprop ...]

Writes ``bench/results/sigprop_diagnosis.json``.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import lqbench  # noqa: F401  (tf-keras before TensorFlow)

import numpy as np
import tensorflow as tf

import lqbench.algorithms
import lqbench.models
from lqbench import Binarization, data

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results" / "sigprop_diagnosis.json"
RUNS = {
    "readout": ("bp", {}, True),
    "bp": ("bp", {}, False),
    "sigprop": ("sigprop", {}, False),
    "sigprop_authors": ("sigprop", {"normalize_error": True}, False),
}


def filter_cosine(layer) -> float:
    """Mean |cos| between distinct output filters of a conv layer."""
    k = layer.kernel.numpy().reshape(-1, layer.kernel.shape[-1]).T
    k = k / np.linalg.norm(k, axis=1, keepdims=True)
    c = np.abs(k @ k.T)
    n = len(c)
    return float((c.sum() - n) / (n * n - n))


def effective_rank(features: np.ndarray) -> float:
    s = np.linalg.svd(features - features.mean(0), compute_uv=False)
    p = s**2 / (s**2).sum()
    return float(np.exp(-(p * np.log(p + 1e-12)).sum()))


def probe(model, trainer, x_test, y_test) -> dict:
    features = tf.keras.Model(model.input, model.get_layer("flatten").output)(x_test, training=False).numpy()
    logits = model(x_test, training=False).numpy()
    row = {"test_acc": round(float((logits.argmax(1) == y_test).mean()), 4),
           "feature_effective_rank": round(effective_rank(features), 2)}
    for name in ("conv1", "conv3", "conv5"):
        row[f"{name}_filter_cos"] = round(filter_cosine(model.get_layer(name)), 3)
    errors = {m.name: round(float(m.result()), 5) for m in trainer.metrics if m.name.startswith("sigprop_")}
    return {**row, **errors}


def run(label, binarization, epochs, seed=0):
    algorithm, hparams, frozen = RUNS[label]
    tf.keras.utils.set_random_seed(seed)
    b = Binarization() if binarization == "W1A1" else Binarization.full_precision()
    model = lqbench.models.build("vgg_small", (8, 8, 1), 10, b, width_multiplier=0.25)
    if frozen:
        for layer in model.layers:
            layer.trainable = layer.name == "classifier"
    trainer = lqbench.algorithms.build(algorithm, model, seed=seed, **hparams)
    trainer.compile(tf.keras.optimizers.legacy.Adam(1e-3), metrics=["accuracy"])
    train = data.load("digits", "train", batch_size=64, seed=seed)
    x_test, y_test = next(iter(data.load("digits", "test", batch_size=4096, seed=seed)))
    y_test = y_test.numpy().reshape(-1)
    rows = [{"epoch": 0, **probe(model, trainer, x_test, y_test)}]
    started = time.time()
    for epoch in range(5, epochs + 1, 5):
        trainer.fit(train, epochs=5, verbose=0)
        rows.append({"epoch": epoch, **probe(model, trainer, x_test, y_test)})
    return {"run": label, "binarization": binarization, "algorithm": algorithm, "hparams": hparams,
            "frozen_hidden": frozen, "seed": seed, "seconds": round(time.time() - started, 1), "trace": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--runs", nargs="+", choices=sorted(RUNS), default=list(RUNS))
    parser.add_argument("--binarizations", nargs="+", choices=("W1A1", "W32A32"), default=["W1A1", "W32A32"])
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    results = []
    for binarization in args.binarizations:
        for label in args.runs:
            result = run(label, binarization, args.epochs)
            last = result["trace"][-1]
            print(f"{binarization} {label}: " + json.dumps(last), flush=True)
            results.append(result)
    out = {"command": " ".join([".venv/bin/python", "bench/sigprop_diagnosis.py", *sys.argv[1:]]),
           "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "results": results}
    pathlib.Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
