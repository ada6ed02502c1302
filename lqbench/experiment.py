"""Run one `ExperimentSpec` for one seed: train, select on validation, test, record.

`run(spec, seed, output_dir)` is the Python entry behind ``lqbench train`` and every
search, sweep and benchmark:

1. load the dataset's ``train`` / ``val`` / ``test`` splits (`lqbench.data`);
2. build the zoo model with the spec's `Binarization` (`lqbench.models`), or its full
   precision version when ``post_training_binarization`` is set (paper 003's naive
   baseline: train in float, binarize afterwards);
3. let the binarizing method transform it (`lqbench.methods`: continuous binarization turns
   activations into PCFs) and wrap it in the training algorithm (`lqbench.algorithms`: BP,
   DFA, DRTP, HSIC, SigpropTL), or in a `lqbench.distillation.Distiller` with the spec's teacher;
4. fit it with the method's phases (`lqbench.methods.fit`) in the spec's execution mode
   (``xla = "auto"``: the faster of XLA and graph mode, timed on this trainer and batch shape,
   `lqbench.execution`);
5. evaluate the final model and the best-on-validation weights on the test split;
6. save the trained model (``model.keras``, reloads with `load_model`), TensorBoard logs,
   the spec and a `RunResult` (``result.json``, written atomically).

A run whose loss becomes NaN or infinite stops at once and returns a `RunResult` with
``status="failed"`` and the reason; nothing else is lost. An interrupted single-phase run
resumes from its last finished epoch (Keras `BackupAndRestore`) when started again with the
same output folder; its `RunResult` then holds every epoch's history (not only the resumed
ones), the total training time of all its segments, ``resumptions`` (how many times it was
resumed) and the best-validation epoch over all epochs (the best weights are kept on disk
beside the backup until the run finishes).

Peak memory (`lqbench.profiling.MemoryMonitor`) is the peak above the memory held once the
model is built: TensorFlow's allocator on a GPU, the process's resident set (``VmHWM``) on
CPU. On CPU it is a property of the run only when the run has its process to itself:
`run_isolated` (what ``lqbench train`` and ``lqbench sweep`` use) starts one fresh process
per run; in a shared process, memory freed by earlier runs is reused and one-time runtime
costs fall on the first run (measured: 107-114 MiB first, 36-50 MiB later, for one
configuration). TensorFlow's CPU allocator statistics are no substitute: with oneDNN they
leave out every allocation under 256 KiB. ``memory_method`` says how each value was read.
"""
from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any

import numpy as np
import tensorflow as tf

import lqbench.models as models
from lqbench import algorithms, continuous, data, distillation, distribute, estimators, execution, methods  # noqa: F401
from lqbench import storage  # noqa: F401
from lqbench._keras_env import quiet_python_logs, verbose_requested
from lqbench.binarization import Binarization
from lqbench.callbacks import BestWeights
from lqbench.errors import ConfigValueError
from lqbench.profiling import ALLOCATOR_ENV, MemoryMonitor, peak_rss_bytes
from lqbench.results import RunResult
from lqbench.spec import ExperimentSpec


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


def run_dir(spec: ExperimentSpec, seed: int, output_dir: str | os.PathLike) -> pathlib.Path:
    """Where the run of ``spec`` with ``seed`` keeps its files (always inside ``output_dir``).

    Raises `ValueError` when the spec's name is not a plain folder name (``"../../escape"``,
    ``"a/b"``, ``".hidden"``): nothing is ever written outside ``output_dir``.
    """
    check_name(spec.name)
    return pathlib.Path(output_dir) / f"{spec.name}-{spec.key()}" / f"seed-{seed}"


def check_name(name: Any) -> str:
    """``name`` if it can name a run folder, else `ValueError` saying what is allowed."""
    if (not isinstance(name, str) or not name or name.startswith(".") or any(c in name for c in "/\\\0")
            or name.strip() != name):
        raise ConfigValueError(f"name {name!r} cannot name a run folder: it must be non-empty, must not start with '.' "
                         "or contain '/', '\\' (it becomes one folder inside --output)")
    return name


