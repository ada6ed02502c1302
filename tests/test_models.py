"""Tests of the model zoo (`lqbench.models`): every model, every binarization, one training step."""
import io
import itertools

import lqbench  # noqa: F401  (selects tf-keras before TensorFlow)

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from lqbench import Binarization, estimators
from lqbench import models

# Tiny configurations: (input shape, architecture arguments).
SMALL = {
    "lenet": ((16, 16, 3), {}),
    "binarynet_mlp": ((8, 8, 1), {"hidden_units": (32, 32)}),
    "binarynet_cnn": ((16, 16, 3), {"width_multiplier": 1 / 16, "dense_units": (32, 32)}),
    "vgg_small": ((16, 16, 3), {"width_multiplier": 1 / 16}),
    "vgg19": ((32, 32, 3), {"width_multiplier": 1 / 16, "dense_units": (32, 32)}),
    "resnet20": ((16, 16, 3), {"depth": 8, "width": 8}),
    "reactnet_a": ((32, 32, 3), {"width_multiplier": 0.25}),
    "mobilenet_v2": ((32, 32, 3), {"width_multiplier": 0.35}),
    "mlp_mixer": ((16, 16, 3), {"preset": "small", "hidden_dim": 16, "depth": 2, "tokens_mlp_dim": 16,
                                "channels_mlp_dim": 16}),
}
WITH_SKIPS = {"resnet20", "reactnet_a", "mobilenet_v2", "mlp_mixer"}
CLASSES = 5
BATCH = 4


def _cases():
    for name in SMALL:
        for weights, activations in itertools.product((True, False), repeat=2):
            for skip in ((True, False) if name in WITH_SKIPS else (True,)):
                yield pytest.param(name, weights, activations, skip,
                                   id=f"{name}-W{1 if weights else 32}A{1 if activations else 32}-{'skip' if skip else 'noskip'}")


def _input_quantizer(layer):
    return getattr(layer, "input_quantizer", None)


def _check_quantizers(model, b: Binarization):
    roles = models.weight_layer_roles(model)
    assert roles[0][1] == "first" and roles[-1][1] == "last"
    for layer, role in roles:
        kernel_q = models.utils.kernel_quantizer_of(layer)
        input_q = _input_quantizer(layer)
        assert isinstance(layer, (lq.layers.QuantConv2D, lq.layers.QuantDense, lq.layers.QuantDepthwiseConv2D)), layer
        if role in ("first", "last", "float"):
            assert kernel_q is None, f"{layer.name} ({role}) has a kernel quantizer"
        else:
            assert (kernel_q is not None) == b.weights, f"{layer.name}: kernel quantizer {kernel_q}"
            if b.weights:
                assert models.has_binary_kernel(layer)
        if role in ("first", "float"):
            assert input_q is None, f"{layer.name} ({role}) has an input quantizer"
        else:
            assert (input_q is not None) == b.activations, f"{layer.name}: input quantizer {input_q}"
        if isinstance(layer, (lq.layers.QuantConv2D, lq.layers.QuantDepthwiseConv2D)) and layer.padding == "same":
            assert layer.pad_values == (1.0 if input_q is not None else 0.0), layer.name


@pytest.mark.parametrize("name,weights,activations,skip", list(_cases()))
def test_every_model_builds_and_trains(name, weights, activations, skip):
    shape, kwargs = SMALL[name]
    b = Binarization(weights=weights, activations=activations)
    model = models.build(name, shape, CLASSES, binarization=b, skip_connections=skip, **kwargs)
    _check_quantizers(model, b)
    # Flat: no nested models.
    assert not any(isinstance(layer, tf.keras.Model) for layer in model.layers)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, *shape)).astype("float32")
    y = rng.integers(0, CLASSES, size=(BATCH,))
    # Eager: tracing a graph costs 10-100 s per model on this 2-core machine (tf-keras internals go
    # through AutoGraph); `test_graph_and_xla_training_step` covers compiled training.
    model.compile(optimizer=tf.keras.optimizers.legacy.Adam(1e-3),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True)
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    out = model(x, training=False)
    assert out.shape == (BATCH, CLASSES)
    assert np.all(np.isfinite(out.numpy()))


