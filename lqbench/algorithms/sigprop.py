r"""SigpropTL: the target-loop variant of Signal Propagation (Kohan et al.), as in paper 000.

This follows the authors' code (``binary_nn/algorithms/pepita.py`` of
BenCrulis/binary_nn_extended @212664d, which produced the paper's numbers; where the issue
text and that code differ, the code wins).

**Pass 1** runs the clean input in evaluation mode (the authors call ``model.eval()``: batch
normalisation uses its moving statistics and does not update them, stochastic estimators are
deterministic) and computes the output error \\(e = \operatorname{softmax}(z) -
\operatorname{onehot}(y)\\); the output layer takes its true-loss step from this pass. The error
is sent back to the input through a fixed random matrix \\(F \sim \mathcal N(0, 1/D)^{C \times D}\\)
(\\(D\\) the input size) and modulates it:

\\[ x_{err} = x + \alpha\, \operatorname{reshape}(e F) \\]

**Pass 2** runs \\(x\\) and \\(x_{err}\\) together in training mode (one batch of \\(2B\\), so
normalisation statistics are shared and moving statistics are updated once per step), segment
by segment. For every hidden weight layer \\(W\\) the error is the difference of the two halves
at the *activation output right after it* (`TapGraph.activation_point`: after the
normalisation that follows the weight layer, before any pooling, residual ``Add`` or the next
block's normalisation; the activation is the float activation layer there or the sign that
the next binary layer applies, \\(a = q(h)\\)):

\\[ \mathrm{err} = a(x) - a(x_{err}) \\]

and it is used directly as the gradient of the weight layer's output (normalisation and the
sign's estimator are bypassed, their parameters do not train, as in the authors' code):

\\[ \Delta W = -\eta\, \frac{1}{P}\, \frac{\partial \langle \mathrm{err}, W \ast u \rangle}{\partial W},
    \qquad \Delta b = -\eta \sum \mathrm{err} \\]

with \\(u\\) the clean input of the layer (``err^T u`` for a dense layer, the convolution weight
gradient for a convolution), \\(P\\) the number of positions of the (unpooled) error tensor
(\\(H W\\) for a 2D convolution, 1 for vectors) and the bias gradient not divided by
\\(P\\) (both as in the authors' code). \\(\alpha\\) grid {1, 0.1, 0.01}, default 1.

**The authors' code ignores** \\(\alpha\\): it is passed as the ``a`` of a Kaiming-normal init
with a linear nonlinearity, where it has no effect, and the error is the batch-mean gradient
\\(e / B\\). The perturbation was therefore tiny and the results near chance (000 Tables 7-8).
lqbench applies \\(\alpha\\) and uses the per-sample \\(e\\); ``normalize_error=True`` divides
\\(e\\) by the batch size as the authors' code did (\\(\alpha\\) still applied).

Options: ``error_at="tap"`` keeps lqbench's earlier rule (error at the next weight layer's
input, after pooling / normalisation / ``Add``, backpropagated through the ops in between,
divided by the tap's positions); ``pass1="train"`` runs pass 1 in training mode (moving
statistics then updated twice per step).

**Convolutional networks: the method itself does not learn them.** On the main job's network
(VGG-small width 0.25, W1A1 except first/last layers, embedded digits, 15 epochs, Adam 1e-3:
``lqbench run --algorithms sigprop --seeds 0 1``) SigpropTL stays at chance (10.7 % ± 0.2 test
accuracy, two seeds), with alpha 1, 0.1 and 0.01, with SGD and in full precision. lqbench's
update equals the authors' on a binary CNN with BN (``bench/results/reference/
seed000_cnn_sigprop.json``), and the authors' own code on a PyTorch twin of this network
(``bench/reference/sigprop_vgg_small.py``: their binarization, driver and ``Pepita`` class) is
at chance as well: 10.0 % ± 0.0 (two seeds) where their backprop reaches 94.6 % ± 0.7
(``bench/results/sigprop_vgg_small_digits.json``); paper 000 reports 14.1 % for binary
VGG-19 and 12.0 % for MobileNetV2 on ImageNette (Table 7). Why (``bench/sigprop_diagnosis.py``,
``bench/results/sigprop_diagnosis.json``): to first order the error of a weight layer
\\(z = W u\\), \\(a = \phi(N(z))\\) is \\(\mathrm{err} \approx -D\, W \Delta u\\) (\\(\Delta u\\) the
perturbation of its input, \\(D\\) the slopes of normalisation and activation), so the step

\\[ \Delta W \approx \frac{\eta}{P}\, D\, W \, \Delta u\, u^\top \\]

is multiplicative in \\(W\\): repeated, it is a power iteration that turns every filter towards
the same dominant direction. Measured after 15 epochs: the mean \\(|\cos|\\) between
``conv3``'s filters rises from 0.05 to 0.91 (W1A1) / 0.96 (full precision; backprop: 0.06 /
0.05), ``conv1``'s from 0.27 to 0.56-0.66 with either error scale, and in full precision the
effective rank of the 128 features the classifier reads falls from 32.6 to 3.1 (2.4 with the
authors' \\(e/B\\)). A linear readout of the untrained features (backprop, every other layer
frozen) reaches 76.9 % in full precision but 12.8 % in W1A1 (random binary features of this
depth are uninformative), so all accuracy must come from hidden updates, and these collapse
the features instead. SigpropTL learns binary MLPs (``tests/test_algorithms.py``).

**Memory: the floor is both halves of one layer.** The authors concatenate the two inputs
(``torch.cat([x, perturbed_input])`` in ``pepita.py``) and run them in training mode, so batch
normalisation in pass 2 normalises each half with the mean and variance of the \\(2B\\) batch
(pinned by ``test_sigprop_pass2_normalises_both_halves_with_shared_statistics``: running the
halves one after the other with ordinary batch normalisation gives a different update). A
schedule with the same update needs, at every layer, (i) both halves' activations at once to
form \\(a(x) - a(x_{err})\\), (ii) both halves' pre-normalisation tensors (or a second
computation of the layer) before either can be normalised, and (iii) both halves at the
boundary to the next layer, since both streams continue through every layer (dropping one
means recomputing it from the input for every layer, \\(O(L^2)\\) layer evaluations per
step). So the peak is at least \\(2B\\) activations of the largest layer; lqbench already trains
segment by segment and keeps only one segment's tensors alive (`Algorithm._train_segments`),
which is that floor up to the layer's few intermediate tensors. Against backprop, which keeps
every layer's activations for \\(B\\), the ratio is about \\(2 \max_l s_l / \sum_l s_l\\) (\\(s_l\\)
a layer's activation size): below 0.5 on networks of many equal layers (ResNet-20 0.30 in
BENCHMARKS.md), above it on VGG-style ones whose full-resolution layers dominate
(VGG-small: \\(2 \cdot 1 / 3.5 \approx 0.57\\) in units of a 32x32 layer, for its two
32x32, two 16x16 and two 8x8 convolutions; measured 0.61 at width 0.25; both by
``python bench/training_cost.py --part memory --steps 3 --modes graph``).

**Cost: a forward pass of \\(B\\), one of \\(2B\\) and the weight gradients of \\(B\\).** Pass 2
runs each weight layer on the clean and the modulated half separately and concatenates the
two outputs (normalisation then sees the \\(2B\\) batch as before), so the weight gradient is
taken on the clean half alone: run on the whole \\(2B\\) batch, the clean half's output was a
slice whose gradient is a \\(2B\\) tensor of zeros and values, and the weight gradient summed
over \\(2B\\) samples (same update; a stochastic kernel quantizer such as ``gumbel`` keeps
the whole-batch call, one kernel sample for both halves). Three forward passes of \\(B\\) cost
about as much as backprop's forward and backward pass, so SigpropTL's step is not shorter than
BP's. ResNet-20, batch 128, graph mode, this 2-core CPU: 0.126 s per step against BP's 0.105
(1.21x; 0.187 s, 1.79x, with the weight layers on the whole batch): pass 1 0.037 s, pass 2's
forward pass and errors 0.071 s, weight gradients and updates 0.019 s, measured by
``python bench/segment_cost.py --variants bp sigprop sigprop:whole sigprop:pass1
sigprop:forward hsic hsic:forward hsic:nobarrier --rounds 4 --steps 6``.

With ``distillation`` pass 1's output loss is the distillation loss (`Algorithm._output_loss`,
teacher logits of the clean input): the output layer trains on it and the modulating error is
its output error \\(e = w_{CE} (\operatorname{softmax}(z) - \operatorname{onehot}(y)) + \alpha T
(\operatorname{softmax}(z / T) - \operatorname{softmax}(z_T / T))\\), so the hidden layers learn
from \\(x + \alpha_{sp}\, e F\\) with the teacher's distribution in \\(e\\).

Per-layer mean squared errors are reported as training metrics ``sigprop_<k>`` (k-th hidden weight
layer). The Sigprop target stream with a local similarity loss (Kohan et al.'s main variant)
is not implemented.

!!! example
    ```python
    trainer = lqbench.algorithms.build("sigprop", model, alpha=0.1)
    ```

# References
- [Kohan et al., Signal Propagation: The Framework for Learning and Inference in a Forward
  Pass, IEEE TNNLS 2023](https://arxiv.org/abs/2204.01723)
- [Crulis, Serres, de Runz & Venturini, An experimental comparative study of backpropagation
  and alternatives for training binary neural networks for image classification, 2024
  (paper 000)](https://arxiv.org/abs/2408.04460); code: https://github.com/BenCrulis/binary_nn_extended
  (``binary_nn/algorithms/pepita.py``).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from lqbench.algorithms.base import UPDATE_MODES, Algorithm, register
from lqbench.estimators import GumbelSign

__all__ = ["SigpropTL"]


class _SiteTable:
    """Error sites per segment index (not a trackable container)."""

    def __init__(self, of: dict):
        self.of = of


@register
class SigpropTL(Algorithm):
    """SigpropTL with input modulation \\(x + \\alpha\\, e F\\), segment by segment.

    # Hyperparameters
        alpha: scale of the input modulation (grid {1, 0.1, 0.01}).
        normalize_error: divide \\(e\\) by the batch size, as the authors' code did.
        error_at: ``"activation"`` (default, the authors' code) or ``"tap"`` (earlier lqbench).
        pass1: ``"eval"`` (default, the authors' code) or ``"train"``.
        update: ``"auto"``, ``"segment"`` or ``"step"`` (see `Algorithm`).
    """

    algorithm = "sigprop"
    defaults = {"alpha": 1.0, "normalize_error": False, "error_at": "activation", "pass1": "eval", "update": "auto"}
    choices = {
        "normalize_error": (True, False),
        "error_at": ("activation", "tap"),
        "pass1": ("eval", "train"),
        "update": UPDATE_MODES,
    }
    supports_xla = True
    tap_granularity = "tensor"
    block_taps = True

    def _setup(self):
        if len(self.model.inputs) != 1:
            raise ValueError(f"sigprop: the model must have 1 input, it has {len(self.model.inputs)}")
        self.input_shape_ = tuple(int(d) for d in self.model.inputs[0].shape[1:])
        size = int(np.prod(self.input_shape_))
        self.input_feedback = self._fixed_matrix(
            "sigprop_input_feedback", self._rng.standard_normal((self.num_classes, size)) / np.sqrt(size)
        )
        graph = self.graph
        if self.hparams["error_at"] == "tap":
            self.tap_trackers = {str(t.index): self._tracker(f"sigprop_{t.index}") for t in graph.taps}
            return
        # one error site per hidden weight layer: (op, activation key, activation quantizer, P);
        # a plain (untracked) table: Keras would try to checkpoint quantizers in a dict of tuples
        sites_of: dict[int, list] = {}
        count = 0
        for s_index, segment in enumerate(graph.segments[:-1]):
            sites = []
            for i in segment.ops:
                if i not in graph.weight_ops:
                    continue
                key, quantizer = graph.activation_point(i)
                if graph.producer.get(key) not in segment.ops:  # pragma: no cover - by construction
                    raise ValueError(f"sigprop: the activation after {graph.ops[i].layer.name} lies in another segment")
                shape = graph._shapes[key]
                positions = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
                sites.append((i, key, quantizer, positions, self._tracker(f"sigprop_{count}")))
                count += 1
            sites_of[s_index] = sites
        self._sites = _SiteTable(sites_of)
        # weight layers run on each half of pass 2's batch separately (``run_halves``)
        self._split = frozenset(i for sites in sites_of.values() for i, *_ in sites if _per_sample(graph.ops[i]))

    def _train_step(self, x, y, sample_weight):
        graph = self.graph
        teacher_logits = self._teacher_logits(x)
        x = tf.convert_to_tensor(tf.nest.flatten(x)[0])
        pass1_training = self.hparams["pass1"] == "train"
        # pass 1: clean forward (eval mode by default); only the output segment is recorded
        env = graph.new_env(x)
        for segment in graph.segments[:-1]:
            graph.run_ops(segment.ops, env, pass1_training)
        output = graph.segments[-1]
        variables = output.variables
        with tf.GradientTape() as tape:
            graph.run_ops(output.ops, env, pass1_training)
            logits = env[graph.output_key]
            tape.watch(logits)
            loss = self._output_loss(y, logits, sample_weight, output.losses, teacher_logits)
        grads = tape.gradient(loss, [logits] + variables)
        grad_z = tf.stop_gradient(grads[0])
        initial = [(g, v) for g, v in zip(grads[1:], variables) if g is not None]
        del env
        # input modulation
        error = grad_z if self.hparams["normalize_error"] else grad_z * self._global_batch(logits)
        x_err = x + float(self.hparams["alpha"]) * tf.reshape(tf.matmul(error, self.input_feedback), tf.shape(x))
        batch = tf.shape(x)[0]
        index_of = {id(segment): n for n, segment in enumerate(graph.segments)}

        def tap_loss(segment, env):
            tap = segment.tap
            h = env[tap.key]
            view = tap.view(h, training=True)
            err = tf.stop_gradient(view[:batch] - view[batch:])
            self.tap_trackers[str(tap.index)].update_state(_mean_square(err))
            return tf.reduce_sum(err * h[:batch]) / float(tap.positions)

        clean = {}  # output key of a weight layer run by halves -> its clean half

        def run_halves(ops, env, training, barrier=None):
            for i in ops:
                if i not in self._split:
                    graph.run_ops([i], env, training, barrier)
                    continue
                op = graph.ops[i]
                (key,), (out,) = op.in_keys, op.out_keys
                halves = []
                for part in (env[key][:batch], env[key][batch:]):
                    half = {key: part}
                    graph.run_ops([i], half, training, barrier)
                    halves.append(half[out])
                clean[out] = halves[0]
                env[out] = tf.concat(halves, axis=0)

        def activation_loss(segment, env):
            total = None
            for i, key, quantizer, positions, tracker in self._sites.of[index_of[id(segment)]]:
                a = env[key] if quantizer is None else quantizer(env[key], training=True)
                err = tf.stop_gradient(a[:batch] - a[batch:])
                tracker.update_state(_mean_square(err))
                out_key = graph.ops[i].out_keys[0]
                out = clean[out_key] if out_key in clean else env[out_key][:batch]
                loss = tf.reduce_sum(err * out) / float(positions)
                layer = graph.ops[i].layer
                bias = getattr(layer, "bias", None)
                if positions > 1 and bias is not None and bias.trainable:
                    # the authors' bias gradient is the plain sum of err (not divided by P)
                    per_channel = tf.reduce_sum(tf.reshape(err, [-1, err.shape[-1]]), axis=0)
                    loss += (1.0 - 1.0 / positions) * tf.reduce_sum(per_channel * bias)
                total = loss if total is None else total + loss
            return total

        tap = self.hparams["error_at"] == "tap"
        self._train_segments(
            tf.concat([x, x_err], axis=0), tap_loss if tap else activation_loss, graph.segments[:-1],
            initial=initial, training=True, run_ops=None if tap else run_halves,
        )
        return logits


def _mean_square(x: tf.Tensor) -> tf.Tensor:
    """\\(\\operatorname{mean}(x^2)\\) in one pass (``l2_loss`` is \\(\\sum x^2 / 2\\), no squared copy)."""
    return 2.0 * tf.nn.l2_loss(x) / tf.cast(tf.size(x), x.dtype)


_PER_SAMPLE = (tf.keras.layers.Dense, tf.keras.layers.Conv1D, tf.keras.layers.Conv2D, tf.keras.layers.Conv3D,
               tf.keras.layers.DepthwiseConv2D, tf.keras.layers.SeparableConv1D, tf.keras.layers.SeparableConv2D)
_KERNEL_QUANTIZERS = ("kernel_quantizer", "depthwise_quantizer", "pointwise_quantizer")


def _per_sample(op) -> bool:
    """Whether weight op ``op`` can run on the two halves of pass 2's batch one after the other
    with the same result as on the whole batch: a Keras dense / convolution layer (Larq's too)
    of one input and one output, without activity regularizer (its loss is per call) and with
    deterministic kernel quantizers (a stochastic one, e.g. ``gumbel``, samples once per call:
    on the whole batch both halves share the sample)."""
    layer = op.layer
    if not isinstance(layer, _PER_SAMPLE) or len(op.in_keys) != 1 or len(op.out_keys) != 1:
        return False
    if getattr(layer, "activity_regularizer", None) is not None:
        return False
    return not any(isinstance(getattr(layer, name, None), GumbelSign) for name in _KERNEL_QUANTIZERS)
