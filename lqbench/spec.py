"""`ExperimentSpec`: everything that defines one training experiment, saved as TOML.

A spec names the dataset, the model and its architecture arguments, what is binarized
(`lqbench.Binarization`), the training algorithm (`lqbench.algorithms`), the optimizer or
multi-phase recipe (`lqbench.optimizers`, `lqbench.recipes`), the hyperparameters, the
seeds to repeat, and an optional search grid. Specs are validated when they are created
or loaded: unknown names, impossible values and incompatible combinations raise
`SpecError` with one line naming the field, the value and what is allowed.

!!! example
    ```toml
    name = "mlp-drtp"
    dataset = "mnist"
    model = "binarynet_mlp"
    algorithm = "drtp"
    learning_rate = 1e-3
    epochs = 10
    seeds = [0, 1, 2]

    [model_args]
    hidden_units = [512, 512]

    [binarization]
    weights = true
    activations = true

    [grid]
    learning_rate = [1e-3, 1e-4, 1e-5]
    ```
"""
from __future__ import annotations

import dataclasses
import math
import pathlib
from typing import Any

from lqbench._compat import tomllib
from lqbench.binarization import Binarization
from lqbench.execution import MODES


class SpecError(ValueError):
    """An invalid experiment specification (one line: field, value, allowed values)."""


#: Hyperparameter grids of the seed papers, used by `lqbench tune` when a spec has no grid.
DEFAULT_GRIDS: dict[str, dict[str, list]] = {
    "bp": {"learning_rate": [1e-3, 1e-4, 1e-5]},
    "dfa": {"learning_rate": [1e-3, 1e-4, 1e-5]},
    "drtp": {"learning_rate": [1e-3, 1e-4, 1e-5]},
    "hsic": {"learning_rate": [1e-3, 1e-4, 1e-5], "algorithm_args.gamma": [2.0, 20.0, 200.0]},
    "sigprop": {"learning_rate": [1e-3, 1e-4, 1e-5], "algorithm_args.alpha": [1.0, 0.1, 0.01]},
}

SCHEDULES = ("constant", "cosine", "linear", "step")


