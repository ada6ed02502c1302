"""Real CIFAR-10 ResNet-20 epochs through the command line (issue #13: "BP epoch, default CLI, <= 45 s").

The data is CIFAR-10 (JPEG q75 copy): ``../shared/data/cifar10-jpeg/to_python_batches.py``
writes the official python-batch layout into ``--data-dir`` (default: a folder under the
system's temporary directory, reused when complete). Each run is one
``lqbench train --dataset cifar10 --data-dir DIR --model resnet20 --model-args '{}' --epochs E
--algorithm A [--xla MODE]`` in its own process (defaults otherwise: batch 128, Adam, Bi-Real
ResNet-20 with binary weights and activations, 45000 training images, 5000 for validation);
its ``result.json`` gives the epoch times (each epoch includes its validation pass, the first
one also the tracing or XLA compilation), the execution decision and the wall time.

    .venv/bin/python bench/cifar_epoch.py --algorithms bp --modes auto on off
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from invocations import record_invocation  # bench/ is on sys.path when a script runs

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET_S = 45.0
LABEL = "CIFAR-10 (JPEG q75 copy)"


def _find_up(relative: str) -> pathlib.Path | None:
    for folder in (ROOT, *ROOT.parents):
        if (folder / relative).exists():
            return folder / relative
    return None


def prepare(data_dir: pathlib.Path) -> pathlib.Path:
    """The python-batch layout of the JPEG copy in ``data_dir`` (written once)."""
    script = _find_up("shared/data/cifar10-jpeg/to_python_batches.py")
    if script is None:
        raise SystemExit("cifar_epoch: shared/data/cifar10-jpeg/to_python_batches.py not found above the repository")
    if not (data_dir / "cifar-10-batches-py" / "test_batch").exists():
        subprocess.run([sys.executable, str(script), str(data_dir)], check=True)
    return data_dir


def run(algorithm: str, mode: str, epochs: int, data_dir: pathlib.Path, output: pathlib.Path) -> dict:
    lqbench = pathlib.Path(sys.executable).with_name("lqbench")
    command = [str(lqbench), "train", "--dataset", "cifar10", "--data-dir", str(data_dir), "--model", "resnet20",
               "--model-args", "{}", "--epochs", str(epochs), "--algorithm", algorithm, "--quiet",
               "--output", str(output), "--name", f"cifar-{algorithm}-{mode}"]
    if mode != "default":
        command += ["--xla", mode]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "LQBENCH_OFFLINE": "1"})
    process_s = time.perf_counter() - start
    results = sorted(output.glob(f"cifar-{algorithm}-{mode}-*/seed-0/result.json"))
    if proc.returncode or not results:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:] or proc.stdout.strip().splitlines()[-3:])
        return {"algorithm": algorithm, "mode": mode, "error": tail}
    r = json.loads(results[-1].read_text())
    shown = " ".join(c if c != "{}" else "'{}'" for c in command[1:])
    return {"algorithm": algorithm, "mode": mode, "epochs": r["epochs_run"],
            "epoch_seconds": r["history"].get("epoch_seconds") or None,
            "time_per_epoch_s": r["time_per_epoch_s"], "wall_time_s": r["wall_time_s"], "process_s": process_s,
            "execution": r.get("execution"), "jit_compile": r["jit_compile"],
            "test_accuracy": r["test_accuracy"], "command": "lqbench " + shown.replace(str(data_dir), "DIR")
            .replace(str(output), "OUT")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algorithms", nargs="+", default=["bp"])
    parser.add_argument("--modes", nargs="+", choices=("default", "on", "off"), default=["default"],
                        help="default: no --xla flag (auto)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "lqbench-cifar10-jpeg"))
    parser.add_argument("--out", default=str(HERE / "results" / "cifar_epoch.json"))
    args = parser.parse_args(argv)
    data_dir = prepare(pathlib.Path(args.data_dir))
    out_path = pathlib.Path(args.out)
    out = json.loads(out_path.read_text()) if out_path.exists() and not os.environ.get("LQBENCH_RUN_ALL") else {}
    out.setdefault("rows", [])
    started, begin = datetime.datetime.now().isoformat(timespec="seconds"), time.perf_counter()
    out.update(label=LABEL, target_s=TARGET_S)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="lqbench-cifar-epoch-") as tmp:
        for algorithm in args.algorithms:
            for mode in args.modes:
                row = run(algorithm, mode, args.epochs, data_dir, pathlib.Path(tmp))
                failed += "error" in row
                out["rows"] = [r for r in out["rows"] if (r["algorithm"], r["mode"]) != (algorithm, mode)] + [row]
                print(json.dumps({k: row.get(k) for k in ("algorithm", "mode", "time_per_epoch_s", "wall_time_s",
                                                          "jit_compile", "test_accuracy", "error")}), flush=True)
                out_path.parent.mkdir(parents=True, exist_ok=True)
                out_path.write_text(json.dumps(out, indent=2) + "\n")
    record_invocation(out, argv, started, time.perf_counter() - begin, "cifar_epoch.py")
    out_path.write_text(json.dumps(out, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
