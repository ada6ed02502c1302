"""lqbench.methods: every method x every algorithm it supports trains from a spec; incompatible
pairs are refused at spec load; #14 items 4, 7, 12, 13, 16, 17 pinned."""
import lqbench  # noqa: F401

import math

import numpy as np
import pytest
import tensorflow as tf

from lqbench import algorithms, continuous, distillation, estimators, experiment, methods
from lqbench.errors import IncompatibleError, LqbenchError
from lqbench.methods.bnew import BNEWPhases, bnew_lambda
from lqbench.spec import ExperimentSpec, SpecError

UNLOCKED = ("drtp", "hsic", "sigprop")


def _binarization(method):
    # continuous binarization binarizes activations itself
    return {"weights": True, "activations": method != "cb"}


def _pairs():
    for method in methods.available():
        for algorithm in algorithms.available():
            if method == "cb" and algorithm in UNLOCKED:
                continue
            yield method, algorithm


def _batch(n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 8, 1)).astype("float32")
    return x, rng.integers(0, 10, size=n).astype("int64")


@pytest.mark.parametrize("method, algorithm", list(_pairs()))
def test_every_method_and_algorithm_it_supports_builds_from_a_spec_and_trains_one_step(method, algorithm):
    epochs = 2 if method == "cb" else 1  # one stage per hidden activation
    spec = ExperimentSpec(name="m", method=method, algorithm=algorithm, binarization=_binarization(method),
                          model_args={"hidden_units": [8, 8]}, epochs=epochs, batch_size=16, xla="off")
    model, trainer = experiment._build(spec, 0, (8, 8, 1), 10)
    before = [w.copy() for w in model.get_weights()]
    history = methods.fit(trainer, _batch(), method=methods.get(spec.method, **spec.method_args), epochs=epochs,
                          steps_per_epoch=1, jit_compile=False, verbose=0, batch_size=16)
    assert len(history.history["loss"]) == epochs and all(map(math.isfinite, history.history["loss"]))
    assert any(np.abs(a - b).max() > 0 for a, b in zip(model.get_weights(), before)), "nothing was trained"
    if methods.get_class(method).requires_binary_kernels:
        kernel = model.get_layer("fc2").kernel.latent_variable.numpy()
        assert set(np.unique(kernel)) <= {-1.0, 1.0}, "the method's finalize leaves binary kernels"


@pytest.mark.parametrize("values, fragment", [
    *[({"method": m, "binarization": {"weights": False, "activations": False}}, "binarization.weights is false")
      for m in ("bop", "bop2", "bnew", "proxquant", "bmd")],
    *[({"method": "cb", "algorithm": a, "binarization": {"activations": False}}, f"update-unlocked algorithm '{a}'")
      for a in UNLOCKED],
    ({"method": "cb"}, "set binarization.activations = false"),
    ({"method": "bop", "post_training_binarization": True}, "only with method 'ste'"),
])
def test_incompatible_pairs_are_refused_at_spec_load_with_one_line(values, fragment):
    with pytest.raises(IncompatibleError) as error:
        ExperimentSpec(model_args={"hidden_units": [8]}, **values)
    message = str(error.value)
    assert fragment in message and "\n" not in message
    assert isinstance(error.value, (SpecError, LqbenchError, ValueError))


def test_hyperparameters_are_typed_and_validated_when_the_method_is_made():
    with pytest.raises(TypeError, match=r"gamma='1e-3' \(str\) must be a number"):
        methods.get("bop", gamma="1e-3")
    with pytest.raises(TypeError, match="amsgrad=1"):
        methods.get("ste", amsgrad=1)
    with pytest.raises(ValueError, match=r"rho=0.9 is outside the allowed range \[1, inf\]"):
        methods.get("bmd", rho=0.9)
    with pytest.raises(ValueError, match="slope_lambdas=.*exactly 3"):
        methods.get("cb", slope_lambdas=[1.0, 1.0])
    with pytest.raises(ValueError, match="unknown method 'adamw'; available: ste, bop"):
        methods.get("adamw")
    assert "gamma: float = 0.0001 in (0, 1]" in methods.get_class("bop").describe()


