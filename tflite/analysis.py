r"""What Larq Compute Engine will make of a Keras model: static analysis and flatbuffer op counts.

LCE turns a Keras layer into its binary convolution `LceBconv2d` only when every one of these
holds (measured on LCE 0.16, `/work/shared/specs/lce.md`):

- the layer is a `QuantConv2D` (no binary dense, depthwise, 1D, 3D, separable, transposed or
  locally connected kernel exists);
- its input quantizer is a *sign* in LCE's graph pattern, \\(sign(x) \in \{-1, +1\}\\):
  Larq's `SteSign`, `ApproxSign`, `SwishSign` and every lqbench sign estimator; or such a sign
  used as a layer right before it (``Binarization(inputs="activations")``, paper 000's layout),
  through reshapes only when they cancel out (`sign_layer_before`);
- its kernel quantizer gives a constant filter \\(\pm \alpha_c\\) per output channel
  \\(c\\) (sign-family and `MagnitudeAwareSign` kernels);
- ``padding="same"`` pads with +1 (``pad_values=1.0``), except on ``target="arm"`` where zero
  padding also converts (but cannot write bit-packed output);
- a grouped convolution has a multiple of 32 input channels per group.

A layer with binary inputs but float weights (a kept-float last layer) is a float op by design
(status ``float_kernel``). Everything else still converts, *silently*, to float ops that compute the same function with
float weights: the layer "falls back". A fallback is **unavoidable** (``LayerFinding.unavoidable``)
when LCE has no binary op for the layer at all: binary depthwise, 3D, separable, transposed and
locally connected layers, binary weights with non-binary inputs (or the reverse), grouped
convolutions with a number of input channels per group that is not a multiple of 32. It is
**avoidable** when the same layer written otherwise converts: a non-sign input quantizer, zero
padding on ``xcore``, ``channels_first``, a binary `QuantDense` or `QuantConv1D` left as such
(``rewrite=True`` makes them binary convolutions). The one silent **wrong** conversion is a ternary input
quantizer (`SteTern`): LCE's sign pattern matches it and replaces \\(\{-1, 0, +1\}\\) by
\\(\{-1, +1\}\\).

**Sign at zero.** LCE's binary ops compute \\(sign(0) = +1\\): `LceQuantize` and the bit-packing of
filters set a bit for \\(x < 0\\) only (``core/bitpacking/bitpack.h``), as Larq's `ste_sign`.
lqbench's `SignAtZero` (``Binarization(sign_at_zero=-1.0)``, paper 000's sign with \\(-1\\) at 0)
converts as follows (measured, LCE 0.16, `lqbench.tflite.op_counts`): as a *kernel* quantizer
it is constant-folded into the filter, so the layer still becomes `LceBconv2d`, exactly; as an
*input* quantizer LCE matches only the wrapped sign (`LceQuantize` -> `LceDequantize`) and keeps
the correction at 0 as float ops (``EQUAL``, ``CAST``, ``SUB``, ``MUL``, ``ADD``), so the
convolution runs as a float ``CONV_2D`` with float weights: exact, but an avoidable fallback. The
``sign_at_zero_as_sign`` rewrite (`lqbench.tflite.rewrite`) gives such a layer LCE's sign; its
outputs then differ from Keras only where a pre-sign value is exactly 0 (a sign tie, which
`lqbench.tflite.verify` detects and keeps apart).

`analyze` applies these rules to every Larq layer; `op_counts` reads the operator histogram of
the converted flatbuffer (custom ops by name), so the two can be cross-checked.

!!! example
    ```python
    findings = lqbench.tflite.analysis.analyze(model, target="arm")
    [f.layer for f in findings.layers if f.status == "fallback"]
    ```
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Any

import larq as lq
import tensorflow as tf

from lqbench import estimators
from lqbench._lazy import lazy_module
from lqbench.errors import ConfigValueError

#: LCE's TFLite flatbuffer schema (loaded on first use: it is only needed to read flatbuffers).
tflite_schema = lazy_module("larq_compute_engine.mlir.python.tflite_schema")

TARGETS = ("arm", "xcore")

# Status of one quantized layer after conversion.
BINARY = "binary"  # expected to become LceBconv2d
FALLBACK = "fallback"  # converts to float ops (correct outputs, float weights)
MISCONVERTED = "misconverted"  # converts to something that computes a different function
UNKNOWN = "unknown"  # 1-bit quantizers LCE's rules do not cover: decided by the op counts
FLOAT_KERNEL = "float_kernel"  # binary input, float weights (e.g. a kept-float last layer): a float op, as designed

_SIGN_CLASSES = (
    lq.quantizers.SteSign,
    lq.quantizers.ApproxSign,
    lq.quantizers.SwishSign,
    estimators._SignEstimator,
    estimators.RSign,
)
_SIGN_FUNCTIONS = (lq.quantizers.ste_sign, lq.quantizers.approx_sign, lq.quantizers.swish_sign)


@dataclasses.dataclass
class LayerFinding:
    """One quantized Keras layer and what LCE does with it."""

    layer: str
    type: str
    input_quantizer: str | None
    kernel_quantizer: str | None
    status: str
    reason: str = ""
    input_bits: int | None = None
    kernel_bits: int | None = None
    unavoidable: bool = False  # a fallback for which LCE has no binary op at all (not for a better-written layer)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        quantizers = f"input={self.input_quantizer}, kernel={self.kernel_quantizer}"
        return f"{self.layer} ({self.type}; {quantizers}): {self.reason}"


@dataclasses.dataclass
class PoolFinding:
    """A max-pool next to binary layers: does it become `LceBMaxPool2d`?"""

    layer: str
    binary: bool  # expected LceBMaxPool2d
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Analysis:
    """Static prediction of the conversion of one model."""

    layers: list[LayerFinding]
    pools: list[PoolFinding]
    notes: list[str]

    def with_status(self, status: str) -> list[LayerFinding]:
        return [f for f in self.layers if f.status == status]

    @property
    def binary_layers(self) -> list[LayerFinding]:
        """Layers with a 1-bit input quantizer and a 1-bit kernel quantizer."""
        return [f for f in self.layers if f.input_bits == 1 and f.kernel_bits == 1]

    @property
    def expected_bmaxpool(self) -> int:
        return sum(p.binary for p in self.pools)


def _name(quantizer) -> str | None:
    if quantizer is None:
        return None
    return getattr(quantizer, "__name__", type(quantizer).__name__)


def _bits(quantizer) -> int | None:
    """Precision of a quantizer (None: no quantizer, i.e. float)."""
    if quantizer is None:
        return None
    if any(quantizer is f for f in _SIGN_FUNCTIONS):
        return 1
    if quantizer is lq.quantizers.ste_heaviside:
        return 1
    if quantizer is lq.quantizers.ste_tern:
        return 2
    if isinstance(quantizer, lq.quantizers.DoReFa):
        return int(quantizer.precision)
    return int(getattr(quantizer, "precision", 32) or 32)


def _is_sign(quantizer) -> bool:
    """A sign LCE matches as such (\\(+1\\) at 0): its binary ops can take this quantizer's place."""
    return isinstance(quantizer, _SIGN_CLASSES) or any(quantizer is f for f in _SIGN_FUNCTIONS)


