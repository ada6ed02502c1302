r"""Peak training memory and wall time of a training run (methods.md §3, paper 000 Table 9).

Two tools:

- `measure(target, **kwargs) -> Profile` runs a training job in a **fresh subprocess** and
  reports its peak memory above the baseline reached after the model was built:

  \\[ \text{training bytes} = \text{peak} - \text{baseline} \\]

  On a GPU, peak and baseline are the TensorFlow allocator's (``get_memory_info('GPU:0')``,
  statistics reset after the build). On CPU they are the process resident set: the baseline is
  ``VmRSS`` after the build, the peak the high-water mark ``VmHWM`` (reset to the current RSS
  after the build through ``/proc/self/clear_refs``; ``ru_maxrss`` where that is unavailable).
  The child runs with ``MALLOC_MMAP_THRESHOLD_=65536 MALLOC_TRIM_THRESHOLD_=0``: glibc's malloc
  otherwise keeps freed blocks in its heap, which hides memory freed segment by segment (the
  authors' PyTorch runs read 0.96x BP for DRTP with the default allocator, 0.63x with this one).

  ``target`` names a *setup* function, ``"package.module:function"`` or
  ``"path/to/script.py:function"`` (or the function itself if importable). The child calls
  ``train = setup(**kwargs)`` (build model and data, and warm up/compile if steady-state memory
  is wanted), records the baseline, then calls ``train()``, which trains and returns a dict
  (``"epochs"`` is used for the time per epoch; everything JSON-serialisable is kept in
  `Profile.result`).

- `MemoryMonitor`: the same peak/baseline measurement in the current process, as a context
  manager (the GPU allocator on a GPU, the process RSS high-water mark on CPU). Its
  ``pause()`` / ``resume()`` measure only some windows of the block (the peak is the largest
  over the windows).

**The allocator's cost.** Returning every freed block to the system costs speed: each large
tensor is a fresh ``mmap`` whose pages the kernel faults in and zeroes, every step. A CIFAR-10
ResNet-20 BP train step (batch 128, graph mode) takes 0.129-0.139 s with ``ALLOCATOR_ENV``
against 0.102-0.106 s with glibc's caching defaults (`set_allocator` can switch between the two
inside a running process). So a run's own process (`lqbench.experiment.run_isolated`) measures
its peak with the returning allocator only while the training does everything it will do (the
first epoch of each phase: tracing, steps, the validation pass, the checkpoints) and trains the
other epochs with the caching one; see `lqbench.experiment`.

!!! example
    ```python
    from lqbench import profiling
    p = profiling.measure("bench/training_cost.py:setup", method="drtp", model="mlp", epochs=1)
    print(p.training_bytes / 2**20, "MiB", p.time_per_epoch_s, "s/epoch")
    ```
"""
from __future__ import annotations

import ctypes
import dataclasses
import functools
import importlib
import importlib.util
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

from lqbench._lazy import lazy_module

tf = lazy_module("tensorflow")

__all__ = ["Profile", "MemoryMonitor", "measure", "rss_bytes", "peak_rss_bytes", "reset_peak_rss", "ALLOCATOR_ENV",
           "ALLOCATOR_MODES", "set_allocator"]

ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
#: glibc ``mallopt`` settings of `set_allocator`'s modes: ``"returning"`` is `ALLOCATOR_ENV`
#: (blocks of 64 KiB and more mapped on their own and unmapped when freed; the heap trimmed at
#: every free); ``"caching"`` is where glibc's own dynamic thresholds settle once large blocks
#: have been freed (blocks under 32 MiB from the heap, trimmed past 64 MiB of free top).
ALLOCATOR_MODES = {
    "returning": {_M_MMAP_THRESHOLD: int(ALLOCATOR_ENV["MALLOC_MMAP_THRESHOLD_"]),
                  _M_TRIM_THRESHOLD: int(ALLOCATOR_ENV["MALLOC_TRIM_THRESHOLD_"])},
    "caching": {_M_MMAP_THRESHOLD: 32 * 2**20, _M_TRIM_THRESHOLD: 64 * 2**20},
}


