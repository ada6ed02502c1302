r"""Binarizing methods: one `Method` class per module, one registry line each.

| name | class | what it trains | module |
|---|---|---|---|
| `ste` | `STE` | latent weights by Adam/SGD through the sign's estimator (also full precision) | `ste.py` |
| `bop` | `Bop` | flips binary weights by their gradient momentum (Larq's `Bop`) | `bop.py` |
| `bop2` | `Bop2` | second-order Bop | `bop2.py` |
| `bnew` | `BNEW` | concave weight regulariser in three phases | `bnew.py` |
| `proxquant` | `ProxQuant` | binary prox steps, then sign + freeze | `proxquant.py` |
| `bmd` | `BMD` | binary mirror descent, \\(\tanh(\beta_t w)\\) | `bmd.py` |
| `cb` | `ContinuousBinarization` | PCF activations trained stage by stage into binary ones | `cb.py` |

`get(name, **hparams)` returns a configured method (hyperparameters validated);
`fit(trainer, data, method=..., epochs=...)` trains with it (`lqbench.methods.runner`).
`schema(name)` lists the typed hyperparameters that `lqbench.ExperimentSpec` checks.

Adding a method: see CONTRIBUTING.md (one file, one class, one line in ``_REGISTRY``).
"""
from __future__ import annotations

from lqbench.errors import ConfigValueError
from lqbench.hparams import Hparam
from lqbench.methods.base import Method, Phase, split_epochs
from lqbench.methods.bmd import BMD
from lqbench.methods.bnew import BNEW
from lqbench.methods.bop import Bop
from lqbench.methods.bop2 import Bop2
from lqbench.methods.cb import ContinuousBinarization
from lqbench.methods.proxquant import ProxQuant
from lqbench.methods.runner import fit, run_phases, steps_in
from lqbench.methods.ste import STE

__all__ = ["BMD", "BNEW", "Bop", "Bop2", "ContinuousBinarization", "Method", "Phase", "ProxQuant", "STE",
           "available", "fit", "get", "get_class", "run_phases", "schema", "split_epochs", "steps_in"]

_REGISTRY: dict[str, type[Method]] = {cls.name: cls for cls in (STE, Bop, Bop2, BNEW, ProxQuant, BMD,
                                                                 ContinuousBinarization)}


def available() -> list[str]:
    """Names of every method."""
    return list(_REGISTRY)


def get_class(name: str) -> type[Method]:
    """The `Method` subclass registered as ``name``."""
    if name not in _REGISTRY:
        raise ConfigValueError(f"unknown method {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def get(name: str, **hparams) -> Method:
    """A configured method; unknown names, wrong types and impossible values raise one line."""
    return get_class(name)(**hparams)


def schema(name: str) -> tuple[Hparam, ...]:
    """The typed hyperparameters of method ``name``."""
    return get_class(name).hparams
