"""ExperimentSpec: TOML round trip, grid points, key, and every validation error."""
import math

import pytest

import lqbench  # noqa: F401
from lqbench.spec import DEFAULT_GRIDS, ExperimentSpec, SpecError


def _spec(**values):
    config = {"name": "t", "dataset": "digits", "model_args": {"hidden_units": [32]}, **values}
    return ExperimentSpec(**config)


# ---------------------------------------------------------------------------- round trip
def test_toml_round_trip_keeps_every_field(tmp_path):
    spec = ExperimentSpec(
        name="mlp-drtp", dataset="digits", image_size=[8, 8], augment=True, model="binarynet_mlp",
        model_args={"hidden_units": [64, 32], "activation": "relu"}, skip_connections=False,
        binarization={"weights": True, "activations": False, "weight_estimator": "approx_sign",
                      "activation_estimator": "tanh", "activation_estimator_kwargs": {"beta": 2.0}},
        algorithm="drtp", optimizer="sgd", optimizer_args={"momentum": 0.5}, learning_rate=3e-4,
        weight_decay=1e-5, schedule="cosine", epochs=7, batch_size=32, seeds=[3, 1, 4], xla="off",
        grid={"learning_rate": [1e-3, 1e-4], "binarization.weight_estimator": ["ste", "tanh"]},
    )
    again = ExperimentSpec.from_toml(spec.to_toml())
    assert again == spec
    assert again.to_dict() == spec.to_dict()
    path = spec.save(tmp_path / "sub" / "spec.toml")
    loaded = ExperimentSpec.load(path)
    assert loaded == spec
    assert loaded.binarization.activation_estimator_kwargs == {"beta": 2.0}
    assert loaded.binarization.label == "W1A32"


def test_defaults_round_trip_and_none_fields_are_dropped():
    spec = ExperimentSpec()
    text = spec.to_toml()
    assert "data_dir" not in text and "image_size" not in text  # None is not representable in TOML
    assert ExperimentSpec.from_toml(text) == spec


def test_key_ignores_name_seeds_grid_and_changes_with_configuration():
    spec = _spec()
    assert spec.key() == spec.with_values({"name": "other", "seeds": [5, 6], "grid": {"epochs": [1, 2]}}).key()
    assert spec.key() != spec.with_values({"learning_rate": 1e-4}).key()
    assert spec.key() != spec.with_values({"binarization.weights": False}).key()
    assert spec.key() != spec.with_values({"model_args.hidden_units": [64]}).key()
    assert len(spec.key()) == 12 and spec.key() == _spec().key()  # stable across instances


def test_with_values_dotted_keys_merge_tables():
    spec = _spec(algorithm_args={}, binarization={"weight_estimator": "tanh"})
    changed = spec.with_values({"binarization.activations": False, "model_args.activation": "relu"})
    assert changed.binarization.activations is False
    assert changed.binarization.weight_estimator == "tanh"  # the rest of the table is kept
    assert changed.model_args == {"hidden_units": [32], "activation": "relu"}
    assert spec.binarization.activations is True  # original untouched


def test_with_values_switching_a_name_starts_its_table_afresh():
    spec = _spec(method="bop", method_args={"threshold": 1e-6})
    # another model: the earlier model's arguments do not apply (as `--model` on the CLI)
    other = spec.with_values({"model": "vgg_small", "model_args.width_multiplier": 0.25})
    assert other.model_args == {"width_multiplier": 0.25}
    assert spec.with_values({"model": "vgg_small"}).model_args == {}
    assert spec.with_values({"method": "ste", "method_args.optimizer": "sgd"}).method_args == {"optimizer": "sgd"}
    # the same name keeps and merges its table
    assert spec.with_values({"model": spec.model, "model_args.activation": "relu"}).model_args == {
        "hidden_units": [32], "activation": "relu"}
    assert spec.with_values({"method_args.gamma": 1e-3}).method_args == {"threshold": 1e-6, "gamma": 1e-3}


def test_grid_points_are_the_product_in_order():
    spec = _spec(grid={"learning_rate": [1e-3, 1e-4], "algorithm_args.gamma": [2.0, 20.0, 200.0]}, algorithm="hsic")
    points = spec.grid_points()
    assert len(points) == 6
    assert points[0] == {"learning_rate": 1e-3, "algorithm_args.gamma": 2.0}
    assert points[1] == {"learning_rate": 1e-3, "algorithm_args.gamma": 20.0}
    assert points[-1] == {"learning_rate": 1e-4, "algorithm_args.gamma": 200.0}
    assert _spec().grid_points() == [{}]


