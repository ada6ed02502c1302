"""``lqbench bench``: latency of an LCE model and its float twin, on this host or a device."""
from __future__ import annotations

import csv
import json
import pathlib
import sys
import tempfile

from lqbench._lazy import lazy_module
from lqbench.errors import UsageError

tfl = lazy_module("lqbench.tflite")
from lqbench.commands._types import add_fallback_flags, non_negative_int, positive_float, positive_int

COLUMNS = ("model", "where", "kernel", "threads", "binary_ms", "float_ms", "ratio",
           "binary_kib", "float_kib", "size_ratio", "statistic", "runs")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark an LCE model against its float twin",
        description=(
            "Single-image latency of a .tflite file (or a saved Keras model, converted on the fly) "
            "and of its float twin, on this host (not ARM latency unless the host is ARM) or on a "
            "device running lce_benchmark_model (adb or ssh)."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help=".tflite file or saved Keras model (.keras, .h5, SavedModel)")
    parser.add_argument("--float-twin", metavar="PATH|auto",
                        help="float model to compare with: a .tflite or Keras model, or 'auto' (the Keras "
                             "model with quantizers removed; default for Keras models)")
    parser.add_argument("--threads", type=positive_int, nargs="+", default=[1], metavar="N",
                        help="interpreter threads; several values give one row each (default: 1)")
    parser.add_argument("--runs", type=positive_int, default=50, help="timed single-image inferences (default: 50)")
    parser.add_argument("--warmup", type=non_negative_int, default=5,
                        help="untimed inferences before timing (default: 5)")
    parser.add_argument("--kernel", choices=("auto", "indirect", "default", "reference"), default="auto",
                        help="binary convolution kernel on the host: auto (time each, keep the fastest), indirect "
                             "(indirect BGEMM, single-threaded), default (ruy), reference (loops); default: auto")
    parser.add_argument("--device", metavar="adb[:SERIAL]|ssh:USER@HOST", help="run on a device instead of the host")
    parser.add_argument("--binary", metavar="PATH", help="lce_benchmark_model executable for --device")
    parser.add_argument("--target", choices=("arm", "xcore"), default="arm", help="converter target for Keras models")
    add_fallback_flags(parser)
    parser.add_argument("--timeout", type=positive_float, default=600.0,
                        help="seconds per device command (default: 600)")
    parser.add_argument("--csv", metavar="PATH", help="write the table as CSV")
    parser.add_argument("--json", metavar="PATH", help="write the full results as JSON")
    parser.set_defaults(func=run)


def _is_tflite(path: pathlib.Path) -> bool:
    return path.suffix == ".tflite"


def _prepare(args, workdir: pathlib.Path):
    """(binary .tflite, float .tflite or None, conversion report or None)."""
    model = pathlib.Path(args.model)
    if not model.exists():
        raise FileNotFoundError(f"no model at {model}")
    twin = args.float_twin
    report = None
    if _is_tflite(model):
        if twin == "auto":
            raise UsageError("--float-twin auto needs a saved Keras MODEL, not a .tflite file: pass --float-twin PATH")
        binary_path = model
        float_path = None
    else:
        keras_model = tfl.load_model(model)
        binary_path = workdir / f"{model.stem}.tflite"
        float_path = workdir / f"{model.stem}_float.tflite" if twin in (None, "auto") else None
        report = tfl.convert(keras_model, binary_path, target=args.target, fallback=args.fallback,
                             float_path=float_path)
        print(report)
        if twin in (None, "auto") and not float_path.exists():
            raise UsageError(f"no float twin for {model}: {report.float_note}")
    if twin not in (None, "auto"):
        twin_path = pathlib.Path(twin)
        if _is_tflite(twin_path):
            if not twin_path.is_file():
                raise FileNotFoundError(f"--float-twin: no file at {twin_path}")
            float_path = twin_path
        else:
            float_model = tfl.load_model(twin_path)
            float_path = workdir / f"{twin_path.stem}_float.tflite"
            float_path.write_bytes(tfl.to_flatbuffer(float_model, args.target))
    return binary_path, float_path, report


def _row(model: str, binary, floating) -> dict:
    row = {
        "model": model,
        "where": binary.where,
        "kernel": binary.kernel,
        "threads": binary.threads,
        "binary_ms": round(binary.latency_ms, 4),
        "float_ms": round(floating.latency_ms, 4) if floating else None,
        "ratio": round(binary.latency_ms / floating.latency_ms, 4) if floating else None,
        "binary_kib": round(binary.size_bytes / 1024, 1) if binary.size_bytes else None,
        "float_kib": round(floating.size_bytes / 1024, 1) if floating and floating.size_bytes else None,
        "size_ratio": round(floating.size_bytes / binary.size_bytes, 2)
        if floating and floating.size_bytes and binary.size_bytes else None,
        "statistic": binary.statistic,
        "runs": binary.runs,
    }
    return row


def format_table(rows: list[dict]) -> str:
    headers = ("model", "kernel", "threads", "binary ms", "float ms", "ratio", "binary KiB", "float KiB", "size x")
    keys = ("model", "kernel", "threads", "binary_ms", "float_ms", "ratio", "binary_kib", "float_kib", "size_ratio")
    cells = [headers] + [tuple("-" if row[k] is None else str(row[k]) for k in keys) for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args) -> int:
    if args.device and not args.binary:
        raise UsageError("--device needs --binary PATH (the lce_benchmark_model executable for the device)")
    if args.binary and not args.device:
        raise UsageError("--binary is only used with --device")
    runner = tfl.runner_for(args.device, args.binary, timeout=args.timeout) if args.device else None
    model_name = pathlib.Path(args.model).stem
    rows, results = [], []
    try:
        with tempfile.TemporaryDirectory(prefix="lqbench-bench-") as tmp:
            binary_path, float_path, report = _prepare(args, pathlib.Path(tmp))

            def measure(path, threads):
                if runner is not None:
                    kernel = args.kernel
                    return runner.run(path, threads=threads, runs=args.runs, warmup=args.warmup, kernel=kernel)
                return tfl.benchmark(path, threads=threads, runs=args.runs, warmup=args.warmup, kernel=args.kernel)

            for threads in args.threads:
                binary = measure(binary_path, threads)
                floating = measure(float_path, threads) if float_path else None
                rows.append(_row(model_name, binary, floating))
                results.append({"binary": binary.to_dict(), "float": floating.to_dict() if floating else None})
    except (tfl.ConversionError, tfl.DeviceError) as error:
        print(f"lqbench bench: error: {error}", file=sys.stderr)
        return 2
    where = rows[0]["where"] if rows else ""
    print(f"\n{where}")
    print(format_table(rows))
    for result in results:
        for note in result["binary"]["notes"]:
            print(f"note (binary, {result['binary']['threads']} thread(s)): {note}")
        for kernel, reason in result["binary"]["skipped"].items():
            print(f"skipped kernel {kernel}: {reason}")
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    if args.json:
        payload = {"rows": rows, "results": results, "conversion": report.to_dict() if report else None}
        pathlib.Path(args.json).write_text(json.dumps(payload, indent=2))
    return 0
