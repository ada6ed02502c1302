r"""Knowledge distillation with ReActNet's distributional loss, usable with every method.

For student logits \\(z_S\\) and (frozen, detached) teacher logits \\(z_T\\) over a batch of
\\(B\\) samples and \\(C\\) classes, at temperature \\(T\\):

\\[ \mathcal{L}_{KD} = -\frac{T^2}{B} \sum_{i=1}^B \sum_{c=1}^C
    \text{softmax}(z_T^{(i)} / T)_c \log \text{softmax}(z_S^{(i)} / T)_c \\]

(ReActNet and BNEW use \\(T = 1\\), where Hinton et al.'s \\(T^2\\) gradient rescaling is 1).
The training loss is

\\[ \mathcal{L} = \alpha\, \mathcal{L}_{KD} + w_{CE}\, \mathcal{L}_{CE} + \text{(layer losses)}, \\]

``alpha=1, ce_weight=0`` (the defaults) is the distributional loss alone, as in ReActNet and in
the BNEW authors' ``dist_main.py``; ``ce_weight=1`` adds the compiled loss (cross-entropy on the
labels) to it, the spec's "KD added to CE"; Hinton et al.'s convex mix is
``alpha=a, ce_weight=1-a``.

`Distiller` is a `tf.keras.Model` usable with ``compile``/``fit``/``evaluate`` and every
`lqbench.methods` method (including the multi-phase ones): it predicts with the student,
exposes it as ``.model`` (so binary kernels are found there) and hides the teacher from the
binary-kernel search. It round-trips through ``get_config``/``from_config`` and saving. In an
`lqbench.ExperimentSpec` it is the ``distillation`` table (``teacher`` = a saved model),
``lqbench train --teacher PATH --distill-alpha A``.

!!! example
    ```python
    distiller = lqbench.distillation.Distiller(binary_student, float_teacher)
    lqbench.methods.fit(distiller, train, method=lqbench.methods.get("bop"), epochs=10, validation_data=val)
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

__all__ = ["Distiller", "distribution_loss"]


def distribution_loss(teacher_logits, student_logits, temperature: float = 1.0):
    r"""\\(-T^2 \text{mean}_i \sum_c \text{softmax}(z_T/T)_c \log\text{softmax}(z_S/T)_c\\), teacher detached."""
    t = tf.cast(temperature, student_logits.dtype)
    target = tf.stop_gradient(tf.nn.softmax(tf.cast(teacher_logits, student_logits.dtype) / t, axis=-1))
    log_probs = tf.nn.log_softmax(student_logits / t, axis=-1)
    return -(t * t) * tf.reduce_mean(tf.reduce_sum(target * log_probs, axis=-1))


@lq.utils.register_keras_custom_object
class Distiller(tf.keras.Model):
    r"""Trains ``student`` on \\(\alpha \mathcal{L}_{KD}(z_T, z_S) + w_{CE} \mathcal{L}_{compiled}\\).

    # Arguments
        student: the model to train (outputs logits).
        teacher: a trained model with logits of the same shape; frozen and run in inference mode.
        alpha: weight \\(\alpha \geq 0\\) of the distributional loss.
        temperature: softmax temperature \\(T > 0\\).
        ce_weight: weight \\(w_{CE} \geq 0\\) of the compiled loss on the labels.
    """

    def __init__(self, student: tf.keras.Model, teacher: tf.keras.Model, alpha: float = 1.0,
                 temperature: float = 1.0, ce_weight: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        for label, value in (("alpha", alpha), ("ce_weight", ce_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigTypeError(f"Distiller: {label}={value!r} must be a number")
            if not 0.0 <= float(value) < float("inf"):
                raise ConfigValueError(f"Distiller: {label}={value!r} must be a finite number >= 0")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not float(temperature) > 0:
            raise ConfigValueError(f"Distiller: temperature={temperature!r} must be > 0")
        if float(alpha) == 0.0 and float(ce_weight) == 0.0:
            raise ConfigValueError("Distiller: alpha and ce_weight are both 0: nothing to train on")
        self.model = student
        self.teacher = teacher
        teacher.trainable = False
        object.__setattr__(teacher, "_lqbench_skip", True)
        self.alpha, self.temperature, self.ce_weight = float(alpha), float(temperature), float(ce_weight)
        self.kd_tracker = tf.keras.metrics.Mean(name="kd_loss")

    @property
    def student(self) -> tf.keras.Model:
        return self.model

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def train_step(self, data):
        x, y, sample_weight = tf.keras.utils.unpack_x_y_sample_weight(data)
        teacher_logits = tf.stop_gradient(self.teacher(x, training=False))
        with tf.GradientTape() as tape:
            logits = self.model(x, training=True)
            kd = distribution_loss(teacher_logits, logits, self.temperature)
            loss = self.alpha * kd
            if self.ce_weight:
                loss += self.ce_weight * self.compiled_loss(y, logits, sample_weight)
            if self.model.losses:
                loss += tf.add_n(self.model.losses)
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.kd_tracker.update_state(kd)
        self.compiled_metrics.update_state(y, logits, sample_weight)
        return {**{m.name: m.result() for m in self.metrics if m.name != "loss"}, "loss": loss}

    def get_config(self):
        return {
            "student": tf.keras.utils.serialize_keras_object(self.model),
            "teacher": tf.keras.utils.serialize_keras_object(self.teacher),
            "alpha": self.alpha, "temperature": self.temperature, "ce_weight": self.ce_weight, "name": self.name,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        student = tf.keras.layers.deserialize(config.pop("student"), custom_objects=custom_objects)
        teacher = tf.keras.layers.deserialize(config.pop("teacher"), custom_objects=custom_objects)
        return cls(student, teacher, **config)
