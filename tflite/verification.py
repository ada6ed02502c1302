r"""Compare an LCE flatbuffer with its Keras model so that a sign tie can never hide or fake a mis-conversion.

A binary network signs integer sums. When a pre-sign value is exactly 0 (untrained batch norm
has \\(\mu = 0, \sigma^2 = 1\\), so every even binary sum of 0 stays 0) Larq and LCE break the tie
differently, the sign flips, and the difference propagates to the outputs: an untrained
`binarynet_cnn` differs from Keras by 1.44 for that reason alone. A single max-difference cannot
tell this from a mis-conversion. `verify` therefore:

1. finds, per sample, the **sign ties**: pre-sign values \\(x\\) of every sign quantizer (the inputs
   of layers with a sign ``input_quantizer``, of sign ``Activation`` layers and of sign quantizer
   layers, as ``Binarization(inputs="activations")`` builds them; any value at 0, `SignAtZero` included) whose sign changes
   within \\(\pm\delta\\), \\(q(x + \delta) \ne q(x - \delta)\\) with
   \\(\delta = 10^{-5} \max |x|\\) (exact zeros, near-zeros float rounding could flip, and the
   thresholds of shifted signs such as `RSign` alike);
2. compares LCE with Keras, per binary kernel, separately on the **tie-free** samples (a
   difference there beyond the tolerance is a mis-conversion) and on the tied ones (reported as
   ties, never as an error);
3. when that cannot establish exactness (every sample ties and some differ), converts and
   compares a **calibrated copy** as well: the same model and
   weights with each batch norm's moving statistics set to the statistics of the sample batch
   (one training-mode pass with momentum 0), the mean shifted by a random 1-10% of the standard
   deviation, so that integer sums no longer hit the threshold exactly. The conversion rules do not
   depend on the statistics (they only fold into the binary convolution), so a mis-conversion shows
   on the copy, and ties, if any remain, are excluded again.

The verdict is ``"mis-converted"`` when LCE differs from Keras beyond the tolerance on a tie-free
sample of the model or the copy (naming the kernels); ``"exact"`` when the model, else the copy,
has tie-free samples that all match, or only tied samples that all match (a tie that flips
nothing is harmless); ``"inconclusive"`` otherwise.

!!! example
    ```python
    check = verify(model, flatbuffer, inputs, convert_fn=lambda m: to_flatbuffer(m))
    check.verdict, check.max_abs_diff, check.tied_samples, check.tie_max_abs_diff
    ```
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import tempfile
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from lqbench._lazy import lazy_module
from lqbench.errors import ConfigValueError
from lqbench.tflite import analysis

#: LarqComputeEngine (loaded on first use: converting and interpreting need it, importing this does not).
lce = lazy_module("larq_compute_engine")

KERNELS = ("default", "indirect", "reference")
#: Relative half-width of the band around a sign threshold counted as a tie.
TIE_RELATIVE = 1e-5
#: A tie-free difference above ``RELATIVE_TOLERANCE * max(1, max |output|)`` is a mis-conversion.
RELATIVE_TOLERANCE = 1e-4


# --------------------------------------------------------------------------- interpreter


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
    if kernel not in KERNELS:
        raise ConfigValueError(f"unknown binary kernel {kernel!r}; allowed: {', '.join(KERNELS)}")
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
            raise ConfigValueError(f"model input shape {shape} has unknown dimensions: pass sample_inputs")
    return [rng.standard_normal((n, *shape[1:])).astype(np.float32) for shape in shapes]


def _feed(inputs: list[np.ndarray]):
    return inputs if len(inputs) > 1 else inputs[0]


# --------------------------------------------------------------------------- ties


def sign_layers(model: tf.keras.Model) -> list[tuple[tf.keras.layers.Layer, Callable]]:
    """(layer, sign quantizer) for every top-level layer that signs its input."""
    found = []
    for layer in model.layers:
        if analysis.signs_input(layer):
            found.append((layer, layer.input_quantizer))
        elif isinstance(layer, tf.keras.layers.Activation) and analysis.is_sign(layer.activation):
            found.append((layer, layer.activation))
        elif analysis.is_sign_layer(layer):  # Binarization(inputs="activations"): the sign is a layer
            found.append((layer, layer))
    return found


def sign_ties(model: tf.keras.Model, inputs, relative: float = TIE_RELATIVE) -> tuple[np.ndarray, dict[str, int]]:
    r"""Per sample, how many pre-sign values are ties; and per layer, how many over all samples.

    A value \\(x\\) of a sign quantizer's input ties when \\(q(x + \delta) \ne q(x - \delta)\\),
    \\(\delta = \text{relative} \cdot \max |x|\\) over that sample's tensor (a tensor of zeros ties
    everywhere).
    """
    inputs = _as_list(inputs)
    n = inputs[0].shape[0]
    layers = sign_layers(model)
    per_sample = np.zeros(n, dtype=np.int64)
    per_layer: dict[str, int] = {}
    if not layers:
        return per_sample, per_layer
    probe = tf.keras.Model(model.inputs, [layer.input for layer, _ in layers])
    values = probe(_feed(inputs), training=False)
    values = values if isinstance(values, (list, tuple)) else [values]
    for (layer, quantizer), x in zip(layers, values):
        x = tf.convert_to_tensor(x, tf.float32)
        axes = list(range(1, len(x.shape)))
        scale = tf.reduce_max(tf.abs(x), axis=axes, keepdims=True) if axes else tf.abs(x)
        delta = relative * scale + 1e-30
        flips = tf.not_equal(quantizer(x + delta), quantizer(x - delta)).numpy()
        counts = flips.reshape(n, -1).sum(axis=1)
        per_sample += counts
        if counts.sum():
            per_layer[layer.name] = int(counts.sum())
    return per_sample, per_layer


# --------------------------------------------------------------------------- calibrated copy


def calibrated_copy(model: tf.keras.Model, inputs, seed: int = 0) -> tf.keras.Model | None:
    r"""A copy of ``model`` whose batch norms hold the statistics of ``inputs`` (mean jittered).

    One pass in training mode with momentum 0 sets every moving mean and variance to the batch
    statistics at that layer; each mean then moves by \\(\pm u \sigma\\), \\(u \sim U(0.01, 0.1)\\).
    Returns None when the model has no batch norm (nothing to calibrate) or cannot be cloned.
    """
    try:
        copy = tf.keras.models.clone_model(model)
    except Exception:  # subclassed models cannot be cloned
        return None
    copy.set_weights(model.get_weights())
    norms = [l for l in analysis._walk(copy) if isinstance(l, tf.keras.layers.BatchNormalization)]
    if not norms:
        return None
    for bn in norms:
        bn.momentum = 0.0
    copy(_feed(_as_list(inputs)), training=True)
    rng = np.random.default_rng(seed)
    for bn in norms:
        mean, variance = bn.moving_mean.numpy(), bn.moving_variance.numpy()
        shift = rng.uniform(0.01, 0.1, mean.shape) * rng.choice([-1.0, 1.0], mean.shape)
        bn.moving_mean.assign((mean + shift * np.sqrt(variance + bn.epsilon)).astype(mean.dtype))
    return copy


# --------------------------------------------------------------------------- comparison


@dataclasses.dataclass
class Verification:
    """LCE interpreter vs Keras on single-image batches, ties separated, for every binary kernel."""

    diffs: dict[str, float]  # kernel -> max |LCE - Keras| over tie-free samples
    failures: dict[str, str]  # kernel -> why it could not run the model
    max_abs_output: float
    samples: int
    tied_samples: int = 0
    tie_diffs: dict[str, float] = dataclasses.field(default_factory=dict)  # over samples with ties
    tie_layers: dict[str, int] = dataclasses.field(default_factory=dict)  # layer -> tied values
    tolerance: float = 0.0
    on: str = "model"
    calibrated: "Verification | None" = None
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def tie_free_samples(self) -> int:
        return self.samples - self.tied_samples

    @property
    def max_abs_diff(self) -> float | None:
        """Largest tie-free difference (None when every sample ties)."""
        return max(self.diffs.values()) if self.diffs else None

    @property
    def tie_max_abs_diff(self) -> float | None:
        return max(self.tie_diffs.values()) if self.tie_diffs else None

    @property
    def misconverted(self) -> dict[str, float]:
        """Kernels whose tie-free outputs differ from Keras beyond the tolerance (model or copy)."""
        wrong = {k: d for k, d in self.diffs.items() if d > self.tolerance}
        if self.calibrated is not None:
            for k, d in self.calibrated.misconverted.items():
                wrong[k] = max(d, wrong.get(k, 0.0))
        return wrong

    @property
    def establishes_exactness(self) -> bool:
        """This comparison (not its copy) shows LCE = Keras: no tie-free sample differs, and there
        is a tie-free sample or every tied sample matches too (a tie that flips nothing is harmless)."""
        if any(d > self.tolerance for d in self.diffs.values()):
            return False
        if self.diffs:
            return True
        return bool(self.tie_diffs) and all(d <= self.tolerance for d in self.tie_diffs.values())

    @property
    def exact_on(self) -> "Verification | None":
        """The comparison that establishes exactness: the model, else its calibrated copy."""
        for check in (self, self.calibrated):
            if check is not None and check.establishes_exactness:
                return check
        return None

    @property
    def exact_max_abs_diff(self) -> float | None:
        """max |LCE - Keras| over the samples that establish exactness (tied ones too when they match)."""
        check = self.exact_on
        if check is None:
            return None
        values = list(check.diffs.values())
        if all(d <= check.tolerance for d in check.tie_diffs.values()):
            values += list(check.tie_diffs.values())
        return max(values)

    @property
    def verdict(self) -> str:
        if self.misconverted:
            return "mis-converted"
        return "exact" if self.exact_on is not None else "inconclusive"

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "calibrated"}
        data["calibrated"] = self.calibrated.to_dict() if self.calibrated is not None else None
        data.update(max_abs_diff=self.max_abs_diff, tie_max_abs_diff=self.tie_max_abs_diff,
                    exact_max_abs_diff=self.exact_max_abs_diff,
                    tie_free_samples=self.tie_free_samples, misconverted=self.misconverted, verdict=self.verdict)
        return data

    def summary(self) -> list[str]:
        """Readable lines (used by `ConversionReport.__str__`)."""
        lines = []
        for check in (self, self.calibrated):
            if check is None:
                continue
            label = "model" if check.on == "model" else "calibrated copy (batch-norm statistics of the samples)"
            line = f"{label}: {check.tie_free_samples}/{check.samples} tie-free sample(s)"
            if check.diffs:
                per_kernel = ", ".join(f"{k} {d:.3g}" for k, d in check.diffs.items())
                line += f", max |LCE - Keras| {check.max_abs_diff:.3g} ({per_kernel}; max |output| {check.max_abs_output:.3g})"
            if check.tied_samples:
                top = sorted(check.tie_layers.items(), key=lambda kv: -kv[1])[:3]
                where = ", ".join(f"{name} x{count}" for name, count in top)
                tie = check.tie_max_abs_diff
                line += (f"; {check.tied_samples} sample(s) with sign ties ({where}"
                         f"{', ...' if len(check.tie_layers) > 3 else ''})"
                         + (f", max |LCE - Keras| on them {tie:.3g} (ties, not errors)" if tie is not None else ""))
            lines.append(line)
            for kernel, reason in check.failures.items():
                lines.append(f"kernel {kernel} cannot run this model: {reason}")
            lines.extend(check.notes)
        return lines


def compare(model: tf.keras.Model, flatbuffer: bytes, inputs, kernels: Sequence[str] = KERNELS,
            on: str = "model") -> Verification:
    r"""\(\max_{i,j} |f_{LCE}(x_i)_j - f_{Keras}(x_i)_j|\) per binary kernel, tie-free and tied samples apart.

    Keras runs with ``training=False``; every kernel of ``kernels`` that can run the model is
    compared (they are different code paths: one can be wrong where another is right), the
    others are listed in ``failures`` with the native error line.

    # Raises
        RuntimeError: no kernel can run the flatbuffer.
    """
    inputs = _as_list(inputs)
    n = inputs[0].shape[0]
    ties, tie_layers = sign_ties(model, inputs)
    samples = [[x[i : i + 1] for x in inputs] for i in range(n)]
    keras_outputs = [_as_list(model(_feed(s), training=False)) for s in samples]
    scale = max(float(np.max(np.abs(o))) for outs in keras_outputs for o in outs)
    diffs, tie_diffs, failures = {}, {}, {}
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
        for i, (ours, theirs) in enumerate(zip(lce_outputs, keras_outputs)):
            diff = max(float(np.max(np.abs(a.reshape(b.shape) - b))) for a, b in zip(ours, theirs))
            bucket = tie_diffs if ties[i] else diffs
            bucket[kernel] = max(bucket.get(kernel, 0.0), diff)
    if not (diffs or tie_diffs):
        raise RuntimeError(
            "the LCE interpreter cannot run the model: " + "; ".join(f"{k}: {v}" for k, v in failures.items())
        )
    return Verification(
        diffs=diffs, failures=failures, max_abs_output=scale, samples=n, tied_samples=int((ties > 0).sum()),
        tie_diffs=tie_diffs, tie_layers=tie_layers, tolerance=RELATIVE_TOLERANCE * max(1.0, scale), on=on,
    )


def max_abs_difference(model: tf.keras.Model, flatbuffer: bytes, inputs, kernels: Sequence[str] = KERNELS) -> Verification:
    """`compare` without the calibrated copy (kept for callers of lqbench < 0.3)."""
    return compare(model, flatbuffer, inputs, kernels)


def verify(model: tf.keras.Model, flatbuffer: bytes, inputs, convert_fn: Callable[[tf.keras.Model], bytes] | None = None,
           kernels: Sequence[str] = KERNELS, calibrate: str = "auto", seed: int = 0) -> Verification:
    """`compare` ``model`` with ``flatbuffer``; on ties, also a calibrated copy (see the module doc).

    # Arguments
        model: the Keras model the flatbuffer must equal (the user's model, before any rewrite).
        flatbuffer: its LCE conversion.
        inputs: sample inputs, batch first; each sample runs as a batch of one.
        convert_fn: how ``flatbuffer`` was made from ``model`` (rewrite + LCE); applied to the
            calibrated copy. None: no calibrated copy.
        calibrate: ``"auto"`` (only when the model's own samples cannot establish exactness:
            every sample ties and some differ), ``"always"`` or ``"never"``.
    """
    if calibrate not in ("auto", "always", "never"):
        raise ConfigValueError(f"unknown calibrate {calibrate!r}; allowed: auto, always, never")
    check = compare(model, flatbuffer, inputs, kernels)
    wanted = calibrate == "always" or (calibrate == "auto" and not check.establishes_exactness
                                       and not check.misconverted)
    if not wanted or convert_fn is None:
        return check
    copy = calibrated_copy(model, inputs, seed=seed)
    if copy is None:
        check.notes.append("no calibrated copy (the model has no batch norm or cannot be cloned)")
        return check
    try:
        check.calibrated = compare(copy, convert_fn(copy), inputs, kernels, on="calibrated")
    except RuntimeError as error:
        check.notes.append(f"calibrated copy not verified: {error}")
    return check
