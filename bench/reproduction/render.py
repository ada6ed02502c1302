"""``REPRODUCTION.md`` from the committed reproduction results: each seed paper's table beside lqbench's.

    python bench/reproduction/render.py            # writes REPRODUCTION.md at the repository root
    python bench/reproduction/render.py --check    # exit 1 if the committed REPRODUCTION.md is stale

Inputs, and nothing else (no number is typed by hand):

- ``bench/reproduction/papers.toml``: the papers' published cells;
- ``bench/reproduction/results/<section>/`` (``paper000`` ... ``paper003``, ``extra``): the runs of
  ``lqbench sweep <preset> --output bench/reproduction/results/<section>``, read with
  `lqbench.report.load_results` and aggregated over seeds with `lqbench.results.mean_std`; each
  folder's ``sweep.toml`` says which runs were planned (the ones without a result are *pending*);
- the CPU-scale preset of each section (`PRESETS`), for its header comment (budget, departures).

How a run is matched to a paper's cell is one small function per paper (``key_000`` ... ``key_003``),
and each of the eight findings of issue #18 is decided by one function (``verdict_a`` ...
``verdict_h``) under a rule stated in `RULES` and printed next to the verdict.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import math
import os
import pathlib
import subprocess
import sys
from typing import Any, Callable, Iterable, Sequence

import lqbench  # noqa: F401  (selects tf-keras before TensorFlow is imported)
from lqbench import presets
from lqbench._compat import tomllib
from lqbench.errors import LqbenchError
from lqbench.report import load_results
from lqbench.results import RunResult, mean_std
from lqbench.sweep import SweepSpec

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PAPERS_FILE = HERE / "papers.toml"
RESULTS = HERE / "results"
OUTPUT = ROOT / "REPRODUCTION.md"
COMMAND = "python bench/reproduction/render.py"

SECTIONS = ("paper000", "paper001", "paper002", "paper003", "extra")
#: The CPU-scale preset that makes each section's results.
PRESETS = {"paper000": "paper000-cpu", "paper001": "paper001-cpu", "paper002": "paper002-cpu",
           "paper003": "paper003-cpu", "extra": "extra-fashion-cpu"}

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive at this budget"
PENDING = "inconclusive: runs pending"

# ---------------------------------------------------------------------------- names shown
DATASETS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenette": "ImageNette", "indoor67": "Indoor67",
            "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "svhn_cropped": "SVHN", "digits": "digits (8x8)"}
#: Datasets with no copy on this machine (../shared/data/README.md): their cells are never run here.
UNAVAILABLE = {"indoor67": "Indoor67 cannot be had here", "svhn_cropped": "SVHN cannot be had here",
               "cifar100": "CIFAR-100 cannot be had here"}
MODELS = {"mlp_mixer": "MLP-Mixer", "mobilenet_v2": "MobileNetV2", "vgg19": "VGG-19", "resnet20": "ResNet-20",
          "lenet": "base CNN", "vgg_small": "VGG-small", "binarynet_mlp": "MLP", "binarynet_cnn": "CNN"}
ALGORITHMS = {"bp": "BP", "dfa": "DFA", "drtp": "DRTP", "hsic": "HSIC", "sigprop": "SigpropTL"}
METHODS = {"ste": "STE", "bmd": "BMD", "bop": "Bop", "bop2": "Bop2", "bnew": "BNEW", "proxquant": "ProxQuant",
           "cb": "CB (continuous binarization)", "real": "real-valued", "fp": "full precision"}
ESTIMATORS = {"none": "none (full precision)", "naive_post_training": "naive post-training binarization",
              "ste": "STE (clipped; lqbench `ste_clipped`)", "ste_identity": "identity STE (lqbench `ste`)",
              "approx_sign": "ApproxSign (second order)", "tanh": "tanh", "cosh2": "2/cosh",
              "swish_sign": "SwishSign", "gumbel": "Gumbel-softmax", "ede": "EDE (IR-Net decaying tanh)"}
#: lqbench estimator name -> the paper 003 name: the paper's "STE" is the standard clipped STE.
ESTIMATOR_TO_PAPER = {"ste_clipped": "ste", "ste": "ste_identity"}
#: Paper 000 models that have skip connections (VGG-19 has none to remove: Table 8 repeats Table 7).
MODELS_WITH_SKIPS = ("mlp_mixer", "mobilenet_v2")


def data_label(dataset: str, image_size: Sequence[int] | None = None) -> str:
    """What lqbench trained on: the JPEG copies are labelled as such (../shared/data/README.md)."""
    if dataset == "cifar10":
        return "CIFAR-10 (JPEG q75 copy)"
    if dataset == "imagenette":
        size = _pixels(image_size)
        return "ImageNette (224 px JPEG q75 copy" + ("" if size in (None, "224 px") else f", resized to {size}") + ")"
    return DATASETS.get(dataset, dataset)


def _pixels(image_size) -> str | None:
    if not image_size:
        return None
    h, w = (list(image_size) + list(image_size))[:2]
    return f"{h} px" if h == w else f"{h}x{w} px"


def binarization_label(spec: dict) -> str:
    """``W1A1`` / ``W1A32`` / ``W32A1`` / ``W32A32`` as in `lqbench.report.field_value`."""
    b = spec.get("binarization") or {}
    return f"W{1 if b.get('weights', True) else 32}A{1 if b.get('activations', True) else 32}"


# ---------------------------------------------------------------------------- matching: spec -> paper cell key
def key_000(spec: dict) -> tuple:
    """Paper 000 (Crulis et al.): ``(dataset, model, algorithm, binarization label, skips)``.

    ``skips`` is the spec's ``skip_connections`` for MobileNetV2 and MLP-Mixer and always True for
    models without skip connections (VGG-19). A run with another method than plain STE backprop,
    or with post-training binarization, gets that appended to its algorithm (an extra row).
    """
    model = spec.get("model")
    algorithm = spec.get("algorithm", "bp")
    extras = [m for m in (spec.get("method", "ste"),) if m != "ste"]
    if spec.get("post_training_binarization"):
        extras.append("post-training")
    if extras:
        algorithm = f"{algorithm} ({', '.join(extras)})"
    skips = bool(spec.get("skip_connections", True)) if model in MODELS_WITH_SKIPS else True
    return (spec.get("dataset"), model, algorithm, binarization_label(spec), skips)


def key_001(spec: dict) -> tuple:
    """Paper 001 (BNEW): ``(dataset, model, method, distillation)``; ``"real"`` is the real-valued
    baseline (W32A32), the binary methods are W1A1; other binarizations are named by their label."""
    label = binarization_label(spec)
    method = spec.get("method", "ste")
    if label == "W32A32" and method != "cb":
        method = "real"
    elif label != "W1A1":
        method = f"{method} {label}"
    return (spec.get("dataset"), spec.get("model"), method, spec.get("distillation") is not None)


def key_002(spec: dict) -> tuple:
    """Paper 002 (continuous binarization): ``(dataset, model, method)``: ``"cb"`` is method ``cb``
    (it binarizes the activations itself), ``"fp"`` the W32A32 baseline, ``"ste"`` binary
    activations with real weights (W32A1) trained by STE."""
    label = binarization_label(spec)
    method = spec.get("method", "ste")
    if method == "cb":
        name = "cb"
    elif label == "W32A32":
        name = "fp"
    elif label == "W32A1" and method == "ste":
        name = "ste"
    else:
        name = f"{method} {label}"
    return (spec.get("dataset"), spec.get("model"), name)


def key_003(spec: dict) -> tuple:
    """Paper 003 (So): ``(dataset, model, estimator, binarization label)``.

    ``"none"`` = full precision (W32A32), ``"naive_post_training"`` = a model trained in full
    precision and binarized afterwards (``post_training_binarization``); otherwise the weight
    estimator (the activation estimator for W32A1; ``w/a`` when a W1A1 run uses two different
    ones), in the paper's names: lqbench ``ste_clipped`` is the paper's STE and lqbench's identity
    ``ste`` is ``"ste_identity"`` (no cell in the paper).
    """
    label = binarization_label(spec)
    b = spec.get("binarization") or {}
    weight = ESTIMATOR_TO_PAPER.get(b.get("weight_estimator"), b.get("weight_estimator"))
    activation = ESTIMATOR_TO_PAPER.get(b.get("activation_estimator"), b.get("activation_estimator"))
    if spec.get("post_training_binarization"):
        estimator = "naive_post_training"
    elif label == "W32A32":
        estimator = "none"
    elif label == "W1A32":
        estimator = weight
    elif label == "W32A1":
        estimator = activation
    else:
        estimator = weight if weight == activation else f"{weight}/{activation}"
    if spec.get("algorithm", "bp") != "bp" or spec.get("method", "ste") != "ste":
        estimator = f"{estimator} ({spec.get('algorithm', 'bp')}, {spec.get('method', 'ste')})"
    return (spec.get("dataset"), spec.get("model"), estimator, label)


def key_extra(spec: dict) -> tuple:
    """The extra (no paper): ``(dataset, model, algorithm, method, binarization label)``."""
    return (spec.get("dataset"), spec.get("model"), spec.get("algorithm", "bp"), spec.get("method", "ste"),
            binarization_label(spec))


def _cell_000(row: list, table: dict) -> tuple:
    return (*row, bool(table.get("skip_connections", True)))


@dataclasses.dataclass(frozen=True)
class Layout:
    """How one section names its rows: key fields (headers), spec -> key, paper cell -> key."""

    fields: tuple[str, ...]
    key: Callable[[dict], tuple]
    cell_key: Callable[[list, dict], tuple] = lambda row, table: tuple(row)


LAYOUTS = {
    "paper000": Layout(("dataset", "model", "algorithm", "W/A", "skips"), key_000, _cell_000),
    "paper001": Layout(("dataset", "model", "method", "distillation"), key_001),
    "paper002": Layout(("dataset", "model", "method"), key_002),
    "paper003": Layout(("dataset", "model", "estimator", "W/A"), key_003),
    "extra": Layout(("dataset", "model", "algorithm", "method", "W/A"), key_extra),
}


def show_field(field: str, value: Any) -> str:
    """A key value as the tables show it."""
    if field == "dataset":
        return DATASETS.get(value, str(value))
    if field == "model":
        return MODELS.get(value, str(value))
    if field == "algorithm":
        return ALGORITHMS.get(value, str(value))
    if field == "method":
        return METHODS.get(value, str(value))
    if field == "estimator":
        return ESTIMATORS.get(value, str(value))
    if field in ("skips", "distillation"):
        return "yes" if value else "no"
    return str(value)


# ---------------------------------------------------------------------------- metrics
#: A paper cell's metric -> (the metric lqbench compares it with, to the common scale).
PAPER_METRICS: dict[str | None, tuple[str, Callable[[float], float]]] = {
    None: ("accuracy", lambda v: v),
    "test_error_pct": ("accuracy", lambda v: 100.0 - v),
    "peak_memory_gb": ("peak_memory", lambda v: v),
    "run_time_s": ("time", lambda v: v),
}
#: How each metric is shown: (title, decimals).
METRIC_TITLES = {None: ("test accuracy %", 1), "test_error_pct": ("test error %", 2),
                 "peak_memory_gb": ("peak memory (paper: GPU GB; lqbench: process GiB)", 2),
                 "run_time_s": ("run time (paper: total s on a GPU; lqbench: s per epoch on the CPU)", 1)}


def run_value(result: RunResult, metric: str) -> float | None:
    """One run's value of ``metric``: ``accuracy`` in % (the test accuracy of the epoch with the best
    validation accuracy, else of the last epoch), ``peak_memory`` in GiB, ``time`` in s per epoch."""
    if metric == "accuracy":
        value = result.test_accuracy_best_val if result.test_accuracy_best_val is not None else result.test_accuracy
        return None if value is None else 100.0 * value
    if metric == "peak_memory":
        return None if result.peak_memory_bytes is None else result.peak_memory_bytes / 2**30
    if metric == "time":
        return result.time_per_epoch_s
    raise ValueError(f"unknown metric {metric!r}; allowed: accuracy, peak_memory, time")


# ---------------------------------------------------------------------------- data model
@dataclasses.dataclass(frozen=True)
class Stat:
    """Mean ± sample std over the finished seeds of one configuration (or a paper's cell)."""

    mean: float | None
    std: float | None
    n: int
    failed: int = 0
    pending: int = 0
    errors: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Cell:
    """One published number: ``value`` (± ``std``, NaN when the paper gives none) in ``metric``."""

    table: str
    key: tuple
    metric: str | None
    value: float
    std: float
    text: str = ""  # as the paper prints it: "24.0 (2.67)"

    def stat(self) -> Stat:
        """On the common scale of `PAPER_METRICS` (test error -> accuracy); a missing std counts as 0."""
        convert = PAPER_METRICS[self.metric][1]
        return Stat(convert(self.value), self.std if math.isfinite(self.std) else 0.0, 1)


@dataclasses.dataclass
class Config:
    """One lqbench configuration (``<name>-<spec_key>``): its finished runs and planned seeds."""

    name: str
    spec_key: str
    spec: dict
    key: tuple
    results: list[RunResult] = dataclasses.field(default_factory=list)
    planned: tuple[int, ...] = ()

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.spec_key}"

    @property
    def ok(self) -> list[RunResult]:
        return [r for r in self.results if r.status == "ok"]

    def stat(self, metric: str = "accuracy") -> Stat:
        mean, std, n = mean_std(run_value(r, metric) for r in self.ok)
        failed = [r for r in self.results if r.status != "ok"]
        done = {r.seed for r in self.results}
        return Stat(mean, std, n, failed=len(failed), pending=len(set(self.planned) - done),
                    errors=tuple(sorted({one_line(r.error) for r in failed})))

    def selection_score(self) -> float:
        """Validation accuracy (mean over seeds): which of several configurations of one cell is used."""
        mean, _, _ = mean_std(r.best_val_accuracy for r in self.ok)
        return mean if mean is not None else -1.0


