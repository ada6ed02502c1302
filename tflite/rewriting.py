r"""Rewrite a Larq model into the form Larq Compute Engine accelerates, computing the same function.

LCE 0.16 turns a layer into its binary convolution `LceBconv2d` only when it is a sign-input,
sign-kernel `QuantConv2D`, and a max-pool into `LceBMaxPool2d` only when its single consumer is
a sign (`/work/shared/specs/lce.md`, `lqbench.tflite.analysis`). Layers written otherwise convert
*silently* to float ops with float weights. `rewrite` rebuilds a functional or sequential model
with every exact rewrite those rules allow:

- **binary dense as a 1x1 binary convolution** (``dense_as_conv``): a `QuantDense` with 1-bit input
  and kernel quantizers acting on ``x`` of shape \\((b, n_1, \dots, n_k, d)\\) becomes
  ``Reshape((1, N, d)) -> QuantConv2D(units, 1) -> Reshape((n_1, ..., n_k, units))`` with
  \\(N = \prod_i n_i\\) (1 for a flat input) and kernel \\(W \in \mathbb{R}^{d \times u}\\) reshaped
  to \\((1, 1, d, u)\\):
  \\[ \big(q_k(W)^\top q_a(x)\big)_j = \sum_{i} q_k(W)_{ij}\, q_a(x)_i
      = \big(q_a(x) \ast q_k(W)_{1 \times 1}\big)_j , \\]
  the same products summed in the same order; binary sums are integers, so the outputs are
  identical.
- **binary 1D convolution as a 2D one** (``conv1d_as_conv2d``): `QuantConv1D` (``valid`` or
  ``same`` padding, any ``pad_values``) on \\((b, w, c)\\) becomes ``Reshape((1, w, c)) ->
  QuantConv2D(filters, (1, k))`` with strides, dilation and padding along the width only, then
  ``Reshape`` back.
- **LCE's sign for a sign with -1 at 0** (``sign_at_zero_as_sign``): a binary layer whose input
  quantizer is `lqbench.estimators.SignAtZero` (``Binarization(sign_at_zero=-1.0)``: paper 000's
  \\(sign(0) = -1\\)) runs as a float convolution in LCE, which only matches the wrapped sign
  (`lqbench.tflite.analysis`); the rewrite gives the layer that wrapped sign (\\(+1\\) at 0, what
  `LceBconv2d` computes). This one rewrite is **not exact everywhere**: the outputs change exactly
  where a pre-sign value is 0,
  \\[ q_{-1}(x) = q_{+1}(x) \iff x \neq 0 , \\]
  i.e. at the sign ties `lqbench.tflite.verify` detects and keeps apart (and which calibrated
  batch-norm statistics remove), so a tie-free sample verifies exactly against the *original*
  model. The step and the report say so.
- **batch norm before max-pool** (``bn_before_pool``): ``MaxPool2D -> BatchNormalization -> sign``
  (possibly through ``Flatten``/``Reshape``) becomes ``BatchNormalization -> MaxPool2D -> sign``:
  the batch norm folds into the convolution before it, and a pool whose only consumer is the
  sign runs as LCE's binary max-pool on bit-packed values (a ``Flatten`` in between keeps it a
  float max-pool, measured). Inference batch norm is \\(y_c = a_c x_c + b_c\\) with
  \\(a_c = \gamma_c / \sqrt{\sigma_c^2 + \epsilon}\\); when every \\(a_c \ge 0\\) it is monotone
  non-decreasing per channel, so \\(\max_i (a_c x_i + b_c) = a_c \max_i x_i + b_c\\) exactly, also in
  floating point (rounding is monotone). A channel with \\(a_c < 0\\) would turn the max into a
  min: that pool is left alone and the reason reported.

Everything else is kept as is (layers are cloned from their configs and weights copied), so the
rewritten model is an independent inference copy: batch norm layers moved before a pool would
compute other *batch* statistics in training. Subclassed models cannot be rebuilt and are
returned unchanged with a note; nested models keep their inner layers.

!!! example
    ```python
    result = lqbench.tflite.rewrite(model)
    for step in result.rewrites:
        print(step)      # fc1 (QuantDense): dense_as_conv -> Reshape -> QuantConv2D 1x1 -> Reshape
    fast_model = result.model
    ```

# References
- Bannink et al., *Larq Compute Engine: Design, Benchmark, and Deploy State-of-the-Art Binarized
  Neural Networks*, MLSys 2021 (https://arxiv.org/abs/2011.09398).
- Larq Compute Engine issues #53, #631, #669, #806 (binary dense layers run as float ops).
"""
from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import larq as lq
import numpy as np
import tensorflow as tf

