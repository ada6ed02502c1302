r"""SigpropTL: the target-loop variant of Signal Propagation (Kohan et al.), as in paper 000.

Pass 1 runs the clean input and computes the output error \\(e = \operatorname{softmax}(z) -
\operatorname{onehot}(y)\\) (the output layer takes its true loss step here). The error is sent
back to the input through a fixed random matrix \\(F \sim \mathcal N(0, 1/D)^{C \times D}\\)
(\\(D\\) the input size) and modulates it:

\\[ x_{err} = x + \alpha\, \operatorname{reshape}(e F) \\]

Pass 2 runs \\(x\\) and \\(x_{err}\\) together (one batch of \\(2B\\), so normalisation
statistics are shared) segment by segment; at each tap \\(k\\) the error is the difference of
the activation outputs (tap views, i.e. after the binary sign)

\\[ \mathrm{err}_k = a_k(x) - a_k(x_{err}) \\]

and the segment's update is \\(\mathrm{err}_k\\) injected as the gradient of the clean tap
tensor \\(h_k(x)\\), divided by the number of positions \\(P_k\\) of the tap (1 for vectors):
for a weight layer directly before the tap, \\(\Delta W = -\eta\, \mathrm{err}^\top x / P\\)
(dense) or the convolution weight gradient of \\(\mathrm{err}\\) w.r.t. the clean input (conv),
as in the authors' code. The sign's estimator is bypassed as there; ops between the weight layer
and the tap (normalisation, pooling, float activations) are differentiated, so their parameters
train too (the authors' code leaves normalisation parameters at their initial values).
\\(\alpha\\) grid {1, 0.1, 0.01}, default 1.

**The authors' code ignores** \\(\alpha\\): it is passed as the ``a`` of a Kaiming-normal init
with a linear nonlinearity, where it has no effect, and the error is the batch-mean gradient
\\(e / B\\). The perturbation was therefore tiny and the results near chance (000 Tables 7-8).
lqbench applies \\(\alpha\\) and uses the per-sample \\(e\\); ``normalize_error=True`` divides
\\(e\\) by the batch size as the authors' code did (\\(\alpha\\) still applied).

**Convolutional networks:** on VGG-small (digits, W1A1 and W32A32, alpha 1/0.1/0.01, Adam or
SGD) SigpropTL stays at chance while it learns MLPs. The output update is the true gradient;
the hidden convolutions' target-loop updates move the features faster than the readout can
follow them (with ``alpha=0`` and SGD the readout learns on the fixed random features; with Adam
even the float rounding differences between the two halves of the batch are scaled up to full
steps). Keeping normalisation parameters fixed, as the authors' code does, does not help.

Per-tap mean squared errors are reported as metrics ``sigprop_<k>``. The Sigprop target stream
with a local similarity loss (Kohan et al.'s main variant) is not implemented.

!!! example
    ```python
    trainer = lqbench.algorithms.build("sigprop", model, alpha=0.1)
    ```
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from lqbench.algorithms.base import UPDATE_MODES, Algorithm, register

__all__ = ["SigpropTL"]


@register
class SigpropTL(Algorithm):
    """SigpropTL with input modulation \\(x + \\alpha\\, e F\\), segment by segment.

    # Hyperparameters
        alpha: scale of the input modulation (grid {1, 0.1, 0.01}).
        normalize_error: divide \\(e\\) by the batch size, as the authors' code did.
        update: ``"auto"``, ``"segment"`` or ``"step"`` (see `Algorithm`).
    """

    algorithm = "sigprop"
    defaults = {"alpha": 1.0, "normalize_error": False, "update": "auto"}
    choices = {"normalize_error": (True, False), "update": UPDATE_MODES}
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
        self.tap_trackers = {str(t.index): self._tracker(f"sigprop_{t.index}") for t in self.graph.taps}

    def _train_step(self, x, y, sample_weight):
        graph = self.graph
        x = tf.convert_to_tensor(tf.nest.flatten(x)[0])
        # pass 1: clean forward; only the output segment is recorded
        env = graph.new_env(x)
        for segment in graph.segments[:-1]:
            graph.run_ops(segment.ops, env, True)
        output = graph.segments[-1]
        with tf.GradientTape() as tape:
            graph.run_ops(output.ops, env, True)
            logits = env[graph.output_key]
            tape.watch(logits)
            loss = self._output_loss(y, logits, sample_weight)
        grads = tape.gradient(loss, [logits] + output.variables)
        grad_z = tf.stop_gradient(grads[0])
        initial = list(zip(grads[1:], output.variables))
        del env
        # input modulation
        error = grad_z if self.hparams["normalize_error"] else grad_z * self._global_batch(logits)
        x_err = x + float(self.hparams["alpha"]) * tf.reshape(tf.matmul(error, self.input_feedback), tf.shape(x))
        batch = tf.shape(x)[0]

        # pass 2: clean and modulated inputs together, segment by segment
        def segment_loss(segment, env):
            tap = segment.tap
            h = env[tap.key]
            view = tap.view(h)
            err = tf.stop_gradient(view[:batch] - view[batch:])
            self.tap_trackers[str(tap.index)].update_state(tf.reduce_mean(tf.square(err)))
            return tf.reduce_sum(err * h[:batch]) / float(tap.positions)

        self._train_segments(tf.concat([x, x_err], axis=0), segment_loss, graph.segments[:-1], initial=initial)
        return logits
