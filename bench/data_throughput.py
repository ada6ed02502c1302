"""Is the input pipeline fast enough? Images/s of lqbench.data pipelines vs BNN training.

Measures, on this machine:

1. ``mnist`` train pipeline (batch 128, shuffled, no augmentation): images/s over one full
   epoch, after a warm-up pass (real MNIST from ``LQBENCH_DATA_DIR``; skipped if absent);
2. the same with ``augment=True``;
3. a 32x32x3 pipeline with ``augment=True`` on a synthetic CIFAR-10-format dataset of
   ``--cifar-images`` images written (once) in the original python-batch format to
   ``--workdir``, optionally also resized with ``--image-size``;
4. training throughput of a small binary CNN (Larq ``QuantConv2D`` 64-64-pool-128-128-pool,
   dense; ``ste_sign`` input and kernel quantizers, first layer real-valued input; batch
   128; Adam; ``compile(jit_compile=True)``) on 32x32x3, fed (a) one constant batch (pure
   compute) and (b) the augmenting pipeline of 3 (end to end).

The pipeline is not the bottleneck when 1 and 3 are well above 4a, and 4b is close to 4a.

    python bench/data_throughput.py [--cifar-images 10000] [--train-steps 60] [--repeats 1]
        [--image-size 64] [--json out.json]
"""
import argparse
import json
import os
import pathlib
import pickle
import platform
import sys
import time

import lqbench  # noqa: F401  (selects tf-keras before TensorFlow)
import lqbench.data as data
import numpy as np
import tensorflow as tf

BATCH = 128


def pipeline_rate(make_dataset, warmup_batches=20):
    """Images/s of one full epoch of a fresh iterator, after ``warmup_batches`` of another."""
    ds = make_dataset()
    for i, _ in enumerate(ds):
        if i + 1 >= warmup_batches:
            break
    n, start = 0, time.perf_counter()
    for images, _ in ds:
        n += int(images.shape[0])
    seconds = time.perf_counter() - start
    return {"images": n, "seconds": round(seconds, 3), "images_per_s": round(n / seconds, 1)}


def write_synthetic_cifar(root: pathlib.Path, n_images: int, seed: int = 0) -> pathlib.Path:
    """A CIFAR-10 python-batch folder: 5 train batches of n/5 images, a test batch of n/5."""
    folder = root / "cifar-10-batches-py"
    if (folder / "test_batch").exists():
        with open(folder / "data_batch_1", "rb") as f:
            if len(pickle.load(f, encoding="bytes")[b"labels"]) == n_images // 5:
                return root
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per = n_images // 5
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"batch_label": name.encode(),
            b"data": rng.integers(0, 256, (per, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, per).tolist(),
            b"filenames": [b"synthetic.png"] * per,
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"c%d" % i for i in range(10)], b"num_cases_per_batch": per,
                     b"num_vis": 3072}, f, protocol=2)
    return root


def binary_cnn(input_shape=(32, 32, 3), num_classes=10):
    import larq as lq

    binary = dict(input_quantizer=lq.quantizers.SteSign(), kernel_quantizer=lq.quantizers.SteSign(),
                  kernel_constraint=lq.constraints.WeightClip(1.0), use_bias=False)
    first = dict(binary, input_quantizer=None)
    layers = tf.keras.layers
    inputs = tf.keras.Input(input_shape)
    x = inputs
    for i, (filters, pool) in enumerate([(64, False), (64, True), (128, False), (128, True)]):
        x = lq.layers.QuantConv2D(filters, 3, padding="same", pad_values=1.0,
                                  **(first if i == 0 else binary))(x)
        if pool:
            x = layers.MaxPool2D()(x)
        x = layers.BatchNormalization(momentum=0.9, scale=False)(x)
    x = layers.Flatten()(x)
    x = lq.layers.QuantDense(num_classes, **binary)(x)
    outputs = layers.Activation("softmax")(layers.BatchNormalization(momentum=0.9, scale=False)(x))
    model = tf.keras.Model(inputs, outputs)
    model.compile(tf.keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"],
                  jit_compile=True)
    return model


def training_rate(dataset, steps, warmup_steps=10):
    """Images/s of ``model.fit`` over ``steps`` batches, after a compiling warm-up epoch."""
    model = binary_cnn()
    model.fit(dataset.take(warmup_steps), epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(dataset.take(steps), epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    return {"images": steps * BATCH, "seconds": round(seconds, 3),
            "images_per_s": round(steps * BATCH / seconds, 1)}


def _record(results, key, value):
    results[key] = value
    print(f"{key}: {value}", file=sys.stderr, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cifar-images", type=int, default=10000)
    parser.add_argument("--train-steps", type=int, default=60)
    parser.add_argument("--image-size", type=int, default=0, help="also time the 32x32 pipeline resized to NxN")
    parser.add_argument("--repeats", type=int, default=1, help="alternating repeats of the two training runs")
    parser.add_argument("--workdir", default="/tmp/lqbench_data_throughput")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)

    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "tensorflow": tf.__version__, "gpus": len(tf.config.list_physical_devices("GPU"))}}
    try:
        data.info("mnist", data_dir=os.environ.get("LQBENCH_DATA_DIR"))
        _record(results, "mnist_train", pipeline_rate(lambda: data.load("mnist", "train", BATCH)))
        _record(results, "mnist_train_augment",
                pipeline_rate(lambda: data.load("mnist", "train", BATCH, augment=True)))
    except data.DataError as e:
        print(f"mnist skipped: {e}", file=sys.stderr)

    root = write_synthetic_cifar(pathlib.Path(args.workdir), args.cifar_images)
    load = lambda **kw: data.load("cifar10", "train", BATCH, data_dir=root, augment=True, **kw)  # noqa: E731
    _record(results, "cifar_format_train_augment", pipeline_rate(load))
    if args.image_size:
        size = (args.image_size, args.image_size)
        _record(results, f"cifar_format_train_augment_{args.image_size}px", pipeline_rate(lambda: load(image_size=size)))

    images, labels = next(iter(data.load("cifar10", "train", BATCH, data_dir=root, drop_remainder=True)))
    constant = tf.data.Dataset.from_tensors((images, labels)).repeat()
    end_to_end = data.load("cifar10", "train", BATCH, data_dir=root, augment=True, drop_remainder=True).repeat()
    for r in range(args.repeats):  # alternate the two so that load from other processes hits both
        suffix = f"_{r + 1}" if args.repeats > 1 else ""
        _record(results, f"bnn_train_constant_batch{suffix}", training_rate(constant, args.train_steps))
        _record(results, f"bnn_train_with_augment_pipeline{suffix}", training_rate(end_to_end, args.train_steps))

    print(json.dumps(results, indent=2))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