# ---------------------------------------------------------------------------- #14 item 7
def test_estimator_schedule_spans_the_whole_multi_phase_run():
    """EDE's t rises over all epochs of a 3-phase BNEW run instead of restarting in every phase."""
    b = lqbench.Binarization(weight_estimator="ede", activation_estimator="ede")
    model = lqbench.models.build("binarynet_mlp", (8, 8, 1), 10, b, hidden_units=[8, 8])
    seen = []

    class Watch(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):  # runs after the schedule (added last) on each epoch begin
            pass

        def on_epoch_end(self, epoch, logs=None):
            seen.append(float(estimators.quantizers_of(self.model, estimators.EDESign)[0].t.numpy()))

    history = methods.fit(model, _batch(32), method=methods.get("bnew", pretrain_fraction=0.34,
                                                                finetune_fraction=0.34),
                          epochs=6, jit_compile=False, verbose=0, batch_size=16, callbacks=[Watch()])
    assert len(history.phases) == 3
    expected = [estimators.ede_parameters(e, 6)[0] for e in range(6)]
    np.testing.assert_allclose(seen, expected, rtol=1e-5)
    assert all(b > a for a, b in zip(seen, seen[1:]))


# ---------------------------------------------------------------------------- #14 items 4, 13
def test_bnew_defaults_are_the_authors_code_form_and_phases():
    bnew = methods.get("bnew")
    assert (bnew.reg, bnew.lambda_rate, bnew.finetune_optimizer) == (1e-4, None, "continue")
    assert bnew.epochs_of(1200) == [200, 980, 20]  # 200 pre-training epochs, freeze at 980 of 1000
    # lambda_e = reg (e + 1) / E over the 1000 epochs of phases 2 + 3 (prox.py adjust_reg)
    assert bnew_lambda(979, 1000) == pytest.approx(1e-4 * 980 / 1000)
    phases = bnew.phases(1200)
    assert [p.name for p in phases] == ["pretrain", "quantize", "finetune"]
    assert phases[1].schedule_epochs == 1000 and phases[2].optimizer is None  # the decayed Adam continues
    assert phases[1].callbacks[0].lambda_epochs == 1000
    fresh = methods.get("bnew", finetune_optimizer="fresh").phases(1200)
    assert fresh[2].optimizer is not None and fresh[1].schedule_epochs == 980
    assert methods.get("bmd").finetune_fraction == 0.02


