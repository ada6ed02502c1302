"""The zoo's registry: model names, their builders and the arguments each accepts.

A builder is a function ``builder(input_shape, num_classes, binarization, skip_connections,
*, arch_kwarg=default, ...)`` returning a flat functional `tf.keras.Model`; its keyword-only
parameters, typed by their annotations, are the architecture arguments `build` accepts for
that name (``hparams(name)``, checked by `lqbench.ExperimentSpec` when a spec loads).
``min_input_size`` is the smallest square image the architecture's downsampling allows; a run
on smaller images (the 8x8 ``digits``) resizes them to it.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Callable

import tensorflow as tf

from lqbench import hparams as _hp
from lqbench.binarization import Binarization
from lqbench.errors import ConfigTypeError, ConfigValueError


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., tf.keras.Model]
    has_skip_connections: bool
    flatten_input: bool
    description: str
    min_input_size: int = 1

    @property
    def hparams(self) -> tuple[_hp.Hparam, ...]:
        """Typed architecture arguments (from the builder's keyword-only parameters)."""
        return _hp.from_signature(self.builder)

    @property
    def arch_kwargs(self) -> dict[str, object]:
        """Architecture arguments and their defaults."""
        return {
            p.name: p.default
            for p in inspect.signature(self.builder).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }


_REGISTRY: dict[str, ModelEntry] = {}


def register(name: str, *, skip_connections: bool = False, flatten_input: bool = False, min_input_size: int = 1):
    """Decorator adding a builder to the zoo under ``name``.

    # Arguments
        skip_connections: the architecture has residual connections that
            ``skip_connections=False`` removes.
        flatten_input: the model accepts inputs of any rank (an MLP flattening its input).
        min_input_size: smallest image height/width the architecture accepts.
    """

    def decorator(builder):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        doc = inspect.getdoc(builder) or ""
        _REGISTRY[name] = ModelEntry(name, builder, skip_connections, flatten_input, doc.split("\n")[0],
                                     int(min_input_size))
        return builder

    return decorator


def available() -> list[str]:
    """Names of all zoo models, in registration order."""
    return list(_REGISTRY)


def entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise ConfigValueError(f"unknown model {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def hparams(name: str) -> tuple[_hp.Hparam, ...]:
    """Typed architecture arguments of model ``name``."""
    return entry(name).hparams


def check_args(name: str, arch_kwargs: dict) -> dict:
    """``arch_kwargs`` checked against model ``name``'s typed arguments (names, types); one line on error."""
    _hp.validate(entry(name).hparams, arch_kwargs, f"model {name!r}", noun="argument")
    return arch_kwargs


def _check_input_shape(name: str, input_shape, flatten_input: bool) -> tuple[int, ...]:
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise ValueError(f"input_shape must be a tuple of positive integers, got {input_shape!r}") from None
    if not shape or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape):
        raise ValueError(f"input_shape must be a tuple of positive integers, got {input_shape!r}")
    if not flatten_input and len(shape) != 3:
        raise ValueError(f"model {name!r} needs an image input_shape (height, width, channels), got {shape!r}")
    return shape


def build(
    name: str,
    input_shape,
    num_classes: int,
    binarization: Binarization | None = None,
    skip_connections: bool = True,
    **arch_kwargs,
) -> tf.keras.Model:
    """Build zoo model ``name`` as a flat functional Keras model of Larq layers (logits output).

    # Arguments
        name: one of `available()`.
        input_shape: input shape without the batch axis, e.g. ``(32, 32, 3)``.
        num_classes: number of classes (size of the logits).
        binarization: what to binarize; ``None`` means ``lqbench.Binarization()`` (binary
            weights and activations, first and last layers real-valued).
        skip_connections: ``False`` removes the residual connections (blocks compute
            \\(f(x)\\) instead of \\(x + f(x)\\), paper 000 Table 8); only for models that have them.
        **arch_kwargs: architecture arguments of the model (see its builder's docstring).

    !!! example
        ```python
        import lqbench
        from lqbench import models
        model = models.build("vgg_small", (32, 32, 3), 10, lqbench.Binarization())
        model.compile(loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        ```
    """
    model_entry = entry(name)
    if binarization is None:
        binarization = Binarization()
    if not isinstance(binarization, Binarization):
        raise ConfigTypeError(f"binarization must be an lqbench.Binarization or None, got {type(binarization).__name__}")
    check_args(name, arch_kwargs)
    if not isinstance(skip_connections, bool):
        raise ValueError(f"skip_connections must be True or False, got {skip_connections!r}")
    if not skip_connections and not model_entry.has_skip_connections:
        with_skips = [n for n, e in _REGISTRY.items() if e.has_skip_connections]
        raise ValueError(
            f"model {name!r} has no skip connections to remove; skip_connections=False is allowed for: "
            f"{', '.join(with_skips)}"
        )
    if not (isinstance(num_classes, int) and not isinstance(num_classes, bool) and num_classes > 0):
        raise ValueError(f"num_classes must be an integer > 0, got {num_classes!r}")
    shape = _check_input_shape(name, input_shape, model_entry.flatten_input)
    # Building a functional model calls every layer once on symbolic inputs; Keras passes the
    # calls of non-Keras layers (all Larq layers) through AutoGraph, which costs ~0.1 s per layer
    # here and is useless: no zoo layer has tensor-dependent Python control flow. Training
    # functions are traced later under their own AutoGraph setting, unaffected by this.
    builder = tf.autograph.experimental.do_not_convert(model_entry.builder)
    return builder(shape, num_classes, binarization, skip_connections, **arch_kwargs)
