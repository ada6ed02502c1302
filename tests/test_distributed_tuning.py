"""KerasTuner's own distributed mode: a chief (oracle) and two workers on 127.0.0.1 share one grid.

Every process runs the same ``lqbench tune`` command; only the KERASTUNER_* variables differ (the
chief's runs through tests/workers/kt_chief.py, which shortens KerasTuner's minute of oracle
polling sleeps). The test checks that every grid point ran exactly once, across the two workers,
and that the chief reports the best trial. Processes are bounded in time and always cleaned up.
"""
import os
import pathlib
import socket
import subprocess
import sys
import time

import pytest

import lqbench

TIMEOUT_S = 420
CHIEF = pathlib.Path(__file__).parent / "workers" / "kt_chief.py"
GRID = ["0.3", "0.01", "1e-06"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(output, program=("-m", "lqbench.cli")):
    return [
        sys.executable, *program, "tune", "--dataset", "digits", "--model", "binarynet_mlp",
        "--model-args", '{"hidden_units": [32]}', "--epochs", "1", "--batch-size", "64", "--optimizer", "sgd",
        "--grid", "learning_rate=" + ",".join(GRID), "--final-seeds", "1", "--quiet", "--output", str(output),
    ]


def test_chief_and_two_workers_run_every_grid_point_exactly_once(tmp_path):
    port = _free_port()
    base_env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port),
                "TF_CPP_MIN_LOG_LEVEL": "3"}
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("chief", "tuner0", "tuner1")}
    processes = {}
    try:
        processes["chief"] = subprocess.Popen(_command(tmp_path / "search", (str(CHIEF),)), stdout=logs["chief"],
                                              stderr=subprocess.STDOUT,
                                              env={**base_env, "KERASTUNER_TUNER_ID": "chief"})
        time.sleep(2)
        for worker in ("tuner0", "tuner1"):
            processes[worker] = subprocess.Popen(_command(tmp_path / "search"), stdout=logs[worker],
                                                 stderr=subprocess.STDOUT,
                                                 env={**base_env, "KERASTUNER_TUNER_ID": worker})
        deadline = time.monotonic() + TIMEOUT_S
        for name, process in processes.items():
            process.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        for handle in logs.values():
            handle.close()
    output = {name: (tmp_path / f"{name}.log").read_text() for name in logs}
    for name, process in processes.items():
        assert process.returncode == 0, f"{name} failed:\n{output[name][-3000:]}"

    # Each grid point was trained once: one trial run folder per learning rate, one result each.
    results = sorted((tmp_path / "search" / "_trials").glob("*/seed-*/result.json"))
    assert len(results) == len(GRID)
    import json

    rates = sorted(json.loads(p.read_text())["spec"]["learning_rate"] for p in results)
    assert rates == sorted(float(g) for g in GRID)
    # ... and each exactly once: every run folder holds the TensorBoard events of one training only.
    for result in results:
        events = list((result.parent / "logs" / "train").glob("events.out.tfevents.*"))
        assert len(events) == 1, events
    # The work was shared by the workers (the chief only serves the oracle).
    assert "worker finished" in output["tuner0"] and "worker finished" in output["tuner1"]
    assert "best configuration" in output["chief"]
    assert '"learning_rate": 1e-06' not in output["chief"].split("best configuration")[1].splitlines()[0]
    summary = json.loads((tmp_path / "search" / "search.json").read_text())
    assert summary["role"] == "chief" and len(summary["trials"]) == len(GRID)
