r"""Convert a Larq model with Larq Compute Engine, and check what came out.

`convert` writes the LCE flatbuffer and returns a `ConversionReport`:

- the operator histogram of the flatbuffer (`LceBconv2d`, `LceQuantize`, `CONV_2D`, ...);
- how many binary Keras layers (1-bit input *and* kernel quantizers) became `LceBconv2d`, and
  how many max-pools became `LceBMaxPool2d`, predicted by `lqbench.tflite.analysis.analyze`
  and cross-checked against the flatbuffer's counts;
- every binary layer that silently fell back to float ops, with the reason;
- the file size next to the float twin's (the same architecture with every quantizer removed);
- the largest absolute difference between the LCE interpreter and Keras,
  \\(\max_{i,j} |f_{LCE}(x_i)_j - f_{Keras}(x_i)_j|\\), on single-image batches (the converter
  fixes the batch size to 1).

Fallbacks are warned about (`ConversionWarning`); with ``allow_fallback=False`` they raise a
`ConversionError`. A mis-conversion (ternary input quantizers) raises in every case: the
converted model computes a different function.

!!! example
    ```python
    report = lqbench.tflite.convert(model, "model.tflite")
    print(report)               # op counts, binary layers, sizes, max difference
    report.to_dict()["size_bytes"]
    ```
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import sys
import tempfile
import warnings
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from lqbench.tflite import analysis

KERNELS = ("default", "indirect", "reference")


class ConversionError(ValueError):
    """A binary layer fell back to float (``allow_fallback=False``) or was mis-converted.

    ``report`` holds the full `ConversionReport`; no file was written.
    """

    def __init__(self, message: str, report: "ConversionReport | None" = None):
        super().__init__(message)
        self.report = report


class ConversionWarning(UserWarning):
    """A binary layer falls back to float ops, or a binary op is slower than it could be."""


@dataclasses.dataclass
class ConversionReport:
    """What `convert` produced. ``str(report)`` is a readable summary, `to_dict` is JSON-ready."""

    path: str | None
    target: str
    size_bytes: int
    op_counts: dict[str, int]
    binary_layers: int  # Keras layers with 1-bit input and kernel quantizers
    expected_bconv: int  # of those, the ones the rules say become LceBconv2d
    bconv: int  # LceBconv2d ops in the flatbuffer
    expected_bmaxpool: int
    bmaxpool: int  # LceBMaxPool2d ops in the flatbuffer
    converted: list[str] = dataclasses.field(default_factory=list)  # names of binary layers -> LceBconv2d
    fallbacks: list[analysis.LayerFinding] = dataclasses.field(default_factory=list)
    errors: list[analysis.LayerFinding] = dataclasses.field(default_factory=list)
    pool_fallbacks: list[analysis.PoolFinding] = dataclasses.field(default_factory=list)
    count_mismatch: str | None = None
    float_size_bytes: int | None = None
    float_note: str = ""
    max_abs_diff: float | None = None
    max_abs_output: float | None = None
    kernel_diffs: dict[str, float] = dataclasses.field(default_factory=dict)
    kernel_failures: dict[str, str] = dataclasses.field(default_factory=dict)
    verify_kernel: str | None = None
    verify_samples: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def size_ratio(self) -> float | None:
        """Float twin size / binary size (how many times smaller the LCE model is)."""
        if not self.float_size_bytes or not self.size_bytes:
            return None
        return self.float_size_bytes / self.size_bytes

    @property
    def ok(self) -> bool:
        """No fallback, no mis-conversion, counts agree."""
        return not (self.fallbacks or self.errors or self.count_mismatch)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["size_ratio"] = self.size_ratio
        data["ok"] = self.ok
        return data

    def __str__(self) -> str:
        def kb(n):
            return f"{n / 1024:,.1f} KiB" if n is not None else "n/a"

        lines = [f"LCE conversion (target {self.target})" + (f" -> {self.path}" if self.path else "")]
        size = f"  size: {kb(self.size_bytes)}"
        if self.float_size_bytes:
            size += f"; float twin {kb(self.float_size_bytes)} ({self.size_ratio:.1f}x smaller)"
        elif self.float_note:
            size += f"; float twin: {self.float_note}"
        lines.append(size)
        lines.append(
            f"  binary layers: {self.binary_layers}; LceBconv2d in flatbuffer: {self.bconv} "
            f"(expected {self.expected_bconv}); LceBMaxPool2d: {self.bmaxpool} (expected {self.expected_bmaxpool})"
        )
        lines.append("  ops: " + ", ".join(f"{name} x{count}" for name, count in self.op_counts.items()))
        if self.max_abs_diff is not None:
            per_kernel = ", ".join(f"{k} {d:.3g}" for k, d in self.kernel_diffs.items())
            lines.append(
                f"  max |LCE - Keras| = {self.max_abs_diff:.3g} over {self.verify_samples} sample(s) "
                f"(max |output| {self.max_abs_output:.3g}; per kernel: {per_kernel})"
            )
            for kernel, reason in self.kernel_failures.items():
                lines.append(f"  kernel {kernel} cannot run this model: {reason}")
        elif self.verify_kernel:
            lines.append(f"  verification: {self.verify_kernel}")
        if self.count_mismatch:
            lines.append(f"  COUNT MISMATCH: {self.count_mismatch}")
        for finding in self.errors:
            lines.append(f"  ERROR (mis-converted): {finding}")
        for finding in self.fallbacks:
            lines.append(f"  FALLBACK to float: {finding}")
        for pool in self.pool_fallbacks:
            lines.append(f"  float max-pool: {pool.layer}: {pool.reason}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- float twin

_QUANTIZER_KEYS = ("input_quantizer", "kernel_quantizer", "depthwise_quantizer", "pointwise_quantizer")
_CONSTRAINT_KEYS = ("kernel_constraint", "depthwise_constraint", "pointwise_constraint")


def _is_quantizer(obj) -> bool:
    import larq as lq

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
    `Activation` layers whose activation is a quantizer become linear. Latent weights are
    copied, so the twin computes \\(f(x; w)\\) where the binary model computes
    \\(f(sign(x); sign(w))\\). Only functional and sequential models can be cloned.
    """
    twin = tf.keras.models.clone_model(model, clone_function=_float_layer)
    _copy_weights(model, twin)
    return twin


