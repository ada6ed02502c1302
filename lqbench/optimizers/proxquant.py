r"""ProxQuant (Bai et al. 2019): Adam followed by the binary proximal operator.

With \\(\kappa = \eta_t \lambda_e\\) (current learning rate times
\\(\lambda_e = \text{reg\_rate} \cdot e\\) at epoch \\(e\\), 0-based, as in the authors' code),
each step ends with \\(w \leftarrow \text{clip}(\text{prox}_\kappa(w), -1, 1)\\):

\\[ \text{prox}^{L1}_\kappa(w) = sign(w)\left(1 + sign(|w| - 1)\max(||w| - 1| - \kappa, 0)\right)
    \qquad \text{(soft threshold towards } \pm 1\text{, the default)} \\]
\\[ \text{prox}^{L2}_\kappa(w) = \frac{w + \kappa\, sign(w)}{1 + \kappa}. \\]

At the freeze epoch `lqbench.callbacks.ProxQuantSchedule` sets \\(w \leftarrow sign(w)\\) and
freezes the kernels; the other parameters are fine-tuned for the remaining epochs. The
forward pass uses \\(w\\) itself (`prepare("proxquant", model)` swaps the sign quantizer for
the identity). Larq's sign convention \\(sign(0) = +1\\) is used throughout.

!!! example
    ```python
    optimizer = lqbench.optimizers.build("proxquant", learning_rate=1e-3, prox="l1")
    history = lqbench.recipes.fit(model, train, epochs=30, optimizer="proxquant")  # with its schedule
    ```

# References
- [Bai, Wang & Liberty, ProxQuant: Quantized Neural Networks via Proximal Operators,
  ICLR 2019](https://arxiv.org/abs/1810.00861); code: https://github.com/allenbai01/ProxQuant
  (its binary proximal operators).
- [Paren & Poudel, Training Binarized Neural Networks the Easy Way, BMVC 2022
  (paper 001)](https://bmvc2022.mpi-inf.mpg.de/35/); code: https://github.com/Alasdair-P/bnew
  (the ProxQuant baseline: ``prox.py``, ``l1_binary`` / ``l2_binary``).
"""
from __future__ import annotations

import larq as lq
import tensorflow as tf

from lqbench.optimizers._common import check_range, decayed_hyper
from lqbench.optimizers.projected import ProjectedAdam

__all__ = ["ProxQuant", "prox_l1", "prox_l2"]

PROX_TYPES = ("l1", "l2")


def prox_l1(w, kappa):
    r"""\\(sign(w)(1 + sign(|w| - 1)\max(||w| - 1| - \kappa, 0))\\)."""
    a = tf.abs(w) - 1.0
    return lq.math.sign(w) * (1.0 + tf.sign(a) * tf.maximum(tf.abs(a) - kappa, 0.0))


def prox_l2(w, kappa):
    r"""\\((w + \kappa\, sign(w)) / (1 + \kappa)\\)."""
    return (w + kappa * lq.math.sign(w)) / (1.0 + kappa)


@lq.utils.register_keras_custom_object
class ProxQuant(ProjectedAdam):
    r"""Adam + binary prox with \\(\kappa = \eta_t \cdot \text{reg}\\), then clip to [-1, 1].

    # Arguments
        learning_rate: Adam learning rate (float or schedule); also scales \\(\kappa\\).
        reg: \\(\lambda_e \geq 0\\), set per epoch by `ProxQuantSchedule` (``reg_rate * epoch``).
        prox: ``"l1"`` (default, the authors' binary prox) or ``"l2"``.
        frozen: leave the kernels unchanged (after the freeze epoch).
        project_first: apply the prox before the Adam step (the order of paper 001's code).

    !!! example
        ```python
        kernels_only = lqbench.optimizers.ProxQuant(1e-3, reg=1e-4, prox="l2")
        ```

    # References
        - [Bai, Wang & Liberty, ProxQuant: Quantized Neural Networks via Proximal Operators,
          ICLR 2019](https://arxiv.org/abs/1810.00861); code: https://github.com/allenbai01/ProxQuant
    """

    _EXTRA_HYPERS = ("reg",)

    def __init__(self, learning_rate=1e-3, reg=0.0, prox: str = "l1", frozen=False, name: str = "ProxQuant",
                 **kwargs):
        if prox not in PROX_TYPES:
            raise ValueError(f"{name}: unknown prox {prox!r}; allowed: {', '.join(PROX_TYPES)}")
        check_range("reg", reg, 0.0, float("inf"), low_inclusive=True, where=name)
        super().__init__(learning_rate=learning_rate, frozen=frozen, name=name, **kwargs)
        self._set_hyper("reg", reg)
        self.prox = prox

    def project(self, w, dtype):
        kappa = self._decayed_lr(dtype) * decayed_hyper(self, "reg", dtype)
        out = prox_l1(w, kappa) if self.prox == "l1" else prox_l2(w, kappa)
        return tf.clip_by_value(out, -1.0, 1.0)

    def get_config(self):
        return {**super().get_config(), "prox": self.prox}
