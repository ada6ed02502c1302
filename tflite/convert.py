r"""Convert a Larq model with Larq Compute Engine in its fastest exact form, and check what came out.

`convert` runs four named steps and returns a `ConversionReport`:

1. **audit** (`audit`): rewrite the model into the form LCE accelerates (`lqbench.tflite.rewrite`:
   binary dense and 1D layers as binary 2D convolutions, batch norm before max-pools; default on,
   ``rewrite=False`` turns it off) and predict, layer by layer, what LCE makes of it
   (`lqbench.tflite.analysis.analyze`);
2. **convert** (`to_flatbuffer`: LCE's conversion of the model's serving function alone,
   byte-identical to ``lce.convert_keras_model`` and 2.2-4.5x faster): the LCE flatbuffer, its
   operator histogram (`LceBconv2d`, `LceQuantize`, ...), the binary layers that became
   `LceBconv2d` and the max-pools that became `LceBMaxPool2d` (predicted, then cross-checked
   against the flatbuffer's counts), silent float fallbacks with their reasons, the bytes of
   weights per operator, and the size next to the float twin's (the same architecture with every
   quantizer removed);
3. **verify** (`lqbench.tflite.verify.verify`): the LCE interpreter against the *original* Keras
   model, \\(\max_{i,j} |f_{LCE}(x_i)_j - f_{Keras}(x_i)_j|\\) on single-image batches (the
   converter fixes the batch size to 1), every binary kernel, with sign ties detected and kept
   apart, and a copy with calibrated batch-norm statistics when ties leave too little to compare;
4. **enforce** (`enforce`): mis-conversions (ternary input quantizers, or LCE outputs that
   differ from Keras on tie-free samples) raise
   `ConversionError` in every case. Fallbacks to float ops follow the ``fallback`` policy
   (`FALLBACK_POLICIES`):

   - ``"unavoidable"`` (the default): a binary layer LCE has **no binary op for at all** (depthwise,
     3D, separable, transposed, locally connected, binary weights with float inputs, ...; see
     `lqbench.tflite.analysis`) converts to float ops, its reason listed in the report and warned
     once; a fallback the model or the rewrite could have avoided (a non-sign input quantizer,
     zero padding on ``xcore``, ``channels_first``, a binary dense layer with ``rewrite=False``)
     raises `ConversionError`, as does an LceBconv2d count below the prediction;
   - ``"any"``: every fallback converts, with a `ConversionWarning` (``allow_fallback=True``);
   - ``"none"``: every fallback raises (the strict mode; ``allow_fallback=False``).

!!! example
    ```python
    report = lqbench.tflite.convert(model, "model.tflite")
    print(report)               # rewrites, op counts, binary layers, sizes, verification
    report.to_dict()["size_bytes"]
    ```
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import tempfile
import warnings
from typing import Any, Sequence

import larq as lq
import numpy as np
import tensorflow as tf
from tensorflow.python.saved_model import save_context
from tf_keras.src import backend as keras_backend
from tf_keras.src.saving.legacy.saved_model import save_impl as keras_save_impl

from lqbench._lazy import lazy_module
from lqbench.errors import ConfigTypeError, ConfigValueError
from lqbench.experiment import load_model as _load_model
from lqbench.tflite import analysis
from lqbench.tflite import rewriting
from lqbench.tflite.verification import (  # noqa: F401  (re-exported for callers of lqbench.tflite.convert)
    KERNELS,
    Verification,
    _interpreter,
    kernel_error,
    max_abs_difference,
    native_stderr,
    random_inputs,
    verify as verify_outputs,
)

#: LarqComputeEngine (loaded on first use: converting and interpreting need it, importing this does not).
lce = lazy_module("larq_compute_engine")

#: A binary model at least this many times smaller than its float twin meets the project's size target.
SIZE_TARGET = 25.0

#: Which float fallbacks of binary layers a conversion accepts (see the module doc).
FALLBACK_POLICIES = ("unavoidable", "any", "none")
DEFAULT_FALLBACK = "unavoidable"


def fallback_policy(fallback: str | None = None, allow_fallback: bool | None = None) -> str:
    """The fallback policy from ``fallback`` or the older ``allow_fallback`` flag (True: ``"any"``,
    False: ``"none"``); neither: `DEFAULT_FALLBACK`.

    !!! example
        ```python
        fallback_policy(allow_fallback=True)  # "any"
        ```
    """
    if isinstance(fallback, bool) and allow_fallback is None:  # enforce(report, True): the older positional flag
        fallback, allow_fallback = None, fallback
    if allow_fallback is not None and fallback is not None:
        raise ConfigValueError(f"pass fallback={fallback!r} or allow_fallback={allow_fallback!r}, not both")
    if allow_fallback is not None:
        if not isinstance(allow_fallback, bool):
            raise ConfigTypeError(f"allow_fallback must be True or False, got {allow_fallback!r}")
        return "any" if allow_fallback else "none"
    if fallback is None:
        return DEFAULT_FALLBACK
    if fallback not in FALLBACK_POLICIES:
        raise ConfigValueError(f"unknown fallback policy {fallback!r}; allowed: {', '.join(FALLBACK_POLICIES)}")
    return fallback


class ConversionError(ValueError):
    """A binary layer fell back to float against the ``fallback`` policy, or was mis-converted.

    ``report`` holds the full `ConversionReport`; no file was written.
    """

    def __init__(self, message: str, report: "ConversionReport | None" = None):
        super().__init__(message)
        self.report = report


class ConversionWarning(UserWarning):
    """A binary layer falls back to float ops, a binary op is slower than it could be, or the
    conversion itself falls back to LCE's slower ``convert_keras_model`` (`to_flatbuffer`)."""