def test_available_lists_the_papers_models():
    assert set(models.available()) >= set(SMALL)


def test_keep_first_last_false_binarizes_first_and_last():
    b = Binarization(keep_first_last=False)
    model = models.build("lenet", (16, 16, 3), CLASSES, b)
    roles = models.weight_layer_roles(model)
    assert all(models.has_binary_kernel(layer) for layer, _ in roles)
    assert _input_quantizer(roles[0][0]) is None  # the image is never signed


def test_paper_000_parameter_counts():
    """Table 2 of paper 000 at 224x224x3 and 10 classes (trainable parameters, torchvision-style)."""
    expected = {"mobilenet_v2": 2_236_682, "mlp_mixer": 7_279_098, "vgg19": 139_622_218}
    for name, count in expected.items():
        model = models.build(name, (224, 224, 3), 10, Binarization())
        trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
        assert trainable == count, name
        del model
        tf.keras.backend.clear_session()


def _conv_params(cin, cout, k):
    return cin * cout * k * k


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({}, _conv_params(3, 6, 5) + _conv_params(6, 16, 5)),  # 2,850 (003 §3.3)
        ({"extra_conv_layers": 1}, 2850 + _conv_params(6, 6, 5)),  # 3,750 (Table 2)
        ({"kernel_size": 3}, _conv_params(3, 6, 3) + _conv_params(6, 16, 3)),  # 1,026
        ({"kernel_size": 3, "extra_conv_layers": 1}, 1026 + _conv_params(6, 6, 3)),  # 1,350
        ({"filters": (64, 256)}, _conv_params(3, 64, 5) + _conv_params(64, 256, 5)),  # 414,400
        ({"extra_conv_layers": 50}, 2850 + 50 * 900),  # 47,850
    ],
)
def test_lenet_conv_footprint_matches_paper_003(kwargs, expected):
    binary = models.build("lenet", (32, 32, 3), 10, Binarization(keep_first_last=False), binarize_dense=False, **kwargs)
    assert models.memory_footprint_bits(binary, kinds=("conv",)) == expected
    if not kwargs:
        assert expected == 2850
        float_model = models.build("lenet", (32, 32, 3), 10, Binarization.full_precision())
        assert models.memory_footprint_bits(float_model, kinds=("conv",)) == 91_200
        # The linear layers stay real in 003's binary base model.
        assert [models.has_binary_kernel(layer) for layer in models.weight_layers(binary)] == [True, True, False, False, False]


def test_memory_footprint_counts_against_formula():
    b = Binarization()  # first and last real, hidden binary
    model = models.build("lenet", (32, 32, 3), 10, b, batch_norm=True)
    kernels = {"conv1": 3 * 6 * 25, "conv2": 6 * 16 * 25, "fc1": 400 * 120, "fc2": 120 * 84, "classifier": 84 * 10}
    binary = {"conv2", "fc1", "fc2"}
    expected = sum(n * (1 if k in binary else 32) for k, n in kernels.items())
    assert models.memory_footprint_bits(model) == expected
    biases = 6 + 16 + 120 + 84 + 10
    assert models.memory_footprint_bits(model, include_bias=True) == expected + 32 * biases
    batch_norm = 2 * (6 + 16)  # scale and offset per channel after folding
    assert models.memory_footprint_bits(model, include_bias=True, include_other=True) == expected + 32 * (
        biases + batch_norm
    )
    dense_only = sum(n * (1 if k in binary else 32) for k, n in kernels.items() if not k.startswith("conv"))
    assert models.memory_footprint_bits(model, kinds=("dense",)) == dense_only
    with pytest.raises(ValueError, match="unknown kind.*'pool'.*allowed: conv, depthwise, dense"):
        models.memory_footprint_bits(model, kinds=("pool",))


def test_summary_prints_footprint_and_notes():
    lines = []
    model = models.build("resnet20", (16, 16, 3), CLASSES, Binarization(), depth=8, width=8)
    models.summary(model, print_fn=lines.append)
    text = "\n".join(lines)
    assert f"{models.memory_footprint_bits(model):,} bits" in text
    assert "residual additions" in text
    assert "_down_conv_fp (float)" in text


