"""`ExperimentSpec`: everything that defines one training experiment, saved as TOML.

A spec names the dataset, the model and its architecture arguments, what is binarized
(`lqbench.Binarization`), the training algorithm (`lqbench.algorithms`), the binarizing
method (`lqbench.methods`: ``ste``, ``bop``, ``bop2``, ``bnew``, ``proxquant``, ``bmd``,
``cb``) with its hyperparameters, optional distillation from a teacher, an optional saved
model to start from (``init_from``), the seeds to repeat and an optional search grid.

Every setting is validated when the spec is created or loaded, *before anything is built*:
field names, types (the TOML string ``"false"`` is not a bool, ``true`` is not a learning rate,
``seeds = 3`` is not a list), ranges, the typed hyperparameters that each registry publishes
(models: `lqbench.models.registry.hparams`, algorithms, methods: `lqbench.methods.schema`,
estimators), and incompatible pairs (a method that updates binary weights on a
full-precision model, continuous binarization with an update-unlocked algorithm, ...). An
invalid spec raises `SpecError` (a `ValueError`; `SpecTypeError` for a wrong type, also a
`TypeError`) with one line naming the field, the value and what is allowed.

This module imports without TensorFlow; the registries it validates against are loaded
(`lqbench._lazy`) when a spec is first validated.

**Starting from a saved model** (``init_from``): the weights of a saved model are loaded into
the freshly built model before the method prepares it, as paper 001 starts every binarizing
method from one phase-1 model per seed (binary activations, real weights). The model must have
the same layers with weights as the saved one (same ``model`` and ``model_args``; binary and
real weights differ only in their quantizers, so a W32A1 model can start a W1A1 one). The value
names, with ``{seed}`` replaced by the run's seed:

- a saved model: ``.keras`` / ``.h5`` file or SavedModel folder;
- a run folder (``<name>-<key>/seed-<n>``, its ``model.keras``; the run must have finished
  with status ``ok``), or a configuration folder ``<name>-<key>`` (its run with the same seed);
- a run *name* without its key: ``init_from = "p001cpu-phase1"`` is the run named so in the
  results folder (its ``<name>-<key>`` folder, which must be the only one of that name), with
  the same seed: a sweep's group names its phase-1 group without knowing its key.

A relative path is looked up in the run's output folder (``--output``, the sweep's results
folder; the trial runs of a search, in ``<results>/_search/...``, look in ``<results>``), then
in the working directory. Nothing is looked up when the spec loads (a sweep's phase-1 runs do
not exist yet); a missing, failed or mismatching source fails the run with one line, and
``result.json`` records the source (``init_source``: path, run name, spec key, seed). The
distillation ``teacher`` is resolved by the same rules (an absolute teacher path must exist
when the spec loads; a relative one may name a run of the sweep, e.g. its real-valued group).

Earlier spec files name the method ``optimizer`` (``"adam"``, ``"sgd"``, ``"bop"``, ...,
``"cb"``) with ``optimizer_args``: they still load (``optimizer = "sgd"`` is the method
``ste`` with ``method_args.optimizer = "sgd"``).

!!! example
    ```toml
    name = "mlp-drtp"
    dataset = "mnist"
    model = "binarynet_mlp"
    algorithm = "drtp"
    method = "ste"
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

    A method started from a phase-1 run of the same results folder (paper 001):

    ```toml
    name = "bnew-from-phase1"
    dataset = "cifar10"
    model = "resnet20"
    method = "bnew"
    method_args = {pretrain_fraction = 0.0}
    init_from = "p001cpu-phase1"    # or "p001cpu-phase1-<key>/seed-{seed}", "/abs/phase1-{seed}.keras"
    ```
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pathlib
import re
import string
from typing import Any

from lqbench import hparams as _hp
from lqbench._compat import tomllib
from lqbench._lazy import lazy_module
from lqbench.binarization import Binarization
from lqbench.errors import ConfigTypeError, ConfigValueError, IncompatibleError

algorithms = lazy_module("lqbench.algorithms")
data = lazy_module("lqbench.data")
estimators = lazy_module("lqbench.estimators")
methods = lazy_module("lqbench.methods")
models = lazy_module("lqbench.models")
execution = lazy_module("lqbench.execution")
tomli_w = lazy_module("tomli_w")

__all__ = ["DEFAULT_GRIDS", "DEFAULT_MODEL_ARGS", "OBJECTIVES", "TUNERS", "ExperimentSpec", "SpecError",
           "SpecIncompatibleError", "SpecTypeError",
           "expand_seed", "parse_toml", "parse_value"]


class SpecError(ConfigValueError):
    """An invalid experiment specification (one line: field, value, allowed values)."""


class SpecTypeError(SpecError, TypeError):
    """A spec field or hyperparameter of the wrong type."""


class SpecIncompatibleError(SpecError, IncompatibleError):
    """Two spec settings that cannot be combined."""


#: Hyperparameter grids of the seed papers, used by `lqbench tune` when a spec has no grid.
DEFAULT_GRIDS: dict[str, dict[str, list]] = {
    "bp": {"learning_rate": [1e-3, 1e-4, 1e-5]},
    "dfa": {"learning_rate": [1e-3, 1e-4, 1e-5]},
    "drtp": {"learning_rate": [1e-3, 1e-4, 1e-5]},
    "hsic": {"learning_rate": [1e-3, 1e-4, 1e-5], "algorithm_args.gamma": [2.0, 20.0, 200.0]},
    "sigprop": {"learning_rate": [1e-3, 1e-4, 1e-5], "algorithm_args.alpha": [1.0, 0.1, 0.01]},
}

#: Architecture arguments a spec uses when it gives none for its model (small, offline-friendly).
DEFAULT_MODEL_ARGS: dict[str, dict[str, Any]] = {"binarynet_mlp": {"hidden_units": [256, 256]}}

SCHEDULES = ("constant", "cosine", "linear", "step")

#: KerasTuner search strategies of `lqbench.tuning` and `lqbench.sweep`.
TUNERS = ("grid", "random", "bayesian")
#: Search objectives and their direction.
OBJECTIVES = {
    "val_accuracy": "max",  # best-epoch validation accuracy
    "val_loss": "min",  # lowest validation loss over epochs
}

#: Earlier ``optimizer`` names: the method they are, with fixed method arguments.
LEGACY_OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "adam": ("ste", {"optimizer": "adam"}),
    "sgd": ("ste", {"optimizer": "sgd"}),
    "continuous": ("cb", {}),
}

#: Distillation (`lqbench.distillation.Distillation`, with any algorithm): ``teacher`` is a saved Keras model.
DISTILLATION = (
    _hp.Hparam("teacher", "str", None, optional=False,
               doc="saved teacher model (.keras/.h5/SavedModel), run folder or run name, found as init_from"),
    _hp.Hparam("alpha", "float", 1.0, low=0, doc="weight of the distributional (KD) loss"),
    _hp.Hparam("temperature", "float", 1.0, low=0, low_inclusive=False),
    _hp.Hparam("ce_weight", "float", 0.0, low=0, doc="weight of cross-entropy on the labels (0: KD alone)"),
)

_FIELD_TYPES = (
    _hp.Hparam("name", "str", "experiment"),
    _hp.Hparam("dataset", "str", "digits"),
    _hp.Hparam("data_dir", "str", None, optional=True),
    _hp.Hparam("image_size", "ints", None, optional=True, length=2, low=1),
    _hp.Hparam("augment", "bool", False),
    _hp.Hparam("model", "str", "binarynet_mlp"),
    _hp.Hparam("skip_connections", "bool", True),
    _hp.Hparam("post_training_binarization", "bool", False),
    _hp.Hparam("algorithm", "str", "bp"),
    _hp.Hparam("method", "str", "ste"),
    _hp.Hparam("learning_rate", "float", 1e-3, low=0, low_inclusive=False, high=math.inf, high_inclusive=False),
    _hp.Hparam("weight_decay", "float", 0.0, low=0, high=1, high_inclusive=False),
    _hp.Hparam("schedule", "str", "constant"),
    _hp.Hparam("epochs", "int", 10, low=1),
    _hp.Hparam("batch_size", "int", 128, low=1),
    _hp.Hparam("xla", "str", "auto", doc="execution mode, lqbench.execution.MODES"),
    _hp.Hparam("init_from", "str", None, optional=True, doc="saved model or run to start from ({seed} allowed)"),
)

_BINARIZATION_TYPES = (
    _hp.Hparam("weights", "bool", True),
    _hp.Hparam("activations", "bool", True),
    _hp.Hparam("weight_estimator", "str", "ste"),
    _hp.Hparam("activation_estimator", "str", "ste_clipped"),
    _hp.Hparam("keep_first_last", "bool", True),
    _hp.Hparam("clip_weights", "bool", True),
    _hp.Hparam("weight_estimator_kwargs", "any", {}),
    _hp.Hparam("activation_estimator_kwargs", "any", {}),
    _hp.Hparam("inputs", "str", "all", choices=("all", "activations")),
    _hp.Hparam("pad_values", "float", 1.0, choices=(0.0, 1.0)),
    _hp.Hparam("sign_at_zero", "float", 1.0, choices=(1.0, -1.0)),
)

_TABLES = ("model_args", "algorithm_args", "method_args", "binarization", "distillation")


@dataclasses.dataclass
class ExperimentSpec:
    """One experiment: dataset x model x binarization x algorithm x method x hyperparameters.

    Every field has a default that runs offline on the embedded `digits` dataset.
    ``model_args=None`` takes `DEFAULT_MODEL_ARGS` for the model (else its builder's defaults).
    ``grid`` maps a field name (or ``"<table>.<key>"``, e.g. ``"algorithm_args.gamma"``) to the
    list of values a search tries. ``distillation`` is ``None`` or a table with ``teacher``
    (a saved model), ``alpha``, ``temperature``, ``ce_weight`` (`lqbench.distillation`).
    ``init_from`` is ``None`` or the saved model (or run, or run name) whose weights the model
    starts from, ``{seed}`` replaced by the run's seed (module doc).
    ``optimizer`` / ``optimizer_args`` are the earlier names of ``method`` / ``method_args``.
    """

    name: str = "experiment"
    dataset: str = "digits"
    data_dir: str | None = None
    image_size: list[int] | None = None
    augment: bool = False
    model: str = "binarynet_mlp"
    model_args: dict[str, Any] | None = None
    skip_connections: bool = True
    binarization: Binarization = dataclasses.field(default_factory=Binarization)
    post_training_binarization: bool = False
    algorithm: str = "bp"
    algorithm_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    method: str = "ste"
    method_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    distillation: dict[str, Any] | None = None
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"
    epochs: int = 10
    batch_size: int = 128
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0])
    xla: str = "auto"  # execution mode, `lqbench.execution.MODES`
    init_from: str | None = None  # saved model / run / run name to start from (module doc)
    grid: dict[str, list] = dataclasses.field(default_factory=dict)
    optimizer: dataclasses.InitVar[str | None] = None
    optimizer_args: dataclasses.InitVar[dict | None] = None

    def __post_init__(self, optimizer=None, optimizer_args=None):
        if optimizer is not None or optimizer_args is not None:
            self._apply_legacy(optimizer, optimizer_args)
        if self.model_args is None and isinstance(self.model, str):
            self.model_args = dict(DEFAULT_MODEL_ARGS.get(self.model, {}))
        if isinstance(self.binarization, str):  # a label, as in sweep axes: "W1A1", "W32A1", ...
            try:
                self.binarization = parse_label(self.binarization)
            except SpecError:
                raise SpecError(f"binarization: label {self.binarization!r} is not one of W1A1, W1A32, W32A1, "
                                "W32A32 (or give a table)") from None
        if not isinstance(self.binarization, (dict, Binarization)):
            raise SpecTypeError(f"binarization: expected a table or a label like 'W1A1', got {self.binarization!r}")
        if isinstance(self.binarization, dict):
            with _field("binarization"):
                _hp.validate(_BINARIZATION_TYPES, self.binarization, "binarization", noun="field")
                self.binarization = Binarization.from_dict(self.binarization)
        if isinstance(self.image_size, tuple):
            self.image_size = list(self.image_size)
        if isinstance(self.xla, bool):  # `xla = true/false` as in the `jit_compile` of earlier versions
            self.xla = "on" if self.xla else "off"
        self.validate()

    def _apply_legacy(self, optimizer, optimizer_args) -> None:
        if optimizer is not None:
            if not isinstance(optimizer, str):
                raise SpecTypeError(f"optimizer: {optimizer!r} must be a string (a method name)")
            method, fixed = LEGACY_OPTIMIZERS.get(optimizer, (optimizer, {}))
            self.method = method
            self.method_args = {**fixed, **dict(self.method_args or {})}
            if fixed and self.method_args.get("optimizer", fixed.get("optimizer")) != fixed.get("optimizer"):
                self.method_args.update(fixed)
        if optimizer_args is not None:
            if not isinstance(optimizer_args, dict):
                raise SpecTypeError(f"optimizer_args: expected a table, got {optimizer_args!r}")
            self.method_args = {**dict(self.method_args or {}), **optimizer_args}

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check every field and every registry's hyperparameters; raise `SpecError` naming the first bad one."""
        for hparam in _FIELD_TYPES:
            with _field(hparam.name):
                hparam.check(getattr(self, hparam.name))
        for key in ("model_args", "algorithm_args", "method_args", "grid"):
            if not isinstance(getattr(self, key), dict):
                raise SpecTypeError(f"{key}: expected a table, got {getattr(self, key)!r}")
        if self.distillation is not None and not isinstance(self.distillation, dict):
            raise SpecTypeError(f"distillation: expected a table, got {self.distillation!r}")
        self._validate_seeds()
        _check_name("dataset", self.dataset, data.available(), prefix_ok="folder:")
        _check_name("model", self.model, models.available())
        _check_name("algorithm", self.algorithm, algorithms.available())
        _check_name("method", self.method, methods.available())
        _check_name("schedule", self.schedule, SCHEDULES)
        _check_name("xla", self.xla, execution.MODES)
        with _field("model_args"):
            models.registry.check_args(self.model, self.model_args)
        with _field("algorithm_args"):
            _hp.validate(algorithm_schema(self.algorithm), self.algorithm_args, f"algorithm {self.algorithm!r}")
        with _field("method_args"):
            methods.get(self.method, **self.method_args)
        with _field("binarization"):
            for which in ("weight", "activation"):
                estimators.get(getattr(self.binarization, f"{which}_estimator"),
                               **getattr(self.binarization, f"{which}_estimator_kwargs"))
        if self.init_from is not None:
            _check_source("init_from", self.init_from)
        if self.distillation is not None:
            with _field("distillation"):
                config = _hp.validate(DISTILLATION, self.distillation, "distillation", noun="field")
                if config["teacher"] is None:
                    raise SpecError("distillation: teacher is required (the path of a saved Keras model)")
                if config["alpha"] == 0 and config["ce_weight"] == 0:
                    raise SpecError("distillation: alpha = 0 and ce_weight = 0 leave nothing to train on; "
                                    "set alpha > 0 (the distributional loss) or ce_weight > 0 (cross-entropy)")
                _check_source("distillation: teacher", config["teacher"])
                # an absolute path can be checked now; a relative one may name a run of the sweep
                missing = [path for path in {expand_seed(config["teacher"], seed) for seed in self.seeds}
                           if pathlib.Path(path).is_absolute() and not pathlib.Path(path).exists()]
                if missing:
                    raise SpecError(f"distillation: teacher {missing[0]!r} does not exist")
        with _field(None):
            self._validate_combinations()
        self._validate_grid()

    def _validate_seeds(self) -> None:
        seeds = self.seeds
        if not isinstance(seeds, list):
            raise SpecTypeError(f"seeds: {seeds!r} must be a non-empty list of non-negative integers")
        if not seeds:
            raise SpecError(f"seeds: {seeds!r} must be a non-empty list of non-negative integers")
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            raise SpecTypeError(f"seeds: {seeds!r} must be a non-empty list of non-negative integers")
        if not all(s >= 0 for s in seeds):
            raise SpecError(f"seeds: {seeds!r} must be a non-empty list of non-negative integers")
        if len(set(seeds)) != len(seeds):
            raise SpecError(f"seeds: {seeds!r} contains duplicates")

    def _validate_combinations(self) -> None:
        binarization = self.binarization
        if self.post_training_binarization:
            if binarization.is_full_precision:
                raise IncompatibleError(
                    "post_training_binarization: needs a binarization that binarizes something, got full precision")
            if self.algorithm != "bp":
                raise IncompatibleError(f"post_training_binarization: only with algorithm 'bp', got {self.algorithm!r}")
            if self.method != "ste":
                raise IncompatibleError(
                    f"post_training_binarization: trains in full precision, so only with method 'ste', got {self.method!r}")
        cls = algorithms.get_class(self.algorithm)
        unlocked = bool(getattr(cls, "update_unlocked", getattr(cls, "tap_granularity", None) == "tensor"))
        trained_binary = not self.post_training_binarization
        methods.get_class(self.method).check(
            binary_weights=trained_binary and binarization.weights,
            binary_activations=trained_binary and binarization.activations,
            algorithm=self.algorithm, unlocked=unlocked)

    def _validate_grid(self) -> None:
        fields = ({f.name for f in dataclasses.fields(self)} | {"optimizer"}) - {"grid", "name", "seeds"}
        self.grid = {("method_args" + k[len("optimizer_args"):] if k.startswith("optimizer_args") else k): v
                     for k, v in self.grid.items()}  # the earlier name of method_args
        for key, values in self.grid.items():
            root = key.split(".", 1)[0]
            if root not in fields:
                raise SpecError(f"grid: unknown field {key!r}; allowed: {', '.join(sorted(fields))}")
            if "." in key and root not in _TABLES:
                raise SpecError(f"grid: {key!r} — only the tables {', '.join(_TABLES)} take dotted keys")
            if not isinstance(values, list) or not values:
                raise SpecError(f"grid: {key} must be a non-empty list, got {values!r}")
            for value in values:
                with _field(f"grid: {key}={value!r}"):
                    self.with_values({key: value, "grid": {}})  # each grid point must itself be a valid spec

    # ------------------------------------------------------------------ variants
    def with_values(self, values: dict[str, Any]) -> "ExperimentSpec":
        """A validated copy with ``values`` set (keys as in ``grid``; dotted keys merge into tables).

        Changing ``model``, ``method`` or ``algorithm`` to another name starts its ``*_args``
        table from that name's defaults, plus the entries ``values`` sets in it (the earlier
        name's arguments do not apply to the new one), as ``--model`` does on the command line.
        The earlier keys ``optimizer`` and ``optimizer_args[.key]`` are read as ``method`` and
        ``method_args[.key]``.
        """
        values = _translate_legacy(values)
        config = self.to_dict()
        for name, table in (("model", "model_args"), ("method", "method_args"), ("algorithm", "algorithm_args")):
            if name in values and values[name] != config.get(name):
                config[table] = {}
        for key, value in values.items():
            if "." in key:
                table, sub = key.split(".", 1)
                current = config.get(table) or {}
                if not isinstance(current, dict):
                    raise SpecError(f"{key}: {table} is not a table")
                config[table] = {**current, sub: value}
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
        if not isinstance(config, dict):
            raise SpecTypeError(f"a spec is a table, got {config!r}")
        names = {f.name for f in dataclasses.fields(cls)} | {"optimizer", "optimizer_args"}
        if "jit_compile" in config and "xla" not in config:  # the field's name before `xla`
            config = {**config, "xla": config["jit_compile"]}
        config = {k: v for k, v in config.items() if k != "jit_compile"}
        unknown = sorted(set(config) - names)
        if unknown:
            allowed = sorted(names - {"optimizer", "optimizer_args"})
            raise SpecError(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
        return cls(**config)

    def to_toml(self) -> str:
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
        return cls.from_toml(read_text(path, "spec file"), source=str(path))

    def key(self) -> str:
        """A stable short hash of the spec (without seeds, name and grid): identifies a configuration."""
        config = self.to_dict()
        for field in ("seeds", "name", "grid"):
            config.pop(field)
        for optional in ("distillation", "init_from"):  # absent: the keys of earlier versions
            if config.get(optional) is None:
                config.pop(optional)
        if config["binarization"].get("sign_at_zero") == 1.0:  # the default: keys of earlier versions
            config["binarization"].pop("sign_at_zero")
        return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def algorithm_schema(name: str) -> tuple[_hp.Hparam, ...]:
    """Typed hyperparameters of training algorithm ``name`` (published ``hparams`` or its ``defaults``)."""
    cls = algorithms.get_class(name)
    published = getattr(cls, "hparams", None)
    if isinstance(published, tuple) and all(isinstance(h, _hp.Hparam) for h in published):
        return published
    return _hp.from_defaults(dict(cls.defaults), dict(cls.choices))


def parse_label(label: str) -> dict[str, bool]:
    """``"W1A32"`` -> ``{"weights": True, "activations": False}`` (the papers' W/A notation)."""
    match = re.fullmatch(r"[Ww](1|32)[Aa](1|32)", label.strip())
    if not match:
        raise SpecError(f"binarization label {label!r} is not one of W1A1, W1A32, W32A1, W32A32")
    return {"weights": match.group(1) == "1", "activations": match.group(2) == "1"}


def read_text(path: pathlib.Path, what: str = "file") -> str:
    """The UTF-8 text of a spec or sweep file; `SpecError` (one line) when it is not UTF-8 text."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(f"{what} {path} is not UTF-8 text (byte {error.start}: {error.reason}); "
                        "a spec is a TOML file") from None
    except OSError as error:
        raise SpecError(f"{what} {path} cannot be read: {error.strerror}") from None


def parse_toml(text: str, source: str = "<string>") -> dict[str, Any]:
    """The table of a TOML text; `SpecError` naming ``source`` when it is not valid TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{source}: not valid TOML: {error}") from None


def parse_value(text: str) -> Any:
    """A command-line value read as TOML (``[512, 512]``, ``true``, ``1e-3``, ``"x"``), else the bare string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def expand_seed(text: str, seed: int) -> str:
    """``text`` with its ``{seed}`` placeholders replaced by ``seed`` (``{{``/``}}`` are braces)."""
    return text.format(seed=seed)


def _check_source(field: str, text: Any) -> None:
    """A saved-model reference (``init_from``, a teacher): a non-empty string whose only placeholder is ``{seed}``."""
    if not isinstance(text, str):
        raise SpecTypeError(f"{field}: {text!r} must be a string (a saved model, a run folder or a run name)")
    if not text.strip():
        raise SpecError(f"{field}: {text!r} is empty; expected a saved model, a run folder or a run name")
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
        expand_seed(text, 0)
    except (ValueError, IndexError, KeyError, AttributeError):
        fields = None
    if fields is None or any(name != "seed" for name in fields):
        raise SpecError(f"{field}: {text!r} has a placeholder other than {{seed}} (write {{{{ and }}}} for braces)")


def _translate_legacy(values: dict[str, Any]) -> dict[str, Any]:
    """``optimizer`` / ``optimizer_args[.key]`` (earlier names) as ``method`` / ``method_args[.key]``."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "optimizer" and isinstance(value, str):
            method, fixed = LEGACY_OPTIMIZERS.get(value, (value, {}))
            out["method"] = method
            out.update({f"method_args.{k}": v for k, v in fixed.items()})
        elif key == "optimizer_args" or key.startswith("optimizer_args."):
            out["method_args" + key[len("optimizer_args"):]] = value
        else:
            out[key] = value
    return out


def _drop_none(value):
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_drop_none(v) for v in value]
    return value


class _field:
    """Re-raise configuration errors inside the block as `SpecError`/`SpecTypeError` prefixed by the field."""

    def __init__(self, name: str | None):
        self.name = name

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None or isinstance(error, SpecError):
            return False
        if isinstance(error, (ConfigTypeError, ConfigValueError, TypeError, ValueError)):
            message = str(error.args[0]) if error.args else repr(error)
            text = message if self.name is None or message.startswith(self.name) else f"{self.name}: {message}"
            kind = (SpecTypeError if isinstance(error, TypeError) else
                    SpecIncompatibleError if isinstance(error, IncompatibleError) else SpecError)
            raise kind(text) from None
        return False


def _check_name(field: str, value: Any, allowed, prefix_ok: str | None = None) -> None:
    if prefix_ok and isinstance(value, str) and value.startswith(prefix_ok):
        return
    if value not in allowed:
        extra = f", {prefix_ok}PATH" if prefix_ok else ""
        raise SpecError(f"{field}: unknown value {value!r}; allowed: {', '.join(allowed)}{extra}")
