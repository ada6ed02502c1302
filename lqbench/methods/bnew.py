r"""BNEW: binary weights by a growing concave regulariser, in three phases.

The forward pass uses the relaxed kernel \\(w^b \in [-1, 1]\\) itself (no latent weights;
`lqbench.optimizers.RealKernel` replaces the sign quantizer during training). Each step of
`lqbench.optimizers.BNEW` is Adam followed by the push-and-clip of the regulariser
\\(R(w) = -\|w^b\|^2\\):

\\[ w^b \leftarrow \text{clip}\left((1 + 2\lambda_e)\, w^b, -1, 1\right), \qquad
    \lambda_e = \text{reg} \cdot \frac{e + 1}{E}. \\]

Phases (the authors' launch files for CIFAR-10 ResNet-20: 200 epochs, then 1000 epochs
frozen at 980):

1. **pretrain** (``pretrain_fraction`` of the epochs, default 1/6 = 200/1200): binary
   activations, real weights projected to [-1, 1] (\\(\lambda = 0\\)); the best epoch is kept;
2. **quantize**: a fresh Adam whose learning-rate schedule spans phases 2 and 3; \\(\lambda_e\\)
   grows linearly with \\(E\\) = the epochs of phases 2 + 3 (``bnew_binary`` in the authors'
   ``prox.py``: ``reg * (epoch + 1) / epochs``);
3. **finetune** (the last ``finetune_fraction`` of phases 2 + 3, default 0.02 = 20/1000):
   \\(w^b \leftarrow sign(w^b)\\), frozen; the *same*, decayed Adam continues on the other
   parameters (``finetune_optimizer="continue"``, the authors' ``--freeze 980 ...``).
   ``finetune_optimizer="fresh"`` restarts Adam and its schedule (lqbench's earlier recipe).

``lambda_rate`` (\\(\lambda_e = \lambda_{rate}(e + 1)\\)) is the paper's form for the
\\((1 + 2\lambda\eta)\\) update; the code form used here has no learning rate in the push, so
the paper's rate 0.01 would saturate every weight within an epoch: the authors' code, which
produced the paper's numbers, uses ``reg = 1e-4``, the default.

Push order: the authors push-and-clip *before* the Adam step (``post_update`` runs between
``backward`` and ``optimizer.step``); lqbench's default pushes after it (the same fixed points,
one step apart), and ``project_first=True`` follows the authors' order
(`lqbench.optimizers.BNEW`).

# References
- [Paren & Poudel, Training Binarized Neural Networks the Easy Way, BMVC 2022
  (paper 001)](https://bmvc2022.mpi-inf.mpg.de/35/); reference code: https://github.com/Alasdair-P/bnew
  @f0c2019 (``prox.py``: ``u_reg``, ``adjust_reg``; ``reproduce/cifar10/10bnew.py``).
"""
from __future__ import annotations

import math

import larq as lq
import tensorflow as tf

from lqbench.callbacks import FinalizeBinaryKernels, find_optimizer, get_hyper, set_hyper
from lqbench.hparams import Hparam
from lqbench.methods.base import Phase, ProjectedKernelsMethod, split_epochs
from lqbench.optimizers import BNEW as BNEWRule
from lqbench.optimizers import Adam, _common, frozen_binary

__all__ = ["BNEW", "BNEWPhases", "bnew_lambda"]


def bnew_lambda(epoch_in_phase: int, phase_epochs: int, reg: float = 1e-4, lambda_rate: float | None = None) -> float:
    r"""\\(\lambda\\) at epoch ``epoch_in_phase`` (0-based) of the regularised phase of ``phase_epochs`` epochs.

    \\(\lambda_e = \text{reg} (e + 1) / E\\) (the authors' code), or
    \\(\lambda_e = \lambda_{rate} (e + 1)\\) when ``lambda_rate`` is given.
    """
    if lambda_rate is not None:
        return float(lambda_rate) * (epoch_in_phase + 1)
    return float(reg) * (epoch_in_phase + 1) / max(int(phase_epochs), 1)


