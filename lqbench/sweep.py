"""Resumable sweeps: many `ExperimentSpec` x their seeds, each run exactly once.

A sweep runs every ``(spec, seed)`` pair into ``results_dir/<name>-<key>/seed-<seed>/``
(`lqbench.experiment.run_dir`). It can be killed at any moment (even ``SIGKILL``) and
started again with the same arguments: it redoes nothing that finished and loses nothing.

- A run is *finished* when its ``result.json`` exists and parses. `lqbench.experiment.run`
  writes it atomically (temporary file + rename), so it is either absent or whole.
- A run folder without a ``result.json`` is a half-written run: it is cleared and redone
  from scratch (``resume_partial=True`` instead lets `experiment.run` continue from its last
  Keras ``BackupAndRestore`` checkpoint).
- A run whose loss becomes NaN is recorded by `experiment.run` as ``status="failed"`` with the
  reason; any other exception in one run is recorded as a failed `RunResult` with the one-line
  error (the traceback goes to ``error.log`` beside it). The sweep continues in both cases.
  Failed runs count as finished; ``retry_failed=True`` redoes them.
- Several sweep processes may share one results folder (e.g. one per GPU or machine on a
  shared file system): each run is claimed with an exclusive ``flock`` on ``.lock`` in its
  folder, which the kernel releases when the process dies, so a run is never trained twice
  at the same time and a killed worker's run is picked up by the next sweep.
  A sweep waits at the end for the runs another process was training (``wait_busy``), so it
  returns with every run finished (or trains them itself if that process died).
- A ``result.json`` that is not a run result (``[1, 2, 3]``) or is another run's (copied in:
  its name, key or seed names another folder) is not a finished run: the run is redone.
- ``results_dir/index.jsonl`` gets one line per run that finishes (name, key, seed, status,
  accuracy, path, host, pid, time); `load_index` reads it. A run whose line was lost (killed
  between its ``result.json`` and its line) gets a ``"recovered": true`` line from the next
  sweep (checked under the run's lock: a run another live sweep just finished is not "lost").
  The result files remain the ground truth (`lqbench.report.load_results` scans them).

Products of options are written with `expand`; sweep files are TOML with a ``[base]`` table
(an `ExperimentSpec`) and an ``[axes]`` table (field -> list of values), plus optional
``[[group]]`` tables for sub-products that are not a full product:

```toml
name = "paper000-imagenette"     # prefix of every run name (default: base.name)

[base]                           # an ExperimentSpec: fields shared by every run
dataset = "imagenette"
epochs = 80
seeds = [0, 1, 2, 3, 4]

[axes]                           # the product of these lists
model = ["vgg19", "mobilenet_v2", "mlp_mixer"]
algorithm = ["bp", "dfa", "drtp"]
binarization = ["W32A32", "W1A1"]   # labels, or tables like {weights = true, activations = false}

[[group]]                        # another product: base + `set`, times its own axes
name = "noskip"                  # optional, added to the run names
set = {skip_connections = false}
axes = {model = ["mobilenet_v2"], algorithm = ["bp", "dfa"]}
```

Axis keys are spec fields or dotted ``<table>.<key>`` (e.g. ``"algorithm_args.gamma"``),
as in an `ExperimentSpec` grid. With ``tune = true`` at the top level, ``lqbench sweep`` first
grid-searches every configuration (`lqbench.tuning.tune_each`) and runs the best one for its seeds.

!!! example
    ```python
    from lqbench import ExperimentSpec, sweep

    base = ExperimentSpec(name="mlp", dataset="digits", epochs=1, seeds=[0, 1])
    specs = sweep.expand(base, {"algorithm": ["bp", "dfa"], "binarization": ["W1A1", "W32A32"]})
    done = sweep.sweep(specs, "results/mlp")     # kill it, run it again: nothing is redone
    ```
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import itertools
import json
import os
import pathlib
import shutil
import socket
import sys
import traceback
from typing import Any, Callable, Iterable, Sequence

import tomli_w

from lqbench import experiment, storage
from lqbench.errors import ConfigValueError
from lqbench.results import RunResult
from lqbench.spec import (TUNERS, ExperimentSpec, SpecError, _drop_none, expand_seed, parse_label, parse_toml,
                          read_text)

ORDERS = ("configs", "seeds")  # `sweep(order=...)`, a sweep file's top-level ``order``

RESULT = "result.json"
INDEX = "index.jsonl"
ERROR_LOG = "error.log"
LOCK = ".lock"

_ABBREVIATIONS = {"learning_rate": "lr", "weight_decay": "wd", "batch_size": "bs", "epochs": "ep",
                  "skip_connections": "skips", "post_training_binarization": "ptb", "augment": "aug"}
_NAME_FIELDS = ("dataset", "model", "algorithm", "method", "schedule")


# ---------------------------------------------------------------------------- expand
def expand(base: ExperimentSpec, axes: dict[str, list], name: str | None = None) -> list[ExperimentSpec]:
    """The product of ``axes`` applied to ``base``: one validated spec per combination.

    Keys are spec fields or dotted ``<table>.<key>`` keys (as in a grid). ``binarization``
    values may be labels (``"W1A1"``, ``"W1A32"``, ``"W32A1"``, ``"W32A32"``: only
    weights/activations change, estimators stay the base's) or tables (merged into the
    base's binarization). Each spec is named ``<name>-<label>-<label>...`` with readable
    labels (``vgg19``, ``dfa``, ``W1A1``, ``lr0.001``, ``no-skips``, ``gamma20``).

    Raises `SpecError` for an unknown key, an empty axis or an invalid combination.
    """
    prefix = name if name is not None else base.name
    for key, values in axes.items():
        if key in ("name", "seeds", "grid"):
            raise SpecError(f"axes: {key!r} cannot be an axis; allowed: spec fields other than name, seeds, grid")
        if not isinstance(values, (list, tuple)) or not values:
            raise SpecError(f"axes: {key} must be a non-empty list, got {values!r}")
    specs = []
    keys = list(axes)
    for combination in itertools.product(*(axes[k] for k in keys)):
        values: dict[str, Any] = {}
        labels = []
        for key, value in zip(keys, combination):
            values.update(_axis_values(base, key, value))
            labels.append(axis_label(key, value))
        values["name"] = "-".join([prefix, *labels]) if prefix else "-".join(labels) or "run"
        try:
            specs.append(base.with_values(values))
        except SpecError as error:
            raise SpecError(f"axes combination {dict(zip(keys, combination))}: {error}") from None
    return specs


def _axis_values(base: ExperimentSpec, key: str, value: Any) -> dict[str, Any]:
    if key == "binarization":
        if isinstance(value, str):
            return {f"binarization.{k}": v for k, v in parse_label(value).items()}
        if isinstance(value, dict):
            return {f"binarization.{k}": v for k, v in value.items()}
        raise SpecError(f"axes: binarization value {value!r} must be a label like 'W1A1' or a table")
    if key in ("model_args", "algorithm_args", "method_args", "optimizer_args") and isinstance(value, dict):
        return {f"{key}.{k}": v for k, v in value.items()}
    return {key: value}


def axis_label(key: str, value: Any) -> str:
    """A short readable label for one axis value (used in run names)."""
    leaf = key.rsplit(".", 1)[-1]
    short = _ABBREVIATIONS.get(leaf, leaf.replace("_", ""))
    if key == "binarization":
        if isinstance(value, str):
            flags = parse_label(value)
            return f"W{1 if flags['weights'] else 32}A{1 if flags['activations'] else 32}"
        parts = [f"W{1 if value.get('weights', True) else 32}A{1 if value.get('activations', True) else 32}"
                 if {"weights", "activations"} & set(value) else ""]
        parts += [_text(v) for k, v in value.items() if k not in ("weights", "activations")]
        return "-".join(p for p in parts if p)
    if isinstance(value, bool):
        return short if value else f"no-{short}"
    if key in _NAME_FIELDS or key.endswith("estimator"):
        return _text(value)
    if isinstance(value, (int, float)):
        return f"{short}{value:g}"
    if isinstance(value, dict):
        return "-".join(f"{axis_label(k, v)}" for k, v in value.items())
    return f"{short}{_text(value)}"


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "x".join(_text(v) for v in value)
    return "".join(c if c.isalnum() or c in "._" else "-" for c in str(value)).strip("-")


# ---------------------------------------------------------------------------- sweep files
@dataclasses.dataclass
class SweepSpec:
    """A sweep file: a base spec and one or more products of axes (see the module doc)."""

    name: str
    base: ExperimentSpec
    groups: list[dict[str, Any]]  # each {"name": str | None, "set": dict, "axes": dict}
    tune: bool = False
    tuner: str = "grid"
    max_trials: int | None = None
    order: str = "configs"  # `ORDERS`: the order `sweep` trains the (spec, seed) pairs in

    def specs(self) -> list[ExperimentSpec]:
        """Every spec of the sweep, without duplicates (same name and configuration)."""
        specs: dict[tuple, ExperimentSpec] = {}
        for group in self.groups:
            base = self.base.with_values(_set_values(self.base, group["set"])) if group["set"] else self.base
            prefix = "-".join(p for p in (self.name, group.get("name")) if p)
            for spec in expand(base, group["axes"], name=prefix) if group["axes"] else [base.with_values(
                    {"name": prefix or base.name})]:
                specs.setdefault((spec.name, spec.key()), spec)
        return list(specs.values())

    @classmethod
    def from_dict(cls, config: dict[str, Any], source: str = "<sweep>") -> "SweepSpec":
        allowed = {"name", "base", "axes", "group", "tune", "tuner", "max_trials", "order"}
        unknown = sorted(set(config) - allowed)
        if unknown:
            raise SpecError(f"{source}: unknown sweep key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        if "base" not in config:
            raise SpecError(f"{source}: a sweep needs a [base] table (an experiment spec)")
        base = ExperimentSpec.from_dict(dict(config["base"]))
        groups = []
        if config.get("axes") is not None or not config.get("group"):
            groups.append({"name": None, "set": {}, "axes": dict(config.get("axes") or {})})
        for i, group in enumerate(config.get("group") or []):
            unknown = sorted(set(group) - {"name", "set", "axes"})
            if unknown:
                raise SpecError(f"{source}: [[group]] {i + 1}: unknown key(s) {', '.join(unknown)}; "
                                "allowed: axes, name, set")
            groups.append({"name": group.get("name"), "set": dict(group.get("set") or {}),
                           "axes": dict(group.get("axes") or {})})
        tuner = config.get("tuner", "grid")
        if tuner not in TUNERS:
            raise SpecError(f"{source}: tuner: unknown value {tuner!r}; allowed: {', '.join(TUNERS)}")
        order = config.get("order", "configs")
        if order not in ORDERS:
            raise SpecError(f"{source}: order: unknown value {order!r}; allowed: {', '.join(ORDERS)}")
        sweep = cls(name=config.get("name", base.name), base=base, groups=groups, tune=bool(config.get("tune", False)),
                    tuner=tuner, max_trials=config.get("max_trials"), order=order)
        sweep.specs()  # validate every combination now
        return sweep

    def to_dict(self) -> dict[str, Any]:
        config: dict[str, Any] = {"name": self.name, "base": self.base.to_dict()}
        if self.tune:
            config.update(tune=True, tuner=self.tuner)
            if self.max_trials:
                config["max_trials"] = self.max_trials
        if self.order != "configs":
            config["order"] = self.order
        main = [g for g in self.groups if g["name"] is None and not g["set"]]
        if main:
            config["axes"] = main[0]["axes"]
        others = [g for g in self.groups if not (g["name"] is None and not g["set"])] + main[1:]
        if others:
            config["group"] = [{k: v for k, v in g.items() if v} for g in others]
        return config

    def to_toml(self) -> str:
        return tomli_w.dumps(_drop_none(self.to_dict()))

    @classmethod
    def from_toml(cls, text: str, source: str = "<string>") -> "SweepSpec":
        config = parse_toml(text, source)
        if not {"base", "axes", "group", "tune", "tuner", "max_trials"} & set(config):
            # a plain experiment spec is a sweep of one configuration
            spec = ExperimentSpec.from_dict(config)
            return cls(name=spec.name, base=spec, groups=[{"name": None, "set": {}, "axes": {}}])
        return cls.from_dict(config, source)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SweepSpec":
        path = pathlib.Path(path)
        if not path.is_file():
            raise SpecError(f"sweep file {path} does not exist")
        return cls.from_toml(read_text(path, "sweep file"), source=str(path))


def _set_values(base: ExperimentSpec, values: dict[str, Any]) -> dict[str, Any]:
    """A group's ``set`` table as `with_values` keys: tables (binarization, *_args) are merged
    into the base's, binarization labels accepted."""
    merged: dict[str, Any] = {}
    for key, value in values.items():
        merged.update(_axis_values(base, key, value) if key in _MERGED_TABLES else {key: value})
    return merged


_MERGED_TABLES = ("binarization", "model_args", "algorithm_args", "method_args", "optimizer_args")


def load_specs(path: str | os.PathLike) -> list[ExperimentSpec]:
    """Every spec of a sweep file or of a plain experiment spec file."""
    return SweepSpec.load(path).specs()


# ---------------------------------------------------------------------------- running
Runner = Callable[..., Any]


@dataclasses.dataclass
class SweepResult:
    """What one `sweep` call saw: every run's result, and what it did about it."""

    results: list  # list[RunResult] in sweep order (busy runs left out)
    trained: list[str]  # run folders trained by this call
    reused: list[str]  # run folders already finished before this call
    busy: list[str]  # run folders another live process was training (not waited for)

    @property
    def failed(self) -> list:
        return [r for r in self.results if r.status != "ok"]

    def __len__(self) -> int:
        return len(self.results)


def finished_result(directory: str | os.PathLike):
    """The `RunResult` in ``directory/result.json`` if it exists, parses and belongs to that
    folder (`result_problem`), else None."""
    result, _ = read_result(pathlib.Path(directory) / RESULT)
    return result


def read_result(path: pathlib.Path):
    """``(result, None)`` for a valid ``result.json`` of the run whose folder holds it, else
    ``(None, reason)``: unreadable, not a run result, or another run's result (copied in)."""
    path = pathlib.Path(path)
    try:
        if not path.is_file():
            return None, "missing"
        result = RunResult.load(path)
    except (ValueError, TypeError, OSError) as error:
        return None, " ".join(str(error).split()) or type(error).__name__
    problem = result_problem(result, path.parent)
    return (None, problem) if problem else (result, None)


def result_problem(result, folder: pathlib.Path) -> str | None:
    """Why ``result`` cannot be the result of the run in ``folder`` (None if it is).

    Runs live in ``<name>-<key>/seed-<seed>/`` (`lqbench.experiment.run_dir`): a result whose
    name, configuration key or seed names another folder was copied from another run.
    """
    expected = (f"{result.name}-{result.spec_key}", f"seed-{result.seed}")
    found = (folder.parent.name, folder.name)
    if found != expected:
        return (f"holds the result of another run ({expected[0]}/{expected[1]}), not of "
                f"{found[0]}/{found[1]}")
    return None


@contextlib.contextmanager
def claim(directory: pathlib.Path, wait: bool = False):
    """Hold an exclusive ``flock`` on ``directory/.lock``; yields False if another process
    holds it (``wait=True``: block until it is released). The kernel drops the lock when the
    holder dies."""
    directory.mkdir(parents=True, exist_ok=True)
    handle = open(directory / LOCK, "a")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


def is_busy(directory: pathlib.Path) -> bool:
    """Whether another process holds the run in ``directory`` now (its ``.lock``); creates nothing."""
    lock = pathlib.Path(directory) / LOCK
    if not lock.is_file():
        return False
    try:
        with open(lock, "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def run_once(
    spec: ExperimentSpec,
    seed: int,
    results_dir: str | os.PathLike,
    *,
    runner: Runner | None = None,
    retry_failed: bool = False,
    resume_partial: bool = False,
    run_kwargs: dict[str, Any] | None = None,
    wait: bool = False,
) -> tuple[Any, str]:
    """Run ``spec`` with ``seed`` into ``results_dir`` unless already finished.

    Returns ``(result, what)`` with ``what`` one of ``"reused"`` (finished before),
    ``"trained"`` (run now: ok or failed) or ``"busy"`` (another process holds the run;
    ``result`` is None; ``wait=True`` waits for it instead). Exceptions become failed results;
    KeyboardInterrupt propagates.
    """
    directory = experiment.run_dir(spec, seed, results_dir)
    done = finished_result(directory)
    if done is not None and (done.status == "ok" or not retry_failed):
        return done, "reused"
    try:  # a run folder this user cannot write: that run fails with the reason, the sweep goes on
        directory.mkdir(parents=True, exist_ok=True)
        (directory / LOCK).touch()
    except PermissionError as error:
        return RunResult(name=spec.name, spec_key=spec.key(), seed=seed, status="failed", spec=spec.to_dict(),
                         error=f"cannot write the run folder {directory}: {error.strerror}"), "trained"
    with claim(directory, wait=wait) as mine:
        if not mine:
            return None, "busy"
        done = finished_result(directory)  # finished by another process while we waited
        if done is not None and (done.status == "ok" or not retry_failed):
            return done, "reused"
        _clear(directory, keep_backup=resume_partial)
        result = _run_guarded(spec, seed, results_dir, directory, runner or experiment.run, run_kwargs or {})
        _append_index(results_dir, directory, result)
    return result, "trained"


def _clear(directory: pathlib.Path, keep_backup: bool) -> None:
    """Remove what a killed or failed attempt left (all but the lock, and the Keras backup if kept)."""
    for child in directory.iterdir():
        if child.name == LOCK or (keep_backup and child.name == "backup"):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _run_guarded(spec, seed, results_dir, directory: pathlib.Path, runner: Runner, run_kwargs):
    try:
        result = runner(spec, seed, results_dir, **run_kwargs)
    except Exception as error:  # noqa: BLE001 - every failure of one run is recorded, the sweep goes on
        message = " ".join(f"{type(error).__name__}: {error}".split())
        if len(message) > 240:
            message = message[:240] + f"... (full traceback in {ERROR_LOG})"
        if not (directory / ERROR_LOG).is_file():  # a run in its own process wrote its own traceback
            storage.write_atomic(directory / ERROR_LOG, traceback.format_exc())
        result = RunResult(name=spec.name, spec_key=spec.key(), seed=seed, status="failed",
                           error=message, spec=spec.to_dict())
        result.save(directory / RESULT)
    finally:
        _reset_keras()
    if finished_result(directory) is None:  # a custom runner that did not save its result
        result.save(directory / RESULT)
    return result


def _reset_keras() -> None:
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].keras.backend.clear_session()