@pytest.mark.parametrize("name", sorted(WITH_SKIPS))
def test_skip_connections_false_removes_add_ops(name):
    shape, kwargs = SMALL[name]

    def adds(model):
        return sum(isinstance(layer, tf.keras.layers.Add) for layer in model.layers)

    with_skips = models.build(name, shape, CLASSES, Binarization(), **kwargs)
    without = models.build(name, shape, CLASSES, Binarization(), skip_connections=False, **kwargs)
    assert adds(with_skips) > 0
    assert adds(without) == 0
    # Everything else unchanged: the same weight layers (Bi-Real's shortcut convs aside).
    def kernels(model):
        return [tuple(models.utils.kernel_of(l).shape) for l in models.weight_layers(model) if "_down_" not in l.name]

    assert kernels(with_skips) == kernels(without)


def test_resnet20_classic_has_he_et_al_parameter_count():
    model = models.build("resnet20", (32, 32, 3), 10, Binarization.full_precision(), variant="classic")
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    # He et al.: 0.27M. Independent count: convs + BN (2 per channel) + classifier.
    convs = 3 * 16 * 9 + sum(
        cin * cout * 9 + cout * cout * 9  # conv1 (cin -> cout) and conv2 (cout -> cout) of each block
        for cin, cout in [(16, 16)] * 3 + [(16, 32)] + [(32, 32)] * 2 + [(32, 64)] + [(64, 64)] * 2
    )
    bn = 2 * 16 + sum(2 * 2 * c for c in [16] * 3 + [32] * 3 + [64] * 3)
    assert trainable == convs + bn + 64 * 10 + 10
    assert 0.26e6 < trainable < 0.28e6


def test_vgg_small_parameter_count():
    """IR-Net VGG-small at 32x32: six convs, six BN, one linear layer ("over 4 million", 003 §3.4)."""
    model = models.build("vgg_small", (32, 32, 3), 10, Binarization())
    channels = [3, 128, 128, 256, 256, 512, 512]
    convs = sum(cin * cout * 9 for cin, cout in zip(channels[:-1], channels[1:]))
    bn = 2 * sum(channels[1:])
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    assert trainable == convs + bn + 512 * 4 * 4 * 10 + 10 == 4_660_106


def test_reactnet_a_imagenet_size():
    """ReActNet-A at ImageNet size: weight layers of the paper (1 stem, 26 binary, 1 classifier)."""
    model = models.build("reactnet_a", (64, 64, 3), 1000, Binarization())
    roles = [role for _, role in models.weight_layer_roles(model)]
    assert roles == ["first"] + ["hidden"] * 26 + ["last"]
    kernels = sum(int(np.prod(models.utils.kernel_of(l).shape)) for l in models.weight_layers(model))
    channels = [32, 64, 128, 128, 256, 256] + [512] * 6 + [1024, 1024]
    expected = 3 * 32 * 9 + sum(c * c * 9 + c * n for c, n in zip(channels[:-1], channels[1:])) + 1024 * 1000
    assert kernels == expected
    rsigns = estimators.quantizers_of(model, estimators.RSign)
    assert len(rsigns) == 26


def _randomize(model, rng):
    for weight in model.weights:
        shape = tuple(weight.shape)
        if "moving_variance" in weight.name:
            value = rng.uniform(0.5, 1.5, size=shape)
        else:
            value = rng.normal(scale=0.5, size=shape)
        weight.assign(value.astype("float32"))


