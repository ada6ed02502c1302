r"""Direct Feedback Alignment (Nøkland 2016), as in paper 000 and its authors' code.

The output error is sent to every tap \\(k\\) (the input of every weight layer but the first)
through a fixed random matrix \\(B_k \sim \mathcal N(0, 1)^{C \times d_k}\\), replacing the
gradient that backprop would bring there:

\\[ \delta a_k = \frac{1}{B}\, e\, B_k, \qquad e = \operatorname{softmax}(z) - \operatorname{onehot}(y) \\]

where \\(a_k = q_k(h_k)\\) is what the weight layer consumes (after its binary input quantizer)
and \\(d_k\\) its channel (conv, broadcast over positions) or feature (dense) dimension. From
there the signal flows through the quantizer's estimator and the non-weight ops (normalisation,
pooling, activations) down to the previous weight layer, exactly; other consumers of a tapped
tensor (skip connections) backpropagate normally, as the authors' per-module backward hooks
do. The output layer trains on its true loss. In practice the step minimises

\\[ L + \sum_k \sum \operatorname{sg}\!\big(\tfrac{1}{B} e B_k\big) \odot a_k \\]

in one tape (taps stop the true gradient).

With ``distillation`` \\(L\\) is the distillation loss (`Algorithm._output_loss`), so the output
layer trains on it and the projected error is that loss's output error,
\\(e = w_{CE} (\operatorname{softmax}(z) - \operatorname{onehot}(y)) + \alpha T
(\operatorname{softmax}(z / T) - \operatorname{softmax}(z_T / T))\\): every hidden layer is driven
towards the teacher through \\(B_k\\). No gradient is stopped for memory: DFA needs the
whole forward pass before any update, so its peak memory equals backprop's.

!!! example
    ```python
    trainer = lqbench.algorithms.build("dfa", model, seed=0)
    trainer.compile(lqbench.optimizers.build("adam", 1e-3, 1e-5), metrics=["accuracy"])
    ```

# References
- [Nøkland, Direct Feedback Alignment Provides Learning in Deep Neural Networks,
  NeurIPS 2016](https://arxiv.org/abs/1609.01596)
- [Lillicrap, Cownden, Tweed & Akerman, Random synaptic feedback weights support error
  backpropagation for deep learning, Nature Communications 7, 2016](https://doi.org/10.1038/ncomms13276)
  (feedback alignment, which DFA generalises).
- [Crulis, Serres, de Runz & Venturini, An experimental comparative study of backpropagation
  and alternatives for training binary neural networks for image classification, 2024
  (paper 000)](https://arxiv.org/abs/2408.04460); code: https://github.com/BenCrulis/binary_nn_extended (``binary_nn/algorithms/dfa.py``).
"""
from __future__ import annotations

import tensorflow as tf

from lqbench.algorithms.base import Algorithm, register
from lqbench.algorithms.taps import tap_signal

__all__ = ["DFA"]


@register
class DFA(Algorithm):
    """Direct Feedback Alignment with fixed Gaussian feedback matrices \\(B_k\\) (seeded)."""

    algorithm = "dfa"
    defaults = {}
    supports_xla = True
    tap_granularity = "edge"

    def _setup(self):
        self.feedback = [
            self._fixed_matrix(f"dfa_feedback_{t.index}", self._rng.standard_normal((self.num_classes, t.channels)))
            for t in self.graph.taps
        ]

    def _train_step(self, x, y, sample_weight):
        teacher_logits = self._teacher_logits(x)
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            env, logits = self.graph.run(x, training=True)
            # the model's regularization losses are part of the loss, as in Keras's train_step
            loss, grad_z = self._output_gradient(y, logits, sample_weight, self.model.losses, teacher_logits)
            total = loss
            for tap, feedback in zip(self.graph.taps, self.feedback):
                signal = tap_signal(tf.matmul(grad_z, feedback), tap)
                total += tf.reduce_sum(tf.stop_gradient(signal) * tap.view(env[tap.key], training=True))
        self._apply(zip(tape.gradient(total, variables), variables))
        return logits