def test_default_grids_are_the_papers():
    assert DEFAULT_GRIDS["bp"] == {"learning_rate": [1e-3, 1e-4, 1e-5]}
    assert DEFAULT_GRIDS["hsic"]["algorithm_args.gamma"] == [2.0, 20.0, 200.0]
    assert DEFAULT_GRIDS["sigprop"]["algorithm_args.alpha"] == [1.0, 0.1, 0.01]
    for algorithm, grid in DEFAULT_GRIDS.items():
        _spec(algorithm=algorithm, grid=grid)  # every default grid point is a valid spec


def test_folder_datasets_are_accepted():
    assert _spec(dataset="folder:/data/my-images").dataset == "folder:/data/my-images"


# ---------------------------------------------------------------------------- validation errors
@pytest.mark.parametrize(
    "values, fragments",
    [
        ({"dataset": "imagenet22k"}, ["dataset", "'imagenet22k'", "digits", "folder:PATH"]),
        ({"model": "resnet9000"}, ["model", "'resnet9000'", "binarynet_mlp"]),
        ({"algorithm": "backprop"}, ["algorithm", "'backprop'", "drtp"]),
        ({"optimizer": "adamw"}, ["method", "'adamw'", "ste", "bop"]),
        ({"method": "adamw"}, ["method", "'adamw'", "ste", "bop"]),
        ({"schedule": "exponential"}, ["schedule", "'exponential'", "cosine"]),
        ({"epochs": 0}, ["epochs", "0", "[1, inf]"]),
        ({"epochs": -3}, ["epochs", "-3"]),
        ({"epochs": 2.5}, ["epochs", "2.5"]),
        ({"epochs": True}, ["epochs", "True"]),
        ({"batch_size": 0}, ["batch_size", "0"]),
        ({"learning_rate": 0.0}, ["learning_rate", "0.0", "range"]),
        ({"learning_rate": -1e-3}, ["learning_rate", "-0.001"]),
        ({"learning_rate": math.inf}, ["learning_rate", "inf"]),
        ({"learning_rate": math.nan}, ["learning_rate", "nan"]),
        ({"learning_rate": "fast"}, ["learning_rate", "'fast'"]),
        ({"weight_decay": -0.1}, ["weight_decay", "-0.1", "[0, 1)"]),
        ({"weight_decay": 1.0}, ["weight_decay", "1.0"]),
        ({"seeds": []}, ["seeds", "[]", "non-empty"]),
        ({"seeds": 3}, ["seeds", "3", "list"]),
        ({"seeds": [True]}, ["seeds", "[True]"]),
        ({"learning_rate": True}, ["learning_rate", "True", "number"]),
        ({"augment": "false"}, ["augment", "'false'", "true or false"]),
        ({"binarization": {"weights": "false"}}, ["binarization", "weights", "'false'"]),
        ({"method_args": {"alpah": 1.0}}, ["method_args", "alpah", "allowed"]),
        ({"method": "bop", "method_args": {"gamma": 2.0}}, ["method_args", "gamma=2.0", "range"]),
        ({"model_args": {"hidden_units": 64}}, ["model_args", "hidden_units=64", "list"]),
        ({"model_args": {"widht": 2}}, ["model_args", "widht", "hidden_units"]),
        ({"algorithm": "hsic", "algorithm_args": {"gamma": True}}, ["algorithm_args", "gamma=True"]),
        ({"algorithm": "hsic", "algorithm_args": {"kernel": "rbf"}}, ["algorithm_args", "'rbf'", "cosine"]),
        ({"distillation": {"teacher": "/nonexistent.keras"}}, ["distillation", "does not exist"]),
        ({"distillation": {"alpah": 1}}, ["distillation", "alpah", "teacher"]),
        ({"seeds": [-1]}, ["seeds", "[-1]", "non-negative"]),
        ({"seeds": [0.5]}, ["seeds", "[0.5]"]),
        ({"seeds": [1, 1]}, ["seeds", "duplicates"]),
        ({"image_size": [32]}, ["image_size", "[32]", "2 element"]),
        ({"image_size": [0, 32]}, ["image_size", "[0, 32]"]),
        ({"image_size": [32.0, 32]}, ["image_size"]),
        ({"model_args": "wide"}, ["model_args", "'wide'", "table"]),
        ({"algorithm_args": [1]}, ["algorithm_args", "table"]),
        ({"optimizer_args": 3}, ["optimizer_args", "table"]),
        ({"method_args": 3}, ["method_args", "table"]),
        ({"grid": ["learning_rate"]}, ["grid", "table"]),
        ({"binarization": {"weight_estimator": "magic"}}, ["binarization", "'magic'", "approx_sign"]),
        ({"binarization": {"weights": True, "colour": "red"}}, ["binarization", "colour", "allowed"]),
        ({"binarization": {"weight_estimator": "rsign"}}, ["binarization", "rsign"]),
    ],
)
def test_invalid_values_raise_one_line_naming_the_value(values, fragments):
    with pytest.raises(SpecError) as error:
        _spec(**values)
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize(
    "values, fragments",
    [
        ({"post_training_binarization": True, "binarization": {"weights": False, "activations": False}},
         ["post_training_binarization", "full precision"]),
        ({"post_training_binarization": True, "algorithm": "dfa"}, ["post_training_binarization", "'dfa'", "bp"]),
    ],
)
def test_incompatible_combinations(values, fragments):
    with pytest.raises(SpecError) as error:
        _spec(**values)
    for fragment in fragments:
        assert fragment in str(error.value)


