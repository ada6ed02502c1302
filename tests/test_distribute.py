"""Data-parallel training on tf.distribute: two MultiWorkerMirroredStrategy workers on 127.0.0.1."""
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

import lqbench
from lqbench import distribute

from _scripts import load_script

WORKER = pathlib.Path(__file__).parent / "workers" / "mwms_train.py"
TIMEOUT_S = 240


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run(processes):
    try:
        for process in processes:
            _, err = process.communicate(timeout=TIMEOUT_S)
            assert process.returncode == 0, err.decode()[-3000:]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.mark.parametrize("algorithm,optimizer", [
    ("bp", "sgd"), ("dfa", "sgd"), ("drtp", "sgd"), ("hsic", "sgd"), ("sigprop", "sgd"), ("bp", "bop"),
    ("dfa", "sgd+distill"),  # the distillation loss is scaled per replica like the compiled loss
])
def test_two_workers_end_identical_and_match_single_process(algorithm, optimizer, tmp_path):
    ports = _free_ports(2)
    outputs = [tmp_path / f"worker{i}.npz" for i in range(2)]
    optimizer, _, distill = optimizer.partition("+")
    options = ["--optimizer", optimizer] + (["--distill"] if distill else [])
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), algorithm, str(out), *options, "--worker", str(i), "--ports", *map(str, ports)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for i, out in enumerate(outputs)
    ]
    try:  # the single-process reference: the same training in this process while the workers run
        ref = load_script(WORKER, "mwms_train").train(algorithm, optimizer, bool(distill))
    finally:
        _run(workers)

    w0, w1 = (np.load(p) for p in outputs)
    finals = [k for k in ref if k.startswith("final")]
    assert len(finals) == len(w0.files) // 2 > 0
    trained = False
    for key in finals:
        np.testing.assert_array_equal(w0[key], w1[key])  # replicas stay in sync exactly
        # HSIC's local loss is a kernel statistic of each replica's share of the batch (like batch
        # norm), so it is not the single-device loss of the global batch: only the sync is checked.
        if algorithm != "hsic":
            np.testing.assert_allclose(w0[key], ref[key], rtol=1e-4, atol=1e-5)  # same global batch
        np.testing.assert_array_equal(w0[key.replace("final", "init")], ref[key.replace("final", "init")])
        trained |= not np.allclose(ref[key], ref[key.replace("final", "init")])
    assert trained, "training did not change any weight"


def test_strategy_names_and_errors(monkeypatch):
    import tensorflow as tf

    assert distribute.get_strategy("default") is tf.distribute.get_strategy()
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG"):
        distribute.get_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        distribute.get_strategy("multiworker")
    with pytest.raises(ValueError, match="unknown strategy 'tpu'"):
        distribute.get_strategy("tpu")
    assert distribute.is_chief(tf.distribute.get_strategy())
    assert distribute.supports_xla(tf.distribute.get_strategy())  # one replica keeps XLA


@pytest.mark.parametrize("optimizer", ["adam", "bnew", "proxquant", "bmd", "cb"])
def test_lqbench_train_multiworker_runs_every_recipe_and_only_the_chief_writes(optimizer, tmp_path):
    """`lqbench train --strategy multiworker` on two local workers: multi-phase recipes included,
    both workers end with the same test accuracy, one result file (the chief's)."""
    import json
    import os
    import re

    ports = _free_ports(2)
    command = [sys.executable, "-m", "lqbench.cli", "train", "--strategy", "multiworker", "--dataset", "digits",
               "--model-args", '{"hidden_units": [32, 32]}', "--epochs", "3", "--batch-size", "64", "--quiet",
               "--optimizer", optimizer, "--output", str(tmp_path / "results")]
    if optimizer == "cb":  # continuous binarization makes the activations binary itself
        command += ["--no-binary-weights", "--no-binary-activations"]
    workers = []
    scratch = tmp_path / "tmp"  # the workers' temp dir: the non-chief's scratch folder must not stay
    scratch.mkdir()
    for index in range(2):
        config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
        workers.append(subprocess.Popen(command, env={**os.environ, "TF_CONFIG": json.dumps(config),
                                                      "TMPDIR": str(scratch)},
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    try:
        outputs = [w.communicate(timeout=TIMEOUT_S)[0].decode() for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    assert [w.returncode for w in workers] == [0, 0], outputs
    accuracies = [re.search(r"test accuracy (\d\.\d+)", out).group(1) for out in outputs]
    assert accuracies[0] == accuracies[1]
    results = list((tmp_path / "results").glob("*/seed-0/result.json"))
    assert len(results) == 1
    result = json.loads(results[0].read_text())
    assert result["status"] == "ok" and result["test_accuracy"] > 0.1
    assert not list(scratch.glob("lqbench-worker-*"))
