r"""Knowledge distillation with ReActNet's distributional loss (papers 001 §5).

For student logits \\(z_S\\) and (frozen, detached) teacher logits \\(z_T\\) over a batch of
\\(B\\) samples and \\(C\\) classes, at temperature \\(T\\):

\\[ \mathcal{L}_{KD} = -\frac{T^2}{B} \sum_{i=1}^B \sum_{c=1}^C
    \text{softmax}(z_T^{(i)} / T)_c \log \text{softmax}(z_S^{(i)} / T)_c \\]

(ReActNet and BNEW use \\(T = 1\\), where the \\(T^2\\) gradient rescaling of Hinton et al.
is 1). The training loss is \\(\alpha \mathcal{L}_{KD} + (1 - \alpha) \mathcal{L}_{CE}\\):
``alpha=1`` (the default) is the distributional loss alone, as in ReActNet; ``alpha < 1``
adds the compiled loss (cross-entropy on the labels) to it.

`Distiller` is a `tf.keras.Model` usable with ``compile``/``fit``/``evaluate`` and
`lqbench.recipes.fit` (every optimizer, including the multi-phase ones): it predicts with the
student, exposes it as ``.model`` (so binary kernels are found there) and hides the teacher
from the binary-kernel search.

!!! example
    ```python
    distiller = lqbench.distillation.Distiller(binary_student, float_teacher)
    lqbench.recipes.fit(distiller, train, epochs=10, optimizer="bop", validation_data=val)
    ```
"""
from __future__ import annotations

import larq as lq
import tensorflow as tf

__all__ = ["Distiller", "distribution_loss"]


def distribution_loss(teacher_logits, student_logits, temperature: float = 1.0):
    r"""\\(-T^2 \text{mean}_i \sum_c \text{softmax}(z_T/T)_c \log\text{softmax}(z_S/T)_c\\), teacher detached."""
    t = tf.cast(temperature, student_logits.dtype)
    target = tf.stop_gradient(tf.nn.softmax(tf.cast(teacher_logits, student_logits.dtype) / t, axis=-1))
    log_probs = tf.nn.log_softmax(student_logits / t, axis=-1)
    return -(t * t) * tf.reduce_mean(tf.reduce_sum(target * log_probs, axis=-1))


@lq.utils.register_keras_custom_object
class Distiller(tf.keras.Model):
    r"""Trains ``student`` on \\(\alpha \mathcal{L}_{KD}(z_T, z_S) + (1 - \alpha) \mathcal{L}_{compiled}\\).

    # Arguments
        student: the model to train (outputs logits).
        teacher: a trained model with logits of the same shape; frozen and run in inference mode.
        alpha: weight of the distributional loss in [0, 1].
        temperature: softmax temperature \\(T > 0\\).
    """

    def __init__(self, student: tf.keras.Model, teacher: tf.keras.Model, alpha: float = 1.0,
                 temperature: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"Distiller: alpha={alpha!r} must be in [0, 1]")
        if not float(temperature) > 0:
            raise ValueError(f"Distiller: temperature={temperature!r} must be > 0")
        self.model = student
        self.teacher = teacher
        teacher.trainable = False
        object.__setattr__(teacher, "_lqbench_skip", True)
        self.alpha, self.temperature = float(alpha), float(temperature)
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
            if self.alpha < 1.0:
                loss += (1.0 - self.alpha) * self.compiled_loss(y, logits, sample_weight,
                                                                 regularization_losses=self.model.losses)
            elif self.model.losses:
                loss += tf.add_n(self.model.losses)
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.kd_tracker.update_state(kd)
        self.compiled_metrics.update_state(y, logits, sample_weight)
        return {**{m.name: m.result() for m in self.metrics if m.name != "loss"}, "loss": loss}

    def get_config(self):
        return {"alpha": self.alpha, "temperature": self.temperature}