def one_line(text: str | None) -> str:
    """A run's error as one line: the last line of a traceback, else the first line."""
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()] or ["unknown error"]
    line = " ".join((lines[-1] if lines[0].startswith("Traceback") else lines[0]).split())
    return line if len(line) <= 160 else line[:157] + "..."


@dataclasses.dataclass
class Measure:
    """lqbench's side of one paper cell: ``status`` is ``ok``, ``pending``, ``not run`` or
    ``undecided`` (fewer than 2 finished seeds and none coming: failures or a single seed)."""

    status: str
    stat: Stat | None = None
    config: Config | None = None
    reason: str = ""


@dataclasses.dataclass
class Section:
    """One results folder (a paper, or the extra) with the paper's cells and the plan."""

    id: str
    paper: dict | None
    cells: list[Cell]
    configs: list[Config]
    results_dir: pathlib.Path
    plan: str  # where the plan came from: "sweep.toml", "preset", or "" (unknown)
    plan_note: str = ""
    preset: str | None = None
    preset_header: list[str] = dataclasses.field(default_factory=list)
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    #: finished runs of configurations the plan no longer has (an earlier version of the preset):
    #: listed, never matched to a cell nor counted in a verdict
    outside: list[Config] = dataclasses.field(default_factory=list)

    @property
    def layout(self) -> Layout:
        return LAYOUTS[self.id]

    @property
    def runs(self) -> list[RunResult]:
        return [r for c in self.configs for r in c.results]

    def matching(self, key: tuple) -> list[Config]:
        """The configurations of ``key``, the one verdicts use first: best mean validation accuracy,
        then most finished seeds, then folder name."""
        configs = [c for c in self.configs if c.key == key]
        return sorted(configs, key=lambda c: (-c.selection_score(), -len(c.ok), c.folder))

    def cell(self, key: tuple, metric: str = "accuracy") -> Stat | None:
        """The paper's value for ``key`` on the common scale (`PAPER_METRICS`), or None."""
        for cell in self.cells:
            if cell.key == key and PAPER_METRICS[cell.metric][0] == metric:
                return cell.stat()
        return None

    def keys(self) -> set[tuple]:
        return {c.key for c in self.cells} | {c.key for c in self.configs}

    def not_run_reason(self, key: tuple) -> str:
        dataset = key[0]
        return UNAVAILABLE.get(dataset, "not in the CPU-scale preset")

    def measure(self, key: tuple, metric: str = "accuracy") -> Measure:
        """lqbench's value for ``key``: the configuration with the best mean validation accuracy
        when several match (grid points), and whether it can be used (2 finished seeds or more)."""
        configs = self.matching(key)
        if not configs:
            if self.plan or key[0] in UNAVAILABLE:
                return Measure("not run", reason=self.not_run_reason(key))
            return Measure("pending", reason="no sweep yet")
        chosen = configs[0]
        stat = chosen.stat(metric)
        pending = sum(c.stat(metric).pending for c in configs)
        if stat.n >= 2:
            return Measure("ok", stat, chosen)
        if pending:
            return Measure("pending", stat, chosen, reason=f"{stat.n} of {stat.n + stat.pending} seeds finished")
        reason = f"{stat.failed} failed" if stat.failed and not stat.n else f"{stat.n} finished seed(s)"
        return Measure("undecided", stat, chosen, reason=reason)


