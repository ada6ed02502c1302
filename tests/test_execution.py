"""Execution mode (`lqbench.execution`): ``auto`` measures and records, both modes train alike."""
import json

import larq as lq
import numpy as np
import pytest

import lqbench
import tensorflow as tf

from lqbench import algorithms, execution, experiment
from lqbench.commands import _spec_args
from lqbench.spec import ExperimentSpec, SpecError

TINY = dict(dataset="digits", model="binarynet_mlp", model_args={"hidden_units": [32]}, epochs=1, batch_size=64)


def _small_cnn(seed=0):
    tf.keras.utils.set_random_seed(seed)
    b = lqbench.Binarization()
    x = tf.keras.Input((8, 8, 1))
    h = lq.layers.QuantConv2D(8, 3, padding="same", use_bias=False, **b.conv_kwargs("first"))(x)
    h = tf.keras.layers.BatchNormalization()(h)
    h = lq.layers.QuantConv2D(8, 3, padding="same", use_bias=False, **b.conv_kwargs("hidden"))(h)
    h = tf.keras.layers.BatchNormalization()(h)
    h = tf.keras.layers.Flatten()(h)
    h = lq.layers.QuantDense(16, **b.dense_kwargs("hidden"))(h)
    h = tf.keras.layers.BatchNormalization()(h)
    return tf.keras.Model(x, lq.layers.QuantDense(10, **b.dense_kwargs("last"))(h))


def test_auto_records_its_decision_and_seeds_reuse_it(tmp_path):
    spec = ExperimentSpec(name="auto", seeds=[0, 1], **TINY)
    assert spec.xla == "auto"  # the default
    first = experiment.run(spec, 0, tmp_path, save_model=False)
    assert first.status == "ok", first.error
    decision = first.execution
    assert decision["requested"] == "auto" and decision["reason"].startswith("measured")
    assert decision["mode"] == ("on" if first.jit_compile else "off")
    off = decision["timings"]["off"]
    assert off["seconds_per_step"] > 0 and off["first_step_s"] > 0 and len(off["step_seconds"]) >= 3
    assert decision["total_steps"] == -(-lqbench.data.info("digits").sizes["train"] // 64)  # 1 epoch
    # the choice follows the recorded estimates
    totals = {m: t["estimated_total_s"] for m, t in decision["timings"].items()}
    assert decision["mode"] == min(totals, key=totals.get)
    on_disk = json.loads((experiment.run_dir(spec, 0, tmp_path) / "result.json").read_text())
    assert on_disk["execution"]["mode"] == decision["mode"]
    assert (tmp_path / execution.CACHE_FILE).exists()
    second = experiment.run(spec, 1, tmp_path, save_model=False)
    assert second.execution["reason"].startswith("cached")
    assert second.execution["configuration"] == decision["configuration"]
    assert second.execution["timings"]["off"]["step_seconds"] == off["step_seconds"]


def test_auto_measures_both_modes_for_long_runs_and_picks_the_faster():
    trainer = algorithms.build("bp", _small_cnn())
    before = [w.copy() for w in trainer.get_weights()]
    decision = execution.decide("auto", trainer, batch_shape=(32, 8, 8, 1), num_classes=10, total_steps=10**6,
                                min_steps=2, max_steps=3)
    assert decision.reason == "measured" and set(decision.timings) == {"on", "off"}
    assert all(len(t["step_seconds"]) >= 2 for t in decision.timings.values())
    totals = {m: t["estimated_total_s"] for m, t in decision.timings.items()}
    assert decision.mode == min(totals, key=totals.get)
    for a, b in zip(before, trainer.get_weights()):  # measuring does not train the model
        np.testing.assert_array_equal(a, b)


def test_explicit_modes_and_unsupported_cases_do_not_measure():
    trainer = algorithms.build("bp", _small_cnn())
    assert execution.decide("on", trainer, batch_shape=(8, 8, 8, 1)).jit_compile is True
    off = execution.decide(False, trainer, batch_shape=(8, 8, 8, 1))
    assert off.jit_compile is False and off.reason == "requested" and off.timings == {}

    class NoXla(tf.keras.Model):
        supports_xla = False

    no = execution.decide("auto", NoXla(), batch_shape=(8, 8, 8, 1), num_classes=10)
    assert no.jit_compile is False and "no XLA support" in no.reason


@pytest.mark.parametrize("algorithm", ["bp", "dfa", "drtp", "hsic", "sigprop"])
def test_xla_and_graph_mode_give_the_same_first_update(algorithm):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 10, 32).astype("int32")
    updates = {}
    for jit in (False, True):
        trainer = algorithms.build(algorithm, _small_cnn(), seed=0)
        # SGD: the update is linear in the gradient (Adam's first step is lr * sign(g), which
        # flips on gradients at rounding level)
        trainer.compile(tf.keras.optimizers.legacy.SGD(0.1), jit_compile=jit)
        before = [w.copy() for w in trainer.model.get_weights()]
        trainer.train_on_batch(x, y)
        updates[jit] = [a - b for a, b in zip(trainer.model.get_weights(), before)]
    assert any(np.abs(u).max() > 1e-4 for u in updates[False])  # something was trained
    for graph, xla in zip(updates[False], updates[True]):
        np.testing.assert_allclose(xla, graph, rtol=1e-3, atol=2e-5)


def test_spec_field_cli_flags_and_legacy_jit_compile():
    assert ExperimentSpec(xla=False).xla == "off" and ExperimentSpec(xla=True).xla == "on"
    assert ExperimentSpec.from_dict({"jit_compile": False}).xla == "off"  # specs written before `xla`
    with pytest.raises(SpecError, match="xla: unknown value 'fast'; allowed: auto, on, off"):
        ExperimentSpec(xla="fast")
    import argparse

    parser = argparse.ArgumentParser()
    _spec_args.add_spec_arguments(parser)
    for argv, mode in ([[], "auto"], [["--no-xla"], "off"], [["--xla"], "on"], [["--xla", "off"], "off"],
                       [["--xla", "auto"], "auto"]):
        assert _spec_args.spec_from_arguments(parser.parse_args(argv)).xla == mode
    with pytest.raises(SystemExit):
        parser.parse_args(["--xla", "fast"])
    assert parser.parse_args(["--threads", "1"]).threads == 1
    with pytest.raises(ValueError, match="threads: -1 must be a non-negative integer"):
        execution.configure_threads(-1)
    with pytest.raises(ValueError, match="xla: 'fast' is not an execution mode; allowed: auto, on, off"):
        execution.parse_mode("fast")
