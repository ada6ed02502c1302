"""The command line: fast help without TensorFlow, one-line user errors, spec flags that merge."""
import argparse
import subprocess
import sys

import pytest

import lqbench
from lqbench import cli
from lqbench.commands._spec_args import STRATEGIES, add_spec_arguments, spec_from_arguments
from lqbench.errors import LqbenchError

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
