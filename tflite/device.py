r"""On-device latency with LCE's ``lce_benchmark_model`` on Android (adb) or a Raspberry Pi (ssh).

``lce_benchmark_model`` is TensorFlow Lite's ``benchmark_model`` with LCE's ops registered
(build it from the LCE repository or take ``lce_benchmark_model_{aarch64,android_arm64}``
from its releases). The runners copy it and the ``.tflite`` file to the device, run

    lce_benchmark_model --graph=M --num_threads=T --num_runs=N --warmup_runs=W
        --use_xnnpack=true --use_reference_bconv=false --use_indirect_bgemm=false
        --report_peak_memory_footprint=true

and parse its summary (`parse_benchmark_output`):

    Inference timings in us: Init: 3501, First inference: 156677, Warmup (avg): 43268.1, Inference (avg): 33071.8
    Memory footprint delta from the start of the tool (MB): init=4.58984 overall=7.82031

into the same `BenchResult` as the host benchmark (all times converted to ms). Commands are
argument lists run with timeouts; failures raise `DeviceError` with one line.

!!! example
    ```python
    runner = lqbench.tflite.AdbRunner(binary="lce_benchmark_model_android_arm64", serial="R58M")
    result = runner.run("model.tflite", threads=1, runs=50)
    runner = lqbench.tflite.runner_for("ssh:pi@raspberrypi.local", binary="lce_benchmark_model_aarch64")
    ```
"""
from __future__ import annotations

import os
import pathlib
import re
import shlex
import subprocess
from typing import Any

from lqbench.errors import ConfigValueError
from lqbench.tflite.benchmark import BenchResult

DEVICE_KERNELS = ("default", "indirect", "reference")

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TIMINGS = re.compile(
    rf"Inference timings in us: Init: (?P<init>{_NUMBER}), First inference: (?P<first>{_NUMBER}), "
    rf"Warmup \(avg\): (?P<warmup>{_NUMBER}), Inference \(avg\): (?P<avg>{_NUMBER})"
)
_MEMORY = re.compile(
    rf"Memory footprint delta from the start of the tool \(MB\): init=(?P<init>{_NUMBER}) overall=(?P<overall>{_NUMBER})"
)
_PEAK = re.compile(rf"(?:Overall )?[Pp]eak memory footprint \(MB\)[^:]*: (?P<peak>{_NUMBER})")
_STATS = re.compile(rf"count=(?P<count>\d+)(?P<rest>(?: \w+={_NUMBER})*)")


class DeviceError(RuntimeError):
    """A device benchmark failed: no device, no binary, non-zero exit or unreadable output."""


