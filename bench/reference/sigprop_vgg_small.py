#!/usr/bin/env python3
r"""The authors' SigpropTL (``Pepita``) and backprop on the main job's network, in their code.

Issue #14 item 8: lqbench's SigpropTL stays at chance on ``lqbench run``'s network (VGG-small
width 0.25, W1A1 except first/last layers, embedded 8x8 digits). This script trains the same
network with the code of paper 000's authors (``BenCrulis/binary_nn_extended`` @212664d,
imported at run time from a checkout, never committed): a PyTorch twin of lqbench's
``vgg_small(width_multiplier=0.25)`` -- convolutions 32-32-M-64-64-M-128-128-M (3x3, padding 1,
no bias), BN, ReLU, then ``Linear(128, 10)`` -- made binary by their
``replace_activations_to_sign`` and ``apply_binarization_parametrization`` (first conv and
classifier kept float), their per-batch driver (``training_epoch``), ``clip_weights_for_binary_layers``
after every batch, Adam lr 1e-3, weight decay 1e-5, batch 64, 15 epochs (``lqbench run``'s
settings), their ``Pepita`` class (SigpropTL) or plain backprop.

The twin is the same architecture under the authors' conventions, not a weight copy of the
Keras model: PyTorch's initialisation, zero padding, the sign in place of the ReLU before
max-pooling (``conv -> BN -> sign -> pool``), sign(0) = -1, no hard tanh. Weight-level
equality of the two SigpropTL updates is shown on paper 000's CNN by ``seed000.py``.

Two steps (data from lqbench, the training with torch):

    .venv/bin/python bench/reference/sigprop_vgg_small.py --dump /tmp/digits.npz
    /work/peervenv/bin/python bench/reference/sigprop_vgg_small.py --data /tmp/digits.npz \
        --peer /work/refsrc/BenCrulis+binary_nn_extended --algos bp pepita --seeds 0 1

Prints one JSON line per run (per-epoch test accuracy) and writes
``bench/results/sigprop_vgg_small_digits.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import _harness as H  # bench/reference/ is on sys.path when a script runs

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COMMIT = "212664d5a526566275ee9ff44119985bf8113189"


def dump(path):
    """Write lqbench's digits splits (its normalisation) to ``path`` (.npz), in NCHW."""
    import lqbench  # noqa: F401
    from lqbench import data

    arrays = {}
    for split in ("train", "test"):
        xs, ys = [], []
        for x, y in data.load("digits", split, batch_size=4096, seed=0):
            xs.append(x.numpy()), ys.append(y.numpy())
        arrays[f"x_{split}"] = np.concatenate(xs).transpose(0, 3, 1, 2).astype("float32")
        arrays[f"y_{split}"] = np.concatenate(ys).astype("int64")
    np.savez(path, **arrays)
    print(f"wrote {path}: " + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()))


def vgg_small(nn, width=0.25, classes=10):
    layers, cin = [], 1
    for item in (128, 128, "M", 256, 256, "M", 512, 512, "M"):
        if item == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        cout = int(round(item * width))
        layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        cin = cout

    class VGGSmall(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(cin, classes))

        def forward(self, x):
            return self.classifier(self.features(x))

    return VGGSmall(), {"output_layer": "classifier.1", "prevent_binarization": ["features.0", "classifier.1"]}


def run(algo, seed, args, arrays):
    import torch

    from binary_nn.models.common.binary.binarization import (
        apply_binarization_parametrization, clip_weights_for_binary_layers, replace_activations_to_sign)
    from binary_nn.training.training import training_epoch
    from utils.seed import seed_everything

    torch.set_num_threads(2)
    seed_everything(seed)
    model, config = vgg_small(torch.nn)
    replace_activations_to_sign(model, unsaturating=False)
    apply_binarization_parametrization(model, config["prevent_binarization"])
    if algo == "pepita":
        from binary_nn.algorithms.pepita import Pepita
        callback = Pepita(10, config["output_layer"])
    else:
        callback = None
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-5)
    xtr, ytr = torch.from_numpy(arrays["x_train"]), torch.from_numpy(arrays["y_train"])
    xte, yte = torch.from_numpy(arrays["x_test"]), torch.from_numpy(arrays["y_test"])
    generator = torch.Generator().manual_seed(seed)
    history = []
    started = time.time()
    for _ in range(args.epochs):
        order = torch.randperm(len(xtr), generator=generator)
        batches = [(xtr[order[i:i + 64]], ytr[order[i:i + 64]]) for i in range(0, len(xtr), 64)]
        for _ in training_epoch(model, batches, opt, torch.nn.functional.cross_entropy, False,
                                train_callback=callback, device=torch.device("cpu")):
            clip_weights_for_binary_layers(model)
        with torch.inference_mode():
            model.eval()
            history.append(round(float((model(xte).argmax(1) == yte).float().mean()), 4))
    return {"algo": algo, "seed": seed, "test_acc_per_epoch": history, "final_test_acc": history[-1],
            "best_test_acc": max(history), "wall_s": round(time.time() - started, 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dump", help="write lqbench's digits to this .npz and exit (lqbench venv)")
    parser.add_argument("--data", help="the .npz written by --dump")
    parser.add_argument("--peer", default="/work/refsrc/BenCrulis+binary_nn_extended")
    parser.add_argument("--algos", nargs="+", default=["bp", "pepita"], choices=["bp", "pepita"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--output", default=os.path.join(ROOT, "bench", "results",
                                                         "sigprop_vgg_small_digits.json"))
    args = parser.parse_args(argv)
    if args.dump:
        dump(args.dump)
        return 0
    if not args.data:
        parser.error("--data (or --dump) is required")
    H.import_peer(args.peer)
    arrays = dict(np.load(args.data))
    runs = []
    for algo in args.algos:
        for seed in args.seeds:
            result = run(algo, seed, args, arrays)
            print(json.dumps(result), flush=True)
            runs.append(result)
    summary = {}
    for algo in args.algos:
        accs = [r["final_test_acc"] for r in runs if r["algo"] == algo]
        summary[algo] = {"mean_final_test_acc": round(float(np.mean(accs)), 4), "std": round(float(np.std(accs)), 4)}
    out = {"reference": {"repo": "BenCrulis/binary_nn_extended", "commit": COMMIT,
                         "file": "binary_nn/algorithms/pepita.py", "symbol": "Pepita"},
           "network": "VGG-small width 0.25 (32-32-M-64-64-M-128-128-M, BN, sign), first conv and classifier float, "
                      "embedded 8x8 digits, lqbench's normalisation",
           "settings": {"epochs": args.epochs, "batch_size": 64, "optimizer": "Adam", "lr": args.lr,
                        "weight_decay": 1e-5, "seeds": args.seeds},
           "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
           "runs": runs, "summary": summary}
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        f.write(json.dumps(out, indent=1) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