def _is_sign_at_zero(quantizer) -> bool:
    """`SignAtZero` around a sign LCE matches: a sign with another value at exactly 0."""
    return isinstance(quantizer, estimators.SignAtZero) and _is_sign(quantizer.quantizer)


def is_sign(quantizer) -> bool:
    """A sign in the mathematical sense, whatever its value at 0 (LCE's, or `SignAtZero`): where its
    input is (near) 0 the output can flip, a *sign tie* (`lqbench.tflite.verify`)."""
    return _is_sign(quantizer) or _is_sign_at_zero(quantizer)


def sign_at_zero_reason(quantizer) -> str:
    """Why a `SignAtZero` input quantizer keeps its layer float in LCE (measured, LCE 0.16)."""
    return (
        f"input quantizer {_name(quantizer)} is a sign with {quantizer.value:+g} at exactly 0: LCE matches only "
        f"its wrapped sign {_name(quantizer.quantizer)} (+1 at 0, LceQuantize -> LceDequantize) and keeps the "
        "correction at 0 as float ops, so the layer runs as a float convolution (exact outputs, float weights); "
        "convert with rewrite=True (the default) to give it LCE's sign (sign_at_zero_as_sign: outputs differ "
        "only where a pre-sign value is exactly 0)"
    )


def _is_ternary(quantizer) -> bool:
    return isinstance(quantizer, lq.quantizers.SteTern) or quantizer is lq.quantizers.ste_tern


