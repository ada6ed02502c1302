"""Run every lqbench benchmark and regenerate ``BENCHMARKS.md`` from their results.

Each part is one benchmark script run in its own process, one after the other (never two at
once: on a 2-core machine they would slow each other down), with its command, wall time and
exit status recorded in ``<results>/run_all.json``. A part that fails is recorded as failed and
the run goes on; ``BENCHMARKS.md`` says which parts failed instead of showing stale numbers.

Parts (``--parts``), in running order:

- ``inference``: LCE binary vs float latency and size of the conv zoo (`bench/inference.py`);
- ``peer``: lqbench side by side with the seed authors' PyTorch code on their binary MLP and
  paper 000's MNIST CNN, every shared method: time per step, accuracy, peak memory
  (`bench/peer_compare.py`; needs the authors' checkout and a torch venv: ``PEER_SRC``,
  ``PEER_PYTHON``, see ``../shared/tools/peer/README.md``);
- ``overhead``: lqbench's ``bp`` ``train_step`` vs plain Keras ``fit``, epochs alternating in one
  process (`bench/training_cost.py --part overhead`);
- ``memory``: peak training memory and time per step of every method on a deep binary MLP and
  a binary VGG-style CNN (`bench/training_cost.py --part memory`);
- ``modes``: XLA vs graph mode on every zoo model (BP) and on ResNet-20 with every method, and
  whether ``xla = "auto"`` picks the fastest (`bench/execution_modes.py`);
- ``cifar``: CIFAR-10 (JPEG q75 copy) ResNet-20 epochs through ``lqbench train``, default
  mode, XLA and graph (`bench/cifar_epoch.py`);
- ``threads``: TensorFlow's intra-/inter-op threads and oneDNN (`bench/threads.py`);
- ``table1``: paper 002 Table 1 on MNIST (`bench/mnist_optimizers.py --rows fp,ste,cb`);
- ``binary_mlp``: every algorithm and optimizer on a fully binary MLP on MNIST
  (`bench/mnist_optimizers.py`);
- ``pipeline``: input pipeline images/s vs training throughput (`bench/data_throughput.py`).

The full run writes ``bench/results/*.json`` and ``BENCHMARKS.md``; ``--quick`` (smaller
budgets, one seed) writes ``bench/results/quick/`` and ``bench/results/quick/BENCHMARKS.md`` so
it never overwrites the published numbers. ``--render-only`` rebuilds the markdown from
existing results.

    make bench                       # = .venv/bin/python bench/run_all.py
    make bench ARGS=--quick          # under 15 minutes
    .venv/bin/python bench/run_all.py --parts inference peer --render-only
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import render  # noqa: E402  (bench/render.py)

TABLE1_ROWS = "fp,ste,cb"
BINARY_ROWS = "bin_ste,dfa,drtp,hsic,sigprop,bop,bop2,bnew,proxquant,bmd"
ZOO = ("lenet", "binarynet_mlp", "binarynet_cnn", "vgg_small", "resnet20", "reactnet_a", "vgg19", "mobilenet_v2",
       "mlp_mixer")


def part_commands(results: pathlib.Path, quick: bool) -> dict[str, list[str]]:
    """The command line of every part (relative paths, run from the repository root)."""
    r = os.path.relpath(results, ROOT)
    seeds = ["0"] if quick else ["0", "1", "2"]
    return {
        "inference": ["bench/inference.py", "--runs", "30" if quick else "200", "--output", f"{r}/inference.json"],
        "peer": ["bench/peer_compare.py", "--mlp-epochs", "1" if quick else "3", "--cnn-steps", "20" if quick else "40",
                 "--out", f"{r}/peer.json"],
        "modes": ["bench/execution_modes.py", "--models", *ZOO, "--algorithms", "bp",
                  "--also", *[f"resnet20:{m}" for m in ("dfa", "drtp", "hsic", "sigprop")],
                  "--steps", "4" if quick else "8", "--out", f"{r}/execution_modes.json"],
        "cifar": ["bench/cifar_epoch.py", "--algorithms", "bp", "--modes", *(["default"] if quick else ["default", "on", "off"]),
                  "--out", f"{r}/cifar_epoch.json"],
        "threads": ["bench/threads.py", *(["--intra", "1", "2", "--inter", "2"] if quick else []),
                    "--out", f"{r}/threads.json"],
        "overhead": ["bench/training_cost.py", "--part", "overhead", "--rounds", "3" if quick else "5",
                     "--out", f"{r}/training_cost.json"],
        "memory": ["bench/training_cost.py", "--part", "memory", "--steps", "3" if quick else "5",
                   "--modes", *(["xla"] if quick else ["eager", "graph", "xla"]), "--out", f"{r}/training_cost.json"],
        "table1": ["bench/mnist_optimizers.py", "--rows", TABLE1_ROWS, "--width", "2048",
                   "--epochs", "4" if quick else "12", "--steps-per-epoch", "10" if quick else "135", "--seeds", *seeds, "--out", f"{r}/mnist_table1.json"],
        "binary_mlp": ["bench/mnist_optimizers.py", "--rows", BINARY_ROWS, "--binary-width", "512",
                       "--epochs", "4" if quick else "12", "--steps-per-epoch", "10" if quick else "135", "--seeds", *seeds,
                       "--out", f"{r}/mnist_binary_mlp.json"],
        "pipeline": ["bench/data_throughput.py", "--cifar-images", "2000" if quick else "10000",
                     "--train-steps", "15" if quick else "60", "--json", f"{r}/data_throughput.json"],
    }


def machine() -> dict:
    """What the numbers were measured on."""
    import importlib.metadata as md

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    memory = None
    if os.path.exists("/proc/meminfo"):
        kib = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
        memory = round(kib / 2**20, 1)
    versions = {}
    for package in ("tensorflow", "tf-keras", "larq", "larq-compute-engine", "keras-tuner", "tensorflow-datasets", "numpy"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory, "machine": platform.machine(),
            "platform": platform.platform(), "python": platform.python_version(), "gpu": "none used", **versions}


def run_part(name: str, command: list[str], log_dir: pathlib.Path) -> dict:
    """Run one part in its own process; its output goes to ``<log_dir>/<name>.log``."""
    log = log_dir / f"{name}.log"
    started = datetime.datetime.now().isoformat(timespec="seconds")
    start = time.perf_counter()
    print(f"[run_all] {name}: python {' '.join(command)}", flush=True)
    with open(log, "w") as f:
        code = subprocess.call([sys.executable, *command], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    print(f"[run_all] {name}: exit {code} after {seconds / 60:.1f} min (log {os.path.relpath(log, ROOT)})", flush=True)
    return {"command": "python " + " ".join(command), "started": started, "seconds": round(seconds, 1),
            "returncode": code, "log": os.path.relpath(log, ROOT)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small budgets, one seed (under 15 minutes)")
    parser.add_argument("--parts", nargs="+", choices=render.PARTS, default=list(render.PARTS))
    parser.add_argument("--render-only", action="store_true", help="rebuild the markdown from existing results")
    args = parser.parse_args(argv)
    results = HERE / "results" / ("quick" if args.quick else "")
    results = results.resolve()
    results.mkdir(parents=True, exist_ok=True)
    markdown = results / "BENCHMARKS.md" if args.quick else ROOT / "BENCHMARKS.md"
    state_file = results / "run_all.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    state.setdefault("parts", {})
    if not args.render_only:
        os.environ.setdefault("LQBENCH_DATA_DIR", str(ROOT.parent / "shared" / "data"))
        os.environ.setdefault("LQBENCH_OFFLINE", "1")
        os.environ["LQBENCH_RUN_ALL"] = "1"  # each part starts its results afresh
        state["machine"] = machine()
        state["mode"] = "quick" if args.quick else "full"
        state["data_dir"] = os.environ["LQBENCH_DATA_DIR"]
        commands = part_commands(results, args.quick)
        if {"memory", "overhead"} <= set(args.parts):
            (results / "training_cost.json").unlink(missing_ok=True)  # no stale keys from older runs
        for name in render.PARTS:
            if name in args.parts:
                state["parts"][name] = run_part(name, commands[name], results)
                state_file.write_text(json.dumps(state, indent=2) + "\n")
    markdown.write_text(render.render(results, state, quick=args.quick))
    print(f"[run_all] wrote {os.path.relpath(markdown, ROOT)}")
    failed = [n for n in args.parts if state["parts"].get(n, {}).get("returncode") not in (0, None)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
