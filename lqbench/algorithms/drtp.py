r"""Direct Random Target Projection (Frenkel et al. 2021), as in paper 000's code.

Each tap \\(k\\) (weight-layer inputs and residual-block inputs) receives, instead of a
backpropagated gradient, the label projected by a fixed random matrix, and the gradient is
stopped there, so each segment between taps learns alone and can be updated as soon as its
forward pass is done (update-unlocked):

\\[ \delta a_k = t\, B_k, \qquad t = \operatorname{onehot}(y) - \tfrac{1}{C} \ \text{(centred target)},
    \qquad B_k \sim \mathcal N(0, 1)^{C \times d_k} \\]

with \\(a_k = q_k(h_k)\\) the tap view (after the consumer's binary input quantizer, whose
estimator carries the signal to \\(h_k\\)), \\(d_k\\) the channel dimension (broadcast over
positions). As in the authors' code the signal is not divided by the batch size (summed over
samples). The output layer trains on the true loss of its stopped input.

With ``distillation`` the output layer's loss is the distillation loss (`Algorithm._output_loss`);
the hidden segments keep their fixed random targets \\(t B_k\\) built from the labels (DRTP has
no output error to carry the teacher's distribution: it never reaches them).

Options: ``target="onehot"`` (raw one-hot, Frenkel's original formulation);
``feedback="position"``: one feedback column per tap element (\\(n_k = \prod \text{shape}_k\\)
instead of \\(n_k = d_k\\)); ``init`` of \\(B_k \in \mathbb R^{C \times n_k}\\), with the fan-in
\\(n_k\\) of the tap as in the authors' ``DRTPFast._init_mat`` (torch's ``fan_in`` of the matrix,
``nonlinearity="linear"``): ``"normal"`` \\(\mathcal N(0, 1)\\) (their default),
``"kaiming_uniform"`` \\(\mathcal U(\pm\sqrt{3 / n_k})\\), ``"kaiming_normal"``
\\(\mathcal N(0, 1/n_k)\\), and ``"frenkel_uniform"`` \\(\mathcal U(\pm\sqrt{6 / n_k})\\)
(Frenkel et al.'s He-uniform bound; issue 14 item 11 quotes it, the authors' code that
produced paper 000's numbers uses torch's \\(\sqrt{3 / n_k}\\), which ``kaiming_uniform`` follows).
Earlier lqbench versions used \\(\sqrt{6 / C}\\) (the class count): no longer available.

MLP-Mixer token mixing: the token-mixing layers read a (hidden, tokens) transposed tensor; as
in the authors' code the feedback is built over the hidden axis and broadcast over tokens
(`Tap.channels`).

Difference from the authors' code: they only detach residual-block inputs, which leaves the last
weight layer of every residual block without any signal; lqbench injects \\(t B_k\\) at
block inputs too (methods.md §3: "at each tap").

!!! example
    ```python
    trainer = lqbench.algorithms.build("drtp", model, seed=0)
    ```

# References
- [Frenkel, Lefebvre & Bol, Learning Without Feedback: Fixed Random Learning Signals Allow for
  Feedforward Training of Deep Neural Networks, Frontiers in Neuroscience 15, 2021](https://arxiv.org/abs/1909.01311)
- [Crulis, Serres, de Runz & Venturini, An experimental comparative study of backpropagation
  and alternatives for training binary neural networks for image classification, 2024
  (paper 000)](https://arxiv.org/abs/2408.04460); code: https://github.com/BenCrulis/binary_nn_extended (``binary_nn/algorithms/drtp.py``, ``DRTPFast``).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from lqbench.algorithms.base import UPDATE_MODES, Algorithm, register
from lqbench.algorithms.taps import tap_signal

__all__ = ["DRTP"]


@register
class DRTP(Algorithm):
    """Direct Random Target Projection, segment by segment.

    # Hyperparameters
        target: ``"centred"`` (default, \\(\\operatorname{onehot}(y) - 1/C\\)) or ``"onehot"``.
        feedback: ``"channel"`` (default, \\(C \\times d_k\\), broadcast) or ``"position"``.
        init: ``"normal"`` (default, \\(\\mathcal N(0, 1)\\)), ``"kaiming_uniform"``,
            ``"kaiming_normal"`` or ``"frenkel_uniform"`` (see above).
        update: ``"auto"``, ``"segment"`` or ``"step"`` (see `Algorithm`).
    """

    algorithm = "drtp"
    defaults = {"target": "centred", "feedback": "channel", "init": "normal", "update": "auto"}
    choices = {
        "target": ("centred", "onehot"),
        "feedback": ("channel", "position"),
        "init": ("normal", "kaiming_uniform", "kaiming_normal", "frenkel_uniform"),
        "update": UPDATE_MODES,
    }
    supports_xla = True
    tap_granularity = "tensor"
    block_taps = True

    def _setup(self):
        hp = self.hparams
        self.feedback = []
        for tap in self.graph.taps:
            shape = (self.num_classes, tap.channels if hp["feedback"] == "channel" else tap.size)
            fan_in = shape[1]  # torch's fan_in of a (C, n_k) matrix: n_k, the tap's size
            if hp["init"] == "normal":
                value = self._rng.standard_normal(shape)
            elif hp["init"] == "kaiming_uniform":  # torch kaiming_uniform_(fan_in, linear)
                bound = np.sqrt(3.0 / fan_in)
                value = self._rng.uniform(-bound, bound, shape)
            elif hp["init"] == "kaiming_normal":  # torch kaiming_normal_(fan_in, linear)
                value = self._rng.standard_normal(shape) / np.sqrt(fan_in)
            else:  # "frenkel_uniform": Frenkel et al.'s He-uniform bound sqrt(6 / n_k)
                bound = np.sqrt(6.0 / fan_in)
                value = self._rng.uniform(-bound, bound, shape)
            self.feedback.append(self._fixed_matrix(f"drtp_feedback_{tap.index}", value))
        # string keys: a dict of trackables with int keys cannot be checkpointed (BackupAndRestore)
        self._feedback_of = {str(tap.index): fb for tap, fb in zip(self.graph.taps, self.feedback)}

    def _train_step(self, x, y, sample_weight):
        target = self._onehot(y)
        if self.hparams["target"] == "centred":
            target = target - 1.0 / self.num_classes
        per_position = self.hparams["feedback"] == "position"

        def segment_loss(segment, env):
            tap = segment.tap
            signal = tap_signal(tf.matmul(target, self._feedback_of[str(tap.index)]), tap, per_position)
            return tf.reduce_sum(tf.stop_gradient(signal) * tap.view(env[tap.key], training=True))

        env = self._train_segments(x, segment_loss, labels=y, sample_weight=sample_weight,
                                   teacher_logits=self._teacher_logits(x))
        return env[self.graph.output_key]
