"""Where the time of a segment-by-segment training step goes (issue #13 item 2).

Times variants of one training step on a zoo model in graph mode (no XLA), all built in this
process and timed in alternating rounds (``--rounds`` x ``--steps`` steps each, after tracing
and one warm-up step) so that load drifts hit every variant alike. Variants are
``METHOD[:VARIANT]``:

- ``bp``, ``dfa``, ``drtp``, ``hsic``, ``sigprop``: the method as built by default;
- ``:segment`` / ``:step``: ``update="segment"`` (one optimizer apply per segment) or
  ``"step"`` (one apply over every segment's gradients at the end of the step);
- ``:nobarrier``: segments not ordered at all (the executor may run every segment's forward
  pass first, as one tape over the gated network would): the time the ordering costs;
- ``:nofence``: segments ordered through their tensor reads only (lqbench before the ops that
  read no activation, e.g. DRTP's signals, were made to wait for the previous segment too);
- ``hsic:autodiff``: HSIC's kernel products \(Z Z^\top\) differentiated by TensorFlow's matmul
  gradient (two products) instead of `lqbench.algorithms.hsic.gram`'s one;
- ``sigprop:whole``: SigpropTL's weight layers run once on the whole \(2B\) batch of pass 2
  (lqbench before they ran on each half: the clean half's output is then a slice, and the
  weight gradient goes through the slice's gradient and covers \(2B\) samples);
- ``:pass1`` (SigpropTL): the segments of pass 2 not run (pass 1 and the output layer's update);
- ``:forward``: every segment's forward pass and local loss, without its gradient or update
  (the local losses' metrics keep them in the graph: HSIC, SigpropTL).

The last six are measurement variants, not options of lqbench. Synthetic batch (seeded
uniform images, random labels), Adam (legacy) 1e-4; seconds per step: median and fastest.

    .venv/bin/python bench/segment_cost.py --variants bp drtp drtp:step drtp:nobarrier drtp:nofence hsic hsic:autodiff
    .venv/bin/python bench/segment_cost.py --variants bp sigprop sigprop:whole sigprop:pass1 sigprop:forward
"""
from __future__ import annotations

import argparse
import contextlib
import json
import time

SHAPES = {"binarynet_mlp": (28, 28, 1), "lenet": (28, 28, 1)}  # others: (32, 32, 3)


def build(variant: str, model: str, batch_size: int, x, y):
    """Build, compile (graph mode), trace and warm up one variant; returns ``(step, first_s)``."""
    import lqbench  # tf-keras before TensorFlow
    import numpy as np
    import tensorflow as tf

    from lqbench import algorithms, models
    from lqbench.algorithms import base, hsic

    method, _, option = variant.partition(":")
    tf.keras.utils.set_random_seed(0)
    net = models.build(model, SHAPES.get(model, (32, 32, 3)), 10, lqbench.Binarization())
    trainer = algorithms.build(method, net, seed=0, **({"update": option} if option in ("segment", "step") else {}))
    if option == "nobarrier":
        run_ops = trainer.graph.run_ops
        trainer.graph.run_ops = lambda ops, env, training, barrier=None: run_ops(ops, env, training, None)
    if option == "whole":
        trainer._split = frozenset()
    train_segments = trainer._train_segments
    if option == "pass1":
        trainer._train_segments = lambda *args, **kwargs: None
    if option == "forward":
        def forward_only(inputs, segment_loss, *args, **kwargs):
            def loss(segment, env):
                segment_loss(segment, env)  # its metric update keeps the forward pass and the loss
                return None

            return train_segments(inputs, loss, *args, **kwargs)

        trainer._train_segments = forward_only
    trainer.compile(tf.keras.optimizers.legacy.Adam(1e-4), jit_compile=False)
    function = trainer.make_train_function(force=True)
    iterator = iter(tf.data.Dataset.from_tensors((x, y)).repeat())

    def step():
        for value in tf.nest.flatten(function(iterator)):
            np.asarray(value)

    fence, gram = base._after, hsic.gram
    if option in ("nofence", "nobarrier"):
        base._after = lambda barrier: contextlib.nullcontext()
    if option == "autodiff":
        hsic.gram = lambda z: tf.matmul(z, z, transpose_b=True)
    try:
        start = time.perf_counter()
        step()  # traces: the patches are read at trace time only
        first = time.perf_counter() - start
    finally:
        base._after, hsic.gram = fence, gram
    step()
    return step, first


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", default=["bp", "drtp", "drtp:step", "drtp:nofence", "hsic"])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    import numpy as np

    import lqbench  # noqa: F401  (tf-keras before TensorFlow)
    import tensorflow as tf

    rng = np.random.default_rng(0)
    shape = SHAPES.get(args.model, (32, 32, 3))
    x = tf.constant(rng.uniform(-1, 1, (args.batch_size, *shape)).astype(np.float32))
    y = tf.constant(rng.integers(0, 10, args.batch_size).astype(np.int32))
    built = {v: build(v, args.model, args.batch_size, x, y) for v in args.variants}
    seconds = {v: [] for v in args.variants}
    for r in range(args.rounds):
        for v in args.variants if r % 2 == 0 else args.variants[::-1]:
            step = built[v][0]
            for _ in range(args.steps):
                start = time.perf_counter()
                step()
                seconds[v].append(time.perf_counter() - start)
    bp = float(np.median(seconds["bp"])) if "bp" in seconds else None
    for v in args.variants:
        median = float(np.median(seconds[v]))
        print(json.dumps({"model": args.model, "batch_size": args.batch_size, "variant": v,
                          "seconds_per_step": round(median, 4), "fastest_s": round(float(np.min(seconds[v])), 4),
                          "over_bp": round(median / bp, 2) if bp else None, "first_step_s": round(built[v][1], 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