@pytest.mark.parametrize(
    "name,shape,kwargs",
    [
        ("lenet", (16, 16, 3), {"batch_norm": True}),
        ("resnet20", (16, 16, 3), {"depth": 8, "width": 8}),
        ("mobilenet_v2", (32, 32, 3), {"width_multiplier": 0.35}),
    ],
)
def test_post_training_binarization_signs_the_trained_weights(name, shape, kwargs):
    rng = np.random.default_rng(1)
    float_model = models.build(name, shape, CLASSES, Binarization.full_precision(), **kwargs)
    _randomize(float_model, rng)
    b = Binarization(weights=True, activations=False)
    twin = models.binarize_post_training(float_model, name, shape, CLASSES, b, **kwargs)
    # Reference: the float model itself with every binarized kernel replaced by its sign.
    reference = models.build(name, shape, CLASSES, Binarization.full_precision(), **kwargs)
    reference.set_weights(float_model.get_weights())
    signed = 0
    for ref_layer, twin_layer in zip(models.weight_layers(reference), models.weight_layers(twin)):
        if models.has_binary_kernel(twin_layer):
            kernel = models.utils.kernel_of(ref_layer)
            kernel.assign(np.where(kernel.numpy() >= 0, 1.0, -1.0).astype("float32"))
            signed += 1
    assert signed > 0
    x = rng.normal(size=(BATCH, *shape)).astype("float32")
    np.testing.assert_allclose(twin(x, training=False), reference(x, training=False), rtol=1e-4, atol=1e-4)
    assert not np.allclose(twin(x, training=False), float_model(x, training=False), atol=1e-3)


def test_post_training_binarization_with_binary_activations_copies_everything():
    shape, kwargs = SMALL["reactnet_a"]
    rng = np.random.default_rng(2)
    float_model = models.build("reactnet_a", shape, CLASSES, Binarization.full_precision(), **kwargs)
    _randomize(float_model, rng)
    twin = models.binarize_post_training(float_model, "reactnet_a", shape, CLASSES, Binarization(), **kwargs)
    float_values = [w.numpy() for w in float_model.weights]
    twin_values = [w.numpy() for w in twin.weights if "threshold" not in w.name]
    assert len(float_values) == len(twin_values)
    for a, c in zip(float_values, twin_values):
        np.testing.assert_array_equal(a, c)
    thresholds = [w.numpy() for w in twin.weights if "threshold" in w.name]
    assert len(thresholds) == 26 and all(np.all(t == 0) for t in thresholds)
    # Binary activations: the hidden convolutions see only +-1 inputs.
    conv = twin.get_layer("block2_conv3x3")
    probe = tf.keras.Model(twin.input, conv.input)
    signed = conv.input_quantizer(probe(rng.normal(size=(2, *shape)).astype("float32")))
    assert set(np.unique(signed.numpy())) <= {-1.0, 1.0}


def test_post_training_binarization_rejects_mismatched_models():
    float_model = models.build("lenet", (16, 16, 3), CLASSES, Binarization.full_precision())
    with pytest.raises(ValueError, match="layers with weights"):
        models.binarize_post_training(float_model, "lenet", (16, 16, 3), CLASSES, Binarization(), extra_conv_layers=1)


def test_models_rebuild_from_config():
    x = np.random.default_rng(3).normal(size=(2, 32, 32, 3)).astype("float32")
    for name in ("resnet20", "mlp_mixer"):  # RSign: test_custom_layers_save_and_load
        shape, kwargs = SMALL[name]
        model = models.build(name, shape, CLASSES, Binarization(), **kwargs)
        clone = tf.keras.Model.from_config(model.get_config())
        clone.set_weights(model.get_weights())
        batch = x[:, : shape[0], : shape[1]]
        np.testing.assert_allclose(clone(batch, training=False), model(batch, training=False), rtol=1e-5, atol=1e-5)
    classic = models.build("resnet20", (16, 16, 3), CLASSES, Binarization(), variant="classic", depth=8, width=8)
    tf.keras.Model.from_config(classic.get_config())


def _tiny_custom_model(b):
    """Every custom piece of the zoo (shift, RSign, scale, RPReLU, zero-pad shortcut) in one small model."""
    inputs = tf.keras.Input((6, 6, 3))
    x = models._blocks.conv(inputs, 8, 3, binarization=b, role="first", name="stem")
    y = models.LearnableBias()(x)
    y = models._blocks.conv(y, 8, 3, binarization=b, role="hidden", name="conv",
                            input_quantizer=estimators.get("rsign"))
    y = models.ChannelScale()(y)
    y = models._blocks.batch_norm(y, "bn")
    y = models.RPReLU()(tf.keras.layers.Add()([x, y]))
    y = models.ZeroPadShortcut(16, 2)(y)
    outputs = models._blocks.dense(tf.keras.layers.GlobalAveragePooling2D()(y), CLASSES, binarization=b,
                                   role="last", name="classifier")
    return tf.keras.Model(inputs, outputs)


