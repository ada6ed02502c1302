"""Run one `ExperimentSpec` for one seed: train, select on validation, test, record.

`run(spec, seed, output_dir)` is the Python entry behind ``lqbench train`` and every
search, sweep and benchmark:

1. load the dataset's ``train`` / ``val`` / ``test`` splits (`lqbench.data`);
2. build the zoo model with the spec's `Binarization` (`lqbench.models`), or its full
   precision version when ``post_training_binarization`` is set (paper 003's naive
   baseline: train in float, binarize afterwards); with ``init_from``, load the weights of
   that saved model or run into it (`resolve_source`, `load_initial_weights`: paper 001's
   shared phase-1 model), so that the method prepares the loaded weights;
3. let the binarizing method transform it (`lqbench.methods`: continuous binarization turns
   activations into PCFs) and wrap it in the training algorithm (`lqbench.algorithms`: BP,
   DFA, DRTP, HSIC, SigpropTL), distilling from the spec's teacher if it has one
   (`lqbench.distillation.Distillation`, with any algorithm);
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

In a run's own process on CPU the peak is measured with glibc returning freed memory at once
(`lqbench.profiling.ALLOCATOR_ENV`: otherwise memory freed segment by segment stays in the heap
and hides what the update-unlocked methods save), which costs time on every large tensor
(CIFAR-10 ResNet-20 BP: 0.13 instead of 0.105 s per step). So the process measures only while
the training does everything it will ever do, the first epoch of each ``fit`` (each phase of a
multi-phase method) from its start to the end of that epoch's validation pass and checkpoints,
and trains the other epochs with glibc's caching allocator (`lqbench.profiling.set_allocator`,
``MemoryMonitor.pause``/``resume``). The build, the ``auto`` timing and the first epoch run as
before, so the first window measures exactly what a whole run measured before.
"""
from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any

import larq as lq
import numpy as np
import tensorflow as tf

import lqbench.models as models
from lqbench import algorithms, continuous, data, distillation, distribute, estimators, execution, methods  # noqa: F401
from lqbench import storage  # noqa: F401
from lqbench._keras_env import quiet_python_logs, verbose_requested
from lqbench.binarization import Binarization
from lqbench.callbacks import BestWeights
from lqbench.errors import ConfigValueError
from lqbench.profiling import ALLOCATOR_ENV, MemoryMonitor, set_allocator
from lqbench.results import RunResult
from lqbench.spec import ExperimentSpec, expand_seed
from lqbench.walk import QUANTIZER_SLOTS


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
        return _run(spec, seed, output_dir, verbose, extra_callbacks, save_model, strategy, output_dir)
    scratch = tempfile.mkdtemp(prefix="lqbench-worker-")
    try:  # saved models named relative to the output folder are still found there
        result = _run(spec, seed, scratch, verbose, extra_callbacks, save_model, strategy, output_dir)
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


def _run(spec, seed, output_dir, verbose, extra_callbacks, save_model, strategy, sources_dir) -> RunResult:
    """Named steps: start, find the saved models it needs, load data, build, train, evaluate, save."""
    seed = spec.seeds[0] if seed is None else seed
    memory = _run_memory_monitor()
    window = _MemoryWindow(memory) if _windowed(memory) else None
    directory, result = _start(spec, seed, output_dir)
    method = methods.get(spec.method, **spec.method_args)
    sources = resolve_sources(spec, seed, sources_dir)  # before the data: a missing source fails at once
    for key, attribute in (("init_from", "init_source"), ("teacher", "teacher_source")):
        setattr(result, attribute, sources[key].to_dict() if sources[key] is not None else None)
    loaded = _load_data(spec, seed)
    with strategy.scope():
        model, trainer = _build(spec, seed, loaded.input_shape, loaded.num_classes, method, sources)
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
    if window is not None:  # last: the epoch's checkpoints are inside the window
        callbacks.append(window)
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
    result.peak_memory_bytes = memory.training_bytes
    result.memory_method = _memory_method(memory, window is not None)
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
    freed memory (`lqbench.profiling.ALLOCATOR_ENV`) during the first epoch of each phase (the
    other epochs train with glibc's caching allocator). The child writes ``result.json`` as `run`
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


# ---------------------------------------------------------------------------- saved models a run uses
#: The saved model in a run's folder.
RUN_MODEL = "model.keras"
_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclasses.dataclass
class ModelSource:
    """A saved model a spec names (``init_from``, the distillation teacher), found for one run.

    ``path`` is the model file (or SavedModel folder); when it is the ``model.keras`` of an
    lqbench run, ``run`` is that run's folder and ``name``, ``spec_key``, ``seed`` come from
    its ``result.json``.
    """

    field: str
    text: str
    path: pathlib.Path
    run: pathlib.Path | None = None
    name: str | None = None
    spec_key: str | None = None
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.text, "path": str(self.path), "run": None if self.run is None else str(self.run),
                "name": self.name, "spec_key": self.spec_key, "seed": self.seed}


