"""TensorFlow CPU threading on this machine: intra-op / inter-op threads and oneDNN (issue #13).

Each setting runs in a fresh process (thread pools and ``TF_ENABLE_ONEDNN_OPTS`` are fixed when
TensorFlow starts): `lqbench.execution.configure_threads` sizes the pools, then
`lqbench.execution.measure` times the train step of BP on

- ``resnet20``: Bi-Real ResNet-20, 32x32x3, batch 128, graph mode (its fastest mode here);
- ``binarynet_mlp``: the zoo's 784-2048x3-10 binary MLP, batch 128, graph mode and XLA.

Settings: TensorFlow's defaults (``0``: one intra-op thread per core, inter-op chosen by
TensorFlow), then each of ``--intra`` x ``--inter`` with oneDNN on (TensorFlow's default on
x86 Linux) and the defaults with oneDNN off. Only this machine's cores can be measured here;
the recommendation for many cores (keep the defaults, one intra-op thread per core) is
TensorFlow's documented behaviour, not a measurement.

    .venv/bin/python bench/threads.py [--intra 1 2 4] [--inter 1 2]
"""
from __future__ import annotations

import argparse
import datetime
import json
import time
import os
import pathlib
import subprocess
import sys

from invocations import record_invocation  # bench/ is on sys.path when a script runs

HERE = pathlib.Path(__file__).resolve().parent
MODELS = {"resnet20": ((32, 32, 3), {}, ("off",)), "binarynet_mlp": ((28, 28, 1), {}, ("off", "on"))}


def child(intra: int, inter: int, steps: int) -> dict:
    from lqbench import execution

    threads = execution.configure_threads(intra or None, inter or None)
    import lqbench
    import tensorflow as tf

    from lqbench import algorithms, models

    out = {"threads": threads, "models": {}}
    for name, (shape, kwargs, modes) in MODELS.items():
        tf.keras.utils.set_random_seed(0)
        trainer = algorithms.build("bp", models.build(name, shape, 10, lqbench.Binarization(), **kwargs))
        spec = (tf.TensorSpec([None, *shape], tf.float32), tf.TensorSpec([None], tf.int32))
        timings = execution.measure(trainer, spec, 128, 10, None if "on" in modes else 1,
                                    min_steps=steps, max_steps=steps, budget_s=0)
        out["models"][name] = {m: timings[m]["seconds_per_step"] for m in modes if m in timings}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--intra", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--inter", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", default=str(HERE / "results" / "threads.json"))
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("ROW " + json.dumps(child(*args.child, args.steps)), flush=True)
        return 0
    settings = [(0, 0, "1")] + [(a, e, "1") for a in args.intra for e in args.inter] + [(0, 0, "0")]
    rows, failed = [], 0
    started, begin = datetime.datetime.now().isoformat(timespec="seconds"), time.perf_counter()
    for intra, inter, onednn in settings:
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "2"}
        proc = subprocess.run([sys.executable, __file__, "--child", str(intra), str(inter), "--steps", str(args.steps)],
                              capture_output=True, text=True, env=env)
        lines = [line[4:] for line in proc.stdout.splitlines() if line.startswith("ROW ")]
        row = {"intra": intra, "inter": inter, "onednn": onednn}
        if proc.returncode or not lines:
            failed += 1
            row["error"] = " | ".join(proc.stderr.strip().splitlines()[-3:])
        else:
            row.update(json.loads(lines[-1]))
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {"rows": rows, "cores": os.cpu_count(), "steps": args.steps,
           "command": "python bench/threads.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    record_invocation(out, argv, started, time.perf_counter() - begin, "threads.py")
    pathlib.Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