@dataclasses.dataclass
class ExperimentSpec:
    """One experiment: dataset x model x binarization x algorithm x optimizer x hyperparameters.

    Every field has a default that runs offline on the embedded `digits` dataset.
    ``grid`` maps a field name (or ``"<dict field>.<key>"``, e.g. ``"algorithm_args.gamma"``)
    to the list of values a search tries.
    """

    name: str = "experiment"
    dataset: str = "digits"
    data_dir: str | None = None
    image_size: list[int] | None = None
    augment: bool = False
    model: str = "binarynet_mlp"
    model_args: dict[str, Any] = dataclasses.field(default_factory=lambda: {"hidden_units": [256, 256]})
    skip_connections: bool = True
    binarization: Binarization = dataclasses.field(default_factory=Binarization)
    post_training_binarization: bool = False
    algorithm: str = "bp"
    algorithm_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    optimizer: str = "adam"
    optimizer_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"
    epochs: int = 10
    batch_size: int = 128
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0])
    xla: str = "auto"  # execution mode, `lqbench.execution.MODES`
    grid: dict[str, list] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.binarization, dict):
            try:
                self.binarization = Binarization.from_dict(self.binarization)
            except ValueError as error:
                raise SpecError(f"binarization: {error}") from None
        if isinstance(self.xla, bool):  # `xla = true/false` as in the `jit_compile` of earlier versions
            self.xla = "on" if self.xla else "off"
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check every field; raise `SpecError` naming the first bad one."""
        from lqbench import algorithms, data
        import lqbench.models as models

        _check_name("dataset", self.dataset, data.available(), prefix_ok="folder:")
        _check_name("model", self.model, models.available())
        _check_name("algorithm", self.algorithm, algorithms.available())
        _check_name("optimizer", self.optimizer, optimizer_names())
        _check_name("schedule", self.schedule, SCHEDULES)
        _check_name("xla", self.xla, MODES)
        _check_positive_int("epochs", self.epochs)
        _check_positive_int("batch_size", self.batch_size)
        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate < math.inf):
            raise SpecError(f"learning_rate: {self.learning_rate!r} is not a positive finite number")
        if not (isinstance(self.weight_decay, (int, float)) and 0 <= self.weight_decay < 1):
            raise SpecError(f"weight_decay: {self.weight_decay!r} must be in [0, 1)")
        if not self.seeds or not all(isinstance(s, int) and s >= 0 for s in self.seeds):
            raise SpecError(f"seeds: {self.seeds!r} must be a non-empty list of non-negative integers")
        if len(set(self.seeds)) != len(self.seeds):
            raise SpecError(f"seeds: {self.seeds!r} contains duplicates")
        if self.image_size is not None and (
            len(self.image_size) != 2 or not all(isinstance(v, int) and v > 0 for v in self.image_size)
        ):
            raise SpecError(f"image_size: {self.image_size!r} must be [height, width] of positive integers")
        for key in ("model_args", "algorithm_args", "optimizer_args", "grid"):
            if not isinstance(getattr(self, key), dict):
                raise SpecError(f"{key}: expected a table, got {getattr(self, key)!r}")
        if self.post_training_binarization and self.binarization.is_full_precision:
            raise SpecError(
                "post_training_binarization: needs a binarization that binarizes something, got full precision"
            )
        if self.post_training_binarization and self.algorithm != "bp":
            raise SpecError(f"post_training_binarization: only with algorithm 'bp', got {self.algorithm!r}")
        self._validate_grid()

    def _validate_grid(self) -> None:
        fields = {f.name for f in dataclasses.fields(self)} - {"grid", "name", "seeds"}
        for key, values in self.grid.items():
            root = key.split(".", 1)[0]
            if root not in fields:
                raise SpecError(f"grid: unknown field {key!r}; allowed: {', '.join(sorted(fields))}")
            if "." in key and root not in ("model_args", "algorithm_args", "optimizer_args", "binarization"):
                raise SpecError(f"grid: {key!r} — only *_args tables and binarization take dotted keys")
            if not isinstance(values, list) or not values:
                raise SpecError(f"grid: {key} must be a non-empty list, got {values!r}")
            for value in values:
                self.with_values({key: value, "grid": {}})  # each grid point must itself be a valid spec

    # ------------------------------------------------------------------ variants
    def with_values(self, values: dict[str, Any]) -> "ExperimentSpec":
        """A validated copy with ``values`` set (keys as in ``grid``)."""
        config = self.to_dict()
        for key, value in values.items():
            if "." in key:
                table, sub = key.split(".", 1)
                config.setdefault(table, {})
                config[table] = {**config[table], sub: value}
            else:
                config[key] = value
        return ExperimentSpec.from_dict(config)

    def grid_points(self) -> list[dict[str, Any]]:
        """The product of the grid's values, in order (one point ``{}`` without a grid)."""
        points: list[dict[str, Any]] = [{}]
        for key, values in self.grid.items():
            points = [{**p, key: v} for p in points for v in values]
        return points

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        config = dataclasses.asdict(self)
        config["binarization"] = self.binarization.to_dict()
        return config

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> "ExperimentSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        if "jit_compile" in config and "xla" not in config:  # the field's name before `xla`
            config = {**config, "xla": config["jit_compile"]}
        config = {k: v for k, v in config.items() if k != "jit_compile"}
        unknown = sorted(set(config) - names)
        if unknown:
            raise SpecError(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
        return cls(**config)

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(_drop_none(self.to_dict()))

    def save(self, path: str | pathlib.Path) -> pathlib.Path:
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_toml())
        return path

    @classmethod
    def from_toml(cls, text: str, source: str = "<string>") -> "ExperimentSpec":
        return cls.from_dict(parse_toml(text, source))

    @classmethod
    def load(cls, path: str | pathlib.Path) -> "ExperimentSpec":
        path = pathlib.Path(path)
        if not path.is_file():
            raise SpecError(f"spec file {path} does not exist")
        return cls.from_toml(path.read_text(), source=str(path))

    def key(self) -> str:
        """A stable short hash of the spec (without seeds, name and grid): identifies a configuration."""
        import hashlib
        import json

        config = self.to_dict()
        for field in ("seeds", "name", "grid"):
            config.pop(field)
        return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def parse_toml(text: str, source: str = "<string>") -> dict[str, Any]:
    """The table of a TOML text; `SpecError` naming ``source`` when it is not valid TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{source}: not valid TOML: {error}") from None


def optimizer_names() -> list[str]:
    """Every name `ExperimentSpec.optimizer` takes: optimizers and multi-phase recipes."""
    from lqbench import optimizers, recipes

    return list(dict.fromkeys([*optimizers.available(), *recipes.available()]))


def _drop_none(value):
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_drop_none(v) for v in value]
    return value


def _check_name(field: str, value: Any, allowed, prefix_ok: str | None = None) -> None:
    if prefix_ok and isinstance(value, str) and value.startswith(prefix_ok):
        return
    if value not in allowed:
        extra = f", {prefix_ok}PATH" if prefix_ok else ""
        raise SpecError(f"{field}: unknown value {value!r}; allowed: {', '.join(allowed)}{extra}")


def _check_positive_int(field: str, value: Any) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        raise SpecError(f"{field}: {value!r} must be a positive integer")
