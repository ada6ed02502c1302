"""lqbench side by side with the seed authors' PyTorch code, in the same run (issue #13 part 3).

For every method both implement (BP, DFA, DRTP, HSIC, SigpropTL = the authors' ``Pepita``) and
two networks, each side trains the same configuration in its own fresh process, one after the
other:

- ``mlp``: Flatten, Dense 784-512 (float), sign, Dense 512-512 (binary), sign, Dense 512-10
  (float), biases, no batch norm; ``--mlp-epochs`` full epochs of MNIST (default 3);
- ``cnn`` (paper 000's MNIST CNN): Conv 1-64 (float) BN sign, Conv 64-64 BN sign, MaxPool,
  Conv 64-128 BN sign, Conv 128-128 BN sign, MaxPool, Flatten, Dense 6272-10 (float); 3x3,
  padding 1, no conv bias; ``--cnn-steps`` training steps (default 60) of one epoch.

Common: Adam lr 1e-3, coupled weight decay 1e-5, batch 128, seed 0, inputs
``(x/255 - 0.1307)/0.3081``, HSIC gamma 20 (the authors' harness default), 2 threads.

The authors' side is their code run by ``../shared/tools/peer/harness.py`` (their
binarization, per-batch driver and algorithm classes, imported from a checkout named by
``PEER_SRC``, run with the torch venv's python ``PEER_PYTHON``). The lqbench side is
`bench/training_cost.py`'s ``setup`` in a `lqbench.profiling.measure` subprocess, in lqbench's
default execution mode (``xla = "auto"``, decided for the run's number of steps; the decision
and its timings are recorded).

Same rules on both sides:

- time per step and accuracy: a run with glibc's normal allocator settings on each side;
  training loop only (median epoch time / steps for the MLP, the one epoch for
  the CNN); lqbench's tracing/compilation and the auto-mode measurement happen before it, the
  authors' first batch includes PyTorch's warm-up (no compilation);
- peak memory: a second run on each side with ``MALLOC_MMAP_THRESHOLD_=65536
  MALLOC_TRIM_THRESHOLD_=0`` (glibc returns freed blocks, so the high-water mark follows live
  memory; these settings slow both sides down, PyTorch's more, so they are not used for time);
  peak RSS during training (before any test-set evaluation; the authors' first epoch) minus
  the RSS reached after building the model and before the first step (authors: ``ru_maxrss``;
  lqbench: ``VmRSS``, with the high-water mark reset then; this run has no warm-up step). Both
  peaks therefore include the optimizer state created at the first step and whatever the
  framework keeps after it (lqbench: the traced graph or XLA program, and the pool of
  TensorFlow's oneDNN CPU allocator, which keeps freed blocks; a baseline taken after a warm-up
  step would hide the activations in that pool);
- accuracy: the official 10k test set after training (one seed on each side).

Results go to ``--out`` (default ``bench/results/peer.json``), merged row by row so that the
suite can be run in parts (``--models``, ``--methods``).

    PEER_SRC=/path/to/binary_nn_extended PEER_PYTHON=/path/to/peervenv/bin/python \\
        .venv/bin/python bench/peer_compare.py [--models mlp cnn] [--methods bp drtp ...]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import time

from invocations import record_invocation  # bench/ is on sys.path when a script runs

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

METHODS = ("bp", "dfa", "drtp", "hsic", "sigprop")
PEER_ALGO = {"bp": "bp", "dfa": "dfa", "drtp": "drtp", "hsic": "hsic", "sigprop": "pepita"}
LQ_MODEL = {"mlp": "mlp_512", "cnn": "vgg_cnn"}
HSIC_GAMMA = 20.0
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
TIME_RATIO_TARGET = 0.7  # issue #13: lqbench's step time at most 0.7x the authors'


def _find_up(relative: str) -> str | None:
    for folder in (ROOT, *ROOT.parents):
        if (folder / relative).exists():
            return str(folder / relative)
    return None


def data_dir() -> str:
    """``LQBENCH_DATA_DIR``, else the nearest ``shared/data`` above the repository."""
    return os.environ.get("LQBENCH_DATA_DIR") or _find_up("shared/data") or str(ROOT.parent / "shared" / "data")


def peer_paths() -> tuple[str, str, str]:
    """(harness.py, PEER_SRC, PEER_PYTHON); a clear SystemExit naming what is missing."""
    harness = os.environ.get("PEER_HARNESS") or _find_up("shared/tools/peer/harness.py")
    src = os.environ.get("PEER_SRC") or _find_up("refsrc/BenCrulis+binary_nn_extended")
    python = os.environ.get("PEER_PYTHON") or _find_up("peervenv/bin/python")
    for name, value in (("PEER_HARNESS (shared/tools/peer/harness.py)", harness),
                        ("PEER_SRC (a checkout of BenCrulis/binary_nn_extended)", src),
                        ("PEER_PYTHON (python of a venv with torch, see the harness README)", python)):
        if not value or not os.path.exists(value):
            raise SystemExit(f"peer_compare: {name} not found: {value!r}; set the environment variable")
    return harness, src, python


def run_peer(model: str, method: str, epochs: int, limit: int | None, tuned: bool, mode: str = "auto") -> dict:
    harness, src, python = peer_paths()
    data = pathlib.Path(data_dir()) / "mnist"
    command = [python, harness, "--algo", PEER_ALGO[method], "--model", model, "--epochs", str(epochs),
               "--hsic-gamma", str(HSIC_GAMMA), "--threads", "2", "--peer", src, "--data", str(data)]
    if limit:
        command += ["--limit-batches", str(limit)]
    env = {**os.environ, **(ALLOCATOR_ENV if tuned else {}), "PEER_SRC": src}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise RuntimeError(f"authors' code failed on {model}/{method} (exit {proc.returncode}):\n{tail}")
    out = json.loads(lines[-1])
    epoch_s = sorted(out["epoch_train_s"])
    return {"seconds_per_step": epoch_s[len(epoch_s) // 2] / out["batches_per_epoch"],
            "epoch_seconds": out["epoch_train_s"], "steps_per_epoch": out["batches_per_epoch"],
            "test_accuracy": out["final_test_acc"], "training_mib": out["peak_rss_delta_epoch1_train_mib"],
            "adam_state_mib": 2 * 4 * out["n_params"] / 2**20, "params": out["n_params"],
            "torch": out["torch"], "peer_commit": out["peer_commit"], "peer_src_sha256_16": out["peer_src_sha256_16"],
            "nan_loss": out["nan_loss"], "command": " ".join(command[1:])}


def run_lqbench(model: str, method: str, epochs: int, steps: int | None, tuned: bool, mode: str = "auto") -> dict:
    from lqbench import profiling

    kwargs = dict(method=method, model=LQ_MODEL[model], epochs=epochs, steps=steps, jit=mode, weight_decay=1e-5,
                  evaluate=True, normalize=True, warmup=not tuned,
                  algorithm_args={"gamma": HSIC_GAMMA} if method == "hsic" else None)
    p = profiling.measure(f"{HERE / 'training_cost.py'}:setup", allocator_env=tuned, **kwargs)
    r = p.result
    per_epoch = sorted(r["epoch_seconds"])
    return {"seconds_per_step": per_epoch[len(per_epoch) // 2] / r["steps_per_epoch"],
            "epoch_seconds": r["epoch_seconds"], "steps_per_epoch": r["steps_per_epoch"],
            "test_accuracy": r["test_accuracy"],
            "training_mib": (r["peak_rss_after_fit_bytes"] - p.baseline_bytes) / 2**20 if p.peak_source == "VmHWM"
            else p.training_bytes / 2**20,
            "peak_source": p.peak_source, "execution": r.get("execution"),
            "train_loss": r["train_loss"], "setup_kwargs": kwargs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=("mlp", "cnn"), default=["mlp", "cnn"])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--mlp-epochs", type=int, default=3)
    parser.add_argument("--cnn-steps", type=int, default=60)
    parser.add_argument("--runs", nargs="+", choices=("normal", "tuned"), default=["normal", "tuned"],
                        help="which runs to (re)do: normal (time, accuracy) and tuned allocator (memory); "
                             "the other is reused from --out when there")
    parser.add_argument("--sides", nargs="+", choices=("authors", "lqbench"), default=["authors", "lqbench"],
                        help="which sides to (re)do (missing runs are always done)")
    parser.add_argument("--out", default=str(HERE / "results" / "peer.json"))
    args = parser.parse_args(argv)
    peer_paths()  # fail early and clearly
    os.environ["LQBENCH_DATA_DIR"] = data_dir()  # for the lqbench children
    out_path = pathlib.Path(args.out)
    out = json.loads(out_path.read_text()) if out_path.exists() and not os.environ.get("LQBENCH_RUN_ALL") else {}
    out.setdefault("rows", [])
    started, begin = datetime.datetime.now().isoformat(timespec="seconds"), time.perf_counter()
    out["settings"] = {"batch_size": 128, "optimizer": "Adam 1e-3, coupled weight decay 1e-5", "seed": 0,
                       "hsic_gamma": HSIC_GAMMA, "mlp_epochs": args.mlp_epochs, "cnn_steps": args.cnn_steps,
                       "allocator_env": ALLOCATOR_ENV, "time_ratio_target": TIME_RATIO_TARGET}
    failed = 0
    for model in args.models:
        for method in args.methods:
            epochs, steps = (args.mlp_epochs, None) if model == "mlp" else (1, args.cnn_steps)
            row = {"model": model, "method": method, "epochs": epochs, "steps": steps,
                   "measured": datetime.datetime.now().isoformat(timespec="seconds")}
            previous = next((r for r in out["rows"] if (r["model"], r["method"]) == (model, method)), {})
            for side, runner in (("authors", run_peer), ("lqbench", run_lqbench)):
                runs = {k: v for k, v in previous.get(side, {}).get("runs", {}).items() if "error" not in v}
                try:
                    # time and accuracy with the normal allocator; memory with the tuned one, in the
                    # execution mode the first run chose (no auto-mode timing inside the measured
                    # process: its steps would leave memory that training then reuses unseen)
                    redo = side in args.sides
                    if (redo and "normal" in args.runs) or "normal" not in runs:
                        runs["normal"] = runner(model, method, epochs, steps, tuned=False)
                    if (redo and "tuned" in args.runs) or "tuned" not in runs:
                        mode = (runs["normal"].get("execution") or {}).get("mode", "auto")
                        runs["tuned"] = runner(model, method, epochs, steps, tuned=True, mode=mode)
                except Exception as error:  # recorded, the suite goes on
                    runs.setdefault("normal", {"error": str(error).strip().splitlines()[0]})
                    print(f"[peer] {model}/{method} {side}: {error}", file=sys.stderr, flush=True)
                    failed += 1
                normal, tuned = runs.get("normal", {}), runs.get("tuned", {})
                row[side] = {**normal, "training_mib": tuned.get("training_mib"),
                             "tuned_allocator_seconds_per_step": tuned.get("seconds_per_step"), "runs": runs}
            a, b = row["authors"], row["lqbench"]
            if "seconds_per_step" in a and "seconds_per_step" in b:
                row["time_ratio"] = b["seconds_per_step"] / a["seconds_per_step"]
            if a.get("training_mib") and b.get("training_mib") is not None:
                row["memory_ratio"] = b["training_mib"] / a["training_mib"]
            out["rows"] = [r for r in out["rows"] if (r["model"], r["method"]) != (model, method)] + [row]
            print(json.dumps({k: row.get(k) for k in ("model", "method", "time_ratio", "memory_ratio")}
                             | {"authors_s": a.get("seconds_per_step"), "lqbench_s": b.get("seconds_per_step"),
                                "authors_acc": a.get("test_accuracy"), "lqbench_acc": b.get("test_accuracy"),
                                "authors_mib": a.get("training_mib"), "lqbench_mib": b.get("training_mib"),
                                "mode": (b.get("execution") or {}).get("mode")}), flush=True)
            order = {(m, x): i for i, (m, x) in enumerate((m, x) for m in ("mlp", "cnn") for x in METHODS)}
            out["rows"].sort(key=lambda r: order[(r["model"], r["method"])])
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(out, indent=2) + "\n")
    record_invocation(out, argv, started, time.perf_counter() - begin, "peer_compare.py")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
