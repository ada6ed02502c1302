r"""Knowledge distillation with ReActNet's distributional loss, usable with every algorithm and method.

For student logits \\(z_S\\) and (frozen, detached) teacher logits \\(z_T\\) over a batch of
\\(B\\) samples and \\(C\\) classes, at temperature \\(T\\):

\\[ \mathcal{L}_{KD} = -\frac{T^2}{B} \sum_{i=1}^B w_i \sum_{c=1}^C
    \text{softmax}(z_T^{(i)} / T)_c \log \text{softmax}(z_S^{(i)} / T)_c \\]

(\\(w_i = 1\\) unless sample weights are given; ReActNet and BNEW use \\(T = 1\\), where Hinton
et al.'s \\(T^2\\) gradient rescaling is 1). The output loss a distilling algorithm trains on is

\\[ \mathcal{L} = \alpha\, \mathcal{L}_{KD} + w_{CE}\, \mathcal{L}_{CE} + \text{(layer losses)}, \\]

``alpha=1, ce_weight=0`` (the defaults) is the distributional loss alone, as in ReActNet and in
the BNEW authors' ``dist_main.py``; ``ce_weight=1`` adds the compiled loss (cross-entropy on the
labels) to it, the spec's "KD added to CE"; Hinton et al.'s convex mix is
``alpha=a, ce_weight=1-a``. Its gradient with respect to the logits, times \\(B\\), is the
output error the algorithms use:

\\[ e = w_{CE} \big(\text{softmax}(z_S) - \text{onehot}(y)\big)
      + \alpha\, T \big(\text{softmax}(z_S / T) - \text{softmax}(z_T / T)\big). \\]

`Distillation` holds the teacher and the three weights; it is not a model of its own: every
`lqbench.algorithms.Algorithm` takes one (``algorithms.build(name, model, distillation=...)``)
and then trains its output layer on \\(\mathcal{L}\\) (what each algorithm's hidden layers
receive is in its own docstring; backprop differentiates \\(\mathcal{L}\\) through the whole
network). The teacher runs in inference mode, outside every gradient, and is frozen and hidden
from the binary-kernel search (`lqbench.walk`). In an `lqbench.ExperimentSpec` it is the
``distillation`` table (``teacher`` = a saved model), ``lqbench train --teacher PATH
--distill-alpha A`` (``--distill-teacher`` is the same flag), with any ``algorithm``.

!!! example
    ```python
    distill = lqbench.distillation.Distillation(float_teacher, alpha=1.0, temperature=1.0)
    trainer = lqbench.algorithms.build("drtp", binary_student, distillation=distill)
    lqbench.methods.fit(trainer, train, method=lqbench.methods.get("bop"), epochs=10, validation_data=val)
    ```

# References
- [Liu et al., ReActNet (ECCV 2020)](https://arxiv.org/abs/2003.03488), §4.3 (distributional
  loss); reference code: https://github.com/liuzechun/ReActNet (``utils/KD_loss.py``).
- [Hinton, Vinyals & Dean, Distilling the Knowledge in a Neural Network (2015)](https://arxiv.org/abs/1503.02531).
- The distillation runs of paper 001: https://github.com/Alasdair-P/bnew (``KL_loss.py``, ``dist_main.py``).
"""
from __future__ import annotations

import larq as lq
import tensorflow as tf

from lqbench.errors import ConfigTypeError, ConfigValueError

__all__ = ["Distillation", "distribution_loss"]


def distribution_loss(teacher_logits, student_logits, temperature: float = 1.0, sample_weight=None):
    r"""\\(-\frac{T^2}{B} \sum_i w_i \sum_c \text{softmax}(z_T/T)_c \log\text{softmax}(z_S/T)_c\\), teacher detached.

    ``sample_weight`` (shape ``(B,)`` or ``(B, 1)``, default all ones) weights samples as Keras's
    ``SUM_OVER_BATCH_SIZE`` reduction does: the weighted sum divided by \\(B\\).
    """
    t = tf.cast(temperature, student_logits.dtype)
    target = tf.stop_gradient(tf.nn.softmax(tf.cast(teacher_logits, student_logits.dtype) / t, axis=-1))
    per_sample = -tf.reduce_sum(target * tf.nn.log_softmax(student_logits / t, axis=-1), axis=-1)
    if sample_weight is not None:
        per_sample = per_sample * tf.reshape(tf.cast(sample_weight, per_sample.dtype), [-1])
    return (t * t) * tf.reduce_mean(per_sample)


@lq.utils.register_keras_custom_object
class Distillation:
    r"""What to distil from: a frozen teacher and the weights of
    \\(\alpha \mathcal{L}_{KD} + w_{CE} \mathcal{L}_{CE}\\).

    # Arguments
        teacher: a trained Keras model whose logits have the student's shape; it is frozen
            (``trainable = False``) and run in inference mode.
        alpha: weight \\(\alpha \geq 0\\) of the distributional loss.
        temperature: softmax temperature \\(T > 0\\).
        ce_weight: weight \\(w_{CE} \geq 0\\) of the compiled loss on the labels.

    # Raises
        ConfigTypeError / ConfigValueError: a weight that is not a finite number >= 0, a
            temperature <= 0, or ``alpha = ce_weight = 0`` (nothing to train on).
    """

    def __init__(self, teacher: tf.keras.Model, alpha: float = 1.0, temperature: float = 1.0,
                 ce_weight: float = 0.0):
        if not isinstance(teacher, tf.keras.Model):
            raise ConfigTypeError(f"distillation: teacher must be a tf.keras.Model, got {type(teacher).__name__}")
        for label, value in (("alpha", alpha), ("ce_weight", ce_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigTypeError(f"distillation: {label}={value!r} must be a number")
            if not 0.0 <= float(value) < float("inf"):
                raise ConfigValueError(f"distillation: {label}={value!r} must be a finite number >= 0")
        if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                or not 0.0 < float(temperature) < float("inf")):
            raise ConfigValueError(f"distillation: temperature={temperature!r} must be a finite number > 0")
        if float(alpha) == 0.0 and float(ce_weight) == 0.0:
            raise ConfigValueError("distillation: alpha and ce_weight are both 0: nothing to train on")
        teacher.trainable = False
        object.__setattr__(teacher, "_lqbench_skip", True)  # not searched for binary kernels (lqbench.walk)
        self.teacher = teacher
        self.alpha, self.temperature, self.ce_weight = float(alpha), float(temperature), float(ce_weight)

    def teacher_logits(self, x) -> tf.Tensor:
        """The teacher's logits on ``x``: inference mode, gradient stopped."""
        return tf.stop_gradient(self.teacher(x, training=False))

    def kd_loss(self, teacher_logits, logits, sample_weight=None) -> tf.Tensor:
        """\\(\\mathcal{L}_{KD}\\) of a batch (`distribution_loss` at this temperature)."""
        return distribution_loss(teacher_logits, logits, self.temperature, sample_weight)

    def get_config(self) -> dict:
        return {"teacher": tf.keras.layers.serialize(self.teacher), "alpha": self.alpha,
                "temperature": self.temperature, "ce_weight": self.ce_weight}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """The teacher is rebuilt from its architecture; its weights come with the saved trainer."""
        config = dict(config)
        teacher = tf.keras.layers.deserialize(config.pop("teacher"), custom_objects=custom_objects)
        return cls(teacher, **config)

    def __repr__(self) -> str:
        return (f"Distillation(teacher={self.teacher.name!r}, alpha={self.alpha}, temperature={self.temperature}, "
                f"ce_weight={self.ce_weight})")
