r"""BinaryNet-style networks of paper 002 (Sakr et al., continuous binarization) and Bop.

Both follow Courbariaux et al.'s BinaryNet (2016): every weight layer is followed by batch
normalisation (the classifier too), no biases (batch normalisation's offset replaces them),
and the float activation is BinaryNet's hard tanh \\(\text{Htanh}(x) = \text{clip}(x, -1, 1)\\),
the real-valued relaxation of the sign (``activation="relu"`` for a ReLU baseline; paper
002's clipping activation PCF is the continuous-binarization method's own layer).

- `binarynet_mlp`: 002's MNIST MLP 784-2048-2048-2048-10 (``hidden_units`` sets depth and
  widths); any input is flattened first.
- `binarynet_cnn`: 002's convolutional networks,
  ``variant="cifar10"``: 2x128C3-MP2-2x256C3-MP2-2x512C3-MP2-2x1024FC-10, BinaryNet's CIFAR-10
  network, the one Bop (Helwegen et al. 2019) trains and the one in Larq's BinaryNet example;
  ``variant="svhn"``: 002's SVHN network 2x64C3-MP2-2x128C3-MP2-2x256C3-MP2-3x1024FC-10.
  002's printed layer strings have no max-pool after the last convolution pair; BinaryNet's
  has one. ``final_pool=False`` builds 002's strings literally (4x more inputs to the first
  dense layer).

Float layers: the first and last weight layers follow the binarization's
``keep_first_last``; all others are binarized. Binary dense layers run as float ops in Larq
Compute Engine (only convolutions become ``LceBconv2d``).

Layer order: conv -> BN -> max-pool -> activation (Larq Compute Engine's binary conv -> BN
-> max-pool fusion); ``block_order="conv_pool_bn_act"`` is BinaryNet's original (pool before
BN; forward equal when BN scales are positive, gradients differ).
"""
from __future__ import annotations

import tensorflow as tf

from lqbench.binarization import Binarization

from . import _blocks as B
from .registry import register

_CNN_VARIANTS = {
    # conv channels, pool after these conv indices (0-based), dense units
    "cifar10": ((128, 128, 256, 256, 512, 512), (1, 3, 5), (1024, 1024)),
    "svhn": ((64, 64, 128, 128, 256, 256), (1, 3, 5), (1024, 1024, 1024)),
}


def _dense_stack(x, units_list, b, activation, first_is_first: bool, as_conv: bool = False):
    for i, units in enumerate(units_list):
        role = "first" if (first_is_first and i == 0) else "hidden"
        x = B.dense(x, units, binarization=b, role=role, name=f"fc{i + 1}", use_bias=False, as_conv=as_conv)
        x = B.batch_norm(x, f"fc{i + 1}_bn")
        x = B.activation(x, b, activation, f"fc{i + 1}_{activation}")
    return x


def _classifier(x, num_classes, b):
    x = B.dense(x, num_classes, binarization=b, role="last", name="classifier", use_bias=False)
    return B.batch_norm(x, "classifier_bn")


@register("binarynet_mlp", flatten_input=True)
def binarynet_mlp(
    input_shape,
    num_classes: int,
    binarization: Binarization,
    skip_connections: bool,
    *,
    hidden_units=(2048, 2048, 2048),
    activation: str = "hard_tanh",
    dense_as_conv: bool = False,
) -> tf.keras.Model:
    r"""Paper 002's BinaryNet MLP 784-2048-2048-2048-10 with batch normalisation after every layer.

    # Arguments
        hidden_units: widths of the hidden layers (their number sets the depth).
        activation: float activation (BinaryNet's ``"hard_tanh"``, or ``"relu"``).
        dense_as_conv: write binary hidden layers as 1x1 binary convolutions (same maths; see
            `_blocks.dense`). Unnecessary for deployment: `lqbench.tflite.convert` rewrites binary
            dense layers so (kept for compatibility).

    Each hidden layer computes \\(h_{l+1} = \text{Htanh}(\text{BN}(W_l\, q(h_l)))\\), with
    \\(q\\) the sign of binary activations (identity when they are real).

    !!! example
        ```python
        # paper 002: binary activations, real weights
        b = lqbench.Binarization(weights=False, activations=True)
        model = lqbench.models.build("binarynet_mlp", (28, 28, 1), 10, b, hidden_units=(256, 256))
        ```

    # References
        - Sakr, Choi, Wang, Gopalakrishnan & Shanbhag, *True Gradient-Based Training of Deep Binary
          Activated Neural Networks via Continuous Binarization*, ICASSP 2018 (paper 002), §4 (MNIST)
        - [Courbariaux, Hubara, Soudry, El-Yaniv & Bengio, Binarized Neural Networks: Training Deep
          Neural Networks with Weights and Activations Constrained to +1 or -1, 2016](https://arxiv.org/abs/1602.02830)
    """
    hidden_units = B.check_int_tuple("hidden_units", hidden_units)
    inputs = tf.keras.Input(shape=input_shape, name="input")
    x = tf.keras.layers.Flatten(name="flatten")(inputs)
    x = _dense_stack(x, hidden_units, binarization, activation, first_is_first=True, as_conv=dense_as_conv)
    outputs = _classifier(x, num_classes, binarization)
    return tf.keras.Model(inputs, outputs, name="binarynet_mlp")


