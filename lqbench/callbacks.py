r"""Phase schedules, projections and freezes of the binarizing optimizers, as Keras callbacks.

Each callback finds the optimizer it drives inside ``model.optimizer`` (itself or one of a
`larq.optimizers.CaseOptimizer`'s optimizers) when training starts, and changes only
optimizer hyperparameters and variables (never the traced graph), so it works unchanged
under XLA (``jit_compile=True``) and with `lqbench.algorithms` wrappers.

| callback | what it does |
|---|---|
| `SubOptimizerScheduler` | Larq `HyperparameterScheduler` for an optimizer inside a `CaseOptimizer` (Bop's \\(\gamma\\), \\(\tau\\)) |
| `BNEWPhases` | BNEW: \\(\lambda = 0\\) (phase 1), \\(\lambda_e = \text{reg}(e+1)/E_2\\) (phase 2), \\(w^b \leftarrow sign(w^b)\\) + freeze (phase 3) |
| `ProxQuantSchedule` | ProxQuant: \\(\lambda_e = \text{reg\_rate} \cdot e\\); at the freeze epoch \\(w \leftarrow sign(w)\\) + freeze |
| `BMDSchedule` | BMD: \\(\beta_t = \rho^{\lfloor t/\text{interval}\rfloor}\\) every batch; optional sign + freeze for fine-tuning |
| `FinalizeBinaryKernels` | at the end of training: \\(w^b \leftarrow sign(w^b)\\) and the original sign quantizers back |
| `BestWeights` | keep the best epoch's weights (by a validation metric) and restore them at the end |

!!! example
    ```python
    callbacks = lqbench.optimizers.callbacks("proxquant", model, epochs=30, steps_per_epoch=100)
    model.fit(train, epochs=30, callbacks=callbacks)
    ```
"""
from __future__ import annotations

import math
from typing import Callable

import larq as lq
import numpy as np
import tensorflow as tf

from lqbench.optimizers import _common
from lqbench.optimizers.bmd import BMD, MirrorTanh, bmd_beta, bmd_beta_epoch  # refB #14.5: per-epoch rule
from lqbench.optimizers.bnew import BNEW
from lqbench.optimizers.projected import ProjectedAdam
from lqbench.optimizers.proxquant import ProxQuant

__all__ = [
    "BMDSchedule",
    "BNEWPhases",
    "BestWeights",
    "FinalizeBinaryKernels",
    "ProxQuantSchedule",
    "SubOptimizerScheduler",
    "bnew_lambda",
]

#: \\(\beta\\) used once BMD kernels are projected: \\(\tanh(10^6 \cdot \pm 1) = \pm 1\\) exactly in float32.
BETA_SIGN = 1e6


def _find(model, cls, who: str):
    optimizer = _common.sub_optimizer(getattr(model, "optimizer", None), cls)
    if optimizer is None:
        raise ValueError(f"{who}: the model's optimizer has no {cls.__name__} (build it with lqbench.optimizers.build)")
    return optimizer


def _set(optimizer, name: str, value: float) -> None:
    optimizer._set_hyper(name, float(value))


def _get(optimizer, name: str) -> float:
    value = optimizer._hyper[name]
    return float(value.numpy()) if isinstance(value, tf.Variable) else float(value)


@lq.utils.register_keras_custom_object
class SubOptimizerScheduler(lq.callbacks.HyperparameterScheduler):
    """Larq's `HyperparameterScheduler` for the optimizer of type ``optimizer_type`` in the model.

    # Arguments
        schedule: ``f(epoch) -> value`` (or ``f(step)`` with ``update_freq="step"``, where
            ``step`` is that optimizer's own step count).
        hyperparameter: name of the hyperparameter, e.g. ``"gamma"``.
        optimizer_type: class to look for (e.g. `larq.optimizers.Bop`).
    """

    def __init__(self, schedule: Callable, hyperparameter: str, optimizer_type: type, update_freq: str = "epoch",
                 verbose: int = 0, log_name: str | None = None):
        super().__init__(schedule, hyperparameter, optimizer=None, update_freq=update_freq, verbose=verbose,
                         log_name=log_name)
        self.optimizer_type = optimizer_type

    def set_model(self, model):
        tf.keras.callbacks.Callback.set_model(self, model)
        self.optimizer = _find(model, self.optimizer_type, "SubOptimizerScheduler")
        if not hasattr(self.optimizer, self.hyperparameter):
            raise ValueError(f"SubOptimizerScheduler: {self.optimizer_type.__name__} has no hyperparameter "
                             f"{self.hyperparameter!r}")


def bnew_lambda(epoch_in_phase: int, phase_epochs: int, reg: float = 1e-4, lambda_rate: float | None = None) -> float:
    r"""BNEW's \\(\lambda\\) at epoch ``epoch_in_phase`` (0-based) of phase 2.

    \\(\lambda_e = \text{reg} (e + 1) / E_2\\) (the authors' code), or
    \\(\lambda_e = \lambda_{rate} (e + 1)\\) when ``lambda_rate`` is given.
    """
    if lambda_rate is not None:
        return float(lambda_rate) * (epoch_in_phase + 1)
    return float(reg) * (epoch_in_phase + 1) / max(int(phase_epochs), 1)


