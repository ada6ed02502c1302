r"""Single-image latency of LCE flatbuffers: on this host, and binary vs float.

`benchmark` times ``runs`` single-image inferences after ``warmup`` untimed ones with
`larq_compute_engine.testing.Interpreter` and reports the median and the 10th/90th
percentiles in ms. The host is usually x86: LCE's optimized aarch64 kernels do not exist
there, so the record is labelled ``host: x86_64 (not ARM latency)``; ARM numbers come from the
device runners in `lqbench.tflite.device`, which return the same `BenchResult`.

Binary kernels on the host (`lce.md`): ``default`` (ruy's portable path, multithreaded),
``indirect`` (indirect BGEMM, single-threaded, usually fastest here) and ``reference``
(loops). ``kernel="auto"`` times each briefly and keeps the fastest; kernels that cannot
run the model are skipped with the reason in ``result.skipped``. Float ops run on XNNPACK;
a model without binary ops reports kernel ``xnnpack``.

!!! example
    ```python
    result = lqbench.tflite.benchmark("model.tflite", threads=1, runs=50)
    print(result)   # median, p10-p90, kernel, threads, size, host label
    c = lqbench.tflite.compare("model.tflite", "model_float.tflite", threads=1)
    c.ratio         # binary ms / float ms
    ```
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import platform
import struct
import time
from typing import Any

import numpy as np

from lqbench.errors import ConfigValueError

from lqbench.tflite import analysis
from lqbench.tflite.convert import KERNELS, _interpreter, kernel_error, native_stderr

KERNEL_CHOICES = ("auto", *KERNELS)


def host_label() -> str:
    arch = platform.machine() or "unknown"
    arm = arch.lower() in ("aarch64", "arm64") or arch.lower().startswith("armv")
    return f"host: {arch}" + ("" if arm else " (not ARM latency)")


@dataclasses.dataclass
class BenchResult:
    r"""Latency of one model with one kernel and thread count.

    ``median_ms`` is the headline number on the host; ``lce_benchmark_model`` prints only a
    mean (and, in newer TF, the median), so device results may have ``median_ms=None``:
    `latency_ms` is the median when known, else the mean. ``low_ms``/``high_ms`` are the
    spread named by ``spread`` (``p10-p90`` on the host; ``p5-p95`` or ``min-max`` on devices).
    """

    model: str
    where: str
    kernel: str
    threads: int
    runs: int
    warmup: int
    mean_ms: float
    median_ms: float | None = None
    low_ms: float | None = None
    high_ms: float | None = None
    spread: str = ""
    std_ms: float | None = None
    init_ms: float | None = None
    first_ms: float | None = None
    size_bytes: int | None = None
    memory_delta_mb: float | None = None
    peak_memory_mb: float | None = None
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def latency_ms(self) -> float:
        return self.median_ms if self.median_ms is not None else self.mean_ms

    @property
    def statistic(self) -> str:
        return "median" if self.median_ms is not None else "mean"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["latency_ms"] = self.latency_ms
        data["statistic"] = self.statistic
        return data

    def __str__(self) -> str:
        spread = f" ({self.spread} {self.low_ms:.3f}-{self.high_ms:.3f})" if self.low_ms is not None else ""
        size = f", {self.size_bytes / 1024:,.1f} KiB" if self.size_bytes else ""
        text = (
            f"{self.model}: {self.statistic} {self.latency_ms:.3f} ms{spread}, kernel {self.kernel}, "
            f"{self.threads} thread(s), {self.runs} runs{size} [{self.where}]"
        )
        for kernel, reason in self.skipped.items():
            text += f"\n  skipped kernel {kernel}: {reason}"
        for note in self.notes:
            text += f"\n  note: {note}"
        return text


@dataclasses.dataclass
class Comparison:
    """Binary vs float latency and size of the same architecture."""

    binary: BenchResult
    float: BenchResult

    @property
    def ratio(self) -> float:
        """Binary latency / float latency (below 1: the binary model is faster)."""
        return self.binary.latency_ms / self.float.latency_ms

    @property
    def size_ratio(self) -> float | None:
        """Float size / binary size (how many times smaller the binary model is)."""
        if not self.binary.size_bytes or not self.float.size_bytes:
            return None
        return self.float.size_bytes / self.binary.size_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "binary": self.binary.to_dict(),
            "float": self.float.to_dict(),
            "binary_ms": self.binary.latency_ms,
            "float_ms": self.float.latency_ms,
            "ratio": self.ratio,
            "binary_bytes": self.binary.size_bytes,
            "float_bytes": self.float.size_bytes,
            "size_ratio": self.size_ratio,
        }


def _read(path) -> tuple[str, bytes]:
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no .tflite file at {path}")
    data = path.read_bytes()
    if data[4:8] != b"TFL3":
        raise ConfigValueError(f"{path} is not a TFLite flatbuffer (no TFL3 identifier)")
    check_flatbuffer(data, path)
    return path.name, data


def check_flatbuffer(data: bytes, where: str | os.PathLike = "flatbuffer") -> None:
    """Raise `ConfigValueError` (a `ValueError`, one line) unless ``data`` is a whole, consistent TFLite model.

    The TFLite interpreter trusts its input: a truncated or corrupt file makes it read past
    the buffer (a segmentation fault, not an exception). Every table, vector and string of
    the model is therefore read once in Python first (bounds-checked), and every index the
    interpreter follows (operator codes, tensors, buffers, external buffer offsets) is checked
    against what exists.
    """
    schema = analysis.tflite_schema
    size = len(data)

    def bad(reason: str) -> ValueError:
        return ConfigValueError(f"{where}: truncated or corrupt TFLite flatbuffer ({size} bytes): {reason}; "
                          "convert the model again (`lqbench convert`)")

    if size < 16 or data[4:8] != b"TFL3":
        raise bad("too short or no TFL3 identifier")
    root = int.from_bytes(data[:4], "little")
    if not 8 <= root < size:
        raise bad(f"root table offset {root} outside the file")
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except (struct.error, IndexError, ValueError, TypeError, UnicodeDecodeError, OverflowError, MemoryError) as e:
        raise bad(f"cannot read the model tables ({type(e).__name__}: {e})") from None
    codes = len(model.operatorCodes or [])
    buffers = model.buffers or []
    if not model.subgraphs:
        raise bad("no subgraph")
    for b, buffer in enumerate(buffers):
        if buffer.offset and (buffer.offset < 0 or buffer.offset + buffer.size > size):
            raise bad(f"buffer {b} points to bytes {buffer.offset}..{buffer.offset + buffer.size} beyond the end")
    for g, graph in enumerate(model.subgraphs):
        tensors = graph.tensors or []
        for t, tensor in enumerate(tensors):
            if not 0 <= tensor.buffer < max(len(buffers), 1):
                raise bad(f"subgraph {g} tensor {t} names buffer {tensor.buffer} of {len(buffers)}")
        referenced = list(graph.inputs if graph.inputs is not None else []) + \
            list(graph.outputs if graph.outputs is not None else [])
        for o, op in enumerate(graph.operators or []):
            if not 0 <= op.opcodeIndex < codes:
                raise bad(f"subgraph {g} operator {o} has operator code {op.opcodeIndex} of {codes}")
            referenced += [i for i in list(op.inputs if op.inputs is not None else []) +
                           list(op.outputs if op.outputs is not None else []) if i != -1]
        for index in referenced:
            if not 0 <= int(index) < len(tensors):
                raise bad(f"subgraph {g} uses tensor {int(index)} of {len(tensors)}")


def _check_counts(threads: int, runs: int, warmup: int) -> None:
    if int(threads) < 1:
        raise ConfigValueError(f"threads must be >= 1, got {threads}")
    if int(runs) < 1:
        raise ConfigValueError(f"runs must be >= 1, got {runs}")
    if int(warmup) < 0:
        raise ConfigValueError(f"warmup must be >= 0, got {warmup}")


class _Session:
    """One interpreter with fixed random inputs; ``once()`` times a single inference."""

    def __init__(self, flatbuffer: bytes, kernel: str, threads: int, xnnpack: bool, seed: int = 0):
        start = time.perf_counter()
        interpreter = _interpreter(flatbuffer, kernel if kernel in KERNELS else "default", threads, xnnpack)
        rng = np.random.default_rng(seed)
        self.inputs = [rng.standard_normal(shape).astype(np.float32) for shape in interpreter.input_shapes]
        self.predict = interpreter.interpreter.predict
        self.init = time.perf_counter() - start
        self.first = self.once()

    def once(self) -> float:
        start = time.perf_counter()
        self.predict(self.inputs)
        return time.perf_counter() - start


def _time(flatbuffer: bytes, kernel: str, threads: int, runs: int, warmup: int, xnnpack: bool):
    """(per-run seconds, init seconds, first-inference seconds); raises if the kernel fails."""
    session = _Session(flatbuffer, kernel, threads, xnnpack)
    for _ in range(warmup):
        session.once()
    times = np.array([session.once() for _ in range(runs)])
    return times, session.init, session.first


def _result(name, flatbuffer, label, threads, runs, warmup, times, init, first, skipped, notes) -> "BenchResult":
    ms = np.asarray(times) * 1e3
    return BenchResult(
        model=name,
        where=host_label(),
        kernel=label,
        threads=int(threads),
        runs=int(runs),
        warmup=int(warmup),
        mean_ms=float(ms.mean()),
        median_ms=float(np.median(ms)),
        low_ms=float(np.percentile(ms, 10)),
        high_ms=float(np.percentile(ms, 90)),
        spread="p10-p90",
        std_ms=float(ms.std()),
        init_ms=init * 1e3,
        first_ms=first * 1e3,
        size_bytes=len(flatbuffer),
        skipped=skipped,
        notes=notes,
    )


def benchmark(
    path: str | os.PathLike,
    threads: int = 1,
    runs: int = 50,
    warmup: int = 5,
    kernel: str = "auto",
    xnnpack: bool = True,
    probe_runs: int = 5,
) -> BenchResult:
    r"""Median single-image latency of a ``.tflite`` file on this host.

    # Arguments
        path: LCE or plain TFLite flatbuffer.
        threads: interpreter threads (the indirect BGEMM kernel itself is single-threaded).
        runs, warmup: timed and untimed inferences after a first inference.
        kernel: binary-conv kernel, one of `KERNEL_CHOICES`; ``auto`` times ``probe_runs``
            inferences with each and keeps the fastest. Ignored for models without binary ops.
        xnnpack: run float ops on the XNNPACK delegate.

    # Returns
        `BenchResult` with median and p10/p90 of the ``runs`` latencies in ms.
    """
    if kernel not in KERNEL_CHOICES:
        raise ConfigValueError(f"unknown kernel {kernel!r}; allowed: {', '.join(KERNEL_CHOICES)}")
    _check_counts(threads, runs, warmup)
    name, flatbuffer = _read(path)
    binary = "LceBconv2d" in analysis.op_counts(flatbuffer)
    skipped: dict[str, str] = {}
    notes: list[str] = []
    if not binary:
        candidates = ["default"]
    elif kernel == "auto":
        candidates = list(KERNELS)
    else:
        candidates = [kernel]
    if binary and len(candidates) > 1:
        probes = {}
        for candidate in candidates:
            with native_stderr() as native:
                try:
                    times, _, _ = _time(flatbuffer, candidate, threads, probe_runs, 1, xnnpack)
                except (RuntimeError, ValueError) as error:
                    failure = error
                else:
                    failure = None
            if failure is None:
                probes[candidate] = float(np.median(times))
            else:
                skipped[candidate] = kernel_error(failure, native)
        if not probes:
            raise ConfigValueError(f"no binary kernel can run {name} (a corrupt or unsupported model?): "
                                   + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
        candidates = [min(probes, key=probes.get)]
        notes.append(
            "auto kernel: " + ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in sorted(probes.items(), key=lambda kv: kv[1]))
        )
    chosen = candidates[0]
    with native_stderr() as native:
        try:
            times, init, first = _time(flatbuffer, chosen, threads, runs, warmup, xnnpack)
        except (RuntimeError, ValueError) as error:
            failure = error
        else:
            failure = None
    if failure is not None:
        raise RuntimeError(f"kernel {chosen} cannot run {name}: {kernel_error(failure, native)}") from failure
    label = chosen if binary else ("xnnpack" if xnnpack else "builtin")
    if binary and chosen == "indirect" and threads > 1:
        notes.append("the indirect BGEMM kernel is single-threaded: threads only speed up float ops")
    return _result(name, flatbuffer, label, threads, runs, warmup, times, init, first, skipped, notes)


def compare(
    binary_path: str | os.PathLike,
    float_path: str | os.PathLike,
    threads: int = 1,
    runs: int = 50,
    warmup: int = 5,
    kernel: str = "auto",
    xnnpack: bool = True,
    interleave: bool = True,
) -> Comparison:
    r"""Benchmark a binary flatbuffer and its float twin with the same settings.

    With ``interleave=True`` (default) the two models alternate inference by inference
    (binary, float, float, binary, ...), so on a shared or throttling machine both see the same
    conditions and the ratio \(t_{binary} / t_{float}\) of medians stays meaningful even when
    the absolute times drift. The binary kernel is chosen first (``auto`` probes every kernel).
    """
    if not interleave:
        return Comparison(
            binary=benchmark(binary_path, threads, runs, warmup, kernel, xnnpack),
            float=benchmark(float_path, threads, runs, warmup, kernel, xnnpack),
        )
    _check_counts(threads, runs, warmup)
    probe = benchmark(binary_path, threads, runs=3, warmup=1, kernel=kernel, xnnpack=xnnpack)
    (b_name, b_fb), (f_name, f_fb) = _read(binary_path), _read(float_path)
    with native_stderr() as native:
        try:
            b = _Session(b_fb, probe.kernel, threads, xnnpack)
            f = _Session(f_fb, "default", threads, xnnpack)
        except (RuntimeError, ValueError) as error:
            failure = error
        else:
            failure = None
    if failure is not None:
        raise RuntimeError(f"cannot run {b_name} / {f_name}: {kernel_error(failure, native)}") from failure
    for _ in range(warmup):
        b.once()
        f.once()
    b_times, f_times = np.empty(runs), np.empty(runs)
    for i in range(runs):
        if i % 2:
            f_times[i] = f.once()
            b_times[i] = b.once()
        else:
            b_times[i] = b.once()
            f_times[i] = f.once()
    f_binary = "LceBconv2d" in analysis.op_counts(f_fb)
    f_label = probe.kernel if f_binary else ("xnnpack" if xnnpack else "builtin")
    interleaved = ["interleaved with the other model, inference by inference"]
    return Comparison(
        binary=_result(b_name, b_fb, probe.kernel, threads, runs, warmup, b_times, b.init, b.first,
                       probe.skipped, probe.notes + interleaved),
        float=_result(f_name, f_fb, f_label, threads, runs, warmup, f_times, f.init, f.first, {}, interleaved),
    )
