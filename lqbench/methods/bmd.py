r"""Binary mirror descent (BMD): Adam on latent weights seen through \\(\tanh(\beta_t w)\\).

The forward pass uses the mirror map \\(w^b = \tanh(\beta_t w)\\) (`lqbench.optimizers.MirrorTanh`,
identity backward) with \\(\beta\\) growing during training (`BMDSchedule`): by default once per
epoch, \\(\beta_e = \min(\rho^{\max(e-1, 0)}, 10^{35})\\) as in the authors' ``prox.py``
(``interval="epoch"``), or every ``interval`` steps; Adam updates
\\(w\\). For the last ``finetune_fraction`` of the epochs (default 0.02: the authors freeze at
epoch 980 of 1000) the kernels are set to \\(sign(w)\\), \\(\beta\\) to `BETA_SIGN` and frozen,
and the other parameters are fine-tuned. Larq's weight clip is lifted from the latent weights
during training (the authors' mirror descent never clamps \\(w\\)) and put back by `finalize`.

# References
- [Ajanthan et al., Mirror Descent View for Neural Network Quantization (AISTATS 2021)](https://arxiv.org/abs/1910.08237);
  reference code: https://github.com/kartikgupta-at-anu/md-bnn.
- The BMD baseline of paper 001: https://github.com/Alasdair-P/bnew @f0c2019 (``prox.py``,
  ``mirror_binary``; ``reproduce/cifar10/10bmd.py``: ``--reg 1.01 --freeze 980 ... 999``).
"""
from __future__ import annotations

import math

import larq as lq
import tensorflow as tf

from lqbench.callbacks import FinalizeBinaryKernels, set_hyper
from lqbench.errors import ConfigValueError
from lqbench.hparams import Hparam
from lqbench.methods.base import Method
from lqbench.optimizers import BMD as BMDRule
from lqbench.optimizers import Adam, MirrorTanh, _common
from lqbench.optimizers.bmd import bmd_beta, bmd_beta_epoch, release_weight_clip, restore_weight_clip

__all__ = ["BETA_SIGN", "BMD", "BMDSchedule"]

#: \\(\beta\\) used once BMD kernels are projected: \\(\tanh(10^6 \cdot \pm 1) = \pm 1\\) exactly in float32.
BETA_SIGN = 1e6


@lq.utils.register_keras_custom_object
class BMDSchedule(tf.keras.callbacks.Callback):
    r"""Sets \\(\beta\\) of every `MirrorTanh` before each batch (`lqbench.optimizers.bmd`).

    ``interval="epoch"`` (default): the authors' \\(\beta_e = \min(\rho^{\max(e-1, 0)}, 10^{35})\\)
    at epoch \\(e\\) counted from the fit's first epoch; an integer ``interval``:
    \\(\beta_t = \min(\rho^{\lfloor t / \text{interval} \rfloor}, 10^{35})\\) at step \\(t\\).

    With ``finetune_epoch`` (0-based, counted from the fit's first epoch) the kernels are
    set to \\(sign(w)\\), \\(\beta\\) to `BETA_SIGN` (the forward map is then exactly the
    sign) and frozen, so the remaining epochs fine-tune the other parameters.
    """

    def __init__(self, rho: float = 1.01, interval: int | str = "epoch", finetune_epoch: int | None = None):
        super().__init__()
        _common.check_range("rho", rho, 1.0, math.inf, low_inclusive=True, where="BMDSchedule")
        _check_interval(interval, "BMDSchedule")
        self.rho, self.interval, self.finetune_epoch = float(rho), interval, finetune_epoch
        self.step = 0
        self.epoch = 0
        self._start = None
        self._current = None
        self._finetuning = False

    def _betas(self):
        betas = []
        for layer, q_attr, _ in _common.binary_kernel_slots(self.model):
            q = getattr(layer, q_attr)
            if isinstance(q, MirrorTanh) and all(q.beta is not b for b in betas):
                betas.append(q.beta)
        return betas

    def on_train_begin(self, logs=None):
        self.betas = self._betas()
        if not self.betas:
            raise ValueError("BMDSchedule: no MirrorTanh kernel quantizers; call lqbench.methods.get('bmd').prepare(model)")
        self.optimizer = _common.sub_optimizer(self.model.optimizer, BMDRule)
        self._start, self._current, self._finetuning = None, None, False

    def on_epoch_begin(self, epoch, logs=None):
        if self._start is None:
            self._start = epoch
        self.epoch = epoch - self._start
        if self.finetune_epoch is not None and epoch - self._start >= self.finetune_epoch and not self._finetuning:
            self._finetuning = True
            _common.project_sign(self.model)
            for beta in self.betas:
                beta.assign(BETA_SIGN)
            if self.optimizer is not None:
                set_hyper(self.optimizer, "frozen", 1.0)

    def on_train_batch_begin(self, batch, logs=None):
        if self._finetuning:
            return
        beta = (bmd_beta_epoch(self.epoch, self.rho) if self.interval == "epoch"
                else bmd_beta(self.step, self.rho, self.interval))
        if beta != self._current:
            for variable in self.betas:
                variable.assign(beta)
            self._current = beta

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.betas:
            logs["bmd_beta"] = float(self.betas[0].numpy())

    def get_config(self):
        return {"rho": self.rho, "interval": self.interval, "finetune_epoch": self.finetune_epoch}


def _check_interval(interval, where: str) -> None:
    if interval != "epoch" and not (isinstance(interval, int) and not isinstance(interval, bool) and interval >= 1):
        raise ConfigValueError(f"{where}: interval={interval!r} must be 'epoch' or an integer >= 1")


class BMD(Method):
    """Binary mirror descent in one fit: growing \\(\\beta\\), then sign + freeze for fine-tuning."""

    name = "bmd"
    hparams = (
        Hparam("rho", "float", 1.01, low=1),
        Hparam("interval", "any", "epoch", doc="'epoch' (the authors' per-epoch growth) or a step count >= 1"),
        Hparam("finetune_fraction", "float", 0.02, low=0, high=1),
    )
    requires_binary_kernels = True
    multi_phase = True

    def _validate(self) -> None:
        _check_interval(self.interval, "method 'bmd'")

    def optimizer(self, learning_rate=1e-3, weight_decay: float = 0.0):
        return _common.case(BMDRule(learning_rate), Adam(learning_rate, weight_decay=weight_decay), name="case_bmd")

    def prepare(self, model) -> None:
        _common.require_binary_kernels(self.name, model)
        beta = tf.Variable(1.0, trainable=False, dtype=tf.float32, name="bmd_beta")
        _common.swap_kernel_quantizers(model, lambda original: MirrorTanh(beta))
        release_weight_clip(model)  # the authors' mirror descent never clamps w

    def finalize(self, model) -> None:
        _common.project_sign(model)
        _common.restore_kernel_quantizers(model)
        restore_weight_clip(model)

    def callbacks(self, epochs: int):
        finetune = int(epochs) - int(round(self.finetune_fraction * epochs))
        return [BMDSchedule(self.rho, self.interval, finetune_epoch=finetune if finetune < epochs else None),
                FinalizeBinaryKernels()]