# ---------------------------------------------------------------------------- loading
def load_papers(path: str | os.PathLike = PAPERS_FILE) -> dict[str, dict]:
    with open(path, "rb") as file:
        return tomllib.load(file)


def paper_cells(section_id: str, paper: dict | None) -> list[Cell]:
    """The paper's cells as `Cell`s with keys in the section's `Layout`."""
    if not paper:
        return []
    layout = LAYOUTS[section_id]
    metric = paper.get("metric")
    cells = []
    for table in paper.get("cells", []):
        for row in table["cells"]:
            *fields, value, std = row
            text = _number(value) + (f" ({_number(std)})" if math.isfinite(std) and std else "")
            cells.append(Cell(str(table["table"]), layout.cell_key(list(fields), table), table.get("metric", metric),
                              float(value), float(std), text))
    return cells


def _number(value: float | int) -> str:
    """As transcribed: ``24.0``, ``75.22``, ``12905`` (the shortest text of the TOML value)."""
    return str(value) if isinstance(value, int) else repr(float(value))


def preset_header(name: str) -> list[str] | None:
    """The leading comment block of preset ``name`` (its budget and departures), without the
    line(s) that name a command (REPRODUCTION.md prints the command that made the results)."""
    try:
        text = presets.path(name).read_text()
    except LqbenchError:
        return None
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        body = line[1:].rstrip()
        if body.strip().startswith("lqbench sweep"):
            continue
        lines.append(body[1:] if body.startswith(" ") else body)
    return lines


def _plan(spec_list) -> dict[tuple[str, str], Any]:
    return {(s.name, s.key()): s for s in spec_list}


def load_section(section_id: str, results_root: str | os.PathLike, papers: dict[str, dict],
                 preset: str | None = None, complete: bool = False) -> Section:
    """Everything REPRODUCTION.md says about one section: the paper's cells, the committed runs
    grouped into configurations, and the planned seeds (from the committed ``sweep.toml``, else from
    the preset; neither: the plan is unknown and every missing cell is *pending*, unless
    ``complete``: then the runs present are all there will be, and a missing cell is *not run*)."""
    layout = LAYOUTS[section_id]
    folder = pathlib.Path(results_root) / section_id
    skipped: list[tuple[str, str]] = []
    results = load_results(folder, warn=False, skipped=skipped) if folder.is_dir() else []
    plan, plan_note, planned = "", "", {}
    sweep_file = folder / "sweep.toml"
    preset_specs, tuned = None, False
    if preset is not None and preset in presets.available():
        try:
            preset_sweep = presets.load(preset)
            preset_specs = _plan(preset_sweep.specs() if hasattr(preset_sweep, "specs") else [preset_sweep])
            tuned = bool(getattr(preset_sweep, "tune", False))
        except LqbenchError as error:
            plan_note = f"preset `{preset}` cannot be read: {one_line(str(error))}"
    if sweep_file.is_file():
        try:
            committed = SweepSpec.load(sweep_file)
            planned, tuned = _plan(committed.specs()), committed.tune
            plan = "sweep.toml"
            if preset_specs is not None:
                plan_note = (f"the committed `sweep.toml` has the configurations of the preset `{preset}`"
                             if set(planned) == set(preset_specs) else
                             f"the committed `sweep.toml` differs from the preset `{preset}` as it is now "
                             f"({len(set(planned) - set(preset_specs))} configuration(s) only in `sweep.toml`, "
                             f"{len(set(preset_specs) - set(planned))} only in the preset): the results are "
                             "those of `sweep.toml`")
        except LqbenchError as error:
            plan_note = f"`sweep.toml` cannot be read ({one_line(str(error))}): the plan is unknown"
    elif preset_specs is not None:
        planned, plan = preset_specs, "preset"
        plan_note = f"no results yet: the plan is the preset `{preset}`"
    elif complete:
        plan = "results"
    elif preset is not None and not plan_note:
        plan_note = f"preset `{preset}` is not in this checkout yet and there are no results: the plan is unknown"
    configs: dict[tuple[str, str], Config] = {}
    for (name, spec_key), spec in planned.items():
        spec_dict = spec.to_dict()
        configs[(name, spec_key)] = Config(name, spec_key, spec_dict, layout.key(spec_dict), planned=tuple(spec.seeds))
    planned_names = {name for name, _ in planned}
    outside: dict[tuple[str, str], Config] = {}
    for result in results:
        ident = (result.name, result.spec_key)
        # with a known plan, a run of a configuration it does not have is an earlier version's
        # (a tuned plan runs each spec's best grid point: same name, another key)
        stale = plan == "sweep.toml" and ident not in configs and not (tuned and result.name in planned_names)
        config = (outside if stale else configs).setdefault(
            ident, Config(result.name, result.spec_key, result.spec, layout.key(result.spec)))
        config.results.append(result)
    if tuned:  # a tuned sweep runs each spec's best grid point: same name, another key, the spec's seeds
        seeds = {name: tuple(spec.seeds) for (name, _), spec in planned.items()}
        finished = {c.name for c in configs.values() if c.results}
        configs = {k: c for k, c in configs.items() if c.results or c.name not in finished}
        for config in configs.values():
            config.planned = config.planned or seeds.get(config.name, ())
    header = preset_header(preset) if preset is not None else None
    return Section(section_id, papers.get(section_id), paper_cells(section_id, papers.get(section_id)),
                   sorted(configs.values(), key=lambda c: c.folder), folder, plan, plan_note, preset,
                   header or [], skipped, sorted(outside.values(), key=lambda c: c.folder))


def load_sections(results_root: str | os.PathLike = RESULTS, papers_file: str | os.PathLike = PAPERS_FILE,
                  preset_names: dict[str, str] | None = None, complete: bool = False) -> dict[str, Section]:
    """Every section (`SECTIONS`); ``preset_names`` replaces `PRESETS`, ``complete`` as in `load_section`."""
    papers = load_papers(papers_file)
    names = PRESETS if preset_names is None else preset_names
    return {s: load_section(s, results_root, papers, names.get(s), complete) for s in SECTIONS}


# ---------------------------------------------------------------------------- decision rules
#: A difference between two accuracies counts when it exceeds this many points plus both stds.
MIN_POINTS = 1.0
#: ... on MNIST error rates (paper 002: 1.27 % vs 1.54 %), where 1 point is most of the error.
MIN_POINTS_MNIST = 0.1
#: A cost (memory, time) counts as lower when it is below (1 - this) x the other, beyond both stds.
MIN_COST_FRACTION = 0.1
#: (g): Spearman rank correlation for "same ranking" / "different ranking".
RHO_SAME, RHO_DIFFERENT = 0.7, 0.3
#: (h): the paper's "within" tolerance, in points.
WITHIN_POINTS = 0.5