def _input_problem(quantizer) -> tuple[str, str] | None:
    """(status, reason) when a 1-bit input quantizer is not LCE's sign, else None."""
    if _is_sign(quantizer):
        return None
    name = _name(quantizer)
    if _is_sign_at_zero(quantizer):
        return FALLBACK, sign_at_zero_reason(quantizer)
    if isinstance(quantizer, lq.quantizers.SteHeaviside) or quantizer is lq.quantizers.ste_heaviside:
        return FALLBACK, f"input quantizer {name} outputs {{0, 1}}, not the sign LCE binarizes"
    if isinstance(quantizer, lq.quantizers.DoReFa):
        return FALLBACK, f"input quantizer {name} is a k-bit uniform quantizer in [0, 1], not a sign"
    if isinstance(quantizer, lq.quantizers.MagnitudeAwareSign):
        return FALLBACK, f"input quantizer {name} scales the sign by a batch statistic: not a pure sign"
    if isinstance(quantizer, lq.quantizers.NoOp):
        return FALLBACK, f"input quantizer {name} does not compute a sign in the graph"
    return UNKNOWN, f"input quantizer {name} is not one LCE is known to match as a sign"


def _kernel_problem(quantizer) -> tuple[str, str] | None:
    """(status, reason) when a 1-bit kernel quantizer does not give a ±alpha filter, else None.

    A `SignAtZero` kernel quantizer is constant-folded by the converter (its value at 0
    included), so the filter is exactly the ±1 one Keras uses (measured: `LceBconv2d`).
    """
    if is_sign(quantizer) or isinstance(quantizer, lq.quantizers.MagnitudeAwareSign):
        return None
    name = _name(quantizer)
    if isinstance(quantizer, lq.quantizers.SteHeaviside) or quantizer is lq.quantizers.ste_heaviside:
        return FALLBACK, f"kernel quantizer {name} gives {{0, 1}} weights, not ±alpha"
    if isinstance(quantizer, lq.quantizers.DoReFa):
        return FALLBACK, f"kernel quantizer {name} gives k-bit weights, not ±alpha"
    if isinstance(quantizer, lq.quantizers.NoOp):
        return FALLBACK, f"kernel quantizer {name} leaves the weights float"
    return UNKNOWN, f"kernel quantizer {name} is not one LCE is known to fold into a binary filter"


def _kernel_quantizers(layer) -> list:
    return [
        getattr(layer, attribute)
        for attribute in ("kernel_quantizer", "depthwise_quantizer", "pointwise_quantizer")
        if getattr(layer, attribute, None) is not None
    ]


def _kernel_bits(layer) -> int | None:
    """The lowest precision of a layer's kernel quantizers (None: float kernels)."""
    return min((_bits(q) for q in _kernel_quantizers(layer)), default=None)


