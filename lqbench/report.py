"""Reports over a results folder: mean ± std over seeds, the papers' tables, figures, HParams.

A results folder holds one ``result.json`` per run (`lqbench.experiment.RunResult`, written
atomically by `lqbench.experiment.run` in ``<name>-<key>/seed-<seed>/``). This module reads
them back and aggregates them over seeds:

\\[
\\bar a = \\frac{1}{n} \\sum_{i=1}^{n} a_i, \\qquad
s = \\sqrt{\\frac{1}{n - 1} \\sum_{i=1}^{n} (a_i - \\bar a)^2}
\\]

(sample standard deviation, ``ddof=1``; undefined for ``n = 1``). Only successful runs enter a
mean; failed runs (NaN loss, exceptions) are counted in a ``failed`` column, never averaged.

The headline accuracy is the test accuracy of the weights of the epoch with the best
*validation* accuracy (``test_accuracy_best_val``): selection on validation, as in paper 000's
protocol (whose authors selected on test; lqbench does not).

Tables follow the papers' shapes (paper 000): algorithms x models (Tables 3, 7), weights x
activations (``W1A1``/``W1A32``/``W32A1``/``W32A32``, Tables 4-6), with/without skip connections
(Table 8), peak memory and run time (Table 9). Every other spec field that varies across the
results splits the tables into sections, so a table never averages different configurations.

!!! example
    ```python
    from lqbench import report

    results = report.load_results("lqbench-results")
    rows = report.summarise(results, by=["model", "algorithm"])
    print(report.paper_tables(results)[0].to_markdown())
    report.write_report("lqbench-results", "lqbench-results/report")
    ```
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import pathlib
import re
import shutil
import warnings
from typing import Any, Iterable, Sequence

import numpy as np

from lqbench import storage
from lqbench._lazy import lazy_module
from lqbench.results import RunResult, mean_std

hp = lazy_module("tensorboard.plugins.hparams.api")
tf = lazy_module("tensorflow")
sweep = lazy_module("lqbench.sweep")  # its readers (sweep loads TensorFlow through experiment)

#: Metrics aggregated by `summarise` by default (RunResult attributes).
METRICS = (
    "test_accuracy_best_val",
    "test_accuracy",
    "best_val_accuracy",
    "wall_time_s",
    "time_per_epoch_s",
    "peak_memory_bytes",
    "params",
    "footprint_bits",
)

#: How each metric is shown in tables: (column title, scale, decimals).
METRIC_FORMATS = {
    "test_accuracy_best_val": ("test accuracy % (best-val epoch)", 100.0, 1),
    "test_accuracy": ("test accuracy % (last epoch)", 100.0, 1),
    "best_val_accuracy": ("best validation accuracy %", 100.0, 1),
    "wall_time_s": ("run time (s)", 1.0, 0),
    "time_per_epoch_s": ("time per epoch (s)", 1.0, 2),
    "peak_memory_bytes": ("peak memory (MiB)", 1.0 / 2**20, 0),
    "params": ("parameters", 1.0, 0),
    "footprint_bits": ("deployed size (KiB)", 1.0 / 8 / 1024, 1),
}

#: Spec fields never used to group or split (they identify runs, not configurations).
_NOT_CONFIG = {"name", "seeds", "grid", "data_dir"}

#: Preferred table axes, most specific first.
_COLUMN_KEYS = ("algorithm", "method", "binarization.activation_estimator", "binarization.weight_estimator",
                "binarization", "post_training_binarization")
_ROW_KEYS = ("model", "dataset", "binarization")


# ---------------------------------------------------------------------------- loading
def load_results(results_dir: str | os.PathLike, warn: bool = True,
                 skipped: list[tuple[str, str]] | None = None) -> list[RunResult]:
    """Every ``result.json`` under ``results_dir`` (recursively), sorted by name, key and seed.

    Folders whose name starts with ``_`` or ``.`` (a search's ``_trials``, a sweep's
    ``_search``) are not read; the same run (name, key, seed) found twice counts once. Files
    that cannot be used are skipped, never silently: a folder or file that cannot be read, a
    file that is not a run result, another run's result copied into a run folder
    (`lqbench.sweep.result_problem`), a duplicate. Each is appended to ``skipped`` as
    ``(path, reason)`` and, with ``warn``, warned about.
    """
    root = pathlib.Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results folder {root} does not exist")
    skipped = skipped if skipped is not None else []

    def skip(path, reason):
        skipped.append((str(path), reason))
        if warn:
            warnings.warn(f"skipping {path}: {reason}", stacklevel=3)

    def unreadable(error: OSError):
        skip(error.filename or root, f"cannot be read ({error.strerror or error})")

    paths = []
    for folder, subfolders, files in os.walk(root, onerror=unreadable):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(("_", ".")))
        if "result.json" in files:
            paths.append(pathlib.Path(folder) / "result.json")
    results = []
    for path in sorted(paths):
        result, reason = sweep.read_result(path)
        if result is None:
            skip(path, reason)
        else:
            results.append((path, result))
    unique = {}
    for path, result in results:  # the same run copied twice (e.g. a search's final seed) counts once
        key = (result.name, result.spec_key, result.seed)
        if key in unique:
            skip(path, f"the same run as {unique[key][0]} (counted once)")
        else:
            unique[key] = (path, result)
    return sorted((r for _, r in unique.values()), key=lambda r: (r.name, r.spec_key, r.seed))


# ---------------------------------------------------------------------------- fields
def field_value(result: RunResult, key: str) -> Any:
    """The value of ``key`` for ``result``: a `RunResult` attribute or a (dotted) spec field.

    ``"binarization"`` gives the papers' label (``W1A1``, ``W32A1``, ...); ``"binarization.weights"``
    and other dotted keys walk into the spec's tables. Lists and tables are returned as
    compact JSON strings so they can be grouped.
    """
    if key in ("binarization", "binarization.label"):
        b = result.spec.get("binarization") or {}
        return f"W{1 if b.get('weights', True) else 32}A{1 if b.get('activations', True) else 32}"
    if key != "spec" and key in _RESULT_FIELDS:
        return getattr(result, key)
    value: Any = result.spec
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value


_RESULT_FIELDS = {f.name for f in dataclasses.fields(RunResult)}


def varying_fields(results: Sequence[RunResult]) -> list[str]:
    """The spec fields (flattened, dotted) whose value differs between ``results``.

    The binarization table is reported as its label (``"binarization"``) when only
    ``weights``/``activations`` vary, and by its dotted fields otherwise.
    """
    flat = [_flatten(r.spec) for r in results]
    keys = sorted({k for f in flat for k in f} - _NOT_CONFIG)
    varying = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]
    label_parts = {"binarization.weights", "binarization.activations"}
    if label_parts & set(varying):
        varying = [k for k in varying if k not in label_parts] + ["binarization"]
    return varying


def _flatten(spec: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in spec.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and key in ("binarization", "model_args", "algorithm_args",
                                                         "method_args"):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


# ---------------------------------------------------------------------------- aggregation
def summarise(
    results: Sequence[RunResult],
    by: Sequence[str] | None = None,
    metrics: Sequence[str] = METRICS,
) -> list[dict[str, Any]]:
    """One row per configuration: mean ± std (ddof=1) over seeds of every metric.

    # Arguments
        results: runs (`load_results`).
        by: fields that define a configuration (`field_value` keys). Default: every spec
            field that varies across ``results`` (`varying_fields`), or ``["name"]`` if none.
        metrics: `RunResult` attributes to aggregate.

    # Returns
        Rows (dicts) in first-seen order with the ``by`` values, ``n`` (successful runs),
        ``failed`` (failed runs), ``seeds``, ``errors`` (distinct failure messages) and, for each
        metric ``m``, ``m_mean``, ``m_std`` and ``m_n``. Failed runs never enter a mean.
    """
    by = list(by) if by is not None else (varying_fields(results) or ["name"])
    groups: dict[tuple, list[RunResult]] = {}
    for result in results:
        groups.setdefault(tuple(_hashable(field_value(result, k)) for k in by), []).append(result)
    rows = []
    for key, members in groups.items():
        ok = [r for r in members if r.status == "ok"]
        failed = [r for r in members if r.status != "ok"]
        row: dict[str, Any] = dict(zip(by, key))
        row.update(
            n=len(ok),
            failed=len(failed),
            seeds=sorted(r.seed for r in members),
            errors=sorted({r.error or "unknown error" for r in failed}),
        )
        for metric in metrics:
            mean, std, n = mean_std(getattr(r, metric) for r in ok)
            row[f"{metric}_mean"], row[f"{metric}_std"], row[f"{metric}_n"] = mean, std, n
        rows.append(row)
    return rows


def _hashable(value):
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


def format_cell(row: dict[str, Any] | None, metric: str) -> str:
    """``"61.7 (0.78)"`` as in the papers (std in parentheses; ``–`` for n = 1), plus failures."""
    if row is None:
        return ""
    _, scale, decimals = METRIC_FORMATS.get(metric, (metric, 1.0, 3))
    mean, std = row.get(f"{metric}_mean"), row.get(f"{metric}_std")
    if mean is None:
        text = "—"
    else:
        text = f"{mean * scale:.{decimals}f} ({'–' if std is None else f'{std * scale:.{max(decimals, 2)}f}'})"
    failed = row.get("failed", 0)
    if failed:
        text = f"failed ({failed}/{failed + row.get('n', 0)})" if mean is None else f"{text} [{failed} failed]"
    return text


# ---------------------------------------------------------------------------- tables
@dataclasses.dataclass
class Table:
    """A two-way table of formatted cells (rows x columns), with a title and notes."""

    title: str
    row_title: str
    columns: list[str]
    rows: list[tuple[str, list[str]]]
    notes: list[str] = dataclasses.field(default_factory=list)
    slug: str = "table"

    def to_markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join([self.row_title, *self.columns]) + " |",
                 "|" + "---|" * (len(self.columns) + 1)]
        lines += ["| " + " | ".join([label, *cells]) + " |" for label, cells in self.rows]
        if self.notes:
            lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([self.row_title, *self.columns])
        for label, cells in self.rows:
            writer.writerow([label, *cells])
        return buffer.getvalue()


def pivot(
    results: Sequence[RunResult],
    rows: str | Sequence[str],
    columns: str,
    metric: str = "test_accuracy_best_val",
    title: str | None = None,
    slug: str | None = None,
) -> Table:
    """A `Table` with one row per value of ``rows`` (one field or several), one column per
    value of ``columns`` and ``format_cell`` of ``metric`` in each cell."""
    rows = [rows] if isinstance(rows, str) else list(rows)
    summary = summarise(results, by=[*rows, columns], metrics=[metric])
    column_values = list(dict.fromkeys(r[columns] for r in summary))
    row_values = list(dict.fromkeys(tuple(r[k] for k in rows) for r in summary))
    cells = {(tuple(r[k] for k in rows), r[columns]): r for r in summary}
    body = [
        (" / ".join(_label(k, v) for k, v in zip(rows, rv)), [format_cell(cells.get((rv, c)), metric) for c in column_values])
        for rv in row_values
    ]
    name = METRIC_FORMATS.get(metric, (metric,))[0]
    return Table(
        title=title or f"{name}: {' / '.join(rows)} x {columns}",
        row_title=" / ".join(rows),
        columns=[_label(columns, c) for c in column_values],
        rows=body,
        slug=slug or _slug(f"{metric}-{'-'.join(rows)}-{columns}"),
    )


def paper_tables(results: Sequence[RunResult], metric: str = "test_accuracy_best_val") -> list[Table]:
    """The papers' tables for whatever ``results`` contain.

    - accuracy: models (rows) x algorithms (columns), one section per value of every other
      varying field (dataset, binarization, skip connections, ...) — 000 Tables 3 and 7;
    - weights x activations: binarization label (rows) x algorithm, per model — 000 Tables 4-6;
    - skip connections: model / with-or-without skips (rows) x algorithm — 000 Table 8;
    - memory and time: peak memory and run time, models x algorithms — 000 Table 9.

    Tables whose two axes do not vary are still produced (a single cell), so a one-config
    results folder gets a one-row table.
    """
    if not results:
        return []
    varying = varying_fields(results)
    column = next((k for k in _COLUMN_KEYS if k in varying), None)
    row = next((k for k in _ROW_KEYS if k in varying and k != column), None)
    if column is None:
        column = "algorithm"
    if row is None:
        row = "model"
    splits = [k for k in varying if k not in (row, column)]
    tables = []
    for values, subset in _split(results, splits):
        suffix = ", ".join(_label(k, v) for k, v in values)
        tables.append(
            pivot(subset, row, column, metric,
                  title=METRIC_FORMATS[metric][0].capitalize() + (f" — {suffix}" if suffix else ""),
                  slug=_slug("accuracy-" + (suffix or "all")))
        )
    if "binarization" in varying and row != "binarization" and column != "binarization":
        others = [k for k in splits if k != "binarization"]
        for values, subset in _split(results, [row, *others]):
            suffix = ", ".join(_label(k, v) for k, v in values)
            tables.append(pivot(subset, "binarization", column, metric,
                                title=f"Weights x activations — {suffix}", slug=_slug("binarization-" + suffix)))
    if "skip_connections" in varying:
        others = [k for k in splits if k != "skip_connections"]
        for values, subset in _split(results, others):
            suffix = ", ".join(_label(k, v) for k, v in values)
            tables.append(pivot(subset, [row, "skip_connections"], column, metric,
                                title="With and without skip connections" + (f" — {suffix}" if suffix else ""),
                                slug=_slug("skips-" + (suffix or "all"))))
    for values, subset in _split(results, splits):
        suffix = ", ".join(_label(k, v) for k, v in values)
        for cost in ("peak_memory_bytes", "wall_time_s"):
            table = pivot(subset, row, column, cost,
                          title=f"{METRIC_FORMATS[cost][0]}" + (f" — {suffix}" if suffix else ""),
                          slug=_slug(f"{cost}-" + (suffix or "all")))
            methods = sorted({r.memory_method for r in subset if r.memory_method})
            if cost == "peak_memory_bytes" and methods:
                table.notes.append("memory measured as: " + "; ".join(methods))
            tables.append(table)
    return tables


def _split(results, keys):
    if not keys:
        return [((), list(results))]
    groups: dict[tuple, list[RunResult]] = {}
    for r in results:
        groups.setdefault(tuple(_hashable(field_value(r, k)) for k in keys), []).append(r)
    return [(tuple(zip(keys, values)), members) for values, members in groups.items()]


def _label(key: str, value: Any) -> str:
    if isinstance(value, bool):
        short = key.rsplit(".", 1)[-1].replace("_", " ")
        return short if value else f"no {short}"
    if key in ("algorithm", "model", "dataset", "method", "binarization") or key.endswith("estimator"):
        return str(value)
    return f"{key.rsplit('.', 1)[-1]}={value}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()[:80] or "table"


# ---------------------------------------------------------------------------- files
def write_summary_csv(rows: list[dict[str, Any]], path: str | os.PathLike) -> pathlib.Path:
    """The long-format summary (one configuration per line) as CSV."""
    buffer = io.StringIO()
    fields = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (json.dumps(v) if isinstance(v, list) else v) for k, v in row.items()})
    return storage.write_atomic(path, buffer.getvalue())


def plot_accuracy(results: Sequence[RunResult], path: str | os.PathLike, metric: str = "test_accuracy_best_val",
                  rows: str | None = None, columns: str | None = None) -> pathlib.Path:
    """Grouped bars of ``metric`` (mean over seeds, error bars = sample std), one group per
    value of ``rows`` and one bar colour per value of ``columns``."""
    varying = varying_fields(results)
    columns = columns or next((k for k in _COLUMN_KEYS if k in varying), "algorithm")
    rows = rows or next((k for k in _ROW_KEYS if k in varying and k != columns), "model")
    others = [k for k in varying if k not in (rows, columns)]
    summary = summarise(results, by=[rows, *others, columns], metrics=[metric])
    group_of = lambda r: " / ".join(_label(k, r[k]) for k in [rows, *others])  # noqa: E731
    return _bars(summary, group_of, lambda r: _label(columns, r[columns]), [metric], path)


def plot_costs(results: Sequence[RunResult], path: str | os.PathLike) -> pathlib.Path:
    """Bars of peak memory (MiB) and run time (s) per configuration, error bars = sample std."""
    by = varying_fields(results) or ["name"]
    summary = summarise(results, by=by, metrics=["peak_memory_bytes", "wall_time_s"])
    return _bars(summary, lambda r: " / ".join(_label(k, r[k]) for k in by), None,
                 ["peak_memory_bytes", "wall_time_s"], path)


def _bars(summary, group_of, series_of, metrics, path) -> pathlib.Path:
    plt = _pyplot()
    groups = list(dict.fromkeys(group_of(r) for r in summary))
    series = list(dict.fromkeys(series_of(r) for r in summary)) if series_of else [""]
    fig, axes = plt.subplots(len(metrics), 1, figsize=(max(6, 1.2 * len(groups) * max(1, len(series)) ** 0.5 + 2),
                                                        3.2 * len(metrics)), squeeze=False)
    width = 0.8 / len(series)
    x = np.arange(len(groups))
    for ax, metric in zip(axes[:, 0], metrics):
        name, scale, _ = METRIC_FORMATS.get(metric, (metric, 1.0, 3))
        for i, s in enumerate(series):
            means, stds = [], []
            for g in groups:
                row = next((r for r in summary if group_of(r) == g and (not series_of or series_of(r) == s)), None)
                mean = row and row.get(f"{metric}_mean")
                std = row and row.get(f"{metric}_std")
                means.append(np.nan if mean is None else mean * scale)
                stds.append(0.0 if std is None else std * scale)
            ax.bar(x + (i - (len(series) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=s or None)
        ax.set_xticks(x, groups, rotation=20 if len(groups) > 3 else 0, ha="right" if len(groups) > 3 else "center")
        ax.set_ylabel(name)
        ax.grid(axis="y", alpha=0.3)
        if series_of and len(series) > 1:
            ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def plot_curves(results: Sequence[RunResult], path: str | os.PathLike,
                keys: Sequence[str] = ("loss", "val_loss", "accuracy", "val_accuracy")) -> pathlib.Path:
    """Training curves: mean over seeds of each history key per epoch, shaded ± sample std."""
    plt = _pyplot()
    by = varying_fields(results) or ["name"]
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        if r.history:
            groups.setdefault(" / ".join(_label(k, field_value(r, k)) for k in by), []).append(r)
    keys = [k for k in keys if any(k in r.history for rs in groups.values() for r in rs)] or ["loss"]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for label, members in groups.items():
            curves = [r.history[key] for r in members if r.history.get(key)]
            if not curves:
                continue
            length = max(len(c) for c in curves)
            data = np.full((len(curves), length), np.nan)
            for i, c in enumerate(curves):
                data[i, : len(c)] = c
            epochs = np.arange(1, length + 1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(data, axis=0)
                std = np.nanstd(data, axis=0, ddof=1) if len(curves) > 1 else np.zeros(length)
            ax.plot(epochs, mean, marker="o" if length < 20 else None, label=label)
            ax.fill_between(epochs, mean - np.nan_to_num(std), mean + np.nan_to_num(std), alpha=0.2)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
    if groups:
        axes[0, -1].legend(fontsize="x-small")
    fig.tight_layout()
    return _save(fig, path)


def _pyplot():
    """``matplotlib.pyplot`` on the Agg backend (matplotlib, an optional dependency, is loaded for figures only)."""
    import matplotlib.pyplot as plt

    plt.switch_backend("Agg")
    return plt


def _save(fig, path) -> pathlib.Path:
    plt = _pyplot()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------- TensorBoard HParams
HPARAM_FIELDS = ("dataset", "model", "algorithm", "method", "learning_rate", "weight_decay", "epochs",
                 "batch_size", "binarization", "binarization.weight_estimator", "binarization.activation_estimator",
                 "skip_connections", "augment", "post_training_binarization", "seed")
HPARAM_METRICS = ("test_accuracy_best_val", "test_accuracy", "best_val_accuracy", "wall_time_s",
                  "time_per_epoch_s", "peak_memory_mib", "failed")


def run_hparams(result: RunResult) -> dict[str, bool | int | float | str]:
    """The hyperparameters of one run for TensorBoard's HParams dashboard (scalars only)."""
    values = {}
    keys = list(HPARAM_FIELDS) + [f"{t}.{k}" for t in ("model_args", "algorithm_args", "method_args")
                                  for k in (result.spec.get(t) or {})]
    for key in keys:
        value = field_value(result, key)
        if value is None:
            continue
        values[key] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return values