RULES = {
    "pairwise": (f"A difference between two accuracies counts when it exceeds the sum of the two stds plus "
                 f"{MIN_POINTS:g} point (lqbench: sample std over its seeds, at least 2 finished seeds; the paper: "
                 "its published std, 0 when it gives none). Every comparison the finding implies is decided "
                 "this way on the paper's numbers and on lqbench's: comparisons where the paper's own numbers do "
                 "not show the finding are left out (listed); comparisons on cells the paper does not have count. "
                 "**Reproduced**: every comparison left supports the finding; **not reproduced**: at least one "
                 "contradicts it beyond the margin; otherwise **inconclusive at this budget** (differences within "
                 "the margin, failed runs or a single seed), or **inconclusive: runs pending** while planned runs "
                 "are missing."),
    "cost": (f"Costs (peak memory, time per epoch) count as lower when below {1 - MIN_COST_FRACTION:g}x the other "
             "after adding both stds. Absolute values are not comparable (the paper: GPU memory and total run "
             "time at 224 px; lqbench: process memory and time per epoch on a 2-core CPU); each side is compared "
             "with itself."),
    "f": (f"As the pairwise rule, with a floor of {MIN_POINTS_MNIST:g} point instead of {MIN_POINTS:g}: the paper's "
          "MNIST difference is 0.27 point of test error."),
    "g": (f"On each column of Table 1 (W1A32, W1A1), over the estimators both have (lqbench: 2 finished seeds or "
          f"more, at least 4 estimators): Spearman's rank correlation rho between the paper's and lqbench's "
          f"accuracies. **Reproduced**: rho >= {RHO_SAME:g} and the same worst estimator in both columns; **not "
          f"reproduced**: rho <= {RHO_DIFFERENT:g} in a column where lqbench's best and worst estimators differ "
          f"beyond the pairwise margin; otherwise inconclusive."),
    "h": (f"The spread (best minus worst mean) of STE, Bop, BMD and BNEW without distillation. **Reproduced**: "
          f"at most {WITHIN_POINTS:g} point; **not reproduced**: more than {WITHIN_POINTS:g} point plus the stds of "
          "the best and the worst; otherwise inconclusive."),
}


def higher(a: Stat, b: Stat, floor: float = MIN_POINTS) -> int:
    """+1 if ``a`` exceeds ``b`` by more than ``floor`` plus both stds, -1 for the reverse, else 0."""
    margin = floor + (a.std or 0.0) + (b.std or 0.0)
    difference = a.mean - b.mean
    return 1 if difference > margin else -1 if -difference > margin else 0


def lower_cost(a: Stat, b: Stat, fraction: float = MIN_COST_FRACTION) -> int:
    """+1 if cost ``a`` is below ``(1 - fraction) b`` after adding both stds, -1 for the reverse, else 0."""
    noise = (a.std or 0.0) + (b.std or 0.0)
    return 1 if a.mean + noise < (1 - fraction) * b.mean else -1 if b.mean + noise < (1 - fraction) * a.mean else 0


def difference(a: Stat, b: Stat) -> Stat:
    """``a - b`` with the sum of the stds (an upper bound on the std of the difference)."""
    return Stat(a.mean - b.mean, (a.std or 0.0) + (b.std or 0.0), min(a.n, b.n))


def fmt(stat: Stat | None, digits: int = 1) -> str:
    """``57.5 ± 0.7``; the mean alone when there is no std (one seed, or a paper that gives none);
    ``9.9 ± 0.0`` when several seeds agree; whole numbers from 1000 up (run times in s)."""
    if stat is None or stat.mean is None:
        return "–"
    digits = 0 if abs(stat.mean) >= 1000 else digits
    shown = stat.std is not None and (stat.std or stat.n > 1)
    return f"{stat.mean:.{digits}f}" + (f" ± {stat.std:.{digits}f}" if shown else "")


Ref = tuple[str, tuple, str]  # (section id, key, metric)


@dataclasses.dataclass
class Unit:
    """One comparison a finding implies. ``test(stats)`` -> (+1 supports, -1 contradicts, 0 neither)
    and ``show(stats)`` the numbers, on the stats of ``refs`` in order."""

    text: str
    refs: tuple[Ref, ...]
    test: Callable[[Sequence[Stat]], int]
    show: Callable[[Sequence[Stat]], str]


CALLS = {1: "supports", -1: "contradicts", 0: "undecided"}


@dataclasses.dataclass
class UnitResult:
    unit: Unit
    paper: str  # supports / contradicts / undecided / no cell
    lqbench: str  # supports / contradicts / undecided / pending / not run
    paper_numbers: str
    lqbench_numbers: str


def evaluate(unit: Unit, sections: dict[str, Section]) -> UnitResult:
    papers = [sections[s].cell(k, m) for s, k, m in unit.refs]
    if any(p is None for p in papers):
        paper, paper_numbers = "no cell", "–"
    else:
        paper, paper_numbers = CALLS[unit.test(papers)], unit.show(papers)
    measures = [sections[s].measure(k, m) for s, k, m in unit.refs]
    statuses = {m.status for m in measures}
    if "not run" in statuses:
        lq, numbers = "not run", "; ".join(sorted({m.reason for m in measures if m.status == "not run"}))
    elif statuses & {"pending", "undecided"}:
        lq = "pending" if "pending" in statuses else "undecided"
        labels = ref_labels(unit.refs, sections)
        numbers = "; ".join(dict.fromkeys(f"{label}: {m.reason}" if label else m.reason
                                          for label, m in zip(labels, measures) if m.status == lq))
    else:
        stats = [m.stat for m in measures]
        lq, numbers = CALLS[unit.test(stats)], unit.show(stats)
    return UnitResult(unit, paper, lq, paper_numbers, numbers)


@dataclasses.dataclass
class Verdict:
    letter: str
    claim: str
    source: str
    rule: str
    outcome: str
    summary: str
    details: list[str] = dataclasses.field(default_factory=list)  # markdown lines


def combine(letter: str, claim: str, source: str, rule: str, results: Sequence[UnitResult]) -> Verdict:
    """The verdict over the comparisons of a finding (`RULES["pairwise"]`)."""
    excluded = [r for r in results if r.paper in ("contradicts", "undecided")]
    not_run = [r for r in results if r.paper not in ("contradicts", "undecided") and r.lqbench == "not run"]
    scope = [r for r in results if r.paper not in ("contradicts", "undecided") and r.lqbench != "not run"]
    counts = {c: sum(r.lqbench == c for r in scope) for c in ("supports", "contradicts", "undecided", "pending")}
    if counts["contradicts"]:
        outcome = NOT_REPRODUCED
    elif counts["pending"]:
        outcome = PENDING
    elif not scope:
        outcome = INCONCLUSIVE if results else PENDING
    elif counts["supports"] == len(scope):
        outcome = REPRODUCED
    else:
        outcome = INCONCLUSIVE
    summary = (f"{len(scope)} comparison(s): {counts['supports']} support, {counts['contradicts']} contradict, "
               f"{counts['undecided']} undecided, {counts['pending']} pending"
               + (f"; {len(excluded)} left out (the paper's own numbers do not show it)" if excluded else "")
               + (f"; {len(not_run)} not run at this scale" if not_run else ""))
    decisive = [r for r in scope if r.lqbench == "contradicts"] or [r for r in scope if r.lqbench == "supports"][:3]
    if decisive:
        summary += ". " + "; ".join(f"{r.unit.text}: {r.lqbench_numbers}" for r in decisive[:3])
    details = ["| comparison | paper | paper's call | lqbench | lqbench's call |", "|---|---|---|---|---|"]
    left_out = {id(r) for r in excluded}
    for r in sorted(results, key=lambda r: (id(r) in left_out, r.lqbench == "not run", r.unit.text)):
        details.append(f"| {r.unit.text} | {r.paper_numbers} | {r.paper} | {_cell_text(r.lqbench_numbers)} | "
                       f"{r.lqbench}{' (left out)' if id(r) in left_out else ''} |")
    return Verdict(letter, claim, source, rule, outcome, summary, details)


def ref_labels(refs: Sequence[Ref], sections: dict[str, Section]) -> list[str]:
    """What tells the runs of a comparison apart: each ref's values of the key fields on which the
    refs differ (e.g. ``["full precision W32A32", "STE W1A1"]``), or "" when they do not."""
    fields = [sections[s].layout.fields for s, _, _ in refs]
    keys = [k for _, k, _ in refs]
    differing = [i for i in range(min(map(len, keys))) if len({k[i] for k in keys}) > 1]
    def show(field: str, value: Any) -> str:
        if field in ("skips", "distillation"):
            return field if value else f"no {field}"
        return show_field(field, value)

    return [" ".join(show(f[i], k[i]) for i in differing) for f, k in zip(fields, keys)]


def _cell_text(text: str) -> str:
    return text.replace("|", "\\|")


def _pair(section: str, a: tuple, b: tuple, text: str, names: tuple[str, str], floor: float = MIN_POINTS,
          metric: str = "accuracy") -> Unit:
    """``a`` higher than ``b`` (accuracy)."""
    return Unit(text, ((section, a, metric), (section, b, metric)), lambda s: higher(s[0], s[1], floor),
                lambda s: f"{names[0]} {fmt(s[0])} vs {names[1]} {fmt(s[1])}")


def _where(*parts) -> str:
    return " ".join(p for p in parts if p).replace(" :", ":")


