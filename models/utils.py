r"""Inspecting zoo models: weight layers and roles, memory footprint, summary, post-training binarization."""
from __future__ import annotations

import larq as lq
import numpy as np
import tensorflow as tf

from lqbench.binarization import Binarization

from . import _blocks
from .registry import build

KINDS = ("conv", "depthwise", "dense")


def layer_kind(layer: tf.keras.layers.Layer) -> str | None:
    """``"conv"``, ``"depthwise"`` or ``"dense"`` for a weight layer, ``None`` otherwise."""
    if isinstance(layer, tf.keras.layers.DepthwiseConv2D):
        return "depthwise"
    if isinstance(layer, (tf.keras.layers.Conv2D, tf.keras.layers.Conv1D)):
        return "conv"
    if isinstance(layer, tf.keras.layers.Dense):
        return "dense"
    return None


def weight_layers(model: tf.keras.Model) -> list[tf.keras.layers.Layer]:
    """The weight layers (Conv, DepthwiseConv, Dense) of a flat model, in data-flow order."""
    return [layer for layer in model.layers if layer_kind(layer) is not None]


def weight_layer_roles(model: tf.keras.Model) -> list[tuple[tf.keras.layers.Layer, str]]:
    """Each weight layer with its role: ``"first"``, ``"hidden"``, ``"last"`` or ``"float"``.

    ``"float"`` marks hidden layers the architecture keeps real-valued in every binarization
    (names ending in ``_fp``, e.g. the Bi-Real down-sampling convolutions).
    """
    layers = weight_layers(model)
    roles = []
    for i, layer in enumerate(layers):
        if i == 0:
            role = "first"
        elif i == len(layers) - 1:
            role = "last"
        elif _blocks.is_float_by_design(layer):
            role = "float"
        else:
            role = "hidden"
        roles.append((layer, role))
    return roles


_VALUE_PRESERVING = (
    tf.keras.layers.MaxPool1D,
    tf.keras.layers.MaxPool2D,
    tf.keras.layers.Flatten,
    tf.keras.layers.Reshape,
    tf.keras.layers.Permute,
    tf.keras.layers.GlobalMaxPool2D,
)


def _is_one_bit(quantizer) -> bool:
    return quantizer is not None and getattr(quantizer, "precision", None) == 1


def _source_layer(layer: tf.keras.layers.Layer):
    nodes = getattr(layer, "inbound_nodes", None) or layer._inbound_nodes
    if not nodes:
        return None
    inbound = nodes[0].inbound_layers
    inbound = inbound if isinstance(inbound, (list, tuple)) else [inbound]
    return inbound[0] if len(inbound) == 1 else None


def has_binary_input(layer: tf.keras.layers.Layer) -> bool:
    """Whether a weight layer reads \\(\\pm 1\\) values in the forward pass.

    True when the layer has a 1-bit ``input_quantizer`` (``Binarization(inputs="all")``), or
    when its input comes from a 1-bit quantizer *layer* (``Binarization(inputs="activations")``:
    the sign in place of an activation function) through value-preserving layers only
    (max-pooling, flattening, reshaping). Dropout in training and average pooling make values
    real.
    """
    if _is_one_bit(getattr(layer, "input_quantizer", None)):
        return True
    source = _source_layer(layer)
    while source is not None and isinstance(source, _VALUE_PRESERVING):
        source = _source_layer(source)
    return source is not None and layer_kind(source) is None and _is_one_bit(source)


def binary_input_layers(model: tf.keras.Model) -> list[tf.keras.layers.Layer]:
    """The weight layers of ``model`` whose inputs are binary (`has_binary_input`)."""
    return [layer for layer in weight_layers(model) if has_binary_input(layer)]


def kernel_of(layer: tf.keras.layers.Layer) -> tf.Variable:
    return layer.depthwise_kernel if layer_kind(layer) == "depthwise" else layer.kernel


