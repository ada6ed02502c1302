"""Hyperparameter search over a spec's grid with KerasTuner, then the best configuration for N seeds.

Paper 000's protocol (its section 4.2, see References): for each configuration, grid-search the learning rate
``mu in {1e-3, 1e-4, 1e-5}`` and the algorithm's own hyperparameter (HSIC ``gamma in {2, 20, 200}``,
SigpropTL ``alpha in {1, 0.1, 0.01}``; `lqbench.spec.DEFAULT_GRIDS`), choosing the point with the
highest validation accuracy, then re-run the chosen point for several seeds and report the
test accuracy as mean ± std:

\\[
p^\\star = \\arg\\max_{p \\in \\mathrm{grid}} \\max_{e \\le E} \\mathrm{acc}_{\\mathrm{val}}(p, e), \\qquad
\\text{report } \\bar a \\pm s \\text{ of } \\mathrm{acc}_{\\mathrm{test}}(p^\\star, \\text{seed}_i),\\ i = 1..N
\\]

(selection on the validation split; paper 000's authors selected on test). Each trial is one
`lqbench.experiment.run` of ``spec.with_values(point)`` with the spec's first seed. The grid
keys become KerasTuner ``hp.Choice`` hyperparameters and the oracle (`keras_tuner.GridSearch`
by default, ``"random"`` or ``"bayesian"`` as options) proposes the points; a subclass of the
tuner overrides ``run_trial`` to return the objective.

Everything lives in ``output_dir``:

- ``_tuner/<project>/``: KerasTuner's project (oracle state, one ``trial_*/trial.json`` per
  trial). An interrupted search started again resumes there (KerasTuner's ``overwrite=False``
  reload: finished trials are kept, the interrupted one is retried).
- ``_trials/<name>-<key>/seed-<seed>/``: the trial runs (`lqbench.experiment.run_dir` layout).
  A trial whose ``result.json`` is already there is not trained again. (`lqbench.report` skips
  ``_`` folders, so ``lqbench report OUTPUT_DIR`` reports the final runs only.)
- ``final/``: the best configuration for every final seed, run as a resumable
  `lqbench.sweep.sweep` (the first seed's trial run is copied, not retrained).
- ``search.json``: the `SearchResult`.

KerasTuner's distributed mode works unchanged: set ``KERASTUNER_TUNER_ID``
(``chief`` for the oracle, any other id for a worker), ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT`` and start the same ``lqbench tune`` command once per process. The
chief serves the oracle until the search is over, then runs the final seeds; workers run
trials and return when the oracle has no more.

!!! example
    ```python
    from lqbench import ExperimentSpec, tuning

    spec = ExperimentSpec(dataset="digits", epochs=5, grid={"learning_rate": [1e-2, 1e-3]})
    found = tuning.search(spec, "results/search", final_seeds=3)
    print(found.best_values, found.test_accuracy_mean, found.test_accuracy_std)
    ```

``tune_each`` applies the protocol to every configuration of a sweep (``lqbench sweep --tune``).

# References
- Paper 000 (binary training without backpropagation: BP, DFA, DRTP, HSIC, SigpropTL on
  binarized VGG-19 / MobileNetV2 / MLP-Mixer), section 4.2 (grids, seeds); reference code:
  https://github.com/BenCrulis/binary_nn_extended @212664d.
- KerasTuner: https://keras.io/keras_tuner/ (``GridSearch``, distributed tuning).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import pathlib
import shutil
from typing import Any, Callable, Sequence

import keras_tuner as kt
from keras_tuner import config as kt_config
from keras_tuner.distribute import utils as dist_utils

from lqbench import experiment, storage, sweep
from lqbench.results import mean_std
from lqbench.spec import DEFAULT_GRIDS, OBJECTIVES, TUNERS, ExperimentSpec, SpecError

#: Search strategies: name -> KerasTuner tuner class (subclassed below).

#: Objectives a search can maximise or minimise: name -> (direction, how to read it from a RunResult).


class SearchError(RuntimeError):
    """A search that could not produce a best configuration (every trial failed)."""


# ---------------------------------------------------------------------------- grid <-> hyperparameters
def search_grid(spec: ExperimentSpec) -> dict[str, list]:
    """The grid a search explores: ``spec.grid``, or the paper's `DEFAULT_GRIDS` for its algorithm."""
    if spec.grid:
        return {k: list(v) for k, v in spec.grid.items()}
    if spec.algorithm not in DEFAULT_GRIDS:
        raise SpecError(f"grid: spec has no grid and algorithm {spec.algorithm!r} has no default grid; "
                        f"defaults exist for: {', '.join(DEFAULT_GRIDS)}")
    return {k: list(v) for k, v in DEFAULT_GRIDS[spec.algorithm].items()}


