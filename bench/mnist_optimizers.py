"""Paper 002 Table 1 on real MNIST (MLP 784-2048-2048-2048-10) plus the fully binary MLP trained
by every algorithm (BP, DFA, DRTP, HSIC, SigpropTL) and every binarizing optimizer (Bop, Bop2,
BNEW, ProxQuant, BMD), all through `lqbench.recipes.fit`, over several seeds (mean ± std).

Binary-activation rows (weights real): full precision (clipping activation, PCF with fixed
m = 0.5, alpha = 2), STE (sign activations, Larq ste_sign) and continuous binarization
(recipe ``cb``: pre-training + one stage per hidden activation, L2 slope penalty lambda = 1 as
in the paper's MNIST run). Fully binary rows: hidden kernels binary (first/last layers real),
sign activations, optimizers ``ste`` (Adam on latent weights; row ``bin_ste`` = algorithm
``bp``), ``bop``, ``bop2``, ``bnew``, ``proxquant``, ``bmd``, and the alternatives to backprop
``dfa``, ``drtp``, ``hsic``, ``sigprop`` (`lqbench.algorithms`, Adam on latent weights).

Data: `lqbench.data.load("mnist")` from ``LQBENCH_DATA_DIR`` (default ../shared/data):
training on the ``train`` split (54k images; 6k held out as ``val``), test error on the
official 10k test set at the end of training (the paper's protocol: last-epoch test error).

    LQBENCH_DATA_DIR=/work/shared/data .venv/bin/python bench/mnist_optimizers.py \
        --epochs 3 --seeds 0 1 2 --out bench/results/mnist_optimizers.json
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import time

import lqbench  # noqa: F401  (before tensorflow)

import larq as lq
import tensorflow as tf

import numpy as np

import lqbench.algorithms
import lqbench.data
from lqbench import continuous, recipes

PAPER = {"fp": 1.45, "ste": 1.54, "cb": 1.27}
ALGORITHMS = ("dfa", "drtp", "hsic", "sigprop")
ALL_ROWS = "fp,ste,cb,bin_ste,dfa,drtp,hsic,sigprop,bop,bop2,bnew,proxquant,bmd"


def binary_mlp(width: int, hidden: int = 3) -> tf.keras.Model:
    """784-W-W-W-10, binary hidden kernels and sign activations, real first/last layers, BN."""
    inputs = tf.keras.Input((28, 28, 1))
    x = tf.keras.layers.Flatten()(inputs)
    for i in range(hidden):
        kw = {} if i == 0 else dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                                     kernel_constraint="weight_clip")
        x = lq.layers.QuantDense(width, use_bias=False, name=f"dense{i + 1}", **kw)(x)
        x = tf.keras.layers.BatchNormalization(momentum=0.9, name=f"bn{i + 1}")(x)
    outputs = lq.layers.QuantDense(10, input_quantizer="ste_sign", name="logits")(x)
    return tf.keras.Model(inputs, outputs)


STEPS = {"per_epoch": None}


def run(name, model, optimizer, epochs, train, test, lr, hparams=None, schedule="linear", algorithm=None):
    start = time.time()
    trainer = lqbench.algorithms.build(algorithm, model) if algorithm else model
    history = recipes.fit(trainer, train, epochs=epochs, optimizer=optimizer, learning_rate=lr, schedule=schedule,
                          steps_per_epoch=STEPS["per_epoch"], verbose=2, hparams=hparams or {})
    seconds = time.time() - start
    model.compile(loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    _, accuracy = model.evaluate(test, verbose=0)
    row = {"name": name, "recipe": optimizer, "algorithm": algorithm or "bp", "epochs": epochs, "steps_per_epoch": STEPS["per_epoch"],
           "width": model.get_layer("dense1").units, "learning_rate": lr, "schedule": schedule,
           "hparams": {k: (list(v) if isinstance(v, tuple) else v) for k, v in (hparams or {}).items()},
           "test_error_percent": round(100 * (1 - accuracy), 2), "train_seconds": round(seconds, 1),
           "phases": getattr(history, "phases", []),
           "final_train_accuracy": float(history.history["accuracy"][-1])}
    pcfs = continuous.pcf_layers(model)
    if pcfs:
        row["pcf_slopes"] = [round(float(p.slope.numpy()), 4) for p in pcfs]
        row["pcf_scales"] = [round(float(p.scale.numpy()), 4) for p in pcfs]
        row["binary_activations"] = all(p.is_binary for p in pcfs)
    print(json.dumps(row), flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3, help="epoch budget of every run")
    parser.add_argument("--width", type=int, default=2048, help="hidden width of the Table 1 MLPs")
    parser.add_argument("--binary-width", type=int, default=2048, help="hidden width of the fully binary MLPs")
    parser.add_argument("--steps-per-epoch", type=int, default=None,
                        help="optimizer steps per recipe 'epoch' (default: one pass over the 54k images); "
                             "smaller values let multi-phase recipes fit a small budget")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rows", default=ALL_ROWS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="bench/results/mnist_optimizers.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("LQBENCH_DATA_DIR", str(pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"))
    names = args.rows.split(",")
    unknown = [n for n in names if n not in ALL_ROWS.split(",")]
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}; allowed: {ALL_ROWS}")
    test = lqbench.data.load("mnist", "test", batch_size=1000)
    e, w, bw = args.epochs, args.width, args.binary_width
    STEPS["per_epoch"] = args.steps_per_epoch
    command = "python bench/mnist_optimizers.py " + " ".join(os.sys.argv[1:] if argv is None else argv)
    runs, started = [], time.time()
    for seed in args.seeds:
        train = lqbench.data.load("mnist", "train", batch_size=args.batch_size, seed=seed)
        steps = args.steps_per_epoch or recipes.steps_in(train)
        if args.steps_per_epoch:
            train = train.repeat()
        for row in names:
            tf.keras.backend.clear_session()
            tf.keras.utils.set_random_seed(seed)
            result = run_row(row, seed, e, w, bw, steps, train, test, args.lr)
            result.update(seed=seed, row=row)
            runs.append(result)
            summary = {"benchmark": "MNIST MLP 784-W-W-W-10 (W per row)", "command": command,
                       "paper_002_table1_test_error": PAPER, "epochs_per_run": e, "steps_per_epoch": steps,
                       "batch_size": args.batch_size, "train_split": "54k (lqbench.data 'train')",
                       "seeds": args.seeds, "machine": platform.platform(), "tensorflow": tf.__version__,
                       "seconds": round(time.time() - started, 1), "rows": aggregate(runs, names),
                       "runs": runs}
            pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            pathlib.Path(args.out).write_text(json.dumps(summary, indent=2))


def run_row(row, seed, e, w, bw, steps, train, test, lr):
    """One training run of the row ``row`` (see the module docstring)."""
    if row == "fp":
        model = continuous.mlp(hidden=(w,) * 3, activation="pcf")
        for layer in continuous.pcf_layers(model):
            layer.trainable = False  # clipping activation, m = 0.5, alpha = 2 fixed
        return run("full precision (clipping)", model, "adam", e, train, test, lr)
    if row == "ste":
        return run("binary activations, STE", continuous.mlp(hidden=(w,) * 3, activation="ste"), "adam", e,
                   train, test, lr)
    if row == "cb":
        return run("continuous binarization", continuous.mlp(hidden=(w,) * 3, activation="pcf"), "cb", e,
                   train, test, lr,
                   {"slope_regularizer": "l2", "slope_lambdas": (1.0, 1.0, 1.0), "pretrain_fraction": 0.4})
    if row == "bin_ste":
        return run("W1A1 BP (STE, Adam on latent weights)", binary_mlp(bw), "ste", e, train, test, lr)
    if row in ALGORITHMS:
        return run(f"W1A1 {row.upper() if row != 'sigprop' else 'SigpropTL'} (Adam on latent weights)",
                   binary_mlp(bw), "ste", e, train, test, lr, algorithm=row)
    if row in ("bop", "bop2"):
        return run(f"W1A1 {row.capitalize()}", binary_mlp(bw), row, e, train, test, lr,
                   {"gamma": 1e-3, "threshold": 1e-6, "gamma_schedule": "linear"})
    if row == "bnew":
        return run("W1A1 BNEW", binary_mlp(bw), "bnew", e, train, test, lr,
                   {"reg": 10.0 / (steps * e), "phase_fractions": (0.34, 0.33, 0.33)})
    if row == "proxquant":
        return run("W1A1 ProxQuant (L1)", binary_mlp(bw), "proxquant", e, train, test, lr,
                   {"reg_rate": 1.0 / lr / steps, "freeze_fraction": 0.67})
    if row == "bmd":
        return run("W1A1 BMD", binary_mlp(bw), "bmd", e, train, test, lr,
                   {"rho": 1.1, "interval": max(1, steps * e // 60), "finetune_fraction": 0.34})
    raise ValueError(f"unknown row {row!r}; allowed: {ALL_ROWS}")


def aggregate(runs, names):
    """Mean and (sample) standard deviation of the test error of each row over its seeds."""
    rows = []
    for name in names:
        errors = [r["test_error_percent"] for r in runs if r["row"] == name]
        if not errors:
            continue
        first = next(r for r in runs if r["row"] == name)
        rows.append({"row": name, "name": first["name"], "width": first["width"], "seeds": len(errors),
                     "test_error_mean": round(float(np.mean(errors)), 2),
                     "test_error_std": round(float(np.std(errors, ddof=1)), 2) if len(errors) > 1 else None,
                     "paper_test_error": PAPER.get(name),
                     "train_seconds_mean": round(float(np.mean([r["train_seconds"] for r in runs if r["row"] == name])), 1)})
    return rows


if __name__ == "__main__":
    main()
