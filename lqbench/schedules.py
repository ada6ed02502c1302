r"""Learning-rate (and hyperparameter) schedules over a whole training run.

`build(name, learning_rate, total_steps, **kwargs)` returns either a float (``constant``)
or a registered, serialisable `tf.keras.optimizers.schedules.LearningRateSchedule`
evaluated at the optimizer's step \\(t\\) (0-based), for a run of \\(T\\) = ``total_steps``:

| name       | value at step \\(t\\)                                                               |
|------------|-------------------------------------------------------------------------------------|
| `constant` | \\(\eta_0\\)                                                                        |
| `linear`   | \\(\eta_0 \max(0, 1 - t / T)\\) (linear decay to 0, as in BNEW and Bop's papers)    |
| `cosine`   | \\(\eta_0 \frac{1}{2}(1 + \cos(\pi \min(t, T) / T))\\)                              |
| `step`     | \\(\eta_0 \cdot \text{factor}^{k(t)}\\), \\(k(t)\\) = number of boundaries \\(\leq t\\) |

`step` boundaries are given as fractions of training (all values in (0, 1), the default
unit) or as epochs (``unit="epoch"`` plus ``steps_per_epoch``).

The same functions schedule non-learning-rate hyperparameters per epoch (Bop's
\\(\gamma\\) with ``total_steps = epochs``), see `lqbench.callbacks`.

!!! example
    ```python
    lr = lqbench.schedules.build("linear", 1e-3, total_steps=epochs * steps_per_epoch)
    optimizer = lqbench.optimizers.build("adam", learning_rate=lr)
    ```
"""
from __future__ import annotations

from typing import Sequence

import larq as lq
import tensorflow as tf

__all__ = ["LinearDecay", "StepDecay", "available", "build", "value"]

_Schedule = tf.keras.optimizers.schedules.LearningRateSchedule


@lq.utils.register_keras_custom_object
class LinearDecay(_Schedule):
    r"""Linear decay from ``initial`` to 0 over ``total_steps`` steps, then 0.

    \\[ \eta_t = \eta_0 \max\left(0, 1 - \frac{t}{T}\right). \\]
    """

    def __init__(self, initial: float, total_steps: int, name: str = "LinearDecay"):
        super().__init__()
        self.initial = float(initial)
        self.total_steps = int(total_steps)
        self.name = name

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        fraction = tf.minimum(step / float(self.total_steps), 1.0)
        return self.initial * (1.0 - fraction)

    def get_config(self):
        return {"initial": self.initial, "total_steps": self.total_steps, "name": self.name}


@lq.utils.register_keras_custom_object
class StepDecay(_Schedule):
    r"""Piecewise-constant decay: multiply by ``factor`` at each boundary step.

    \\[ \eta_t = \eta_0 \cdot \text{factor}^{|\{b \in \text{boundaries} : b \leq t\}|}. \\]
    """

    def __init__(self, initial: float, boundaries: Sequence[int], factor: float = 0.1, name: str = "StepDecay"):
        super().__init__()
        self.initial = float(initial)
        self.boundaries = [int(b) for b in boundaries]
        self.factor = float(factor)
        self.name = name

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        drops = tf.zeros([], tf.float32)
        for boundary in self.boundaries:
            drops += tf.cast(step >= float(boundary), tf.float32)
        return self.initial * tf.pow(self.factor, drops)

    def get_config(self):
        return {"initial": self.initial, "boundaries": self.boundaries, "factor": self.factor, "name": self.name}


def _constant(learning_rate, total_steps):
    return float(learning_rate)


def _linear(learning_rate, total_steps):
    return LinearDecay(learning_rate, total_steps)


def _cosine(learning_rate, total_steps, alpha: float = 0.0):
    return tf.keras.optimizers.schedules.CosineDecay(float(learning_rate), int(total_steps), alpha=alpha)


def _step(learning_rate, total_steps, boundaries=(0.5, 0.75), factor: float = 0.1, unit: str | None = None,
          steps_per_epoch: int | None = None):
    boundaries = list(boundaries)
    if not 0 < factor <= 1:
        raise ValueError(f"step schedule: factor={factor} must be in (0, 1]")
    if unit is None:
        unit = "fraction" if all(0 < b < 1 for b in boundaries) else "epoch"
    if unit == "fraction":
        if not all(0 < b < 1 for b in boundaries):
            raise ValueError(f"step schedule: fraction boundaries {boundaries} must all be in (0, 1)")
        steps = [int(round(b * total_steps)) for b in boundaries]
    elif unit == "epoch":
        if not steps_per_epoch or steps_per_epoch < 1:
            raise ValueError(f"step schedule: epoch boundaries {boundaries} need steps_per_epoch >= 1, got {steps_per_epoch}")
        steps = [int(b) * int(steps_per_epoch) for b in boundaries]
    else:
        raise ValueError(f"step schedule: unknown unit {unit!r}; allowed: fraction, epoch")
    if steps != sorted(steps):
        raise ValueError(f"step schedule: boundaries {boundaries} must be increasing")
    return StepDecay(learning_rate, steps, factor)


_BUILDERS = {"constant": _constant, "cosine": _cosine, "linear": _linear, "step": _step}


def available() -> list[str]:
    """Names accepted by `build`."""
    return list(_BUILDERS)


def build(name: str, learning_rate: float, total_steps: int, **kwargs) -> float | _Schedule:
    """The schedule ``name`` starting at ``learning_rate`` for a run of ``total_steps`` steps.

    # Arguments
        name: one of `available()`.
        learning_rate: initial value (> 0).
        total_steps: length of the run in optimizer steps (or epochs, for per-epoch use).
        **kwargs: ``cosine``: ``alpha``; ``step``: ``boundaries``, ``factor``, ``unit``,
            ``steps_per_epoch``.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown schedule {name!r}; available: {', '.join(available())}")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
        raise ValueError(f"schedule {name!r}: learning_rate={learning_rate!r} must be a number > 0")
    if int(total_steps) < 1:
        raise ValueError(f"schedule {name!r}: total_steps={total_steps} must be >= 1")
    return _BUILDERS[name](learning_rate, int(total_steps), **kwargs)


def value(schedule, step: int) -> float:
    """Numeric value of a float or schedule at ``step`` (for per-epoch callbacks and logs)."""
    if isinstance(schedule, _Schedule):
        return float(tf.keras.backend.get_value(schedule(step)))
    return float(schedule)