def _encoding(values: list) -> tuple[list, bool]:
    """Values KerasTuner's ``Choice`` accepts (one of int, float, str, bool) and whether they
    are JSON-encoded strings (for lists/tables/mixed types)."""
    kinds = {type(v) for v in values}
    if kinds <= {int, float} and float in kinds and bool not in kinds:
        return [float(v) for v in values], False
    if len(kinds) == 1 and kinds <= {int, float, str, bool}:
        return list(values), False
    return [json.dumps(v, sort_keys=True) for v in values], True


def hyperparameters(grid: dict[str, list]) -> kt.HyperParameters:
    """One ``hp.Choice`` per grid key, with the grid's values in order (the first is the default)."""
    hp = kt.HyperParameters()
    for key, values in grid.items():
        encoded, _ = _encoding(values)
        if len(set(map(str, encoded))) != len(encoded):
            raise SpecError(f"grid: {key} has duplicate values {values!r}")
        hp.Choice(key, encoded, ordered=False)
    return hp


def point_from_hyperparameters(values: dict[str, Any], grid: dict[str, list]) -> dict[str, Any]:
    """The grid point (spec values) of a KerasTuner trial's hyperparameter values."""
    point = {}
    for key, grid_values in grid.items():
        encoded, is_json = _encoding(grid_values)
        value = values[key]
        point[key] = json.loads(value) if is_json else grid_values[encoded.index(value)]
    return point


# ---------------------------------------------------------------------------- the tuners
class _SpecTrials:
    """``run_trial`` for every tuner: one `lqbench.experiment.run` per trial, objective returned."""

    def __init__(self, *, spec: ExperimentSpec, grid: dict[str, list], trials_dir: pathlib.Path,
                 objective_name: str, run_kwargs: dict[str, Any] | None = None, runner=None, **tuner_kwargs):
        # Set before KerasTuner's constructor, which may reload, or serve the oracle (chief).
        self.spec, self.grid, self.trials_dir = spec, grid, pathlib.Path(trials_dir)
        self.objective_name, self.run_kwargs = objective_name, dict(run_kwargs or {})
        self.runner = runner
        super().__init__(**tuner_kwargs)

    def run_trial(self, trial, *args, **kwargs):
        point = point_from_hyperparameters(trial.hyperparameters.values, self.grid)
        spec = self.spec.with_values(point)
        result, what = sweep.run_once(spec, spec.seeds[0], self.trials_dir, runner=self.runner,
                                      run_kwargs=self.run_kwargs, retry_failed=True)
        if what == "busy":
            raise kt.errors.FailedTrialError(f"trial run {point} is being trained by another process")
        if result.status != "ok":
            raise kt.errors.FailedTrialError(f"{point}: {result.error}")
        value = objective_value(result, self.objective_name)
        if value is None or not math.isfinite(value):
            raise kt.errors.FailedTrialError(f"{point}: no finite {self.objective_name}")
        return {self.objective_name: value}

    # No Keras model is built by the tuner itself (each run saves its own).
    def save_model(self, trial_id, model, step=0):
        return None

    def load_model(self, trial):
        raise NotImplementedError("lqbench tuners keep models in each trial run's folder (model.keras)")


class GridSearchTuner(_SpecTrials, kt.GridSearch):
    """`keras_tuner.GridSearch` whose trials are `lqbench.experiment.run` calls."""


class RandomSearchTuner(_SpecTrials, kt.RandomSearch):
    """`keras_tuner.RandomSearch` whose trials are `lqbench.experiment.run` calls."""


class BayesianTuner(_SpecTrials, kt.BayesianOptimization):
    """`keras_tuner.BayesianOptimization` whose trials are `lqbench.experiment.run` calls."""


_TUNER_CLASSES = {"grid": GridSearchTuner, "random": RandomSearchTuner, "bayesian": BayesianTuner}


def objective_value(result, objective: str) -> float | None:
    """The objective of one run: best-epoch validation accuracy, or lowest validation loss."""
    if objective == "val_accuracy":
        return result.best_val_accuracy
    if objective == "val_loss":
        losses = [v for v in result.history.get("val_loss", []) if math.isfinite(v)]
        return min(losses) if losses else None
    raise SpecError(f"objective: unknown value {objective!r}; allowed: {', '.join(OBJECTIVES)}")