def write_hparams(results: Sequence[RunResult], logdir: str | os.PathLike) -> pathlib.Path:
    """One TensorBoard HParams summary per run in ``logdir/<run>`` (rewritten from scratch),
    plus the experiment configuration (domains of every hyperparameter, the metrics)."""
    logdir = pathlib.Path(logdir)
    if logdir.exists():
        shutil.rmtree(logdir)
    logdir.mkdir(parents=True)
    per_run = [(r, run_hparams(r)) for r in results]
    domains: dict[str, set] = {}
    for _, values in per_run:
        for key, value in values.items():
            domains.setdefault(key, set()).add(value)
    hparams = []
    for key, seen in domains.items():
        kinds = {type(v) for v in seen}
        if len(kinds) == 1:
            hparams.append(hp.HParam(key, hp.Discrete(sorted(seen))))
        else:
            hparams.append(hp.HParam(key))
    metrics = [hp.Metric(m, display_name=m) for m in HPARAM_METRICS]
    with tf.summary.create_file_writer(str(logdir)).as_default():
        hp.hparams_config(hparams=hparams, metrics=metrics)
    for result, values in per_run:
        run_name = f"{result.name}-{result.spec_key}-seed{result.seed}"
        with tf.summary.create_file_writer(str(logdir / run_name)).as_default():
            hp.hparams(values, trial_id=run_name)
            tf.summary.scalar("failed", 0.0 if result.status == "ok" else 1.0, step=0)
            if result.status == "ok":
                for metric in HPARAM_METRICS:
                    value = (result.peak_memory_bytes / 2**20 if result.peak_memory_bytes is not None else None) \
                        if metric == "peak_memory_mib" else getattr(result, metric, None)
                    if metric != "failed" and value is not None:
                        tf.summary.scalar(metric, float(value), step=0)
    return logdir


