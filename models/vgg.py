r"""VGG networks: IR-Net's VGG-small (papers 003 Table 3) and VGG-19 with batch norm (paper 000).

`vgg_small` -- the CIFAR-10 VGG-small of IR-Net (Qin et al. 2020), which paper 003 §3.4 trains
with every gradient estimator: six 3x3 convolutions 128-128-256-256-512-512 (no bias), each
followed by batch normalisation and hard tanh, 2x2 max-pooling after the 2nd, 4th and 6th,
and one linear classifier (512 x 4 x 4 inputs at 32x32). 4.66 M parameters. With binary
activations the hard tanh stays in front of each sign (``hardtanh_before_sign=True``, as in
IR-Net's code and paper 003's description).

`vgg19` -- VGG-19 with batch normalisation exactly as torchvision's ``vgg19_bn`` (the model
of paper 000, whose Table 2 counts 139,622,218 parameters at 224x224 and 10 classes): 16
3x3 convolutions (with bias) 2x64, 2x128, 4x256, 4x512, 4x512 with BN and ReLU, max-pooling
after each group, then the 4096-4096 classifier with ReLU and dropout 0.5. At 224x224 the
last feature map is 7x7, so the result equals torchvision's adaptive 7x7 pooling; at other
sizes the first dense layer takes the flattened feature map as is.

Binarization and float layers: the first convolution and the classifier follow
``keep_first_last``; every other convolution and VGG-19's two hidden dense layers are
binarized. The hidden dense layers are float ops in Larq Compute Engine (binary dense
layers are not accelerated), so is everything with real inputs (first conv, classifier).

With binary activations the classifier's dropout acts before the next layer's sign (dropped
values become +1); paper 000's PyTorch models, which replace the ReLU by the sign, drop after
it. Both only matter in training.

Layer order (``block_order``): conv -> BN -> max-pool -> activation by default, Larq Compute
Engine's fusable order; ``"conv_pool_bn_act"`` is IR-Net's (pool before BN),
``"conv_bn_act_pool"`` torchvision's and paper 000's code (the sign before pooling). Forward
passes are equal for the monotone hard tanh / ReLU / sign when BN's scales are positive;
gradients differ (`lqbench.models._blocks.conv_block_tail`).
"""
from __future__ import annotations

import tensorflow as tf

from lqbench.binarization import Binarization

from . import _blocks as B
from .registry import register

VGG19_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
VGG_SMALL_CONFIG = (128, 128, "M", 256, 256, "M", 512, 512, "M")


def _features(x, config, b, activation, width_multiplier, use_bias, block_order, keep_activation=False):
    index = 0
    for i, item in enumerate(config):
        if item == "M":
            continue
        index += 1
        name = f"conv{index}"
        channels = max(1, int(round(item * width_multiplier)))
        x = B.conv(x, channels, 3, binarization=b, role="first" if index == 1 else "hidden", name=name,
                   use_bias=use_bias)
        pool = i + 1 < len(config) and config[i + 1] == "M"
        x = B.conv_block_tail(x, b, activation, name, pool, block_order,
                              keep_activation=keep_activation and b.activations)
    return x