# ---------------------------------------------------------------------------- the eight verdicts
def units_a(sections: dict[str, Section]) -> list[Unit]:
    """Full precision against every binarized configuration of the same network and method."""
    units = []
    s0 = sections["paper000"]
    keys = s0.keys()
    for d, m, a, label, skips in sorted(k for k in keys if k[3] == "W32A32"):
        for binary in ("W1A1", "W1A32", "W32A1"):
            other = (d, m, a, binary, skips)
            if other in keys:
                units.append(_pair("paper000", (d, m, a, "W32A32", skips), other, _where(
                    "000", show_field("dataset", d), show_field("model", m), show_field("algorithm", a),
                    "" if skips else "no skips", f": W32A32 > {binary}"), ("W32A32", binary)))
    s1 = sections["paper001"]
    keys = s1.keys()
    for d, m, method, distillation in sorted(k for k in keys if k[2] == "real" and not k[3]):
        for other in sorted(k for k in keys if k[:2] == (d, m) and k[2] != "real" and not k[3]):
            units.append(_pair("paper001", (d, m, "real", False), other, _where(
                "001", show_field("dataset", d), show_field("model", m), f": real-valued > {show_field('method', other[2])}"),
                ("real-valued", show_field("method", other[2]))))
    s2 = sections["paper002"]
    keys = s2.keys()
    for d, m, method in sorted(k for k in keys if k[2] == "fp"):
        for other in ("ste", "cb"):
            if (d, m, other) in keys:
                units.append(_pair("paper002", (d, m, "fp"), (d, m, other), _where(
                    "002", show_field("dataset", d), show_field("model", m), f": full precision > {other.upper()}"),
                    ("FP", other.upper())))
    s3 = sections["paper003"]
    keys = s3.keys()
    for d, m, estimator, label in sorted(k for k in keys if k[2] == "none"):
        for other in sorted(k for k in keys if k[:2] == (d, m) and k[2] != "none"):
            units.append(_pair("paper003", (d, m, "none", label), other, _where(
                "003", show_field("dataset", d), show_field("model", m),
                f": full precision > {show_field('estimator', other[2])} {other[3]}"), ("FP", other[3])))
    return units


def verdict_a(sections: dict[str, Section]) -> Verdict:
    results = [evaluate(u, sections) for u in units_a(sections)]
    return combine("a", "Binarization costs accuracy for every method", "000 Tables 3-6; 001 Table 1; 002 Table 1; "
                   "003 Tables 1 and 3", RULES["pairwise"], results)


def _w1a1_groups(section: Section, skips: bool = True, models: Iterable[str] | None = None) -> list[tuple[str, str]]:
    return sorted({(k[0], k[1]) for k in section.keys() if k[3] == "W1A1" and k[4] == skips
                   and (models is None or k[1] in models)})


def units_b(sections: dict[str, Section]) -> list[Unit]:
    section = sections["paper000"]
    keys = section.keys()
    units = []
    for d, m in _w1a1_groups(section, models=MODELS_WITH_SKIPS):
        bp = (d, m, "bp", "W1A1", True)
        for other in ("dfa", "drtp", "hsic", "sigprop"):
            key = (d, m, other, "W1A1", True)
            if bp in keys and key in keys:
                units.append(_pair("paper000", bp, key, _where(show_field("dataset", d), show_field("model", m),
                                                               f"W1A1: BP > {ALGORITHMS[other]}"), ("BP", ALGORITHMS[other])))
    return units


def verdict_b(sections: dict[str, Section]) -> Verdict:
    return combine("b", "BP trains the best binary networks when they have skip connections",
                   "000 Table 7 (MobileNetV2, MLP-Mixer)", RULES["pairwise"],
                   [evaluate(u, sections) for u in units_b(sections)])


def units_c(sections: dict[str, Section]) -> list[Unit]:
    section = sections["paper000"]
    keys = section.keys()
    units = []
    for d, m in sorted(set(_w1a1_groups(section, True, MODELS_WITH_SKIPS)) | set(_w1a1_groups(section, False))):
        where = _where(show_field("dataset", d), show_field("model", m), "W1A1")
        k = {(a, s): (d, m, a, "W1A1", s) for a in ALGORITHMS for s in (True, False)}
        if k["dfa", False] in keys and k["bp", False] in keys:
            units.append(_pair("paper000", k["dfa", False], k["bp", False], f"{where} without skips: DFA > BP",
                               ("DFA", "BP")))
        for other in ("dfa", "drtp", "hsic", "sigprop"):
            refs = (k["bp", True], k["bp", False], k[other, True], k[other, False])
            if all(r in keys for r in refs):
                units.append(_larger_drop(f"{where}: removing skips costs BP more than {ALGORITHMS[other]}",
                                          refs, "BP", ALGORITHMS[other]))
    return units


def _larger_drop(title: str, refs: tuple, first: str, second: str) -> Unit:
    """A paper-000 comparison of two accuracy drops: ``refs[0] - refs[1]`` (``first``'s) is larger
    than ``refs[2] - refs[3]`` (``second``'s)."""
    return Unit(title, tuple(("paper000", r, "accuracy") for r in refs),
                lambda s: higher(difference(s[0], s[1]), difference(s[2], s[3])),
                lambda s: f"{first} -{fmt(difference(s[0], s[1]))} vs {second} -{fmt(difference(s[2], s[3]))}")


def verdict_c(sections: dict[str, Section]) -> Verdict:
    return combine("c", "Removing skip connections hurts BP most, and DFA then beats BP",
                   "000 Table 8 vs Table 7", RULES["pairwise"] + " A drop's std is the sum of the two stds.",
                   [evaluate(u, sections) for u in units_c(sections)])


def units_d(sections: dict[str, Section]) -> list[Unit]:
    section = sections["paper000"]
    keys = section.keys()
    units = []
    groups = sorted({(k[0], k[1], k[4]) for k in keys if k[2] == "drtp" and k[3] == "W32A32"})
    for d, m, skips in groups:
        for label in ("W1A1", "W1A32", "W32A1"):
            for other in ("bp", "dfa"):
                refs = ((d, m, other, "W32A32", skips), (d, m, other, label, skips),
                        (d, m, "drtp", "W32A32", skips), (d, m, "drtp", label, skips))
                if all(r in keys for r in refs):
                    units.append(_larger_drop(
                        _where(show_field("dataset", d), show_field("model", m), "" if skips else "no skips",
                               f": W32A32 -> {label} costs {ALGORITHMS[other]} more than DRTP"),
                        refs, ALGORITHMS[other], "DRTP"))
    return units


def verdict_d(sections: dict[str, Section]) -> Verdict:
    return combine("d", "DRTP is the least hurt by binarization", "000 Tables 3-6",
                   RULES["pairwise"] + " A cost's std is the sum of the two stds.",
                   [evaluate(u, sections) for u in units_d(sections)])


def units_e(sections: dict[str, Section]) -> list[Unit]:
    section = sections["paper000"]
    keys = section.keys()
    units = []
    for d, m in _w1a1_groups(section):
        where = _where(show_field("dataset", d), show_field("model", m), "W1A1")
        for low in ("hsic", "sigprop"):
            low_key = (d, m, low, "W1A1", True)
            for other in ("bp", "dfa", "drtp"):
                key = (d, m, other, "W1A1", True)
                if low_key not in keys or key not in keys:
                    continue
                units.append(_pair("paper000", key, low_key, f"{where}: {ALGORITHMS[other]} more accurate than "
                                   f"{ALGORITHMS[low]}", (ALGORITHMS[other], ALGORITHMS[low])))
                for metric, what, digits in (("peak_memory", "peak memory", 2), ("time", "time", 1)):
                    units.append(Unit(
                        f"{where}: {ALGORITHMS[low]} {what} below {ALGORITHMS[other]}",
                        (("paper000", low_key, metric), ("paper000", key, metric)),
                        lambda s: lower_cost(s[0], s[1]),
                        lambda s, a=ALGORITHMS[low], b=ALGORITHMS[other], n=digits:
                            f"{a} {fmt(s[0], n)} vs {b} {fmt(s[1], n)}"))
    return units


def verdict_e(sections: dict[str, Section]) -> Verdict:
    return combine("e", "HSIC and SigpropTL give the lowest accuracy but are the cheapest to train",
                   "000 Tables 7 and 9", RULES["pairwise"] + " " + RULES["cost"],
                   [evaluate(u, sections) for u in units_e(sections)])