def kernel_quantizer_of(layer: tf.keras.layers.Layer):
    attribute = "depthwise_quantizer" if layer_kind(layer) == "depthwise" else "kernel_quantizer"
    return getattr(layer, attribute, None)


def has_binary_kernel(layer: tf.keras.layers.Layer) -> bool:
    """Whether the layer's kernel is quantized to 1 bit (a quantizer of precision 1)."""
    quantizer = kernel_quantizer_of(layer)
    return quantizer is not None and getattr(quantizer, "precision", None) == 1


def memory_footprint_bits(
    model: tf.keras.Model,
    kinds=KINDS,
    include_bias: bool = False,
    include_other: bool = False,
) -> int:
    r"""Memory needed to store a model's parameters, in bits (paper 003 §3.3 convention).

    \\[ \text{bits} = \sum_{\text{weight layers}} |W| \cdot
        \begin{cases} 1 & W \text{ binary} \\\ 32 & \text{otherwise} \end{cases} \\]

    By default only the *kernels* of the weight layers of ``kinds`` are counted, without
    biases, the way paper 003 sizes its networks ("total parameters without bias": the base
    LeNet's two convolutions hold 2,850 weights, 2,850 bits binary or 91,200 bits float).
    A kernel is binary when its quantizer has precision 1 (Larq's convention).

    # Arguments
        kinds: which weight layers to count, among ``"conv"``, ``"depthwise"``, ``"dense"``
            (``("conv",)`` gives 003's "convolutional layers memory size").
        include_bias: add the biases of those layers at 32 bits.
        include_other: add every other real parameter at 32 bits: batch normalisation as 2
            values per channel (scale and offset after folding the moving statistics, as
            deployed), layer norm, PReLU/RPReLU, learnt shifts and scales, RSign thresholds.
            Non-trainable estimator schedule variables (EDE, Gumbel) are training-only and
            never counted.

    !!! example
        ```python
        model = lqbench.models.build("lenet", (32, 32, 3), 10,
                                     lqbench.Binarization(keep_first_last=False), binarize_dense=False)
        assert memory_footprint_bits(model, kinds=("conv",)) == 2850
        ```
    """
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"memory_footprint_bits: unknown kind(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(KINDS)}")
    bits = 0
    for layer in model.layers:
        kind = layer_kind(layer)
        if kind is not None:
            kernel = kernel_of(layer)
            if kind in kinds:
                bits += int(np.prod(kernel.shape)) * (1 if has_binary_kernel(layer) else 32)
                if include_bias and getattr(layer, "bias", None) is not None:
                    bits += int(np.prod(layer.bias.shape)) * 32
            if include_other:
                own = {id(kernel), id(getattr(layer, "bias", None))}
                bits += 32 * sum(int(np.prod(w.shape)) for w in layer.trainable_weights if id(w) not in own)
        elif include_other:
            if isinstance(layer, tf.keras.layers.BatchNormalization):
                bits += 32 * 2 * int(np.prod(layer.moving_mean.shape))
            else:
                bits += 32 * sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    return bits


