"""One layer walker and one list of quantizer slots, shared by every module that inspects a model.

`walk_layers(model)` yields every layer reachable from a model once, recursively, including the
``.model`` an `lqbench.algorithms` wrapper trains, and skipping layers flagged
``_lqbench_skip`` (the teacher of a `lqbench.distillation.Distillation`). `QUANTIZER_SLOTS` lists the Larq
quantizer attributes and the variable each one quantizes (``None`` for the input quantizer);
`quantizers(model, cls)` collects quantizer instances over both.
"""
from __future__ import annotations

from typing import Iterator

__all__ = ["KERNEL_SLOTS", "QUANTIZER_SLOTS", "quantizers", "walk_layers"]

#: ``(quantizer attribute, quantized variable attribute)`` of Larq's quantized layers.
QUANTIZER_SLOTS = (
    ("input_quantizer", None),
    ("kernel_quantizer", "kernel"),
    ("depthwise_quantizer", "depthwise_kernel"),
    ("pointwise_quantizer", "pointwise_kernel"),
)
#: The slots that quantize a weight variable.
KERNEL_SLOTS = tuple(slot for slot in QUANTIZER_SLOTS if slot[1] is not None)


def walk_layers(model) -> Iterator:
    """Every layer reachable from ``model`` (recursively, each once), wrappers' ``.model`` too."""
    seen: set[int] = set()
    stack = [model]
    while stack:
        layer = stack.pop()
        if id(layer) in seen or getattr(layer, "_lqbench_skip", False):
            continue
        seen.add(id(layer))
        if layer is not model:
            yield layer
        children = list(getattr(layer, "layers", []) or [])
        inner = getattr(layer, "model", None)
        if inner is not None and hasattr(inner, "layers"):
            children.append(inner)
        stack.extend(reversed(children))


def quantizers(model, cls: type) -> list:
    """Every distinct quantizer of type ``cls`` used by ``model``: in the layers' quantizer slots,
    as an ``Activation`` layer's function, or as a layer of its own (the signs of
    ``Binarization(inputs="activations")``); wrapped ones (``SignAtZero.quantizer``) included."""
    found: list = []
    for layer in walk_layers(model):
        candidates = [getattr(layer, attribute, None) for attribute, _ in QUANTIZER_SLOTS]
        candidates += [getattr(layer, "activation", None), layer]
        while candidates:
            quantizer = candidates.pop(0)
            if quantizer is None:
                continue
            if isinstance(quantizer, cls) and all(quantizer is not q for q in found):
                found.append(quantizer)
            inner = getattr(quantizer, "quantizer", None)  # a wrapper such as SignAtZero
            if inner is not None and inner is not quantizer:
                candidates.insert(0, inner)
    return found
