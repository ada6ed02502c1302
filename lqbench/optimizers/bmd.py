r"""Binary mirror descent (BMD, Ajanthan et al. 2021) as used in paper 001.

The forward pass uses the mirror map of the latent weights,

\\[ w^b = \tanh(\beta_t w), \qquad \beta_t = \rho^{\lfloor t / \text{interval} \rfloor}, \\]

and the gradient with respect to \\(w^b\\) is applied to \\(w\\) unchanged (a full
straight-through estimator: \\(\partial w^b / \partial w := 1\\)); \\(w\\) is updated by
Adam. As \\(\beta_t \to \infty\\) the map becomes \\(sign\\); at the end of training the
kernels are set to \\(sign(w)\\) (`lqbench.callbacks.BMDSchedule`). Defaults
\\(\rho = 1.01\\), interval 100 steps (methods.md §4). The authors' code multiplies
\\(\beta\\) once per epoch: use ``interval = steps_per_epoch``.

`prepare("bmd", model)` swaps each binary kernel's sign quantizer for a `MirrorTanh`
sharing one \\(\beta\\) variable; `BMDSchedule` updates it before every training batch.
"""
from __future__ import annotations

import larq as lq
import tensorflow as tf

__all__ = ["BMD", "MirrorTanh", "bmd_beta"]


def bmd_beta(step: int, rho: float, interval: int) -> float:
    r"""\\(\beta_t = \rho^{\lfloor t / \text{interval} \rfloor}\\)."""
    return float(rho) ** (int(step) // int(interval))


@tf.custom_gradient
def _tanh_identity_gradient(w, beta):
    def grad(dy):
        return dy, tf.zeros_like(beta)

    return tf.tanh(beta * w), grad


@lq.utils.register_keras_custom_object
class MirrorTanh(lq.quantizers._BaseQuantizer):
    r"""\\(q(w) = \tanh(\beta w)\\) forward, identity backward; marked 1-bit (precision 1).

    # Arguments
        beta: initial \\(\beta\\), or a shared non-trainable `tf.Variable` holding it.
    """

    precision = 1

    def __init__(self, beta: float | tf.Variable = 1.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(beta, tf.Variable):
            object.__setattr__(self, "beta", beta)  # shared, not tracked as this layer's weight
        else:
            if not float(beta) > 0:
                raise ValueError(f"MirrorTanh: beta={beta!r} must be > 0")
            object.__setattr__(self, "beta", tf.Variable(float(beta), trainable=False, dtype=tf.float32,
                                                         name="bmd_beta"))

    def call(self, inputs):
        beta = tf.cast(self.beta, inputs.dtype)
        return super().call(_tanh_identity_gradient(inputs, beta))

    def get_config(self):
        return {**super().get_config(), "beta": float(tf.keras.backend.get_value(self.beta))}


from lqbench.optimizers.projected import ProjectedAdam  # noqa: E402


@lq.utils.register_keras_custom_object
class BMD(ProjectedAdam):
    r"""Adam on the latent BMD weights (no projection); ``frozen`` for the final fine-tuning.

    The mirror map itself lives in the forward pass (`MirrorTanh`).
    """

    def __init__(self, learning_rate=1e-3, frozen=False, name: str = "BMD", **kwargs):
        super().__init__(learning_rate=learning_rate, frozen=frozen, name=name, **kwargs)

    def project(self, w, dtype):
        return w