@register("binarynet_cnn")
def binarynet_cnn(
    input_shape,
    num_classes: int,
    binarization: Binarization,
    skip_connections: bool,
    *,
    variant: str = "cifar10",
    final_pool: bool = True,
    width_multiplier: float = 1.0,
    dense_units=None,
    activation: str = "hard_tanh",
    dense_as_conv: bool = False,
    block_order: str = "conv_bn_pool_act",
) -> tf.keras.Model:
    """BinaryNet CNN of paper 002 / Bop: 2x128C3-MP2-2x256C3-MP2-2x512C3-MP2-2x1024FC (``variant="cifar10"``).

    # Arguments
        variant: ``"cifar10"`` (BinaryNet/Bop/002 CIFAR-10) or ``"svhn"`` (002's SVHN network).
        final_pool: max-pool after the last convolution pair (BinaryNet); ``False`` is 002's
            printed layer string.
        width_multiplier: scales every convolution's channels (for small test configurations).
        dense_units: hidden fully connected widths; ``None`` means the variant's.
        activation: float activation (``"hard_tanh"`` or ``"relu"``).
        dense_as_conv: write binary hidden dense layers as 1x1 binary convolutions. Unnecessary for
            deployment: `lqbench.tflite.convert` rewrites binary dense layers so (kept for compatibility).
        block_order: ``"conv_bn_pool_act"`` (default, LCE) or ``"conv_pool_bn_act"``
            (BinaryNet's and Bop's, pool before BN), or ``"conv_bn_act_pool"``.

    !!! example
        ```python
        model = lqbench.models.build("binarynet_cnn", (32, 32, 3), 10, lqbench.Binarization(),
                                      width_multiplier=0.125, dense_units=(128, 128))
        ```

    # References
        - [Courbariaux, Hubara, Soudry, El-Yaniv & Bengio, Binarized Neural Networks: Training Deep
          Neural Networks with Weights and Activations Constrained to +1 or -1, 2016](https://arxiv.org/abs/1602.02830)
          (the CIFAR-10 network)
        - [Courbariaux, Bengio & David, BinaryConnect: Training Deep Neural Networks with binary weights
          during propagations, NeurIPS 2015](https://arxiv.org/abs/1511.00363) (its CIFAR-10 architecture)
        - [Helwegen, Widdicombe, Geiger, Liu, Cheng & Nusselder, Latent Weights Do Not Exist: Rethinking
          Binarized Neural Network Optimization, NeurIPS 2019](https://papers.nips.cc/paper/8971-latent-weights-do-not-exist-rethinking-binarized-neural-network-optimization)
          (Bop's BinaryNet)
        - Sakr, Choi, Wang, Gopalakrishnan & Shanbhag, *True Gradient-Based Training of Deep Binary
          Activated Neural Networks via Continuous Binarization*, ICASSP 2018 (paper 002), §4
          (CIFAR-10 and SVHN networks)
    """
    B.check_choice("variant", variant, list(_CNN_VARIANTS))
    B.check_choice("block_order", block_order, B.BLOCK_ORDERS)
    B.check_positive_float("width_multiplier", width_multiplier)
    channels, pools, default_units = _CNN_VARIANTS[variant]
    dense_units = default_units if dense_units is None else B.check_int_tuple("dense_units", dense_units, allow_empty=True)
    b = binarization
    inputs = tf.keras.Input(shape=input_shape, name="input")
    x = inputs
    for i, c in enumerate(channels):
        c = max(1, int(round(c * width_multiplier)))
        name = f"conv{i + 1}"
        x = B.conv(x, c, 3, binarization=b, role="first" if i == 0 else "hidden", name=name)
        pool = i in pools and (final_pool or i != len(channels) - 1)
        x = B.conv_block_tail(x, b, activation, name, pool, block_order)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    x = _dense_stack(x, dense_units, b, activation, first_is_first=False, as_conv=dense_as_conv)
    outputs = _classifier(x, num_classes, b)
    return tf.keras.Model(inputs, outputs, name=f"binarynet_cnn_{variant}")