@dataclasses.dataclass
class ConversionReport:
    """What `convert` produced. ``str(report)`` is a readable summary, `to_dict` is JSON-ready."""

    path: str | None
    target: str
    size_bytes: int
    op_counts: dict[str, int]
    binary_layers: int  # Keras layers with 1-bit input and kernel quantizers (of the converted model)
    expected_bconv: int  # of those, the ones the rules say become LceBconv2d
    bconv: int  # LceBconv2d ops in the flatbuffer
    expected_bmaxpool: int
    bmaxpool: int  # LceBMaxPool2d ops in the flatbuffer
    converted: list[str] = dataclasses.field(default_factory=list)  # names of binary layers -> LceBconv2d
    fallbacks: list[analysis.LayerFinding] = dataclasses.field(default_factory=list)
    errors: list[analysis.LayerFinding] = dataclasses.field(default_factory=list)
    pool_fallbacks: list[analysis.PoolFinding] = dataclasses.field(default_factory=list)
    count_mismatch: str | None = None
    rewrite: bool = True
    rewrites: list[rewriting.RewriteStep] = dataclasses.field(default_factory=list)
    rewrites_declined: list[rewriting.RewriteStep] = dataclasses.field(default_factory=list)
    rewrite_keras_diff: float | None = None  # max |rewritten - original| in Keras on the samples
    weight_bytes: dict[str, int] = dataclasses.field(default_factory=dict)  # per operator (analysis.weight_bytes)
    float_size_bytes: int | None = None
    float_note: str = ""
    max_abs_diff: float | None = None  # max |LCE - Keras| where exactness is established (model, else calibrated copy)
    max_abs_output: float | None = None
    kernel_diffs: dict[str, float] = dataclasses.field(default_factory=dict)
    kernel_failures: dict[str, str] = dataclasses.field(default_factory=dict)
    verify_kernel: str | None = None
    verify_samples: int = 0
    verified_on: str | None = None  # "model" or "calibrated" (a copy with batch-norm statistics of the samples)
    tied_samples: int = 0  # samples of the model with sign ties
    tie_max_abs_diff: float | None = None  # max |LCE - Keras| on those (ties, not errors)
    verdict: str | None = None  # "exact", "mis-converted", "inconclusive" (None: not verified)
    misconverted_kernels: dict[str, float] = dataclasses.field(default_factory=dict)
    verification: Verification | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    fallback_policy: str = DEFAULT_FALLBACK  # which fallbacks the conversion accepted (FALLBACK_POLICIES)

    @property
    def unavoidable_fallbacks(self) -> list[analysis.LayerFinding]:
        """Fallbacks of binary layers LCE has no binary op for (accepted by the default policy)."""
        return [f for f in self.fallbacks if f.unavoidable]

    @property
    def avoidable_fallbacks(self) -> list[analysis.LayerFinding]:
        """Fallbacks the model or the rewrite could have avoided (refused unless ``fallback="any"``)."""
        return [f for f in self.fallbacks if not f.unavoidable]

    def fallback_summary(self) -> str:
        """One line: how many binary layers run as float ops, by type, and why ("" when none)."""
        if not self.fallbacks:
            return ""
        parts = []
        for label, group in (("no LCE binary op", self.unavoidable_fallbacks), ("avoidable", self.avoidable_fallbacks)):
            if group:
                types = {}
                for f in group:
                    types[f.type] = types.get(f.type, 0) + 1
                parts.append(f"{len(group)} {label} (" + ", ".join(f"{t} x{n}" for t, n in types.items()) + ")")
        return f"{len(self.fallbacks)} binary layer(s) run as float ops: " + "; ".join(parts)

    @property
    def size_ratio(self) -> float | None:
        """Float twin size / binary size (how many times smaller the LCE model is)."""
        if not self.float_size_bytes or not self.size_bytes:
            return None
        return self.float_size_bytes / self.size_bytes

    @property
    def ok(self) -> bool:
        """No fallback, no mis-conversion, counts agree."""
        return not (self.fallbacks or self.errors or self.count_mismatch or self.misconverted_kernels)

    @property
    def float_weight_bytes(self) -> int:
        """Bytes of constant data read by float operators (everything but LCE's binary ops and "other")."""
        return sum(v for k, v in self.weight_bytes.items() if not k.startswith("Lce") and k != "other")

    def size_note(self) -> str:
        """Why the model is less than `SIZE_TARGET` times smaller than its float twin ("" when it is not):
        where its bytes go (`weight_bytes`) and which binary layers LCE keeps float."""
        ratio = self.size_ratio
        if ratio is None or ratio >= SIZE_TARGET:
            return ""

        def kib(n):
            return f"{n / 1024:,.1f} KiB"

        binary = sum(v for k, v in self.weight_bytes.items() if k.startswith("Lce"))
        floats = [(k, v) for k, v in self.weight_bytes.items() if not k.startswith("Lce") and k != "other" and v >= 1024]
        other = self.weight_bytes.get("other", 0)
        parts = [f"binary filters {kib(binary)} ({binary / self.size_bytes:.0%})",
                 f"constants of float ops {kib(self.float_weight_bytes)} ({self.float_weight_bytes / self.size_bytes:.0%}"
                 + (": " + ", ".join(f"{k} {kib(v)}" for k, v in floats[:4]) if floats else "") + ")",
                 f"graph and metadata {kib(other)} ({other / self.size_bytes:.0%})"]
        if self.fallbacks:
            parts.append(self.fallback_summary().replace("run as float ops", "LCE keeps float"))
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in ("fallbacks", "errors", "pool_fallbacks", "rewrites", "rewrites_declined"):
            data[key] = [item.to_dict() for item in data[key]]
        data["verification"] = self.verification.to_dict() if self.verification is not None else None
        data["size_ratio"] = self.size_ratio
        data["size_note"] = self.size_note()
        data["fallback_summary"] = self.fallback_summary()
        data["ok"] = self.ok
        return data

    def __str__(self) -> str:
        def kb(n):
            return f"{n / 1024:,.1f} KiB" if n is not None else "n/a"

        lines = [f"LCE conversion (target {self.target})" + (f" -> {self.path}" if self.path else "")]
        if not self.rewrite:
            lines.append("  rewrite: off (rewrite=False)")
        for step in self.rewrites:
            lines.append(f"  rewrite: {step}")
        for step in self.rewrites_declined:
            lines.append(f"  rewrite declined: {step}")
        if self.rewrites and self.rewrite_keras_diff is not None:
            lines.append(f"  rewritten vs original in Keras: max difference {self.rewrite_keras_diff:.3g}")
        size = f"  size: {kb(self.size_bytes)}"
        if self.float_size_bytes:
            size += f"; float twin {kb(self.float_size_bytes)} ({self.size_ratio:.1f}x smaller)"
        elif self.float_note:
            size += f"; float twin: {self.float_note}"
        lines.append(size)
        if self.size_note():
            lines.append(f"  below {SIZE_TARGET:.0f}x: {self.size_note()}")
        lines.append(
            f"  binary layers: {self.binary_layers}; LceBconv2d in flatbuffer: {self.bconv} "
            f"(expected {self.expected_bconv}); LceBMaxPool2d: {self.bmaxpool} (expected {self.expected_bmaxpool})"
        )
        lines.append("  ops: " + ", ".join(f"{name} x{count}" for name, count in self.op_counts.items()))
        if self.verification is not None:
            lines.append(f"  verification: {self.verdict}" + (
                f", max |LCE - Keras| = {self.max_abs_diff:.3g} on the "
                f"{'model' if self.verified_on == 'model' else 'calibrated copy'}" if self.max_abs_diff is not None else ""))
            lines.extend(f"    {line}" for line in self.verification.summary())
        elif self.verify_kernel:
            lines.append(f"  verification: {self.verify_kernel}")
        if self.misconverted_kernels:
            lines.append("  MIS-CONVERTED: LCE differs from Keras on tie-free samples: "
                         + ", ".join(f"{k} kernel by {d:.3g}" for k, d in self.misconverted_kernels.items()))
        if self.count_mismatch:
            lines.append(f"  COUNT MISMATCH: {self.count_mismatch}")
        for finding in self.errors:
            lines.append(f"  ERROR (mis-converted): {finding}")
        if self.fallbacks:
            lines.append(f"  fallbacks (policy {self.fallback_policy!r}): {self.fallback_summary()}")
        for finding in self.fallbacks:
            kind = "no LCE binary op" if finding.unavoidable else "avoidable"
            lines.append(f"  FALLBACK to float ({kind}): {finding}")
        for pool in self.pool_fallbacks:
            lines.append(f"  float max-pool: {pool.layer}: {pool.reason}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)
# --------------------------------------------------------------------------- float twin

_QUANTIZER_KEYS = ("input_quantizer", "kernel_quantizer", "depthwise_quantizer", "pointwise_quantizer")
_CONSTRAINT_KEYS = ("kernel_constraint", "depthwise_constraint", "pointwise_constraint")


def _is_quantizer(obj) -> bool:
    return isinstance(obj, lq.quantizers.Quantizer) or getattr(obj, "__module__", "").startswith(
        ("larq.quantizers", "lqbench.estimators")
    )


def _float_layer(layer):
    config = layer.get_config()
    if analysis._is_quant_layer(layer):
        for key in _QUANTIZER_KEYS:
            if key in config:
                config[key] = None
        for key in _CONSTRAINT_KEYS:
            if key in config:
                config[key] = None
        if "pad_values" in config:
            config["pad_values"] = 0.0
        return type(layer).from_config(config)
    if isinstance(layer, tf.keras.layers.Activation) and _is_quantizer(layer.activation):
        config["activation"] = "linear"
        return tf.keras.layers.Activation.from_config(config)
    if isinstance(layer, lq.quantizers._BaseQuantizer):  # a sign as a layer (Binarization(inputs="activations"))
        return tf.keras.layers.Activation("linear", name=layer.name)
    return type(layer).from_config(config)


def _copy_weights(source: tf.keras.Model, target: tf.keras.Model) -> None:
    """Copy weights layer by layer, matched by variable name within the layer and shape."""
    for src, dst in zip(source.layers, target.layers):
        if isinstance(src, tf.keras.Model) and isinstance(dst, tf.keras.Model):
            _copy_weights(src, dst)
            continue
        by_name = {w.name.split("/")[-1]: w for w in src.weights}
        for weight in dst.weights:
            match = by_name.get(weight.name.split("/")[-1])
            if match is not None and tuple(match.shape) == tuple(weight.shape):
                weight.assign(match)


def float_twin(model: tf.keras.Model) -> tf.keras.Model:
    r"""The same architecture with every quantizer removed and the same weights.

    Larq layers keep their type with ``input_quantizer``, ``kernel_quantizer`` (and the
    depthwise/pointwise ones) set to ``None``, weight constraints removed and zero padding;
    `Activation` layers whose activation is a quantizer, and quantizers used as layers
    (``Binarization(inputs="activations")``), become linear. Latent weights are
    copied, so the twin computes \\(f(x; w)\\) where the binary model computes
    \\(f(sign(x); sign(w))\\). Only functional and sequential models can be cloned.
    """
    twin = tf.keras.models.clone_model(model, clone_function=_float_layer)
    _copy_weights(model, twin)
    return twin


# --------------------------------------------------------------------------- step 1: audit


@dataclasses.dataclass
class Audit:
    """What will be converted: the (rewritten) model and the static prediction for it."""

    original: tf.keras.Model
    model: tf.keras.Model  # the model handed to LCE (``original`` when nothing was rewritten)
    target: str
    rewrite: bool
    rewrites: rewriting.RewriteResult | None
    analysis: analysis.Analysis
    kinds: tuple[str, ...] = rewriting.KINDS  # the rewrite kinds asked for


def audit(model: tf.keras.Model, target: str = "arm", rewrite: bool | Sequence[str] = True) -> Audit:
    """Rewrite ``model`` for LCE (unless ``rewrite=False``; a list: those `rewriting.KINDS` only) and
    analyse what LCE will make of it."""
    if target not in analysis.TARGETS:
        raise ConfigValueError(f"unknown target {target!r}; allowed: {', '.join(analysis.TARGETS)}")
    if not isinstance(model, tf.keras.Model):
        raise ConfigTypeError(f"convert needs a tf.keras.Model, got {type(model).__name__}")
    if isinstance(rewrite, bool):
        kinds = rewriting.KINDS if rewrite else ()
    elif isinstance(rewrite, (list, tuple)) and all(isinstance(k, str) for k in rewrite):
        kinds = tuple(rewrite)
    else:
        raise ConfigTypeError(f"rewrite must be True, False or a list of rewrite kinds, got {rewrite!r}")
    result = rewriting.rewrite(model, target, kinds) if kinds else None
    converted = result.model if result is not None else model
    return Audit(model, converted, target, bool(kinds), result, analysis.analyze(converted, target), kinds)


# --------------------------------------------------------------------------- step 2: convert


#: SavedModel options of the fast path: the defaults ``model.save`` uses, minus the gradient functions
#: of custom-gradient ops (every Larq quantizer's), which only training reads and saving traces one by one.
_SAVE_OPTIONS = tf.saved_model.SaveOptions(experimental_custom_gradients=False)


def _check_convertible(model: tf.keras.Model, target: str) -> None:
    """The checks `lce.convert_keras_model` makes before converting, as one-line lqbench errors."""
    if target not in analysis.TARGETS:
        raise ConfigValueError(f"unknown target {target!r}; allowed: {', '.join(analysis.TARGETS)}")
    if not isinstance(model, tf.keras.Model):
        raise ConfigTypeError(f"LCE converts a tf.keras.Model, got {type(model).__name__}")
    policy = getattr(model, "dtype_policy", None)
    if policy is not None and policy.name != "float32":
        raise ConfigValueError(
            f"LCE converts float32 models only, this one has dtype policy {policy.name!r} (allowed: float32): "
            "rebuild it under tf.keras.mixed_precision.set_global_policy('float32') and copy its weights "
            "(https://github.com/tensorflow/tensorflow/issues/46380)")


def _serving_function(model: tf.keras.Model):
    """The ``serving_default`` function ``model.save(path, save_format="tf")`` exports: Keras's own
    ``default_save_signature`` (inputs from ``model.save_spec`` with a None batch, ``training=False``,
    outputs a dict keyed by ``model.output_names``), traced in the save context and learning phase 0
    as ``model.save`` traces it."""
    with save_context.save_context(tf.saved_model.SaveOptions()), \
            keras_backend.deprecated_internal_learning_phase_scope(0):
        return keras_save_impl.default_save_signature(model)


def _saved_model_flatbuffer(model: tf.keras.Model, target: str) -> bytes:
    """LCE's saved-model conversion of ``model``'s serving function alone (the fast path of `to_flatbuffer`)."""
    serving = _serving_function(model)
    root = tf.Module()
    # tracked, so that the SavedModel holds their values; in the model's order: the function's own
    # order varies between processes, and with it the order of the flatbuffer's constants
    captured = {v.ref() for v in serving.variables}
    ordered = [v for v in model.variables if v.ref() in captured]
    known = {v.ref() for v in ordered}
    root.serving_variables = ordered + [v for v in serving.variables if v.ref() not in known]
    with tempfile.TemporaryDirectory() as directory:
        tf.saved_model.save(root, directory, signatures={tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: serving},
                            options=_SAVE_OPTIONS)
        return lce.convert_saved_model(directory, target=target)


def _keras_model_flatbuffer(model: tf.keras.Model, target: str) -> bytes:
    """``lce.convert_keras_model`` (saved-model conversion of ``model.save``, else LCE's graphdef conversion)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Saved-model conversion failed")
        return lce.convert_keras_model(model, target=target)


def to_flatbuffer(model: tf.keras.Model, target: str = "arm") -> bytes:
    """The bare LCE conversion (no rewrite, no analysis, no verification): flatbuffer bytes, batch size 1.

    The flatbuffer is the one ``lce.convert_keras_model(model, target=target)`` returns, made
    2.2-4.5x faster. LCE's function saves the whole Keras model (``model.save(tmp,
    save_format="tf")``, which traces the call functions of every layer, ~90% of its time) and
    converts the SavedModel's ``serving_default`` signature (tag ``serve``). This saves only what
    that conversion reads: a `tf.Module` holding the variables of Keras's own serving function,
    exported as ``serving_default`` (`_serving_function`), then calls the same
    ``lce.convert_saved_model``. The converter sees the same function and the same variable
    values, tracked in the model's order (in the function's own order, which varies between
    processes, the flatbuffer's constants came out in another order in 2 processes of 6 on
    LeNet): the two flatbuffers are byte-identical on every zoo model at its test size (below) and
    on the cases of ``tests/test_tflite.py::test_fast_conversion_is_byte_identical_to_lce_convert_keras_model``.
    The save skips the gradient functions of custom-gradient ops (`_SAVE_OPTIONS`), which inference
    never reads.
    The checks ``convert_keras_model`` makes first (a Keras model, a float32 dtype policy, a known
    target) raise `lqbench.errors.ConfigValueError`/``ConfigTypeError`` here. If the fast path
    raises (e.g. a model whose inputs have no ``save_spec``, or a function reading a resource
    that is not a variable), `to_flatbuffer` warns (`ConversionWarning`) and returns
    ``lce.convert_keras_model``'s flatbuffer, its graphdef fallback included.

    Measured on this project's 2-core x86 host (seconds per conversion; untrained W1A1 zoo models at
    the sizes of ``tests/test_tflite_rewrite.py``, 32x32x3 inputs, rewritten as `convert` rewrites
    them; ``python bench/conversion_time.py``; every pair of flatbuffers byte-identical):

    | model (test size)                      | layers | ``convert_keras_model`` | `to_flatbuffer` |
    |----------------------------------------|-------:|------------------------:|----------------:|
    | binarynet_mlp (hidden_units=[256, 256])|     10 |  0.87 |  0.21 (4.1x) |
    | lenet                                  |     13 |  0.68 |  0.20 (3.4x) |
    | binarynet_cnn (width_multiplier=0.25)  |     27 |  2.43 |  0.76 (3.2x) |
    | vgg_small (width_multiplier=0.25)      |     24 |  1.87 |  0.43 (4.3x) |
    | vgg19 (width_multiplier=0.125)         |     48 |  5.96 |  2.69 (2.2x) |
    | resnet20 (width=8)                     |    120 |  7.60 |  1.67 (4.5x) |
    | reactnet_a (width_multiplier=0.125)    |    118 |  8.84 |  2.33 (3.8x) |
    | mobilenet_v2 (width_multiplier=0.35)   |    118 | 11.63 |  2.63 (4.4x) |
    | total                                  |        | 39.89 | 10.92 (3.7x) |

    What remains is one trace of the model, writing its variables and LCE's conversion itself.

    !!! example
        ```python
        pathlib.Path("model.tflite").write_bytes(lqbench.tflite.to_flatbuffer(model))
        ```
    """
    _check_convertible(model, target)
    try:
        return _saved_model_flatbuffer(model, target)
    except Exception as error:  # noqa: BLE001  (any failure of the fast path: LCE's own conversion decides)
        first_line = (str(error).strip().splitlines() or [""])[0][:160]
        warnings.warn(f"lqbench.tflite: the fast conversion failed ({type(error).__name__}: {first_line}); "
                      "converting with larq_compute_engine.convert_keras_model", ConversionWarning, stacklevel=2)
    return _keras_model_flatbuffer(model, target)


def _resolve(result: analysis.Analysis, bconv: int) -> tuple[list[str], list[analysis.LayerFinding], str | None]:
    """Binary layer names that converted, fallbacks, and a count-mismatch message."""
    binary = result.with_status(analysis.BINARY)
    unknown = result.with_status(analysis.UNKNOWN)
    misconverted_convs = [
        f for f in result.with_status(analysis.MISCONVERTED) if f.type == "QuantConv2D" and f.kernel_bits == 1
    ]
    fallbacks = result.with_status(analysis.FALLBACK)
    converted = [f.layer for f in binary]
    expected = len(binary) + len(misconverted_convs)
    mismatch = None
    if unknown:
        if bconv == expected + len(unknown):
            converted += [f.layer for f in unknown]
        elif bconv == expected:
            for f in unknown:
                f.status = analysis.FALLBACK
                f.reason += " (and no LceBconv2d was produced for it)"
            fallbacks = fallbacks + unknown
        else:
            mismatch = (
                f"{bconv} LceBconv2d for {expected} layers expected to convert and "
                f"{len(unknown)} undecided ({', '.join(f.layer for f in unknown)})"
            )
    elif bconv != expected:
        mismatch = f"{bconv} LceBconv2d in the flatbuffer, {expected} expected from the Keras layers"
        if bconv < expected:
            mismatch += ": some binary layers fell back to float for a reason the rules do not know"
    return converted, fallbacks, mismatch


def _report(checked: Audit, flatbuffer: bytes, path) -> ConversionReport:
    """The conversion report of ``flatbuffer`` (made from ``checked.model``), before verification."""
    result = checked.analysis
    counts = analysis.op_counts(flatbuffer)
    bconv, bmaxpool = counts.get("LceBconv2d", 0), counts.get("LceBMaxPool2d", 0)
    converted, fallbacks, mismatch = _resolve(result, bconv)
    errors = result.with_status(analysis.MISCONVERTED)
    notes = list(result.notes)
    if checked.rewrites is not None:
        notes.extend(checked.rewrites.notes)
    if bmaxpool != result.expected_bmaxpool:
        notes.append(f"{bmaxpool} LceBMaxPool2d in the flatbuffer, {result.expected_bmaxpool} expected")
    notes.extend(f"{f.layer} ({f.type}): {f.reason}" for f in result.with_status(analysis.FLOAT_KERNEL))
    notes.extend(f"{f.layer}: {f.reason}" for f in result.with_status(analysis.BINARY) if f.reason)
    return ConversionReport(
        path=str(path) if path is not None else None,
        target=checked.target,
        size_bytes=len(flatbuffer),
        op_counts=counts,
        binary_layers=len(result.binary_layers),
        expected_bconv=len(result.with_status(analysis.BINARY))
        + sum(f.type == "QuantConv2D" and f.kernel_bits == 1 for f in errors),
        bconv=bconv,
        expected_bmaxpool=result.expected_bmaxpool,
        bmaxpool=bmaxpool,
        converted=converted,
        fallbacks=fallbacks,
        errors=errors,
        pool_fallbacks=[p for p in result.pools if not p.binary],
        count_mismatch=mismatch,
        rewrite=checked.rewrite,
        rewrites=list(checked.rewrites.rewrites) if checked.rewrites else [],
        rewrites_declined=list(checked.rewrites.declined) if checked.rewrites else [],
        weight_bytes=analysis.weight_bytes(flatbuffer),
        notes=notes,
    )


def _size_float_twin(report: ConversionReport, model, float_model, float_path, target: str) -> None:
    """Convert the float twin (given, or `float_twin` of ``model``) for its size; a model that
    cannot be cloned still converts, with the reason in ``report.float_note``."""
    try:
        twin = float_model if float_model is not None else float_twin(model)
        float_flatbuffer = to_flatbuffer(twin, target)
    except Exception as error:  # noqa: BLE001  (any clone/convert failure of the twin is reported, not raised)
        first_line = (str(error).strip().splitlines() or [""])[0][:120]
        report.float_note = f"not available ({type(error).__name__}: {first_line})"
        return
    report.float_size_bytes = len(float_flatbuffer)
    if float_path is not None:
        pathlib.Path(float_path).write_bytes(float_flatbuffer)


# --------------------------------------------------------------------------- step 3: verify


def _verify(report: ConversionReport, checked: Audit, flatbuffer: bytes, sample_inputs) -> None:
    """LCE vs the original Keras model (ties apart, calibrated copy on ties) into ``report``."""
    try:
        inputs = sample_inputs if sample_inputs is not None else random_inputs(checked.original)
    except ValueError as error:
        report.verify_kernel = f"not run ({error})"
        return
    if checked.model is not checked.original:
        feed = [np.asarray(x, np.float32) for x in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]
        feed = feed if len(feed) > 1 else feed[0]
        ours = checked.model(feed, training=False)
        theirs = checked.original(feed, training=False)
        report.rewrite_keras_diff = max(
            float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
            for a, b in zip(ours if isinstance(ours, (list, tuple)) else [ours],
                            theirs if isinstance(theirs, (list, tuple)) else [theirs])
        )

    def convert_copy(copy: tf.keras.Model) -> bytes:
        return to_flatbuffer(audit(copy, checked.target, list(checked.kinds)).model, checked.target)

    try:
        check = verify_outputs(checked.original, flatbuffer, inputs, convert_fn=convert_copy)
    except RuntimeError as error:
        report.verify_kernel = f"not run ({error})"
        return
    best = check.exact_on or check
    report.verification = check
    report.max_abs_diff = check.exact_max_abs_diff if check.exact_on is not None else best.max_abs_diff
    report.max_abs_output = best.max_abs_output
    per_kernel = dict(best.diffs)
    if best is check.exact_on and all(d <= best.tolerance for d in best.tie_diffs.values()):
        for kernel, diff in best.tie_diffs.items():  # tied samples that match count as matches
            per_kernel[kernel] = max(diff, per_kernel.get(kernel, 0.0))
    report.kernel_diffs, report.kernel_failures = per_kernel, dict(check.failures)
    report.verify_kernel = ", ".join(per_kernel) or None
    report.verify_samples = check.samples
    report.verified_on = best.on if check.exact_on is not None or best.diffs else None
    report.tied_samples, report.tie_max_abs_diff = check.tied_samples, check.tie_max_abs_diff
    report.verdict, report.misconverted_kernels = check.verdict, check.misconverted


# --------------------------------------------------------------------------- step 4: enforce


def _warn(report: ConversionReport) -> None:
    for finding in report.errors:
        warnings.warn(f"lqbench.tflite: MIS-CONVERTED {finding}", ConversionWarning, stacklevel=3)
    if report.unavoidable_fallbacks:
        warnings.warn(f"lqbench.tflite: {len(report.unavoidable_fallbacks)} binary layer(s) have no LCE binary op "
                      "and run as float ops: " + "; ".join(map(str, report.unavoidable_fallbacks)),
                      ConversionWarning, stacklevel=3)
    for finding in report.avoidable_fallbacks:
        warnings.warn(f"lqbench.tflite: binary layer falls back to float: {finding}", ConversionWarning, stacklevel=3)
    for pool in report.pool_fallbacks:
        warnings.warn(f"lqbench.tflite: float max-pool {pool.layer}: {pool.reason}", ConversionWarning, stacklevel=3)
    if report.count_mismatch:
        warnings.warn(f"lqbench.tflite: {report.count_mismatch}", ConversionWarning, stacklevel=3)
    if report.verdict == "inconclusive":
        warnings.warn("lqbench.tflite: every verification sample has sign ties, in the model and in its calibrated "
                      "copy: exactness not established", ConversionWarning, stacklevel=3)


def enforce(report: ConversionReport, fallback: str | None = None, allow_fallback: bool | None = None) -> None:
    """Raise `ConversionError` for a mis-conversion (always) or a fallback the policy refuses.

    ``fallback`` is one of `FALLBACK_POLICIES` (default ``"unavoidable"``: only binary layers LCE
    has no binary op for may run as float ops); ``allow_fallback=True``/``False`` is the older
    spelling of ``"any"``/``"none"``.
    """
    policy = fallback_policy(fallback, allow_fallback)
    report.fallback_policy = policy
    if report.errors:
        names = ", ".join(f"{f.layer} ({f.reason})" for f in report.errors)
        raise ConversionError(f"mis-converted layer(s), outputs would be wrong: {names}", report)
    if report.misconverted_kernels:
        kernels = ", ".join(f"{k} kernel by up to {d:.3g}" for k, d in report.misconverted_kernels.items())
        raise ConversionError(
            f"LCE outputs differ from Keras on samples without sign ties ({kernels}; outputs up to "
            f"{report.max_abs_output:.3g}): the converted model computes another function", report)
    if policy == "any":
        return
    refused = report.fallbacks if policy == "none" else report.avoidable_fallbacks
    if refused:
        names = "; ".join(f"{f.layer} ({f.type}): {f.reason}" for f in refused)
        kind = " (fallback='none')" if policy == "none" else " that LCE could run as binary ops"
        raise ConversionError(
            f"{len(refused)} binary layer(s) fall back to float ops{kind}: {names} "
            "(pass fallback='any' / --fallback any to convert anyway)",
            report,
        )
    if report.count_mismatch and report.bconv < report.expected_bconv:
        raise ConversionError(f"{report.count_mismatch} (pass fallback='any' / --fallback any to convert anyway)",
                              report)


# --------------------------------------------------------------------------- all four


def convert(
    model: tf.keras.Model,
    path: str | os.PathLike | None,
    target: str = "arm",
    allow_fallback: bool | None = None,
    sample_inputs: np.ndarray | Sequence[np.ndarray] | None = None,
    float_model: tf.keras.Model | None = None,
    float_path: str | os.PathLike | None = None,
    verify: bool = True,
    compare_float: bool = True,
    rewrite: bool | Sequence[str] = True,
    fallback: str | None = None,
) -> ConversionReport:
    """Rewrite ``model`` for LCE, convert it, write it to ``path`` and report what came out.

    # Arguments
        model: a Keras (tf-keras) model with Larq layers.
        path: where to write the ``.tflite`` file (None: do not write).
        target: ``"arm"`` (phones, Raspberry Pi, x86 host) or ``"xcore"``.
        allow_fallback: the older spelling of ``fallback``: True is ``"any"``, False ``"none"``.
        sample_inputs: inputs for the Keras/LCE comparison, batch first (default: 4
            standard-normal samples). Each sample runs as a batch of 1.
        float_model: the float twin to size (default: `float_twin(model)`).
        float_path: also write the float twin's flatbuffer there.
        verify: run the LCE interpreter against Keras (every binary kernel, ties apart).
        compare_float: convert the float twin to report its size.
        rewrite: rewrite the model into the form LCE accelerates first (`lqbench.tflite.rewrite`;
            True: every kind, or a list of `lqbench.tflite.rewriting.KINDS`); each rewrite is listed in
            ``report.rewrites``. All are exact except ``sign_at_zero_as_sign``, which changes the
            outputs only at sign ties (pre-sign values exactly 0; the verification keeps them apart).
        fallback: which binary layers may run as float ops (`FALLBACK_POLICIES`):
            ``"unavoidable"`` (default: only those LCE has no binary op for, reasons in
            ``report.fallbacks``), ``"any"``, or ``"none"`` (strict).

    # Raises
        ConversionError: mis-converted layers or outputs (always), fallbacks the ``fallback``
            policy refuses, or fewer LceBconv2d than binary layers expected to convert (unless
            ``fallback="any"``).
        ConfigValueError: an unknown ``target``, ``fallback`` policy or rewrite kind, or both
            ``fallback`` and ``allow_fallback``.
        ConfigTypeError: ``model`` is not a Keras model, ``rewrite`` is not a bool or a list of kinds.
    """
    policy = fallback_policy(fallback, allow_fallback)
    checked = audit(model, target, rewrite)
    flatbuffer = to_flatbuffer(checked.model, target)
    report = _report(checked, flatbuffer, path)
    if compare_float:
        _size_float_twin(report, model, float_model, float_path, target)
    else:
        report.float_note = "not requested"
    if verify:
        _verify(report, checked, flatbuffer, sample_inputs)
    report.fallback_policy = policy
    _warn(report)
    enforce(report, policy)
    if path is not None:
        pathlib.Path(path).write_bytes(flatbuffer)
    return report


# --------------------------------------------------------------------------- loading


def load_model(path: str | os.PathLike) -> tf.keras.Model:
    """Load a saved Keras model with lqbench's custom objects (`lqbench.experiment.load_model`)."""
    return _load_model(path)