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
    model_path: str | None = None
    log_dir: str | None = None
    spec: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> "RunResult":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in value.items() if k in names})

    def save(self, path: str | os.PathLike) -> pathlib.Path:
        return storage.write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RunResult":
        return cls.from_dict(storage.read_json(path))


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
