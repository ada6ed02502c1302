"""The command line as a new user meets it: checked flags, quiet output, progress, help with the valid names."""
import os
import pathlib
import subprocess
import sys

import pytest

import lqbench  # noqa: F401
import lqbench.algorithms
import lqbench.data
import lqbench.estimators
import lqbench.models
from lqbench import cli

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv, flag", [
    (["run", "--epochs", "0"], "--epochs"),
    (["run", "--bench-runs", "0"], "--bench-runs"),
    (["sweep", "x.toml", "--epochs", "-1"], "--epochs"),
    (["bench", "m.tflite", "--runs", "0"], "--runs"),
    (["bench", "m.tflite", "--threads", "1", "zero"], "--threads"),
])
def test_impossible_numbers_are_refused_before_any_work(argv, flag, capsys, tmp_path):
    """Issue #16 row 2: `lqbench run --epochs 0` trained 15 epochs x 12 runs; --bench-runs 0 failed after training."""
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, *(["--output", str(tmp_path / "out")] if argv[0] in ("run", "sweep") else [])])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {flag}" in error and "allowed: integers >= " in error
    assert not (tmp_path / "out").exists()


def _lqbench(*args, env=None, timeout=120):
    environment = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "LQBENCH_VERBOSE")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "lqbench.cli", *args], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def test_quiet_by_default_and_verbose_on_request(tmp_path):
    """First use: no cuFFT/cuDNN/cuBLAS registration errors, XLA info lines or Keras warnings unless --verbose."""
    args = ["train", "--dataset", "digits", "--model", "binarynet_mlp", "--model-args", '{"hidden_units": [8]}',
            "--epochs", "1", "--output", str(tmp_path), "--in-process"]
    quiet = _lqbench(*args)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stderr == "", quiet.stderr[-2000:]
    assert "seed 0: test accuracy" in quiet.stdout
    assert " - val_accuracy: " in quiet.stdout and "\r" not in quiet.stdout and "\b" not in quiet.stdout  # a pipe: no bar
    loud = _lqbench(*args, "--verbose", "--xla", "on")  # XLA on: its info lines are certain to be logged
    assert loud.returncode == 0
    assert "XLA" in loud.stderr or "cuFFT" in loud.stderr or "I0000" in loud.stderr, loud.stderr[-2000:]


def test_native_log_lines_are_filtered_and_others_kept():
    from lqbench._keras_env import NATIVE_NOISE

    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796042184.330100   10952 service.cc:145] XLA service 0x55 initialized for platform Host",
        "I0000 00:00:1796042184.347526   10952 device_compiler.h:188] Compiled cluster using XLA!",
        "2026-11-30 12:36:12.650600: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:479] Unable to "
        "register cuFFT factory: Attempting to register factory for plugin cuFFT when one has already been registered",
    ]
    kept = ["lqbench train: error: unknown model 'x'", "Traceback (most recent call last):",
            "2026-11-30 12:36:12.650600: E tensorflow/core/framework/op_kernel.cc:1] OOM when allocating"]
    assert all(NATIVE_NOISE.match(line) for line in noise)
    assert not any(NATIVE_NOISE.match(line) for line in kept)


def test_progress_bar_on_a_terminal_one_line_per_epoch_otherwise(monkeypatch):
    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    monkeypatch.setattr(sys, "stdout", Stream(True))
    assert cli.progress_verbosity() == 1 and cli.progress_verbosity(quiet=True) == 0
    monkeypatch.setattr(sys, "stdout", Stream(False))
    assert cli.progress_verbosity() == 2


def test_help_of_every_command_explains_every_flag_and_lists_the_names():
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, subparser in commands.items():
        cli.describe_flags(subparser)
        undocumented = [a.option_strings for a in subparser._actions if a.option_strings and not a.help]
        assert not undocumented, (name, undocumented)
    train = commands["train"].format_help()
    for names in (lqbench.models.available(), lqbench.data.available(), lqbench.algorithms.available(),
                  lqbench.estimators.available()):
        for value in names:
            assert value in train, value
    assert "vgg_small" in commands["models"].format_help()
    assert "--download" in train and "--verbose" in commands["bench"].format_help()
