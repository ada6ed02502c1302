r"""LeNet-style base CNN of paper 003 (So, *A Survey of Gradient Estimators for BNNs*), §3.1.

The base network (003 Fig. 5, the PyTorch CIFAR-10 tutorial network): two valid-padded
convolutions 6@5x5 and 16@5x5, each followed by 2x2 max-pooling, then fully connected layers
120-84-classes, ReLU activations. 003 §3.3 sizes it by the kernels of its two convolutions:
\\(3 \cdot 6 \cdot 25 + 6 \cdot 16 \cdot 25 = 2850\\) parameters, 2,850 bits binary or
91,200 bits in float32 (`lqbench.models.memory_footprint_bits` with ``kinds=("conv",)``).

Variants of 003 Table 2 through the architecture arguments:

| 003 Table 2 row | arguments | conv kernel bits |
|---|---|---|
| base model | defaults | 2,850 |
| + N conv2d layers (6/6/5) | ``extra_conv_layers=N`` | 2,850 + 900 N |
| kernel size = 3 | ``kernel_size=3`` | 1,026 |
| + 1 conv2d layer, kernel size = 3 | ``extra_conv_layers=1, kernel_size=3`` | 1,350 |
| output channels over 256 (3/64/5, 64/256/5) | ``filters=(64, 256)`` | 414,400 |

Extra convolutions (``filters[0]`` channels, ``padding="same"`` so 50 of them fit) sit between
the first block and the second convolution, each followed by its activation.

Binarization and float layers: the first convolution (role ``first``) and the classifier
(``last``) follow the binarization's ``keep_first_last``; everything else is binarized. Paper
003 binarizes *only the convolutions*, both of them ("The linear layers are left at full
precision"): reproduce it with ``binarize_dense=False`` (the hidden linear layers become
float-by-design and keep ReLU) and ``Binarization(keep_first_last=False)``.

Layer order: conv -> [BN] -> max-pool -> activation, the order Larq Compute Engine fuses
(max-pool and ReLU commute, so it equals the tutorial's conv -> ReLU -> pool).
"""
from __future__ import annotations

import tensorflow as tf

from lqbench.binarization import Binarization

from . import _blocks as B
from .registry import register


@register("lenet", min_input_size=16)
def lenet(
    input_shape,
    num_classes: int,
    binarization: Binarization,
    skip_connections: bool,
    *,
    filters=(6, 16),
    kernel_size: int = 5,
    extra_conv_layers: int = 0,
    width_multiplier: float = 1.0,
    dense_units=(120, 84),
    batch_norm: bool = False,
    binarize_dense: bool = True,
    dense_as_conv: bool = False,
    activation: str = "relu",
    initializer: str = "keras",
) -> tf.keras.Model:
    """Paper 003's LeNet-style base CNN (conv 6@5x5, conv 16@5x5, FC 120-84) and its Table 2 variants.

    # Arguments
        filters: channels of the two main convolutions (003 Table 2's wide variant: ``(64, 256)``).
        kernel_size: kernel size of every convolution (5, or 3 in 003 Table 2).
        extra_conv_layers: extra ``filters[0]``-channel convolutions after the first block.
        width_multiplier: scales every convolution's channels (rounded, at least 1).
        dense_units: hidden fully connected layers.
        batch_norm: batch normalisation after each convolution (003's base has none).
        binarize_dense: binarize the hidden linear layers (003 keeps them real: ``False``).
        dense_as_conv: write binary hidden linear layers as 1x1 binary convolutions. Unnecessary for
            deployment: `lqbench.tflite.convert` rewrites binary dense layers so (kept for compatibility).
        activation: float activation (``"relu"``).
        initializer: ``"keras"`` (Glorot-uniform kernels, Keras's default) or ``"torch"``: PyTorch's
            default for ``Conv2d``/``Linear``, kernels \\(U(-1/\\sqrt{n_{in}}, 1/\\sqrt{n_{in}})\\) (paper 003's
            code). With binary kernels and real activations (W1A32) the Glorot start diverges in the
            first epoch at lr 1e-2 (loss 30, then dead ReLUs: chance), the PyTorch start learns.

    !!! example
        ```python
        # paper 003: only the two convolutions binary, the linear layers real
        b = lqbench.Binarization(keep_first_last=False)
        model = lqbench.models.build("lenet", (32, 32, 3), 10, b, binarize_dense=False)
        ```

    # References
        - So, *A Survey of Gradient Estimators for Binary Neural Networks for Image Classification*,
          EE 367 report, Stanford University (paper 003), §3.1, Fig. 5 and Table 2
        - LeCun, Bottou, Bengio & Haffner, *Gradient-Based Learning Applied to Document Recognition*,
          Proceedings of the IEEE 86(11), 1998 (LeNet-5)
        - [PyTorch tutorial, Training a Classifier](https://pytorch.org/tutorials/beginner/blitz/cifar10_tutorial.html)
          (the CIFAR-10 network paper 003 starts from)
    """
    B.check_choice("initializer", initializer, ["keras", "torch"])
    filters = B.check_int_tuple("filters", filters)
    if len(filters) != 2:
        raise ValueError(f"filters must hold 2 channel counts (conv1, conv2), got {filters!r}")
    B.check_positive_int("kernel_size", kernel_size)
    B.check_positive_int("extra_conv_layers", extra_conv_layers, allow_zero=True)
    B.check_positive_float("width_multiplier", width_multiplier)
    dense_units = B.check_int_tuple("dense_units", dense_units, allow_empty=True)
    filters = tuple(max(1, int(round(f * width_multiplier))) for f in filters)
    b = binarization

    def conv_block(x, channels, role, name, padding, pool, next_binary):
        x = B.conv(x, channels, kernel_size, binarization=b, role=role, name=name, padding=padding, use_bias=True)
        if batch_norm:
            x = B.batch_norm(x, f"{name}_bn")
        if pool:
            x = B.max_pool(x, f"{name}_pool")
        return B.activation(x, b, activation, f"{name}_{activation}", next_binary=next_binary)

    inputs = tf.keras.Input(shape=input_shape, name="input")
    x = conv_block(inputs, filters[0], "first", "conv1", "valid", pool=True, next_binary=True)
    for i in range(extra_conv_layers):
        x = conv_block(x, filters[0], "hidden", f"extra_conv{i + 1}", "same", pool=False, next_binary=True)
    # After conv2 the consumers are the linear layers: they sign their inputs only if binarized.
    x = conv_block(x, filters[1], "hidden", "conv2", "valid", pool=True, next_binary=binarize_dense)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(dense_units):
        x = B.dense(x, units, binarization=b, role="hidden", name=f"fc{i + 1}", float_by_design=not binarize_dense,
                    as_conv=dense_as_conv)
        x = B.activation(x, b, activation, f"fc{i + 1}_{activation}", next_binary=binarize_dense)
    outputs = B.dense(x, num_classes, binarization=b, role="last", name="classifier",
                      float_by_design=not binarize_dense)
    model = tf.keras.Model(inputs, outputs, name="lenet")
    if initializer == "torch":  # kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)) = VarianceScaling(1/3)
        torch_default = tf.keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform")
        for layer in model.layers:
            if getattr(layer, "kernel", None) is not None:
                layer.kernel_initializer = torch_default
                layer.kernel.assign(torch_default(layer.kernel.shape, layer.kernel.dtype))
    return model