@register("vgg_small")
def vgg_small(
    input_shape,
    num_classes: int,
    binarization: Binarization,
    skip_connections: bool,
    *,
    width_multiplier: float = 1.0,
    activation: str = "hard_tanh",
    head: str = "flatten",
    hardtanh_before_sign: bool = True,
    block_order: str = "conv_bn_pool_act",
) -> tf.keras.Model:
    r"""IR-Net's VGG-small (003 Table 3): convs 128-128-256-256-512-512 with BN and hard tanh, one linear layer.

    # Arguments
        width_multiplier: scales every convolution's channels.
        activation: float activation (``"hard_tanh"``, as in IR-Net and 003).
        head: ``"flatten"`` (IR-Net: the classifier sees 512 x 4 x 4 features at 32x32) or
            ``"avg"`` (global average pooling first: a 16x smaller float classifier, the usual
            choice for deployment).
        hardtanh_before_sign: with binary activations, keep ``activation`` in front of the
            next layer's sign, as IR-Net does (``vgg.py`` ``VGG_SMALL_1W1A.forward``:
            ``bn -> nn.Hardtanh -> IRConv2d``, whose sign reads the hard tanh's output). The
            forward pass is unchanged (\\(sign(\text{htanh}(x)) = sign(x)\\)); the backward pass
            multiplies the sign estimator's pseudo-gradient at \\(\text{htanh}(x)\\) by
            \\(1_{|x| \leq 1}\\). ``True`` is the paper's model (the default); ``False`` drops it
            (the sign follows batch norm directly, one op less after conversion).
        block_order: ``"conv_bn_pool_act"`` (default, LCE), ``"conv_pool_bn_act"`` (IR-Net) or
            ``"conv_bn_act_pool"`` (torchvision, paper 000's code).

    Each convolution block computes (default ``block_order``; MP only after the 2nd, 4th and 6th)

    \\[ x_{l+1} = \text{htanh}\big(\text{MP}(\text{BN}(W_l * q(x_l)))\big), \\]

    with \\(q\\) the sign of binary activations (the identity on the image \\(x_1\\)); the
    classifier reads \\(q(x_7)\\) flattened.

    !!! example
        ```python
        # paper 003 Table 3: the IR-Net estimator on weights and activations
        b = lqbench.Binarization(weight_estimator="ede", activation_estimator="ede")
        model = lqbench.models.build("vgg_small", (32, 32, 3), 10, b, width_multiplier=0.25)
        callbacks = lqbench.estimators.callbacks_for(b.estimator_names(), epochs=10)  # EDESchedule
        ```

    # References
        - [Qin, Gong, Liu, Shen, Wei, Yu & Song, Forward and Backward Information Retention for Accurate
          Binary Neural Networks, CVPR 2020](https://arxiv.org/abs/1909.10788); code:
          https://github.com/htqin/IR-Net (``CIFAR-10/VGG-Small/vgg.py``)
        - So, *A Survey of Gradient Estimators for Binary Neural Networks for Image Classification*,
          EE 367 report, Stanford University (paper 003), §3.4 and Table 3
        - [Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition,
          ICLR 2015](https://arxiv.org/abs/1409.1556)
    """
    B.check_positive_float("width_multiplier", width_multiplier)
    B.check_choice("head", head, ["flatten", "avg"])
    B.check_choice("block_order", block_order, B.BLOCK_ORDERS)
    if not isinstance(hardtanh_before_sign, bool):
        raise ValueError(f"hardtanh_before_sign must be true or false, got {hardtanh_before_sign!r}")
    inputs = tf.keras.Input(shape=input_shape, name="input")
    x = _features(inputs, VGG_SMALL_CONFIG, binarization, activation, width_multiplier, use_bias=False,
                  block_order=block_order, keep_activation=hardtanh_before_sign)
    if head == "avg":
        x = tf.keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    else:
        x = tf.keras.layers.Flatten(name="flatten")(x)
    outputs = B.dense(x, num_classes, binarization=binarization, role="last", name="classifier")
    return tf.keras.Model(inputs, outputs, name="vgg_small")


@register("vgg19", min_input_size=32)
def vgg19(
    input_shape,
    num_classes: int,
    binarization: Binarization,
    skip_connections: bool,
    *,
    width_multiplier: float = 1.0,
    dense_units=(4096, 4096),
    dropout: float = 0.5,
    dense_as_conv: bool = False,
    block_order: str = "conv_bn_pool_act",
) -> tf.keras.Model:
    """VGG-19 with batch normalisation (torchvision ``vgg19_bn``), the 4096-4096 classifier; paper 000.

    # Arguments
        width_multiplier: scales every convolution's channels (1.0 for paper 000).
        dense_units: hidden classifier widths (``(4096, 4096)`` for paper 000).
        dropout: dropout rate before each hidden dense layer's successor (0.5).
        dense_as_conv: write the binary hidden dense layers as 1x1 binary convolutions. Unnecessary for
            deployment: `lqbench.tflite.convert` rewrites binary dense layers so (kept for compatibility).
        block_order: ``"conv_bn_pool_act"`` (default, LCE) or ``"conv_bn_act_pool"``
            (torchvision's ``vgg19_bn``, paper 000's code), or ``"conv_pool_bn_act"``.

    !!! example
        ```python
        model = lqbench.models.build("vgg19", (32, 32, 3), 10, lqbench.Binarization(),
                                      width_multiplier=0.125, dense_units=(256, 256))
        ```

    # References
        - [Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition,
          ICLR 2015](https://arxiv.org/abs/1409.1556)
        - [Ioffe & Szegedy, Batch Normalization: Accelerating Deep Network Training by Reducing Internal
          Covariate Shift, ICML 2015](https://arxiv.org/abs/1502.03167) (the ``_bn`` variant)
        - [Crulis, Serres, de Runz & Venturini, An experimental comparative study of backpropagation and
          alternatives for training binary neural networks for image classification, 2024
          (paper 000)](https://arxiv.org/abs/2408.04460); code: https://github.com/BenCrulis/binary_nn_extended
          (torchvision's ``vgg19_bn``)
    """
    B.check_positive_float("width_multiplier", width_multiplier)
    B.check_choice("block_order", block_order, B.BLOCK_ORDERS)
    dense_units = B.check_int_tuple("dense_units", dense_units, allow_empty=True)
    if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    b = binarization
    inputs = tf.keras.Input(shape=input_shape, name="input")
    x = _features(inputs, VGG19_CONFIG, b, "relu", width_multiplier, use_bias=True, block_order=block_order)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(dense_units):
        x = B.dense(x, units, binarization=b, role="hidden", name=f"fc{i + 1}", as_conv=dense_as_conv)
        x = B.activation(x, b, "relu", f"fc{i + 1}_relu")
        if dropout:
            x = tf.keras.layers.Dropout(dropout, name=f"fc{i + 1}_dropout")(x)
    outputs = B.dense(x, num_classes, binarization=b, role="last", name="classifier")
    return tf.keras.Model(inputs, outputs, name="vgg19")
