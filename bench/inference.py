"""Binary vs float inference on this host with Larq Compute Engine: latency and size ratios.

For each zoo model at its default arguments (fully binary `lqbench.Binarization()` vs its float
twin `Binarization.full_precision()`, both built by `lqbench.models.build` at 32x32x3, 10 classes,
untrained weights: latency and size do not depend on the values), the script converts both
with LCE (`lqbench.tflite.convert` with its defaults: the model rewritten into LCE's fast form,
verified against Keras with sign ties kept apart), then times single-image inference with `lqbench.tflite.compare` at 1 and 2 threads
(binary kernel chosen by ``auto``; float ops on XNNPACK) and writes
``bench/results/inference.json``.

The host is x86: LCE's optimized ARM kernels are not used, so these are *not* ARM latencies
(`lce.md`). The machine may be shared: the load average before and after each model is
recorded, and binary and float inferences alternate one by one so both see the same load.

    python bench/inference.py [--models vgg_small vgg_small_avg binarynet_cnn ...] [--runs 200] [--merge]

``--merge`` replaces only the listed models' entries of an existing output file (to measure the
zoo in several shorter runs).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import sys
import tempfile
import time
import warnings

import lqbench  # noqa: F401  (selects tf-keras before TensorFlow)
import lqbench.models as models
import lqbench.tflite as tfl

HERE = pathlib.Path(__file__).resolve().parent
TARGET_LATENCY_RATIO = 0.5  # binary at most half the float latency (1 thread)
TARGET_SIZE_RATIO = 25.0  # binary at least 25x smaller
# zoo variants benchmarked under their own names: (zoo model, architecture arguments)
# (binary dense layers need no variant any more: `lqbench.tflite.convert` rewrites them as 1x1 binary convs)
VARIANTS = {
    "vgg_small_avg": ("vgg_small", {"head": "avg"}),
}
DEFAULT_MODELS = ["vgg_small", "vgg_small_avg", "binarynet_cnn", "resnet20", "lenet", "vgg19", "mobilenet_v2",
                  "reactnet_a"]


def measure(binary_path, float_path, threads: int, runs: int, warmup: int) -> dict:
    """Binary and float interleaved inference by inference (`lqbench.tflite.compare`)."""
    c = tfl.compare(binary_path, float_path, threads=threads, runs=runs, warmup=warmup, kernel="auto")

    def summary(r):
        return {"median_ms": r.median_ms, "p10_ms": r.low_ms, "p90_ms": r.high_ms, "mean_ms": r.mean_ms,
                "kernel": r.kernel, "notes": r.notes, "skipped": r.skipped}

    return {
        "threads": threads,
        "binary": summary(c.binary),
        "float": summary(c.float),
        "latency_ratio": c.ratio,
        "speedup": 1.0 / c.ratio,
    }


def run_model(name: str, shape, classes: int, threads_list, runs: int, warmup: int, workdir) -> dict:
    zoo_name, arch = VARIANTS.get(name, (name, {}))
    binary_model = models.build(zoo_name, shape, classes, binarization=lqbench.Binarization(), **arch)
    float_model = models.build(zoo_name, shape, classes, binarization=lqbench.Binarization.full_precision(), **arch)
    binary_path = pathlib.Path(workdir) / f"{name}.tflite"
    float_path = pathlib.Path(workdir) / f"{name}_float.tflite"
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tfl.ConversionWarning)
        report = tfl.convert(binary_model, binary_path, float_model=float_model,  # the default fallback policy
                             float_path=float_path, verify=True)
    convert_s = time.perf_counter() - start
    print(report, flush=True)
    load_before = os.getloadavg()
    timings = [measure(binary_path, float_path, t, runs, warmup) for t in threads_list]
    load_after = os.getloadavg()
    one = next((t for t in timings if t["threads"] == 1), timings[0])
    result = {
        "model": name,
        "zoo_model": zoo_name,
        "architecture_args": arch,
        "input_shape": list(shape),
        "classes": classes,
        "params": int(binary_model.count_params()),
        "binary_bytes": report.size_bytes,
        "float_bytes": report.float_size_bytes,
        "size_ratio": report.size_ratio,
        "conversion": {
            "rewrites": [str(step) for step in report.rewrites],
            "verdict": report.verdict,
            "verified_on": report.verified_on,
            "tied_samples": report.tied_samples,
            "tie_max_abs_diff": report.tie_max_abs_diff,
            "size_note": report.size_note(),
            "weight_bytes": report.weight_bytes,
            "binary_layers": report.binary_layers,
            "lce_bconv2d": report.bconv,
            "lce_bmaxpool2d": report.bmaxpool,
            "fallbacks": [f.to_dict() for f in report.fallbacks],
            "pool_fallbacks": [p.to_dict() for p in report.pool_fallbacks],
            "errors": [f.to_dict() for f in report.errors],
            "op_counts": report.op_counts,
            "max_abs_diff": report.max_abs_diff,
            "kernel_diffs": report.kernel_diffs,
            "seconds": round(convert_s, 1),
        },
        "timings": timings,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "targets": {
            "latency_ratio_1_thread": one["latency_ratio"],
            "latency_target_met": one["latency_ratio"] <= TARGET_LATENCY_RATIO,
            "size_target_met": (report.size_ratio or 0) >= TARGET_SIZE_RATIO,
        },
    }
    for t in timings:
        print(
            f"{name}: {t['threads']} thread(s): binary {t['binary']['median_ms']:.3f} ms ({t['binary']['kernel']}), "
            f"float {t['float']['median_ms']:.3f} ms, ratio {t['latency_ratio']:.3f}; "
            f"size {report.size_bytes / 1024:.1f} KiB vs {report.float_size_bytes / 1024:.1f} KiB "
            f"({report.size_ratio:.1f}x)",
            flush=True,
        )
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS,
                        help=f"zoo models or variants ({', '.join(VARIANTS)})")
    parser.add_argument("--input-shape", type=int, nargs=3, default=(32, 32, 3))
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=200, help="timed runs of each model")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--output", default=str(HERE / "results" / "inference.json"))
    parser.add_argument("--merge", action="store_true",
                        help="keep the other models of an existing --output file, replace the listed ones")
    args = parser.parse_args(argv)
    unknown = [m for m in args.models if m not in models.available() and m not in VARIANTS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; available: {', '.join(models.available())}")
    import larq_compute_engine as lce
    import tensorflow as tf

    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models:
            results.append(run_model(name, tuple(args.input_shape), args.classes, args.threads, args.runs,
                                     args.warmup, workdir))
    payload = {
        "command": " ".join([os.path.relpath(sys.argv[0]) if argv is None else "bench/inference.py", *(argv or sys.argv[1:])]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "host": tfl.host_label(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "larq_compute_engine": lce.__version__,
        "tensorflow": tf.__version__,
        "note": "x86 host: LCE's optimized ARM kernels are not used; these are not ARM latencies. "
                "Untrained weights (latency and size do not depend on them).",
        "targets": {"latency_ratio_max": TARGET_LATENCY_RATIO, "size_ratio_min": TARGET_SIZE_RATIO},
        "models": results,
    }
    output = pathlib.Path(args.output)
    if args.merge and output.exists():
        previous = json.loads(output.read_text())
        fresh = {m["model"]: m for m in results}
        order = [m["model"] for m in previous.get("models", [])] + [m for m in fresh if m not in
                                                                     {p["model"] for p in previous.get("models", [])}]
        kept = {m["model"]: m for m in previous.get("models", [])}
        payload["models"] = [fresh.get(name) or kept[name] for name in order]
        commands = previous.get("commands") or [previous.get("command")]
        payload["commands"] = [c for c in commands if c] + [payload["command"]]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(payload, indent=2))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