# ---------------------------------------------------------------------------- everything
@dataclasses.dataclass
class Report:
    """What `write_report` produced."""

    markdown: str
    tables: list[Table]
    summary: list[dict[str, Any]]
    files: list[pathlib.Path]
    runs: int
    failed: int
    skipped: list = dataclasses.field(default_factory=list)  # (path, reason) of what was not counted


def write_report(results_dir: str | os.PathLike, output_dir: str | os.PathLike | None = None,
                 figures: bool = True, hparams: bool = True) -> Report:
    """Tables (Markdown ``report.md`` + one CSV per table + ``summary.csv``), figures
    (``accuracy.png``, ``costs.png``, ``curves.png``) in ``output_dir`` (default
    ``results_dir/report``), and HParams summaries in ``results_dir/hparams``."""
    results_dir = pathlib.Path(results_dir)
    output = pathlib.Path(output_dir) if output_dir is not None else results_dir / "report"
    skipped: list[tuple[str, str]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # listed in the report instead
        results = load_results(results_dir, skipped=skipped)
    if not results:
        why = f" ({len(skipped)} skipped: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise FileNotFoundError(f"no usable result.json under {results_dir}{why}")
    output.mkdir(parents=True, exist_ok=True)
    summary = summarise(results)
    tables = paper_tables(results)
    failed = [r for r in results if r.status != "ok"]
    lines = [f"# lqbench report: {results_dir}", "",
             f"{len(results)} runs ({len(results) - len(failed)} ok, {len(failed)} failed) in "
             f"{len(summary)} configurations. Cells: mean (sample std, ddof=1) over seeds; failed runs are "
             "counted, never averaged. Accuracy: test accuracy of the best-validation epoch's weights.", ""]
    for table in tables:
        lines.append(table.to_markdown())
    if failed:
        lines += ["### Failed runs", "", "| run | seed | error |", "|---|---|---|"]
        lines += [f"| {r.name}-{r.spec_key} | {r.seed} | {(r.error or '').replace('|', '/')} |" for r in failed]
        lines.append("")
    if skipped:
        lines += ["### Skipped", "", f"{len(skipped)} file(s) or folder(s) under {results_dir} were not counted:", "",
                  "| path | why |", "|---|---|"]
        lines += [f"| {_relative(path, results_dir)} | {reason.replace('|', '/')} |" for path, reason in skipped]
        lines.append("")
    markdown = "\n".join(lines)
    files = [storage.write_atomic(output / "report.md", markdown)]
    files.append(write_summary_csv(summary, output / "summary.csv"))
    for table in tables:
        files.append(storage.write_atomic(output / f"{table.slug}.csv", table.to_csv()))
    if figures:
        ok = [r for r in results if r.status == "ok"]
        if ok:
            files.append(plot_accuracy(ok, output / "accuracy.png"))
            files.append(plot_costs(ok, output / "costs.png"))
        if any(r.history for r in results):
            files.append(plot_curves([r for r in results if r.history], output / "curves.png"))
    if hparams:
        files.append(write_hparams(results, results_dir / "hparams"))
    return Report(markdown=markdown, tables=tables, summary=summary, files=files, runs=len(results),
                  failed=len(failed), skipped=skipped)


def _relative(path: str, root) -> str:
    try:
        return str(pathlib.Path(path).relative_to(root))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------- deployment (Pareto) figure
def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    r"""Indices of the points no other point dominates, by increasing cost.

    A point is \\((c, a)\\): cost (lower is better) and accuracy (higher is better); \\(q\\)
    dominates \\(p\\) when \\(c_q \le c_p\\) and \\(a_q \ge a_p\\), one of them strictly.

    !!! example
        ```python
        pareto_front([(1.0, 0.5), (2.0, 0.4), (3.0, 0.9)]) == [0, 2]
        ```
    """
    front, best = [], -math.inf
    for index in sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1])):
        if points[index][1] > best:
            front.append(index)
            best = points[index][1]
    return front


