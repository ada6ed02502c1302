"""Presets: every TOML file validates (ExperimentSpec.load / sweep files) and follows its paper's protocol."""
import pytest

import lqbench  # noqa: F401
from lqbench import presets
from lqbench._compat import tomllib
from lqbench.spec import ExperimentSpec
from lqbench.sweep import SweepSpec

PAPER = {"paper000-imagenette", "paper000-cifar10", "paper000-indoor67", "paper001-resnet20", "paper001-cpu",
         "paper002-mnist", "paper003-base-cnn", "paper003-vgg-small"}


def test_available_lists_paper_and_small_presets():
    names = presets.available()
    assert PAPER <= set(names)
    assert {n for n in names if n.startswith("small-")} >= {"small-digits-algorithms", "small-digits-tune"}
    with pytest.raises(ValueError, match="unknown preset 'nope'; available: extra-fashion-cpu, paper000-cifar10"):
        presets.path("nope")


@pytest.mark.parametrize("name", presets.available())
def test_every_preset_validates(name):
    preset = presets.load(name)
    specs = presets.specs(name)
    assert specs and all(isinstance(s, ExperimentSpec) for s in specs)
    assert len({(s.name, s.key()) for s in specs}) == len(specs)  # no duplicate runs
    if isinstance(preset, SweepSpec):
        config = tomllib.loads(presets.path(name).read_text())
        ExperimentSpec.from_dict(config["base"])  # the [base] table alone is a valid spec
        assert SweepSpec.from_toml(preset.to_toml()).specs() == specs
    else:
        assert preset == ExperimentSpec.load(presets.path(name))


def _by_name(name):
    return {s.name: s for s in presets.specs(name)}


def test_paper000_protocol():
    specs = presets.specs("paper000-imagenette")
    assert presets.load("paper000-imagenette").tune
    for spec in specs:
        assert (spec.dataset, spec.image_size, spec.epochs, spec.batch_size) == ("imagenette", [224, 224], 80, 128)
        assert (spec.method, spec.method_args, spec.weight_decay, spec.seeds, spec.augment) == ("ste", {}, 1e-5, [0, 1, 2, 3, 4], True)
        assert spec.grid == {} and spec.binarization.keep_first_last
    combos = {(s.model, s.algorithm, s.binarization.label, s.skip_connections) for s in specs}
    for model in ("vgg19", "mobilenet_v2", "mlp_mixer"):
        for algorithm in ("bp", "dfa", "drtp"):
            for label in ("W32A32", "W1A32", "W32A1", "W1A1"):
                assert (model, algorithm, label, True) in combos  # Tables 3-6
        for algorithm in ("hsic", "sigprop"):
            assert (model, algorithm, "W1A1", True) in combos  # Table 7
    for model in ("mobilenet_v2", "mlp_mixer"):
        for algorithm in ("bp", "dfa", "drtp", "hsic", "sigprop"):
            assert (model, algorithm, "W1A1", False) in combos  # Table 8
    assert len(specs) == 36 + 6 + 10
    for name in ("paper000-cifar10", "paper000-indoor67"):
        specs = presets.specs(name)
        assert len(specs) == 18 and {s.binarization.label for s in specs} == {"W32A32", "W1A1"}