def _first_error(text: str) -> str:
    """The root-cause line of a failed run: the first ERROR line, else the last failure line."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    errors = [l for l in lines if re.search(r"\bERROR\b|\berror:", l)]
    if errors:
        return errors[0][:200]
    failures = [l for l in lines if re.search(r"fail|denied|not found|no such", l, re.I)]
    return failures[-1][:200] if failures else ""


def parse_benchmark_output(text: str) -> dict[str, Any]:
    r"""Numbers of a ``benchmark_model`` / ``lce_benchmark_model`` run, in microseconds and MB.

    Reads the ``Inference timings in us`` summary (values may be integers, decimals or
    ``1.04176e+06``), the statistics line of the timed runs printed just before it
    (``count=50 first=.. curr=.. min=.. max=.. avg=.. std=..`` and, in newer TF versions,
    ``p5=.. median=.. p95=..``), and the memory lines. Log prefixes (``INFO:``, logcat) are
    ignored.

    # Raises
        ValueError: no summary line (the message quotes the tool's own error if it printed one).
    """
    matches = list(_TIMINGS.finditer(text))
    if not matches:
        detail = _first_error(text)
        detail = f": {detail}" if detail else ""
        raise ValueError(f"no 'Inference timings in us' line in the benchmark output{detail}")
    summary = matches[-1]
    result: dict[str, Any] = {
        "init_us": float(summary["init"]),
        "first_us": float(summary["first"]),
        "warmup_avg_us": float(summary["warmup"]),
        "avg_us": float(summary["avg"]),
    }
    stats = list(_STATS.finditer(text[: summary.start()]))
    if stats:
        last = stats[-1]
        fields = dict(pair.split("=") for pair in last["rest"].split())
        result["count"] = int(last["count"])
        for key, value in fields.items():  # the summary's first/avg take precedence
            result.setdefault(f"{key}_us", float(value))
    memory = _MEMORY.search(text)
    if memory:
        result["memory_init_mb"] = float(memory["init"])
        result["memory_overall_mb"] = float(memory["overall"])
    peak = _PEAK.search(text)
    if peak:
        result["peak_memory_mb"] = float(peak["peak"])
    return result


def result_from_output(text: str, model: str, where: str, kernel: str, threads: int, runs: int, warmup: int,
                       size_bytes: int | None = None) -> BenchResult:
    """A `BenchResult` (ms) from the output of ``lce_benchmark_model``."""
    parsed = parse_benchmark_output(text)
    ms = {key[:-3]: value / 1e3 for key, value in parsed.items() if key.endswith("_us")}
    if "p5" in ms and "p95" in ms:
        low, high, spread = ms["p5"], ms["p95"], "p5-p95"
    elif "min" in ms and "max" in ms:
        low, high, spread = ms["min"], ms["max"], "min-max"
    else:
        low = high = None
        spread = ""
    return BenchResult(
        model=model,
        where=where,
        kernel=kernel,
        threads=int(threads),
        runs=int(parsed.get("count", runs)),
        warmup=int(warmup),
        mean_ms=ms["avg"],
        median_ms=ms.get("median"),
        low_ms=low,
        high_ms=high,
        spread=spread,
        std_ms=ms.get("std"),
        init_ms=ms["init"],
        first_ms=ms["first"],
        size_bytes=size_bytes,
        memory_delta_mb=parsed.get("memory_overall_mb"),
        peak_memory_mb=parsed.get("peak_memory_mb"),
    )


def benchmark_flags(graph: str, threads: int = 1, runs: int = 50, warmup: int = 5, kernel: str = "default",
                    xnnpack: bool = True, peak_memory: bool = True) -> list[str]:
    """Command-line flags of ``lce_benchmark_model`` for one run."""
    if kernel not in DEVICE_KERNELS:
        raise ConfigValueError(f"unknown kernel {kernel!r}; allowed: {', '.join(DEVICE_KERNELS)}")
    if int(threads) < 1 or int(runs) < 1 or int(warmup) < 0:
        raise ConfigValueError(f"need threads >= 1, runs >= 1, warmup >= 0; got {threads}, {runs}, {warmup}")

    def flag(value: bool) -> str:
        return "true" if value else "false"

    flags = [
        f"--graph={graph}",
        f"--num_threads={int(threads)}",
        f"--num_runs={int(runs)}",
        f"--warmup_runs={int(warmup)}",
        f"--use_xnnpack={flag(xnnpack)}",
        f"--use_reference_bconv={flag(kernel == 'reference')}",
        f"--use_indirect_bgemm={flag(kernel == 'indirect')}",
    ]
    if peak_memory:
        flags.append("--report_peak_memory_footprint=true")
    return flags


class _Runner:
    """Shared logic: copy once per model, run, parse, pick the fastest kernel for ``auto``."""

    remote_binary_name = "lce_benchmark_model"

    def __init__(self, binary: str | os.PathLike, remote_dir: str, timeout: float = 600.0):
        self.binary = pathlib.Path(binary) if binary else None
        self.remote_dir = remote_dir.rstrip("/")
        self.timeout = float(timeout)
        self._binary_pushed = False

    # subclasses: where, _check_device, _push(local, remote_dir), _shell(command list)
    @property
    def remote_binary(self) -> str:
        return f"{self.remote_dir}/{self.remote_binary_name}"

    def _run(self, command: list[str], what: str, timeout: float | None = None) -> str:
        try:
            completed = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout or self.timeout, check=False
            )
        except FileNotFoundError as error:
            raise DeviceError(f"{command[0]} not found on PATH ({what})") from error
        except subprocess.TimeoutExpired as error:
            raise DeviceError(f"{what} timed out after {error.timeout:g} s: {shlex.join(command)}") from error
        output = (completed.stdout or "") + (completed.stderr or "")
        if completed.returncode != 0:
            lines = [l.strip() for l in output.splitlines() if l.strip()]
            detail = _first_error(output) or (lines or ["no output"])[-1][:200]
            raise DeviceError(f"{what} failed (exit {completed.returncode}): {detail}")
        return output

    def _prepare(self, model: pathlib.Path) -> str:
        if self.binary is None or not self.binary.is_file():
            raise DeviceError(f"lce_benchmark_model binary not found: {self.binary} (pass --binary PATH)")
        if not model.is_file():
            raise DeviceError(f"no .tflite file at {model}")
        self._check_device()
        if not self._binary_pushed:
            self._push(self.binary, self.remote_binary)
            self._shell(["chmod", "+x", self.remote_binary], "chmod +x on the device")
            self._binary_pushed = True
        remote_model = f"{self.remote_dir}/{model.name}"
        self._push(model, remote_model)
        return remote_model

    def run(self, model: str | os.PathLike, threads: int = 1, runs: int = 50, warmup: int = 5,
            kernel: str = "default", xnnpack: bool = True, probe_runs: int = 5) -> BenchResult:
        """Benchmark ``model`` on the device; ``kernel="auto"`` probes every kernel first."""
        if kernel not in ("auto", *DEVICE_KERNELS):
            raise ConfigValueError(f"unknown kernel {kernel!r}; allowed: auto, {', '.join(DEVICE_KERNELS)}")
        model = pathlib.Path(model)
        remote_model = self._prepare(model)
        skipped, notes = {}, []
        if kernel == "auto":
            probes = {}
            for candidate in DEVICE_KERNELS:
                try:
                    output = self._benchmark(remote_model, threads, probe_runs, 1, candidate, xnnpack)
                    probes[candidate] = parse_benchmark_output(output)["avg_us"]
                except DeviceError as error:
                    skipped[candidate] = str(error)
            if not probes:
                raise DeviceError(f"no kernel ran {model.name} on {self.where}: " + "; ".join(skipped.values()))
            kernel = min(probes, key=probes.get)
            notes.append("auto kernel: " + ", ".join(f"{k} {v / 1e3:.3f} ms" for k, v in sorted(probes.items(), key=lambda kv: kv[1])))
        output = self._benchmark(remote_model, threads, runs, warmup, kernel, xnnpack)
        result = result_from_output(output, model.name, self.where, kernel, threads, runs, warmup,
                                    size_bytes=model.stat().st_size)
        result.skipped, result.notes = skipped, notes
        return result

    def _benchmark(self, remote_model, threads, runs, warmup, kernel, xnnpack) -> str:
        flags = benchmark_flags(remote_model, threads, runs, warmup, kernel, xnnpack)
        output = self._shell([self.remote_binary, *flags], f"lce_benchmark_model on {self.where}")
        if "Inference timings in us" not in output:
            # old adb versions return 0 even when the remote command failed
            try:
                parse_benchmark_output(output)
            except ValueError as error:
                raise DeviceError(f"lce_benchmark_model on {self.where}: {error}") from error
        return output


class AdbRunner(_Runner):
    """Runs ``lce_benchmark_model`` on an Android device through ``adb`` (optionally ``-s SERIAL``)."""

    def __init__(self, binary: str | os.PathLike, serial: str | None = None,
                 remote_dir: str = "/data/local/tmp", timeout: float = 600.0, adb: str = "adb"):
        super().__init__(binary, remote_dir, timeout)
        self.serial = serial
        self.adb = adb

    @property
    def where(self) -> str:
        return f"adb:{self.serial}" if self.serial else "adb"

    def _adb(self) -> list[str]:
        return [self.adb, *(["-s", self.serial] if self.serial else [])]

    def _check_device(self) -> None:
        try:
            state = self._run([*self._adb(), "get-state"], "adb get-state", timeout=30).strip()
        except DeviceError as error:
            raise DeviceError(f"no Android device {self.serial or ''} reachable: {error}".replace("  ", " ")) from error
        if state.splitlines()[-1:] != ["device"]:
            raise DeviceError(f"Android device {self.serial or ''} is not ready (adb get-state: {state or 'empty'})")

    def _push(self, local: pathlib.Path, remote: str) -> None:
        self._run([*self._adb(), "push", str(local), remote], f"adb push {local.name}")

    def _shell(self, command: list[str], what: str) -> str:
        return self._run([*self._adb(), "shell", shlex.join(command)], what)


class SshRunner(_Runner):
    """Runs ``lce_benchmark_model`` on a Linux board (e.g. Raspberry Pi, 64-bit OS) via ssh/scp."""

    def __init__(self, binary: str | os.PathLike, host: str, remote_dir: str = "/tmp/lqbench",
                 timeout: float = 600.0, ssh: str = "ssh", scp: str = "scp", options: tuple[str, ...] = ()):
        super().__init__(binary, remote_dir, timeout)
        if not host or host.startswith("-"):
            raise ConfigValueError(f"invalid ssh host {host!r}; expected USER@HOST")
        self.host = host
        self.ssh, self.scp = ssh, scp
        self.options = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15", *options]

    @property
    def where(self) -> str:
        return f"ssh:{self.host}"

    def _check_device(self) -> None:
        self._run([self.ssh, *self.options, self.host, shlex.join(["mkdir", "-p", self.remote_dir])],
                  f"ssh {self.host}", timeout=60)

    def _push(self, local: pathlib.Path, remote: str) -> None:
        self._run([self.scp, *self.options, str(local), f"{self.host}:{remote}"], f"scp {local.name} to {self.host}")

    def _shell(self, command: list[str], what: str) -> str:
        return self._run([self.ssh, *self.options, self.host, shlex.join(command)], what)


def runner_for(device: str, binary: str | os.PathLike, **kwargs) -> _Runner:
    """A runner from a device spec: ``adb``, ``adb:SERIAL`` or ``ssh:USER@HOST``."""
    if device == "adb" or device.startswith("adb:"):
        serial = device[4:] or None
        return AdbRunner(binary, serial=serial, **kwargs)
    if device.startswith("ssh:") and len(device) > 4:
        return SshRunner(binary, host=device[4:], **kwargs)
    raise ConfigValueError(f"unknown device {device!r}; allowed: adb, adb:SERIAL, ssh:USER@HOST")
