r"""ProxQuant: Adam followed by the binary proximal operator, then a sign freeze.

With \\(\kappa = \eta_t \lambda_e\\), \\(\lambda_e = \text{reg\_rate} \cdot e\\) (epoch
\\(e\\), 0-based), each step of `lqbench.optimizers.ProxQuant` ends with
\\(w \leftarrow \text{clip}(\text{prox}_\kappa(w), -1, 1)\\), the L1 prox (soft threshold
towards \\(\pm 1\\)) by default. At ``freeze_fraction`` of the epochs the kernels are set to
\\(sign(w)\\) and frozen, and the other parameters are fine-tuned for the remaining epochs.
The forward pass uses \\(w\\) itself (`lqbench.optimizers.RealKernel`).

# References
- [Bai, Wang & Liberty, ProxQuant: Quantized Neural Networks via Proximal Operators
  (ICLR 2019)](https://arxiv.org/abs/1810.00861); reference code:
  https://github.com/allenbai01/ProxQuant.
- The ProxQuant baseline of paper 001: https://github.com/Alasdair-P/bnew (``prox.py``,
  ``l1_binary`` / ``l2_binary``).
"""
from __future__ import annotations

import math

import larq as lq
import tensorflow as tf

from lqbench.callbacks import FinalizeBinaryKernels, find_optimizer, get_hyper, set_hyper
from lqbench.hparams import Hparam
from lqbench.methods.base import ProjectedKernelsMethod
from lqbench.optimizers import Adam, _common
from lqbench.optimizers import ProxQuant as ProxQuantRule

__all__ = ["ProxQuant", "ProxQuantSchedule"]


@lq.utils.register_keras_custom_object
class ProxQuantSchedule(tf.keras.callbacks.Callback):
    r"""ProxQuant's homotopy \\(\lambda_e = \text{reg\_rate} \cdot e\\) and its freeze.

    From epoch ``freeze_epoch`` on (0-based, counted from the fit's first epoch) the binary
    kernels are set to \\(sign(w)\\) and frozen; ``freeze_epoch=None`` never freezes.
    """

    def __init__(self, reg_rate: float = 1e-4, freeze_epoch: int | None = None):
        super().__init__()
        _common.check_range("reg_rate", reg_rate, 0.0, math.inf, low_inclusive=True, where="ProxQuantSchedule")
        self.reg_rate, self.freeze_epoch = float(reg_rate), freeze_epoch
        self._start = None

    def on_train_begin(self, logs=None):
        self.optimizer = find_optimizer(self.model, ProxQuantRule, "ProxQuantSchedule")
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._start is None:
            self._start = epoch
        e = epoch - self._start
        frozen = self.freeze_epoch is not None and e >= self.freeze_epoch
        if frozen and get_hyper(self.optimizer, "frozen") < 0.5:
            _common.project_sign(self.model)
        set_hyper(self.optimizer, "reg", self.reg_rate * e)
        set_hyper(self.optimizer, "frozen", 1.0 if frozen else 0.0)

    def get_config(self):
        return {"reg_rate": self.reg_rate, "freeze_epoch": self.freeze_epoch}


class ProxQuant(ProjectedKernelsMethod):
    """ProxQuant in one fit: prox steps with a growing \\(\\lambda\\), then sign + freeze."""

    name = "proxquant"
    hparams = (
        Hparam("prox", "str", "l1", choices=("l1", "l2")),
        Hparam("reg_rate", "float", 1e-4, low=0),
        Hparam("freeze_fraction", "float", 2 / 3, low=0, high=1),
    )
    requires_binary_kernels = True
    multi_phase = True

    def optimizer(self, learning_rate=1e-3, weight_decay: float = 0.0):
        return _common.case(ProxQuantRule(learning_rate, prox=self.prox), Adam(learning_rate, weight_decay=weight_decay),
                            name="case_proxquant")

    def callbacks(self, epochs: int):
        freeze = int(round(self.freeze_fraction * epochs))
        return [ProxQuantSchedule(self.reg_rate, freeze_epoch=freeze if freeze < epochs else None),
                FinalizeBinaryKernels()]