# --------------------------------------------------------------------------- verification


@contextlib.contextmanager
def native_stderr():
    """Collect what native code (TFLite, LCE kernels) writes to file descriptor 2.

    Yields a list that holds the captured lines once the block exits; kernel errors such as
    "Grouped binary convolutions are not supported with this kernel" only appear there.
    """
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(capture.read().decode(errors="replace").splitlines())


def kernel_error(error: Exception, native_lines: Sequence[str] = ()) -> str:
    """One line saying why a kernel could not run: the native ERROR line when there is one."""
    native = [l.split("ERROR:", 1)[-1].strip() for l in native_lines if "ERROR" in l]
    native = [l for l in native if "failed to prepare" not in l and "delegate" not in l] or native
    if native:
        return native[0][:200]
    lines = [l.strip() for l in str(error).strip().splitlines() if l.strip()]
    return (lines or [type(error).__name__])[-1][:200]


def _interpreter(flatbuffer: bytes, kernel: str = "default", threads: int = 1, xnnpack: bool = False):
    import larq_compute_engine as lce

    if kernel not in KERNELS:
        raise ValueError(f"unknown binary kernel {kernel!r}; allowed: {', '.join(KERNELS)}")
    return lce.testing.Interpreter(
        flatbuffer,
        num_threads=threads,
        use_reference_bconv=kernel == "reference",
        use_indirect_bgemm=kernel == "indirect",
        use_xnnpack=xnnpack,
    )


def _as_list(x) -> list[np.ndarray]:
    return [np.asarray(a, dtype=np.float32) for a in (x if isinstance(x, (list, tuple)) else [x])]


def random_inputs(model: tf.keras.Model, n: int = 4, seed: int = 0) -> list[np.ndarray]:
    """``n`` standard-normal samples per model input (batch dimension first)."""
    rng = np.random.default_rng(seed)
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    for shape in shapes:
        if any(d is None for d in shape[1:]):
            raise ValueError(f"model input shape {shape} has unknown dimensions: pass sample_inputs")
    return [rng.standard_normal((n, *shape[1:])).astype(np.float32) for shape in shapes]


@dataclasses.dataclass
class Verification:
    """LCE interpreter vs Keras on the same single-image batches, for every binary kernel."""

    diffs: dict[str, float]  # kernel -> max |LCE - Keras|
    failures: dict[str, str]  # kernel -> why it could not run the model
    max_abs_output: float
    samples: int

    @property
    def max_abs_diff(self) -> float | None:
        return max(self.diffs.values()) if self.diffs else None


