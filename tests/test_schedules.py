"""lqbench.schedules: values vs closed forms, serialisation, errors."""
import lqbench  # noqa: F401

import numpy as np
import pytest
import tensorflow as tf

from lqbench import schedules


def test_constant_is_a_float():
    assert schedules.build("constant", 0.1, 100) == 0.1


def test_linear_decays_to_zero():
    s = schedules.build("linear", 0.2, 10)
    values = [schedules.value(s, t) for t in (0, 5, 10, 15)]
    np.testing.assert_allclose(values, [0.2, 0.1, 0.0, 0.0], atol=1e-7)


def test_cosine_matches_formula():
    s = schedules.build("cosine", 1.0, 8)
    for t in (0, 2, 4, 8):
        assert schedules.value(s, t) == pytest.approx(0.5 * (1 + np.cos(np.pi * t / 8)), abs=1e-6)


def test_step_fraction_and_epoch_boundaries():
    s = schedules.build("step", 1.0, 100, boundaries=(0.5, 0.75), factor=0.1)
    np.testing.assert_allclose([schedules.value(s, t) for t in (0, 49, 50, 74, 75, 99)],
                               [1, 1, 0.1, 0.1, 0.01, 0.01], rtol=1e-6)
    s = schedules.build("step", 1.0, 100, boundaries=(2, 4), factor=0.5, unit="epoch", steps_per_epoch=10)
    np.testing.assert_allclose([schedules.value(s, t) for t in (19, 20, 39, 40)], [1, 0.5, 0.5, 0.25])


@pytest.mark.parametrize("name", ["linear", "step", "cosine"])
def test_schedules_serialise(name):
    s = schedules.build(name, 0.3, 20)
    clone = tf.keras.optimizers.schedules.deserialize(tf.keras.optimizers.schedules.serialize(s))
    for t in (0, 7, 19):
        assert schedules.value(clone, t) == pytest.approx(schedules.value(s, t))


@pytest.mark.parametrize("args, match", [
    (("nope", 0.1, 10), "unknown schedule 'nope'"),
    (("linear", -0.1, 10), "learning_rate=-0.1"),
    (("linear", 0.1, 0), "total_steps=0"),
])
def test_errors(args, match):
    with pytest.raises(ValueError, match=match):
        schedules.build(*args)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        schedules.build("step", 0.1, 10, boundaries=(2,), unit="epoch")


def test_available():
    assert schedules.available() == ["constant", "cosine", "linear", "step"]