#: Layer types LCE has no binary op for; the ones `lqbench.tflite.rewrite` turns into binary
#: 2D convolutions are avoidable (`_REWRITABLE`), the others are not.
_NO_BINARY_KERNEL = {
    "QuantDense": "LCE has no binary fully-connected op; convert with rewrite=True (the default) to run it as a "
    "1x1 binary convolution",
    "QuantDepthwiseConv2D": "LCE has no binary depthwise convolution",
    "QuantConv1D": "LCE has no binary 1D convolution; convert with rewrite=True (the default) to run it as a 1xk "
    "binary 2D convolution",
    "QuantConv3D": "LCE has no binary 3D convolution",
    "QuantSeparableConv1D": "LCE has no binary separable convolution",
    "QuantSeparableConv2D": "LCE has no binary separable convolution; use QuantDepthwiseConv2D (float) + 1x1 QuantConv2D",
    "QuantConv2DTranspose": "LCE has no binary transposed convolution",
    "QuantConv3DTranspose": "LCE has no binary transposed convolution",
    "QuantLocallyConnected1D": "LCE has no binary locally connected layer",
    "QuantLocallyConnected2D": "LCE has no binary locally connected layer",
}


_REWRITABLE = ("QuantDense", "QuantConv1D")


def _is_quant_layer(layer) -> bool:
    return isinstance(layer, lq.layers.QuantizerBase) or hasattr(layer, "input_quantizer")


def _walk(model):
    for layer in getattr(model, "layers", []):
        if isinstance(layer, tf.keras.Model) or (hasattr(layer, "layers") and not _is_quant_layer(layer)):
            yield from _walk(layer)
        else:
            yield layer


# Layers between a sign layer and a weight layer that keep the values ±1 in inference (dropout is the identity there).
_VALUE_PRESERVING = (tf.keras.layers.MaxPooling2D, tf.keras.layers.Flatten, tf.keras.layers.Reshape,
                     tf.keras.layers.Dropout)
_RESHAPING = (tf.keras.layers.Flatten, tf.keras.layers.Reshape, tf.keras.layers.Dropout)


def _producer(layer):
    """The single layer whose output ``layer`` reads (None: several, or a model input)."""
    nodes = getattr(layer, "_inbound_nodes", None) or []
    if not nodes:
        return None
    inbound = nodes[0].inbound_layers
    inbound = inbound if isinstance(inbound, (list, tuple)) else [inbound]
    return inbound[0] if len(inbound) == 1 else None


def _shape(layer, attribute: str):
    try:
        return tuple(getattr(layer, attribute)[1:])
    except (AttributeError, RuntimeError, TypeError, ValueError):
        return None


def sign_layer_before(layer):
    """``(sign layer, fused)``: the 1-bit quantizer *layer* that ``layer`` reads through flatten,
    reshape or dropout layers (``(None, False)`` when there is none), and whether LCE fuses it into
    the binary op.

    ``Binarization(inputs="activations")`` (paper 000) puts the sign in place of the activation
    function, as a layer of its own; the weight layer after it has a kernel quantizer only. LCE
    matches ``sign -> convolution`` as `LceBconv2d`, and through reshapes only when they cancel out
    (the sign's output has the convolution's input shape, e.g. a 1x1 map flattened into a binary
    dense layer run as a 1x1 convolution); a sign on a flat vector reshaped for a 1x1 convolution
    stays ``LceQuantize -> LceDequantize -> RESHAPE -> CONV_2D``, a float op (measured, LCE 0.16).
    """
    source = _producer(layer)
    while isinstance(source, _RESHAPING):
        source = _producer(source)
    if not (isinstance(source, lq.quantizers._BaseQuantizer) and _bits(source) == 1):
        return None, False
    out_shape, in_shape = _shape(source, "output_shape"), _shape(layer, "input_shape")
    return source, out_shape is not None and out_shape == in_shape


def input_quantizer_of(layer):
    """The quantizer of ``layer``'s input: its ``input_quantizer``, else a sign layer before it."""
    quantizer = getattr(layer, "input_quantizer", None)
    if quantizer is None and _is_quant_layer(layer):
        quantizer = sign_layer_before(layer)[0]
    return quantizer