def units_f(sections: dict[str, Section]) -> list[Unit]:
    section = sections["paper002"]
    keys = section.keys()
    units = []
    for d, m in sorted({k[:2] for k in keys}):
        if (d, m, "cb") in keys and (d, m, "ste") in keys:
            units.append(_pair("paper002", (d, m, "cb"), (d, m, "ste"), _where(
                show_field("dataset", d), show_field("model", m), ": CB more accurate than STE (binary activations)"),
                ("CB", "STE"), floor=MIN_POINTS_MNIST if d == "mnist" else MIN_POINTS))
    return units


def verdict_f(sections: dict[str, Section]) -> Verdict:
    return combine("f", "Continuous binarization beats STE with binary activations", "002 Table 1",
                   RULES["pairwise"] + " " + RULES["f"], [evaluate(u, sections) for u in units_f(sections)])


def ranks(values: Sequence[float]) -> list[float]:
    """Ranks from 1 (smallest), ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation: Pearson's correlation of the ranks (None if a side is constant)."""
    rx, ry = ranks(x), ranks(y)
    n = len(rx)
    mx, my = sum(rx) / n, sum(ry) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return None if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def verdict_g(sections: dict[str, Section]) -> Verdict:
    """The estimator ranking of paper 003 Table 1 (base CNN on CIFAR-10), per column (`RULES["g"]`)."""
    section = sections["paper003"]
    calls, lines, details = [], [], []
    for label in ("W1A32", "W1A1"):
        cells = [c for c in section.cells if c.table == "1" and c.key[3] == label
                 and c.key[2] not in ("none", "naive_post_training")]
        measures = {c.key[2]: section.measure(c.key) for c in cells}
        paper = {c.key[2]: c.stat() for c in cells}
        available = [e for e in paper if measures[e].status == "ok"]
        pending = [e for e in paper if measures[e].status == "pending"]
        for e in paper:
            m = measures[e]
            details.append(f"| {label} | {show_field('estimator', e)} | {fmt(paper[e], 2)} | "
                           f"{fmt(m.stat) if m.status == 'ok' else m.status + (': ' + m.reason if m.reason else '')} |")
        if len(available) < 4:
            calls.append("pending" if pending else "undecided")
            lines.append(f"{label}: {len(available)} of {len(paper)} estimators measured"
                         + (f", {len(pending)} pending" if pending else ""))
            continue
        rho = spearman([paper[e].mean for e in available], [measures[e].stat.mean for e in available])
        lq = {e: measures[e].stat for e in available}
        worst_paper = min(available, key=lambda e: paper[e].mean)
        worst_lq, best_lq = min(available, key=lambda e: lq[e].mean), max(available, key=lambda e: lq[e].mean)
        best_paper = max(available, key=lambda e: paper[e].mean)
        resolved = higher(lq[best_lq], lq[worst_lq]) == 1
        if rho is not None and rho >= RHO_SAME and worst_lq == worst_paper:
            call = "supports"
        elif rho is not None and rho <= RHO_DIFFERENT and resolved:
            call = "contradicts"
        else:
            call = "undecided"
        calls.append("pending" if pending and call != "contradicts" else call)
        lines.append(f"{label}: rho = {'n/a' if rho is None else f'{rho:.2f}'} over {len(available)} estimators; best "
                     f"paper {worst_or_best(best_paper)} / lqbench {worst_or_best(best_lq)}, worst paper "
                     f"{worst_or_best(worst_paper)} / lqbench {worst_or_best(worst_lq)}"
                     + ("" if resolved else " (lqbench's best and worst are within the margin)")
                     + (f"; {len(pending)} pending" if pending else ""))
    if "contradicts" in calls:
        outcome = NOT_REPRODUCED
    elif "pending" in calls:
        outcome = PENDING
    elif all(c == "supports" for c in calls):
        outcome = REPRODUCED
    else:
        outcome = INCONCLUSIVE
    table = ["| column | estimator | paper | lqbench |", "|---|---|---|---|"] + details
    return Verdict("g", "The ranking of the sign estimators on the base CNN", "003 Table 1", RULES["g"], outcome,
                   "; ".join(lines), table)


def worst_or_best(estimator: str) -> str:
    return ESTIMATORS.get(estimator, estimator).split(" (")[0]


def verdict_h(sections: dict[str, Section]) -> Verdict:
    """BNEW, Bop, STE and BMD within 0.5 point of each other on ResNet-20, CIFAR-10 (`RULES["h"]`)."""
    section = sections["paper001"]
    methods = ("ste", "bop", "bmd", "bnew")
    keys = {m: ("cifar10", "resnet20", m, False) for m in methods}
    measures = {m: section.measure(k) for m, k in keys.items()}
    available = {m: measures[m].stat for m in methods if measures[m].status == "ok"}
    details = ["| method | paper | lqbench |", "|---|---|---|"]
    for m in methods:
        paper = section.cell(keys[m])
        details.append(f"| {METHODS[m]} | {fmt(paper)} | "
                       f"{fmt(available[m]) if m in available else measures[m].status} |")
    paper_stats = [section.cell(keys[m]) for m in methods]
    paper_spread = (max(s.mean for s in paper_stats) - min(s.mean for s in paper_stats)
                    if all(paper_stats) else None)
    note = f"paper spread {paper_spread:.1f} point" if paper_spread is not None else "paper: cells missing"
    if len(available) >= 2:
        hi = max(available, key=lambda m: available[m].mean)
        lo = min(available, key=lambda m: available[m].mean)
        spread = available[hi].mean - available[lo].mean
        beyond = spread > WITHIN_POINTS + (available[hi].std or 0.0) + (available[lo].std or 0.0)
        summary = (f"lqbench spread {spread:.1f} point ({METHODS[lo]} {fmt(available[lo])} ... {METHODS[hi]} "
                   f"{fmt(available[hi])}) over {len(available)} of 4 methods; {note}")
    else:
        beyond, spread, summary = False, None, f"{len(available)} of 4 methods measured; {note}"
    pending = [m for m in methods if measures[m].status == "pending"]
    if beyond:
        outcome = NOT_REPRODUCED
    elif pending:
        outcome = PENDING
        summary += f"; pending: {', '.join(METHODS[m] for m in pending)}"
    elif len(available) == 4 and spread <= WITHIN_POINTS:
        outcome = REPRODUCED
    else:
        outcome = INCONCLUSIVE
    return Verdict("h", "BNEW, Bop, STE and BMD within 0.5 point of each other on ResNet-20", "001 Table 1 (CIFAR-10)",
                   RULES["h"], outcome, summary, details)


VERDICTS = (verdict_a, verdict_b, verdict_c, verdict_d, verdict_e, verdict_f, verdict_g, verdict_h)


# ---------------------------------------------------------------------------- rendering
def _display_path(path: pathlib.Path) -> str:
    try:
        return str(pathlib.Path(path).resolve().relative_to(ROOT)) + "/"
    except ValueError:
        return str(path) + "/"


def lqbench_text(measure: Measure, configs: Sequence[Config], metric: str | None, digits: int) -> str:
    """The lqbench column of one row: mean ± std (n), failures with their error, pending seeds."""
    if not configs:
        return measure.status if measure.status == "pending" else f"not run ({measure.reason})"
    config = configs[0]
    stat = config.stat(PAPER_METRICS[metric][0])
    convert = PAPER_METRICS[metric][1]  # its own inverse (100 - x)
    parts = []
    if stat.n:
        mean = convert(stat.mean)
        parts.append(f"{mean:.{digits}f}" + (f" ± {stat.std:.{digits}f}" if stat.std is not None else "") + f" ({stat.n})")
    if stat.failed:
        parts.append(f"failed {stat.failed} of {stat.failed + stat.n}: {'; '.join(stat.errors)}")
    if stat.pending and not parts:
        parts.append(f"pending (0 of {stat.pending} seeds finished)")
    elif stat.pending:
        parts.append(f"{stat.pending} more seed(s) pending")
    return _cell_text("; ".join(parts) or "no result")


def _key_columns(layout: Layout, keys: Sequence[tuple]) -> list[int]:
    """Indices of the key fields that vary between ``keys`` (constant ones go in the caption)."""
    varying = [i for i in range(len(layout.fields)) if len({k[i] for k in keys}) > 1]
    return varying or [len(layout.fields) - 1]


