"""XLA or graph mode: does ``xla = "auto"`` pick the fastest mode? (issue #13 part 1)

For every (zoo model, algorithm) pair asked for, in its own fresh process:

1. ``auto``: `lqbench.execution.decide("auto", ...)` on the built trainer for a long run
   (``total_steps`` = ``--epochs`` epochs of the dataset), as ``lqbench train`` does; its
   decision and timings are recorded;
2. an independent check: `lqbench.execution.measure` again (fresh tracing and compilation),
   ``--steps`` alternating timed steps of each mode; the steady-state seconds per step of each
   mode, and whether auto's mode is within 5 % of the faster one (the target of issue #13).

Epoch times are ``first_step_s + (steps_per_epoch - 1) * seconds_per_step`` of the check, for
the dataset's training split at the batch size (CIFAR-10: 45000 images, 352 steps of 128),
labelled as estimates; `bench/cifar_epoch.py` measures real epochs.

Zoo models are timed on small inputs so that every model fits the budget of a 2-core machine
(`SHAPES`: 32x32x3 for the convolutional ones, 28x28x1 for the MLP, batch ``--batch-size``,
``BATCH`` overrides for the heaviest); the mode ranking is a property of the layer types and
sizes, so the inputs are stated with every row.

    .venv/bin/python bench/execution_modes.py --models resnet20 --algorithms bp dfa drtp hsic sigprop
    .venv/bin/python bench/execution_modes.py --models lenet binarynet_mlp vgg_small --algorithms bp
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import time
import pathlib
import subprocess
import sys

from invocations import record_invocation  # bench/ is on sys.path when a script runs

HERE = pathlib.Path(__file__).resolve().parent
TARGET = 1.05  # default mode's step time at most 5 % above the fastest mode's
SHAPES = {"binarynet_mlp": (28, 28, 1), "lenet": (28, 28, 1)}  # others: (32, 32, 3)
BATCH = {"vgg19": 32, "mobilenet_v2": 32, "mlp_mixer": 32, "reactnet_a": 32}
MODEL_ARGS = {"mlp_mixer": {"patch_size": 4}}
TRAIN_IMAGES = {(28, 28, 1): 54000, (32, 32, 3): 45000}  # the training splits lqbench uses (val held out)


def one(model: str, algorithm: str, batch_size: int, steps: int, epochs: int) -> dict:
    """Run in the child: decide, then check (see the module doc)."""
    import time

    import lqbench
    import tensorflow as tf

    from lqbench import algorithms, execution, models

    shape = SHAPES.get(model, (32, 32, 3))
    batch_size = BATCH.get(model, batch_size)
    tf.keras.utils.set_random_seed(0)
    net = models.build(model, shape, 10, lqbench.Binarization(), **MODEL_ARGS.get(model, {}))
    trainer = algorithms.build(algorithm, net, seed=0)
    steps_per_epoch = -(-TRAIN_IMAGES[shape] // batch_size)
    start = time.perf_counter()
    decision = execution.decide("auto", trainer, batch_shape=(batch_size, *shape), num_classes=10,
                                total_steps=epochs * steps_per_epoch)
    spec = (tf.TensorSpec([None, *shape], tf.float32), tf.TensorSpec([None], tf.int32))
    check = execution.measure(trainer, spec, batch_size, 10, None, min_steps=steps, max_steps=steps, budget_s=0)
    fastest = min(check, key=lambda m: check[m]["seconds_per_step"])
    chosen = decision.mode
    ratio = check[chosen]["seconds_per_step"] / check[fastest]["seconds_per_step"]
    return {"model": model, "algorithm": algorithm, "input_shape": list(shape), "batch_size": batch_size,
            "params": int(net.count_params()), "steps_per_epoch": steps_per_epoch,
            "auto": decision.to_dict(), "check": check, "fastest": fastest, "chosen": chosen,
            "chosen_over_fastest": ratio, "within_target": ratio <= TARGET,
            "xla_over_graph": check["on"]["seconds_per_step"] / check["off"]["seconds_per_step"],
            "epoch_s": {m: v["first_step_s"] + (steps_per_epoch - 1) * v["seconds_per_step"]
                        for m, v in check.items()},
            "seconds": time.perf_counter() - start}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet20"])
    parser.add_argument("--algorithms", nargs="+", default=["bp"])
    parser.add_argument("--also", nargs="*", default=[], metavar="MODEL:ALGORITHM", help="extra pairs")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per mode in the check")
    parser.add_argument("--epochs", type=int, default=10, help="run length auto decides for")
    parser.add_argument("--out", default=str(HERE / "results" / "execution_modes.json"))
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "ALGORITHM"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("ROW " + json.dumps(one(*args.child, args.batch_size, args.steps, args.epochs)), flush=True)
        return 0
    out_path = pathlib.Path(args.out)
    out = json.loads(out_path.read_text()) if out_path.exists() and not os.environ.get("LQBENCH_RUN_ALL") else {}
    out.setdefault("rows", [])
    started, begin = datetime.datetime.now().isoformat(timespec="seconds"), time.perf_counter()
    out["settings"] = {"steps": args.steps, "epochs": args.epochs, "target": TARGET}
    failed = 0
    pairs = [(m, a) for m in args.models for a in args.algorithms] + [tuple(p.split(":", 1)) for p in args.also]
    for model, algorithm in pairs:
        if True:
            command = [sys.executable, __file__, "--child", model, algorithm, "--batch-size", str(args.batch_size),
                       "--steps", str(args.steps), "--epochs", str(args.epochs)]
            proc = subprocess.run(command, capture_output=True, text=True)
            lines = [line[4:] for line in proc.stdout.splitlines() if line.startswith("ROW ")]
            if proc.returncode or not lines:
                failed += 1
                tail = proc.stderr.strip().splitlines()[-3:]
                row = {"model": model, "algorithm": algorithm, "error": " | ".join(tail)}
            else:
                row = json.loads(lines[-1])
            row["command"] = "python bench/execution_modes.py --models " + model + " --algorithms " + algorithm
            out["rows"] = [r for r in out["rows"] if (r["model"], r["algorithm"]) != (model, algorithm)] + [row]
            print(json.dumps({k: row.get(k) for k in ("model", "algorithm", "chosen", "fastest", "chosen_over_fastest",
                                                      "xla_over_graph", "error")}), flush=True)
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(out, indent=2) + "\n")
    record_invocation(out, argv, started, time.perf_counter() - begin, "execution_modes.py")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