def test_paper001_to_003_settings():
    p001 = presets.specs("paper001-resnet20")
    assert {(s.method, s.dataset) for s in p001} == {(o, d) for o in ("ste", "bmd", "bop", "bnew")
                                                        for d in ("cifar10", "cifar100")}
    assert all(s.model == "resnet20" and s.binarization.activation_estimator == "approx_sign" for s in p001)
    bmd = next(s for s in p001 if s.method == "bmd")
    assert bmd.grid["method_args.rho"] == [1.003, 1.01, 1.03, 1.1, 1.3]
    for spec in p001:  # every binarizing method starts from the phase-1 model of its dataset
        if spec.binarization.label == "W1A1":
            assert spec.init_from == f"p001-resnet20-phase1-{spec.dataset}" and spec.epochs == 1000
        else:
            assert spec.init_from is None
    assert sorted(s.name for s in p001 if s.binarization.label == "W32A1") == [
        "p001-resnet20-phase1-cifar10", "p001-resnet20-phase1-cifar100"]
    p002 = _by_name("paper002-mnist")
    assert {s.model_args["hidden_units"] == [2048, 2048, 2048] for s in p002.values()} == {True}
    assert {n: (s.method, s.method_args.get("optimizer"), s.binarization.label) for n, s in p002.items()} == {
        "p002-mnist-fp": ("ste", "sgd", "W32A32"), "p002-mnist-ste": ("ste", None, "W32A1"),
        "p002-mnist-cb": ("cb", None, "W32A32")}
    p003 = presets.specs("paper003-base-cnn")
    table1 = [s for s in p003 if s.model_args == {"binarize_dense": False, "initializer": "torch"}]
    estimators = {(s.binarization.label, s.binarization.weight_estimator) for s in table1 if
                  not s.post_training_binarization and not s.binarization.is_full_precision}
    # the paper's STE is the clipped one (its equation 3)
    assert estimators == {(l, e) for l in ("W1A32", "W1A1") for e in ("ste_clipped", "approx_sign", "tanh", "cosh2", "gumbel")}
    assert any(s.post_training_binarization for s in p003) and any(s.binarization.is_full_precision for s in p003)
    assert all((s.method, s.method_args["optimizer"], s.weight_decay, s.schedule, s.epochs) == ("ste", "sgd", 1e-4, "cosine", 300)
               for s in p003)
    assert all(not s.binarization.keep_first_last for s in p003)
    vgg = presets.specs("paper003-vgg-small")
    assert {s.binarization.weight_estimator for s in vgg} == {"ede", "tanh", "ste_clipped", "gumbel", "cosh2", "approx_sign"}


def test_paper001_presets_follow_the_authors_code():
    """#14 items 4 and 13: BNEW's code-form lambda (reg 1e-4, no lambda_rate), its 200 + 980 + 20 epoch
    phases with the decayed Adam continued (the 200 are the shared phase-1 run, #18); Bop's gamma
    decayed linearly to 0; BMD freezes the last 2%."""
    from lqbench import methods
    p001 = {s.method: s for s in presets.specs("paper001-resnet20") if s.dataset == "cifar10" and s.init_from}
    bnew = methods.get("bnew", **p001["bnew"].method_args)
    assert bnew.lambda_rate is None and bnew.reg == 1e-4 and bnew.finetune_optimizer == "continue"
    assert bnew.project_first
    phase1 = next(s for s in presets.specs("paper001-resnet20") if s.name == p001["bnew"].init_from)
    assert [phase1.epochs, *bnew.epochs_of(p001["bnew"].epochs)] == [200, 0, 980, 20]
    assert methods.get("bop", **p001["bop"].method_args).gamma_schedule == "linear"
    assert methods.get("bmd", **p001["bmd"].method_args).finetune_fraction == 0.02


def test_paper000_presets_sign_in_place_of_activations():
    """Issue 14 item 1: seed 000's code replaces activation functions by sign (replace_activations_to_sign)."""
    for name in ("paper000-imagenette", "paper000-cifar10", "paper000-indoor67", "paper000-cpu"):
        assert {s.binarization.inputs for s in presets.specs(name)} == {"activations"}, name
        # and the authors' sign, torch.where(x > 0, 1, -1): -1 at exactly 0 (docs/fidelity.md)
        assert {s.binarization.sign_at_zero for s in presets.specs(name)} == {-1.0}, name


CPU_PRESETS = ("paper000-cpu", "paper001-cpu", "paper002-cpu", "paper003-cpu", "extra-fashion-cpu")


@pytest.mark.parametrize("name", CPU_PRESETS)
def test_cpu_reproduction_presets_state_their_budget_and_run_every_configuration_twice(name):
    """Issue #18: each CPU-scale preset states its budget, data and departures, and has >= 2 seeds per cell."""
    header = presets.path(name).read_text().split("\nname =")[0]
    assert f"lqbench sweep {name} --output bench/reproduction/results/" in header
    assert "CPU-hour" in header and "epochs" in header
    specs = presets.specs(name)
    assert specs and all(len(s.seeds) >= 2 for s in specs)
    if any(s.dataset == "cifar10" for s in specs):
        assert "CIFAR-10 (JPEG q75 copy)" in header
    if any(s.dataset == "imagenette" for s in specs):
        assert "ImageNette (224 px JPEG q75 copy)" in header
        assert {tuple(s.image_size) for s in specs if s.dataset == "imagenette"} == {(64, 64)}
    from lqbench.sweep import SweepSpec
    assert SweepSpec.load(presets.path(name)).order == "seeds"


