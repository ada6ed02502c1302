r"""The public phase runner: trains a model through a method's `Phase` list with Keras ``fit``.

`run_phases(trainer, phases, train_data, ...)` compiles and fits each phase in order and
returns one `tf.keras.callbacks.History` over the whole run (``history.phases`` lists
``{"name", "start", "epochs"}``). Epochs are numbered over the *whole run* (each phase's
``fit`` starts at ``initial_epoch`` = the epochs already run), so every epoch-based callback
given by the user, TensorBoard, and the estimator schedules (IR-Net's EDE \\(t\\), Gumbel's
temperature) see one schedule from the first to the last epoch instead of restarting in every
phase. The estimator schedules are added once, for the whole run, when the model uses those
quantizers and the user passed none.

`fit(trainer, data, method=..., epochs=...)` is the one call behind `lqbench.recipes.fit` and
`lqbench.experiment`: it prepares the model with the method, runs its phases and finalizes.

!!! example
    ```python
    method = lqbench.methods.get("bnew")
    history = lqbench.methods.fit(model, train, method=method, epochs=30, validation_data=val)
    history.phases  # [{'name': 'pretrain', 'start': 0, 'epochs': 5}, ...]
    ```
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from lqbench import estimators
from lqbench import schedules as _schedules
from lqbench.callbacks import BestWeights
from lqbench.errors import ConfigTypeError, ConfigValueError
from lqbench.methods.base import Method, Phase
from lqbench.optimizers import _common

__all__ = ["estimator_callbacks", "fit", "run_phases", "steps_in"]


def steps_in(data) -> int | None:
    """Number of batches of a finite `tf.data.Dataset` (None if unknown or infinite)."""
    if isinstance(data, tf.data.Dataset):
        n = int(data.cardinality().numpy())
        return n if n > 0 else None
    return None


def as_dataset(data, batch_size: int = 32, seed: int = 0, shuffle: bool = False):
    """A batched dataset from a `tf.data.Dataset` (unchanged) or an ``(x, y)`` tuple."""
    if data is None or isinstance(data, tf.data.Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size)
    raise ConfigTypeError(f"data must be a tf.data.Dataset or an (x, y) tuple, got {type(data).__name__}")


def _inner(trainer):
    inner = getattr(trainer, "model", None)
    return inner if isinstance(inner, tf.keras.Model) else trainer


def estimator_callbacks(trainer, total_epochs: int, user_callbacks=()) -> list[tf.keras.callbacks.Callback]:
    """One schedule over the whole run for each scheduled estimator the model uses (EDE, Gumbel),
    unless ``user_callbacks`` already has one of that type."""
    have = {type(c) for c in user_callbacks}
    out = []
    model = _inner(trainer)
    if estimators.EDESchedule not in have and estimators.quantizers_of(model, estimators.EDESign):
        out.append(estimators.EDESchedule(total_epochs))
    if estimators.GumbelTemperatureSchedule not in have and estimators.quantizers_of(model, estimators.GumbelSign):
        out.append(estimators.GumbelTemperatureSchedule())
    return out


def _merge(histories, trainer) -> tf.keras.callbacks.History:
    out = tf.keras.callbacks.History()
    keys: list[str] = []
    for _, h in histories:
        keys += [k for k in h.history if k not in keys]
    merged: dict[str, list] = {k: [] for k in keys}
    phases, start = [], 0
    for name, h in histories:
        n = len(h.epoch)
        for k in keys:
            values = h.history.get(k)
            merged[k] += list(values) if values is not None else [float("nan")] * n
        phases.append({"name": name, "start": start, "epochs": n})
        start += n
    out.history, out.epoch = merged, list(range(start))
    out.params = histories[-1][1].params if histories else {}
    out.set_model(trainer)
    out.phases = phases
    return out


def run_phases(
    trainer: tf.keras.Model,
    phases: Sequence[Phase],
    train_data,
    *,
    validation_data=None,
    learning_rate=1e-3,
    weight_decay: float = 0.0,
    schedule: str = "constant",
    schedule_kwargs: dict | None = None,
    steps_per_epoch: int | None = None,
    callbacks: Sequence[tf.keras.callbacks.Callback] = (),
    loss=None,
    metrics=None,
    jit_compile: bool = False,
    verbose="auto",
) -> tf.keras.callbacks.History:
    """Compile and fit ``trainer`` once per phase; one `History` over all phases.

    The learning-rate ``schedule`` (`lqbench.schedules` name) of a fresh optimizer spans its
    phase's ``schedule_epochs`` (default: the phase's epochs) times ``steps_per_epoch`` steps.
    """
    steps = steps_per_epoch or steps_in(train_data)
    if not steps:
        raise ConfigValueError("steps_per_epoch is required when train_data has no known finite length")
    loss = loss if loss is not None else tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    metrics = list(metrics) if metrics is not None else ["accuracy"]
    total = sum(max(int(p.epochs), 0) for p in phases)
    run_callbacks = [*callbacks, *estimator_callbacks(trainer, max(total, 1), callbacks)]
    histories, optimizer, start = [], None, 0
    for phase in phases:
        if phase.epochs <= 0:
            continue
        if phase.before is not None:
            phase.before(trainer)
        if phase.optimizer is not None:
            span = phase.schedule_epochs or phase.epochs
            lr = _schedules.build(schedule, learning_rate, max(1, span * int(steps)), **(schedule_kwargs or {}))
            optimizer = phase.optimizer(lr, weight_decay)
        elif optimizer is None:
            raise ConfigValueError(f"phase {phase.name!r} continues the previous optimizer but is the first phase")
        trainer.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile)
        best = [BestWeights()] if phase.keep_best else []
        history = trainer.fit(
            train_data, initial_epoch=start, epochs=start + int(phase.epochs), steps_per_epoch=steps_per_epoch,
            validation_data=validation_data, callbacks=[*phase.callbacks, *best, *run_callbacks], verbose=verbose,
        )
        histories.append((phase.name, history))
        start += int(phase.epochs)
        if phase.after is not None:
            phase.after(trainer)
    return _merge(histories, trainer)


def fit(
    trainer: tf.keras.Model,
    train_data,
    *,
    method: Method,
    epochs: int,
    validation_data=None,
    learning_rate=1e-3,
    weight_decay: float = 0.0,
    schedule: str = "constant",
    schedule_kwargs: dict | None = None,
    steps_per_epoch: int | None = None,
    callbacks: Sequence[tf.keras.callbacks.Callback] = (),
    loss=None,
    metrics=None,
    jit_compile: bool = True,
    verbose="auto",
    batch_size: int = 32,
    shuffle_seed: int = 0,
) -> tf.keras.callbacks.History:
    """Train ``trainer`` with ``method`` for ``epochs`` epochs in total: prepare, phases, finalize.

    # Arguments
        trainer: a functional model, or an `lqbench.algorithms` wrapper, distilling or not
            (binary kernels are found in its ``.model``).
        train_data: a batched `tf.data.Dataset`, or ``(x, y)`` (batched with ``batch_size``,
            shuffled every epoch with ``shuffle_seed``).
        method: a `Method` (``lqbench.methods.get(name, **hparams)``).
        epochs: total epoch budget, split into phases by the method.
        learning_rate: float > 0, the initial learning rate of every fresh optimizer.
        schedule: `lqbench.schedules` name; ``schedule_kwargs`` its arguments.
        jit_compile: XLA-compile training when the method and the trainer support it.
        Others: as `run_phases` / Keras ``fit``.

    # Returns
        A `History` over all phases, with ``history.phases``.
    """
    if not isinstance(method, Method):
        raise ConfigTypeError(f"method must be an lqbench.methods.Method, got {type(method).__name__}")
    if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 1:
        raise ConfigValueError(f"epochs={epochs!r} must be an integer >= 1")
    if schedule not in _schedules.available():
        raise ConfigValueError(f"unknown schedule {schedule!r}; available: {', '.join(_schedules.available())}")
    _common.check_learning_rate(learning_rate, "fit")
    train_data = as_dataset(train_data, batch_size, shuffle_seed, shuffle=True)
    validation_data = as_dataset(validation_data, batch_size, shuffle_seed, shuffle=False)
    if not (steps_per_epoch or steps_in(train_data)):
        raise ConfigValueError("steps_per_epoch is required when train_data has no known finite length")
    jit = bool(jit_compile) and method.supports_xla and getattr(trainer, "supports_xla", True)
    method.prepare(trainer)
    history = run_phases(
        trainer, method.phases(int(epochs), trainer), train_data, validation_data=validation_data,
        learning_rate=learning_rate, weight_decay=weight_decay, schedule=schedule, schedule_kwargs=schedule_kwargs,
        steps_per_epoch=steps_per_epoch, callbacks=callbacks, loss=loss, metrics=metrics, jit_compile=jit,
        verbose=verbose,
    )
    method.finalize(trainer)
    return history
