r"""ResNet20 for CIFAR: the Bi-Real-style network BNEW trains (paper 001) and He et al.'s original.

``variant="birealnet"`` (default) -- the "ResNet20" of paper 001's CIFAR experiments (the
``birealresnet20`` of the BNEW authors' code): a 3x3 stem convolution (16 channels) with BN
and 3x3/2 max-pooling, then three stages of ``(depth - 2) / 3`` = 6 blocks (16, 32, 64
channels; stride 2 at the start of stages 2 and 3), each block wrapping *one* binary 3x3
convolution in its own shortcut (Bi-Real Net):

\\[ y = \text{RPReLU}\big(\text{BN}(\alpha \odot \text{conv}(\text{sign}(x + b))) + s(x)\big) \\]

with a learnt input shift \\(b\\) (`LearnableBias`), a learnt channel scale \\(\alpha\\)
(`ChannelScale`, ``channel_scale=False`` drops it: 001 found it useless next to BN), and the
shortcut \\(s\\) the identity, or 2x2 average pooling + real-valued 1x1 convolution + BN where
the shape changes. Global average pooling and a linear classifier close the network.

``variant="classic"`` -- He et al. (2016) CIFAR ResNet-20: 3x3 stem convolution + BN + ReLU,
three stages of ``(depth - 2) / 6`` = 3 basic blocks (conv-BN-ReLU-conv-BN, add, ReLU) with
the parameter-free option-A shortcut (subsample and zero-pad channels, `ZeroPadShortcut`),
global average pooling, linear classifier. 0.27 M parameters.

Binarization and float layers: the stem convolution (``first``) and the classifier
(``last``) follow ``keep_first_last``; every block convolution is binarized. The Bi-Real
down-sampling 1x1 convolutions stay real-valued in every binarization, as in Bi-Real Net and
BNEW (paper 001 lists this "bottleneck layer" among the real parameters; names end in
``_fp``; ``binary_shortcut=True`` binarizes them). Residual block inputs (BN output + shortcut)
are real-valued by design: only the block convolutions see binary inputs. RPReLU, the
learnt shifts and scales are real-valued in every binarization (BNEW's architecture).

``skip_connections=False`` (paper 000 Table 8 style): blocks compute \\(f(x)\\) without the
shortcut (and without its down-sampling convolution); everything else is unchanged.
"""
from __future__ import annotations

import tensorflow as tf

from lqbench.binarization import Binarization

from . import _blocks as B
from .registry import register

VARIANTS = ("birealnet", "classic")


def _birealnet(inputs, num_classes, b, skip, depth, width, channel_scale, binary_shortcut, stem_pool):
    if (depth - 2) % 3:
        raise ValueError(f"depth for variant 'birealnet' must be 3n + 2 (e.g. 20), got {depth}")
    blocks = (depth - 2) // 3
    x = B.conv(inputs, width, 3, binarization=b, role="first", name="stem_conv")
    x = B.batch_norm(x, "stem_bn")
    if stem_pool:
        x = B.max_pool(x, "stem_pool", pool_size=3, strides=2, padding="same")
    channels = width
    for stage, planes in enumerate((width, 2 * width, 4 * width), start=1):
        for block in range(1, blocks + 1):
            stride = 2 if (stage > 1 and block == 1) else 1
            name = f"stage{stage}_block{block}"
            y = B.LearnableBias(name=f"{name}_shift")(x)
            y = B.conv(y, planes, 3, binarization=b, role="hidden", name=f"{name}_conv", strides=stride)
            if channel_scale:
                y = B.ChannelScale(name=f"{name}_scale")(y)
            y = B.batch_norm(y, f"{name}_bn")
            if skip:
                shortcut = x
                if stride != 1 or channels != planes:
                    shortcut = tf.keras.layers.AveragePooling2D(stride, name=f"{name}_down_pool")(shortcut)
                    shortcut = B.conv(shortcut, planes, 1, binarization=b, role="hidden", name=f"{name}_down_conv",
                                      float_by_design=not binary_shortcut)
                    shortcut = B.batch_norm(shortcut, f"{name}_down_bn")
                y = B.add([shortcut, y], f"{name}_add")
            x = B.RPReLU(name=f"{name}_rprelu")(y)
            channels = planes
    return x