# ---------------------------------------------------------------------------- results
@dataclasses.dataclass
class SearchResult:
    """A finished search: every trial, the best point, and the best point over the final seeds."""

    objective: str
    grid: dict[str, list]
    trials: list[dict[str, Any]]  # trial_id, point, status, score, message
    best_values: dict[str, Any] | None
    best_score: float | None
    best_spec: ExperimentSpec | None
    final_seeds: list[int]
    final: Any = None  # lqbench.sweep.SweepResult of the final runs (None on a worker)
    role: str = "local"  # "local", "chief" or "worker"
    output_dir: str = ""

    @property
    def final_results(self) -> list:
        return list(self.final.results) if self.final is not None else []

    def _stat(self, metric: str):
        return mean_std(getattr(r, metric) for r in self.final_results if r.status == "ok")

    @property
    def test_accuracy_mean(self) -> float | None:
        """Mean test accuracy (best-validation-epoch weights) of the final seeds."""
        return self._stat("test_accuracy_best_val")[0]

    @property
    def test_accuracy_std(self) -> float | None:
        """Sample standard deviation (ddof=1) of the same."""
        return self._stat("test_accuracy_best_val")[1]

    @property
    def n(self) -> int:
        return self._stat("test_accuracy_best_val")[2]

    @property
    def failed_final(self) -> int:
        return sum(1 for r in self.final_results if r.status != "ok")

    def summary_line(self) -> str:
        if self.best_values is None:
            return "no best configuration (this process is a worker, or every trial failed)"
        text = f"best {json.dumps(self.best_values)} ({self.objective} {self.best_score:.4f})"
        if self.final is not None:
            mean, std, n = self._stat("test_accuracy_best_val")
            if mean is not None:
                text += f"; test accuracy {100 * mean:.2f}"
                text += f" ± {100 * std:.2f} %" if std is not None else " %"
                text += f" over {n} seed(s)"
            if self.failed_final:
                text += f"; {self.failed_final} final run(s) failed"
        return text

    def to_dict(self) -> dict[str, Any]:
        mean, std, n = self._stat("test_accuracy_best_val")
        final_mean, final_std, _ = self._stat("test_accuracy")
        return {
            "objective": self.objective, "grid": self.grid, "trials": self.trials,
            "best_values": self.best_values, "best_score": self.best_score,
            "best_spec": self.best_spec.to_dict() if self.best_spec else None,
            "final_seeds": self.final_seeds, "role": self.role,
            "final_runs": [{"seed": r.seed, "status": r.status, "error": r.error,
                            "test_accuracy_best_val": r.test_accuracy_best_val,
                            "test_accuracy": r.test_accuracy} for r in self.final_results],
            "test_accuracy_mean": mean, "test_accuracy_std": std, "n": n,
            "test_accuracy_last_epoch_mean": final_mean, "test_accuracy_last_epoch_std": final_std,
        }


def final_seed_list(spec: ExperimentSpec, count: int) -> list[int]:
    """The spec's first ``count`` seeds, continued with the smallest unused non-negative integers."""
    seeds = list(spec.seeds[:count])
    candidate = 0
    while len(seeds) < count:
        if candidate not in seeds:
            seeds.append(candidate)
        candidate += 1
    return seeds


def _project_name(spec: ExperimentSpec, grid, tuner: str, objective: str) -> str:
    blob = json.dumps({"key": spec.key(), "grid": grid, "tuner": tuner, "objective": objective,
                       "seed": spec.seeds[0]}, sort_keys=True, default=str)
    return f"{spec.name}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"


