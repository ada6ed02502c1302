r"""MLP-Mixer (Tolstikhin et al. 2021) in the configuration of paper 000.

A ``patch_size`` x ``patch_size`` stride-``patch_size`` convolution embeds the image into
\\(S = HW/p^2\\) tokens of ``hidden_dim`` channels; ``depth`` Mixer blocks follow, each

\\[ U = X + W_2\,\text{GELU}(W_1\,\text{LN}(X)^\top)^\top \quad\text{(token mixing, } W_1 \in
    \mathbb{R}^{D_S \times S}\text{)}, \qquad
    Y = U + \text{GELU}(\text{LN}(U) W_3) W_4 \quad\text{(channel mixing, } W_3 \in
    \mathbb{R}^{C \times D_C}\text{)} \\]

then layer norm, global average pooling over tokens and the linear classifier. Dense layers
have biases; layer norm uses PyTorch's \\(\epsilon = 10^{-5}\\).

Paper 000's model (Table 2: 7,279,098 parameters at 224x224 and 10 classes) is
``patch_size=16, hidden_dim=512, depth=12, tokens_mlp_dim=784, channels_mlp_dim=256``: the
``MLPMixer(image_size=224, patch_size=16, dim=512, depth=12)`` of the mlp-mixer-pytorch
package with its defaults (``expansion_factor=4`` on the token MLP,
``expansion_factor_token=0.5`` on the channel MLP): the token MLP is widened 4x
(196 -> 784), the channel MLP narrowed 0.5x (512 -> 256). A search over patch sizes 4-32,
widths and MLP sizes of usual values (powers of two and their 1.5x, 0.5-4x the token count
or width) and depth 1-32 finds one other solution (1536 wide, depth 28, MLPs 32/64), not a
plausible model. ``preset="small"`` (patch 4, 128 channels, depth 4, token MLP 256, channel
MLP 64: the same ratios on 7x7-8x8 token grids) suits 28x28 and 32x32 inputs. Individual
arguments override the preset.

Binarization and float layers: the patch embedding (``first``) and classifier (``last``)
follow ``keep_first_last``; every Mixer dense layer is binarized. Larq Compute Engine runs
binary dense layers as float ops (no binary acceleration for the MLPs). The residual
streams (token and channel mixing outputs + skip) are real-valued by design; layer norms are
real. ``skip_connections=False`` drops both additions in every block (blocks compute
\\(f(x)\\)).
"""
from __future__ import annotations

import tensorflow as tf

from lqbench.binarization import Binarization

from . import _blocks as B
from .registry import register

PRESETS = {
    "paper": {"patch_size": 16, "hidden_dim": 512, "depth": 12, "tokens_mlp_dim": 784, "channels_mlp_dim": 256},
    "small": {"patch_size": 4, "hidden_dim": 128, "depth": 4, "tokens_mlp_dim": 256, "channels_mlp_dim": 64},
}
LN_EPSILON = 1e-5


def _mlp(x, hidden, out, b, name):
    x = B.dense(x, hidden, binarization=b, role="hidden", name=f"{name}_fc1")
    x = B.activation(x, b, "gelu", f"{name}_gelu")
    return B.dense(x, out, binarization=b, role="hidden", name=f"{name}_fc2")


@register("mlp_mixer", skip_connections=True, min_input_size=32)
def mlp_mixer(
    input_shape,
    num_classes: int,
    binarization: Binarization,
    skip_connections: bool,
    *,
    preset: str = "paper",
    patch_size: int | None = None,
    hidden_dim: int | None = None,
    depth: int | None = None,
    tokens_mlp_dim: int | None = None,
    channels_mlp_dim: int | None = None,
) -> tf.keras.Model:
    """MLP-Mixer; ``preset="paper"`` is paper 000's (7,279,098 parameters at 224x224, 10 classes).

    # Arguments
        preset: ``"paper"`` (16/512/12/784/256) or ``"small"`` (4/128/4/256/64).
        patch_size, hidden_dim, depth, tokens_mlp_dim, channels_mlp_dim: override the preset.

    !!! example
        ```python
        b = lqbench.Binarization()
        model = lqbench.models.build("mlp_mixer", (32, 32, 3), 10, b, preset="small")
        plain = lqbench.models.build("mlp_mixer", (32, 32, 3), 10, b, skip_connections=False,
                                     preset="small")  # no residual additions, paper 000 Table 8
        ```

    # References
        - [Tolstikhin et al., MLP-Mixer: An all-MLP Architecture for Vision,
          NeurIPS 2021](https://arxiv.org/abs/2105.01601)
        - [Crulis, Serres, de Runz & Venturini, An experimental comparative study of backpropagation and
          alternatives for training binary neural networks for image classification, 2024
          (paper 000)](https://arxiv.org/abs/2408.04460); code: https://github.com/BenCrulis/binary_nn_extended
          (``MLPMixer`` of https://github.com/lucidrains/mlp-mixer-pytorch)
    """
    B.check_choice("preset", preset, list(PRESETS))
    config = dict(PRESETS[preset])
    for key, value in (("patch_size", patch_size), ("hidden_dim", hidden_dim), ("depth", depth),
                       ("tokens_mlp_dim", tokens_mlp_dim), ("channels_mlp_dim", channels_mlp_dim)):
        if value is not None:
            config[key] = B.check_positive_int(key, value)
    p, c = config["patch_size"], config["hidden_dim"]
    height, width = input_shape[0], input_shape[1]
    if height % p or width % p:
        raise ValueError(f"mlp_mixer: input {height}x{width} is not divisible by patch_size {p}")
    tokens = (height // p) * (width // p)
    b = binarization

    inputs = tf.keras.Input(shape=input_shape, name="input")
    x = B.conv(inputs, c, p, binarization=b, role="first", name="patch_embed", strides=p, padding="valid",
               use_bias=True)
    x = tf.keras.layers.Reshape((tokens, c), name="tokens")(x)
    for i in range(1, config["depth"] + 1):
        name = f"block{i}"
        y = tf.keras.layers.LayerNormalization(epsilon=LN_EPSILON, name=f"{name}_token_ln")(x)
        y = tf.keras.layers.Permute((2, 1), name=f"{name}_token_transpose")(y)
        y = _mlp(y, config["tokens_mlp_dim"], tokens, b, f"{name}_token_mlp")
        y = tf.keras.layers.Permute((2, 1), name=f"{name}_token_transpose_back")(y)
        x = B.add([x, y], f"{name}_token_add") if skip_connections else y
        y = tf.keras.layers.LayerNormalization(epsilon=LN_EPSILON, name=f"{name}_channel_ln")(x)
        y = _mlp(y, config["channels_mlp_dim"], c, b, f"{name}_channel_mlp")
        x = B.add([x, y], f"{name}_channel_add") if skip_connections else y
    x = tf.keras.layers.LayerNormalization(epsilon=LN_EPSILON, name="head_ln")(x)
    x = tf.keras.layers.GlobalAveragePooling1D(name="avg_pool")(x)
    outputs = B.dense(x, num_classes, binarization=b, role="last", name="classifier")
    return tf.keras.Model(inputs, outputs, name="mlp_mixer")
