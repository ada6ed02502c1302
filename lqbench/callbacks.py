r"""Keras callbacks shared by the binarizing methods (method-specific ones live with their method).

Each callback that drives an optimizer finds it inside ``model.optimizer`` (itself or one of a
`larq.optimizers.CaseOptimizer`'s optimizers) when training starts, and changes only
optimizer hyperparameters and variables (never the traced graph), so it works unchanged
under XLA (``jit_compile=True``) and with `lqbench.algorithms` wrappers.

| callback | what it does |
|---|---|
| `SubOptimizerScheduler` | Larq `HyperparameterScheduler` for an optimizer inside a `CaseOptimizer` (Bop's \\(\gamma\\), \\(\tau\\)) |
| `FinalizeBinaryKernels` | at the end of training: \\(w^b \leftarrow sign(w^b)\\) and the original sign quantizers back |
| `BestWeights` | keep the best epoch's weights (by a validation metric) and restore them at the end |

BNEW's, ProxQuant's and BMD's schedules are in `lqbench.methods.bnew`, `.proxquant`, `.bmd`.
"""
from __future__ import annotations

from typing import Callable

import larq as lq
import numpy as np
import tensorflow as tf

from lqbench.optimizers import _common

__all__ = ["BestWeights", "FinalizeBinaryKernels", "SubOptimizerScheduler", "find_optimizer", "get_hyper",
           "set_hyper"]


def find_optimizer(model, cls, who: str):
    """The optimizer of type ``cls`` in ``model.optimizer`` (itself or inside a `CaseOptimizer`)."""
    optimizer = _common.sub_optimizer(getattr(model, "optimizer", None), cls)
    if optimizer is None:
        raise ValueError(f"{who}: the model's optimizer has no {cls.__name__} (build it with lqbench.methods)")
    return optimizer


def set_hyper(optimizer, name: str, value: float) -> None:
    """Set a legacy optimizer's hyperparameter (a variable: no retracing)."""
    optimizer._set_hyper(name, float(value))


def get_hyper(optimizer, name: str) -> float:
    """A legacy optimizer's hyperparameter as a float."""
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
        self.optimizer = find_optimizer(model, self.optimizer_type, "SubOptimizerScheduler")
        if not hasattr(self.optimizer, self.hyperparameter):
            raise ValueError(f"SubOptimizerScheduler: {self.optimizer_type.__name__} has no hyperparameter "
                             f"{self.hyperparameter!r}")


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