def load_model(path: str | os.PathLike) -> tf.keras.Model:
    """Load a model saved by `run` (``.keras``, ``.h5`` or SavedModel folder) with lqbench's objects.

    The zoo's layers, lqbench's estimators and the continuous-binarization layers are
    registered first so that every saved lqbench model deserialises.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}")
    if path.is_file() and path.suffix not in (".keras", ".h5", ".hdf5"):
        raise ConfigValueError(f"cannot load {path}: expected a .keras or .h5 file or a SavedModel folder")
    if path.is_dir() and not (path / "saved_model.pb").exists():
        raise ConfigValueError(f"{path} is a folder without saved_model.pb: not a SavedModel")
    try:
        return tf.keras.models.load_model(path, compile=False)
    except Exception as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigValueError(f"cannot load Keras model {path}: {message}") from error


def run(
    spec: ExperimentSpec,
    seed: int | None = None,
    output_dir: str | os.PathLike = "lqbench-results",
    verbose: int | str = 0,
    extra_callbacks: tuple = (),
    save_model: bool = True,
    strategy: tf.distribute.Strategy | None = None,
) -> RunResult:
    """Train and evaluate ``spec`` with ``seed`` (default: its first seed); see module doc.

    Under a multi-worker strategy only the chief writes to ``output_dir``; the other workers
    write to a scratch folder that is deleted when the run ends (their result's ``model_path``
    and ``log_dir`` are then ``None``).
    """
    strategy = strategy or tf.distribute.get_strategy()
    if distribute.is_chief(strategy):
        return _run(spec, seed, output_dir, verbose, extra_callbacks, save_model, strategy)
    scratch = tempfile.mkdtemp(prefix="lqbench-worker-")
    try:
        result = _run(spec, seed, scratch, verbose, extra_callbacks, save_model, strategy)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result.model_path = result.log_dir = None
    return result


@dataclasses.dataclass
class _Data:
    """The loaded splits of one run and what the model needs to know about them."""

    train: Any
    val: Any
    test: Any
    input_shape: tuple
    num_classes: int
    steps_per_epoch: int


def _run(spec, seed, output_dir, verbose, extra_callbacks, save_model, strategy) -> RunResult:
    """Named steps: start, load data, build, train, evaluate, save."""
    seed = spec.seeds[0] if seed is None else seed
    directory, result = _start(spec, seed, output_dir)
    method = methods.get(spec.method, **spec.method_args)
    loaded = _load_data(spec, seed)
    with strategy.scope():
        model, trainer = _build(spec, seed, loaded.input_shape, loaded.num_classes, method)
    result.params = int(model.count_params())
    result.footprint_bits = int(models.memory_footprint_bits(
        _deployed_model(spec, model, loaded.input_shape, loaded.num_classes)))
    timer = _EpochTimer()
    single_phase = not method.multi_phase
    # single phase: history, times and best weights survive interruptions beside the Keras backup
    # (written before it at each epoch end, so the record never lags the backup)
    best = _RunRecord(directory / BACKUP) if single_phase else BestWeights(monitor="val_accuracy", mode="max",
                                                                            restore=False)
    callbacks = _callbacks(spec, method, directory, timer, best, extra_callbacks)
    decision = execution.decide(spec.xla, trainer, element_spec=loaded.train.element_spec,
                                batch_shape=(spec.batch_size,), num_classes=loaded.num_classes,
                                total_steps=spec.epochs * loaded.steps_per_epoch, optimizer=spec.method,
                                strategy=strategy, configuration=execution.spec_configuration(spec.to_dict()),
                                cache_dir=output_dir)
    if not decision.reason.startswith("measured") and strategy.num_replicas_in_sync == 1:
        # enter the memory window as a measured run does
        execution.warm_up(trainer, loaded.train.element_spec, spec.batch_size, loaded.num_classes,
                          decision.jit_compile)
    tf.keras.utils.set_random_seed(seed)  # the same random streams whether or not the modes were timed
    result.jit_compile, result.execution = decision.jit_compile, decision.to_dict()
    memory = _run_memory_monitor()
    if single_phase:
        best.memory = memory
    start = time.perf_counter()
    try:
        history = _train(spec, method, trainer, loaded, callbacks, result.jit_compile, verbose, strategy, memory)
    except TrainingDiverged as error:
        result.error = str(error)
        result.history = _history(best.history if single_phase else timer.history)
        result.wall_time_s = time.perf_counter() - start + (best.previous_time_s if single_phase else 0.0)
        if single_phase:
            result.resumptions = best.resumptions
        result.save(directory / "result.json")
        return result
    result.wall_time_s = time.perf_counter() - start
    result.peak_memory_bytes, result.memory_method = memory.training_bytes, _memory_method(memory)
    result.history = _history(history.history)
    epoch_times = timer.epoch_times
    if single_phase:  # every segment of a resumed run, not only the last
        result.history = _history(best.history)
        result.wall_time_s += best.previous_time_s
        result.resumptions = best.resumptions
        result.peak_memory_bytes = max(result.peak_memory_bytes, best.previous_peak_bytes)
        epoch_times = best.epoch_times
    result.epochs_run = len(epoch_times)
    result.time_per_epoch_s = float(np.median(epoch_times)) if epoch_times else None
    model = _evaluate(spec, model, trainer, loaded, best, result)
    _save(model, directory, result, save_model)
    if single_phase:
        best.discard()  # the record of an interrupted run is no longer needed
    return result


def _start(spec: ExperimentSpec, seed: int, output_dir) -> tuple[pathlib.Path, RunResult]:
    """The run folder with the spec in it, a failed-until-finished `RunResult`, the seed set."""
    directory = run_dir(spec, seed, output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    spec.save(directory / "spec.toml")
    tf.keras.utils.set_random_seed(seed)
    return directory, RunResult(name=spec.name, spec_key=spec.key(), seed=seed, status="failed", spec=spec.to_dict())


def image_size(spec: ExperimentSpec, info) -> list[int] | None:
    """The image size a run uses: the spec's, else the model's smallest when the dataset's images are
    smaller (e.g. ``lenet`` on the 8x8 ``digits`` runs at 16x16), else the dataset's own (``None``)."""
    if spec.image_size:
        return list(spec.image_size)
    minimum = models.registry.entry(spec.model).min_input_size
    shape = info.input_shape
    if len(shape) == 3 and min(shape[0], shape[1]) < minimum:
        return [max(shape[0], minimum), max(shape[1], minimum)]
    return None