def source_dirs(output_dir: str | os.PathLike | None) -> list[pathlib.Path]:
    """Where a relative saved-model reference is looked up, in order: the output folder, the results
    folder holding it when it is a search's trial folder (``<results>/_search/...``), the working directory."""
    dirs: list[pathlib.Path] = []
    if output_dir is not None:
        output = pathlib.Path(output_dir)
        dirs.append(output)
        if "_search" in output.parts:
            index = len(output.parts) - 1 - output.parts[::-1].index("_search")
            dirs.append(pathlib.Path(*output.parts[:index]) if index else pathlib.Path("."))
    dirs.append(pathlib.Path.cwd())
    unique: list[pathlib.Path] = []
    for folder in dirs:
        if all(folder.absolute() != seen.absolute() for seen in unique):
            unique.append(folder)
    return unique


def resolve_source(text: str, seed: int, output_dir: str | os.PathLike | None = None,
                   field: str = "init_from") -> ModelSource:
    """The saved model ``text`` names for the run with ``seed`` (rules: `lqbench.spec` module doc).

    ``{seed}`` is replaced by ``seed``; a relative path is looked up in `source_dirs`. It may be a
    ``.keras``/``.h5`` file or SavedModel folder, a run folder (its ``model.keras``; the run must
    have finished ``ok``), a ``<name>-<key>`` folder (its ``seed-<seed>`` run), or a run name
    without its key (the only ``<name>-<key>`` folder of that name). Raises `ConfigValueError`
    (one line naming ``field``, the value and what was found) when there is no such model.
    """
    expanded = expand_seed(text, seed)
    path = pathlib.Path(expanded).expanduser()
    bases = [None] if path.is_absolute() else source_dirs(output_dir)
    for base in bases:
        found = _locate(path if base is None else base / path, seed, field, text)
        if found is not None:
            return found
    where = str(path) if path.is_absolute() else " nor ".join(str(base / path) for base in bases)
    raise ConfigValueError(f"{field} {text!r}: no saved model or run at {where} (expected a .keras/.h5 file, "
                           f"a run folder, or the name of a run in {bases[0] or path.parent})")


def resolve_sources(spec: ExperimentSpec, seed: int, output_dir=None) -> dict[str, ModelSource | None]:
    """``{"init_from": ..., "teacher": ...}``: the saved models of ``spec`` for ``seed`` (None where unused)."""
    teacher = (spec.distillation or {}).get("teacher")
    return {
        "init_from": resolve_source(spec.init_from, seed, output_dir) if spec.init_from is not None else None,
        "teacher": resolve_source(teacher, seed, output_dir, "distillation: teacher") if teacher is not None else None,
    }


def _locate(path: pathlib.Path, seed: int, field: str, text: str) -> ModelSource | None:
    """The model at ``path`` (a file, a SavedModel, a run, a ``<name>-<key>`` folder, a run name); None if nothing is there."""
    if not path.exists():
        path = _by_run_name(path, field, text)
        if path is None:
            return None
    if path.is_file():
        if path.suffix not in _MODEL_SUFFIXES:
            raise ConfigValueError(f"{field} {text!r}: {path} is not a saved Keras model (.keras or .h5 file)")
        if path.name == RUN_MODEL and (path.parent / "result.json").is_file():
            return _run_source(path.parent, field, text)
        return ModelSource(field, text, path.absolute())
    if (path / "saved_model.pb").is_file():
        return ModelSource(field, text, path.absolute())
    if any((path / name).is_file() for name in ("result.json", "spec.toml", RUN_MODEL)):
        return _run_source(path, field, text)
    if (path / f"seed-{seed}").is_dir():
        return _run_source(path / f"seed-{seed}", field, text)
    raise ConfigValueError(f"{field} {text!r}: {path} holds no saved model, no run and no seed-{seed} run")