def test_custom_layers_save_and_load(tmp_path):
    """The saved-model path of lqbench.experiment: a .keras file, loaded with the zoo imported."""
    model = _tiny_custom_model(Binarization())
    rng = np.random.default_rng(5)
    for weight in model.weights:
        if "moving_variance" not in weight.name:
            weight.assign(rng.normal(scale=0.3, size=tuple(weight.shape)).astype("float32"))
    path = tmp_path / "tiny.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path, compile=False)
    x = rng.normal(size=(2, 6, 6, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), rtol=1e-5, atol=1e-5)
    assert len(estimators.quantizers_of(loaded, estimators.RSign)) == 1


def test_zero_pad_shortcut_matches_numpy():
    x = np.arange(2 * 4 * 4 * 3, dtype="float32").reshape(2, 4, 4, 3)
    y = models.ZeroPadShortcut(8, 2)(x).numpy()
    expected = np.pad(x[:, ::2, ::2, :], [(0, 0), (0, 0), (0, 0), (2, 3)])
    np.testing.assert_array_equal(y, expected)


def test_rprelu_matches_numpy():
    layer = models.RPReLU()
    x = np.linspace(-2, 2, 12, dtype="float32").reshape(1, 2, 2, 3)
    layer.build(x.shape)
    layer.set_weights([np.array([0.5, -0.5, 0.0], "float32"), np.array([0.1, 0.2, 0.3], "float32"),
                       np.array([1.0, 0.0, -1.0], "float32")])
    shifted = x - np.array([0.5, -0.5, 0.0])
    expected = np.where(shifted > 0, shifted, np.array([0.1, 0.2, 0.3]) * shifted) + np.array([1.0, 0.0, -1.0])
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-6)


def test_errors_name_the_bad_value_and_the_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown model 'resnet18'; available: lenet, .*mlp_mixer"):
        models.build("resnet18", (32, 32, 3), 10)
    with pytest.raises(ValueError, match=r"model 'lenet': unknown argument\(s\) depth; allowed: filters, kernel_size"):
        models.build("lenet", (32, 32, 3), 10, depth=3)
    with pytest.raises(ValueError, match=r"'vgg19' has no skip connections.*allowed for: resnet20, reactnet_a"):
        models.build("vgg19", (32, 32, 3), 10, skip_connections=False)
    with pytest.raises(ValueError, match=r"variant: unknown value 'resnet'; allowed: birealnet, classic"):
        models.build("resnet20", (32, 32, 3), 10, variant="resnet")
    with pytest.raises(ValueError, match=r"needs an image input_shape"):
        models.build("vgg_small", (784,), 10)
    with pytest.raises(ValueError, match=r"not divisible by patch_size 16"):
        models.build("mlp_mixer", (28, 28, 1), 10)
    with pytest.raises(ValueError, match=r"preset: unknown value 'huge'; allowed: paper, small"):
        models.build("mlp_mixer", (32, 32, 3), 10, preset="huge")
    with pytest.raises(ValueError, match=r"'classic' has no channel_scale"):
        models.build("resnet20", (32, 32, 3), 10, variant="classic", channel_scale=False)
    with pytest.raises(ValueError, match="num_classes must be an integer > 0, got 0"):
        models.build("lenet", (32, 32, 3), 0)


def test_default_binarization_is_fully_binary():
    model = models.build("binarynet_mlp", (28, 28), 10, hidden_units=(16, 16))
    hidden = [layer for layer, role in models.weight_layer_roles(model) if role == "hidden"]
    assert hidden and all(models.has_binary_kernel(layer) and layer.input_quantizer is not None for layer in hidden)
    assert model.output_shape == (None, 10)


