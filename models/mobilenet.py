r"""MobileNetV2 (Sandler et al. 2018) as torchvision builds it, the model of paper 000.

Stem 3x3/2 convolution (32 channels) + BN + ReLU6; 17 inverted-residual blocks with
(expansion t, channels c, repeats n, stride s) = (1,16,1,1), (6,24,2,2), (6,32,3,2),
(6,64,4,2), (6,96,3,1), (6,160,3,2), (6,320,1,1); a 1x1 convolution to 1280 channels + BN +
ReLU6; global average pooling, dropout 0.2 and the linear classifier. An inverted residual
block is

\\[ y = x + \text{BN}(W_{proj} * \text{ReLU6}(\text{BN}(W_{dw} \circledast
        \text{ReLU6}(\text{BN}(W_{exp} * x))))) \\]

(no expansion convolution when t = 1), with the shortcut only when stride is 1 and the
channels match. Convolutions have no bias. At 224x224 with 10 classes it has 2,236,682
trainable parameters, paper 000 Table 2's count (torchvision counts BN scale and offset,
not the running statistics: Keras' non-trainable moving mean and variance are excluded).
``width_multiplier`` scales channels as torchvision does (multiples of 8; the last
convolution never below 1280).

Binarization and float layers: stem (``first``) and classifier (``last``) follow
``keep_first_last``; expansion, depthwise and projection convolutions are binarized. Larq
Compute Engine runs binary depthwise convolutions as float ops, so only the 1x1
convolutions become binary kernels. Residual block inputs (projection BN output + shortcut)
are real-valued by design (the linear bottleneck has no activation to binarize); the
residual ``Add`` ops are float (paper 000 §4.1 points out skip connections prevent XNOR
there). ``skip_connections=False`` drops the additions (blocks compute \\(f(x)\\)).
"""
from __future__ import annotations

import tensorflow as tf

from lqbench.binarization import Binarization

from . import _blocks as B
from .registry import register

INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


@register("mobilenet_v2", skip_connections=True)
def mobilenet_v2(
    input_shape,
    num_classes: int,
    binarization: Binarization,
    skip_connections: bool,
    *,
    width_multiplier: float = 1.0,
    dropout: float = 0.2,
) -> tf.keras.Model:
    """MobileNetV2 (torchvision layout; paper 000): 2,236,682 parameters at 224x224, 10 classes.

    # Arguments
        width_multiplier: channel multiplier (torchvision's ``width_mult``), e.g. 0.35 for tests.
        dropout: dropout rate before the classifier (0.2).

    !!! example
        ```python
        model = lqbench.models.build("mobilenet_v2", (32, 32, 3), 10, lqbench.Binarization(),
                              width_multiplier=0.35)
        ```

    # References
        - [Sandler, Howard, Zhu, Zhmoginov & Chen, MobileNetV2: Inverted Residuals and Linear Bottlenecks,
          CVPR 2018](https://arxiv.org/abs/1801.04381)
        - [Crulis, Serres, de Runz & Venturini, An experimental comparative study of backpropagation and
          alternatives for training binary neural networks for image classification, 2024
          (paper 000)](https://arxiv.org/abs/2408.04460); code: https://github.com/BenCrulis/binary_nn_extended
          (torchvision's ``mobilenet_v2``)
    """
    B.check_positive_float("width_multiplier", width_multiplier)
    if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    b = binarization
    in_channels = B.make_divisible(32 * width_multiplier)
    last_channels = B.make_divisible(1280 * max(1.0, width_multiplier))

    inputs = tf.keras.Input(shape=input_shape, name="input")
    x = B.conv(inputs, in_channels, 3, binarization=b, role="first", name="stem_conv", strides=2)
    x = B.batch_norm(x, "stem_bn")
    x = B.activation(x, b, "relu6", "stem_relu6")
    index = 0
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        out_channels = B.make_divisible(c * width_multiplier)
        for i in range(n):
            index += 1
            stride = s if i == 0 else 1
            name = f"block{index}"
            y = x
            if t != 1:
                y = B.conv(y, int(round(in_channels * t)), 1, binarization=b, role="hidden", name=f"{name}_expand")
                y = B.batch_norm(y, f"{name}_expand_bn")
                y = B.activation(y, b, "relu6", f"{name}_expand_relu6")
            y = B.depthwise(y, 3, binarization=b, role="hidden", name=f"{name}_depthwise", strides=stride)
            y = B.batch_norm(y, f"{name}_depthwise_bn")
            y = B.activation(y, b, "relu6", f"{name}_depthwise_relu6")
            y = B.conv(y, out_channels, 1, binarization=b, role="hidden", name=f"{name}_project")
            y = B.batch_norm(y, f"{name}_project_bn")
            if skip_connections and stride == 1 and in_channels == out_channels:
                y = B.add([x, y], f"{name}_add")
            x = y
            in_channels = out_channels
    x = B.conv(x, last_channels, 1, binarization=b, role="hidden", name="head_conv")
    x = B.batch_norm(x, "head_bn")
    x = B.activation(x, b, "relu6", "head_relu6")
    x = tf.keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = tf.keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = B.dense(x, num_classes, binarization=b, role="last", name="classifier")
    return tf.keras.Model(inputs, outputs, name="mobilenet_v2")