from lqbench.errors import ConfigValueError
from lqbench.tflite import analysis

#: Kinds of rewrite, in the order they are applied.
KINDS = ("sign_at_zero_as_sign", "dense_as_conv", "conv1d_as_conv2d", "bn_before_pool")
#: Layer types that become `LceBconv2d` with a sign input (QuantDense, QuantConv1D after their rewrites).
_BCONV_TYPES = (lq.layers.QuantConv2D, lq.layers.QuantDense, lq.layers.QuantConv1D)
#: What ``sign_at_zero_as_sign`` changes (in its step and in the conversion report).
SIGN_AT_ZERO_CAVEAT = (
    "outputs differ from the original only where a pre-sign value is exactly 0 (a sign tie: -1 in Keras, "
    "+1 in LCE; the verification detects and keeps such samples apart)"
)


@dataclasses.dataclass
class RewriteStep:
    """One rewrite applied (or declined, with ``reason``) to one layer of the original model."""

    layer: str
    type: str
    kind: str
    detail: str = ""
    applied: bool = True
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        if self.applied:
            return f"{self.layer} ({self.type}): {self.kind}: {self.detail}"
        return f"{self.layer} ({self.type}): {self.kind} not applied: {self.reason}"


@dataclasses.dataclass
class RewriteResult:
    """The rewritten model, the rewrites applied and the ones declined (with reasons)."""

    model: tf.keras.Model
    rewrites: list[RewriteStep]
    declined: list[RewriteStep]
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.rewrites)


# --------------------------------------------------------------------------- config surgery


def _is_ref(item, name: str) -> bool:
    """Whether ``item`` is a serialized reference ``[name, node_index, tensor_index(, kwargs)]``."""
    return (
        isinstance(item, list)
        and len(item) in (3, 4)
        and item[0] == name
        and isinstance(item[1], int)
        and isinstance(item[2], int)
    )


def _replace_refs(structure, old: str, new: str):
    """Point every reference to layer ``old`` (node 0) at layer ``new`` (node 0), recursively."""
    if _is_ref(structure, old):
        return [new, *structure[1:]]
    if isinstance(structure, list):
        return [_replace_refs(item, old, new) for item in structure]
    if isinstance(structure, dict):
        return {key: _replace_refs(value, old, new) for key, value in structure.items()}
    return structure


def _rewire(config: dict, old: str, new: str, skip: set[str]) -> None:
    """Consumers of ``old`` (every layer but ``skip``) and the model outputs now read ``new``."""
    for entry in config["layers"]:
        if entry["name"] not in skip:
            entry["inbound_nodes"] = _replace_refs(entry["inbound_nodes"], old, new)
    config["output_layers"] = _replace_refs(config["output_layers"], old, new)


def _entry(config: dict, name: str) -> dict:
    return next(e for e in config["layers"] if e["name"] == name)


def _consumer_names(config: dict, name: str) -> list[str]:
    def refers(structure) -> bool:
        if _is_ref(structure, name):
            return True
        if isinstance(structure, list):
            return any(refers(item) for item in structure)
        if isinstance(structure, dict):
            return any(refers(value) for value in structure.values())
        return False

    return [e["name"] for e in config["layers"] if refers(e["inbound_nodes"])]


def _unique(name: str, taken: set[str]) -> str:
    candidate, i = name, 1
    while candidate in taken:
        candidate, i = f"{name}_{i}", i + 1
    taken.add(candidate)
    return candidate


def _reshape_entry(name: str, target_shape, source: list) -> dict:
    return {
        "class_name": "Reshape",
        "name": name,
        "config": {"name": name, "trainable": True, "dtype": "float32", "target_shape": list(target_shape)},
        "inbound_nodes": [[source]],
    }


# --------------------------------------------------------------------------- the rewrites


