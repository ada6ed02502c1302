r"""Shared machinery of lqbench optimizers: binary-kernel discovery, coupled weight decay,
kernel-quantizer swaps and hyperparameter validation.

A variable is a *binary kernel* when it is the kernel (``kernel``, ``depthwise_kernel`` or
``pointwise_kernel``) of a Larq layer whose matching quantizer (``kernel_quantizer``,
``depthwise_quantizer``, ``pointwise_quantizer``) has ``precision == 1``: Larq's own marking,
read from the `QuantizedVariable` by `is_binary_kernel` (the `CaseOptimizer` predicate) and
from the layers (walked by `lqbench.walk.walk_layers`) by `binary_kernels`. No private flag is
set on variables.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import larq as lq
import tensorflow as tf

from lqbench.errors import ConfigTypeError, ConfigValueError, IncompatibleError
from lqbench.walk import KERNEL_SLOTS, walk_layers

Optimizer = tf.keras.optimizers.legacy.Optimizer
Schedule = tf.keras.optimizers.schedules.LearningRateSchedule

KERNEL_ATTRIBUTES = KERNEL_SLOTS  # (quantizer attribute, kernel attribute), from lqbench.walk
_SAVED = "_lqbench_saved_quantizers"


def _is_one_bit(quantizer) -> bool:
    return quantizer is not None and getattr(quantizer, "precision", None) == 1


def binary_kernel_slots(model) -> list[tuple[tf.keras.layers.Layer, str, str]]:
    """``(layer, quantizer_attribute, kernel_attribute)`` of every binary kernel of ``model``."""
    slots = []
    for layer in walk_layers(model):
        for q_attr, k_attr in KERNEL_ATTRIBUTES:
            quantizer = _SAVED_OR_CURRENT(layer, q_attr)
            if _is_one_bit(quantizer) and getattr(layer, k_attr, None) is not None:
                slots.append((layer, q_attr, k_attr))
    return slots


def _SAVED_OR_CURRENT(layer, q_attr):
    saved = getattr(layer, _SAVED, None) or {}
    return saved.get(q_attr, getattr(layer, q_attr, None))


def binary_kernels(model) -> list[tf.Variable]:
    """The binary kernel variables of ``model`` (Larq `QuantizedVariable`s)."""
    return [getattr(layer, k_attr) for layer, _, k_attr in binary_kernel_slots(model)]


def latent(var: tf.Variable) -> tf.Variable:
    """The float variable behind a Larq `QuantizedVariable` (the variable itself otherwise)."""
    return getattr(var, "latent_variable", var)


def mark_binary_kernels(model) -> list[tf.Variable]:
    """The binary kernels of ``model`` (kept for compatibility: Larq's ``precision`` marks them)."""
    return binary_kernels(model)


def is_binary_kernel(var: tf.Variable) -> bool:
    """`CaseOptimizer` predicate through Larq's precision mechanism: ``var.precision == 1``.

    A Larq `QuantizedVariable`'s ``precision`` is its quantizer's, so binary kernels are claimed
    while they are quantized by a 1-bit quantizer, including the forward maps methods swap in
    (`RealKernel`, `MirrorTanh`, both ``precision = 1``); the same rule as
    `larq.optimizers.Bop.is_binary_variable`.
    """
    return getattr(var, "precision", None) == 1


def require_binary_kernels(name: str, model) -> list[tf.Variable]:
    kernels = mark_binary_kernels(model)
    if not kernels:
        raise IncompatibleError(
            f"method {name!r} needs binary kernels (Larq layers with a 1-bit kernel quantizer) but the "
            "model has none; build it with lqbench.Binarization(weights=True)"
        )
    return kernels


# --------------------------------------------------------------------------------------
# Kernel quantizer swaps (forward maps of BNEW / ProxQuant / BMD)
# --------------------------------------------------------------------------------------
def swap_kernel_quantizers(model, factory: Callable[[Any], Any]) -> int:
    """Replace the forward quantizer of every binary kernel by ``factory(original)``.

    The original quantizer is kept on the layer and put back by `restore_kernel_quantizers`.
    The swap bypasses Keras attribute tracking so the model's weights and saved structure do
    not change. Returns the number of kernels swapped.
    """
    count = 0
    for layer, q_attr, k_attr in binary_kernel_slots(model):
        saved = dict(getattr(layer, _SAVED, None) or {})
        original = saved.get(q_attr, getattr(layer, q_attr))
        saved[q_attr] = original
        new = factory(original)
        object.__setattr__(layer, _SAVED, saved)
        object.__setattr__(layer, q_attr, new)
        variable = getattr(layer, k_attr)
        if isinstance(variable, lq.quantized_variable.QuantizedVariable):
            variable.quantizer = new
        count += 1
    return count


def restore_kernel_quantizers(model) -> int:
    """Undo `swap_kernel_quantizers`; returns the number of kernels restored."""
    count = 0
    for layer in walk_layers(model):
        saved = getattr(layer, _SAVED, None)
        if not saved:
            continue
        for q_attr, k_attr in KERNEL_ATTRIBUTES:
            if q_attr in saved:
                object.__setattr__(layer, q_attr, saved[q_attr])
                variable = getattr(layer, k_attr, None)
                if isinstance(variable, lq.quantized_variable.QuantizedVariable):
                    variable.quantizer = saved[q_attr]
                count += 1
        object.__setattr__(layer, _SAVED, None)
    return count


def project_sign(model) -> int:
    r"""Set every binary kernel to \\(sign(w)\\) (Larq's sign, \\(sign(0) = +1\\)); returns the count."""
    kernels = binary_kernels(model)
    for var in kernels:
        v = latent(var)
        v.assign(lq.math.sign(v.read_value()))
    return len(kernels)


@lq.utils.register_keras_custom_object
class RealKernel(lq.quantizers._BaseQuantizer):
    r"""Forward the real kernel unchanged while keeping it marked as binary (precision 1).

    \\[ q(w) = w. \\]

    Used by BNEW and ProxQuant, which train the relaxed weights \\(w \in [-1, 1]\\) directly
    (no auxiliary latent weights) and make them binary by regularisation and a final sign.
    """

    precision = 1

    def call(self, inputs):
        return super().call(inputs)


# --------------------------------------------------------------------------------------
# Coupled weight decay and validation
# --------------------------------------------------------------------------------------
class CoupledWeightDecayMixin:
    r"""Coupled L2 weight decay (PyTorch ``weight_decay``): \\(g \leftarrow g + \lambda_{wd} w\\).

    Applied to the gradient of every variable this optimizer updates, before its update rule.
    Put it before a `tf.keras.optimizers.legacy` optimizer in the bases and call
    ``_init_weight_decay`` in ``__init__``.
    """

    def _resource_apply_dense(self, grad, var, apply_state=None):
        return super()._resource_apply_dense(self._decay_dense(grad, var), var, apply_state)

    def _resource_apply_sparse_duplicate_indices(self, grad, var, indices, **kwargs):
        if self._weight_decay_value:
            grad, indices = self._deduplicate_indexed_slices(grad, indices)
            grad = self._decay_sparse(grad, var, indices)
        return super()._resource_apply_sparse_duplicate_indices(grad, var, indices, **kwargs)

    def get_config(self):
        return {**super().get_config(), **self._weight_decay_config()}

    def _init_weight_decay(self, weight_decay: float) -> None:
        check_range("weight_decay", weight_decay, 0.0, math.inf, low_inclusive=True)
        self._weight_decay_value = float(weight_decay)
        self._set_hyper("weight_decay", float(weight_decay))

    def _decay_dense(self, grad, var):
        if self._weight_decay_value == 0.0:
            return grad
        wd = self._get_hyper("weight_decay", var.dtype.base_dtype)
        return grad + wd * latent(var).read_value()

    def _decay_sparse(self, grad, var, indices):
        if self._weight_decay_value == 0.0:
            return grad
        wd = self._get_hyper("weight_decay", var.dtype.base_dtype)
        return grad + wd * tf.gather(latent(var).read_value(), indices)

    def _weight_decay_config(self) -> dict:
        return {"weight_decay": self._serialize_hyperparameter("weight_decay")}


def check_range(name: str, value, low: float, high: float, *, low_inclusive=False, high_inclusive=True,
                where: str = "") -> None:
    """Raise a one-line ValueError unless ``low < value <= high`` (inclusivity configurable)."""
    if isinstance(value, Schedule) or callable(value):
        return
    prefix = f"{where}: " if where else ""
    lo = "[" if low_inclusive else "("
    hi = "]" if high_inclusive else ")"
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigTypeError(f"{prefix}{name}={value!r} must be a number in {lo}{low}, {high}{hi}") from None
    ok_low = v >= low if low_inclusive else v > low
    ok_high = v <= high if high_inclusive else v < high
    if not (ok_low and ok_high) or math.isnan(v):
        raise ConfigValueError(f"{prefix}{name}={value!r} is outside the allowed range {lo}{low}, {high}{hi}")


def check_learning_rate(learning_rate, where: str) -> None:
    check_range("learning_rate", learning_rate, 0.0, math.inf, where=where)


def decayed_hyper(optimizer: Optimizer, name: str, dtype):
    """A hyperparameter's value at the optimizer's current step (schedules are evaluated)."""
    hyper = optimizer._get_hyper(name, dtype)
    if isinstance(hyper, Schedule):
        hyper = tf.cast(hyper(tf.cast(optimizer.iterations, dtype)), dtype)
    return hyper


def serialize_hypers(optimizer: Optimizer, names) -> dict:
    return {name: optimizer._serialize_hyperparameter(name) for name in names}


def deserialize_hypers(config: dict, names, custom_objects=None) -> dict:
    for name in names:
        if name in config and isinstance(config[name], dict):
            config[name] = tf.keras.optimizers.schedules.deserialize(config[name], custom_objects=custom_objects)
    return config


def case(binary_optimizer: Optimizer, default_optimizer: Optimizer, name: str) -> lq.optimizers.CaseOptimizer:
    """``CaseOptimizer`` routing binary kernels to ``binary_optimizer``, the rest to the default."""
    return lq.optimizers.CaseOptimizer(
        (is_binary_kernel, binary_optimizer), default_optimizer=default_optimizer, name=name
    )


def sub_optimizer(optimizer, cls):
    """The first optimizer of type ``cls`` in ``optimizer`` (itself or inside a CaseOptimizer)."""
    if isinstance(optimizer, cls):
        return optimizer
    for inner in getattr(optimizer, "optimizers", []) or []:
        if isinstance(inner, cls):
            return inner
    return None