def _classic(inputs, num_classes, b, skip, depth, width):
    if (depth - 2) % 6:
        raise ValueError(f"depth for variant 'classic' must be 6n + 2 (e.g. 20), got {depth}")
    blocks = (depth - 2) // 6
    x = B.conv(inputs, width, 3, binarization=b, role="first", name="stem_conv")
    x = B.batch_norm(x, "stem_bn")
    x = B.activation(x, b, "relu", "stem_relu")
    channels = width
    for stage, planes in enumerate((width, 2 * width, 4 * width), start=1):
        for block in range(1, blocks + 1):
            stride = 2 if (stage > 1 and block == 1) else 1
            name = f"stage{stage}_block{block}"
            y = B.conv(x, planes, 3, binarization=b, role="hidden", name=f"{name}_conv1", strides=stride)
            y = B.batch_norm(y, f"{name}_bn1")
            y = B.activation(y, b, "relu", f"{name}_relu1")
            y = B.conv(y, planes, 3, binarization=b, role="hidden", name=f"{name}_conv2")
            y = B.batch_norm(y, f"{name}_bn2")
            if skip:
                shortcut = x
                if stride != 1 or channels != planes:
                    shortcut = B.ZeroPadShortcut(planes, stride, name=f"{name}_shortcut")(x)
                y = B.add([shortcut, y], f"{name}_add")
            x = B.activation(y, b, "relu", f"{name}_relu2")
            channels = planes
    return x


@register("resnet20", skip_connections=True)
def resnet20(
    input_shape,
    num_classes: int,
    binarization: Binarization,
    skip_connections: bool,
    *,
    variant: str = "birealnet",
    depth: int = 20,
    width: int = 16,
    channel_scale: bool = True,
    binary_shortcut: bool = False,
    stem_pool: bool = True,
) -> tf.keras.Model:
    """CIFAR ResNet20: BNEW's Bi-Real-style network (``variant="birealnet"``) or He et al.'s (``"classic"``).

    # Arguments
        variant: ``"birealnet"`` (paper 001, one binary conv per shortcut) or ``"classic"``.
        depth: weight layers on the main path: 3n + 2 (birealnet) or 6n + 2 (classic); 20.
        width: channels of the first stage (16); stages use 1x, 2x, 4x.
        channel_scale: birealnet only: learnt per-channel scale after each binary conv.
        binary_shortcut: birealnet only: binarize the 1x1 down-sampling convolutions too.
        stem_pool: birealnet only: the 3x3/2 max-pool after the stem (BNEW's code has it).

    !!! example
        ```python
        b = lqbench.Binarization(activation_estimator="approx_sign")
        model = lqbench.models.build("resnet20", (32, 32, 3), 10, b)  # the Bi-Real ResNet20 of BNEW
        classic = lqbench.models.build("resnet20", (32, 32, 3), 10, b, variant="classic")
        ```

    # References
        - [He, Zhang, Ren & Sun, Deep Residual Learning for Image Recognition,
          CVPR 2016](https://arxiv.org/abs/1512.03385)
          (CIFAR ResNet-20, option-A shortcut: ``variant="classic"``)
        - [Liu, Wu, Luo, Yang, Liu & Cheng, Bi-Real Net: Enhancing the Performance of 1-bit CNNs With
          Improved Representational Capability and Advanced Training Algorithm, ECCV 2018](https://arxiv.org/abs/1808.00278)
          (a shortcut around every binary convolution: ``variant="birealnet"``)
        - [Liu, Shen, Savvides & Cheng, ReActNet: Towards Precise Binary Neural Network with Generalized
          Activation Functions, ECCV 2020](https://arxiv.org/abs/2003.03488); code: https://github.com/liuzechun/ReActNet
          (RPReLU and the learnt input shift)
        - [Paren & Poudel, Training Binarized Neural Networks the Easy Way, BMVC 2022
          (paper 001)](https://bmvc2022.mpi-inf.mpg.de/35/); code: https://github.com/Alasdair-P/bnew
          (its ``birealresnet20``)
    """
    B.check_choice("variant", variant, VARIANTS)
    B.check_positive_int("depth", depth)
    B.check_positive_int("width", width)
    if variant == "classic":
        changed = [n for n, v, d in (("channel_scale", channel_scale, True), ("binary_shortcut", binary_shortcut, False),
                                     ("stem_pool", stem_pool, True)) if v != d]
        if changed:
            raise ValueError(f"resnet20 variant 'classic' has no {', '.join(changed)}; allowed only for 'birealnet'")
    inputs = tf.keras.Input(shape=input_shape, name="input")
    if variant == "birealnet" and binarization.activations and binarization.inputs == "activations":
        raise ValueError(
            "resnet20 variant 'birealnet' signs block inputs by design (no activation function to replace); "
            "Binarization(inputs='activations') is allowed only for variant 'classic'"
        )
    if variant == "birealnet":
        x = _birealnet(inputs, num_classes, binarization, skip_connections, depth, width, channel_scale,
                       binary_shortcut, stem_pool)
    else:
        x = _classic(inputs, num_classes, binarization, skip_connections, depth, width)
    x = tf.keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = B.dense(x, num_classes, binarization=binarization, role="last", name="classifier")
    return tf.keras.Model(inputs, outputs, name=f"resnet{depth}_{variant}")
