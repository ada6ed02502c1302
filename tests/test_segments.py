"""Tests of the segment-by-segment training loop (`Algorithm._train_segments`): its updates equal
one tape over the whole gated network, and each segment's work waits for the previous one."""
import lqbench  # noqa: F401  (selects tf-keras before TensorFlow)

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from lqbench import Binarization
from lqbench import algorithms as A
from lqbench.algorithms.hsic import cosine_kernel
from lqbench.algorithms.taps import tap_signal
from lqbench.estimators import GumbelSign

C = 3
BATCH = 8
B = Binarization(weights=True, activations=True, clip_weights=False)


def conv_bn_net():
    """conv (first) -> BN -> [block tap] -> binary conv (L2) -> BN -> Add -> GAP -> Dense."""
    tf.keras.utils.set_random_seed(5)
    x = tf.keras.Input((6, 6, 2))
    # no conv biases before BN: their true gradient is 0 and Adam would magnify rounding noise
    h = lq.layers.QuantConv2D(4, 3, padding="same", use_bias=False, **B.conv_kwargs("first"))(x)
    h = tf.keras.layers.BatchNormalization(momentum=0.9)(h)
    r = lq.layers.QuantConv2D(4, 3, padding="same", use_bias=False, kernel_regularizer=tf.keras.regularizers.L2(0.1),
                              **B.conv_kwargs("hidden"))(h)
    r = tf.keras.layers.BatchNormalization(momentum=0.9)(r)
    h = tf.keras.layers.GlobalAveragePooling2D()(tf.keras.layers.Add()([h, r]))
    return tf.keras.Model(x, lq.layers.QuantDense(C, **B.dense_kwargs("last"))(h))


def _batches():
    rng = np.random.default_rng(0)
    return [(rng.normal(0, 1, (BATCH, 6, 6, 2)).astype(np.float32), rng.integers(0, C, BATCH).astype(np.int32))
            for _ in range(2)]


OPTIMIZERS = {
    "sgd": lambda: tf.keras.optimizers.legacy.SGD(0.05),
    "adam": lambda: tf.keras.optimizers.legacy.Adam(0.01),
}


def _tap_loss(trainer, tap, h, y):
    """The method's local loss at one tap, written out (DRTP: sum sg(t B_k) a_k; HSIC: its loss)."""
    labels = tf.one_hot(y, C) - 1.0 / C
    view = tap.view(h, training=True)
    if trainer.algorithm == "drtp":
        signal = tap_signal(tf.matmul(labels, trainer.feedback[tap.index]), tap)
        return tf.reduce_sum(tf.stop_gradient(signal) * view)
    return trainer.local_loss(view, cosine_kernel(labels))


def _one_tape_step(trainer, optimizer, x, y):
    """Reference: the whole gated network in one tape, every loss summed, one apply_gradients."""
    graph, variables = trainer.graph, trainer.model.trainable_variables
    with tf.GradientTape() as tape:
        env, logits = graph.run(x, training=True)
        total = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
        total += tf.add_n(trainer.model.losses)
        for tap in graph.taps:
            total += _tap_loss(trainer, tap, env[tap.key], y)
    optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("method", ["drtp", "hsic"])
def test_segment_and_step_updates_equal_one_tape_reference(method, optimizer):
    """Per-segment updates (``update="segment"``), one apply at the end (``"step"``) and a single
    tape over the gated network give the same weights, BN moving statistics and optimizer step
    count after one and after two steps (graph mode, where the segment ordering is built)."""
    batches = _batches()
    runs = {}
    for update in ("segment", "step"):
        trainer = A.build(method, conv_bn_net(), seed=3, update=update)
        trainer.compile(OPTIMIZERS[optimizer](), run_eagerly=False)
        runs[update] = (trainer, [])
        for x, y in batches:
            trainer.train_on_batch(x, y)
            runs[update][1].append((trainer.model.get_weights(), int(trainer.optimizer.iterations.numpy())))
    reference = A.build(method, conv_bn_net(), seed=3)
    ref_optimizer = OPTIMIZERS[optimizer]()
    ref = []
    for x, y in batches:
        _one_tape_step(reference, ref_optimizer, tf.constant(x), tf.constant(y))
        ref.append((reference.model.get_weights(), int(ref_optimizer.iterations.numpy())))
    names = [w.name for w in reference.model.weights]
    for update, (_, states) in runs.items():
        for step, ((got, got_it), (want, want_it)) in enumerate(zip(states, ref), 1):
            assert got_it == want_it == step, (update, step)
            for g, w, n in zip(got, want, names):
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=f"{update}, step {step}, {n}")
    # the comparison is not vacuous: the hidden kernel and a moving mean moved
    before = conv_bn_net().get_weights()
    assert all(not np.allclose(b, a) for b, a in zip(before, ref[-1][0]) if b.ndim == 4)
    means = [i for i, n in enumerate(names) if "moving_mean" in n]
    assert len(means) == 2 and all(not np.allclose(before[i], ref[-1][0][i]) for i in means)