def _append_index(results_dir, directory: pathlib.Path, result, recovered: bool = False) -> None:
    results_dir = pathlib.Path(results_dir)
    line = json.dumps({"recovered": recovered, **{
        "name": result.name, "spec_key": result.spec_key, "seed": result.seed, "status": result.status,
        "error": result.error, "test_accuracy": result.test_accuracy,
        "test_accuracy_best_val": result.test_accuracy_best_val,
        "path": str(directory.relative_to(results_dir)) if directory.is_relative_to(results_dir) else str(directory),
        "host": socket.gethostname(), "pid": os.getpid(),
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }}, sort_keys=True) + "\n"
    path = pathlib.Path(results_dir) / INDEX
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())  # one write of one line with O_APPEND: lines never interleave
        os.fsync(fd)
    finally:
        os.close(fd)


def load_index(results_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every line of ``results_dir/index.jsonl`` (one per finished training, in order).
    An unparsable line (a write cut by a crash) is skipped."""
    path = pathlib.Path(results_dir) / INDEX
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries


def sweep(
    specs: Iterable[ExperimentSpec],
    results_dir: str | os.PathLike,
    *,
    runner: Runner | None = None,
    retry_failed: bool = False,
    resume_partial: bool = False,
    log: Callable[[str], None] | None = print,
    wait_busy: bool = True,
    isolate: bool = False,
    order: str = "configs",
    **run_kwargs,
) -> SweepResult:
    """Run every spec for every one of its seeds into ``results_dir``; resumable (module doc).

    # Arguments
        specs: experiment specs (`expand`, `load_specs`); duplicates run once.
        results_dir: the results folder (created).
        runner: ``runner(spec, seed, results_dir, **run_kwargs) -> RunResult`` that saves
            ``result.json`` in `lqbench.experiment.run_dir`; default `lqbench.experiment.run`.
        retry_failed: redo runs recorded as failed.
        resume_partial: continue half-written runs from their Keras backup instead of
            redoing them from scratch.
        log: called with one line per run (None: quiet).
        isolate: train each run in a fresh process of its own (`lqbench.experiment.run_isolated`):
            its peak memory is then the run's alone. Only with the default runner, without
            ``extra_callbacks`` or a ``strategy`` (those stay in this process).
        wait_busy: after the other runs, wait for the runs another process is training (and
            train them if that process dies) instead of leaving them out as ``busy``.
        order: ``"configs"`` trains every seed of a spec before the next spec; ``"seeds"``
            trains every spec's first seed, then every spec's second seed, ... (a sweep that is
            interrupted early then has one run of every configuration, not all seeds of a few).
            Either way a run whose ``init_from`` (or distillation teacher) names another spec of
            the sweep by a relative path trains after that spec's run (`dependency_depths`).
        **run_kwargs: passed to the runner (e.g. ``verbose=2``).
    """
    if order not in ORDERS:
        raise ConfigValueError(f"order: unknown value {order!r}; allowed: {', '.join(ORDERS)}")
    results_dir = pathlib.Path(results_dir)
    if isolate and runner is None and not run_kwargs.get("extra_callbacks") and run_kwargs.get("strategy") is None:
        runner = experiment.run_isolated
        run_kwargs = {k: v for k, v in run_kwargs.items() if k not in ("extra_callbacks", "strategy")}
    results_dir.mkdir(parents=True, exist_ok=True)
    pairs = training_order(specs, order)
    folders = [str(experiment.run_dir(spec, seed, results_dir).relative_to(results_dir)) for spec, seed in pairs]  # names checked
    outcome = SweepResult(results=[], trained=[], reused=[], busy=[])
    done: dict[int, tuple[Any, str]] = {}
    for i, (spec, seed) in enumerate(pairs):
        done[i] = run_once(spec, seed, results_dir, runner=runner, retry_failed=retry_failed,
                           resume_partial=resume_partial, run_kwargs=run_kwargs)
        if done[i][1] != "busy" and log:
            log(f"[{i + 1}/{len(pairs)}] {folders[i]}: {_describe(*done[i])}")
    for i, (spec, seed) in enumerate(pairs):  # runs another sweep was training: wait for them
        if done[i][1] == "busy" and wait_busy:
            if log:
                log(f"[{i + 1}/{len(pairs)}] {folders[i]}: running in another process, waiting for it")
            done[i] = run_once(spec, seed, results_dir, runner=runner, retry_failed=retry_failed,
                               resume_partial=resume_partial, run_kwargs=run_kwargs, wait=True)
            if log:
                log(f"[{i + 1}/{len(pairs)}] {folders[i]}: {_describe(*done[i])}")
        elif done[i][1] == "busy" and log:
            log(f"[{i + 1}/{len(pairs)}] {folders[i]}: {_describe(*done[i])}")
    for i, folder in enumerate(folders):
        result, what = done[i]
        if what == "reused":
            _recover_index_line(results_dir, results_dir / folder, result)
        getattr(outcome, what).append(folder)
        if result is not None:
            outcome.results.append(result)
    return outcome


def training_order(specs: Iterable[ExperimentSpec], order: str = "configs") -> list[tuple[ExperimentSpec, int]]:
    """The ``(spec, seed)`` pairs of ``specs`` (duplicates once) in the order `sweep` trains them:
    ``order`` as in `sweep`, and a run that starts from another spec's run after it."""
    if order not in ORDERS:
        raise ConfigValueError(f"order: unknown value {order!r}; allowed: {', '.join(ORDERS)}")
    pairs, seen = [], set()
    for spec in specs:
        for seed in spec.seeds:
            if (spec.name, spec.key(), seed) not in seen:
                seen.add((spec.name, spec.key(), seed))
                pairs.append((spec, seed))
    depth = dependency_depths([spec for spec, _ in pairs])
    if order == "seeds":  # stable: the i-th seed of every spec, in spec order, for i = 0, 1, ...
        pairs.sort(key=lambda pair: (pair[0].seeds.index(pair[1]), depth[(pair[0].name, pair[0].key())]))
    else:
        pairs.sort(key=lambda pair: depth[(pair[0].name, pair[0].key())])
    return pairs


def dependency_depths(specs: Sequence[ExperimentSpec]) -> dict[tuple[str, str], int]:
    """``(name, key) -> depth``: 0 for a spec that starts from no other spec of ``specs``, else one
    more than the spec its ``init_from`` / teacher names (a relative path whose first folder is that
    spec's run name or ``<name>-<key>`` folder; `lqbench.experiment.resolve_source`)."""
    by_folder: dict[str, ExperimentSpec] = {}
    for spec in specs:
        by_folder.setdefault(spec.name, spec)
        by_folder[f"{spec.name}-{spec.key()}"] = spec

    def parents(spec: ExperimentSpec) -> list[ExperimentSpec]:
        found = []
        for text in (spec.init_from, (spec.distillation or {}).get("teacher")):
            if not isinstance(text, str):
                continue
            path = pathlib.PurePath(expand_seed(text, spec.seeds[0]))
            if not path.is_absolute() and path.parts and path.parts[0] in by_folder:
                found.append(by_folder[path.parts[0]])
        return found

    depths: dict[tuple[str, str], int] = {}

    def depth(spec: ExperimentSpec, visiting: frozenset = frozenset()) -> int:
        key = (spec.name, spec.key())
        if key not in depths:
            if key in visiting:  # a cycle: no order satisfies it; each run then fails with its own error
                return 0
            depths[key] = 1 + max((depth(p, visiting | {key}) for p in parents(spec) if p is not spec), default=-1)
        return depths[key]

    for spec in specs:
        depth(spec)
    return depths


def _recover_index_line(results_dir: pathlib.Path, directory: pathlib.Path, result) -> None:
    """Add the index line of a finished run that has none (its process was killed between
    ``result.json`` and the line). Checked under the run's lock, so a run that another live
    sweep has just finished, and is about to index, is not taken for a lost one."""
    relative = str(directory.relative_to(results_dir))
    if relative in {entry.get("path") for entry in load_index(results_dir)}:
        return
    with claim(directory) as mine:
        if mine and relative not in {entry.get("path") for entry in load_index(results_dir)}:
            _append_index(results_dir, directory, result, recovered=True)


def _describe(result, what: str) -> str:
    if what == "busy":
        return "running in another process, skipped"
    prefix = "done before" if what == "reused" else "trained"
    if result.status != "ok":
        return f"{prefix}: FAILED: {result.error}"
    accuracy = result.test_accuracy_best_val if result.test_accuracy_best_val is not None else result.test_accuracy
    return f"{prefix}: test accuracy {accuracy:.4f}" if accuracy is not None else prefix
