"""lqbench.distillation: ReActNet's distributional loss, with every training algorithm (issue #15)."""
import lqbench  # noqa: F401

import json

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from lqbench import algorithms, cli, distillation, recipes
from lqbench.errors import LqbenchError
from lqbench.spec import ExperimentSpec

ALPHA, TEMPERATURE, CE_WEIGHT, LR = 0.7, 2.0, 0.5, 0.5


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _softmax(z):
    return np.exp(_log_softmax(z))


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_distribution_loss_matches_numpy(temperature):
    rng = np.random.default_rng(0)
    zt, zs = rng.normal(size=(5, 7)).astype("float32"), rng.normal(size=(5, 7)).astype("float32")
    pt = np.exp(_log_softmax(zt / temperature))
    per_sample = -np.sum(pt * _log_softmax(zs / temperature), -1)
    got = distillation.distribution_loss(tf.constant(zt), tf.constant(zs), temperature)
    assert float(got) == pytest.approx(temperature**2 * per_sample.mean(), rel=1e-5)
    w = rng.uniform(0, 2, size=5).astype("float32")  # Keras's SUM_OVER_BATCH_SIZE: sum(w l) / B
    got = distillation.distribution_loss(tf.constant(zt), tf.constant(zs), temperature, sample_weight=w)
    assert float(got) == pytest.approx(temperature**2 * np.sum(w * per_sample) / 5, rel=1e-5)


def test_teacher_gets_no_gradient():
    zt, zs = tf.Variable(tf.ones((2, 3))), tf.Variable(tf.zeros((2, 3)))
    with tf.GradientTape() as tape:
        loss = distillation.distribution_loss(zt, zs)
    gt, gs = tape.gradient(loss, [zt, zs])
    assert gt is None and np.abs(gs.numpy()).sum() > 0


def _mlp(width, seed, binary=False, batch_norm=True, classes=3):
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input((6,))
    x = lq.layers.QuantDense(width, name="h1")(inputs)
    kw = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign") if binary else {}
    x = tf.keras.layers.BatchNormalization()(x) if batch_norm else tf.keras.layers.Activation("tanh")(x)
    x = lq.layers.QuantDense(width, name="h2", **kw)(x)
    return tf.keras.Model(inputs, lq.layers.QuantDense(classes, name="out")(x))


def _tanh_net(seed):
    """x(6) -> h1 (5) -> tanh -> out (3): the output layer's input is h = tanh(x W1 + b1)."""
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input((6,))
    h = tf.keras.layers.Activation("tanh", name="act")(lq.layers.QuantDense(5, name="h1")(inputs))
    return tf.keras.Model(inputs, lq.layers.QuantDense(3, name="out")(h))


def _data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)).astype("float32"), rng.integers(0, 3, n)


def _step(name, x, y, teacher=None):
    """One SGD step of algorithm ``name`` on a fresh `_tanh_net` (seed 1); returns (model, weights before, metrics)."""
    model = _tanh_net(1)
    distill = None if teacher is None else distillation.Distillation(teacher, ALPHA, TEMPERATURE, CE_WEIGHT)
    trainer = algorithms.build(name, model, seed=3, distillation=distill)
    trainer.compile(tf.keras.optimizers.legacy.SGD(LR), run_eagerly=True)
    before = {layer: [w.copy() for w in model.get_layer(layer).get_weights()] for layer in ("h1", "out")}
    logs = trainer.train_on_batch(x, y, return_dict=True)
    return model, before, logs


