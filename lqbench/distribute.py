"""Data-parallel training on TensorFlow's own engines (`tf.distribute`), never a home-made one.

| name          | strategy                                         | when |
|---------------|--------------------------------------------------|------|
| `default`     | `tf.distribute.get_strategy()` (one device)      | one CPU or GPU |
| `mirrored`    | `tf.distribute.MirroredStrategy`                 | several GPUs of one machine |
| `multiworker` | `tf.distribute.MultiWorkerMirroredStrategy`      | several machines, described by `TF_CONFIG` |

Batch-size semantics: ``batch_size`` in specs and on the command line is the *global* batch.
Keras splits each global batch across the replicas (``batch_size / num_replicas`` examples
each), every replica computes gradients of its share, and the all-reduced (summed) gradients
of the per-replica losses scaled by the global batch equal the single-device gradient of the
global batch. Batch normalisation statistics are computed per replica, as in every Keras
data-parallel run, and so is the HSIC bottleneck's kernel statistic (its local losses are
HSIC estimates over each replica's share of the batch): both differ slightly from one device
seeing the whole batch. For every other algorithm and optimizer, training with N replicas equals
single-device training on the same global batch (tested for BP, DFA, DRTP, SigpropTL and Bop;
the multi-phase recipes BNEW, ProxQuant, BMD and continuous binarization are tested to run with
identical results on every worker).
The learning rate therefore needs no change when the number of workers changes at a fixed
global batch.

`MultiWorkerMirroredStrategy` must be created before any other TensorFlow op in the
process: `get_strategy("multiworker")` is the first thing ``lqbench train --strategy
multiworker`` does. Each worker runs the same command with its own ``TF_CONFIG``, e.g. for
worker 0 of two::

    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                "task": {"type": "worker", "index": 0}}' lqbench train --strategy multiworker ...

Worker 0 is the chief: only it writes results and saved models (`is_chief`).
"""
from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker")


def get_strategy(name: str | None = "default") -> tf.distribute.Strategy:
    """The `tf.distribute.Strategy` called ``name`` (see the module table)."""
    name = name or "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise ValueError(
                "strategy 'multiworker' needs the TF_CONFIG environment variable "
                '(e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}})'
            )
        try:
            json.loads(config)
        except json.JSONDecodeError as error:
            raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGIES)}")


def supports_xla(strategy: tf.distribute.Strategy) -> bool:
    """Whether train steps may be XLA-compiled under ``strategy``.

    XLA has no cross-replica collectives on CPU devices (TensorFlow raises "Collectives are not
    yet implemented for CPU devices when compiling with XLA"), so several CPU replicas train in
    graph mode; one replica, or GPU replicas, keep XLA.
    """
    if strategy.num_replicas_in_sync <= 1:
        return True
    return bool(tf.config.list_physical_devices("GPU"))


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process writes results: always, except on non-chief multi-worker tasks."""
    resolver = getattr(getattr(strategy, "extended", None), "_cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def add_strategy_argument(parser) -> None:
    """``--strategy default|mirrored|multiworker`` for the training commands."""
    parser.add_argument("--strategy", choices=STRATEGIES, default="default",
                        help="tf.distribute strategy (multiworker reads TF_CONFIG); --batch-size is the global batch")


def strategy_from_arguments(args) -> tf.distribute.Strategy | None:
    """The strategy of ``--strategy``; created first, before any other TensorFlow op (see module doc)."""
    name = getattr(args, "strategy", "default")
    return None if name == "default" else get_strategy(name)
