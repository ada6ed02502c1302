r"""How a training step executes: XLA or TensorFlow's graph executor, chosen by measurement.

A Keras train step runs either as one XLA-compiled program (``compile(jit_compile=True)``) or
as a `tf.function` graph run op by op by TensorFlow's executor (oneDNN kernels on x86 CPUs).
Neither is faster everywhere: on a 2-core x86 CPU XLA is about 1.8x faster on dense binary
networks and 2.6-3.2x *slower* on convolutional ones (issue #13), and on GPUs the balance
differs again. So lqbench does not guess: ``xla = "auto"`` (the default of
`lqbench.ExperimentSpec`, ``--xla auto`` on the command line) times both modes on the run's
own trainer and batch shape before training and keeps the faster one.

| ``xla`` | what happens |
|---|---|
| ``"auto"`` | measure both modes (below) and take the one with the smaller estimated training time |
| ``"on"``   | XLA wherever the algorithm, optimizer and strategy support it, else graph mode |
| ``"off"``  | graph mode (`tf.function` without XLA) |

**The measurement** (`measure`): the trainer is compiled in each mode with a fresh Adam, fed
one synthetic batch of the real shape and dtypes (generated from a private NumPy generator, so
the run's random streams and data order are untouched), and run: the first call (tracing, and
for XLA compilation) is timed as ``first_step_s``; after one more warm-up call, the two modes'
steps alternate (off, on, off, on, ...) so that load drifts of the machine hit both alike,
between ``min_steps`` and ``max_steps`` steps each within a ``budget_s`` budget. The weights
(including batch-norm statistics and fixed feedback matrices) are restored afterwards; the
training optimizer is built afterwards by `lqbench.recipes.fit` as always. With
\\(N\\) the run's number of training steps, the estimated training time of mode \\(m\\) is

\\[ T_m = t^{first}_m + (N - 1)\, \operatorname{median}(t^{step}_m) \\]

and ``auto`` picks \\(\arg\min_m T_m\\): XLA's compilation time counts against it on short
runs. The decision and its evidence (the timings of both modes, \\(N\\), \\(T_m\\)) are
recorded in ``result.json`` (`ExecutionDecision.to_dict`, field ``execution``).

**Caching**: timings are kept per *configuration* (model, its arguments, binarization,
algorithm and its arguments, optimizer, batch shape, device, TensorFlow version and thread
settings; not the seed, learning rate or epochs) in this process and, when the caller gives a
folder, in ``<folder>/execution-cache.json``: the seeds of one configuration in a sweep, and a
restarted sweep, measure once.

**Where no measurement is made**: a method or optimizer without XLA support, and strategies
with several replicas on CPUs (XLA has no CPU collectives: `lqbench.distribute.supports_xla`)
run in graph mode; several GPU replicas keep the rule of `lqbench.distribute` (XLA on), so
that every worker of a multi-worker run takes the same decision without measuring.

**Threads**: TensorFlow's CPU thread pools are sized by `configure_threads` (``--threads`` on
the command line, or ``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS``); by default
TensorFlow uses one intra-op thread per core, which `bench/training_cost.py --part threads`
measures as the fastest setting here.

!!! example
    ```python
    import lqbench
    from lqbench import algorithms, execution, models
    model = models.build("lenet", (28, 28, 1), 10, lqbench.Binarization())
    trainer = algorithms.build("bp", model)
    decision = execution.decide("auto", trainer, batch_shape=(64, 28, 28, 1), num_classes=10,
                                total_steps=10 * 938)
    decision.jit_compile, decision.timings  # False, {'off': {...}, 'on': {...}} on a 2-core CPU
    ```
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import time
from typing import Any

import numpy as np
import tensorflow as tf

from lqbench import distribute, recipes, storage

__all__ = ["MODES", "ExecutionDecision", "parse_mode", "decide", "measure", "configuration_key", "spec_configuration",
           "configure_threads", "thread_settings", "CACHE_FILE"]

MODES = ("auto", "on", "off")
CACHE_FILE = "execution-cache.json"
#: The largest speed-up over graph mode XLA is assumed able to give when `measure` decides that a
#: run is too short to compile XLA at all (measured here: 1.8x on dense networks, slower on conv).
MAX_XLA_SPEEDUP = 3.0
_MEMORY_CACHE: dict[str, dict[str, Any]] = {}
_ALIASES = {True: "on", False: "off", "true": "on", "false": "off", "xla": "on", "graph": "off"}


def parse_mode(value: Any, field: str = "xla") -> str:
    """``value`` as one of `MODES` (``True``/``False`` mean ``"on"``/``"off"``); ValueError otherwise."""
    if isinstance(value, str) and value.lower() in MODES:
        return value.lower()
    if isinstance(value, (bool, str)) and (value if isinstance(value, bool) else value.lower()) in _ALIASES:
        return _ALIASES[value if isinstance(value, bool) else value.lower()]
    raise ValueError(f"{field}: {value!r} is not an execution mode; allowed: {', '.join(MODES)}")


@dataclasses.dataclass
class ExecutionDecision:
    """The execution mode of one run and why it was chosen.

    # Attributes
        requested: the mode asked for (`MODES`).
        jit_compile: whether the train step is XLA-compiled.
        reason: ``"measured"``, ``"cached"`` (measured earlier for the same configuration),
            ``"requested"``, or why XLA is not possible / not measured.
        timings: per mode (``"off"``, ``"on"``): ``first_step_s``, ``seconds_per_step``
            (median), ``step_seconds`` and, with ``total_steps``, ``estimated_total_s``.
        total_steps: training steps the estimate was made for.
        configuration: the cache key of the configuration.
        device: ``"GPU"`` when a GPU is visible, else ``"CPU"``.
        threads: TensorFlow's intra-/inter-op thread settings and ``TF_ENABLE_ONEDNN_OPTS``.
    """

    requested: str
    jit_compile: bool
    reason: str
    timings: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    total_steps: int | None = None
    configuration: str | None = None
    device: str = "CPU"
    threads: dict[str, Any] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    @property
    def mode(self) -> str:
        """``"on"`` (XLA) or ``"off"`` (graph)."""
        return "on" if self.jit_compile else "off"

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, **dataclasses.asdict(self)}

    def summary(self) -> str:
        """One line, e.g. ``graph (measured: 0.108 s/step vs XLA 0.346)``."""
        name = "XLA" if self.jit_compile else "graph"
        if self.reason in ("measured", "cached") and {"on", "off"} <= set(self.timings):
            on, off = self.timings["on"]["seconds_per_step"], self.timings["off"]["seconds_per_step"]
            return f"{name} ({self.reason}: graph {off:.4f} s/step, XLA {on:.4f} s/step)"
        return f"{name} ({self.reason})"


def thread_settings() -> dict[str, Any]:
    """TensorFlow's CPU thread settings in effect (0 = TensorFlow's default, one per core)."""
    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
            "cores": os.cpu_count(),
            "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")}


def configure_threads(threads: int | None = None, inter_op: int | None = None) -> dict[str, Any]:
    """Size TensorFlow's CPU thread pools; call before TensorFlow runs its first op.

    # Arguments
        threads: intra-op threads (threads one op, e.g. a convolution, may use); ``None`` or
            0 keeps TensorFlow's default (one per core).
        inter_op: threads running independent ops at once; ``None`` or 0 keeps the default.

    # Raises
        ValueError: a negative count, or TensorFlow already initialised with other settings.
    """
    for name, value in (("threads", threads), ("inter_op", inter_op)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{name}: {value!r} must be a non-negative integer (0: TensorFlow's default)")
    try:
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        if inter_op:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError as error:
        raise ValueError(f"threads: cannot change TensorFlow's thread pools after it started ({error})") from None
    return thread_settings()


def _device() -> str:
    return "GPU" if tf.config.list_physical_devices("GPU") else "CPU"


#: `ExperimentSpec` fields that do not change the cost of one training step.
_NOT_STEP_COST = ("name", "seeds", "grid", "xla", "learning_rate", "weight_decay", "schedule", "epochs",
                  "dataset", "data_dir", "augment", "init_from")


def spec_configuration(spec: dict[str, Any]) -> dict[str, Any]:
    """The fields of an `ExperimentSpec` dict that determine the cost of a training step (cache key)."""
    return {k: v for k, v in spec.items() if k not in _NOT_STEP_COST}


def configuration_key(config: dict[str, Any]) -> str:
    """A short hash of what determines step time: ``config`` plus device, TF version and threads."""
    full = {**config, "device": _device(), "tensorflow": tf.__version__, "threads": thread_settings()}
    return hashlib.sha1(json.dumps(full, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _synthetic_batch(element_spec, batch_size: int, num_classes: int):
    """One batch of ``element_spec``'s shapes and dtypes from a private generator."""
    rng = np.random.default_rng(12345)
    x_spec, y_spec = element_spec[0], element_spec[1]
    x_shape = [batch_size if d is None else d for d in x_spec.shape]
    x = tf.constant(rng.uniform(-1, 1, x_shape).astype(x_spec.dtype.as_numpy_dtype))
    y_shape = [batch_size if d is None else d for d in y_spec.shape]
    if len(y_shape) >= 2 and y_shape[-1] == num_classes and y_spec.dtype.is_floating:
        y = np.eye(num_classes)[rng.integers(0, num_classes, y_shape[0])]
    else:
        y = rng.integers(0, num_classes, y_shape)
    return x, tf.constant(y.astype(y_spec.dtype.as_numpy_dtype))