def _binary(layer) -> bool:
    """1-bit input and kernel quantizers, input a sign LCE can match (not ternary); the input
    quantizer may be a sign layer before the layer (``Binarization(inputs="activations")``)."""
    input_q = analysis.input_quantizer_of(layer)
    kernel_q = getattr(layer, "kernel_quantizer", None)
    return (
        analysis._bits(input_q) == 1
        and analysis._bits(kernel_q) == 1
        and not analysis._is_ternary(input_q)
    )


def _binary_kernel(layer) -> bool:
    return type(layer) in _BCONV_TYPES and analysis._bits(getattr(layer, "kernel_quantizer", None)) == 1


def _feeds_binary_kernel(layer, depth: int = 4) -> bool:
    """Whether a binary-kernel conv or dense layer reads ``layer``'s output (through max-pool/flatten/reshape)."""
    for consumer in analysis._consumers(layer):
        if _binary_kernel(consumer):
            return True
        if depth > 0 and isinstance(consumer, analysis._VALUE_PRESERVING) and _feeds_binary_kernel(consumer, depth - 1):
            return True
    return False


def _rewrite_sign_at_zero(config: dict, layer) -> RewriteStep | None:
    """Give a binary layer with a `SignAtZero` input quantizer its wrapped (LCE) sign, in ``config``;
    or replace a `SignAtZero` quantizer *layer* (``Binarization(inputs="activations")``) that feeds a
    binary-kernel layer by its wrapped sign."""
    entry = _entry(config, layer.name)
    if analysis._is_sign_at_zero(layer) and _feeds_binary_kernel(layer):
        quantizer = layer
        inner = quantizer.quantizer
        serialized = lq.quantizers.serialize(inner)
        entry["class_name"] = serialized["class_name"]
        entry["config"] = {**serialized["config"], "name": layer.name}
        entry.pop("module", None)
        entry.pop("registered_name", None)
    else:
        quantizer = getattr(layer, "input_quantizer", None)
        if not (_binary_kernel(layer) and analysis._is_sign_at_zero(quantizer)):
            return None
        inner = quantizer.quantizer
        entry["config"]["input_quantizer"] = lq.quantizers.serialize(inner)
    return RewriteStep(
        layer.name, type(layer).__name__, "sign_at_zero_as_sign",
        f"input quantizer {analysis._name(quantizer)} ({quantizer.value:+g} at 0) -> {analysis._name(inner)} "
        f"(+1 at 0, LCE's sign): a binary op instead of a float convolution; {SIGN_AT_ZERO_CAVEAT}",
    )


def _single_call(entry: dict) -> bool:
    return len(entry["inbound_nodes"]) == 1 and len(entry["inbound_nodes"][0]) == 1


def _known(shape) -> bool:
    return shape is not None and all(d is not None for d in shape[1:])


def _as_conv2d(config: dict, layer, kind: str, taken: set[str]) -> RewriteStep:
    """Replace ``layer`` (QuantDense or QuantConv1D) by Reshape -> QuantConv2D -> Reshape in ``config``."""
    entry = _entry(config, layer.name)
    in_shape, out_shape = tuple(layer.input_shape), tuple(layer.output_shape)
    layer_config = copy.deepcopy(entry["config"])
    if kind == "dense_as_conv":
        positions = math.prod(in_shape[1:-1]) if len(in_shape) > 2 else 1
        to_shape = (1, positions, in_shape[-1])
        conv = {"filters": layer_config.pop("units"), "kernel_size": [1, 1], "strides": [1, 1], "padding": "valid"}
        detail = f"Reshape{to_shape} -> QuantConv2D {conv['filters']} 1x1 -> Reshape{tuple(out_shape[1:])}"
    else:
        to_shape = (1, *in_shape[1:])
        (k,), (s,), (d,) = layer_config.pop("kernel_size"), layer_config.pop("strides"), layer_config.pop("dilation_rate")
        conv = {"filters": layer_config.pop("filters"), "kernel_size": [1, k], "strides": [1, s],
                "dilation_rate": [1, d], "padding": layer_config.pop("padding")}
        detail = f"Reshape{to_shape} -> QuantConv2D {conv['filters']} 1x{k} -> Reshape{tuple(out_shape[1:])}"
    conv_config = {**layer_config, **conv, "data_format": "channels_last"}
    source = entry["inbound_nodes"][0][0]
    to_name = _unique(f"{layer.name}_to_2d", taken)
    from_name = _unique(f"{layer.name}_from_2d", taken)
    conv_entry = {"class_name": "QuantConv2D", "name": layer.name, "config": conv_config,
                  "inbound_nodes": [[[to_name, 0, 0, {}]]]}
    index = config["layers"].index(entry)
    config["layers"][index : index + 1] = [
        _reshape_entry(to_name, to_shape, source),
        conv_entry,
        _reshape_entry(from_name, out_shape[1:], [layer.name, 0, 0, {}]),
    ]
    _rewire(config, layer.name, from_name, skip={from_name})
    return RewriteStep(layer.name, type(layer).__name__, kind, detail + ": LceBconv2d instead of float ops")


