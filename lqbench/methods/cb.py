r"""Continuous binarization (CB): a model transformation plus a staged schedule.

CB *is* two things, so it is chosen as ``method = "cb"`` and never through an optimizer name:

1. **transformation** (`transform`): every hidden activation of the float model becomes a
   `lqbench.continuous.PCF` (parametrised clipping, slope \\(m\\), scale \\(\alpha\\)); the
   binarization must leave activations real (``binarization.activations = false``): CB makes
   them binary itself;
2. **schedule** (`phases`, Algorithm 1 of the paper): pre-training with fixed PCFs
   (\\(m = 0.5\\), \\(\alpha = 2\\)), then one stage per hidden activation \\(l\\): activations
   before \\(l\\) are SBAF (\\(\alpha 1_{x > 0}\\)) and the layers before them frozen, PCF \\(l\\)
   learns \\(m_l, \alpha_l\\) with the penalty \\(\lambda_l |m_l|\\) or \\(\lambda_l m_l^2\\);
   \\(\lambda_l\\) is ``slope_lambdas[0|1|2]`` when the activation precedes a fully connected /
   convolution / pooling layer (`lqbench.continuous.following_kind`). The run ends with SBAF
   everywhere.

\\[ \text{PCF}(x) = \text{clip}\left(\frac{x}{m} + \frac{\alpha}{2}, 0, \alpha\right) \xrightarrow{m \to 0}
    \text{SBAF}(x) = \alpha \cdot 1_{x > 0}. \\]

Every stage uses a fresh Adam (the paper: "Vanilla Adam is used instead of SGD"). Stages
freeze layers, which the update-unlocked algorithms (DRTP, HSIC, SigpropTL) do not honour
yet: the combination is refused when a spec loads.

# References
- [Sakr et al., True Gradient-Based Training of Deep Binary Activated Neural Networks via
  Continuous Binarization (ICASSP 2018)](https://research.ibm.com/publications/true-gradient-based-training-of-deep-binary-activated-neural-networks-via-continuous-binarization), Algorithm 1 and §4
  (MNIST: L2, \\(\lambda = 1\\), first stage 200 epochs, others 100; CIFAR-10: \\(\lambda\\) =
  0.001 / 0.01 / 0.1). No public reference code.
"""
from __future__ import annotations

import tensorflow as tf

from lqbench import continuous
from lqbench.hparams import Hparam
from lqbench.methods.base import Method, Phase, split_epochs
from lqbench.optimizers import Adam

__all__ = ["ContinuousBinarization", "stage_epochs"]


def stage_epochs(epochs: int, stages: int, pretrain_fraction: float, first_stage_weight: float) -> list[int]:
    """Epochs of [pre-training, stage 1, ..., stage L]; every stage gets at least one epoch."""
    if epochs < stages:
        raise ValueError(f"method 'cb': epochs={epochs} is fewer than the {stages} stages (one per hidden activation)")
    weights = [first_stage_weight] + [1.0] * (stages - 1)
    total_w = sum(weights)
    fractions = [pretrain_fraction] + [(1 - pretrain_fraction) * w / total_w for w in weights]
    counts = split_epochs(epochs, fractions)
    for i in range(1, len(counts)):  # each stage needs an epoch; take them from pre-training, then the largest
        while counts[i] == 0:
            donor = 0 if counts[0] > 0 else max(range(1, len(counts)), key=lambda j: counts[j])
            counts[donor] -= 1
            counts[i] += 1
    return counts


def _inner(trainer):
    inner = getattr(trainer, "model", None)
    return inner if isinstance(inner, tf.keras.Model) else trainer


class ContinuousBinarization(Method):
    """Paper 002's continuous binarization (see the module docstring)."""

    name = "cb"
    hparams = (
        Hparam("pretrain_fraction", "float", 0.4, low=0, high=1, high_inclusive=False),
        Hparam("first_stage_weight", "float", 2.0, low=0, low_inclusive=False,
               doc="stage 1 gets this many times the epochs of later stages (MNIST: 200 vs 100)"),
        Hparam("slope_regularizer", "str", "l2", choices=continuous.REGULARIZERS),
        Hparam("slope_lambdas", "floats", [0.001, 0.01, 0.1], low=0, length=3,
               doc="lambda when the activation precedes an FC / conv / pooling layer"),
        Hparam("initial_slope", "float", 0.5, low=0, low_inclusive=False),
        Hparam("initial_scale", "float", 2.0, low=0, low_inclusive=False),
    )
    supports_unlocked = False
    binary_activations = False
    multi_phase = True

    def transform(self, model: tf.keras.Model) -> tf.keras.Model:
        """``model`` with `PCF` activations (unchanged when it already has them)."""
        if continuous.pcf_layers(model):
            return model
        return continuous.from_float(model, slope=self.initial_slope, scale=self.initial_scale)

    def optimizer(self, learning_rate=1e-3, weight_decay: float = 0.0):
        return Adam(learning_rate, weight_decay=weight_decay)

    def prepare(self, model) -> None:
        """Remember which layers train, set the penalty kind, start from fixed PCFs (pre-training)."""
        inner = _inner(model)
        pcfs = continuous.pcf_layers(inner)
        if not pcfs:
            raise ValueError("method 'cb' needs PCF activations: build the model with lqbench.continuous.mlp/cnn "
                             "or convert it with lqbench.continuous.from_float (experiment does it)")
        super().prepare(model)
        self._trainable = {id(layer): layer.trainable for layer in inner.layers}
        for layer in pcfs:
            layer.slope_regularizer = self.slope_regularizer
            layer.binary.assign(0.0)
            layer.slope_lambda.assign(0.0)
            layer.trainable = False

    def finalize(self, model) -> None:
        """SBAF everywhere, penalties off, the original trainability back."""
        inner = _inner(model)
        continuous.set_binary(inner, True)
        for layer in continuous.pcf_layers(inner):
            layer.slope_lambda.assign(0.0)
        trainable = getattr(self, "_trainable", {})
        for layer in inner.layers:
            layer.trainable = trainable.get(id(layer), layer.trainable)

    def callbacks(self, epochs: int):
        raise NotImplementedError("method 'cb' changes layers between stages: run it with lqbench.methods.fit")

    def _stage(self, index: int):
        def before(trainer):
            model = _inner(trainer)
            pcfs = continuous.pcf_layers(model)
            lambdas = dict(zip(("fc", "conv", "pool"), self.slope_lambdas))
            position = {id(layer): i for i, layer in enumerate(model.layers)}
            for i, other in enumerate(pcfs):
                other.binary.assign(1.0 if i < index else 0.0)
                kind = continuous.following_kind(model, other)
                other.slope_lambda.assign(lambdas[kind] if i == index else 0.0)
                other.trainable = i == index
            boundary = position[id(pcfs[index - 1])] if index > 0 else -1
            for other in model.layers:
                if not isinstance(other, continuous.PCF):
                    other.trainable = position[id(other)] > boundary and self._trainable.get(id(other), True)
        return before

    def phases(self, epochs: int, model=None) -> list[Phase]:
        if model is None:
            raise ValueError("method 'cb': phases(epochs, model) needs the model (one stage per PCF activation)")
        stages = len(continuous.pcf_layers(_inner(model)))
        counts = stage_epochs(int(epochs), stages, self.pretrain_fraction, self.first_stage_weight)
        out = [Phase("pretrain", counts[0], self.optimizer)]
        out += [Phase(f"stage{i + 1}", counts[i + 1], self.optimizer, before=self._stage(i)) for i in range(stages)]
        return out
