r"""Backpropagation: the reference method, plain Keras training of the wrapped model.

\\[ \Delta W_k = -\eta\, \frac{\partial L}{\partial W_k}, \qquad
    L = \frac{1}{B} \sum_i \operatorname{CE}(z_i, y_i) \\]

with the gradient of every layer obtained by the chain rule through all downstream layers
(and, in a BNN, through every downstream sign estimator). ``BP.train_step`` is Keras's own
``train_step``: the wrapper adds nothing but the common `Algorithm` interface, so its cost
equals ``model.fit`` (measured in ``bench/training_cost.py``).

With ``distillation`` (`lqbench.distillation.Distillation`) \\(L\\) is the distillation loss
\\(w_{CE} \operatorname{CE} + \alpha \mathcal{L}_{KD}\\) (`Algorithm._output_loss`) and every
layer gets its exact gradient through the whole network: the student of ReActNet and of the
BNEW authors' ``dist_main.py``.

!!! example
    ```python
    trainer = lqbench.algorithms.build("bp", model)
    trainer.compile(tf.keras.optimizers.legacy.Adam(1e-3), metrics=["accuracy"], jit_compile=True)
    trainer.fit(train_ds, epochs=3)
    # distilling from a trained float model (ReActNet's distributional loss)
    trainer = lqbench.algorithms.build("bp", model, distillation=lqbench.distillation.Distillation(teacher))
    ```

# References
- Rumelhart, Hinton & Williams, *Learning representations by back-propagating errors*,
  Nature 323, 1986.
- [Courbariaux, Hubara, Soudry, El-Yaniv & Bengio, Binarized Neural Networks: Training Deep
  Neural Networks with Weights and Activations Constrained to +1 or -1, 2016](https://arxiv.org/abs/1602.02830)
  (backprop through sign estimators in a BNN).
- [Crulis, Serres, de Runz & Venturini, An experimental comparative study of backpropagation
  and alternatives for training binary neural networks for image classification, 2024
  (paper 000)](https://arxiv.org/abs/2408.04460); code: https://github.com/BenCrulis/binary_nn_extended (the BP baseline).
"""
from __future__ import annotations

import tensorflow as tf

from lqbench.algorithms.base import Algorithm, register

__all__ = ["BP"]


@register
class BP(Algorithm):
    """Plain backpropagation (Keras's default ``train_step`` on the wrapped model; with
    ``distillation``, one tape over the distillation loss of the wrapped model)."""

    algorithm = "bp"
    defaults = {}
    supports_xla = True

    def train_step(self, data):
        if self.distillation is None:
            return tf.keras.Model.train_step(self, data)
        return super().train_step(data)

    def _train_step(self, x, y, sample_weight):
        teacher_logits = self._teacher_logits(x)
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            logits = self.model(x, training=True)
            loss = self._output_loss(y, logits, sample_weight, self.model.losses, teacher_logits)
        self._apply(zip(tape.gradient(loss, variables), variables))
        return logits