def test_custom_layers_train_under_xla():
    """XLA (lqbench's default) compiles the zoo's custom layers and RSign, forward and backward."""
    model = _tiny_custom_model(Binarization(activation_estimator="approx_sign"))
    rng = np.random.default_rng(4)
    x_batch = tf.constant(rng.normal(size=(8, 6, 6, 3)).astype("float32"))
    y_batch = tf.constant(rng.integers(0, CLASSES, size=(8,)))
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(jit_compile=True, autograph=False)
    def step(x_batch, y_batch):
        with tf.GradientTape() as tape:
            loss = loss_fn(y_batch, model(x_batch, training=True))
        return loss, tape.gradient(loss, model.trainable_weights)

    loss, grads = step(x_batch, y_batch)
    assert np.isfinite(loss.numpy())
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)
    names = [w.name for w, g in zip(model.trainable_weights, grads) if np.any(g.numpy() != 0)]
    for expected in ("threshold", "learnable_bias", "channel_scale", "shift_in", "alpha", "shift_out"):
        assert any(expected in name for name in names), (expected, names)


def _binary_input_names(model):
    return {layer.name for layer in models.binary_input_layers(model)}


def test_inputs_activations_keeps_inputs_without_activation_real():
    """Issue 14 item 1: with inputs="activations" only what follows an activation function is signed."""
    shape, kwargs = SMALL["mobilenet_v2"]
    all_model = models.build("mobilenet_v2", shape, CLASSES, Binarization(), **kwargs)
    act_model = models.build("mobilenet_v2", shape, CLASSES, Binarization(inputs="activations"), **kwargs)
    names = [layer.name for layer in models.weight_layers(act_model)]
    assert _binary_input_names(all_model) == set(names) - {"stem_conv"}
    binary = _binary_input_names(act_model)
    expand = [n for n in names if n.endswith("_expand")]
    assert expand and not binary & set(expand)  # linear bottleneck (+ skip) feeds the expansion
    assert "head_conv" not in binary and "classifier" not in binary  # no activation before them
    assert {n for n in names if n.endswith("_depthwise") or n.endswith("_project")} <= binary
    assert not any(getattr(layer, "input_quantizer", None) for layer in models.weight_layers(act_model))
    lines = []  # what `lqbench models mobilenet_v2 --inputs activations` prints
    models.summary(act_model, print_fn=lines.append)
    shown = next(line for line in lines if line.startswith("binary inputs:"))
    real = shown.split("real inputs: ")[1].split(", ")
    assert shown.startswith(f"binary inputs: {len(binary)} of {len(names)} weight layers")
    assert set(real) == set(names) - binary and {"head_conv", "classifier", *expand} <= set(real)

    shape, kwargs = SMALL["mlp_mixer"]
    mixer = models.build("mlp_mixer", shape, CLASSES, Binarization(inputs="activations"), **kwargs)
    binary = _binary_input_names(mixer)
    fc1 = [layer.name for layer in models.weight_layers(mixer) if layer.name.endswith("_fc1")]
    fc2 = [layer.name for layer in models.weight_layers(mixer) if layer.name.endswith("_fc2")]
    assert fc1 and not binary & set(fc1)  # fc1 reads LayerNorm
    assert set(fc2) <= binary and "classifier" not in binary


def test_inputs_activations_signs_the_residual_stream_and_pools_signs():
    """ResNet (classic): the ReLU after the addition becomes the sign, so the classifier reads mean(sign)."""
    b = Binarization(inputs="activations")
    model = models.build("resnet20", (8, 8, 3), CLASSES, b, depth=8, width=4, variant="classic")
    last_sign = model.get_layer("stage3_block1_relu2_sign")
    probe = tf.keras.Model(model.inputs, [last_sign.output, model.get_layer("classifier").input])
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    signs, pooled = (t.numpy() for t in probe(x, training=False))
    assert set(np.unique(signs)) <= {-1.0, 1.0}
    np.testing.assert_allclose(pooled, signs.mean(axis=(1, 2)), atol=1e-6)
    assert "classifier" not in _binary_input_names(model)
    with pytest.raises(ValueError, match="inputs='activations'"):
        models.build("resnet20", (8, 8, 3), CLASSES, b, depth=8, width=4)