def _by_run_name(path: pathlib.Path, field: str, text: str) -> pathlib.Path | None:
    """``path`` with a missing component ``NAME`` read as the run folder ``NAME-<key>`` beside it."""
    current = pathlib.Path(path.parts[0])
    for part in path.parts[1:]:
        following = current / part
        if not following.exists():
            if not current.is_dir():
                return None
            pattern = re.compile(re.escape(part) + r"-[0-9a-f]{12}")
            matches = sorted(c.name for c in current.iterdir() if c.is_dir() and pattern.fullmatch(c.name))
            if not matches:
                return None
            if len(matches) > 1:
                raise ConfigValueError(f"{field} {text!r}: several runs named {part!r} in {current} "
                                       f"({', '.join(matches)}); name one of them")
            following = current / matches[0]
        current = following
    return current


def _run_source(folder: pathlib.Path, field: str, text: str) -> ModelSource:
    """The model of the lqbench run in ``folder``: it must have finished with status ok."""
    path = folder / "result.json"
    if not path.is_file():
        raise ConfigValueError(f"{field} {text!r}: the run {folder} has not finished (no result.json)")
    try:
        result = RunResult.load(path)
    except (ValueError, TypeError, OSError) as error:
        raise ConfigValueError(f"{field} {text!r}: {path} is not a run result ({error})") from None
    if result.status != "ok":
        raise ConfigValueError(f"{field} {text!r}: the run {folder} failed: {result.error or 'no reason recorded'}")
    model = folder / RUN_MODEL
    if not model.is_file():
        raise ConfigValueError(f"{field} {text!r}: the run {folder} saved no {RUN_MODEL}")
    return ModelSource(field, text, model.absolute(), run=folder.absolute(), name=result.name,
                       spec_key=result.spec_key, seed=result.seed)


def load_source(source: ModelSource) -> tf.keras.Model:
    """`load_model` of ``source``; a file that does not load is one line naming the field."""
    try:
        return load_model(source.path)
    except (ConfigValueError, FileNotFoundError) as error:
        raise ConfigValueError(f"{source.field} {source.text!r}: {error}") from None


def _quantizer_variables(layer) -> set[int]:
    found: set[int] = set()
    for attribute in [slot for slot, _ in QUANTIZER_SLOTS] + ["activation"]:
        quantizer = getattr(layer, attribute, None)
        found.update(id(v) for v in getattr(quantizer, "variables", None) or [])
    return found


def _weighted_layers(model) -> list[tuple[Any, list]]:
    """``(layer, its variables)`` of every layer with weights, in the model's order (nested models
    flattened), leaving out the quantizers' own variables (schedules of EDE/Gumbel, ...)."""
    out: list[tuple[Any, list]] = []
    for layer in model.layers:
        if isinstance(layer, lq.quantizers._BaseQuantizer):
            continue  # a sign activation layer: its state is the estimator's, not a weight
        if isinstance(layer, tf.keras.Model):
            out += _weighted_layers(layer)
            continue
        skip = _quantizer_variables(layer)
        variables = [v for v in layer.weights if id(v) not in skip]
        if variables:
            out.append((layer, variables))
    return out


def _describe_weights(layer, variables) -> str:
    shapes = ", ".join(f"{v.name.split('/')[-1].split(':')[0]} {tuple(v.shape)}" for v in variables)
    return f"{layer.name!r} ({type(layer).__name__}: {shapes})"


def weights_mismatch(model: tf.keras.Model, saved: tf.keras.Model) -> str | None:
    """Why ``saved``'s weights do not fit ``model`` (first differing layer), or None when they do.

    Layers with weights are paired in order; each pair must hold variables of the same names
    (``kernel``, ``gamma``, ``moving_mean``, ...) and shapes. Quantizers are not compared: a
    model with real weights fits the same model with binary weights.
    """
    mine, theirs = _weighted_layers(model), _weighted_layers(saved)

    def signature(variables):
        return [(v.name.split("/")[-1].split(":")[0], tuple(v.shape)) for v in variables]

    for i, ((a, va), (b, vb)) in enumerate(zip(mine, theirs)):
        if signature(va) != signature(vb):
            return (f"layer {i + 1} with weights is {_describe_weights(a, va)} here, "
                    f"{_describe_weights(b, vb)} in the saved model")
    if len(mine) != len(theirs):
        extra = (mine if len(mine) > len(theirs) else theirs)[min(len(mine), len(theirs))]
        where = "here" if len(mine) > len(theirs) else "in the saved model"
        return (f"{len(mine)} layers with weights here, {len(theirs)} in the saved model "
                f"(the first extra one, {where}: {_describe_weights(*extra)})")
    return None