# ---------------------------------------------------------------------------- search
def search(
    spec: ExperimentSpec,
    output_dir: str | os.PathLike,
    max_trials: int | None = None,
    objective: str = "val_accuracy",
    tuner: str = "grid",
    final_seeds: int = 5,
    overwrite: bool = False,
    final_dir: str | os.PathLike | None = None,
    verbose: int = 0,
    log=None,
    runner=None,
    **run_kwargs,
) -> SearchResult:
    """Search ``spec``'s grid (or its algorithm's default grid), then run the best point for
    ``final_seeds`` seeds. Resumable; see the module doc for the folder layout.

    # Arguments
        spec: the configuration; ``spec.grid`` (or `DEFAULT_GRIDS`) gives the points and
            ``spec.seeds[0]`` the trials' seed.
        output_dir: the search folder (KerasTuner project, trial runs, final runs).
        max_trials: stop after this many trials (default: the whole grid; random and
            Bayesian search default to the grid's size too).
        objective: ``"val_accuracy"`` (best epoch, maximised) or ``"val_loss"`` (minimised).
        tuner: ``"grid"``, ``"random"`` or ``"bayesian"``.
        final_seeds: how many seeds the best point is run for (0: none).
        overwrite: delete a previous search in ``output_dir`` instead of resuming it.
        final_dir: where the final runs go (default ``output_dir/final``).
        verbose: progress of the runs (`lqbench.experiment.run`'s ``verbose``) and of KerasTuner.
        log: optional callable receiving progress lines.
        runner: ``runner(spec, seed, output_dir, **run_kwargs) -> RunResult`` used for every
            run (default `lqbench.experiment.run`; see `lqbench.sweep.sweep`).
        **run_kwargs: passed to `lqbench.experiment.run` (e.g. ``save_model=False``).
    """
    _check_search_arguments(tuner, objective, final_seeds, max_trials)
    experiment.check_name(spec.name)  # the tuner's project folder is named after it: never outside output_dir
    run_kwargs = {"verbose": verbose, **run_kwargs}
    grid = search_grid(spec)
    spec.with_values({"grid": grid})  # every grid value must give a valid spec
    output = pathlib.Path(output_dir)
    final_path = pathlib.Path(final_dir) if final_dir is not None else output / "final"
    _prepare_folder(output, final_path if final_dir is None else None, overwrite)
    role = "chief" if dist_utils.is_chief_oracle() else "worker" if dist_utils.has_chief_oracle() else "local"
    instance = _make_tuner(spec, grid, output, tuner, objective, max_trials, run_kwargs, runner)
    if role != "chief":  # the chief's constructor has served the oracle until the search ended
        _run_trials(instance, verbose)
    trials = _trial_table(instance, grid) if role != "worker" else []
    best_values, best_score = _best_point(instance, grid)
    seeds = final_seed_list(spec, final_seeds)
    result = SearchResult(objective=objective, grid=grid, trials=trials, best_values=best_values,
                          best_score=best_score, best_spec=None, final_seeds=seeds, role=role,
                          output_dir=str(output))
    if role == "worker":
        return result
    if best_values is None:
        messages = [t["message"] for t in trials if t["message"]]
        raise SearchError(f"every trial of the search failed; first error: {messages[0] if messages else 'unknown'}")
    result.best_spec = spec.with_values({**best_values, "grid": {}, "seeds": seeds or [spec.seeds[0]]})
    if seeds:
        _reuse_trial_run(spec.with_values(best_values), spec.seeds[0], output / "_trials", result.best_spec,
                         final_path)
        result.final = sweep.sweep([result.best_spec], final_path, log=log, runner=runner, **run_kwargs)
    storage.write_json(output / "search.json", result.to_dict())
    return result


def _check_search_arguments(tuner, objective, final_seeds, max_trials) -> None:
    if tuner not in TUNERS:
        raise SpecError(f"tuner: unknown value {tuner!r}; allowed: {', '.join(TUNERS)}")
    if objective not in OBJECTIVES:
        raise SpecError(f"objective: unknown value {objective!r}; allowed: {', '.join(OBJECTIVES)}")
    if isinstance(final_seeds, bool) or not (isinstance(final_seeds, int) and final_seeds >= 0):
        raise SpecError(f"final_seeds: {final_seeds!r} must be a non-negative integer")
    if max_trials is not None and (isinstance(max_trials, bool) or not (isinstance(max_trials, int) and max_trials > 0)):
        raise SpecError(f"max_trials: {max_trials!r} must be a positive integer")


def _prepare_folder(output: pathlib.Path, own_final: pathlib.Path | None, overwrite: bool) -> None:
    """Create the search folder; with ``overwrite``, delete a previous search (and its own final runs)."""
    if overwrite:
        for path in (output / "_tuner", output / "_trials", output / "search.json") + ((own_final,) if own_final else ()):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    output.mkdir(parents=True, exist_ok=True)


def _make_tuner(spec, grid, output: pathlib.Path, tuner: str, objective: str, max_trials, run_kwargs, runner):
    """The KerasTuner tuner over ``grid`` (on the chief, its constructor serves the oracle until done)."""
    size = math.prod(len(v) for v in grid.values())
    options = dict(
        objective=kt.Objective(objective, direction=OBJECTIVES[objective]),
        max_trials=min(max_trials, size) if max_trials else size,
        hyperparameters=hyperparameters(grid),
        allow_new_entries=False,
        tune_new_entries=False,
        # a diverged trial fails; stop only when every trial of the grid could have failed
        max_consecutive_failed_trials=size + 1,
        directory=str(output / "_tuner"),
        project_name=_project_name(spec, grid, tuner, objective),
        overwrite=False,
    )
    if tuner != "grid":
        options["seed"] = spec.seeds[0]
    return _TUNER_CLASSES[tuner](spec=spec, grid=grid, trials_dir=output / "_trials", objective_name=objective,
                                 run_kwargs=run_kwargs, runner=runner, **options)