def _classify(layer, target: str) -> LayerFinding | None:
    input_q = input_quantizer_of(layer)
    kernel_qs = _kernel_quantizers(layer)
    in_bits = _bits(input_q)
    k_bits = _kernel_bits(layer)
    if in_bits != 1 and k_bits != 1 and not _is_ternary(input_q):
        return None  # a float (or multi-bit) layer: nothing binary to lose
    finding = LayerFinding(
        layer=layer.name,
        type=type(layer).__name__,
        input_quantizer=_name(input_q),
        kernel_quantizer=", ".join(_name(q) for q in kernel_qs) or None,
        status=BINARY,
        input_bits=in_bits,
        kernel_bits=k_bits,
    )

    def done(status, reason, unavoidable=False):
        finding.status, finding.reason, finding.unavoidable = status, reason, unavoidable
        return finding

    if _is_ternary(input_q):
        return done(
            MISCONVERTED,
            f"ternary input quantizer {finding.input_quantizer}: LCE matches its sign pattern and "
            "converts it to a binary sign (zeros become ±1), so the converted model computes a "
            "different function",
        )
    source, fused = sign_layer_before(layer) if getattr(layer, "input_quantizer", None) is None else (None, True)
    if source is not None and k_bits == 1 and not fused:
        return done(
            FALLBACK,
            f"its ±1 input comes from the sign layer {source.name} through a reshape "
            f"({_shape(source, 'output_shape')} -> {_shape(layer, 'input_shape')}): LCE only fuses a sign that "
            "feeds the convolution in its shape, the layer runs as float ops on LceDequantize's output",
        )
    if in_bits == 1 and k_bits is None:
        return done(FLOAT_KERNEL, "binary input with float weights: runs as a float op on ±1 inputs (as designed)")
    if in_bits == 1 and k_bits != 1:
        return done(FALLBACK, f"binary input with a {k_bits}-bit kernel: LCE has no kernel for it, the layer runs in float",
                    unavoidable=True)
    if k_bits == 1 and in_bits != 1:
        kind = "float" if input_q is None else f"{in_bits}-bit"
        return done(
            FALLBACK,
            f"binary kernel with {kind} input (kernel-only binarization): LCE only has fully binary "
            "convolutions, the layer keeps float weights",
            unavoidable=True,
        )
    if finding.type in _NO_BINARY_KERNEL:
        return done(FALLBACK, _NO_BINARY_KERNEL[finding.type], unavoidable=finding.type not in _REWRITABLE)
    if not isinstance(layer, lq.layers.QuantConv2D):
        return done(UNKNOWN, f"{finding.type} is not a QuantConv2D; LCE only converts QuantConv2D")
    problems = [p for p in (_input_problem(input_q), *(_kernel_problem(q) for q in kernel_qs)) if p]
    fallback = [reason for status, reason in problems if status == FALLBACK]
    if fallback:
        return done(FALLBACK, "; ".join(fallback))
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return done(FALLBACK, "channels_first data format: LCE's binary conv is NHWC only")
    kernel_size = tuple(layer.kernel_size)
    pads = layer.padding == "same" and any(k > 1 for k in kernel_size)
    pad_values = float(getattr(layer, "pad_values", 0.0))
    if pads and pad_values != 1.0 and target != "arm":
        return done(
            FALLBACK,
            f"padding='same' with pad_values={pad_values:g} on target {target!r}: only pad_values=1.0 "
            "converts there",
        )
    groups = int(getattr(layer, "groups", 1) or 1)
    if groups > 1:
        kernel = getattr(layer, "kernel", None)  # shape (kh, kw, channels / groups, filters)
        per_group = int(kernel.shape[-2]) if kernel is not None else None
        if per_group is not None and per_group % 32:
            return done(
                FALLBACK,
                f"grouped conv with {per_group} input channels per group: LCE needs a multiple of 32",
                unavoidable=True,
            )
    unknown = [reason for status, reason in problems if status == UNKNOWN]
    if unknown:
        return done(UNKNOWN, "; ".join(unknown))
    if pads and pad_values != 1.0:
        finding.reason = (
            f"converts, but zero padding (pad_values={pad_values:g}) keeps its output float "
            "(no bit-packed output); pad_values=1.0 is faster"
        )
    return finding


