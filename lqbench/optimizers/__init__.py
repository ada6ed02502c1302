r"""Optimizers for binary neural networks, selectable by name (methods.md §4, papers 001/002).

| name        | binary kernels                                                          | other parameters |
|-------------|--------------------------------------------------------------------------|------------------|
| `adam`      | Adam on latent weights (the STE baseline with a sign-quantized model)    | Adam |
| `sgd`       | SGD (+ momentum / Nesterov) on latent weights                            | SGD |
| `bop`       | Larq `Bop`: flip where \\(w m > \tau\\)                                  | Adam |
| `bop2`      | `Bop2`: flip where \\(w m / (\sqrt{v} + 10^{-10}) > \tau\\)             | Adam |
| `bnew`      | `BNEW`: Adam, then \\(w \leftarrow \text{clip}((1 + 2\lambda) w, -1, 1)\\) | Adam |
| `proxquant` | `ProxQuant`: Adam, then the L1/L2 binary prox, clip                      | Adam |
| `bmd`       | `BMD`: Adam on \\(w\\), forward \\(\tanh(\beta_t w)\\)                   | Adam |

Everything is a `tf.keras.optimizers.legacy.Optimizer`; the binarizing ones are a
`larq.optimizers.CaseOptimizer` whose predicate `is_binary_kernel` routes binary kernels to
their rule and every other variable to `Adam` with the same learning rate (float or
schedule) and coupled weight decay (\\(g \leftarrow g + \lambda_{wd} w\\), applied to the
real-valued parameters only).

A training run with method ``name`` is:

```python
optimizer = lqbench.optimizers.build(name, learning_rate=lr, weight_decay=wd, **hparams)
lqbench.optimizers.prepare(name, model)           # forward maps, +-1 init (see below)
model.compile(optimizer, loss, metrics, jit_compile=lqbench.optimizers.supports_xla(name))
model.fit(data, epochs=epochs,
          callbacks=lqbench.optimizers.callbacks(name, model, epochs, steps_per_epoch, **hparams))
lqbench.optimizers.finalize(name, model)          # +-1 kernels, sign quantizers back (idempotent)
```

`lqbench.recipes.fit` does all of this, and runs the multi-phase recipes (BNEW with best
phase-1 weights and fresh optimizers, continuous binarization) as their papers describe.

`prepare` per method: ``bop``/``bop2`` set binary kernels to \\(sign(w)\\) (Bop needs
\\(\pm 1\\) weights); ``bnew``/``proxquant`` make the forward pass use the relaxed kernel
\\(w \in [-1, 1]\\) itself (`RealKernel`) and clip it; ``bmd`` makes it use
\\(\tanh(\beta w)\\) (`MirrorTanh`). The swaps bypass Keras tracking, so weights, saved
structure and `get_weights` are unchanged; `finalize` undoes them.

Hyperparameters (``**hparams``; every method rejects keys it does not know):

| name | optimizer | callbacks / recipe |
|---|---|---|
| adam | ``beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False`` | |
| sgd | ``momentum=0.9, nesterov=False`` | |
| bop | ``threshold=1e-8, gamma=1e-4`` | ``gamma_schedule="constant", threshold_schedule="constant"`` (per epoch, `lqbench.schedules` names) |
| bop2 | ``threshold=1e-6, gamma=1e-6, sigma=1e-2, bias_correction=False`` | same schedules |
| bnew | | ``reg=1e-4`` (\\(\lambda\\) at the end of phase 2), ``lambda_rate=None``, ``phase_fractions=(0.2, 0.7, 0.1)`` |
| proxquant | ``prox="l1"`` | ``reg_rate=1e-4, freeze_fraction=2/3`` |
| bmd | | ``rho=1.01, interval="epoch", finetune_fraction=0.1`` (``interval``: ``"epoch"``, the authors' per-epoch growth, or a step count) |
"""
from __future__ import annotations

import math
from typing import Any

import larq as lq
import tensorflow as tf