@pytest.mark.parametrize("name", algorithms.available())
def test_every_algorithm_trains_its_output_on_the_distillation_loss(name):
    x, y = _data()
    teacher = _tanh_net(0)
    zt = teacher(x, training=False).numpy().astype(np.float64)
    model, before, logs = _step(name, x, y, teacher)
    plain, plain_before, _ = _step(name, x, y)
    w1, b1 = (w.astype(np.float64) for w in before["h1"])
    w3, b3 = (w.astype(np.float64) for w in before["out"])
    h = np.tanh(x.astype(np.float64) @ w1 + b1)
    z = h @ w3 + b3
    onehot = np.eye(3)[y]
    # the output loss, by hand: w_CE CE + alpha T^2 mean KL-part, and its gradient in z
    kd = -TEMPERATURE**2 * np.mean(np.sum(_softmax(zt / TEMPERATURE) * _log_softmax(z / TEMPERATURE), -1))
    ce = -np.mean(np.sum(onehot * _log_softmax(z), -1))
    assert logs["kd_loss"] == pytest.approx(kd, rel=1e-5)
    assert logs["loss"] == pytest.approx(ce, rel=1e-5)  # the loss metric stays the compiled loss
    grad_z = (CE_WEIGHT * (_softmax(z) - onehot)
              + ALPHA * TEMPERATURE * (_softmax(z / TEMPERATURE) - _softmax(zt / TEMPERATURE))) / len(x)
    w3_after, b3_after = model.get_layer("out").get_weights()
    np.testing.assert_allclose(w3_after - w3, -LR * h.T @ grad_z, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(b3_after - b3, -LR * grad_z.sum(0), rtol=1e-4, atol=1e-6)
    # without distillation the same step is a different update
    for a, b in zip(plain_before["out"], before["out"]):
        np.testing.assert_array_equal(a, b)
    assert np.abs(plain.get_layer("out").get_weights()[0] - w3_after).max() > 1e-4
    # hidden layers: BP, DFA and SigpropTL carry the distillation error there; DRTP and HSIC keep
    # their label-based signals, so their hidden update does not change
    hidden = np.abs(plain.get_layer("h1").get_weights()[0] - model.get_layer("h1").get_weights()[0]).max()
    if name in ("bp", "dfa", "sigprop"):
        assert hidden > 1e-5
    else:
        assert hidden == 0.0
    assert np.abs(model.get_layer("h1").get_weights()[0] - w1).max() > 0  # the hidden layer did train


def test_distilling_steps_compile_with_xla_and_equal_eager():
    x, y = _data()
    teacher = _tanh_net(0)
    for name in algorithms.available():
        weights = []
        for mode in ({"run_eagerly": True}, {"jit_compile": True}):
            model = _tanh_net(1)
            trainer = algorithms.build(name, model, seed=3, distillation=distillation.Distillation(
                teacher, ALPHA, TEMPERATURE, CE_WEIGHT))
            trainer.compile(tf.keras.optimizers.legacy.SGD(LR), **mode)
            trainer.train_on_batch(x, y)
            weights.append(model.get_weights())
        for eager, xla in zip(*weights):
            np.testing.assert_allclose(xla, eager, rtol=1e-5, atol=1e-6, err_msg=name)


def test_bp_distillation_equals_the_earlier_distiller_update():
    """The update of the removed ``Distiller`` (one tape over alpha KD + w_CE CE + layer losses of the
    student in training mode, teacher frozen in inference mode), by hand."""
    x, y = _data(16, 4)
    teacher = _mlp(16, 0, classes=3)
    reference, student = _mlp(8, 1, binary=True), _mlp(8, 1, binary=True)
    teacher_before = [w.copy() for w in teacher.get_weights()]
    zt = tf.constant(teacher(x, training=False))
    with tf.GradientTape() as tape:
        z = reference(x, training=True)
        target = tf.nn.softmax(zt / TEMPERATURE)
        kd = -TEMPERATURE**2 * tf.reduce_mean(tf.reduce_sum(target * tf.nn.log_softmax(z / TEMPERATURE), -1))
        ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.constant(y), z))
        loss = ALPHA * kd + CE_WEIGHT * ce
    grads = tape.gradient(loss, reference.trainable_variables)
    for g, v in zip(grads, reference.trainable_variables):
        v.assign_sub(LR * g)
    trainer = algorithms.build("bp", student, distillation=distillation.Distillation(teacher, ALPHA, TEMPERATURE,
                                                                                   CE_WEIGHT))
    trainer.compile(tf.keras.optimizers.legacy.SGD(LR))  # graph mode, as fit runs it
    trainer.train_on_batch(x, y)
    for got, want in zip(student.get_weights(), reference.get_weights(), strict=True):  # BN statistics too
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for a, b in zip(teacher.get_weights(), teacher_before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["bp", "drtp"])
def test_distillation_trains_student_towards_teacher_and_leaves_teacher_unchanged(name):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(128, 6)).astype("float32")
    teacher = _mlp(16, 0)
    y = np.argmax(teacher.predict(x, verbose=0), -1)
    teacher_weights = [w.copy() for w in teacher.get_weights()]
    student = _mlp(16, 1, binary=True)
    trainer = algorithms.build(name, student, distillation=distillation.Distillation(teacher, alpha=1.0))
    before = distillation.distribution_loss(teacher(x), student(x)).numpy()
    history = recipes.fit(trainer, (x, y), epochs=6, optimizer="bop", learning_rate=1e-2, verbose=0,
                          jit_compile=False, hparams={"batch_size": 32, "gamma": 1e-3, "threshold": 1e-6})
    after = distillation.distribution_loss(teacher(x), student(x)).numpy()
    assert after < before
    assert "kd_loss" in history.history
    for a, b in zip(teacher.get_weights(), teacher_weights):
        np.testing.assert_array_equal(a, b)
    assert set(np.unique(student.get_layer("h2").kernel.latent_variable.numpy())) <= {-1.0, 1.0}


