r"""The deployment cost of trained runs: LCE size and host latency next to test accuracy.

For every successful run of a results folder that saved its model (``model.keras``),
`measure_runs` converts the model with `lqbench.tflite.convert` (rewritten, verified; binary
layers LCE cannot run are allowed to fall back and counted), sizes its float twin, and times
single-image inference on this host with `lqbench.tflite.benchmark` (kernel ``auto``). Each
run's measurement is cached in ``<run>/deployment.json`` and reused while the model file is
unchanged (same size and modification time) and the settings are the same.

`lqbench.report.plot_deployment` draws the records as a Pareto view (accuracy against size and
against latency); ``lqbench report RESULTS --deployment`` does both.

!!! example
    ```python
    records = lqbench.tflite.deployment.measure_runs("lqbench-results", threads=1, runs=50)
    lqbench.report.plot_deployment(records, "lqbench-results/report/deployment.png")
    ```
"""
from __future__ import annotations

import json
import os
import pathlib
import tempfile
import warnings
from typing import Any

from lqbench import report as reporting
from lqbench import storage
from lqbench.tflite.benchmark import benchmark
from lqbench.tflite.convert import ConversionError, ConversionWarning, convert, load_model

CACHE = "deployment.json"


def _run_folder(result) -> pathlib.Path | None:
    if not result.model_path:
        return None
    return pathlib.Path(result.model_path).parent


def _stamp(path: pathlib.Path) -> dict[str, Any]:
    stat = path.stat()
    return {"model_bytes": stat.st_size, "model_mtime": stat.st_mtime}


def measure_model(model_path: str | os.PathLike, threads: int = 1, runs: int = 50, warmup: int = 5) -> dict[str, Any]:
    """Convert one saved model and time it on this host: the measurement fields of a record."""
    model = load_model(model_path)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConversionWarning)
        path = pathlib.Path(folder) / "model.tflite"
        report = convert(model, path, allow_fallback=True)
        timing = benchmark(path, threads=threads, runs=runs, warmup=warmup, kernel="auto")
    return {
        "binary_bytes": report.size_bytes,
        "float_bytes": report.float_size_bytes,
        "size_ratio": report.size_ratio,
        "latency_ms": timing.median_ms,
        "latency_p10_ms": timing.low_ms,
        "latency_p90_ms": timing.high_ms,
        "kernel": timing.kernel,
        "threads": threads,
        "where": timing.where,
        "bconv": report.bconv,
        "fallbacks": len(report.fallbacks),
        "rewrites": len(report.rewrites),
        "verdict": report.verdict,
        "max_abs_diff": report.max_abs_diff,
    }


def measure_runs(results_dir: str | os.PathLike, threads: int = 1, runs: int = 50, warmup: int = 5,
                 use_cache: bool = True) -> list[dict[str, Any]]:
    """One deployment record per successful run with a saved model (see the module doc).

    A record holds the run's identity (``name``, ``spec_key``, ``seed``, ``model``), its test
    accuracy (``test_accuracy_best_val``), the varying spec fields as ``config`` (to group seeds),
    and `measure_model`'s fields; a run whose model cannot be converted gets ``error`` instead.
    """
    results = reporting.load_results(results_dir)
    varying = reporting.varying_fields(results)
    settings = {"threads": threads, "runs": runs, "warmup": warmup}
    records = []
    for result in results:
        folder = _run_folder(result)
        if result.status != "ok" or folder is None or not pathlib.Path(result.model_path).exists():
            continue
        model_path = pathlib.Path(result.model_path)
        record = {
            "name": result.name, "spec_key": result.spec_key, "seed": result.seed,
            "model": result.spec.get("model"),
            "config": " / ".join(reporting._label(k, reporting.field_value(result, k)) for k in varying)
            or result.name,
            "test_accuracy_best_val": result.test_accuracy_best_val,
            "test_accuracy": result.test_accuracy,
        }
        stamp = {**_stamp(model_path), **settings}
        cache = folder / CACHE
        cached = None
        if use_cache and cache.exists():
            try:
                cached = json.loads(cache.read_text())
            except (OSError, ValueError):
                cached = None
        if cached is not None and cached.get("stamp") == stamp:
            measured = cached["measurement"]
        else:
            try:
                measured = measure_model(model_path, threads=threads, runs=runs, warmup=warmup)
            except (ConversionError, ValueError, RuntimeError, OSError) as error:
                measured = {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"}
            storage.write_json(cache, {"stamp": stamp, "measurement": measured})
        records.append({**record, **measured})
    return records