def _load_data(spec: ExperimentSpec, seed: int) -> _Data:
    info = data.info(spec.dataset, data_dir=spec.data_dir)
    size = image_size(spec, info)
    input_shape = tuple(size) + (info.input_shape[-1],) if size else info.input_shape
    load = dict(batch_size=spec.batch_size, data_dir=spec.data_dir, seed=seed, image_size=size)
    return _Data(
        train=data.load(spec.dataset, "train", augment=spec.augment, **load),
        val=data.load(spec.dataset, "val", **load),
        test=data.load(spec.dataset, "test", **load),
        input_shape=input_shape,
        num_classes=info.num_classes,
        steps_per_epoch=math.ceil(info.sizes["train"] / spec.batch_size),
    )


def _callbacks(spec, method, directory, timer, best, extra_callbacks) -> list:
    callbacks = [timer, _StopOnNonFinite(), tf.keras.callbacks.TensorBoard(str(directory / "logs"))]
    if not method.multi_phase:
        # Selection on validation and epoch-level resume apply to single-phase methods only: a
        # multi-phase method's last phase sign-projects and freezes kernels earlier epochs lack.
        callbacks += [best, tf.keras.callbacks.BackupAndRestore(str(directory / BACKUP))]
    return callbacks + list(extra_callbacks)


def _train(spec, method, trainer, loaded: _Data, callbacks, jit: bool, verbose, strategy, memory: MemoryMonitor):
    """`lqbench.methods.fit` under the run's memory monitor; the Keras history."""
    with memory, strategy.scope():
        history = methods.fit(
            trainer, loaded.train, method=method, epochs=spec.epochs, validation_data=loaded.val,
            learning_rate=spec.learning_rate, weight_decay=spec.weight_decay, schedule=spec.schedule,
            steps_per_epoch=loaded.steps_per_epoch, callbacks=callbacks, jit_compile=jit, verbose=verbose,
        )
    return history