@functools.lru_cache(maxsize=1)
def _libc():
    """The C library's symbols when it is glibc (``mallopt`` and ``malloc_trim``), else None."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def set_allocator(mode: str) -> bool:
    """Switch this process's glibc ``malloc`` to ``mode`` (`ALLOCATOR_MODES`); False where it is not glibc.

    ``"returning"``: freed memory goes back to the system at once (the resident set follows
    the memory in use: what peak memory is measured with; slow for large tensors); what is
    cached so far is released first (``malloc_trim``). ``"caching"``: freed blocks are kept
    for reuse (fast; the resident set keeps the largest heap seen).

    !!! example
        ```python
        profiling.set_allocator("caching")    # train fast
        profiling.set_allocator("returning")  # then measure the peak of what follows
        ```
    """
    if mode not in ALLOCATOR_MODES:
        raise ValueError(f"set_allocator: unknown mode {mode!r}; allowed: {', '.join(ALLOCATOR_MODES)}")
    libc = _libc()
    if libc is None:
        return False
    ok = all(libc.mallopt(param, value) == 1 for param, value in ALLOCATOR_MODES[mode].items())
    if mode == "returning":
        libc.malloc_trim(0)
    return ok


@dataclasses.dataclass
class Profile:
    """Result of `measure`.

    # Attributes
        peak_bytes: peak memory during ``train()`` (allocator peak on GPU, VmHWM on CPU).
        baseline_bytes: memory after ``setup`` returned (model built).
        wall_time_s: wall time of ``train()``.
        epochs: epochs reported by ``train()`` (1 if it did not say).
        time_per_epoch_s: ``wall_time_s / epochs``.
        device: ``"GPU:0"`` or ``"cpu"``.
        peak_source: how the peak was read (``"tf_allocator"``, ``"VmHWM"``, ``"ru_maxrss"``).
        result: the JSON-serialisable dict returned by ``train()``.
    """

    peak_bytes: int
    baseline_bytes: int
    wall_time_s: float
    epochs: int
    time_per_epoch_s: float
    device: str = "cpu"
    peak_source: str = "VmHWM"
    result: dict = dataclasses.field(default_factory=dict)

    @property
    def training_bytes(self) -> int:
        """Peak above the baseline: the memory the training itself needed."""
        return max(0, self.peak_bytes - self.baseline_bytes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["training_bytes"] = self.training_bytes
        return d


def _status_field(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """Current resident set size of this process (bytes)."""
    value = _status_field("VmRSS")
    if value is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return value


def peak_rss_bytes() -> tuple[int, str]:
    """High-water mark of the resident set and where it was read (``VmHWM`` or ``ru_maxrss``)."""
    value = _status_field("VmHWM")
    if value is not None:
        return value, "VmHWM"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "ru_maxrss"


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs``); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _gpu_available() -> bool:
    if "tensorflow" not in sys.modules:
        return False
    return bool(tf.config.list_logical_devices("GPU"))


class MemoryMonitor:
    """Peak memory of a block of code in the current process.

    On a GPU (``device="GPU:0"``, the default when TensorFlow sees one) it resets and reads the
    TensorFlow allocator statistics; on CPU it resets and reads the process high-water mark.

    ``pause()`` ends a measured window (its peak is kept) and ``resume()`` starts another one
    (on CPU: the high-water mark is reset to the current resident set); what runs in between
    is not measured. The peak is the largest over the windows. On a GPU the allocator's
    statistics are exact and cost nothing, so both are no-ops there.

    !!! example
        ```python
        with MemoryMonitor() as mon:
            trainer.fit(ds, epochs=1)
        print(mon.training_bytes)
        ```
    """

    def __init__(self, device: str | None = None):
        if device is None:
            device = "GPU:0" if _gpu_available() else "cpu"
        self.device = device
        self.baseline_bytes = 0
        self.peak_bytes = 0
        self.peak_source = ""
        self.wall_time_s = 0.0
        self.paused = False
        self._held = 0

    def current_peak_bytes(self) -> int:
        """The peak so far (of the windows measured so far, the open one included)."""
        if self.device != "cpu":
            return int(tf.config.experimental.get_memory_info(self.device)["peak"])
        if self.paused:
            return self._held
        value, self.peak_source = peak_rss_bytes()
        return max(self._held, value)

    def pause(self) -> None:
        """End the current window, keeping its peak (CPU)."""
        if self.device == "cpu" and not self.paused:
            self._held = self.current_peak_bytes()
            self.paused = True

    def resume(self) -> None:
        """Start a new window: the high-water mark from the current resident set (CPU)."""
        if self.device == "cpu" and self.paused:
            reset_peak_rss()
            self.paused = False

    def __enter__(self):
        if self.device != "cpu":
            tf.config.experimental.reset_memory_stats(self.device)
            self.baseline_bytes = int(tf.config.experimental.get_memory_info(self.device)["current"])
            self.peak_source = "tf_allocator"
        else:
            reset_peak_rss()
            self.baseline_bytes = rss_bytes()
            self.paused, self._held = False, 0
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall_time_s = time.perf_counter() - self._start
        self.peak_bytes = self.current_peak_bytes()
        if self.device == "cpu" and not self.peak_source:
            self.peak_source = peak_rss_bytes()[1]
        return False

    @property
    def training_bytes(self) -> int:
        return max(0, self.peak_bytes - self.baseline_bytes)


def _target_string(target: str | Callable) -> str:
    if isinstance(target, str):
        if ":" not in target:
            raise ValueError(f"measure: target {target!r} must be 'module:function' or 'path.py:function'")
        return target
    module = getattr(target, "__module__", None)
    name = getattr(target, "__qualname__", None)
    if module is None or name is None or "<locals>" in name:
        raise ValueError(f"measure: target {target!r} is not an importable top-level function")
    if module == "__main__":
        path = getattr(sys.modules["__main__"], "__file__", None)
        if path is None:
            raise ValueError("measure: a target defined in an interactive __main__ cannot be imported by the child")
        return f"{os.path.abspath(path)}:{name}"
    return f"{module}:{name}"


def _load_target(target: str) -> Callable:
    where, _, name = target.rpartition(":")
    if where.endswith(".py"):
        spec = importlib.util.spec_from_file_location(pathlib.Path(where).stem + "_profiled", where)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        sys.path.insert(0, str(pathlib.Path(where).resolve().parent))
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    fn = module
    for part in name.split("."):
        fn = getattr(fn, part)
    return fn


def _child(spec_path: str, out_path: str) -> None:
    """Entry point of the measuring subprocess."""
    with open(spec_path) as f:
        spec = json.load(f)
    setup = _load_target(spec["target"])
    train = setup(**spec["kwargs"])
    device = "GPU:0" if _gpu_available() else "cpu"
    monitor = MemoryMonitor(device)
    with monitor:
        result = train()
    result = result if isinstance(result, dict) else {}
    epochs = int(result.get("epochs", 1) or 1)
    profile = Profile(
        peak_bytes=monitor.peak_bytes,
        baseline_bytes=monitor.baseline_bytes,
        wall_time_s=monitor.wall_time_s,
        epochs=epochs,
        time_per_epoch_s=monitor.wall_time_s / epochs,
        device=device,
        peak_source=monitor.peak_source,
        result=json.loads(json.dumps(result, default=lambda o: repr(o))),
    )
    with open(out_path, "w") as f:
        json.dump(dataclasses.asdict(profile), f)


def measure(
    target: str | Callable,
    *,
    env: dict[str, str] | None = None,
    allocator_env: bool = True,
    timeout: float | None = None,
    **kwargs,
) -> Profile:
    """Run ``setup(**kwargs)()`` in a fresh Python process and profile the training call.

    # Arguments
        target: ``"module:function"``, ``"path/to/file.py:function"`` or an importable
            function: the setup function (see the module docstring).
        env: extra environment variables for the child.
        allocator_env: set ``MALLOC_MMAP_THRESHOLD_=65536 MALLOC_TRIM_THRESHOLD_=0`` (CPU).
        timeout: seconds before the child is killed (`subprocess.TimeoutExpired`).
        **kwargs: JSON-serialisable arguments of the setup function.

    # Raises
        RuntimeError: the child failed (its last stderr lines are in the message).
    """
    target_string = _target_string(target)
    child_env = dict(os.environ)
    if allocator_env:
        child_env.update(ALLOCATOR_ENV)
    child_env.update(env or {})
    child_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="lqbench_profile_") as tmp:
        spec_path = os.path.join(tmp, "spec.json")
        out_path = os.path.join(tmp, "profile.json")
        with open(spec_path, "w") as f:
            json.dump({"target": target_string, "kwargs": kwargs}, f)
        # load this file directly: the child imports TensorFlow only if the target does
        code = (
            "import importlib.util, sys; "
            "s = importlib.util.spec_from_file_location('_lqbench_profiling_child', sys.argv[1]); "
            "m = importlib.util.module_from_spec(s); sys.modules[s.name] = m; s.loader.exec_module(m); "
            "m._child(sys.argv[2], sys.argv[3])"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code, os.path.abspath(__file__), spec_path, out_path],
            env=child_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0 or not os.path.exists(out_path):
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"measure: {target_string} failed with exit code {proc.returncode}:\n{tail}")
        with open(out_path) as f:
            data = json.load(f)
    return Profile(**data)