@pytest.mark.parametrize(
    "grid, fragments",
    [
        ({"learnin_rate": [1e-3]}, ["grid", "'learnin_rate'", "learning_rate"]),
        ({"seeds": [[0], [1]]}, ["grid", "'seeds'"]),
        ({"name": ["a", "b"]}, ["grid", "'name'"]),
        ({"learning_rate.x": [1]}, ["grid", "'learning_rate.x'", "dotted"]),
        ({"learning_rate": []}, ["grid", "learning_rate", "non-empty list"]),
        ({"learning_rate": 1e-3}, ["grid", "learning_rate", "0.001"]),
        ({"learning_rate": [1e-3, -1.0]}, ["learning_rate", "-1.0"]),
        ({"algorithm": ["bp", "nope"]}, ["algorithm", "'nope'"]),
        ({"binarization.weight_estimator": ["ste", "bogus"]}, ["binarization", "'bogus'"]),
    ],
)
def test_bad_grids(grid, fragments):
    with pytest.raises(SpecError) as error:
        _spec(grid=grid)
    for fragment in fragments:
        assert fragment in str(error.value), (fragment, str(error.value))


def test_unknown_fields_invalid_toml_and_missing_files(tmp_path):
    with pytest.raises(SpecError, match=r"unknown field\(s\) colour.*allowed: .*algorithm"):
        ExperimentSpec.from_dict({"colour": "red"})
    with pytest.raises(SpecError, match="not valid TOML"):
        ExperimentSpec.from_toml("epochs = = 3")
    with pytest.raises(SpecError, match="does not exist"):
        ExperimentSpec.load(tmp_path / "missing.toml")
    with pytest.raises(SpecError, match="epochs"):
        _spec().with_values({"epochs": 0})
    bad = tmp_path / "bad.toml"
    bad.write_text('dataset = "digits"\nmodel = "nope"\n')
    with pytest.raises(SpecError, match="model: unknown value 'nope'"):
        ExperimentSpec.load(bad)


def test_binarization_label_or_table_and_one_line_errors(tmp_path):
    """Issue #16 re-run (B3): `binarization = "W1A1"` was an AttributeError traceback."""
    assert _spec(binarization="W32A1").binarization.label == "W32A1"
    assert ExperimentSpec.from_toml('binarization = "w1a32"\n').binarization.label == "W1A32"
    with pytest.raises(SpecError, match="binarization: label 'W3A1' is not one of W1A1, W1A32, W32A1, W32A32"):
        _spec(binarization="W3A1")
    for value in (5, [1], True):
        with pytest.raises(SpecError, match="binarization: expected a table or a label like 'W1A1'"):
            _spec(binarization=value)


def test_a_spec_file_that_is_not_utf8_text_is_one_line(tmp_path):
    """Issue #16 re-run (B4): a binary spec file was a UnicodeDecodeError traceback."""
    from lqbench import sweep

    path = tmp_path / "x.toml"
    path.write_bytes(b"\xff\xfe garbage")
    for load in (ExperimentSpec.load, sweep.SweepSpec.load):
        with pytest.raises(SpecError, match=r"x.toml is not UTF-8 text \(byte 0"):
            load(path)