def _evaluate(spec, model, trainer, loaded: _Data, best: BestWeights, result: RunResult):
    """Test accuracy of the final weights and of the best validation epoch's; returns the deployed model."""
    if spec.post_training_binarization:
        model = _binarize_post_training(spec, model, loaded.input_shape, loaded.num_classes)
        trainer = model
        best.best_weights = None  # the float weights are not the deployed model's
    trainer.compile(loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    result.test_accuracy = float(trainer.evaluate(loaded.test, verbose=0, return_dict=True)["accuracy"])
    if best.best_weights is not None:
        trainer.set_weights(best.best_weights)
        result.best_val_accuracy = best.best
        result.best_epoch = best.best_epoch + 1
        result.test_accuracy_best_val = float(trainer.evaluate(loaded.test, verbose=0, return_dict=True)["accuracy"])
    else:
        val_history = result.history.get("val_accuracy")
        if val_history:
            result.best_val_accuracy = float(np.nanmax(val_history))
        result.test_accuracy_best_val = result.test_accuracy
    return model


def _save(model, directory: pathlib.Path, result: RunResult, save_model: bool) -> None:
    if save_model:
        path = directory / "model.keras"
        model.save(path)
        result.model_path = str(path)
        result.saved_model_bytes = path.stat().st_size
    result.log_dir = str(directory / "logs")
    result.status = "ok"
    result.save(directory / "result.json")


def run_isolated(
    spec: ExperimentSpec,
    seed: int | None = None,
    output_dir: str | os.PathLike = "lqbench-results",
    verbose: int | str = 0,
    save_model: bool = True,
    timeout: float | None = None,
) -> RunResult:
    """`run` in a fresh Python process of its own (its output goes to this process's).

    Its peak memory is then the run's alone (the module doc), read with glibc told to return
    freed memory (`lqbench.profiling.ALLOCATOR_ENV`). The child writes ``result.json`` as `run`
    does; this returns it. A child that dies without one (killed, out of memory) raises
    `RuntimeError` with its exit status; Ctrl-C stops the child and raises KeyboardInterrupt.
    """
    seed = spec.seeds[0] if seed is None else seed
    directory = run_dir(spec, seed, output_dir)
    with tempfile.TemporaryDirectory(prefix="lqbench-run-") as tmp:
        spec_path = spec.save(pathlib.Path(tmp) / "spec.toml")
        error_path = pathlib.Path(tmp) / "error.json"
        env = {**os.environ, **ALLOCATOR_ENV, ISOLATED_VARIABLE: "1"}
        command = [sys.executable, "-c", "from lqbench.experiment import _child_main; _child_main()",
                   str(spec_path), str(seed), str(output_dir), str(verbose), "1" if save_model else "0",
                   str(error_path)]
        code = subprocess.run(command, env=env, timeout=timeout).returncode
        error = storage.read_json(error_path) if error_path.is_file() else None
    if code in (-2, 130):
        raise KeyboardInterrupt
    if error is not None:  # the child's exception, as if raised here (user errors stay one line)
        raise (ConfigValueError if error["user_error"] else RuntimeError)(error["message"])
    path = directory / "result.json"
    if not path.is_file():
        raise RuntimeError(f"the run's process exited with status {code} without a result "
                           f"({'killed by signal ' + str(-code) if code < 0 else 'see its output above'})")
    return RunResult.load(path)


def _child_main() -> None:
    """Entry of `run_isolated`'s process: argv = spec path, seed, output folder, verbose, save_model."""
    quiet_python_logs(verbose=verbose_requested())
    spec_path, seed, output_dir, verbose, save_model, error_path = sys.argv[1:7]
    verbose = int(verbose) if verbose.lstrip("-").isdigit() else verbose
    spec = ExperimentSpec.load(spec_path)
    try:
        run(spec, int(seed), output_dir, verbose=verbose, save_model=save_model == "1")
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - handed to the parent, traceback kept in the run folder
        user_error = isinstance(error, ValueError)
        message = str(error) if user_error else f"{type(error).__name__}: {error}"
        storage.write_atomic(run_dir(spec, int(seed), output_dir) / "error.log", traceback.format_exc())
        storage.write_json(error_path, {"user_error": user_error, "message": " ".join(message.split())})
        sys.exit(1)


def run_seeds(spec: ExperimentSpec, output_dir: str | os.PathLike = "lqbench-results", **kwargs) -> list[RunResult]:
    """`run` for every seed of the spec."""
    return [run(spec, seed, output_dir, **kwargs) for seed in spec.seeds]


# ---------------------------------------------------------------------------- internals
def _build(spec: ExperimentSpec, seed: int, input_shape, num_classes, method=None):
    """The zoo model (as the method trains it) and its trainer (algorithm wrapper, or `Distiller`)."""
    method = method or methods.get(spec.method, **spec.method_args)
    binarization = Binarization.full_precision() if spec.post_training_binarization else spec.binarization
    model = models.build(spec.model, input_shape, num_classes, binarization=binarization,
                         skip_connections=spec.skip_connections, **spec.model_args)
    model = method.transform(model)
    if spec.distillation is not None:
        config = dict(spec.distillation)
        teacher = load_model(config.pop("teacher"))
        return model, distillation.Distiller(model, teacher, **config)
    return model, algorithms.build(spec.algorithm, model, seed=seed, **spec.algorithm_args)


def _deployed_model(spec, model, input_shape, num_classes):
    if not spec.post_training_binarization:
        return model
    return models.build(
        spec.model, input_shape, num_classes, binarization=spec.binarization,
        skip_connections=spec.skip_connections, **spec.model_args,
    )


def _binarize_post_training(spec, model, input_shape, num_classes):
    return models.binarize_post_training(
        model, spec.model, input_shape, num_classes, spec.binarization,
        skip_connections=spec.skip_connections, **spec.model_args,
    )


BACKUP = "backup"  # Keras BackupAndRestore's folder inside a run's folder


def _run_memory_monitor() -> MemoryMonitor:
    """The run's memory monitor: TensorFlow's allocator on a GPU, the process's resident set on CPU."""
    return MemoryMonitor()


#: Set (to "1") in a process that `run_isolated` started for one run.
ISOLATED_VARIABLE = "LQBENCH_RUN_PROCESS"


def _memory_method(memory: MemoryMonitor) -> str:
    if memory.peak_source == "tf_allocator":
        return f"TensorFlow allocator peak on {memory.device} above the run's start (reset per run)"
    if os.environ.get(ISOLATED_VARIABLE) == "1":
        return f"process {memory.peak_source} above the model build, in the run's own process"
    return (f"process {memory.peak_source} above the model build, in a shared process "
            "(depends on what ran before in it)")


def _segment_peak(memory: MemoryMonitor | None) -> int:
    """Training bytes of the current segment so far (the monitor is still open)."""
    if memory is None:
        return 0
    try:
        if memory.peak_source == "tf_allocator":
            peak = int(tf.config.experimental.get_memory_info(memory.device)["peak"])
        else:
            peak = peak_rss_bytes()[0]
    except (ValueError, tf.errors.OpError):
        return 0
    return max(0, peak - memory.baseline_bytes)


def _history(history: dict) -> dict[str, list[float]]:
    return {key: [float(v) for v in values] for key, values in history.items()}


class _EpochTimer(tf.keras.callbacks.Callback):
    """Wall time of every epoch, and the logs seen so far (kept if training fails)."""

    def __init__(self):
        super().__init__()
        self.epoch_times: list[float] = []
        self.history: dict[str, list[float]] = {}

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_times.append(time.perf_counter() - self._start)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))


