"""Deploy lqbench models with Larq Compute Engine: convert, verify, benchmark on host and device.

- `convert(model, path)` -> `ConversionReport`: the model rewritten into the form LCE accelerates
  (`rewrite`: binary dense/1D layers as binary 2D convolutions, batch norm before max-pools),
  the LCE flatbuffer, op counts, binary layers that became `LceBconv2d`, silent float fallbacks
  with reasons (by default only those LCE has no binary op for convert: ``fallback="unavoidable"``), size vs the float twin (and why when below 25x), and the LCE interpreter against
  Keras with sign ties kept apart from mis-conversions (`verify`).
- `benchmark(path)` -> `BenchResult`: single-image latency on this host (labelled as such: x86
  numbers are not ARM numbers); `compare(binary, float)` -> `Comparison`.
- `AdbRunner`, `SshRunner`, `runner_for("adb:SERIAL" | "ssh:USER@HOST", binary)`: the same
  `BenchResult` from ``lce_benchmark_model`` on an Android phone or a Raspberry Pi.

!!! example
    ```python
    import lqbench, lqbench.tflite
    report = lqbench.tflite.convert(model, "model.tflite", float_path="model_float.tflite")
    print(report)
    print(lqbench.tflite.compare("model.tflite", "model_float.tflite", threads=1).ratio)
    ```
"""
from lqbench.tflite.analysis import LayerFinding, PoolFinding, analyze, op_counts, weight_bytes
from lqbench.tflite.benchmark import (
    KERNEL_CHOICES,
    BenchResult,
    Comparison,
    benchmark,
    check_flatbuffer,
    compare,
    host_label,
)
from lqbench.tflite.convert import (
    FALLBACK_POLICIES,
    Audit,
    ConversionError,
    ConversionReport,
    ConversionWarning,
    audit,
    convert,
    enforce,
    fallback_policy,
    float_twin,
    load_model,
    max_abs_difference,
    to_flatbuffer,
)
from lqbench.tflite.rewriting import RewriteResult, RewriteStep, rewrite
from lqbench.tflite.verification import Verification, calibrated_copy, sign_ties, verify
from lqbench.tflite.device import (
    AdbRunner,
    DeviceError,
    SshRunner,
    benchmark_flags,
    parse_benchmark_output,
    result_from_output,
    runner_for,
)

__all__ = [
    "FALLBACK_POLICIES",
    "AdbRunner",
    "Audit",
    "RewriteResult",
    "RewriteStep",
    "Verification",
    "audit",
    "calibrated_copy",
    "enforce",
    "fallback_policy",
    "rewrite",
    "sign_ties",
    "verify",
    "weight_bytes",
    "BenchResult",
    "Comparison",
    "ConversionError",
    "ConversionReport",
    "ConversionWarning",
    "DeviceError",
    "KERNEL_CHOICES",
    "LayerFinding",
    "PoolFinding",
    "SshRunner",
    "analyze",
    "benchmark",
    "benchmark_flags",
    "check_flatbuffer",
    "compare",
    "convert",
    "float_twin",
    "host_label",
    "load_model",
    "max_abs_difference",
    "op_counts",
    "parse_benchmark_output",
    "result_from_output",
    "runner_for",
    "to_flatbuffer",
]