def test_bnew_finetune_phase_continues_the_same_optimizer_state():
    model = lqbench.models.build("binarynet_mlp", (8, 8, 1), 10, lqbench.Binarization(), hidden_units=[8, 8])
    optimizers = []

    class Watch(tf.keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            adam = self.model.optimizer.default  # the CaseOptimizer's Adam on the real parameters
            optimizers.append((self.model.optimizer, int(adam.iterations.numpy())))

    methods.fit(model, _batch(32), method=methods.get("bnew", pretrain_fraction=0.34, finetune_fraction=0.5),
                epochs=3, jit_compile=False, verbose=0, batch_size=16, callbacks=[Watch()])
    (first, _), (second, _), (third, steps) = optimizers
    assert second is not first and third is second and steps == 2  # phase 3: the same Adam, 2 steps done
    assert set(np.unique(model.get_layer("fc2").kernel.latent_variable.numpy())) <= {-1.0, 1.0}


def test_bnew_lambda_is_logged_per_epoch_with_the_code_form():
    model = lqbench.models.build("binarynet_mlp", (8, 8, 1), 10, lqbench.Binarization(), hidden_units=[8, 8])
    method = methods.get("bnew", reg=1e-2, pretrain_fraction=0.2, finetune_fraction=0.25)
    history = methods.fit(model, _batch(32), method=method, epochs=5, jit_compile=False, verbose=0, batch_size=16)
    assert [p["epochs"] for p in history.phases] == [1, 3, 1]
    np.testing.assert_allclose(history.history["bnew_lambda"][1:4], [1e-2 * (e + 1) / 4 for e in range(3)], rtol=1e-6)


# ---------------------------------------------------------------------------- #14 item 12
def test_cb_uses_the_pooling_lambda_for_an_activation_after_its_blocks_pooling():
    """Zoo order conv -> pool -> BN -> activation: paper 002's activation precedes that pooling."""
    inputs = tf.keras.Input((8, 8, 1))
    x = tf.keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
    x = tf.keras.layers.MaxPooling2D(2, name="p1")(x)
    x = tf.keras.layers.BatchNormalization(name="b1")(x)
    x = tf.keras.layers.Activation("relu", name="a1")(x)
    x = tf.keras.layers.Conv2D(4, 3, padding="same", name="c2")(x)
    x = tf.keras.layers.Activation("relu", name="a2")(x)
    x = tf.keras.layers.Flatten()(x)
    x = tf.keras.layers.Dense(8, name="d1")(x)
    x = tf.keras.layers.Activation("relu", name="a3")(x)
    model = continuous.from_float(tf.keras.Model(inputs, tf.keras.layers.Dense(3)(x)))
    kinds = [continuous.following_kind(model, p) for p in continuous.pcf_layers(model)]
    assert kinds == ["pool", "fc", "fc"]
    # the zoo's BinaryNet CNN itself (conv -> BN -> pool -> activation): every activation after a
    # pooling block gets the pooling lambda (the forward scan alone said "conv")
    zoo = continuous.from_float(lqbench.models.build("binarynet_cnn", (32, 32, 3), 10,
                                                     lqbench.Binarization.full_precision()))
    kinds = [continuous.following_kind(zoo, p) for p in continuous.pcf_layers(zoo)]
    assert kinds == ["conv", "pool", "conv", "pool", "conv", "pool", "fc", "fc"]


# ---------------------------------------------------------------------------- #14 item 16, #15
def test_distillation_is_reachable_from_a_spec_and_the_command_line(tmp_path):
    import argparse

    from lqbench.commands._spec_args import add_spec_arguments, spec_from_arguments

    teacher = lqbench.models.build("binarynet_mlp", (8, 8, 1), 10, lqbench.Binarization.full_precision(),
                                   hidden_units=[8, 8])
    path = tmp_path / "teacher.keras"
    teacher.save(path)
    parser = argparse.ArgumentParser()
    add_spec_arguments(parser)
    spec = spec_from_arguments(parser.parse_args(["--distill-teacher", str(path), "--distill-ce-weight", "1",
                                                  "--algorithm", "dfa", "--method", "bop",
                                                  "--set", "model_args.hidden_units=[8,8]"]))
    assert spec.distillation == {"teacher": str(path), "ce_weight": 1.0}
    assert ExperimentSpec.from_toml(spec.to_toml()) == spec
    model, trainer = experiment._build(spec, 0, (8, 8, 1), 10)
    assert isinstance(trainer, algorithms.DFA) and trainer.model is model
    assert isinstance(trainer.distillation, distillation.Distillation) and trainer.distillation.ce_weight == 1.0
    history = methods.fit(trainer, _batch(), method=methods.get("bop"), epochs=1, jit_compile=False, verbose=0,
                          batch_size=16)
    assert "kd_loss" in history.history


# ---------------------------------------------------------------------------- #14 item 17
def test_continuous_activation_error_lists_only_supported_kinds():
    with pytest.raises(ValueError) as error:
        continuous._activation("ste", 0.5, 2.0, "x")
    assert "allowed: pcf, relu" in str(error.value) and "ste" not in str(error.value).split("allowed:")[1]


def test_bnew_docstring_documents_the_push_order_and_the_references():
    doc = methods.bnew.__doc__
    assert "*before* the Adam step" in doc and methods.get("bnew", project_first=True).optimizer(1e-3) and "# References" in doc and "Alasdair-P/bnew" in doc
    for name in methods.available():
        module = methods.get_class(name).__module__
        assert "# References" in __import__(module, fromlist=["x"]).__doc__, module


def test_bnew_phases_callback_keeps_lambda_zero_in_pretraining():
    callback = BNEWPhases(2, 3, reg=1e-3, lambda_epochs=4)
    assert (callback.pretrain_epochs, callback.quantize_epochs, callback.lambda_epochs) == (2, 3, 4)
