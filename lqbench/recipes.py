r"""`fit`: the earlier one-call training API, kept as a thin alias of `lqbench.methods.fit`.

``recipes.fit(trainer, data, epochs=..., optimizer=NAME, hparams={...})`` is
``lqbench.methods.fit(trainer, data, method=lqbench.methods.get(...), epochs=...)`` with the
earlier names: ``"adam"`` / ``"sgd"`` are the method ``ste`` with that optimizer,
``"continuous"`` is ``cb``, every other name is the method of that name.
``hparams`` holds the method's hyperparameters plus ``schedule_kwargs``, ``batch_size`` and
``shuffle_seed``.

!!! example
    ```python
    history = lqbench.recipes.fit(model, train, epochs=20, optimizer="bnew", validation_data=val,
                                  learning_rate=1e-3, schedule="linear", hparams={"reg": 1e-4})
    history.phases  # [{'name': 'pretrain', 'start': 0, 'epochs': 3}, ...]
    ```
"""
from __future__ import annotations

from typing import Any, Sequence

import tensorflow as tf

from lqbench import methods
from lqbench.errors import ConfigValueError
from lqbench.methods import Method, steps_in

__all__ = ["MULTI_PHASE", "available", "fit", "method_for", "steps_in"]

#: Earlier names of STE training with a given optimizer, and of continuous binarization.
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "adam": ("ste", {"optimizer": "adam"}),
    "sgd": ("ste", {"optimizer": "sgd"}),
    "continuous": ("cb", {}),
}
#: Methods whose weights change meaning during the run (see `lqbench.methods.Method.multi_phase`).
MULTI_PHASE = tuple(name for name in methods.available() if methods.get_class(name).multi_phase)
_RUN_KEYS = ("schedule_kwargs", "batch_size", "shuffle_seed")


def available() -> list[str]:
    """Every name `fit` accepts: the methods and the earlier aliases."""
    return [*methods.available(), *ALIASES]


def method_for(name: str, hparams: dict[str, Any] | None = None) -> Method:
    """The configured method behind ``name`` (a method name or an alias of `ALIASES`)."""
    if name not in available():
        raise ConfigValueError(f"unknown recipe {name!r}; available: {', '.join(available())}")
    base, fixed = ALIASES.get(name, (name, {}))
    return methods.get(base, **{**fixed, **(hparams or {})})


def fit(trainer: tf.keras.Model, train_data, *, epochs: int, optimizer: str = "adam", validation_data=None,
        learning_rate=1e-3, weight_decay: float = 0.0, schedule: str = "constant", steps_per_epoch: int | None = None,
        callbacks: Sequence[tf.keras.callbacks.Callback] = (), loss=None, metrics=None, jit_compile: bool = True,
        verbose="auto", hparams: dict[str, Any] | None = None) -> tf.keras.callbacks.History:
    """`lqbench.methods.fit` with the method named ``optimizer`` (see the module docstring)."""
    hparams = dict(hparams or {})
    run = {k: hparams.pop(k) for k in _RUN_KEYS if k in hparams}
    return methods.fit(
        trainer, train_data, method=method_for(optimizer, hparams), epochs=epochs, validation_data=validation_data,
        learning_rate=learning_rate, weight_decay=weight_decay, schedule=schedule,
        schedule_kwargs=run.get("schedule_kwargs"), steps_per_epoch=steps_per_epoch, callbacks=callbacks, loss=loss,
        metrics=metrics, jit_compile=jit_compile, verbose=verbose, batch_size=int(run.get("batch_size", 32)),
        shuffle_seed=int(run.get("shuffle_seed", 0)),
    )