def measure(trainer: tf.keras.Model, element_spec, batch_size: int, num_classes: int, total_steps: int | None = None,
            min_steps: int = 3, max_steps: int = 10, budget_s: float = 3.0) -> dict[str, dict[str, Any]]:
    """Time ``trainer``'s train step in graph mode (``"off"``) and under XLA (``"on"``).

    ``element_spec``: the ``(x, y)`` element spec of the training data (batch dimension may be
    None; ``batch_size`` fills it). Graph mode is traced and timed first (``min_steps`` steps
    after one warm-up call). When a run of ``total_steps`` steps is too short for XLA to pay
    back its compilation even if it made every step `MAX_XLA_SPEEDUP` times faster (XLA
    compilation includes the graph's tracing, so it takes at least ``first_step_s`` of graph
    mode), XLA is not compiled and only ``"off"`` is returned, with ``"xla_skipped"`` saying
    why. Otherwise XLA is compiled, warmed up, and the two modes' steps alternate (off, on,
    off, on, ...) so that load drifts hit both alike, up to ``max_steps`` steps each, stopping
    after ``budget_s`` seconds once each mode has ``min_steps``. The trainer's weights are
    restored afterwards; it is left compiled with a throw-away optimizer (compile it again
    before training).
    """
    x, y = _synthetic_batch(element_spec, batch_size, num_classes)
    batches = tf.data.Dataset.from_tensors((x, y)).repeat()
    loss = (tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True) if y.shape.rank == 1
            else tf.keras.losses.CategoricalCrossentropy(from_logits=True))
    initial = trainer.get_weights()
    functions, timings = {}, {}

    def start(mode):
        trainer.compile(optimizer=tf.keras.optimizers.legacy.Adam(1e-4), loss=loss, jit_compile=mode == "on")
        function, iterator = trainer.make_train_function(force=True), iter(batches)
        begin = time.perf_counter()
        _sync(function(iterator))
        timings[mode] = {"first_step_s": time.perf_counter() - begin, "step_seconds": []}
        _sync(function(iterator))  # warm-up
        functions[mode] = (function, iterator)

    def step(mode):
        function, iterator = functions[mode]
        begin = time.perf_counter()
        _sync(function(iterator))
        timings[mode]["step_seconds"].append(time.perf_counter() - begin)

    try:
        start("off")
        for _ in range(min_steps):
            step("off")
        off = timings["off"]
        off["seconds_per_step"] = float(np.median(off["step_seconds"]))
        best_gain = (total_steps - 1) * off["seconds_per_step"] * (1 - 1 / MAX_XLA_SPEEDUP) if total_steps else None
        if best_gain is not None and best_gain <= off["first_step_s"]:
            off["xla_skipped"] = (f"{total_steps} steps x {off['seconds_per_step']:.4f} s: even {MAX_XLA_SPEEDUP:g}x "
                                  f"faster steps would save {best_gain:.2f} s, less than compiling "
                                  f"(>= {off['first_step_s']:.2f} s)")
            return timings
        try:
            start("on")
            began = time.perf_counter()
            while True:
                step("on")
                if len(timings["on"]["step_seconds"]) >= max_steps or (
                        len(timings["on"]["step_seconds"]) >= min_steps and time.perf_counter() - began >= budget_s):
                    break
                step("off")
        except (tf.errors.OpError, ValueError, TypeError, NotImplementedError) as error:  # e.g. an op without
            timings.pop("on", None)  # an XLA kernel: graph mode, and the reason recorded
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            off["xla_skipped"] = f"XLA failed: {message[:300]}"
    finally:
        trainer.set_weights(initial)
    for value in timings.values():
        value["seconds_per_step"] = float(np.median(value["step_seconds"]))
    return timings