def _ancestors(op):
    seen, stack = set(), [op]
    while stack:
        o = stack.pop()
        for parent in [t.op for t in o.inputs] + list(o.control_inputs):
            if parent.name not in seen:
                seen.add(parent.name)
                stack.append(parent)
    return seen


@pytest.mark.parametrize("update", ["segment", "step"])
def test_a_segment_waits_for_the_previous_one(update):
    """Memory: work of segment k that reads no earlier tensor (DRTP's signal t B_k and the seed
    of its gradient) must not run before segment k-1's gradients, else the runtime computes the
    signals of every tap at the start of the step and holds them all (ResNet-20: 74 instead of
    35 MiB). Checked on the traced graph: each feedback read has segment k-1's gradient ops
    (and, with per-segment updates, its optimizer update) among its ancestors."""
    trainer = A.build("drtp", conv_bn_net(), seed=3, update=update)
    trainer.compile(tf.keras.optimizers.legacy.SGD(0.05), run_eagerly=False)
    spec = (tf.TensorSpec([BATCH, 6, 6, 2], tf.float32), tf.TensorSpec([BATCH], tf.int32))
    graph = tf.function(trainer.train_step).get_concrete_function(spec).graph
    captured = {id(external): internal for external, internal in graph.captures}
    assert len(trainer.feedback) == 2
    for k, feedback in enumerate(trainer.feedback):
        reads = [op for op in captured[id(feedback.handle)].consumers() if op.type == "ReadVariableOp"]
        assert reads, f"feedback {k} is not read in the step"
        for read in reads:
            before = _ancestors(read)
            gradients = [n for n in before if "gradient_tape" in n]
            applies = [n for n in before if "Apply" in graph.get_operation_by_name(n).type]
            if k == 0:  # the first segment waits for nothing
                assert not gradients and not applies
            else:
                assert gradients, f"the signal of tap {k} does not wait for segment {k - 1}'s gradients"
                assert bool(applies) == (update == "segment"), applies


def test_sigprop_weight_gradient_on_the_clean_half_only():
    """SigpropTL's pass 2 runs each weight layer on the clean and the modulated half separately:
    the weight gradients are taken on the B clean samples (no gradient of a 2B slice, no filter
    gradient over 2B) and the update equals the one with the layers run on the whole 2B batch
    (BN still normalises both halves with the 2B statistics); a stochastic (gumbel) kernel
    quantizer keeps the whole-batch call (one kernel sample for both halves)."""
    batches = _batches()
    spec = (tf.TensorSpec([BATCH, 6, 6, 2], tf.float32), tf.TensorSpec([BATCH], tf.int32))
    weights = {}
    for split in (True, False):
        trainer = A.build("sigprop", conv_bn_net(), seed=3, alpha=3.0)
        if not split:
            trainer._split = frozenset()
        else:
            assert len(trainer._split) == 2  # both convolutions
        trainer.compile(tf.keras.optimizers.legacy.SGD(0.05), run_eagerly=False)
        graph = tf.function(trainer.train_step).get_concrete_function(spec).graph
        types = [op.type for op in graph.get_operations()]
        filters = [op for op in graph.get_operations() if op.type == "Conv2DBackpropFilter"]
        assert len(filters) == 2
        assert {int(op.inputs[0].shape[0]) for op in filters} == ({BATCH} if split else {2 * BATCH})
        assert ("StridedSliceGrad" in types) == (not split)
        for x, y in batches:
            trainer.train_on_batch(x, y)
        weights[split] = [v.numpy() for v in trainer.model.weights]
    for a, b in zip(weights[True], weights[False]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    tf.keras.utils.set_random_seed(0)
    x = tf.keras.Input((6, 6, 2))
    h = lq.layers.QuantConv2D(4, 3, use_bias=False, kernel_quantizer=GumbelSign(),
                              input_quantizer="ste_sign")(tf.keras.layers.Conv2D(2, 1)(x))
    h = tf.keras.layers.GlobalAveragePooling2D()(h)
    model = tf.keras.Model(x, tf.keras.layers.Dense(C)(h))
    assert A.build("sigprop", model, seed=0)._split == {0}  # the plain conv only
