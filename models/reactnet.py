r"""ReActNet-A (Liu et al. 2020), the MobileNetV1-based binary network BNEW trains on ImageNet (paper 001 Table 2).

A 3x3/2 stem convolution (32 channels) + BN, then 13 blocks with output channels
64, 128, 128, 256, 256, 512 x 6, 1024, 1024 (stride 2 where the channels double, except
32 -> 64), global average pooling and the linear classifier. ReActNet replaces MobileNetV1's
depthwise-separable pair by two binary convolutions, each with its own shortcut:

\\[ u = \text{RPReLU}\big(\text{BN}(W_{3\times 3} * \text{RSign}(x)) + \text{pool}(x)\big), \qquad
    y = \text{RPReLU}\big(\text{BN}(W_{1\times 1} * \text{RSign}(u)) + [u, u]\big) \\]

where pool is 2x2 average pooling on stride-2 blocks, and when the channels double the 1x1
convolution has twice the input channels and the shortcut is the input duplicated (the
original's two 1x1 convolutions concatenated, written as one convolution of the same
parameters: one binary kernel for Larq Compute Engine). RSign is a sign with a learnt
per-channel threshold (`lqbench.estimators.RSign`, used when activations are binary and
``rsign=True``; otherwise the binarization's activation estimator), RPReLU a PReLU between
learnt shifts (`RPReLU`). ImageNet-size ReActNet-A has 29.3 M parameters; ``width_multiplier``
(the stem's channels rounded to a multiple of 8, doubled with the nominal ones) and any input size >= 32x32 give small test versions.

Binarization and float layers: the stem (``first``) and classifier (``last``) follow
``keep_first_last``; all 26 block convolutions are binarized. ReActNet-A has no depthwise
convolutions (unlike MobileNetV1 it uses full 3x3 convolutions, all accelerated by Larq
Compute Engine). Block inputs, shortcuts and RPReLU outputs are real-valued by design; RSign
thresholds and RPReLU are real in every binarization (with real activations RSign is absent
and RPReLU is the activation). ``skip_connections=False`` drops both shortcuts of every block.
"""
from __future__ import annotations

import tensorflow as tf

from lqbench.binarization import Binarization

from . import _blocks as B
from .registry import register

STAGE_CHANNELS = (64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
STEM_CHANNELS = 32


@register("reactnet_a", skip_connections=True, min_input_size=32)
def reactnet_a(
    input_shape,
    num_classes: int,
    binarization: Binarization,
    skip_connections: bool,
    *,
    width_multiplier: float = 1.0,
    rsign: bool = True,
) -> tf.keras.Model:
    """ReActNet-A (MobileNetV1 backbone, RSign and RPReLU; paper 001 Table 2's BNEW network).

    # Arguments
        width_multiplier: scales every channel count (multiples of 8), e.g. 0.25 for tests.
        rsign: use ReActNet's RSign (learnt thresholds) for binary activations; ``False``
            uses the binarization's activation estimator.

    !!! example
        ```python
        model = lqbench.models.build("reactnet_a", (32, 32, 3), 10, lqbench.Binarization(), width_multiplier=0.25)
        ```

    # References
        - [Liu, Shen, Savvides & Cheng, ReActNet: Towards Precise Binary Neural Network with Generalized
          Activation Functions, ECCV 2020](https://arxiv.org/abs/2003.03488); code: https://github.com/liuzechun/ReActNet
        - [Howard et al., MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications,
          2017](https://arxiv.org/abs/1704.04861) (the backbone)
        - [Paren & Poudel, Training Binarized Neural Networks the Easy Way, BMVC 2022
          (paper 001)](https://bmvc2022.mpi-inf.mpg.de/35/); code: https://github.com/Alasdair-P/bnew, Table 2
          (BNEW's ReActNet-A, ``ImageNet_ReActNet/``)
    """
    B.check_positive_float("width_multiplier", width_multiplier)
    b = binarization
    if b.activations and b.inputs == "activations":
        raise ValueError(
            "reactnet_a signs block inputs by design (RSign, no activation function to replace); "
            "Binarization(inputs='activations') is not allowed, use inputs='all'"
        )

    inputs = tf.keras.Input(shape=input_shape, name="input")
    channels = B.make_divisible(STEM_CHANNELS * width_multiplier)  # actual channels of x
    x = B.conv(inputs, channels, 3, binarization=b, role="first", name="stem_conv", strides=2)
    x = B.batch_norm(x, "stem_bn")
    in_channels = STEM_CHANNELS
    for index, out_channels in enumerate(STAGE_CHANNELS, start=1):
        stride = 2 if (out_channels != in_channels and in_channels != STEM_CHANNELS) else 1
        duplicate = out_channels != in_channels  # the channels double in this block
        name = f"block{index}"
        y = B.conv(x, channels, 3, binarization=b, role="hidden", name=f"{name}_conv3x3", strides=stride,
                   input_quantizer=B.rsign_or_default(b, rsign))
        y = B.batch_norm(y, f"{name}_bn1")
        if skip_connections:
            shortcut = tf.keras.layers.AveragePooling2D(2, name=f"{name}_pool")(x) if stride == 2 else x
            y = B.add([shortcut, y], f"{name}_add1")
        u = B.RPReLU(name=f"{name}_rprelu1")(y)
        y = B.conv(u, 2 * channels if duplicate else channels, 1, binarization=b, role="hidden",
                   name=f"{name}_conv1x1", input_quantizer=B.rsign_or_default(b, rsign))
        y = B.batch_norm(y, f"{name}_bn2")
        if skip_connections:
            shortcut = tf.keras.layers.Concatenate(name=f"{name}_duplicate")([u, u]) if duplicate else u
            y = B.add([shortcut, y], f"{name}_add2")
        x = B.RPReLU(name=f"{name}_rprelu2")(y)
        in_channels = out_channels
        channels = 2 * channels if duplicate else channels
    x = tf.keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = B.dense(x, num_classes, binarization=b, role="last", name="classifier")
    return tf.keras.Model(inputs, outputs, name="reactnet_a")
