"""Train a small binary MLP with one lqbench algorithm and optimizer, alone or as one worker of a
`MultiWorkerMirroredStrategy` cluster, and save the final weights (used by test_distribute.py).

usage: mwms_train.py ALGORITHM OUT.npz [--optimizer NAME] [--distill] [--worker INDEX --ports P0 P1]

``--distill``: distil from a seeded float MLP (alpha 0.7, temperature 2, ce_weight 0.5).

Imported, `train` runs the same training alone in the calling process (the test's single-process
reference, without a process of its own) and returns the weights ``{"init<i>": ..., "final<i>": ...}``.
"""
import argparse
import json
import os
import sys


def train(algorithm: str, optimizer: str = "sgd", distill: bool = False, steps: int = 4, global_batch: int = 32,
          multiworker: bool = False) -> dict:
    """The weights before and after one epoch of ``steps`` global batches (TF_CONFIG set first if ``multiworker``)."""
    import lqbench  # noqa: F401  (before tensorflow)
    import larq as lq
    import numpy as np
    import tensorflow as tf

    from lqbench import algorithms, distillation, distribute, recipes

    strategy = distribute.get_strategy("multiworker" if multiworker else "default")
    tf.keras.utils.set_random_seed(7)

    rng = np.random.default_rng(0)
    n = steps * global_batch
    x = rng.normal(size=(n, 20)).astype(np.float32)
    y = (x[:, :5].sum(axis=1) > 0).astype(np.int32) + 2 * (x[:, 5:10].sum(axis=1) > 0).astype(np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(global_batch)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = dataset.with_options(options)

    binarization = lqbench.Binarization()
    with strategy.scope():
        inputs = tf.keras.Input((20,))
        h = lq.layers.QuantDense(64, kernel_initializer="glorot_uniform", **binarization.dense_kwargs("first"))(inputs)
        h = lq.layers.QuantDense(64, **binarization.dense_kwargs("hidden"))(h)
        outputs = lq.layers.QuantDense(4, **binarization.dense_kwargs("last"))(h)
        model = tf.keras.Model(inputs, outputs)
        teacher = None
        if distill:
            t_inputs = tf.keras.Input((20,))
            float_mlp = tf.keras.Model(t_inputs, tf.keras.layers.Dense(4)(tf.keras.layers.Dense(16, "tanh")(t_inputs)))
            teacher = distillation.Distillation(float_mlp, alpha=0.7, temperature=2.0, ce_weight=0.5)
        trainer = algorithms.build(algorithm, model, seed=3, distillation=teacher)
        method = recipes.method_for(optimizer)  # a method name or an earlier alias (sgd, adam)
        method.prepare(model)
        trainer.compile(
            optimizer=method.optimizer(0.05),
            loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    initial = [v.numpy() for v in model.weights]
    trainer.fit(dataset, epochs=1, verbose=0)
    final = [v.numpy() for v in model.weights]
    return {**{f"final{i}": w for i, w in enumerate(final)}, **{f"init{i}": w for i, w in enumerate(initial)}}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("algorithm")
    parser.add_argument("output")
    parser.add_argument("--worker", type=int, default=None)
    parser.add_argument("--ports", type=int, nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--global-batch", type=int, default=32)
    parser.add_argument("--optimizer", default="sgd")
    parser.add_argument("--distill", action="store_true")
    args = parser.parse_args()
    if args.worker is not None:  # before TensorFlow is imported
        os.environ["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": [f"127.0.0.1:{p}" for p in args.ports]},
             "task": {"type": "worker", "index": args.worker}}
        )
    weights = train(args.algorithm, args.optimizer, args.distill, args.steps, args.global_batch,
                    multiworker=args.worker is not None)
    import numpy as np

    np.savez(args.output, **weights)
    print("done", args.algorithm, file=sys.stderr)
