"""The command line as a user meets it: fast help without TensorFlow, one-line user errors, spec flags that
merge, checked numbers, quiet output, progress, help with the valid names."""
import argparse
import os
import pathlib
import subprocess
import sys

import pytest

import lqbench
from lqbench import cli
from lqbench.commands._spec_args import STRATEGIES, add_spec_arguments, spec_from_arguments
from lqbench.errors import LqbenchError
import lqbench.algorithms
import lqbench.data
import lqbench.estimators
import lqbench.models

_LOADED = ("import sys, importlib.util as u; "
           "print(sorted(m for m in ('tensorflow', 'larq', 'keras_tuner', 'tf_keras') "
           "if m in sys.modules and not isinstance(sys.modules[m], u._LazyModule)))")


@pytest.mark.parametrize("code", [
    "import lqbench.cli as c; c.build_parser()",
    "import lqbench.spec, lqbench.hparams, lqbench.results, lqbench.report, lqbench.storage",
])
def test_parsers_and_descriptive_modules_import_without_tensorflow(code):
    out = subprocess.run([sys.executable, "-c", f"{code}; {_LOADED}"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_command_has_help():
    parser = cli.build_parser()
    for name in cli.COMMANDS:
        with pytest.raises(SystemExit) as done:
            parser.parse_args([name, "--help"])
        assert done.value.code == 0


def test_strategy_names_match_lqbench_distribute():
    from lqbench import distribute

    assert STRATEGIES == distribute.STRATEGIES


def _spec(*argv):
    parser = argparse.ArgumentParser()
    add_spec_arguments(parser)
    return spec_from_arguments(parser.parse_args(list(argv)))


def test_switching_model_never_inherits_another_models_arguments():
    assert _spec().model_args == {"hidden_units": [256, 256]}
    assert _spec("--model", "vgg_small").model_args == {}
    assert _spec("--model", "vgg_small", "--set", "model_args.width_multiplier=0.25").model_args == {
        "width_multiplier": 0.25}


def test_set_and_table_flags_merge_into_the_spec(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('model_args = {hidden_units = [32, 32], activation = "relu"}\nmethod = "bop"\n'
                    'method_args = {gamma = 1e-3}\n')
    spec = _spec("--spec", str(path), "--set", "model_args.hidden_units=[512,512]", "--method-args", '{"threshold": 1e-7}')
    assert spec.model_args == {"hidden_units": [512, 512], "activation": "relu"}
    assert spec.method_args == {"gamma": 1e-3, "threshold": 1e-7}
    assert _spec("--spec", str(path), "--method", "bnew").method_args == {}  # bop's gamma does not apply to bnew
    assert _spec("--optimizer", "sgd").method_args == {"optimizer": "sgd"}  # the earlier flag still works


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--method", "bop", "--no-binary-weights"], "method 'bop' updates binary weights"),
    (["train", "--set", "learning_rate=true"], "learning_rate=True (bool) must be a number"),
    (["train", "--set", "seeds=3"], "seeds: 3 must be a non-empty list"),
    (["train", "--set", "method_args.alpah=1"], "unknown hyperparameter(s) alpah"),
    (["train", "--method", "cb", "--no-binary-activations", "--algorithm", "drtp"], "update-unlocked"),
    (["sweep", "no-such-sweep.toml", "--dry-run"], "no-such-sweep.toml"),
])
def test_user_errors_are_one_line_with_exit_status_2(argv, fragment, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


def test_other_exceptions_keep_their_traceback(monkeypatch):
    from lqbench.commands import datasets

    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(datasets, "run", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["datasets"])
    assert issubclass(lqbench.data.DataError, LqbenchError)


def test_small_images_are_resized_to_the_models_smallest_input():
    from lqbench import data, experiment
    from lqbench.spec import ExperimentSpec

    info = data.info("digits")
    assert experiment.image_size(ExperimentSpec(model="lenet"), info) == [16, 16]
    assert experiment.image_size(ExperimentSpec(model="vgg_small"), info) is None
    assert experiment.image_size(ExperimentSpec(model="lenet", image_size=[32, 32]), info) == [32, 32]


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
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines  # one line, no usage block above it
    error = lines[0]
    assert f"argument {flag}" in error and "allowed: integers >= " in error
    assert error.endswith("--help lists the options)")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, fragment", [
    (["bogus"], "lqbench: error: argument COMMAND: invalid choice: 'bogus'"),
    (["sweep"], "lqbench sweep: error: the following arguments are required: SWEEP"),
    (["train", "--xla", "maybe"], "lqbench train: error: argument --xla: invalid choice: 'maybe'"),
    (["train", "--no-such-flag"], "lqbench train: error: unrecognized arguments: --no-such-flag"),
    (["--no-such-flag"], "lqbench: error: unrecognized arguments: --no-such-flag"),
])
def test_usage_errors_are_one_line(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(fragment), lines


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


def test_help_names_equal_the_registries():
    """`lqbench.names` (what --help lists without loading TensorFlow) cannot drift from the registries."""
    from lqbench import algorithms, data, estimators, methods, models, names, presets, recipes, schedules

    registries = {"model": models, "dataset": data, "algorithm": algorithms, "method": methods, "optimizer": recipes,
                  "estimator": estimators, "schedule": schedules, "preset": presets}
    for kind, module in registries.items():
        assert names.names(kind) == tuple(sorted(dict.fromkeys(str(n) for n in module.available()))), kind


def test_a_closed_stdout_pipe_ends_the_command_quietly(tmp_path):
    """`lqbench sweep ... --dry-run | head -1`: the reader goes away; no BrokenPipeError traceback."""
    process = subprocess.Popen([sys.executable, "-m", "lqbench.cli", "sweep", "small-digits-algorithms", "--dry-run",
                                "--output", str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # before the command's first line: every write meets a closed pipe
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 141, stderr.decode()[-2000:]
    assert b"Traceback" not in stderr and b"BrokenPipeError" not in stderr, stderr.decode()[-2000:]
