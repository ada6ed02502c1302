r"""Training methods as Keras model wrappers: backprop and its alternatives (paper 000).

`build(name, model, seed=0, **hparams)` wraps a functional Keras model (logits output) in a
`tf.keras.Model` whose ``train_step`` is the method; the wrapper is used like any Keras model
(``compile``, ``fit``, ``evaluate``, ``predict``, callbacks, checkpoints) and training it updates
the wrapped model (kept as ``.model``).

| name      | class       | update of hidden layers (methods.md §3)                                   | unlocked |
|-----------|-------------|----------------------------------------------------------------------------|----------|
| `bp`      | `BP`        | backpropagation                                                            | no       |
| `dfa`     | `DFA`       | \\(e B_k / B\\) injected at each tap                                        | no       |
| `drtp`    | `DRTP`      | \\((\\operatorname{onehot}(y) - 1/C) B_k\\) at each tap, gradient stopped    | yes      |
| `hsic`    | `HSIC`      | local \\(\\operatorname{HSIC}(Z,Z) - \\gamma \\operatorname{HSIC}(Y,Z)\\)      | yes      |
| `sigprop` | `SigpropTL` | \\(a_k(x) - a_k(x + \\alpha e F)\\) times the clean input                   | yes      |

The tap mechanism is in `lqbench.algorithms.taps`. Every method can distil from a teacher
(``distillation=`` a `lqbench.distillation.Distillation`): its output loss becomes ReActNet's
distillation loss, and each method's hidden layers receive what it derives from the output
loss (see `Algorithm`).

!!! example
    ```python
    import lqbench, lqbench.algorithms
    import tensorflow as tf
    trainer = lqbench.algorithms.build("drtp", model, seed=0)
    trainer.compile(tf.keras.optimizers.legacy.Adam(1e-3), metrics=["accuracy"], jit_compile=True)
    trainer.fit(train_ds, epochs=3)
    model.save("trained.h5")  # the wrapped model holds the trained weights
    ```
"""
from __future__ import annotations

import tensorflow as tf

from lqbench.algorithms.base import Algorithm
from lqbench.algorithms.bp import BP
from lqbench.algorithms.dfa import DFA
from lqbench.algorithms.drtp import DRTP
from lqbench.algorithms.hsic import HSIC
from lqbench.algorithms.sigprop import SigpropTL
from lqbench.algorithms.taps import Tap, TapGraph
from lqbench.distillation import Distillation

__all__ = ["Algorithm", "BP", "DFA", "DRTP", "HSIC", "SigpropTL", "Tap", "TapGraph", "available", "build", "get_class"]

_REGISTRY: dict[str, type[Algorithm]] = {cls.algorithm: cls for cls in (BP, DFA, DRTP, HSIC, SigpropTL)}


def available() -> list[str]:
    """Names accepted by `build`."""
    return list(_REGISTRY)


def get_class(name: str) -> type[Algorithm]:
    """The `Algorithm` subclass of a method name."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown training algorithm {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def build(name: str, model: tf.keras.Model, seed: int = 0, distillation: Distillation | None = None,
          **hparams) -> Algorithm:
    """Wrap ``model`` in the training method ``name``.

    # Arguments
        name: one of `available()`.
        model: functional Keras model returning logits (e.g. `lqbench.models.build(...)`).
        seed: seed of the method's fixed random matrices.
        distillation: a `lqbench.distillation.Distillation` (teacher, alpha, temperature,
            ce_weight) to train the output on, or None.
        **hparams: the method's hyperparameters (``get_class(name).defaults``).

    # Raises
        ValueError: unknown name or hyperparameter, a model the method cannot tap, or a teacher
            whose inputs or logits do not match the model's.
    """
    return get_class(name)(model, seed=seed, distillation=distillation, **hparams)