@lq.utils.register_keras_custom_object
class BNEWPhases(tf.keras.callbacks.Callback):
    """BNEW's three phases inside one ``fit`` (epochs counted from the fit's first epoch).

    Phase 1 (``pretrain_epochs``): \\(\\lambda = 0\\), i.e. Adam projected to [-1, 1].
    Phase 2 (``quantize_epochs``): \\(\\lambda\\) from `bnew_lambda`. Phase 3 (the rest):
    \\(w^b \\leftarrow sign(w^b)\\) once, then the binary kernels are frozen.
    `lqbench.recipes.fit` runs the phases as separate fits (to restore the best phase-1
    weights and restart Adam and the learning-rate decay), each with this callback.
    """

    def __init__(self, pretrain_epochs: int, quantize_epochs: int, reg: float = 1e-4,
                 lambda_rate: float | None = None):
        super().__init__()
        if pretrain_epochs < 0 or quantize_epochs < 0:
            raise ValueError(f"BNEWPhases: epochs must be >= 0, got {pretrain_epochs}, {quantize_epochs}")
        _common.check_range("reg", reg, 0.0, math.inf, low_inclusive=True, where="BNEWPhases")
        if lambda_rate is not None:
            _common.check_range("lambda_rate", lambda_rate, 0.0, math.inf, low_inclusive=True, where="BNEWPhases")
        self.pretrain_epochs, self.quantize_epochs = int(pretrain_epochs), int(quantize_epochs)
        self.reg, self.lambda_rate = float(reg), lambda_rate
        self._start = None

    def on_train_begin(self, logs=None):
        self.optimizer = _find(self.model, BNEW, "BNEWPhases")
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._start is None:
            self._start = epoch
        e = epoch - self._start
        if e < self.pretrain_epochs:
            reg, frozen = 0.0, False
        elif e < self.pretrain_epochs + self.quantize_epochs:
            reg = bnew_lambda(e - self.pretrain_epochs, self.quantize_epochs, self.reg, self.lambda_rate)
            frozen = False
        else:
            reg, frozen = 0.0, True
        if frozen and _get(self.optimizer, "frozen") < 0.5:
            _common.project_sign(self.model)
        _set(self.optimizer, "reg", reg)
        _set(self.optimizer, "frozen", 1.0 if frozen else 0.0)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["bnew_lambda"] = _get(self.optimizer, "reg")

    def get_config(self):
        return {"pretrain_epochs": self.pretrain_epochs, "quantize_epochs": self.quantize_epochs, "reg": self.reg,
                "lambda_rate": self.lambda_rate}


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
        self.optimizer = _find(self.model, ProxQuant, "ProxQuantSchedule")
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._start is None:
            self._start = epoch
        e = epoch - self._start
        frozen = self.freeze_epoch is not None and e >= self.freeze_epoch
        if frozen and _get(self.optimizer, "frozen") < 0.5:
            _common.project_sign(self.model)
        _set(self.optimizer, "reg", self.reg_rate * e)
        _set(self.optimizer, "frozen", 1.0 if frozen else 0.0)

    def get_config(self):
        return {"reg_rate": self.reg_rate, "freeze_epoch": self.freeze_epoch}


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
        # refB (#14 item 5): "epoch" = the authors' per-epoch growth; an int = every `interval` steps.
        if interval != "epoch" and not (isinstance(interval, int) and not isinstance(interval, bool) and interval >= 1):
            raise ValueError(f"BMDSchedule: interval={interval!r} must be 'epoch' or an integer >= 1")
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
            raise ValueError("BMDSchedule: no MirrorTanh kernel quantizers; call lqbench.optimizers.prepare('bmd', model)")
        self.optimizer = _common.sub_optimizer(self.model.optimizer, BMD)
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
                _set(self.optimizer, "frozen", 1.0)

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


@lq.utils.register_keras_custom_object
class FinalizeBinaryKernels(tf.keras.callbacks.Callback):
    r"""At the end of training: \\(w^b \leftarrow sign(w^b)\\), original sign quantizers restored.

    After it, the model is an ordinary Larq BNN whose binary kernels hold exactly \\(\pm 1\\)
    (what LCE converts and what `model.evaluate` should measure).
    """

    def on_train_end(self, logs=None):
        _common.project_sign(self.model)
        _common.restore_kernel_quantizers(self.model)


@lq.utils.register_keras_custom_object
class BestWeights(tf.keras.callbacks.Callback):
    """Remember the weights of the best epoch and restore them when training ends.

    ``monitor=None`` picks ``val_accuracy`` (max) if logged, else ``val_loss`` (min), else
    ``loss`` (min). ``best_epoch`` (0-based) and ``best`` hold the result. ``restore=False``
    only remembers them (``best_weights``), leaving the final weights in the model.
    """

    def __init__(self, monitor: str | None = None, mode: str = "auto", restore: bool = True):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"BestWeights: unknown mode {mode!r}; allowed: auto, min, max")
        self.monitor, self.mode, self.restore = monitor, mode, restore
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.best, self.best_epoch, self.best_weights, self._key = None, None, None, self.monitor

    def _choose(self, logs):
        if self._key is None:
            for key in ("val_accuracy", "val_sparse_categorical_accuracy", "val_loss", "loss"):
                if key in logs:
                    self._key = key
                    break
        mode = self.mode
        if mode == "auto":
            mode = "max" if "acc" in (self._key or "") else "min"
        return self._key, mode

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        key, mode = self._choose(logs)
        if key is None or key not in logs:
            return
        value = float(logs[key])
        if np.isnan(value):
            return
        better = self.best is None or (value > self.best if mode == "max" else value < self.best)
        if better:
            self.best, self.best_epoch = value, epoch
            self.best_weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        if self.restore and self.best_weights is not None:
            self.model.set_weights(self.best_weights)

    def get_config(self):
        return {"monitor": self.monitor, "mode": self.mode, "restore": self.restore}