def warm_up(trainer: tf.keras.Model, element_spec, batch_size: int, num_classes: int, jit_compile: bool) -> None:
    """Trace and run two steps of ``trainer`` in the chosen mode on a synthetic batch, then restore its weights.

    `decide` leaves a measured trainer in this state; a run decided without measuring (cached,
    requested, unsupported) is warmed up the same way, so that what a run's memory monitor sees
    (started after the decision) does not depend on whether this process measured the modes.
    """
    x, y = _synthetic_batch(element_spec, batch_size, num_classes)
    loss = (tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True) if y.shape.rank == 1
            else tf.keras.losses.CategoricalCrossentropy(from_logits=True))
    initial = trainer.get_weights()
    try:
        trainer.compile(optimizer=tf.keras.optimizers.legacy.Adam(1e-4), loss=loss, jit_compile=bool(jit_compile))
        function, iterator = trainer.make_train_function(force=True), iter(tf.data.Dataset.from_tensors((x, y)).repeat())
        for _ in range(2):
            _sync(function(iterator))
    finally:
        trainer.set_weights(initial)


def _sync(logs) -> None:
    """Wait for the step (fetching its outputs waits for a GPU too)."""
    for value in tf.nest.flatten(logs):
        np.asarray(value)


def _estimate(timings: dict[str, dict[str, Any]], total_steps: int | None) -> str:
    """The mode with the smaller estimated training time (steady state when ``total_steps`` is None)."""
    for value in timings.values():
        if total_steps:
            value["estimated_total_s"] = value["first_step_s"] + (total_steps - 1) * value["seconds_per_step"]
    if "on" not in timings:
        return "off"
    key = "estimated_total_s" if total_steps else "seconds_per_step"
    return min(("off", "on"), key=lambda m: timings[m][key])