def _run_trials(instance, verbose) -> None:
    debug, kt_config.DEBUG = kt_config.DEBUG, bool(verbose)  # KerasTuner prints failed trials' tracebacks
    try:
        instance.search(verbose=1 if verbose else 0)
    finally:
        kt_config.DEBUG = debug


def _trial_table(instance, grid) -> list[dict[str, Any]]:
    """Every trial of the oracle: point, status, score and the last line of its error."""
    trials = []
    for trial in sorted(instance.oracle.trials.values(), key=lambda t: t.trial_id):
        trials.append({
            "trial_id": trial.trial_id,
            "point": point_from_hyperparameters(trial.hyperparameters.values, grid) if trial.hyperparameters.values
            else {},
            "status": str(trial.status),
            "score": trial.score,
            "message": (trial.message or "").strip().splitlines()[-1] if trial.message else None,
        })
    return trials


def _best_point(instance, grid) -> tuple[dict | None, float | None]:
    try:
        best = instance.oracle.get_best_trials(1)
    except Exception:  # noqa: BLE001 - a worker whose chief has already gone
        best = []
    best = [t for t in best if t.status == kt.engine.trial.TrialStatus.COMPLETED and t.score is not None]
    if not best:
        return None, None
    return point_from_hyperparameters(best[0].hyperparameters.values, grid), float(best[0].score)


def _reuse_trial_run(trial_spec: ExperimentSpec, seed: int, trials_dir: pathlib.Path,
                     final_spec: ExperimentSpec, final_dir: pathlib.Path) -> None:
    """Copy the best trial's run into the final folder when it is the same configuration and seed."""
    if seed not in final_spec.seeds or trial_spec.key() != final_spec.key() or trial_spec.name != final_spec.name:
        return
    source = experiment.run_dir(trial_spec, seed, trials_dir)
    target = experiment.run_dir(final_spec, seed, final_dir)
    found = sweep.finished_result(source)
    if found is None or found.status != "ok" or sweep.finished_result(target) is not None:
        return
    if target.exists():
        shutil.rmtree(target)
    # result.json last (atomically): a copy interrupted before it is a half-written run, redone
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(sweep.LOCK, "backup", sweep.RESULT))
    found.spec = final_spec.to_dict()
    found.model_path = str(target / "model.keras") if found.model_path else None
    found.log_dir = str(target / "logs") if found.log_dir else None
    found.save(target / sweep.RESULT)


def tune_each(
    specs: Sequence[ExperimentSpec],
    results_dir: str | os.PathLike,
    tuner: str = "grid",
    max_trials: int | None = None,
    log: Callable[[str], None] | None = print,
    **search_kwargs,
) -> sweep.SweepResult:
    """Paper 000's protocol over a sweep: grid-search every spec (trials in
    ``results_dir/_search/<name>-<key>``), then run its best configuration for the spec's
    seeds into ``results_dir`` (where `lqbench.report` finds them). Resumable like `sweep`.
    A spec whose ``init_from`` (or teacher) names another spec's run is searched after it
    (`lqbench.sweep.dependency_depths`); its trial runs find that run in ``results_dir``."""
    results_dir = pathlib.Path(results_dir)
    for spec in specs:
        experiment.check_name(spec.name)  # the search folders are named after the spec too
    depth = sweep.dependency_depths(list(specs))
    specs = sorted(specs, key=lambda spec: depth[(spec.name, spec.key())])
    outcome = sweep.SweepResult(results=[], trained=[], reused=[], busy=[])
    for i, spec in enumerate(specs, 1):
        found = search(spec, results_dir / "_search" / f"{spec.name}-{spec.key()}", tuner=tuner,
                              max_trials=max_trials, final_seeds=len(spec.seeds), final_dir=results_dir,
                              **search_kwargs)
        if log:
            log(f"[{i}/{len(specs)}] {spec.name}: {found.summary_line()}")
        if found.final is not None:
            outcome.results += found.final.results
            outcome.trained += found.final.trained
            outcome.reused += found.final.reused
            outcome.busy += found.final.busy
    return outcome