def _consumers(layer) -> list:
    consumers = []
    for node in getattr(layer, "_outbound_nodes", []):
        outbound = getattr(node, "outbound_layer", None) or getattr(node, "layer", None)
        if outbound is not None:
            consumers.append(outbound)
    return consumers


def _takes_sign(layer) -> bool:
    """A Larq layer whose input quantizer is a sign LCE matches, or such a sign as a layer of its own
    (``Binarization(inputs="activations")``): the consumer that makes a max-pool binary."""
    if isinstance(layer, lq.quantizers._BaseQuantizer):
        return _is_sign(layer)
    return _is_quant_layer(layer) and _is_sign(getattr(layer, "input_quantizer", None))


def signs_input(layer) -> bool:
    """A Larq layer whose input quantizer is a sign of any value at 0 (`is_sign`)."""
    return _is_quant_layer(layer) and is_sign(getattr(layer, "input_quantizer", None))


def is_sign_layer(layer) -> bool:
    """A sign quantizer used as a layer of its own (``Binarization(inputs="activations")``)."""
    return isinstance(layer, lq.quantizers._BaseQuantizer) and is_sign(layer)


_RESHAPES = (tf.keras.layers.Flatten, tf.keras.layers.Reshape)


def _keeps_channels(layer) -> bool:
    """A Flatten/Reshape whose output keeps the input's last (channel) dimension, e.g. (1, 1, C) -> (C,)."""
    try:
        return isinstance(layer, _RESHAPES) and layer.input_shape[-1] == layer.output_shape[-1]
    except (AttributeError, RuntimeError, ValueError):
        return False


def _signed_by(layer, depth: int = 4, channel_reshapes_only: bool = False):
    """The sign-taking layer that is ``layer``'s only consumer, through Flatten/Reshape layers (or None).

    With ``channel_reshapes_only``, only through reshapes that keep the channel dimension: LCE
    moves its quantize op through those (a 1x1 pooled map flattened into a binary dense layer
    gets ``LceBMaxPool2d``), not through a Flatten that merges positions into channels (measured).
    """
    consumers = _consumers(layer)
    if len(consumers) != 1:
        return None
    if _takes_sign(consumers[0]):
        return consumers[0]
    if depth > 0 and isinstance(consumers[0], _RESHAPES):
        if channel_reshapes_only and not _keeps_channels(consumers[0]):
            return None
        return _signed_by(consumers[0], depth - 1, channel_reshapes_only)
    if depth > 0 and _sign_preserving(consumers[0]):
        return _signed_by(consumers[0], depth - 1, channel_reshapes_only)
    return None


def _sign_preserving(layer) -> bool:
    """An activation layer with sign(f(x)) = sign(x), e.g. IR-Net's hard tanh before the sign
    (`vgg_small(hardtanh_before_sign=True)`): LCE still fuses the pool with the sign (measured)."""
    if not isinstance(layer, tf.keras.layers.Activation):
        return False
    name = getattr(layer.activation, "__name__", str(layer.activation))
    return name.split(">")[-1] in ("hard_tanh", "htanh")