def _usable(timings, total_steps) -> bool:
    """Whether cached ``timings`` decide a run of ``total_steps`` (graph-only ones: only as short runs)."""
    if not timings or "off" not in timings:
        return False
    if "on" in timings:
        return True
    off = timings["off"]
    if off.get("xla_skipped", "").startswith("XLA failed"):
        return True
    return bool(total_steps) and (total_steps - 1) * off["seconds_per_step"] * (1 - 1 / MAX_XLA_SPEEDUP) <= \
        off["first_step_s"]


def _read_cache(folder) -> dict[str, Any]:
    if folder is None:
        return {}
    path = pathlib.Path(folder) / CACHE_FILE
    try:
        value = json.loads(path.read_text())
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}  # missing or corrupt: measure again


def _write_cache(folder, key: str, timings) -> None:
    if folder is None:
        return
    try:
        cache = _read_cache(folder)
        cache[key] = timings
        storage.write_json(pathlib.Path(folder) / CACHE_FILE, cache)
    except OSError:
        pass  # a read-only results folder only loses the cache


def decide(
    requested: str,
    trainer: tf.keras.Model,
    *,
    element_spec=None,
    batch_shape: tuple | None = None,
    num_classes: int | None = None,
    total_steps: int | None = None,
    optimizer: str = "adam",
    strategy: tf.distribute.Strategy | None = None,
    configuration: dict[str, Any] | None = None,
    cache_dir: str | os.PathLike | None = None,
    **measure_kwargs,
) -> ExecutionDecision:
    """The execution mode for training ``trainer`` (see the module doc).

    # Arguments
        requested: ``"auto"``, ``"on"`` or ``"off"`` (or a bool).
        trainer: the model or `lqbench.algorithms` wrapper that will be trained (built).
        element_spec: ``(x, y)`` spec of the training batches; or ``batch_shape`` (of x, with
            the batch size) and integer labels.
        num_classes: number of classes (default: the trainer's output width).
        total_steps: training steps of the run (compilation time is weighed against them).
        optimizer: the `lqbench.methods` name (or an earlier `lqbench.recipes` alias; XLA support).
        strategy: the `tf.distribute` strategy (default: the current one).
        configuration: what identifies the configuration for the cache (default: no caching).
        cache_dir: folder of the on-disk cache (`CACHE_FILE`).
        **measure_kwargs: ``min_steps``, ``max_steps``, ``budget_s`` of `measure`.
    """
    start = time.perf_counter()
    decision = _decide(requested, trainer, element_spec, batch_shape, num_classes, total_steps, optimizer,
                       strategy, configuration, cache_dir, measure_kwargs)
    decision.seconds = time.perf_counter() - start
    return decision