def max_abs_difference(model: tf.keras.Model, flatbuffer: bytes, inputs, kernels: Sequence[str] = KERNELS) -> Verification:
    r"""\(\max_{i,j} |f_{LCE}(x_i)_j - f_{Keras}(x_i)_j|\) per binary kernel, on batches of one.

    Keras runs with ``training=False``; every kernel of ``kernels`` that can run the model is
    compared (they are different code paths: one can be wrong where another is right), the
    others are listed in ``failures`` with the native error line.
    """
    inputs = _as_list(inputs)
    n = inputs[0].shape[0]
    samples = [[x[i : i + 1] for x in inputs] for i in range(n)]
    keras_outputs = [_as_list(model(s if len(s) > 1 else s[0], training=False)) for s in samples]
    scale = max(float(np.max(np.abs(o))) for outs in keras_outputs for o in outs)
    diffs, failures = {}, {}
    for kernel in kernels:
        with native_stderr() as native:
            try:
                interpreter = _interpreter(flatbuffer, kernel)
                lce_outputs = [_as_list(interpreter.interpreter.predict(s)) for s in samples]
            except (RuntimeError, ValueError) as error:
                failure = error
            else:
                failure = None
        if failure is not None:
            failures[kernel] = kernel_error(failure, native)
            continue
        diff = 0.0
        for ours, theirs in zip(lce_outputs, keras_outputs):
            for a, b in zip(ours, theirs):
                diff = max(diff, float(np.max(np.abs(a.reshape(b.shape) - b))))
        diffs[kernel] = diff
    if not diffs:
        raise RuntimeError(
            "the LCE interpreter cannot run the model: " + "; ".join(f"{k}: {v}" for k, v in failures.items())
        )
    return Verification(diffs=diffs, failures=failures, max_abs_output=scale, samples=n)


# --------------------------------------------------------------------------- conversion


def to_flatbuffer(model: tf.keras.Model, target: str = "arm") -> bytes:
    """The bare LCE conversion (no analysis, no checks): flatbuffer bytes, batch size 1."""
    return _lce_convert(model, target)


def _lce_convert(model: tf.keras.Model, target: str) -> bytes:
    import larq_compute_engine as lce

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Saved-model conversion failed")
        return lce.convert_keras_model(model, target=target)


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