def _pools(model, target: str) -> list[PoolFinding]:
    findings = []
    for layer in _walk(model):
        if not isinstance(layer, tf.keras.layers.MaxPooling2D):
            continue
        consumers = _consumers(layer)
        signer = _signed_by(layer, channel_reshapes_only=True)
        if signer is not None and _is_quant_layer(signer) and _kernel_bits(signer) != 1:
            # binary input, float weights (e.g. a classifier kept float): LCE runs the consumer as
            # a float op on dequantized +-1 values, so the pool stays float (measured, LCE 0.16)
            findings.append(
                PoolFinding(layer.name, False, f"feeds {signer.name}, a layer with float weights: float max-pool")
            )
        elif signer is not None:
            if target == "arm":
                findings.append(PoolFinding(layer.name, True))
            else:
                findings.append(
                    PoolFinding(layer.name, False, f"target {target!r} has no LceBMaxPool2d: float max-pool")
                )
        elif (
            len(consumers) == 1
            and isinstance(consumers[0], tf.keras.layers.BatchNormalization)
            and _signed_by(consumers[0]) is not None
        ):
            findings.append(
                PoolFinding(
                    layer.name,
                    False,
                    f"max-pool before BN ({consumers[0].name}) feeding a binary layer: float max-pool "
                    "on float values; convert with rewrite=True (the default) to move BN before the pool "
                    "where that is exact (every BN scale >= 0) and get LceBMaxPool2d",
                )
            )
    return findings


def analyze(model: tf.keras.Model, target: str = "arm") -> Analysis:
    """Predict, layer by layer, what LCE's converter does with ``model`` (see module doc)."""
    if target not in TARGETS:
        raise ConfigValueError(f"unknown target {target!r}; allowed: {', '.join(TARGETS)}")
    by_name = {layer.name: layer for layer in _walk(model)}
    layers = [f for f in (_classify(layer, target) for layer in by_name.values()) if f is not None]
    notes = []
    if any(f.status == BINARY and f.reason for f in layers):
        # measured with LCE 0.16 (tests/test_tflite.py): such convs keep float output and their
        # consumers quantize it again, with outputs equal to Keras for every bconv kernel
        notes.append("zero-padded binary convs convert on arm but cannot write bit-packed output")
    return Analysis(layers=layers, pools=_pools(model, target), notes=notes)


def _schema():
    return tflite_schema


def op_list(flatbuffer: bytes) -> list[str]:
    """Names of the operators of every subgraph, in execution order (custom ops by their name)."""
    schema = _schema()
    names = {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            codes.append(code.CustomCode().decode())
        else:
            codes.append(names.get(builtin, f"BUILTIN_{builtin}"))
    ops = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for j in range(subgraph.OperatorsLength()):
            ops.append(codes[subgraph.Operators(j).OpcodeIndex()])
    return ops


def op_counts(flatbuffer: bytes) -> dict[str, int]:
    """Histogram of operator names in a TFLite flatbuffer, most frequent first.

    !!! example
        ```python
        op_counts(open("model.tflite", "rb").read())["LceBconv2d"]
        ```
    """
    return dict(collections.Counter(op_list(flatbuffer)).most_common())


def weight_bytes(flatbuffer: bytes) -> dict[str, int]:
    """Bytes of constant data (weights, folded batch norm, shapes) per consuming operator, largest first.

    Each constant buffer is counted once, for the first operator that reads it; what no operator
    reads directly (metadata, the graph itself) is ``"other"``, so the values add up to the file
    size. `LceBconv2d` filters are bit-packed (1 bit per weight), float ops hold 32-bit weights.
    """
    schema = _schema()
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    ops = op_list(flatbuffer)
    totals: collections.Counter = collections.Counter()
    seen: set[int] = set()
    k = 0
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for j in range(subgraph.OperatorsLength()):
            operator, name = subgraph.Operators(j), ops[k]
            k += 1
            for t in range(operator.InputsLength()):
                index = operator.Inputs(t)
                if index < 0:
                    continue
                buffer_index = subgraph.Tensors(index).Buffer()
                if buffer_index <= 0 or buffer_index in seen:
                    continue
                seen.add(buffer_index)
                buffer = model.Buffers(buffer_index)
                size = buffer.DataLength() or int(buffer.Size() or 0)
                if size:
                    totals[name] += size
    totals["other"] = max(0, len(flatbuffer) - sum(totals.values()))
    return dict(totals.most_common())
