r"""Keras optimizers for binary neural networks: the update rules, as in `larq.optimizers`.

| name        | binary kernels                                                          | other parameters |
|-------------|--------------------------------------------------------------------------|------------------|
| `adam`      | Adam on latent weights (STE training)                                    | Adam |
| `sgd`       | SGD (+ momentum / Nesterov) on latent weights                            | SGD |
| `bop`       | Larq `Bop`: flip where \\(w m > \tau\\)                                  | Adam |
| `bop2`      | `Bop2`: flip where \\(w m / (\sqrt{v} + 10^{-10}) > \tau\\)             | Adam |
| `bnew`      | `BNEW`: Adam, then \\(w \leftarrow \text{clip}((1 + 2\lambda) w, -1, 1)\\) | Adam |
| `proxquant` | `ProxQuant`: Adam, then the L1/L2 binary prox, clip                      | Adam |
| `bmd`       | `BMD`: Adam on \\(w\\), forward \\(\tanh(\beta_t w)\\)                   | Adam |
| `frozen`    | `Frozen`: binary kernels unchanged                                       | Adam |

Everything is a `tf.keras.optimizers.legacy.Optimizer`; the binarizing ones are a
`larq.optimizers.CaseOptimizer` whose predicate `is_binary_kernel` routes binary kernels to
their rule and every other variable to `Adam` with the same learning rate (float or
schedule) and coupled weight decay (\\(g \leftarrow g + \lambda_{wd} w\\)).

These are update rules only. A *method* (its model preparation, callbacks and phases) is an
object of `lqbench.methods`; ``lqbench.methods.get(name).optimizer(lr, wd)`` is the optimizer
a method trains with, and `build` here makes the same optimizer by rule name:

```python
optimizer = lqbench.optimizers.build("bop", learning_rate=1e-3, threshold=1e-8, gamma=1e-4)
```
"""
from __future__ import annotations

import larq as lq
import tensorflow as tf

from lqbench.errors import ConfigValueError
from lqbench.optimizers._common import (
    RealKernel,
    binary_kernels,
    case,
    check_learning_rate,
    is_binary_kernel,
    mark_binary_kernels,
)
from lqbench.optimizers.adam import Adam
from lqbench.optimizers.bmd import BMD, MirrorTanh
from lqbench.optimizers.bnew import BNEW
from lqbench.optimizers.bop import Bop2, check_bop_hypers
from lqbench.optimizers.frozen import Frozen
from lqbench.optimizers.proxquant import ProxQuant
from lqbench.optimizers.sgd import SGD

__all__ = [
    "Adam",
    "BMD",
    "BNEW",
    "Bop2",
    "Frozen",
    "MirrorTanh",
    "ProxQuant",
    "RealKernel",
    "SGD",
    "available",
    "binary_kernels",
    "build",
    "case",
    "frozen_binary",
    "is_binary_kernel",
    "mark_binary_kernels",
]


def frozen_binary(learning_rate=1e-3, weight_decay: float = 0.0) -> lq.optimizers.CaseOptimizer:
    """Binary kernels frozen (`Frozen`), every other parameter trained by `Adam`."""
    check_learning_rate(learning_rate, "frozen_binary")
    return case(Frozen(), Adam(learning_rate, weight_decay=weight_decay), name="case_frozen")


def _binary(name: str, rule):
    """A factory of ``CaseOptimizer(rule(lr, **hparams) on binary kernels, Adam on the rest)``."""

    def factory(learning_rate=1e-3, weight_decay: float = 0.0, **hparams):
        return case(rule(learning_rate, **hparams), Adam(learning_rate, weight_decay=weight_decay),
                    name=f"case_{name}")

    return factory


_FACTORIES = {
    "adam": lambda learning_rate=1e-3, weight_decay=0.0, **h: Adam(learning_rate, weight_decay=weight_decay, **h),
    "sgd": lambda learning_rate=1e-2, weight_decay=0.0, **h: SGD(learning_rate, weight_decay=weight_decay, **h),
    "bop": _binary("bop", lambda lr, threshold=1e-8, gamma=1e-4: (check_bop_hypers("bop", threshold, gamma)
                                                            or lq.optimizers.Bop(threshold=threshold, gamma=gamma))),
    "bop2": _binary("bop2", lambda lr, **h: Bop2(**h)),
    "bnew": _binary("bnew", lambda lr, **h: BNEW(lr, **h)),
    "proxquant": _binary("proxquant", lambda lr, **h: ProxQuant(lr, **h)),
    "bmd": _binary("bmd", lambda lr, **h: BMD(lr, **h)),
    "frozen": lambda learning_rate=1e-3, weight_decay=0.0: frozen_binary(learning_rate, weight_decay),
}


def available() -> list[str]:
    """Rule names accepted by `build`."""
    return list(_FACTORIES)


def build(name: str, learning_rate=1e-3, weight_decay: float = 0.0, **hparams) -> tf.keras.optimizers.legacy.Optimizer:
    """A fresh legacy optimizer with update rule ``name`` (see the module table).

    # Arguments
        name: one of `available()`.
        learning_rate: float > 0 or a `LearningRateSchedule` (e.g. from `lqbench.schedules.build`).
        weight_decay: coupled L2 coefficient >= 0 for the real-valued parameters.
        **hparams: arguments of the rule (e.g. ``threshold``, ``gamma`` for Bop; ``momentum`` for SGD).
    """
    if name not in _FACTORIES:
        raise ConfigValueError(f"unknown optimizer {name!r}; available: {', '.join(available())}")
    check_learning_rate(learning_rate, f"optimizer {name!r}")
    try:
        return _FACTORIES[name](learning_rate, weight_decay, **hparams)
    except TypeError as error:
        raise ConfigValueError(f"optimizer {name!r}: {error}") from None