def convert(
    model: tf.keras.Model,
    path: str | os.PathLike | None,
    target: str = "arm",
    allow_fallback: bool = False,
    sample_inputs: np.ndarray | Sequence[np.ndarray] | None = None,
    float_model: tf.keras.Model | None = None,
    float_path: str | os.PathLike | None = None,
    verify: bool = True,
    compare_float: bool = True,
) -> ConversionReport:
    """Convert ``model`` with LCE, write it to ``path`` and report what came out.

    # Arguments
        model: a Keras (tf-keras) model with Larq layers.
        path: where to write the ``.tflite`` file (None: do not write).
        target: ``"arm"`` (phones, Raspberry Pi, x86 host) or ``"xcore"``.
        allow_fallback: when False, a binary layer that becomes float ops raises
            `ConversionError`; when True it is a warning and an entry of ``report.fallbacks``.
        sample_inputs: inputs for the Keras/LCE comparison, batch first (default: 4
            standard-normal samples). Each sample runs as a batch of 1.
        float_model: the float twin to size (default: `float_twin(model)`).
        float_path: also write the float twin's flatbuffer there.
        verify: run the LCE interpreter against Keras (every binary kernel).
        compare_float: convert the float twin to report its size.

    # Raises
        ConversionError: mis-converted layers (always), fallbacks (unless ``allow_fallback``),
            or fewer LceBconv2d than binary layers expected to convert.
    """
    if target not in analysis.TARGETS:
        raise ValueError(f"unknown target {target!r}; allowed: {', '.join(analysis.TARGETS)}")
    if not isinstance(model, tf.keras.Model):
        raise ValueError(f"convert needs a tf.keras.Model, got {type(model).__name__}")
    result = analysis.analyze(model, target)
    flatbuffer = _lce_convert(model, target)
    counts = analysis.op_counts(flatbuffer)
    bconv, bmaxpool = counts.get("LceBconv2d", 0), counts.get("LceBMaxPool2d", 0)
    converted, fallbacks, mismatch = _resolve(result, bconv)
    errors = result.with_status(analysis.MISCONVERTED)
    pool_fallbacks = [p for p in result.pools if not p.binary]
    notes = list(result.notes)
    if bmaxpool != result.expected_bmaxpool:
        notes.append(f"{bmaxpool} LceBMaxPool2d in the flatbuffer, {result.expected_bmaxpool} expected")
    notes.extend(f"{f.layer} ({f.type}): {f.reason}" for f in result.with_status(analysis.FLOAT_KERNEL))
    if any(f.reason for f in result.with_status(analysis.BINARY)):
        notes.extend(f"{f.layer}: {f.reason}" for f in result.with_status(analysis.BINARY) if f.reason)
    report = ConversionReport(
        path=str(path) if path is not None else None,
        target=target,
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
        pool_fallbacks=pool_fallbacks,
        count_mismatch=mismatch,
        notes=notes,
    )

    try:
        if not compare_float:
            raise RuntimeError("not requested")
        twin = float_model if float_model is not None else float_twin(model)
        float_flatbuffer = _lce_convert(twin, target)
        report.float_size_bytes = len(float_flatbuffer)
        if float_path is not None:
            pathlib.Path(float_path).write_bytes(float_flatbuffer)
    except Exception as error:  # a model that cannot be cloned still converts
        first_line = (str(error).strip().splitlines() or [""])[0][:120]
        report.float_note = "not requested" if not compare_float else f"not available ({type(error).__name__}: {first_line})"

    if verify:
        try:
            inputs = sample_inputs if sample_inputs is not None else random_inputs(model)
            check = max_abs_difference(model, flatbuffer, inputs)
            report.max_abs_diff, report.max_abs_output = check.max_abs_diff, check.max_abs_output
            report.kernel_diffs, report.kernel_failures = check.diffs, check.failures
            report.verify_kernel, report.verify_samples = ", ".join(check.diffs), check.samples
            tolerance = 1e-3 * max(1.0, check.max_abs_output)
            wrong = {k: d for k, d in check.diffs.items() if d > tolerance}
            if wrong:
                right = [k for k, d in check.diffs.items() if d <= tolerance]
                notes.append(
                    "LCE outputs differ from Keras: "
                    + ", ".join(f"{k} kernel by up to {d:.3g}" for k, d in wrong.items())
                    + f" (outputs up to {check.max_abs_output:.3g})"
                    + (f"; the {', '.join(right)} kernel(s) match" if right else "")
                    + ". Sign ties can cause this: with untrained BatchNorm statistics integer "
                    "binary sums hit exactly 0, where LCE and Larq break sign(0) differently; "
                    "a mis-conversion can too"
                )
        except RuntimeError as error:
            report.verify_kernel = f"not run ({error})"

    for finding in errors:
        warnings.warn(f"lqbench.tflite: MIS-CONVERTED {finding}", ConversionWarning, stacklevel=2)
    for finding in report.fallbacks:
        warnings.warn(f"lqbench.tflite: binary layer falls back to float: {finding}", ConversionWarning, stacklevel=2)
    for pool in pool_fallbacks:
        warnings.warn(f"lqbench.tflite: float max-pool {pool.layer}: {pool.reason}", ConversionWarning, stacklevel=2)
    if mismatch:
        warnings.warn(f"lqbench.tflite: {mismatch}", ConversionWarning, stacklevel=2)

    if errors:
        names = ", ".join(f"{f.layer} ({f.reason})" for f in errors)
        raise ConversionError(f"mis-converted layer(s), outputs would be wrong: {names}", report)
    if not allow_fallback:
        if report.fallbacks:
            names = "; ".join(f"{f.layer} ({f.type}): {f.reason}" for f in report.fallbacks)
            raise ConversionError(
                f"{len(report.fallbacks)} binary layer(s) fall back to float ops: {names} "
                "(pass allow_fallback=True / --allow-fallback to convert anyway)",
                report,
            )
        if mismatch and bconv < report.expected_bconv:
            raise ConversionError(f"{mismatch} (pass allow_fallback=True to convert anyway)", report)
    if path is not None:
        pathlib.Path(path).write_bytes(flatbuffer)
    return report


# --------------------------------------------------------------------------- loading


def load_model(path: str | os.PathLike) -> tf.keras.Model:
    """Load a saved Keras model with lqbench's custom objects (`lqbench.experiment.load_model`)."""
    from lqbench.experiment import load_model as _load

    return _load(path)