def _caption(layout: Layout, keys: Sequence[tuple], columns: Sequence[int]) -> str:
    constant = []
    for i, field in enumerate(layout.fields):
        if i in columns:
            continue
        if field in ("skips", "distillation"):
            if field == "skips" and not keys[0][i]:
                constant.append("without skip connections")
            elif field == "distillation":
                constant.append(("with" if keys[0][i] else "without") + " distillation")
        else:
            constant.append(show_field(field, keys[0][i]))
    return ", ".join(constant)


def render_table(section: Section, table: str, metric: str | None) -> list[str]:
    """One published table beside lqbench's rows: paper | lqbench | difference (or ratios to BP for costs)."""
    cells = [c for c in section.cells if c.table == table and c.metric == metric]
    layout = section.layout
    keys = [c.key for c in cells]
    columns = _key_columns(layout, keys)
    title, digits = METRIC_TITLES[metric]
    cost = metric in ("peak_memory_gb", "run_time_s")
    headers = [layout.fields[i] for i in columns]
    if cost:
        headers += ["paper", "paper ÷ BP", "lqbench", "lqbench ÷ BP", "run"]
    else:
        headers += ["paper", "lqbench (mean ± std, n seeds)", "difference", "run"]
    matched = {conf.folder: conf for c in cells for conf in section.matching(c.key)}
    runs = sum(len(conf.results) for conf in matched.values())
    labels = sorted({data_label(conf.spec.get("dataset"), conf.spec.get("image_size"))
                     for c in cells for conf in section.matching(c.key)})
    caption = _caption(layout, keys, columns)
    lines = [f"### Table{'s' if '-' in table else ''} {table}: {title}" + (f" ({caption})" if caption else ""),
             "", f"results: `{_display_path(section.results_dir)}` ({runs} runs)" + (
                 f"; lqbench data: {', '.join(labels)}" if labels else ""), "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    bp_value = {}
    if cost:
        for c in cells:
            if c.key[2] == "bp":
                bp_value[c.key[:2] + c.key[3:]] = c
    for cell in cells:
        key_text = [show_field(layout.fields[i], cell.key[i]) for i in columns]
        paper = cell.text
        configs = section.matching(cell.key)
        measure = section.measure(cell.key, PAPER_METRICS[metric][0])
        rows = [configs[i:i + 1] for i in range(len(configs))] or [[]]
        for j, row_configs in enumerate(rows):
            text = lqbench_text(measure, row_configs, metric, digits)
            run = (f"`{row_configs[0].spec_key}`" + (" (used)" if len(rows) > 1 and j == 0 else
                                                      " (lower validation accuracy: not used)" if j else "")
                   if row_configs else "")
            stat = row_configs[0].stat(PAPER_METRICS[metric][0]) if row_configs else None
            if cost:
                bp_cell = bp_value.get(cell.key[:2] + cell.key[3:])
                paper_ratio = f"{cell.value / bp_cell.value:.2f}" if bp_cell and bp_cell.value else "–"
                bp_configs = section.matching(bp_cell.key) if bp_cell else []
                bp_stat = bp_configs[0].stat(PAPER_METRICS[metric][0]) if bp_configs else None
                lq_ratio = (f"{stat.mean / bp_stat.mean:.2f}" if stat and stat.n and bp_stat and bp_stat.n and bp_stat.mean
                            else "–")
                lines.append("| " + " | ".join(key_text + [paper, paper_ratio, text, lq_ratio, run]) + " |")
            else:
                diff = (f"{PAPER_METRICS[metric][1](stat.mean) - cell.value:+.{digits}f}" if stat and stat.n else "")
                lines.append("| " + " | ".join(key_text + [paper, text, diff, run]) + " |")
    return lines + [""]


def render_extra_rows(section: Section) -> list[str]:
    """lqbench configurations that match no cell of the paper: listed, never dropped."""
    paper_keys = {c.key for c in section.cells}
    extra = [c for c in section.configs if c.key not in paper_keys]
    if not extra:
        return []
    layout = section.layout
    keys = [c.key for c in extra]
    columns = _key_columns(layout, keys) if len(keys) > 1 else list(range(len(layout.fields)))
    headers = [layout.fields[i] for i in columns] + ["data", "test accuracy % (mean ± std, n)",
                                                    "time per epoch (s)", "peak memory (GiB)", "run"]
    title = "### Rows lqbench has that the paper does not" if section.paper else "### Results"
    caption = _caption(layout, keys, columns) if len(keys) > 1 else ""
    title += f" ({caption})" if caption else ""
    runs = sum(len(c.results) for c in extra)
    lines = [title, "", f"results: `{_display_path(section.results_dir)}` ({runs} runs)", "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for config in sorted(extra, key=lambda c: (tuple(str(v) for v in c.key), c.folder)):
        measure = Measure("ok" if config.ok else "pending", config=config)
        time, memory = config.stat("time"), config.stat("peak_memory")
        lines.append("| " + " | ".join(
            [show_field(layout.fields[i], config.key[i]) for i in columns]
            + [data_label(config.spec.get("dataset"), config.spec.get("image_size")),
               lqbench_text(measure, [config], None, 1), fmt(time, 2), fmt(memory, 2), f"`{config.spec_key}`"]) + " |")
    return lines + [""]


def training_seconds(result: RunResult) -> float:
    """The CPU time a run trained for: its median epoch time x its epochs (an estimate that does not
    count the time its process was paused for other work on the machine, which ``wall_time_s``
    does); ``wall_time_s`` when the run has no epoch time."""
    if result.time_per_epoch_s is not None and result.epochs_run:
        return result.time_per_epoch_s * result.epochs_run
    return result.wall_time_s or 0.0


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 360 else f"{seconds / 60:.0f} min"


def render_budget(section: Section) -> list[str]:
    """The paper's budget, lqbench's (from the runs' specs), the command, the preset's departures."""
    output = _display_path(section.results_dir).rstrip("/")
    lines = ["### Budget and provenance", ""]
    if section.paper:
        lines += [f"**The paper:** {section.paper.get('budget', '')}. Protocol: {section.paper.get('protocol', '')}.", ""]
    command = f"lqbench sweep {section.preset} --output {output}" if section.preset else "(no preset)"
    total = sum(training_seconds(r) for r in section.runs)
    datasets = {c.spec.get("dataset") for c in section.configs} | {c.key[0] for c in section.cells}
    lines += [f"**lqbench:** `{command}`, with `LQBENCH_DATA_DIR` pointing at the data"
              + (" (CIFAR-10 converted once by `../shared/data/cifar10-jpeg/to_python_batches.py`)"
                 if "cifar10" in datasets else "") + ". "
              f"{len(section.runs)} committed run(s), {_hours(total)} of training in total (median epoch time x epochs, on 2 cores)"
              + (f"; {section.plan_note}" if section.plan_note else "") + ".", ""]
    groups: dict[tuple, list[Config]] = {}
    for config in section.configs:
        s = config.spec
        group = (data_label(s.get("dataset"), s.get("image_size")), MODELS.get(s.get("model"), s.get("model")),
                 json.dumps(s.get("model_args") or {}, sort_keys=True), s.get("epochs"), s.get("batch_size"))
        groups.setdefault(group, []).append(config)
    if groups:
        lines += ["| data | model | model args | epochs | batch | configurations | seeds | runs ok / failed / pending "
                  "| training time |", "|---|---|---|---|---|---|---|---|---|"]
        for (label, model, args, epochs, batch), configs in sorted(groups.items(), key=lambda g: str(g[0])):
            seeds = sorted({seed for c in configs for seed in c.planned} | {r.seed for c in configs for r in c.results})
            ok = sum(len(c.ok) for c in configs)
            failed = sum(len(c.results) - len(c.ok) for c in configs)
            pending = sum(c.stat().pending for c in configs)
            seconds = sum(training_seconds(r) for c in configs for r in c.results)
            lines.append(f"| {label} | {model} | `{args}` | {epochs} | {batch} | {len(configs)} | "
                         f"{', '.join(map(str, seeds))} | {ok} / {failed} / {pending} | {_hours(seconds)} |")
        lines.append("")
    if section.preset_header:
        lines += [f"The preset `{section.preset}` states its budget and departures from the paper:", ""]
        lines += ["> " + line if line else ">" for line in section.preset_header] + [""]
    memory = sorted({r.memory_method for r in section.runs if r.memory_method})
    if memory:
        lines += [f"Peak memory is measured as: {'; '.join(memory)}.", ""]
    if section.outside:
        lines += ["Runs of configurations the committed `sweep.toml` no longer has, e.g. of an earlier version of "
                  "the preset: kept as a record, not used in the tables or the verdicts.", "",
                  "| run | configuration | seeds | test accuracy % | training time |", "|---|---|---|---|---|"]
        for config in section.outside:
            stat = config.stat()
            value = fmt(stat) if stat.n else f"failed: {'; '.join(stat.errors)}"
            seeds = ", ".join(str(r.seed) for r in sorted(config.results, key=lambda r: r.seed))
            seconds = sum(training_seconds(r) for r in config.results)
            described = ", ".join(f"{field} {show_field(field, value)}"
                                  for field, value in zip(section.layout.fields, config.key))
            lines.append(f"| `{config.spec_key}` | {config.name}: {described}; model args "
                         f"`{json.dumps(config.spec.get('model_args') or {}, sort_keys=True)}`, learning rate "
                         f"{config.spec.get('learning_rate')}, {config.spec.get('epochs')} epochs | {seeds} | {value} | "
                         f"{_hours(seconds)} |")
        lines.append("")
    if section.skipped:
        lines += ["Files under the results folder that were not used:", ""]
        lines += [f"- `{path}`: {reason}" for path, reason in section.skipped] + [""]
    return lines


SECTION_TITLES = {"extra": "Extra: every algorithm x every binarizing optimizer on one fully binary network, "
                           "Fashion-MNIST (no paper)"}


def render_section(section: Section) -> list[str]:
    title = SECTION_TITLES.get(section.id) or f"Paper {section.id[-3:]}: {section.paper['title']}"
    lines = [f"## {title}", ""]
    if section.paper:
        lines += [f"Source: `../shared/papers/{section.paper['file']}`. The published numbers are on the "
                  "official datasets at the paper's budget; lqbench's are on the data named in each table, at the "
                  "budget below." + (f" Note: {section.paper['note']}" if section.paper.get("note") else ""), ""]
    lines += render_budget(section)
    tables = []
    for cell in section.cells:
        if (cell.table, cell.metric) not in tables:
            tables.append((cell.table, cell.metric))
    for table, metric in tables:
        lines += render_table(section, table, metric)
    lines += render_extra_rows(section)
    return lines


def render_verdicts(verdicts: Sequence[Verdict]) -> list[str]:
    lines = ["## Verdicts", "", "| | finding | source | verdict |", "|---|---|---|---|"]
    for v in verdicts:
        lines.append(f"| ({v.letter}) | {v.claim} | {v.source} | **{v.outcome}** |")
    lines.append("")
    for v in verdicts:
        lines += [f"### ({v.letter}) {v.claim}: {v.outcome}", "", f"Source: {v.source}. {_cell_text(v.summary)}.", "",
                  f"Rule: {v.rule}", ""]
        if v.details:
            lines += ["<details><summary>every comparison</summary>", ""] + v.details + ["", "</details>", ""]
    return lines


def render(sections: dict[str, Section], preview: str = "") -> str:
    """The whole of REPRODUCTION.md."""
    verdicts = [f(sections) for f in VERDICTS]
    total = sum(training_seconds(r) for s in sections.values() for r in s.runs)
    wall = sum(r.wall_time_s or 0.0 for s in sections.values() for r in s.runs)
    runs = sum(len(s.runs) for s in sections.values())
    lines = ["# Reproducing the four seed papers at CPU scale", ""]
    if preview:
        lines += [f"**Preview, not for committing: {preview}**", ""]
    lines += [
        f"Generated by `{COMMAND}` from the committed run results in `bench/reproduction/results/` and the "
        "papers' published numbers in `bench/reproduction/papers.toml`; never edited by hand "
        f"(`{COMMAND} --check` fails when it is stale). {runs} runs, {_hours(total)} of training on one 2-core "
        f"x86 CPU (each run's median epoch time x its epochs; {_hours(wall)} of wall time, which also counts "
        "the time the runs were paused while the machine ran tests and benchmarks).",
        "",
        "**The published numbers are on the official datasets at the papers' budgets** (hundreds of epochs on "
        "GPUs); lqbench's are on the copies in `../shared/data` (CIFAR-10 and ImageNette are JPEG q75 copies of "
        "the real images, not the official pixels) at a budget one CPU affords, stated per paper. Differences in "
        "absolute accuracy are expected; the verdicts ask whether the papers' *findings* hold.",
        "",
        "How to read the tables: lqbench's number is the mean ± sample standard deviation (n - 1) over the "
        "finished seeds (n in parentheses) of the test accuracy of the epoch with the best validation accuracy "
        "(a held-out part of the training split; the last epoch's when a run has no validation split); "
        "*difference* is lqbench minus the paper. Failed runs are shown with their error and never averaged. "
        "*pending*: planned by the committed sweep but not finished yet; *not run*: not in the CPU-scale preset. "
        "When several lqbench configurations match one cell (e.g. grid points), each is shown and the one with "
        "the best mean validation accuracy is used. The run column is the configuration key: its runs are in "
        "`<results>/<name>-<key>/seed-<n>/result.json`.",
        "",
    ]
    lines += render_verdicts(verdicts)
    for section_id in SECTIONS:
        lines += render_section(sections[section_id])
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------- committed inputs only
def uncommitted_results(results_root: pathlib.Path) -> list[str] | None:
    """Result files under ``results_root`` that git does not have as committed (untracked or
    modified); None when the folder is not in a git work tree (nothing to check)."""
    results_root = pathlib.Path(results_root)
    if not results_root.is_dir():
        return []
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=results_root, capture_output=True, text=True)

    try:
        top = git("rev-parse", "--show-toplevel")
        if top.returncode:
            return None  # not in a git work tree
        tracked = git("ls-files", "-z", "--", ".").stdout.split("\0")
        diff = git("diff", "HEAD", "--name-only", "-z", "--", ".")  # fails before the first commit: nothing committed
        changed = diff.stdout.split("\0") if diff.returncode == 0 else []
        top = top.stdout.strip()
    except OSError:  # no git
        return None
    here = results_root.resolve()
    tracked_set = {str((here / p).resolve()) for p in tracked if p}
    changed_set = {str((pathlib.Path(top) / p).resolve()) for p in changed if p}
    missing = []
    for folder, subfolders, files in os.walk(here):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(("_", ".")))
        for name in ("result.json", "sweep.toml"):
            if name in files:
                path = str(pathlib.Path(folder, name).resolve())
                if path not in tracked_set or path in changed_set:
                    missing.append(os.path.relpath(path, here))
    return sorted(missing)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if OUTPUT is not what the results give")
    parser.add_argument("--results", type=pathlib.Path, default=RESULTS, help="results root (default: %(default)s)")
    parser.add_argument("--papers", type=pathlib.Path, default=PAPERS_FILE, help="published cells (default: %(default)s)")
    parser.add_argument("--output", type=pathlib.Path, default=OUTPUT, help="markdown file (default: %(default)s)")
    parser.add_argument("--allow-uncommitted", action="store_true",
                        help="render result files git does not have committed (a preview, marked as such)")
    args = parser.parse_args(argv)
    missing = uncommitted_results(args.results)
    preview = ""
    if missing:
        if not args.allow_uncommitted:
            print(f"render: {len(missing)} result file(s) under {args.results} are not committed (e.g. "
                  f"{missing[0]}); REPRODUCTION.md is made from committed results only: commit them, or pass "
                  "--allow-uncommitted for a preview", file=sys.stderr)
            return 2
        preview = f"made with {len(missing)} uncommitted result file(s)"
    try:
        text = render(load_sections(args.results, args.papers), preview)
    except (OSError, tomllib.TOMLDecodeError, LqbenchError) as error:
        print(f"render: {one_line(str(error))}", file=sys.stderr)
        return 2
    if args.check:
        current = args.output.read_text() if args.output.is_file() else None
        if current == text:
            print(f"{args.output} is up to date")
            return 0
        if current is None:
            print(f"{args.output} does not exist: run `{COMMAND}`", file=sys.stderr)
        else:
            first = next((line for line in difflib.unified_diff(current.splitlines(), text.splitlines(), lineterm="", n=0)
                          if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))), "")
            print(f"{args.output} is stale (first difference: {first[:120]!r}): run `{COMMAND}`", file=sys.stderr)
        return 1
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