def _dense_problem(layer, entry) -> str | None:
    if not _single_call(entry):
        return "the layer is called more than once"
    if not _known(layer.input_shape):
        return f"input shape {layer.input_shape} has unknown dimensions"
    return None


def _conv1d_problem(layer, entry) -> str | None:
    problem = _dense_problem(layer, entry)
    if problem:
        return problem
    if layer.padding == "causal":
        return "causal padding has no QuantConv2D equivalent"
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return "channels_first data format"
    return None


def _bn_scale(bn) -> np.ndarray:
    variance = bn.moving_variance.numpy()
    gamma = bn.gamma.numpy() if bn.gamma is not None else np.ones_like(variance)
    return gamma / np.sqrt(variance + bn.epsilon)


def _pool_problem(pool, bn, layers, target: str) -> str | None:
    if target != "arm":
        return f"target {target!r} has no LceBMaxPool2d"
    if getattr(pool, "data_format", "channels_last") != "channels_last":
        return "channels_first max-pool"
    axis = bn.axis if isinstance(bn.axis, (list, tuple)) else [bn.axis]
    rank = len(bn.input_shape)
    if [a % rank for a in axis] != [rank - 1]:
        return f"batch norm over axis {bn.axis}, not the channel axis"
    scale = _bn_scale(bn)
    negative = np.flatnonzero(scale < 0)
    if negative.size:
        return (
            f"{negative.size} channel(s) of {bn.name} have a negative scale gamma/sqrt(var + eps) "
            f"(e.g. channel {int(negative[0])}): max-pool and batch norm do not commute there"
        )
    return None


def _signed_by(config: dict, layers: dict, name: str, depth: int = 4, signed: frozenset = frozenset()) -> bool:
    """Whether layer ``name``'s only consumer signs it (LCE's sign, or a layer in ``signed``: given
    LCE's sign by ``sign_at_zero_as_sign``), through Flatten/Reshape layers."""
    if any(_is_ref(o, name) for o in config["output_layers"]):
        return False
    consumers = _consumer_names(config, name)
    if len(consumers) != 1:
        return False
    if analysis._takes_sign(layers.get(consumers[0])) or consumers[0] in signed:
        return True
    entry = _entry(config, consumers[0])
    return (depth > 0 and entry["class_name"] in ("Flatten", "Reshape")
            and _signed_by(config, layers, consumers[0], depth - 1, signed))


def _rewrite_pools(config: dict, layers: dict, target: str,
                   signed: frozenset = frozenset()) -> tuple[list[RewriteStep], list[RewriteStep]]:
    applied, declined = [], []
    for pool in [l for l in layers.values() if isinstance(l, tf.keras.layers.MaxPooling2D)]:
        pool_entry = _entry(config, pool.name)
        consumers = _consumer_names(config, pool.name)
        if len(consumers) != 1 or not _single_call(pool_entry):
            continue
        bn = layers.get(consumers[0])
        if not isinstance(bn, tf.keras.layers.BatchNormalization):
            continue
        bn_entry = _entry(config, bn.name)
        if not _single_call(bn_entry) or not _signed_by(config, layers, bn.name, signed=signed):
            continue
        problem = _pool_problem(pool, bn, layers, target)
        if problem:
            declined.append(RewriteStep(pool.name, "MaxPooling2D", "bn_before_pool", applied=False, reason=problem))
            continue
        source = pool_entry["inbound_nodes"][0][0]
        bn_entry["inbound_nodes"] = [[source]]
        pool_entry["inbound_nodes"] = [[[bn.name, 0, 0, {}]]]
        _rewire(config, bn.name, pool.name, skip={pool.name})
        config["layers"].remove(bn_entry)
        config["layers"].insert(config["layers"].index(pool_entry), bn_entry)
        applied.append(
            RewriteStep(pool.name, "MaxPooling2D", "bn_before_pool",
                        f"{bn.name} moved before the pool (every channel scale >= 0, exact): it folds into "
                        "the op before it, and a pool feeding a binary layer directly becomes LceBMaxPool2d")
        )
    return applied, declined