def summary(model: tf.keras.Model, print_fn=None, include_macs: bool = True) -> None:
    """`larq.models.summary` followed by lqbench's memory footprint and architecture notes.

    The notes name the weight layers kept real-valued (first, last, float-by-design) and the
    residual additions, whose inputs are real-valued by design.
    """
    print_fn = print_fn or print
    lq.models.summary(model, print_fn=print_fn, include_macs=include_macs)
    kernels = memory_footprint_bits(model)
    everything = memory_footprint_bits(model, include_bias=True, include_other=True)
    print_fn(
        f"lqbench memory footprint (paper 003 convention, weight kernels without biases, binary 1 bit, "
        f"real 32 bits): {kernels:,} bits = {kernels / 8 / 1024:.2f} KiB; "
        f"with biases, normalisation and other real parameters: {everything:,} bits = {everything / 8 / 1024:.2f} KiB"
    )
    roles = weight_layer_roles(model)
    binary = sum(1 for layer, _ in roles if has_binary_kernel(layer))
    real = [f"{layer.name} ({role})" for layer, role in roles if not has_binary_kernel(layer)]
    print_fn(f"weight layers: {len(roles)}, binary kernels: {binary}, real kernels: {', '.join(real) or 'none'}")
    binary_in = {id(layer) for layer in binary_input_layers(model)}
    real_in = [layer.name for layer, _ in roles if id(layer) not in binary_in]
    print_fn(
        f"binary inputs: {len(binary_in)} of {len(roles)} weight layers; real inputs: {', '.join(real_in) or 'none'}"
    )
    adds = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Add)]
    if adds:
        print_fn(
            f"residual additions: {len(adds)}; block inputs (normalisation output + skip) are real-valued by "
            "design, only the weight layers' inputs are binarized"
        )


def binarize_post_training(
    float_model: tf.keras.Model,
    name: str,
    input_shape,
    num_classes: int,
    binarization: Binarization,
    skip_connections: bool = True,
    **arch_kwargs,
) -> tf.keras.Model:
    r"""Paper 003's naive post-training binarization: the binary twin of a trained float model.

    Builds ``name`` with ``binarization`` (same architecture arguments as ``float_model``) and
    copies every trained variable into it; the twin's quantizers then binarize on the fly,
    \\(w_b = sign(w)\\) and, with binary activations, \\(a_b = sign(a)\\). Zoo models use the
    same Larq layers in every binarization, so variables pair one to one, layer by layer in
    data-flow order. Variables only the twin has (quantizer state such as RSign thresholds,
    initialised to 0: a plain sign) keep their initial values. Latent weights are copied
    unclipped (the sign does not depend on clipping).

    !!! example
        ```python
        fp = lqbench.models.build("lenet", (32, 32, 3), 10, lqbench.Binarization.full_precision())
        fp.fit(...)
        binary = binarize_post_training(fp, "lenet", (32, 32, 3), 10, lqbench.Binarization())
        ```
    """
    twin = build(name, input_shape, num_classes, binarization=binarization, skip_connections=skip_connections,
                 **arch_kwargs)
    source_layers = [layer for layer in float_model.layers if layer.weights]
    target_layers = [layer for layer in twin.layers if layer.weights]
    if len(source_layers) != len(target_layers):
        raise ValueError(
            f"binarize_post_training: float model has {len(source_layers)} layers with weights, the {name!r} twin "
            f"has {len(target_layers)}; build the float model with the same name and architecture arguments"
        )
    for source, target in zip(source_layers, target_layers):
        if type(source) is not type(target):
            raise ValueError(
                f"binarize_post_training: layer {source.name!r} ({type(source).__name__}) does not match "
                f"{target.name!r} ({type(target).__name__}) in the {name!r} twin"
            )
        source_weights = {_short_name(w, source): w for w in source.weights}
        for weight in target.weights:
            key = _short_name(weight, target)
            value = source_weights.pop(key, None)
            if value is None:
                continue  # quantizer state the float model does not have
            if tuple(value.shape) != tuple(weight.shape):
                raise ValueError(
                    f"binarize_post_training: {source.name}/{key} has shape {tuple(value.shape)}, the twin's "
                    f"{tuple(weight.shape)}"
                )
            weight.assign(value)
        if source_weights:
            raise ValueError(
                f"binarize_post_training: variables {', '.join(sorted(source_weights))} of layer {source.name!r} "
                f"have no counterpart in the {name!r} twin"
            )
    return twin


def _short_name(weight: tf.Variable, layer: tf.keras.layers.Layer) -> str:
    """A variable's name inside its layer (``kernel``, ``gamma``, ``r_sign/threshold``)."""
    name = weight.name.split(":")[0]
    prefix = layer.name + "/"
    return name[len(prefix):] if name.startswith(prefix) else name
