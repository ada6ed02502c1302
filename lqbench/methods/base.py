r"""The `Method` base class and `Phase`, the declarative unit of a training run.

A *binarizing method* (STE, Bop, Bop2, BNEW, ProxQuant, BMD, continuous binarization) is one
`Method` subclass in one module of `lqbench.methods`. It declares

- ``name`` and ``hparams``: typed hyperparameters (`lqbench.hparams.Hparam`) validated when
  the object (or an `ExperimentSpec` naming it) is created;
- ``requires_binary_kernels`` / ``supports_unlocked`` / ``binary_activations``: what it can be
  combined with, checked by `check` before anything is built;
- ``transform(model)``: a change of architecture the method *is* (continuous binarization
  replaces activations by PCF layers), applied before the training algorithm wraps the model;
- ``prepare(model)`` / ``finalize(model)``: what it does to the weights before and after
  training (forward maps, \\(\pm 1\\) initialisation, sign projection);
- ``optimizer(learning_rate, weight_decay)``: its optimizer (from `lqbench.optimizers`);
- ``phases(epochs, model)``: its training run as a list of `Phase` objects, each one ``fit`` with its
  optimizer, learning-rate span, callbacks and model changes, run by
  `lqbench.methods.runner.run_phases` (the anchor is Larq Zoo's ``TrainingPhase``).

`experiment`, the CLI and `lqbench.recipes` never test a method's name: they call these.

!!! example
    ```python
    method = lqbench.methods.get("bop", threshold=1e-8, gamma=1e-4)
    method.prepare(model)
    model.compile(method.optimizer(learning_rate=1e-3), loss, ["accuracy"])
    model.fit(data, epochs=10, callbacks=method.callbacks(epochs=10))
    method.finalize(model)
    ```
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, ClassVar, Sequence

import tensorflow as tf

from lqbench import hparams as _hp
from lqbench.errors import IncompatibleError
from lqbench.optimizers import RealKernel, _common

__all__ = ["Method", "Phase", "split_epochs"]


@dataclasses.dataclass
class Phase:
    """One ``fit`` of a multi-phase training run (after Larq Zoo's ``TrainingPhase``).

    # Arguments
        name: shown in ``history.phases``.
        epochs: number of epochs (a phase with 0 epochs is skipped).
        optimizer: ``f(learning_rate, weight_decay) -> optimizer`` for a fresh optimizer, or ``None`` to
            continue the previous phase's optimizer, its state and its learning-rate schedule
            (BNEW's fine-tuning phase continues the decayed Adam, as in the authors' code).
        schedule_epochs: epochs the fresh optimizer's learning-rate schedule spans (default
            ``epochs``; longer when following phases continue this optimizer).
        callbacks: Keras callbacks of this phase only.
        before, after: ``f(model)`` run before compiling / after fitting this phase.
        keep_best: restore this phase's best epoch (``val_accuracy``, else loss) when it ends.
    """

    name: str
    epochs: int
    optimizer: Callable[[Any, float], tf.keras.optimizers.legacy.Optimizer] | None
    schedule_epochs: int | None = None
    callbacks: Sequence[tf.keras.callbacks.Callback] = ()
    before: Callable[[tf.keras.Model], None] | None = None
    after: Callable[[tf.keras.Model], None] | None = None
    keep_best: bool = False


class Method:
    """Base class of a binarizing method; see the module docstring.

    # Arguments
        **hparams: the method's hyperparameters (``describe()`` lists them with types,
            defaults and ranges); unknown names, wrong types and impossible values raise.
    """

    name: ClassVar[str] = ""
    hparams: ClassVar[tuple[_hp.Hparam, ...]] = ()
    #: refused on a full-precision model (the method updates binary kernels).
    requires_binary_kernels: ClassVar[bool] = False
    #: works with update-unlocked algorithms (DRTP, HSIC, SigpropTL).
    supports_unlocked: ClassVar[bool] = True
    #: ``None``: any binarization of activations; ``False``: the method binarizes activations
    #: itself and needs ``binarization.activations = false``.
    binary_activations: ClassVar[bool | None] = None
    #: the weights change meaning during the run (sign projections, freezes, stages): a
    #: run-level "best epoch" restore or epoch-level resume would mix incompatible weights.
    multi_phase: ClassVar[bool] = False
    supports_xla: ClassVar[bool] = True

    def __init__(self, **hparams):
        self.config = _hp.validate(self.hparams, hparams, f"method {self.name!r}")
        self._validate()

    def _validate(self) -> None:
        """Checks across hyperparameters (subclasses)."""

    def __getattr__(self, key):  # hyperparameters as attributes: method.gamma
        config = self.__dict__.get("config", {})
        if key in config:
            return config[key]
        raise AttributeError(f"{type(self).__name__} has no attribute {key!r}")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ description
    @classmethod
    def describe(cls) -> str:
        """One line per hyperparameter: name, kind, default, range or choices."""
        return "\n".join(h.describe() for h in cls.hparams) or "(no hyperparameters)"

    def get_config(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.config.items()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Method":
        return cls(**config)

    @classmethod
    def check(cls, *, binary_weights: bool, binary_activations: bool, algorithm: str, unlocked: bool) -> None:
        """Raise `IncompatibleError` (one line) when this method cannot train that setup."""
        if cls.requires_binary_kernels and not binary_weights:
            raise IncompatibleError(
                f"method {cls.name!r} updates binary weights but binarization.weights is false "
                "(use method 'ste' for full-precision weights)")
        if cls.binary_activations is False and binary_activations:
            raise IncompatibleError(
                f"method {cls.name!r} binarizes activations itself; set binarization.activations = false")
        if unlocked and not cls.supports_unlocked:
            raise IncompatibleError(
                f"method {cls.name!r} cannot be combined with the update-unlocked algorithm {algorithm!r}; "
                "use bp or dfa")

    # ------------------------------------------------------------------ model changes
    def transform(self, model: tf.keras.Model) -> tf.keras.Model:
        """The architecture this method trains (default: ``model`` itself)."""
        return model

    def prepare(self, model) -> None:
        """Weight changes before training (in place). Default: mark the binary kernels."""
        if self.requires_binary_kernels:
            _common.require_binary_kernels(self.name, model)
        else:
            _common.mark_binary_kernels(model)

    def finalize(self, model) -> None:
        """After training: binary kernels exactly \\(\\pm 1\\), original quantizers back.

        Idempotent. The default is a no-op (latent weights are binarized by the quantizer)."""

    # ------------------------------------------------------------------ training
    def optimizer(self, learning_rate=1e-3, weight_decay: float = 0.0) -> tf.keras.optimizers.legacy.Optimizer:
        """The optimizer of this method (binary kernels and the real-valued parameters)."""
        raise NotImplementedError

    def callbacks(self, epochs: int) -> list[tf.keras.callbacks.Callback]:
        """Callbacks of a single ``fit`` of ``epochs`` epochs (the whole method in one fit)."""
        return []

    def phases(self, epochs: int, model=None) -> list[Phase]:
        """The training run of ``epochs`` epochs (of ``model``, for methods whose phases depend on it).

        Default: one phase with `optimizer` and `callbacks`."""
        return [Phase(self.name, epochs, lambda lr, wd: self.optimizer(lr, wd), callbacks=self.callbacks(epochs))]


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


class ProjectedKernelsMethod(Method):
    """A method that trains real-valued latent kernels in \\([-1, 1]\\) (the kernel quantizers
    become `RealKernel` while it trains) and projects them to \\(\\pm 1\\) at the end: BNEW, ProxQuant."""

    def prepare(self, model) -> None:
        kernels = _common.require_binary_kernels(self.name, model)
        _common.swap_kernel_quantizers(model, lambda original: RealKernel())
        for var in kernels:
            v = _common.latent(var)
            v.assign(tf.clip_by_value(v.read_value(), -1.0, 1.0))

    def finalize(self, model) -> None:
        _common.project_sign(model)
        _common.restore_kernel_quantizers(model)
