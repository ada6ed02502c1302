r"""One call to train a model with any lqbench optimizer or multi-phase recipe.

`fit(trainer, train_data, epochs=..., optimizer=NAME, ...)` builds the optimizer and its
learning-rate schedule, prepares the model (`lqbench.optimizers.prepare`), compiles (XLA by
default), trains, finalises (binary kernels exactly \\(\pm 1\\), Larq sign quantizers back)
and returns one `tf.keras.callbacks.History` covering every phase.

| recipe | phases (epoch budget split by hparams) |
|---|---|
| `adam`, `sgd`, `ste` | one fit (`ste` = `adam`: the STE baseline on a sign-quantized model) |
| `bop`, `bop2` | one fit; \\(\gamma\\)/\\(\tau\\) per-epoch schedules via `SubOptimizerScheduler` |
| `proxquant` | one fit: prox steps with \\(\lambda_e = \text{reg\_rate} \cdot e\\); at ``freeze_fraction`` of the epochs \\(w \leftarrow sign(w)\\), kernels frozen, the rest fine-tuned |
| `bmd` | one fit: \\(\tanh(\beta_t w)\\) forward; the last ``finetune_fraction`` of epochs with \\(sign(w)\\) frozen |
| `bnew` | three fits (``phase_fractions``, default 0.2/0.7/0.1): (1) binary activations, real weights projected to [-1, 1], best epoch restored; (2) fresh Adam, push-and-clip with growing \\(\lambda\\); (3) \\(sign(w^b)\\) frozen, fresh Adam fine-tunes the rest. Linear decay restarts in each phase when ``schedule="linear"``. |
| `cb` (alias `continuous`) | `lqbench.continuous.fit_staged`: pre-training with PCF (m = 0.5, \\(\alpha\\) = 2), then one stage per hidden activation (Algorithm 1 of paper 002), ending with SBAF everywhere |

The learning-rate ``schedule`` (`lqbench.schedules` name) spans each fit/phase
(``phase_epochs * steps_per_epoch`` steps), so every phase of a multi-phase recipe restarts it.

Loss convention: models output logits (lqbench.models' convention), so the default loss is
``SparseCategoricalCrossentropy(from_logits=True)`` and the default metric ``accuracy``.

User ``callbacks`` are passed to every phase's fit (they see one ``on_train_begin`` per
phase). Estimator schedules (`EDESchedule`, `GumbelTemperatureSchedule`) are added
automatically when the model uses those quantizers.

!!! example
    ```python
    history = lqbench.recipes.fit(model, train, epochs=20, optimizer="bnew", validation_data=val,
                                  learning_rate=1e-3, schedule="linear",
                                  hparams={"reg": 1e-3, "phase_fractions": (0.3, 0.6, 0.1)})
    history.phases  # [{'name': 'pretrain', 'start': 0, 'epochs': 6}, ...]
    ```
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from lqbench import optimizers as _opt
from lqbench import schedules as _schedules
from lqbench.callbacks import BestWeights, BNEWPhases, FinalizeBinaryKernels

__all__ = ["MULTI_PHASE", "available", "fit", "steps_in"]

#: Recipes whose weights change meaning during the run (phases, freezes, sign projections):
#: callbacks that restore or checkpoint "best" weights across the whole run must not be used
#: with them (a restored pre-freeze epoch would undo the binarization).
MULTI_PHASE = ("bnew", "proxquant", "bmd", "cb", "continuous")

_ALIASES = {"ste": "adam", "continuous": "cb"}
_RECIPE_KEYS = ("schedule_kwargs", "batch_size", "shuffle_seed")


def available() -> list[str]:
    """Recipe names: every optimizer of `lqbench.optimizers.available()` plus ``ste`` and ``cb``."""
    return [*_opt.available(), "ste", "cb", "continuous"]


def steps_in(data) -> int | None:
    """Number of batches of a finite `tf.data.Dataset` (None if unknown or infinite)."""
    if isinstance(data, tf.data.Dataset):
        n = int(data.cardinality().numpy())
        return n if n > 0 else None
    return None


def _as_dataset(data, batch_size: int, seed: int, shuffle: bool):
    if data is None or isinstance(data, tf.data.Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size)
    raise ValueError(f"data must be a tf.data.Dataset or an (x, y) tuple, got {type(data).__name__}")


class _Run:
    """Shared state of one `fit` call: compiles and runs phases, merges their histories."""

    def __init__(self, trainer, train_data, validation_data, steps_per_epoch, steps, callbacks, loss, metrics,
                 jit_compile, verbose, schedule, schedule_kwargs, learning_rate, weight_decay):
        self.trainer, self.train_data, self.validation_data = trainer, train_data, validation_data
        self.steps_arg, self.steps = steps_per_epoch, steps
        self.user_callbacks = list(callbacks)
        self.loss, self.metrics, self.jit, self.verbose = loss, metrics, jit_compile, verbose
        self.schedule, self.schedule_kwargs = schedule, schedule_kwargs
        self.learning_rate, self.weight_decay = learning_rate, weight_decay
        self.histories: list[tuple[str, tf.keras.callbacks.History]] = []

    def lr(self, epochs: int):
        return _schedules.build(self.schedule, self.learning_rate, max(1, epochs * self.steps), **self.schedule_kwargs)

    def phase(self, name: str, epochs: int, optimizer, callbacks=(), jit: bool | None = None):
        if epochs <= 0:
            return None
        loss = self.loss if self.loss is not None else tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = list(self.metrics) if self.metrics is not None else ["accuracy"]
        self.trainer.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                             jit_compile=self.jit if jit is None else jit)
        history = self.trainer.fit(
            self.train_data, epochs=epochs, steps_per_epoch=self.steps_arg, validation_data=self.validation_data,
            callbacks=[*callbacks, *self.user_callbacks, *_estimator_callbacks(self.trainer, epochs,
                                                                               self.user_callbacks)],
            verbose=self.verbose,
        )
        self.histories.append((name, history))
        return history

    def merged(self) -> tf.keras.callbacks.History:
        out = tf.keras.callbacks.History()
        keys: list[str] = []
        for _, h in self.histories:
            keys += [k for k in h.history if k not in keys]
        merged: dict[str, list] = {k: [] for k in keys}
        phases, start = [], 0
        for name, h in self.histories:
            n = len(h.epoch)
            for k in keys:
                values = h.history.get(k)
                merged[k] += list(values) if values is not None else [float("nan")] * n
            phases.append({"name": name, "start": start, "epochs": n})
            start += n
        out.history, out.epoch = merged, list(range(start))
        out.params = self.histories[-1][1].params if self.histories else {}
        out.set_model(self.trainer)
        out.phases = phases
        return out


def _estimator_callbacks(trainer, epochs: int, user_callbacks) -> list:
    from lqbench import estimators

    out = []
    have = {type(c) for c in user_callbacks}
    if estimators.EDESchedule not in have and estimators.quantizers_of(_inner(trainer), estimators.EDESign):
        out.append(estimators.EDESchedule(epochs))
    if (estimators.GumbelTemperatureSchedule not in have
            and estimators.quantizers_of(_inner(trainer), estimators.GumbelSign)):
        out.append(estimators.GumbelTemperatureSchedule())
    return out


def _inner(trainer):
    inner = getattr(trainer, "model", None)
    return inner if isinstance(inner, tf.keras.Model) else trainer


def fit(
    trainer: tf.keras.Model,
    train_data,
    *,
    epochs: int,
    optimizer: str = "adam",
    validation_data=None,
    learning_rate=1e-3,
    weight_decay: float = 0.0,
    schedule: str = "constant",
    steps_per_epoch: int | None = None,
    callbacks: Sequence[tf.keras.callbacks.Callback] = (),
    loss=None,
    metrics=None,
    jit_compile: bool = True,
    verbose="auto",
    hparams: dict[str, Any] | None = None,
) -> tf.keras.callbacks.History:
    """Train ``trainer`` with the recipe ``optimizer`` for ``epochs`` epochs in total.

    # Arguments
        trainer: a functional model or an `lqbench.algorithms` / `lqbench.distillation`
            wrapper (binary kernels are found by walking its layers and its ``.model``).
        train_data: a batched `tf.data.Dataset`, or an ``(x, y)`` tuple (batched with
            ``hparams["batch_size"]``, default 32, shuffled every epoch).
        epochs: total epoch budget, split across phases by the recipe's fractions.
        optimizer: a name of `available()`.
        validation_data: as ``train_data``, evaluated after every epoch (BNEW phase 1 keeps
            its best epoch by ``val_accuracy``, else by training loss).
        learning_rate: initial learning rate (> 0) of Adam/SGD for every phase.
        weight_decay: coupled L2 on the real-valued parameters.
        schedule: `lqbench.schedules` name, spanning each phase (``schedule_kwargs`` in hparams).
        steps_per_epoch: required for infinite datasets; inferred from finite ones.
        callbacks: extra Keras callbacks, given to every phase.
        loss, metrics: defaults ``SparseCategoricalCrossentropy(from_logits=True)``, ``["accuracy"]``.
        jit_compile: XLA-compile training where `lqbench.optimizers.supports_xla` allows.
        verbose: Keras ``fit`` verbosity.
        hparams: method hyperparameters (`lqbench.optimizers.hparam_defaults(name)`, or
            `lqbench.continuous.HPARAMS` for ``cb``) plus ``schedule_kwargs``, ``batch_size``.

    # Returns
        A `History` over all phases; ``history.phases`` lists ``{"name", "start", "epochs"}``.
    """
    name = _ALIASES.get(optimizer, optimizer)
    if name not in _opt.available() and name != "cb":
        raise ValueError(f"unknown recipe {optimizer!r}; available: {', '.join(available())}")
    if not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"recipes.fit: epochs={epochs!r} must be an integer >= 1")
    hparams = dict(hparams or {})
    recipe = {k: hparams.pop(k) for k in _RECIPE_KEYS if k in hparams}
    batch_size = int(recipe.get("batch_size", 32))
    seed = int(recipe.get("shuffle_seed", 0))
    train_data = _as_dataset(train_data, batch_size, seed, shuffle=True)
    validation_data = _as_dataset(validation_data, batch_size, seed, shuffle=False)
    steps = steps_per_epoch or steps_in(train_data)
    if not steps:
        raise ValueError("recipes.fit: steps_per_epoch is required when train_data has no known finite length")
    if schedule not in _schedules.available():
        raise ValueError(f"recipes.fit: unknown schedule {schedule!r}; available: {', '.join(_schedules.available())}")
    _opt._common.check_learning_rate(learning_rate, "recipes.fit")
    jit = bool(jit_compile) and _opt.supports_xla(name)
    run = _Run(trainer, train_data, validation_data, steps_per_epoch, int(steps), callbacks, loss, metrics, jit,
               verbose, schedule, dict(recipe.get("schedule_kwargs", {})), learning_rate, weight_decay)

    if name == "cb":
        from lqbench import continuous

        continuous.fit_staged(run, epochs, **hparams)
        return run.merged()

    _opt._split(name, hparams)  # validates names before any training
    if name == "bnew":
        _fit_bnew(run, epochs, hparams)
    else:
        model = _opt.prepare(name, trainer)
        optimizer_ = _opt.build(name, run.lr(epochs), weight_decay, **hparams)
        run.phase(name, epochs, optimizer_, _opt.callbacks(name, model, epochs, steps, **hparams))
        _opt.finalize(name, trainer)
    return run.merged()


def _fit_bnew(run: _Run, epochs: int, hparams: dict[str, Any]) -> None:
    cb = _opt.hparam_defaults("bnew")
    cb.update(hparams)
    e1, e2, e3 = _opt.split_epochs(epochs, cb["phase_fractions"])
    trainer = run.trainer
    _opt.prepare("bnew", trainer)
    if e1:
        best = BestWeights()
        run.phase("pretrain", e1, _opt.build("bnew", run.lr(e1), run.weight_decay), [BNEWPhases(e1, 0), best])
    if e2:
        run.phase("quantize", e2, _opt.build("bnew", run.lr(e2), run.weight_decay),
                  [BNEWPhases(0, e2, reg=cb["reg"], lambda_rate=cb["lambda_rate"])])
    _opt.finalize("bnew", trainer)  # w_b <- sign(w_b), sign quantizers back
    if e3:
        run.phase("finetune", e3, _opt.frozen_binary(run.lr(e3), run.weight_decay), [FinalizeBinaryKernels()])

