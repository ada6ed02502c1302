r"""Binary mirror descent (BMD, Ajanthan et al. 2021) as used in paper 001.

The forward pass uses the mirror map of the latent weights,

\\[ w^b = \tanh(\beta_t w), \\]

and the gradient with respect to \\(w^b\\) is applied to \\(w\\) unchanged (a full
straight-through estimator: \\(\partial w^b / \partial w := 1\\)); \\(w\\) is updated by
Adam and is **not** clipped (the mirror map keeps \\(w^b\\) in \\((-1, 1)\\); the authors'
``mirror_binary`` never clamps \\(w\\)): `prepare("bmd", model)` lifts Larq's
`WeightClip` from the binary kernels with `release_weight_clip` and `finalize` puts it
back with `restore_weight_clip`. As \\(\beta_t \to \infty\\) the map becomes
\\(sign\\); at the end of training the kernels are set to \\(sign(w)\\)
(`lqbench.callbacks.BMDSchedule`).

The temperature grows geometrically and is capped at `BETA_MAX` \\(= 10^{35}\\), as in the
authors' code (``prox.py``, ``prox_opt.adjust_reg``):

- ``interval="epoch"`` (the authors' rule, the default): \\(\beta\\) is updated once per
  epoch, after the epoch, to \\(\rho^{e}\\) with \\(e\\) the epoch that just ended, so epoch
  \\(e\\) (0-based) trains with \\(\beta_e = \min(\rho^{\max(e - 1, 0)}, 10^{35})\\);
- ``interval=n`` (an integer): \\(\beta_t = \min(\rho^{\lfloor t / n \rfloor}, 10^{35})\\) at
  training step \\(t\\).

Defaults \\(\rho = 1.01\\) (paper 001 searches \\(\rho \in \{1.003, 1.01, 1.03, 1.1, 1.3\}\\)).
The power is evaluated in log space, so no \\(t\\) overflows (``1.3 ** 2706`` does in Python).

`prepare("bmd", model)` swaps each binary kernel's sign quantizer for a `MirrorTanh`
sharing one \\(\beta\\) variable; `BMDSchedule` updates it before every training batch.

# References
- Ajanthan et al., *Mirror Descent View for Neural Network Quantization*, AISTATS 2021.
- Paren & Poudel, *Training Binarized Neural Networks the Easy Way* (paper 001), code
  ``Alasdair-P/bnew`` @f0c2019, ``prox.py`` (``adjust_reg``, ``pre_update``/``post_update``
  for ``mirror_binary``) and ``binary_main.py:82-95``.
"""
from __future__ import annotations

import math

import larq as lq
import tensorflow as tf

from lqbench.optimizers._common import binary_kernel_slots, latent

__all__ = ["BETA_MAX", "BMD", "MirrorTanh", "bmd_beta", "bmd_beta_epoch", "release_weight_clip",
           "restore_weight_clip"]

#: The authors' cap on \\(\beta\\) (``min(rho ** epoch, 10 ** 35)`` in ``prox.py``).
BETA_MAX = 1e35
_SAVED_CONSTRAINT = "_lqbench_bmd_saved_constraint"


def _capped_power(rho: float, n: int) -> float:
    rho, n = float(rho), max(int(n), 0)
    if n == 0 or rho == 1.0:
        return 1.0
    if n * math.log(rho) >= math.log(BETA_MAX):
        return BETA_MAX
    return min(rho**n, BETA_MAX)


def bmd_beta(step: int, rho: float, interval) -> float:
    r"""\\(\beta_t = \min(\rho^{\lfloor t / \text{interval} \rfloor}, 10^{35})\\) at step ``step``.

    ``interval="epoch"`` is not a step rule: use `bmd_beta_epoch`.
    """
    if interval == "epoch":
        raise ValueError("bmd_beta: interval='epoch' is a per-epoch rule; use bmd_beta_epoch(epoch, rho)")
    return _capped_power(rho, int(step) // int(interval))


def bmd_beta_epoch(epoch: int, rho: float) -> float:
    r"""The authors' \\(\beta\\) during 0-based epoch ``epoch``: \\(\min(\rho^{\max(e - 1, 0)}, 10^{35})\\).

    ``prox_opt`` starts at \\(\rho^0\\) and, after epoch \\(e\\), sets \\(\beta = \rho^{e}\\).
    """
    return _capped_power(rho, int(epoch) - 1)


def release_weight_clip(model) -> int:
    """Lift the variable constraint (Larq's `WeightClip`) from every binary kernel of ``model``.

    Kept on the variable, so `restore_weight_clip` can put it back; the layers' configs are
    untouched. Returns the number of kernels released.
    """
    count = 0
    for layer, _, k_attr in binary_kernel_slots(model):
        variable = latent(getattr(layer, k_attr))
        if getattr(variable, "_constraint", None) is not None:
            setattr(variable, _SAVED_CONSTRAINT, variable._constraint)
            variable._constraint = None
            count += 1
    return count


def restore_weight_clip(model) -> int:
    """Undo `release_weight_clip`; returns the number of constraints restored."""
    count = 0
    for layer, _, k_attr in binary_kernel_slots(model):
        variable = latent(getattr(layer, k_attr))
        saved = getattr(variable, _SAVED_CONSTRAINT, None)
        if saved is not None:
            variable._constraint = saved
            setattr(variable, _SAVED_CONSTRAINT, None)
            count += 1
    return count


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