@lq.utils.register_keras_custom_object
class BNEWPhases(tf.keras.callbacks.Callback):
    r"""BNEW's schedule inside one ``fit`` (epochs counted from the fit's first epoch).

    Epochs ``[0, pretrain_epochs)``: \\(\lambda = 0\\). Epochs
    ``[pretrain_epochs, pretrain_epochs + quantize_epochs)``: \\(\lambda\\) from `bnew_lambda`
    with \\(E\\) = ``lambda_epochs`` (default ``quantize_epochs``). Later epochs:
    \\(w^b \leftarrow sign(w^b)\\) once, then the binary kernels are frozen.
    """

    def __init__(self, pretrain_epochs: int, quantize_epochs: int, reg: float = 1e-4,
                 lambda_rate: float | None = None, lambda_epochs: int | None = None):
        super().__init__()
        if pretrain_epochs < 0 or quantize_epochs < 0:
            raise ValueError(f"BNEWPhases: epochs must be >= 0, got {pretrain_epochs}, {quantize_epochs}")
        _common.check_range("reg", reg, 0.0, math.inf, low_inclusive=True, where="BNEWPhases")
        if lambda_rate is not None:
            _common.check_range("lambda_rate", lambda_rate, 0.0, math.inf, low_inclusive=True, where="BNEWPhases")
        self.pretrain_epochs, self.quantize_epochs = int(pretrain_epochs), int(quantize_epochs)
        self.reg, self.lambda_rate = float(reg), lambda_rate
        self.lambda_epochs = int(lambda_epochs) if lambda_epochs else self.quantize_epochs
        self._start = None

    def on_train_begin(self, logs=None):
        self.optimizer = find_optimizer(self.model, BNEWRule, "BNEWPhases")
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._start is None:
            self._start = epoch
        e = epoch - self._start
        if e < self.pretrain_epochs:
            reg, frozen = 0.0, False
        elif e < self.pretrain_epochs + self.quantize_epochs:
            reg = bnew_lambda(e - self.pretrain_epochs, self.lambda_epochs, self.reg, self.lambda_rate)
            frozen = False
        else:
            reg, frozen = 0.0, True
        if frozen and get_hyper(self.optimizer, "frozen") < 0.5:
            _common.project_sign(self.model)
        set_hyper(self.optimizer, "reg", reg)
        set_hyper(self.optimizer, "frozen", 1.0 if frozen else 0.0)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["bnew_lambda"] = get_hyper(self.optimizer, "reg")

    def get_config(self):
        return {"pretrain_epochs": self.pretrain_epochs, "quantize_epochs": self.quantize_epochs, "reg": self.reg,
                "lambda_rate": self.lambda_rate, "lambda_epochs": self.lambda_epochs}


def _freeze(trainer) -> None:
    """Phase 3 with the continued optimizer: \\(w^b \\leftarrow sign(w^b)\\), binary kernels frozen."""
    _common.project_sign(trainer)
    set_hyper(find_optimizer(trainer, BNEWRule, "BNEW finetune"), "frozen", 1.0)
    set_hyper(find_optimizer(trainer, BNEWRule, "BNEW finetune"), "reg", 0.0)


class BNEW(ProjectedKernelsMethod):
    """BNEW's three phases (see the module docstring)."""

    name = "bnew"
    hparams = (
        Hparam("reg", "float", 1e-4, low=0, doc="lambda at the end of the regularised phases (code form)"),
        Hparam("lambda_rate", "float", None, low=0, optional=True, doc="paper form: lambda_e = rate (e+1)"),
        Hparam("pretrain_fraction", "float", 1 / 6, low=0, high=1, high_inclusive=False),
        Hparam("finetune_fraction", "float", 0.02, low=0, high=1, high_inclusive=False),
        Hparam("finetune_optimizer", "str", "continue", choices=("continue", "fresh")),
        Hparam("project_first", "bool", False, doc="push-and-clip before the Adam step (the authors' order)"),
    )
    requires_binary_kernels = True
    multi_phase = True

    def epochs_of(self, epochs: int) -> list[int]:
        """Epochs of [pretrain, quantize, finetune]."""
        p, f = self.pretrain_fraction, self.finetune_fraction
        return split_epochs(int(epochs), [p, (1 - p) * (1 - f), (1 - p) * f])

    def optimizer(self, learning_rate=1e-3, weight_decay: float = 0.0):
        return _common.case(BNEWRule(learning_rate, project_first=self.project_first),
                            Adam(learning_rate, weight_decay=weight_decay), name="case_bnew")

    def callbacks(self, epochs: int):
        """BNEW in one ``fit`` (no best-epoch restore between phases; `phases` has it), kernels \\(\\pm 1\\) at the end."""
        e1, e2, e3 = self.epochs_of(epochs)
        return [BNEWPhases(e1, e2, reg=self.reg, lambda_rate=self.lambda_rate, lambda_epochs=e2 + e3),
                FinalizeBinaryKernels()]

    def phases(self, epochs: int, model=None) -> list[Phase]:
        e1, e2, e3 = self.epochs_of(epochs)
        continued = self.finetune_optimizer == "continue"
        lambda_epochs = e2 + e3 if continued else e2
        return [
            Phase("pretrain", e1, self.optimizer, callbacks=[BNEWPhases(e1, 0)], keep_best=True),
            Phase("quantize", e2, self.optimizer, schedule_epochs=e2 + e3 if continued else e2,
                  callbacks=[BNEWPhases(0, e2, reg=self.reg, lambda_rate=self.lambda_rate,
                                        lambda_epochs=lambda_epochs)]),
            Phase("finetune", e3, None, before=_freeze) if continued else
            Phase("finetune", e3, frozen_binary, before=self.finalize),
        ]