def deployment_summary(records: Sequence[dict[str, Any]], metric: str = "test_accuracy_best_val") -> list[dict[str, Any]]:
    """Deployment records (`lqbench.tflite.deployment.measure_runs`) grouped by ``config``: mean and
    sample std over seeds of ``metric``, binary size and host latency, and whether the
    configuration is on the size and the latency Pareto fronts."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record.get("error") is None and record.get(metric) is not None and record.get("latency_ms") is not None:
            groups.setdefault(record["config"], []).append(record)
    rows = []
    for config, members in groups.items():
        acc, acc_std, n = mean_std(r[metric] for r in members)
        size, _, _ = mean_std(r["binary_bytes"] for r in members)
        latency, latency_std, _ = mean_std(r["latency_ms"] for r in members)
        ratio, _, _ = mean_std(r["size_ratio"] for r in members if r.get("size_ratio"))
        rows.append({"config": config, "seeds": n, f"{metric}_mean": acc, f"{metric}_std": acc_std,
                     "binary_kib": size / 1024, "size_ratio": ratio, "latency_ms": latency,
                     "latency_ms_std": latency_std, "where": members[0].get("where"),
                     "verdicts": sorted({str(r.get("verdict")) for r in members})})
    for cost, flag in (("binary_kib", "pareto_size"), ("latency_ms", "pareto_latency")):
        front = set(pareto_front([(r[cost], r[f"{metric}_mean"]) for r in rows]))
        for i, row in enumerate(rows):
            row[flag] = i in front
    return sorted(rows, key=lambda r: r["binary_kib"])


def deployment_markdown(rows: Sequence[dict[str, Any]], failed: Sequence[dict[str, Any]] = (),
                        metric: str = "test_accuracy_best_val") -> str:
    """The deployment table of `deployment_summary` rows (``*`` marks the Pareto fronts)."""
    where = next((r["where"] for r in rows if r.get("where")), "this host")
    lines = ["### Deployment: accuracy, LCE size and host latency", "",
             f"Binary model converted by `lqbench.tflite.convert` (rewritten, verified); latency: median single-image "
             f"inference on {where}. `*`: on the Pareto front (no other configuration is both cheaper and more "
             "accurate).", "",
             "| configuration | seeds | test accuracy % | LCE size KiB | smaller than float | latency ms | verification |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        mean, std = r[f"{metric}_mean"], r[f"{metric}_std"]
        acc = f"{100 * mean:.1f}" + (f" ± {100 * std:.1f}" if std is not None else "")
        ratio = f"{r['size_ratio']:.1f}x" if r.get("size_ratio") else "n/a"
        lines.append(f"| {r['config']} | {r['seeds']} | {acc} | {r['binary_kib']:,.1f}{' *' if r['pareto_size'] else ''} "
                     f"| {ratio} | {r['latency_ms']:.3f}{' *' if r['pareto_latency'] else ''} | {', '.join(r['verdicts'])} |")
    for f in failed:
        lines.append(f"| {f['config']} (seed {f['seed']}) | - | - | - | - | - | {f['error']} |")
    return "\n".join(lines) + "\n"


def plot_deployment(records: Sequence[dict[str, Any]], path: str | os.PathLike,
                    metric: str = "test_accuracy_best_val") -> pathlib.Path:
    """Test accuracy against LCE size (KiB, log scale) and against host latency (ms): one point per
    configuration (mean over seeds, error bars = sample std), the Pareto front as a step line."""
    plt = _pyplot()
    rows = deployment_summary(records, metric)
    if not rows:
        raise ValueError("no run with a converted model, an accuracy and a latency to plot")
    name, scale, _ = METRIC_FORMATS.get(metric, (metric, 1.0, 3))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), squeeze=False)
    for ax, (cost, label, flag) in zip(axes[0], (("binary_kib", "LCE model size (KiB)", "pareto_size"),
                                                  ("latency_ms", "host latency (ms, single image)", "pareto_latency"))):
        for r in rows:
            ax.errorbar(r[cost], r[f"{metric}_mean"] * scale, yerr=(r[f"{metric}_std"] or 0) * scale,
                        xerr=(r.get("latency_ms_std") or 0) if cost == "latency_ms" else None,
                        fmt="o", capsize=3, label=r["config"], markersize=7 if r[flag] else 5)
        front = sorted((r for r in rows if r[flag]), key=lambda r: r[cost])
        ax.step([r[cost] for r in front], [r[f"{metric}_mean"] * scale for r in front], where="post",
                color="black", alpha=0.5, linestyle="--", label="Pareto front")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0, 0].set_title("accuracy vs size")
    axes[0, 1].set_title(f"accuracy vs latency ({rows[0].get('where') or 'host'})")
    axes[0, 1].legend(fontsize="x-small", loc="best")
    fig.tight_layout()
    return _save(fig, path)


def write_deployment(records: Sequence[dict[str, Any]], output_dir: str | os.PathLike,
                     metric: str = "test_accuracy_best_val", figure: bool = True) -> tuple[str, list[pathlib.Path]]:
    """``deployment.md``, ``deployment.csv`` (and ``deployment.png``) in ``output_dir``; returns the Markdown and files."""
    output = pathlib.Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    rows = deployment_summary(records, metric)
    failed = [r for r in records if r.get("error")]
    markdown = deployment_markdown(rows, failed, metric)
    files = [storage.write_atomic(output / "deployment.md", markdown),
             write_summary_csv([{k: v for k, v in r.items()} for r in rows], output / "deployment.csv")]
    if figure and rows:
        files.append(plot_deployment(records, output / "deployment.png", metric))
    return markdown, files
