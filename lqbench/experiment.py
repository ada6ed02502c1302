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
same output folder.
"""
from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import shutil
import tempfile
import time
from typing import Any

import numpy as np
import tensorflow as tf

import lqbench.models as models
from lqbench import algorithms, continuous, data, distillation, distribute, estimators, execution, methods  # noqa: F401
from lqbench import storage  # noqa: F401
from lqbench.binarization import Binarization
from lqbench.callbacks import BestWeights
from lqbench.errors import ConfigValueError
from lqbench.profiling import MemoryMonitor
from lqbench.results import RunResult
from lqbench.spec import ExperimentSpec


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


def run_dir(spec: ExperimentSpec, seed: int, output_dir: str | os.PathLike) -> pathlib.Path:
    """Where the run of ``spec`` with ``seed`` keeps its files."""
    return pathlib.Path(output_dir) / f"{spec.name}-{spec.key()}" / f"seed-{seed}"


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
    best = BestWeights(monitor="val_accuracy", mode="max", restore=False)
    callbacks = _callbacks(spec, method, directory, timer, best, extra_callbacks)
    decision = execution.decide(spec.xla, trainer, element_spec=loaded.train.element_spec,
                                batch_shape=(spec.batch_size,), num_classes=loaded.num_classes,
                                total_steps=spec.epochs * loaded.steps_per_epoch, optimizer=spec.method,
                                strategy=strategy, configuration=execution.spec_configuration(spec.to_dict()),
                                cache_dir=output_dir)
    tf.keras.utils.set_random_seed(seed)  # the same random streams whether or not the modes were timed
    result.jit_compile, result.execution = decision.jit_compile, decision.to_dict()
    start = time.perf_counter()
    try:
        history, memory = _train(spec, method, trainer, loaded, callbacks, result.jit_compile, verbose, strategy)
    except TrainingDiverged as error:
        result.error = str(error)
        result.history = _history(timer.history)
        result.wall_time_s = time.perf_counter() - start
        result.save(directory / "result.json")
        return result
    result.wall_time_s = time.perf_counter() - start
    result.peak_memory_bytes, result.memory_method = memory.training_bytes, memory.peak_source
    result.history = _history(history.history)
    result.epochs_run = len(timer.epoch_times)
    result.time_per_epoch_s = float(np.median(timer.epoch_times)) if timer.epoch_times else None
    model = _evaluate(spec, model, trainer, loaded, best, result)
    _save(model, directory, result, save_model)
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
        callbacks += [best, tf.keras.callbacks.BackupAndRestore(str(directory / "backup"))]
    return callbacks + list(extra_callbacks)


def _train(spec, method, trainer, loaded: _Data, callbacks, jit: bool, verbose, strategy):
    """`lqbench.methods.fit` under the memory monitor; (history, monitor)."""
    memory = MemoryMonitor()
    with memory, strategy.scope():
        history = methods.fit(
            trainer, loaded.train, method=method, epochs=spec.epochs, validation_data=loaded.val,
            learning_rate=spec.learning_rate, weight_decay=spec.weight_decay, schedule=spec.schedule,
            steps_per_epoch=loaded.steps_per_epoch, callbacks=callbacks, jit_compile=jit, verbose=verbose,
        )
    return history, memory


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