from lqbench.optimizers._common import (
    RealKernel,
    binary_kernels,
    check_learning_rate,
    is_binary_kernel,
    mark_binary_kernels,
    project_sign,
    restore_kernel_quantizers,
    swap_kernel_quantizers,
)
from lqbench.optimizers.adam import Adam
from lqbench.optimizers.bmd import BMD, MirrorTanh, release_weight_clip, restore_weight_clip
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
    "callbacks",
    "finalize",
    "frozen_binary",
    "hparam_defaults",
    "is_binary_kernel",
    "prepare",
    "supports_xla",
]

# Per method: (optimizer hyperparameters, callback/recipe hyperparameters) with defaults.
_HPARAMS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "adam": ({"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False}, {}),
    "sgd": ({"momentum": 0.9, "nesterov": False}, {}),
    "bop": ({"threshold": 1e-8, "gamma": 1e-4}, {"gamma_schedule": "constant", "threshold_schedule": "constant"}),
    "bop2": (
        {"threshold": 1e-6, "gamma": 1e-6, "sigma": 1e-2, "bias_correction": False},
        {"gamma_schedule": "constant", "threshold_schedule": "constant"},
    ),
    "bnew": ({}, {"reg": 1e-4, "lambda_rate": None, "phase_fractions": (0.2, 0.7, 0.1)}),
    "proxquant": ({"prox": "l1"}, {"reg_rate": 1e-4, "freeze_fraction": 2 / 3}),
    "bmd": ({}, {"rho": 1.01, "interval": "epoch", "finetune_fraction": 0.1}),  # refB #14.5: authors' per-epoch beta
}
_BINARIZING = ("bop", "bop2", "bnew", "proxquant", "bmd")
# Methods that cannot be XLA-compiled (none so far: all were checked by tests/test_optimizers.py).
_NO_XLA: set[str] = set()


def available() -> list[str]:
    """Names accepted by `build`, `callbacks`, `prepare`."""
    return list(_HPARAMS)


def _check_name(name: str) -> None:
    if name not in _HPARAMS:
        raise ValueError(f"unknown optimizer {name!r}; available: {', '.join(available())}")


def hparam_defaults(name: str) -> dict[str, Any]:
    """All hyperparameters of method ``name`` with their defaults."""
    _check_name(name)
    opt, cb = _HPARAMS[name]
    return {**opt, **cb}


def _split(name: str, hparams: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    _check_name(name)
    opt, cb = _HPARAMS[name]
    unknown = set(hparams) - set(opt) - set(cb)
    if unknown:
        allowed = ", ".join(sorted({*opt, *cb})) or "none"
        raise ValueError(f"optimizer {name!r}: unknown hyperparameter(s) {', '.join(sorted(unknown))}; allowed: {allowed}")
    return ({k: hparams.get(k, v) for k, v in opt.items()}, {k: hparams.get(k, v) for k, v in cb.items()})


def _check_fraction(name: str, key: str, value) -> None:
    if not (isinstance(value, (int, float)) and 0 <= value <= 1):
        raise ValueError(f"optimizer {name!r}: {key}={value!r} must be a fraction in [0, 1]")


def _validate_callback_hparams(name: str, cb: dict[str, Any]) -> None:
    from lqbench import schedules

    for key in ("gamma_schedule", "threshold_schedule"):
        if key in cb and cb[key] not in schedules.available():
            raise ValueError(f"optimizer {name!r}: {key}={cb[key]!r}; allowed: {', '.join(schedules.available())}")
    if name == "bnew":
        fractions = cb["phase_fractions"]
        if (not isinstance(fractions, (list, tuple)) or len(fractions) != 3
                or any(not isinstance(f, (int, float)) or f < 0 for f in fractions)
                or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6)):
            raise ValueError(f"optimizer 'bnew': phase_fractions={fractions!r} must be 3 non-negative numbers summing to 1")
        from lqbench.optimizers._common import check_range

        check_range("reg", cb["reg"], 0.0, math.inf, low_inclusive=True, where="bnew")
        if cb["lambda_rate"] is not None:
            check_range("lambda_rate", cb["lambda_rate"], 0.0, math.inf, low_inclusive=True, where="bnew")
    if name == "proxquant":
        _check_fraction(name, "freeze_fraction", cb["freeze_fraction"])
        from lqbench.optimizers._common import check_range

        check_range("reg_rate", cb["reg_rate"], 0.0, math.inf, low_inclusive=True, where="proxquant")
    if name == "bmd":
        _check_fraction(name, "finetune_fraction", cb["finetune_fraction"])
        from lqbench.optimizers._common import check_range

        check_range("rho", cb["rho"], 1.0, math.inf, low_inclusive=True, where="bmd")
        interval = cb["interval"]
        if interval != "epoch" and not (isinstance(interval, int) and not isinstance(interval, bool) and interval >= 1):
            raise ValueError(f"optimizer 'bmd': interval={interval!r} must be 'epoch' or an integer >= 1")


def build(name: str, learning_rate=1e-3, weight_decay: float = 0.0, **hparams) -> tf.keras.optimizers.legacy.Optimizer:
    """A fresh legacy optimizer for method ``name`` (see the module table).

    # Arguments
        name: one of `available()`.
        learning_rate: float > 0 or a `LearningRateSchedule` (e.g. from `lqbench.schedules.build`).
        weight_decay: coupled L2 coefficient >= 0 for the real-valued parameters.
        **hparams: the method's hyperparameters (module table); callback-only keys are
            accepted and ignored here so one dict can feed `build` and `callbacks`.
    """
    opt, cb = _split(name, hparams)
    check_learning_rate(learning_rate, f"optimizer {name!r}")
    _validate_callback_hparams(name, cb)
    if name == "adam":
        return Adam(learning_rate, weight_decay=weight_decay, **opt)
    if name == "sgd":
        return SGD(learning_rate, weight_decay=weight_decay, **opt)
    default = Adam(learning_rate, weight_decay=weight_decay)
    if name == "bop":
        check_bop_hypers("bop", opt["threshold"], opt["gamma"])
        binary = lq.optimizers.Bop(threshold=opt["threshold"], gamma=opt["gamma"])
    elif name == "bop2":
        binary = Bop2(**opt)
    elif name == "bnew":
        binary = BNEW(learning_rate)
    elif name == "proxquant":
        binary = ProxQuant(learning_rate, prox=opt["prox"])
    else:  # bmd
        binary = BMD(learning_rate)
    return lq.optimizers.CaseOptimizer((is_binary_kernel, binary), default_optimizer=default, name=f"case_{name}")


def frozen_binary(learning_rate=1e-3, weight_decay: float = 0.0) -> lq.optimizers.CaseOptimizer:
    """Binary kernels frozen (`Frozen`), every other parameter trained by `Adam`."""
    check_learning_rate(learning_rate, "frozen_binary")
    return lq.optimizers.CaseOptimizer(
        (is_binary_kernel, Frozen()), default_optimizer=Adam(learning_rate, weight_decay=weight_decay),
        name="case_frozen",
    )


def supports_xla(name: str) -> bool:
    """Whether method ``name`` trains under XLA (``compile(jit_compile=True)``)."""
    if name in ("cb", "continuous", "ste"):  # recipe names of lqbench.recipes
        return True
    _check_name(name)
    return name not in _NO_XLA


def prepare(name: str, model: tf.keras.Model) -> tf.keras.Model:
    """Apply the model changes method ``name`` needs before training (in place; returns ``model``).

    Raises ValueError for a binarizing method when the model has no binary kernels.
    """
    _check_name(name)
    if name not in _BINARIZING:
        mark_binary_kernels(model)
        return model
    from lqbench.optimizers._common import require_binary_kernels

    kernels = require_binary_kernels(name, model)
    if name in ("bop", "bop2"):
        project_sign(model)
    elif name in ("bnew", "proxquant"):
        swap_kernel_quantizers(model, lambda original: RealKernel())
        for var in kernels:
            v = getattr(var, "latent_variable", var)
            v.assign(tf.clip_by_value(v.read_value(), -1.0, 1.0))
    elif name == "bmd":
        beta = tf.Variable(1.0, trainable=False, dtype=tf.float32, name="bmd_beta")
        swap_kernel_quantizers(model, lambda original: MirrorTanh(beta))
        release_weight_clip(model)  # refB #14.5: the authors' mirror descent never clamps w
    return model


def finalize(name: str, model: tf.keras.Model) -> tf.keras.Model:
    """After training with method ``name``: binary kernels to \\(sign(w)\\), sign quantizers back.

    A no-op for ``adam``/``sgd`` (their latent weights are binarized by the quantizer).
    """
    _check_name(name)
    if name in _BINARIZING:
        project_sign(model)
        restore_kernel_quantizers(model)
        restore_weight_clip(model)  # refB #14.5: undo prepare("bmd")'s release_weight_clip
    return model


def _epoch_schedule(schedule_name: str, base: float, epochs: int):
    from lqbench import schedules

    schedule = schedules.build(schedule_name, base, max(int(epochs), 1))
    return lambda epoch: schedules.value(schedule, epoch)


def callbacks(name: str, model: tf.keras.Model, epochs: int, steps_per_epoch: int | None = None,
              **hparams) -> list[tf.keras.callbacks.Callback]:
    """The callbacks a single ``fit`` of ``epochs`` epochs with method ``name`` needs.

    - ``bop``/``bop2``: `SubOptimizerScheduler` (Larq `HyperparameterScheduler`) for
      ``gamma``/``threshold`` when their schedule is not ``constant``.
    - ``bnew``: `BNEWPhases` with ``phase_fractions`` of ``epochs`` in this one fit (no
      best-weight restore nor fresh Adam between phases: use `lqbench.recipes.fit` for the
      paper's recipe), then `FinalizeBinaryKernels`.
    - ``proxquant``: `ProxQuantSchedule` (freeze at ``round(freeze_fraction * epochs)``),
      `FinalizeBinaryKernels`.
    - ``bmd``: `BMDSchedule` (fine-tuning the last ``finetune_fraction`` of epochs),
      `FinalizeBinaryKernels`.
    """
    from lqbench import callbacks as lqcb

    opt, cb = _split(name, hparams)
    _validate_callback_hparams(name, cb)
    if int(epochs) < 1:
        raise ValueError(f"callbacks({name!r}): epochs={epochs} must be >= 1")
    out: list[tf.keras.callbacks.Callback] = []
    if name in ("bop", "bop2"):
        cls = lq.optimizers.Bop if name == "bop" else Bop2
        for hyper in ("gamma", "threshold"):
            schedule_name = cb[f"{hyper}_schedule"]
            if schedule_name != "constant":
                out.append(lqcb.SubOptimizerScheduler(_epoch_schedule(schedule_name, opt[hyper], epochs), hyper, cls))
    elif name == "bnew":
        e1, e2, _ = split_epochs(int(epochs), cb["phase_fractions"])
        out += [lqcb.BNEWPhases(e1, e2, reg=cb["reg"], lambda_rate=cb["lambda_rate"]), lqcb.FinalizeBinaryKernels()]
    elif name == "proxquant":
        freeze = int(round(cb["freeze_fraction"] * epochs))
        out += [lqcb.ProxQuantSchedule(cb["reg_rate"], freeze_epoch=freeze if freeze < epochs else None),
                lqcb.FinalizeBinaryKernels()]
    elif name == "bmd":
        finetune = int(epochs) - int(round(cb["finetune_fraction"] * epochs))
        out += [lqcb.BMDSchedule(cb["rho"], cb["interval"], finetune_epoch=finetune if finetune < epochs else None),
                lqcb.FinalizeBinaryKernels()]
    return out


def split_epochs(epochs: int, fractions) -> list[int]:
    """Split ``epochs`` by ``fractions`` (largest-remainder rounding; every non-zero fraction
    gets at least one epoch when ``epochs`` allows)."""
    raw = [f * epochs for f in fractions]
    counts = [int(math.floor(r)) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)[: epochs - sum(counts)]:
        counts[i] += 1
    for i, f in enumerate(fractions):
        if f > 0 and counts[i] == 0:
            donor = max(range(len(counts)), key=lambda j: counts[j])
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[i] += 1
    return counts