def _decide(requested, trainer, element_spec, batch_shape, num_classes, total_steps, optimizer, strategy,
            configuration, cache_dir, measure_kwargs) -> ExecutionDecision:
    requested = parse_mode(requested)
    strategy = strategy or tf.distribute.get_strategy()
    base = dict(requested=requested, total_steps=total_steps, device=_device(), threads=thread_settings())
    unsupported = None
    if not getattr(trainer, "supports_xla", True):
        unsupported = f"algorithm {getattr(trainer, 'algorithm', type(trainer).__name__)!r} has no XLA support"
    elif not recipes.method_for(optimizer).supports_xla:
        unsupported = f"method {optimizer!r} has no XLA support"
    elif not distribute.supports_xla(strategy):
        unsupported = f"{strategy.num_replicas_in_sync} CPU replicas: XLA has no CPU collectives"
    if unsupported:
        return ExecutionDecision(jit_compile=False, reason=unsupported, **base)
    if requested != "auto":
        return ExecutionDecision(jit_compile=requested == "on", reason="requested", **base)
    if strategy.num_replicas_in_sync > 1:
        return ExecutionDecision(jit_compile=True, reason="several GPU replicas: XLA (not measured, so that "
                                 "every worker decides alike)", **base)
    num_classes = num_classes or int(trainer.outputs[0].shape[-1] if getattr(trainer, "outputs", None)
                                     else trainer.num_classes)
    if element_spec is None:
        if batch_shape is None:
            raise ValueError("decide: give element_spec or batch_shape")
        element_spec = (tf.TensorSpec([None, *batch_shape[1:]], tf.float32), tf.TensorSpec([None], tf.int32))
        batch_size = int(batch_shape[0])
    else:
        batch_size = int(batch_shape[0]) if batch_shape is not None else None
        if batch_size is None:
            raise ValueError("decide: batch_shape (at least its batch size) is needed with element_spec")
    key = None
    if configuration is not None:
        key = configuration_key({**configuration, "batch_size": batch_size,
                                 "x": element_spec[0].shape.as_list()[1:], "num_classes": num_classes})
    cached = _MEMORY_CACHE.get(key) if key else None
    if key and cached is None:
        cached = _read_cache(cache_dir).get(key)
    if _usable(cached, total_steps):
        timings = json.loads(json.dumps(cached))
        reason = "cached"
    else:
        timings = measure(trainer, element_spec, batch_size, num_classes, total_steps, **measure_kwargs)
        reason = "measured"
        if key:
            _MEMORY_CACHE[key] = json.loads(json.dumps(timings))
            _write_cache(cache_dir, key, timings)
    mode = _estimate(timings, total_steps)
    if "on" not in timings:
        reason += (": XLA failed to compile" if timings["off"].get("xla_skipped", "").startswith("XLA failed")
                   else ": run too short for XLA to pay back its compilation")
    return ExecutionDecision(jit_compile=mode == "on", reason=reason, timings=timings, configuration=key, **base)