def test_bad_weights_and_mismatched_teachers():
    with pytest.raises(ValueError, match="alpha=-1"):
        distillation.Distillation(_mlp(4, 0), alpha=-1)
    with pytest.raises(TypeError, match="ce_weight=True"):
        distillation.Distillation(_mlp(4, 0), ce_weight=True)
    with pytest.raises(ValueError, match="nothing to train on"):
        distillation.Distillation(_mlp(4, 0), alpha=0.0)
    with pytest.raises(ValueError, match="temperature=0"):
        distillation.Distillation(_mlp(4, 0), temperature=0)
    with pytest.raises(LqbenchError, match="outputs 4 logits, the model 3"):
        algorithms.build("dfa", _mlp(4, 0), distillation=distillation.Distillation(_mlp(4, 1, classes=4)))
    with pytest.raises(LqbenchError, match="must be an lqbench.distillation.Distillation"):
        algorithms.build("bp", _mlp(4, 0), distillation={"teacher": "x"})


@pytest.mark.parametrize("name", algorithms.available())
def test_algorithm_with_distillation_round_trips_get_config_and_weights(name, tmp_path):
    x, y = _data()
    teacher = _tanh_net(0)
    trainer = algorithms.build(name, _tanh_net(1), seed=2,
                               distillation=distillation.Distillation(teacher, 0.7, 3.0, 0.3))
    config = trainer.get_config()
    json.dumps(config)  # plain data
    clone = type(trainer).from_config(config)
    assert isinstance(clone.distillation, distillation.Distillation)
    assert (clone.distillation.alpha, clone.distillation.temperature, clone.distillation.ce_weight) == (0.7, 3.0, 0.3)
    rebuilt = clone.distillation.teacher
    assert [(l.name, type(l)) for l in rebuilt.layers] == [(l.name, type(l)) for l in teacher.layers]
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in teacher.weights] and not rebuilt.trainable
    assert "distillation" not in algorithms.build(name, _tanh_net(1)).get_config()  # earlier configs unchanged
    clone(x[:1])
    trainer.save_weights(str(tmp_path / "ckpt"))
    clone.load_weights(str(tmp_path / "ckpt"))  # the teacher is tracked: its weights come back too
    for a, b in zip(clone.distillation.teacher.get_weights(), teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(clone.predict(x, verbose=0), trainer.predict(x, verbose=0), rtol=1e-6)


def test_spec_accepts_distillation_with_every_algorithm_and_rejects_bad_values_in_one_line():
    for name in algorithms.available():
        spec = ExperimentSpec(algorithm=name, distillation={"teacher": __file__, "alpha": 0.5})
        assert ExperimentSpec.from_toml(spec.to_toml()) == spec
    for table, fragment in [({"teacher": __file__, "alpha": -1.0}, "alpha"),
                            ({"teacher": __file__, "temperature": 0.0}, "temperature"),
                            ({"teacher": __file__, "alpha": 0.0}, "nothing to train on")]:
        with pytest.raises(LqbenchError) as error:
            ExperimentSpec(algorithm="drtp", distillation=table)
        message = str(error.value)
        assert "distillation" in message and fragment in message and "\n" not in message


def test_command_line_trains_drtp_with_a_teacher(tmp_path, capsys):
    teacher = lqbench.models.build("binarynet_mlp", (8, 8, 1), 10, lqbench.Binarization.full_precision(),
                                   hidden_units=[8, 8])
    path = tmp_path / "teacher.keras"
    teacher.save(path)
    output = tmp_path / "out"
    assert cli.main(["train", "--algorithm", "drtp", "--distill-teacher", str(path), "--distill-alpha", "0.5",
                     "--distill-ce-weight", "1", "--set", "model_args.hidden_units=[8,8]", "--epochs", "1",
                     "--batch-size", "256", "--xla", "off", "--in-process", "--output", str(output)]) == 0
    results = list(output.rglob("result.json"))
    assert len(results) == 1
    result = json.loads(results[0].read_text())
    assert result["status"] == "ok" and result["spec"]["algorithm"] == "drtp"
    assert result["spec"]["distillation"] == {"teacher": str(path), "alpha": 0.5, "ce_weight": 1.0}
    assert result["teacher_source"]["path"] == str(path.absolute())
    assert np.isfinite(result["history"]["kd_loss"][0])