class _RunRecord(BestWeights):
    """The best-validation weights, every epoch's logs and times, across interruptions.

    Keras's `BackupAndRestore` resumes an interrupted ``fit`` from its last finished epoch, but
    the resumed ``fit`` only knows its own epochs. This callback keeps, in ``folder`` (beside
    the backup), ``progress.json`` (the logs and wall time of every finished epoch, the time
    and memory of earlier segments, the number of resumptions and the best epoch) and
    ``best.weights.npz`` (that epoch's weights), both written atomically at every epoch end
    *before* the backup. A resumed ``fit`` (first epoch > 0) continues the record; epochs the
    backup does not hold (killed in between) are dropped from it and trained again.
    """

    STATE, WEIGHTS = "progress.json", "best.weights.npz"

    def __init__(self, folder: pathlib.Path):
        super().__init__(monitor="val_accuracy", mode="max", restore=False)
        self.folder = pathlib.Path(folder)
        self.history: dict[str, list[float]] = {}
        self.epoch_times: list[float] = []
        self.resumptions = 0
        self.previous_time_s = 0.0  # training time of the earlier segments (finished epochs)
        self.previous_peak_bytes = 0
        self._weights_epoch = None
        self.memory: MemoryMonitor | None = None  # the run's monitor (peak memory of each segment)
        try:
            state = storage.read_json(self.folder / self.STATE) if (self.folder / self.STATE).is_file() else None
        except (ValueError, OSError):
            state = None  # a record that cannot be read: the run starts its record again
        self._stored = state if isinstance(state, dict) else None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._segment_start = time.perf_counter()
        self._first_epoch = None
        self.history, self.epoch_times = {}, []

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        if self._first_epoch is not None:
            return
        self._first_epoch = epoch
        state, self._stored = self._stored, None
        if epoch == 0 or not state:
            return  # a fresh run (a stale record from an earlier finished run is ignored)
        # resumed by BackupAndRestore at ``epoch``: keep the record of the epochs before it
        history = {k: list(v)[:epoch] for k, v in state.get("history", {}).items()}
        times = list(state.get("epoch_times", []))[:epoch]
        missing = epoch - len(times)
        self.history = {k: [math.nan] * (epoch - len(v)) + v for k, v in history.items()}
        self.epoch_times = [math.nan] * missing + times
        self.resumptions = int(state.get("resumptions", 0)) + 1
        self.previous_time_s = float(state.get("time_s", 0.0))
        self.previous_peak_bytes = int(state.get("peak_bytes", 0) or 0)
        best_epoch = state.get("best_epoch")
        if best_epoch is not None and best_epoch < epoch and (self.folder / self.WEIGHTS).is_file():
            try:
                with np.load(self.folder / self.WEIGHTS) as stored:
                    weights = [stored[f"w{i}"] for i in range(len(stored.files))]
            except (OSError, ValueError, KeyError):
                weights = None
            if weights is not None:
                self.best, self.best_epoch, self.best_weights = float(state["best"]), int(best_epoch), weights
                self._weights_epoch = self.best_epoch

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_times.append(time.perf_counter() - self._epoch_start)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, [math.nan] * (len(self.epoch_times) - 1)).append(float(value))
        super().on_epoch_end(epoch, logs)
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.best_weights is not None and self._weights_epoch != self.best_epoch:
            path = self.folder / self.WEIGHTS
            tmp = path.with_name(f".{path.name}.tmp.npz")
            np.savez(tmp, **{f"w{i}": w for i, w in enumerate(self.best_weights)})
            os.replace(tmp, path)
            self._weights_epoch = self.best_epoch
        peak = _segment_peak(self.memory)
        storage.write_json(self.folder / self.STATE, {
            "history": self.history, "epoch_times": self.epoch_times, "resumptions": self.resumptions,
            "time_s": self.previous_time_s + time.perf_counter() - self._segment_start,
            "peak_bytes": max(self.previous_peak_bytes, peak),
            "best": self.best, "best_epoch": self.best_epoch,
        })

    def discard(self) -> None:
        """Remove the record once the run's result is saved."""
        for name in (self.STATE, self.WEIGHTS):
            try:
                (self.folder / name).unlink()
            except FileNotFoundError:
                pass


class _StopOnNonFinite(tf.keras.callbacks.Callback):
    """Raise `TrainingDiverged` as soon as the training loss is NaN or infinite."""

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(f"loss became {float(loss)} at epoch {self.epoch + 1}, batch {batch + 1}")