# --------------------------------------------------------------------------- weights


def _copy_weights(source: dict, model: tf.keras.Model) -> None:
    """Weights of the original layers into the rebuilt ones, by variable name, reshaped if needed."""
    for layer in model.layers:
        original = source.get(layer.name)
        if original is None or not layer.weights:
            continue
        by_name: dict[str, list] = {}
        for weight in original.weights:
            by_name.setdefault(weight.name.split("/")[-1], []).append(weight)
        for weight in layer.weights:
            candidates = by_name.get(weight.name.split("/")[-1], [])
            if not candidates:
                raise ValueError(f"rewrite: no weight {weight.name} in the original layer {original.name}")
            value = candidates.pop(0).numpy()
            weight.assign(value.reshape(tuple(weight.shape)))


# --------------------------------------------------------------------------- entry point


def _functional(model: tf.keras.Model) -> tf.keras.Model | None:
    if isinstance(model, tf.keras.Sequential):
        if not model.built or not getattr(model, "inputs", None):
            return None
        return tf.keras.Model(model.inputs, model.outputs, name=model.name)
    if getattr(model, "_is_graph_network", False):
        return model
    return None


def rewrite(model: tf.keras.Model, target: str = "arm", kinds=KINDS) -> RewriteResult:
    """``model`` rebuilt with every exact rewrite LCE's rules allow (see the module doc).

    # Arguments
        model: a functional or sequential tf-keras model with Larq layers.
        target: the LCE target (``"arm"`` or ``"xcore"``); ``xcore`` has no binary max-pool.
        kinds: which rewrites to apply, among `KINDS`.

    # Returns
        A `RewriteResult`: the new model (``model`` itself when nothing applies), every rewrite
        applied and every candidate declined, with its reason.
    """
    if target not in analysis.TARGETS:
        raise ConfigValueError(f"unknown target {target!r}; allowed: {', '.join(analysis.TARGETS)}")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ConfigValueError(f"unknown rewrite(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(KINDS)}")
    graph = _functional(model)
    if graph is None:
        return RewriteResult(model, [], [], [f"{type(model).__name__} is not a functional or built sequential "
                                             "model: not rewritten"])
    config = copy.deepcopy(graph.get_config())
    layers = {layer.name: layer for layer in graph.layers}
    taken = set(layers)
    applied, declined, notes = [], [], []
    if any(isinstance(l, tf.keras.Model) for l in layers.values()):
        notes.append("nested models are kept as they are (their layers are not rewritten)")
    if "sign_at_zero_as_sign" in kinds:
        for layer in list(layers.values()):
            step = _rewrite_sign_at_zero(config, layer)
            if step is not None:
                applied.append(step)
        if applied:
            notes.append(f"sign_at_zero_as_sign ({len(applied)} layer(s)): {SIGN_AT_ZERO_CAVEAT}")
    signed = frozenset(step.layer for step in applied)
    wanted = {"dense_as_conv": lq.layers.QuantDense, "conv1d_as_conv2d": lq.layers.QuantConv1D}
    for layer in list(layers.values()):
        kind = next((k for k, cls in wanted.items() if k in kinds and type(layer) is cls), None)
        if kind is None or not _binary(layer):
            continue
        entry = _entry(config, layer.name)
        problem = (_dense_problem if kind == "dense_as_conv" else _conv1d_problem)(layer, entry)
        if problem:
            declined.append(RewriteStep(layer.name, type(layer).__name__, kind, applied=False, reason=problem))
            continue
        applied.append(_as_conv2d(config, layer, kind, taken))
    if "bn_before_pool" in kinds:
        done, refused = _rewrite_pools(config, layers, target, signed)
        applied += done
        declined += refused
    if not applied:
        return RewriteResult(model, [], declined, notes)
    rebuilt = tf.keras.Model.from_config(config)
    _copy_weights(layers, rebuilt)
    return RewriteResult(rebuilt, applied, declined, notes)
