"""Shared pieces of the reference-equivalence scripts (bench/reference/*.py, run outside CI).

Each script builds the same small network on both sides (lqbench / the authors' code) with
identical weights, feeds identical batches, takes a few update steps and writes one JSON per
method to ``bench/results/reference/<method>.json`` (schema in `write_result`). The authors'
code is read from its checkout (``LQBENCH_REFSRC``, default ``/work/refsrc``) and never copied
into the project.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "reference"
REFSRC = Path(os.environ.get("LQBENCH_REFSRC", "/work/refsrc"))
MIRROR = Path(os.environ.get("LQBENCH_MIRROR", "/work/.mirror"))

SCHEMA_KEYS = ("method", "reference", "network", "steps", "max_abs_weight_diff", "tolerance", "equal", "test",
               "deviations", "command")


def command_line() -> str:
    """The command that produced a result, relative to the repository root."""
    script = os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)
    return " ".join([".venv/bin/python", shlex.quote(script), *map(shlex.quote, sys.argv[1:])])


def max_abs_diff(a_list, b_list) -> float:
    """Largest absolute difference over pairs of arrays (shapes must agree)."""
    worst = 0.0
    for a, b in zip(a_list, b_list, strict=True):
        a, b = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
        if a.shape != b.shape:
            raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
        worst = max(worst, float(np.max(np.abs(a - b))) if a.size else 0.0)
    return worst


def write_result(method: str, *, reference: dict, network: str, steps: int, max_abs_weight_diff: float,
                 tolerance: float, test: str, deviations: list[dict], extra: dict | None = None) -> Path:
    """Write ``bench/results/reference/<method>.json``; ``equal`` is diff <= tolerance."""
    for key in ("repo", "commit", "file", "symbol"):
        if key not in reference:
            raise ValueError(f"{method}: reference lacks {key!r}")
    for d in deviations:
        if set(d) != {"name", "reason"}:
            raise ValueError(f"{method}: a deviation needs exactly 'name' and 'reason', got {sorted(d)}")
    diff = float(max_abs_weight_diff)
    record = {
        "method": method,
        "reference": reference,
        "network": network,
        "steps": int(steps),
        "max_abs_weight_diff": diff,
        "tolerance": float(tolerance),
        "equal": bool(np.isfinite(diff) and diff <= tolerance),
        "test": test,
        "deviations": deviations,
        "command": command_line(),
    }
    if extra:
        record.update(extra)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{method}.json"
    path.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    print(f"{method}: max |dw| = {diff:.3g} after {steps} steps (tolerance {tolerance:g}) -> "
          f"{'equal' if record['equal'] else 'DIFFERENT'}; {path.relative_to(ROOT)}")
    return path


def import_file(name: str, path: Path, patch=None):
    """Import a reference source file as module ``name`` (optionally rewriting its text first)."""
    import importlib.util
    import types

    source = path.read_text()
    if patch is not None:
        source = patch(source)
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 - the authors' code, read-only
    return module


def quiet_tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import lqbench  # noqa: F401  (tf-keras before TensorFlow)
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.keras.utils.set_random_seed(0)
    return tf


def mlp_problem(n: int, d_in: int, hidden: int, out: int):
    """The shared regression problem of the estimator scripts: inputs, targets and the two
    weight matrices (seed 0), as float32 numpy arrays ``x, t, a, w``."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d_in)).astype("float32")
    t = rng.normal(size=(n, out)).astype("float32")
    a = (rng.normal(size=(d_in, hidden)) * 0.7).astype("float32")
    w = (rng.normal(size=(hidden, out)) * 0.5).astype("float32")
    return x, t, a, w


def import_peer(peer_dir: str) -> None:
    """Put seed 000's reference (BenCrulis/binary_nn_extended) on sys.path; stub torchvision's
    InvertedResidual (imported by drtp/hsic/pepita only to list it among modules to detach; none
    of the compared networks contains one) when torchvision is not installed."""
    if not os.path.isdir(os.path.join(peer_dir, "binary_nn")):
        raise SystemExit(f"reference checkout not found at {peer_dir} (--peer)")
    sys.path.insert(0, peer_dir)
    import torch.nn as nn

    try:
        import torchvision.models.mobilenetv2  # noqa: F401
    except Exception:
        class InvertedResidual(nn.Module):  # placeholder, never instantiated
            pass

        tv, tvm, mnv2 = (types.ModuleType(n) for n in ("torchvision", "torchvision.models",
                                                       "torchvision.models.mobilenetv2"))
        mnv2.InvertedResidual = InvertedResidual
        tv.models, tvm.mobilenetv2 = tvm, mnv2
        sys.modules.update({"torchvision": tv, "torchvision.models": tvm, "torchvision.models.mobilenetv2": mnv2})