def test_paper000_cpu_covers_table_3_on_cifar10_for_vgg19():
    """Issue #18: paper 000 on ImageNette *and* CIFAR-10: Table 3's CIFAR-10 cells of VGG-19."""
    cells = {(s.binarization.label, s.algorithm) for s in presets.specs("paper000-cpu")
             if s.dataset == "cifar10" and s.model == "vgg19"}
    assert cells == {(label, a) for label in ("W32A32", "W1A32") for a in ("bp", "dfa", "drtp")}


def test_paper003_cpu_covers_every_estimator_of_table_1_and_vgg_small():
    specs = presets.specs("paper003-cpu")
    lenet = {(s.binarization.label, s.binarization.weight_estimator) for s in specs
             if s.model == "lenet" and not s.post_training_binarization and not s.binarization.is_full_precision}
    every = ("ste", "ste_clipped", "approx_sign", "tanh", "swish_sign", "cosh2", "gumbel", "ede")
    assert lenet == {(label, e) for label in ("W1A32", "W1A1") for e in every}
    assert {s.binarization.weight_estimator for s in specs if s.model == "vgg_small"} >= {
        "ste_clipped", "approx_sign", "cosh2", "ede"}
    assert any(s.post_training_binarization for s in specs) and any(s.binarization.is_full_precision for s in specs)


def test_paper001_cpu_starts_every_method_from_phase1_within_the_budget():
    from lqbench.methods import get
    from lqbench.methods.bnew import bnew_lambda
    from lqbench.optimizers.bmd import bmd_beta, bmd_beta_epoch

    preset = presets.load("paper001-cpu")
    specs = _by_name("paper001-cpu")
    assert preset.order == "seeds"
    phase1 = specs["p001cpu-phase1"]
    assert (phase1.binarization.label, phase1.method, phase1.init_from, phase1.epochs) == ("W32A1", "ste", None, 8)
    methods_ = {s.method: s for n, s in specs.items() if s.init_from is not None}
    assert set(methods_) == {"ste", "bop", "bmd", "proxquant", "bnew"}
    for spec in [phase1, *methods_.values()]:
        assert (spec.dataset, spec.model, spec.model_args, spec.seeds) == ("cifar10", "resnet20", {"variant": "birealnet"},
                                                                          [0, 1])
        assert spec.binarization.activation_estimator == "approx_sign" and spec.augment
        assert (spec.learning_rate, spec.schedule, spec.grid) == (1e-2, "linear", {})
    for spec in methods_.values():
        assert spec.init_from == phase1.name and spec.binarization.label == "W1A1" and spec.epochs == 6
    fp = specs["p001cpu-fp"]
    assert fp.binarization.label == "W32A32" and fp.epochs == phase1.epochs + 6
    assert sum(s.epochs for s in specs.values()) == 52  # per seed: ~50 s per epoch here
    # the compressed schedules end where the authors' 1000-epoch ones do (352 steps per epoch)
    bnew = get("bnew", **methods_["bnew"].method_args)
    e1, e2, e3 = bnew.epochs_of(6)
    assert (e1, e2, e3) == (0, 5, 1)
    push = 2 * 352 * sum(bnew_lambda(e, e2 + e3, bnew.reg) for e in range(e2))
    authors = 2 * 352 * sum(bnew_lambda(e, 1000, 1e-4) for e in range(980))
    assert push == pytest.approx(authors, rel=0.02)
    bmd = methods_["bmd"].method_args
    assert bmd_beta(5 * 352 - 1, bmd["rho"], bmd["interval"]) == pytest.approx(bmd_beta_epoch(979, 1.01), rel=0.05)
