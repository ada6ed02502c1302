"""`RunResult`: what one run of one spec with one seed produced (``result.json``).

A descriptive record, kept apart from `lqbench.experiment` so that reading results (`lqbench.report`,
`lqbench.sweep`, `lqbench.tuning`) never loads TensorFlow. ``lqbench.experiment.RunResult`` is the
same class.
"""
from __future__ import annotations

import dataclasses
import math
import os
import pathlib
from typing import Any, Iterable

from lqbench import storage

__all__ = ["RunResult", "mean_std"]


#: The numeric fields of `RunResult` (``None`` where unknown).
_NUMBERS = ("test_accuracy", "test_accuracy_best_val", "best_val_accuracy", "best_epoch", "epochs_run",
            "wall_time_s", "time_per_epoch_s", "peak_memory_bytes", "params", "footprint_bits", "saved_model_bytes",
            "resumptions")


@dataclasses.dataclass
class RunResult:
    """What one run of one spec with one seed produced."""

    name: str
    spec_key: str
    seed: int
    status: str  # "ok" or "failed"
    error: str | None = None
    test_accuracy: float | None = None  # final model
    test_accuracy_best_val: float | None = None  # weights of the best validation epoch
    best_val_accuracy: float | None = None
    best_epoch: int | None = None
    epochs_run: int = 0
    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    wall_time_s: float = 0.0
    time_per_epoch_s: float | None = None
    peak_memory_bytes: int | None = None
    memory_method: str | None = None
    params: int | None = None
    footprint_bits: int | None = None
    saved_model_bytes: int | None = None
    jit_compile: bool = False
    execution: dict[str, Any] = dataclasses.field(default_factory=dict)  # `lqbench.execution.ExecutionDecision`
    resumptions: int = 0  # times the run was resumed after an interruption (SIGINT, SIGKILL)
    model_path: str | None = None
    log_dir: str | None = None
    spec: dict[str, Any] = dataclasses.field(default_factory=dict)
    # the saved models the run started from (spec ``init_from``) and distilled from: ``spec`` (the
    # spec's text), ``path`` (the model file), and when it is a run's model ``run`` (its folder),
    # ``name``, ``spec_key``, ``seed`` of that run
    init_source: dict[str, Any] | None = None
    teacher_source: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> "RunResult":
        """The result stored as ``value``; `ValueError` naming what is wrong if it is not one."""
        if not isinstance(value, dict):
            raise ValueError(f"not a run result: a JSON {type(value).__name__}, expected an object with "
                             f"{', '.join(_REQUIRED)}")
        missing = [k for k in _REQUIRED if k not in value]
        if missing:
            raise ValueError(f"not a run result: missing {', '.join(missing)}")
        names = {f.name for f in dataclasses.fields(cls)}
        result = cls(**{k: v for k, v in value.items() if k in names})
        if not (isinstance(result.name, str) and isinstance(result.spec_key, str) and isinstance(result.seed, int)
                and not isinstance(result.seed, bool) and result.status in ("ok", "failed")
                and isinstance(result.spec, dict) and isinstance(result.history, dict)):
            raise ValueError("not a run result: name, spec_key (text), seed (integer), status ('ok' or 'failed'), "
                             "spec and history (tables) have the wrong types")
        for field in _NUMBERS:  # a report averages these: a string or a bool there is not a result
            number = getattr(result, field)
            if number is not None and (isinstance(number, bool) or not isinstance(number, (int, float))):
                raise ValueError(f"not a run result: {field} is {number!r}, expected a number")
        for key, values in result.history.items():
            if not isinstance(values, list) or any(isinstance(v, bool) or not isinstance(v, (int, float))
                                                   for v in values if v is not None):
                raise ValueError(f"not a run result: history[{key!r}] is not a list of numbers")
        return result

    def save(self, path: str | os.PathLike) -> pathlib.Path:
        return storage.write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RunResult":
        return cls.from_dict(storage.read_json(path))


_REQUIRED = ("name", "spec_key", "seed", "status")


def mean_std(values: Iterable[float]) -> tuple[float | None, float | None, int]:
    """Mean, sample standard deviation (ddof=1; None for n < 2) and n of the finite values."""
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(values)
    if n == 0:
        return None, None, 0
    mean = sum(values) / n
    if n < 2:
        return mean, None, n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)), n
