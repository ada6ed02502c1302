"""Training cost of backprop and its alternatives: peak memory, time per epoch, accuracy.

Every run is a fresh subprocess (`lqbench.profiling.measure`, CPU allocator settings of
methods.md §3). Three parts, written to ``bench/results/training_cost.json``:

1. ``memory``: peak training memory (above the post-build, post-compile baseline) and time per
   step of all five methods on a binary deep MLP (784-2048x3-10, BN; the zoo's
   ``binarynet_mlp``) and a binary VGG-style CNN (conv 64-64-pool-128-128-pool-dense, BN, the
   net of methods.md §3), MNIST batch 128, with XLA (lqbench's default) and without.
   Modes: ``eager`` (``run_eagerly=True``: Python frees each segment's tensors when its tape is
   dropped), ``graph`` (``tf.function`` without XLA, ``--no-xla``: the executor frees a tensor
   after its last consumer) and ``xla`` (``jit_compile=True``, lqbench's default: one compiled
   program per step).
2. ``speed``: the binary MLP 784-512-512-10 (middle layer binary, no batch norm), Adam 1e-3,
   coupled weight decay 1e-5, batch 128, 3 epochs of MNIST (``--epochs``; median and fastest
   epoch reported, as epoch times on a shared machine vary by tens of percent): seconds/epoch and test accuracy of
   each method, to compare with the authors' PyTorch code measured on the same machine.
3. ``overhead``: lqbench's ``bp`` wrapper against plain Keras ``model.fit`` on that MLP, one
   epoch each, alternating, ``--rounds`` times in one process (``bp_overhead`` in the results).

Usage (run alone, it takes ~20 minutes on 2 CPU cores)::

    .venv/bin/python bench/training_cost.py [--part memory|speed|overhead|all] [--steps 5] [--modes eager xla]
        [--epochs 3] [--out bench/results/training_cost.json]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import sys
import time

from invocations import record_invocation  # bench/ is on sys.path when a script runs

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results" / "training_cost.json"
METHODS = ("bp", "dfa", "drtp", "hsic", "sigprop")
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # the authors' MNIST transform
# the authors' PyTorch code (github.com/BenCrulis/binary_nn_extended) measured on this machine
AUTHORS = {
    "seconds_per_epoch": {"bp": 3.1, "dfa": 3.7, "drtp": 3.3, "hsic": 4.1, "sigprop": 4.4},
    "test_accuracy_3_epochs": {"bp": 0.938, "dfa": 0.962, "drtp": 0.927, "hsic": 0.877, "sigprop": 0.229},
}


def _mnist_dir() -> pathlib.Path:
    root = os.environ.get("LQBENCH_DATA_DIR") or str(HERE.parent.parent / "shared" / "data")
    return pathlib.Path(root) / "mnist"


def load_mnist(split: str):
    """The official MNIST split (``train``: all 60k images, ``test``) as float32 in [0, 1]."""
    import numpy as np

    from lqbench.data.formats import read_idx_pair

    prefix, count = ("train", 60000) if split == "train" else ("t10k", 10000)
    x, y = read_idx_pair(_mnist_dir(), prefix, count, hint="set LQBENCH_DATA_DIR to the folder holding mnist/")
    return x.astype(np.float32) / 255.0, y.astype(np.int64)


def build_model(name: str):
    import larq as lq
    import tensorflow as tf

    import lqbench
    from lqbench import models

    b = lqbench.Binarization()
    if name == "deep_mlp":
        return models.build("binarynet_mlp", (28, 28, 1), 10, b)
    if name == "vgg_cnn":
        x = tf.keras.Input((28, 28, 1))
        h = x
        for i, (filters, pool) in enumerate(((64, False), (64, True), (128, False), (128, True))):
            role = "first" if i == 0 else "hidden"
            h = lq.layers.QuantConv2D(filters, 3, padding="same", use_bias=False, **b.conv_kwargs(role))(h)
            h = tf.keras.layers.BatchNormalization()(h)
            if pool:
                h = tf.keras.layers.MaxPool2D()(h)
        h = tf.keras.layers.Flatten()(h)
        return tf.keras.Model(x, lq.layers.QuantDense(10, **b.dense_kwargs("last"))(h), name="vgg_cnn")
    if name == "mlp_512":
        x = tf.keras.Input((28, 28, 1))
        h = tf.keras.layers.Flatten()(x)
        h = lq.layers.QuantDense(512, **b.dense_kwargs("first"))(h)
        h = lq.layers.QuantDense(512, **b.dense_kwargs("hidden"))(h)
        return tf.keras.Model(x, lq.layers.QuantDense(10, **b.dense_kwargs("last"))(h), name="mlp_512")
    raise ValueError(f"unknown bench model {name!r}; allowed: deep_mlp, vgg_cnn, mlp_512")


def setup(method: str, model: str, epochs: int = 1, steps: int | None = None, jit: bool | str = True,
          batch_size: int = 128, weight_decay: float = 0.0, evaluate: bool = False, seed: int = 0,
          eager: bool = False, normalize: bool = False, algorithm_args: dict | None = None, warmup: bool = True):
    """Build, compile and warm up; returns ``train()`` (see `lqbench.profiling.measure`).

    ``jit``: True/False, or ``"auto"``, ``"on"``, ``"off"`` (`lqbench.execution.decide` for the
    run's steps; the decision is returned in the result as ``execution``). ``normalize``:
    ``(x - 0.1307) / 0.3081`` as the authors' MNIST transform (else pixels in [0, 1]).
    ``warmup=False``: no warm-up steps before ``train()`` (its first step then traces/compiles,
    and a memory baseline taken before it is the post-build one, as in the authors' harness).
    """
    import lqbench  # noqa: F401
    import lqbench.algorithms
    import lqbench.optimizers
    import tensorflow as tf

    from lqbench import execution

    tf.keras.utils.set_random_seed(seed)
    x, y = load_mnist("train")
    if steps is not None:
        # memory runs: exactly `steps` batches held as arrays from the start, so no dataset
        # copy or shuffle buffer is created inside the measured region
        x, y = x[: steps * batch_size], y[: steps * batch_size]
    if normalize:
        x = (x - MNIST_MEAN) / MNIST_STD
    if steps is None and normalize:
        # whole epochs: the data as tensors before the memory baseline (as the authors' harness
        # holds it), so that `fit` does not copy 188 MB of images inside the measured region
        x, y = tf.constant(x), tf.constant(y)
    net = build_model(model)
    optimizer = lqbench.optimizers.build("adam", learning_rate=1e-3, weight_decay=weight_decay)
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if method == "keras":
        trainer = net
    else:
        trainer = lqbench.algorithms.build(method, net, seed=seed, **(algorithm_args or {}))
    decision = None
    if isinstance(jit, str):
        decision = execution.decide(jit, trainer, batch_shape=(batch_size, *x.shape[1:]), num_classes=10,
                                    total_steps=epochs * -(-len(x) // batch_size))
        jit = decision.jit_compile
        tf.keras.utils.set_random_seed(seed)
    trainer.compile(optimizer, loss=loss, metrics=["accuracy"], jit_compile=jit and not eager, run_eagerly=eager)
    # warm-up: trace and compile (also for the last, smaller batch of an epoch: XLA compiles one
    # program per batch shape), then restore the initial weights and optimizer state
    if warmup:
        initial = net.get_weights()
        warm = 2 * batch_size + len(x) % batch_size
        trainer.fit(x[:warm], y[:warm], batch_size=batch_size, epochs=1, verbose=0)
        net.set_weights(initial)
        for v in optimizer.variables():
            v.assign(tf.zeros_like(v))

    class EpochTimes(tf.keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    def train():
        timer = EpochTimes()
        start = time.perf_counter()
        history = trainer.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=steps is None, verbose=0,
                              callbacks=[timer])
        fit_time = time.perf_counter() - start
        from lqbench import profiling

        peak_after_fit = profiling.peak_rss_bytes()[0]  # before the evaluation below
        result = {
            "epochs": epochs,
            "steps_per_epoch": -(-len(x) // batch_size),
            "fit_time_s": fit_time,
            "epoch_seconds": timer.seconds,
            "train_loss": [float(v) for v in history.history["loss"]],
            "peak_rss_after_fit_bytes": peak_after_fit,
        }
        result["seconds_per_step"] = fit_time / (epochs * result["steps_per_epoch"])
        if decision is not None:
            result["execution"] = decision.to_dict()
        if evaluate:
            xt, yt = load_mnist("test")
            if normalize:
                xt = (xt - MNIST_MEAN) / MNIST_STD
            result["test_accuracy"] = float(trainer.evaluate(xt, yt, batch_size=1000, verbose=0)[1])
        return result

    return train


# memory part: the zoo's binary CNNs at CIFAR-10 shape (32x32x3, 10 classes); their cost does not
# depend on pixel values, so they train on seeded random images (no dataset in the measurement)
ZOO_CNNS = {
    "vgg_small_w025": ("vgg_small", {"width_multiplier": 0.25}),
    "resnet20": ("resnet20", {}),
}
MEMORY_MODELS = ("deep_mlp", "vgg_cnn") + tuple(ZOO_CNNS)
# measured 2026-11-30: vgg_cnn graph BP 21 MiB above a 991 MiB baseline with oneDNN (freed
# buffers stay in its pool), 211 MiB above 736 MiB without
MEMORY_ENV = {"TF_ENABLE_ONEDNN_OPTS": "0"}


def setup_memory(method: str, model: str, steps: int, mode: str, batch_size: int = 128, seed: int = 0,
                 hparams: dict | None = None):
    """Like `setup` for the memory part, also for the zoo CNNs of `ZOO_CNNS` (random images)."""
    if model not in ZOO_CNNS:
        return setup(method, model, steps=steps, jit=mode == "xla", eager=mode == "eager",
                     batch_size=batch_size, seed=seed)
    import numpy as np
    import tensorflow as tf

    import lqbench
    import lqbench.algorithms
    import lqbench.optimizers
    from lqbench import models

    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    n = steps * batch_size
    x = rng.normal(size=(n, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, n)
    name, kwargs = ZOO_CNNS[model]
    net = models.build(name, (32, 32, 3), 10, lqbench.Binarization(), skip_connections=True, **kwargs)
    optimizer = lqbench.optimizers.build("adam", learning_rate=1e-3, weight_decay=0.0)
    trainer = lqbench.algorithms.build(method, net, seed=seed, **(hparams or {}))
    trainer.compile(optimizer, metrics=["accuracy"], jit_compile=mode == "xla", run_eagerly=mode == "eager")
    initial = net.get_weights()
    trainer.fit(x[: 2 * batch_size], y[: 2 * batch_size], batch_size=batch_size, epochs=1, verbose=0)
    net.set_weights(initial)
    for v in optimizer.variables():
        v.assign(tf.zeros_like(v))

    def train():
        start = time.perf_counter()
        history = trainer.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        fit_time = time.perf_counter() - start
        return {"epochs": 1, "steps_per_epoch": steps, "fit_time_s": fit_time,
                "train_loss": [float(v) for v in history.history["loss"]], "seconds_per_step": fit_time / steps}

    return train


def run_memory(steps: int, out: dict, modes=("eager", "graph", "xla"), models=MEMORY_MODELS) -> None:
    from lqbench import profiling

    rows = out.setdefault("memory", [])
    for mode in modes:
        for model in models:
            for method in METHODS:
                # oneDNN's CPU allocator (on by default on x86) pools freed memory, so the process
                # RSS cannot show a method freeing activations: memory runs turn oneDNN off
                p = profiling.measure(f"{__file__}:setup_memory", env=MEMORY_ENV, method=method, model=model,
                                      steps=steps, mode=mode)
                row = {"model": model, "method": method, "mode": mode, "steps": steps, "env": MEMORY_ENV,
                       "training_mib": p.training_bytes / 2**20, "peak_mib": p.peak_bytes / 2**20,
                       "baseline_mib": p.baseline_bytes / 2**20, "peak_source": p.peak_source,
                       "seconds_per_step": p.result["seconds_per_step"],
                       "seconds_per_epoch_469_steps": p.result["seconds_per_step"] * 469}
                rows.append(row)
                print(json.dumps(row), flush=True)
    for row in rows:
        bp = next(r for r in rows if r["model"] == row["model"] and r["mode"] == row["mode"] and r["method"] == "bp")
        row["memory_ratio_to_bp"] = row["training_mib"] / bp["training_mib"] if bp["training_mib"] else None
        row["time_ratio_to_bp"] = row["seconds_per_step"] / bp["seconds_per_step"]


def run_speed(out: dict, epochs: int = 3) -> None:
    from lqbench import profiling

    rows = out.setdefault("speed", [])
    out["speed_epochs"] = epochs
    for method in ("keras",) + METHODS:
        # normal allocator: the memory part's settings (mmap above 64 KiB) slow training down
        p = profiling.measure(f"{__file__}:setup", allocator_env=False, method=method, model="mlp_512",
                              epochs=epochs, jit=True, weight_decay=1e-5, evaluate=True)
        epoch_seconds = sorted(p.result["epoch_seconds"])
        row = {"method": method, "seconds_per_epoch": epoch_seconds[len(epoch_seconds) // 2],
               "min_seconds_per_epoch": epoch_seconds[0], "epoch_seconds": p.result["epoch_seconds"],
               "test_accuracy": p.result["test_accuracy"], "train_loss": p.result["train_loss"],
               "authors_seconds_per_epoch": AUTHORS["seconds_per_epoch"].get(method),
               "authors_test_accuracy": AUTHORS["test_accuracy_3_epochs"].get(method)}
        rows.append(row)
        print(json.dumps(row), flush=True)


def run_overhead(out: dict, rounds: int = 5) -> None:
    """lqbench's ``bp`` wrapper against plain Keras ``fit``, epochs alternating in one process.

    Both trainers are built and compiled (XLA) in this process and then trained one epoch each,
    in alternating order, ``rounds`` times, so that the machine's load drifts hit both alike;
    the overhead is the median of the per-round ratios bp / keras, minus 1.
    """
    trainers = {m: setup(m, "mlp_512", epochs=1, jit=True, weight_decay=1e-5) for m in ("keras", "bp")}
    seconds = {m: [] for m in trainers}
    for r in range(rounds):
        for m in (("keras", "bp") if r % 2 == 0 else ("bp", "keras")):
            seconds[m].append(trainers[m]()["epoch_seconds"][0])
    ratios = sorted(b / k for b, k in zip(seconds["bp"], seconds["keras"]))
    median = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    out["bp_overhead"] = {"rounds": rounds, "keras_epoch_seconds": seconds["keras"],
                          "bp_epoch_seconds": seconds["bp"],
                          "keras_seconds_per_epoch": median(seconds["keras"]),
                          "bp_seconds_per_epoch": median(seconds["bp"]),
                          "overhead": median(ratios) - 1.0}
    print(json.dumps(out["bp_overhead"]), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("memory", "speed", "overhead", "all"), default="all")
    parser.add_argument("--rounds", type=int, default=5, help="alternating epochs of the overhead part")
    parser.add_argument("--steps", type=int, default=5, help="training steps per memory run")
    parser.add_argument("--modes", nargs="+", choices=("eager", "graph", "xla"), default=["eager", "graph", "xla"],
                        help="execution modes of the memory part")
    parser.add_argument("--models", nargs="+", choices=MEMORY_MODELS, default=list(MEMORY_MODELS),
                        help="models of the memory part")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each speed run")
    parser.add_argument("--out", default=str(RESULTS), help="results file (JSON; updated part by part)")
    args = parser.parse_args(argv)
    results = pathlib.Path(args.out)
    out = json.loads(results.read_text()) if results.exists() else {}
    out["machine"] = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()}
    command = "python bench/training_cost.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.part in ("memory", "all"):
        out["memory"] = []
        out["memory_command"] = command
        started, start = datetime.datetime.now().isoformat(timespec="seconds"), time.perf_counter()
        run_memory(args.steps, out, modes=tuple(args.modes), models=tuple(args.models))
        made_by: dict = {}  # the memory part is replaced whole: only this run made it
        record_invocation(made_by, argv, started, time.perf_counter() - start, "training_cost.py")
        out["memory_invocations"] = made_by["invocations"]
    if args.part in ("speed", "all"):
        out["speed"] = []
        out["speed_command"] = command
        run_speed(out, epochs=args.epochs)
    if args.part in ("overhead", "all"):
        out["overhead_command"] = command
        run_overhead(out, rounds=args.rounds)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