def load_initial_weights(model: tf.keras.Model, saved: tf.keras.Model) -> None:
    """Copy ``saved``'s weights into ``model`` (every layer with weights, in order; `weights_mismatch`
    must be None). Batch-norm statistics are weights too; quantizer state and optimizers are not."""
    problem = weights_mismatch(model, saved)
    if problem is not None:
        raise ConfigValueError(f"the saved model does not fit: {problem}")
    for (_, mine), (_, theirs) in zip(_weighted_layers(model), _weighted_layers(saved)):
        for variable, value in zip(mine, theirs):
            variable.assign(value.read_value())


def _initialized(spec: ExperimentSpec, model, method, source: ModelSource | None):
    """``method.transform(model)``, with the weights of ``source`` loaded (before the transform when
    they fit the built model, which the transform carries over; else into the transformed one)."""
    if source is None:
        return method.transform(model)
    saved = load_source(source)
    problem = weights_mismatch(model, saved)
    if problem is None:
        load_initial_weights(model, saved)
        return method.transform(model)
    transformed = method.transform(model)
    if transformed is not model and weights_mismatch(transformed, saved) is None:
        load_initial_weights(transformed, saved)
        return transformed
    raise ConfigValueError(f"init_from {source.text!r}: {source.path} does not fit this {spec.model} "
                           f"(model_args {spec.model_args}): {problem}")


# ---------------------------------------------------------------------------- internals
def _build(spec: ExperimentSpec, seed: int, input_shape, num_classes, method=None, sources=None):
    """The zoo model (as the method trains it, from ``init_from``'s weights) and its trainer
    (the algorithm wrapper, distilling from the spec's teacher if any). ``sources``:
    `resolve_sources` (default: resolved relative to the working directory)."""
    method = method or methods.get(spec.method, **spec.method_args)
    sources = sources if sources is not None else resolve_sources(spec, seed)
    binarization = Binarization.full_precision() if spec.post_training_binarization else spec.binarization
    model = models.build(spec.model, input_shape, num_classes, binarization=binarization,
                         skip_connections=spec.skip_connections, **spec.model_args)
    model = _initialized(spec, model, method, sources["init_from"])
    distill = None
    if spec.distillation is not None:
        config = dict(spec.distillation)
        config.pop("teacher")
        distill = distillation.Distillation(load_source(sources["teacher"]), **config)
    return model, algorithms.build(spec.algorithm, model, seed=seed, distillation=distill, **spec.algorithm_args)


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


def _memory_method(memory: MemoryMonitor, windowed: bool = False) -> str:
    if memory.peak_source == "tf_allocator":
        return f"TensorFlow allocator peak on {memory.device} above the run's start (reset per run)"
    if os.environ.get(ISOLATED_VARIABLE) == "1":
        return (f"process {memory.peak_source} above the model build, in the run's own process"
                + (", glibc returning freed memory, first epoch of each phase" if windowed else ""))
    return (f"process {memory.peak_source} above the model build, in a shared process "
            "(depends on what ran before in it)")


def _segment_peak(memory: MemoryMonitor | None) -> int:
    """Training bytes of the current segment so far (the monitor is still open)."""
    if memory is None:
        return 0
    try:
        peak = memory.current_peak_bytes()
    except (ValueError, tf.errors.OpError):
        return 0
    return max(0, peak - memory.baseline_bytes)


def _history(history: dict) -> dict[str, list[float]]:
    return {key: [float(v) for v in values] for key, values in history.items()}


def _windowed(memory: MemoryMonitor) -> bool:
    """Whether the run measures its CPU memory in windows (`_MemoryWindow`): in its own process only."""
    return memory.device == "cpu" and os.environ.get(ISOLATED_VARIABLE) == "1"


class _MemoryWindow(tf.keras.callbacks.Callback):
    """Peak memory measured over the first epoch of every ``fit``, the other epochs trained fast.

    The process starts with glibc returning freed memory (`run_isolated`'s environment), so
    everything up to the end of the first ``fit``'s first epoch (after its validation pass and
    the other callbacks' checkpoints: this callback comes last) is measured exactly as a run
    measured as a whole; then the window closes (``MemoryMonitor.pause``) and glibc caches
    freed blocks; a later ``fit`` (the next phase) opens a new window (cache released,
    ``MemoryMonitor.resume``). Where the allocator cannot be switched (not glibc) nothing is
    paused."""

    def __init__(self, memory: MemoryMonitor):
        super().__init__()
        self.memory = memory

    def on_train_begin(self, logs=None):
        if self.memory.paused:
            set_allocator("returning")
            self.memory.resume()

    def on_epoch_end(self, epoch, logs=None):
        if not self.memory.paused and set_allocator("caching"):
            self.memory.pause()


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