def test_pad_values_zero_reaches_binary_convolutions():
    """Issue 14 item 15: zero padding of binary-input convolutions on request, +1 by default."""
    shape, kwargs = SMALL["vgg_small"]
    for pad in (0.0, 1.0):
        model = models.build("vgg_small", shape, CLASSES, Binarization(pad_values=pad), **kwargs)
        convs = [layer for layer in models.weight_layers(model) if isinstance(layer, lq.layers.QuantConv2D)]
        assert [layer.pad_values for layer in convs] == [0.0] + [pad] * (len(convs) - 1)
    conv = models.build("vgg_small", shape, CLASSES, Binarization(pad_values=0.0), **kwargs).get_layer("conv2")
    ones = tf.ones((1, 4, 4, conv.input_shape[-1]))
    out = conv(ones).numpy()
    # with zero padding a corner sees 4 of 9 taps, the centre all 9: the sums differ
    kernel = np.sign(conv.kernel.numpy()) + (conv.kernel.numpy() == 0)
    np.testing.assert_allclose(out[0, 0, 0], kernel[1:, 1:].sum(axis=(0, 1, 2)), rtol=1e-5)


@pytest.mark.parametrize("name", ["vgg_small", "binarynet_cnn"])
def test_block_orders_are_equal_forward_and_reorder_layers(name):
    """Issue 14 item 15: conv->BN->pool (LCE), conv->pool->BN (papers), conv->BN->act->pool (torchvision)."""
    shape, kwargs = SMALL[name]
    built = {}
    for order in models._blocks.BLOCK_ORDERS:
        # zero padding everywhere: convolutions after a sign layer have no input quantizer and pad 0
        b = Binarization(inputs="activations" if order == "conv_bn_act_pool" else "all", pad_values=0.0)
        built[order] = models.build(name, shape, CLASSES, b, block_order=order, **kwargs)
    layer_names = {order: [layer.name for layer in m.layers] for order, m in built.items()}
    pool_bn = layer_names["conv_pool_bn_act"]
    assert pool_bn.index("conv2_pool") < pool_bn.index("conv2_bn")
    bn_pool = layer_names["conv_bn_pool_act"]
    assert bn_pool.index("conv2_bn") < bn_pool.index("conv2_pool")
    act_pool = layer_names["conv_bn_act_pool"]
    assert act_pool.index("conv2_hard_tanh_sign") < act_pool.index("conv2_pool")
    # same weights (BN at its initial positive scale, eval mode): the forward passes agree
    reference = built["conv_bn_pool_act"]
    for model in built.values():
        for layer in model.layers:
            if layer.weights:
                layer.set_weights(reference.get_layer(layer.name).get_weights())
    x = np.random.default_rng(1).normal(size=(3, *shape)).astype("float32")
    expected = reference(x, training=False).numpy()
    for order, model in built.items():
        np.testing.assert_allclose(model(x, training=False).numpy(), expected, rtol=1e-5, atol=1e-5, err_msg=order)
    with pytest.raises(ValueError, match="block_order: unknown value 'x'"):
        models.build(name, shape, CLASSES, Binarization(), block_order="x", **kwargs)


def test_lenet_torch_initializer_is_pytorchs_default():
    """Paper 003's code starts from PyTorch's default U(+-1/sqrt(fan_in)); with binary kernels Keras's
    Glorot start diverged at the paper's learning rate (issue #18)."""
    import numpy as np

    import lqbench.models as models

    b = lqbench.Binarization(activations=False, keep_first_last=False)
    model = models.build("lenet", (32, 32, 3), 10, b, skip_connections=True, binarize_dense=False, initializer="torch")
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        bound = 1 / np.sqrt(np.prod(kernel.shape[:-1]))
        values = kernel.numpy()
        assert np.abs(values).max() <= bound and np.abs(values).max() > 0.9 * bound, layer.name
        assert abs(values.std() - bound / np.sqrt(3)) < 0.15 * bound / np.sqrt(3), layer.name
    with pytest.raises(ValueError, match="initializer"):
        models.build("lenet", (32, 32, 3), 10, b, skip_connections=True, initializer="xavier")
