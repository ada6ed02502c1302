r"""Shared building helpers of the lqbench model zoo.

Every weight layer of every zoo model is created here, as a Larq layer whose arguments come
from the model's `lqbench.Binarization` for the layer's *role* (``"first"``, ``"hidden"``,
``"last"``). A few hidden layers are real-valued *by design of their architecture* (the
Bi-Real/BNEW down-sampling shortcut convolution, paper 003's float linear layers): they are
still Larq layers, built with the full-precision arguments, and their names end in
`FLOAT_SUFFIX` so tools (and tests) can tell them from layers a `Binarization` binarizes.

Conventions shared by all models:

- batch normalisation uses PyTorch's defaults (momentum 0.1, i.e. Keras ``momentum=0.9``,
  \\(\epsilon = 10^{-5}\\)), the framework the papers' reference code used;
- a float activation is applied only where the next weight layer does not binarize its input
  (`activation`): with binary activations the sign lives in the next layer's
  ``input_quantizer`` and an activation before it would be wasted or harmful (a ReLU before a
  sign makes every value +1);
- convolutions with binary inputs and ``padding="same"`` pad with the binarization's
  ``pad_values`` (+1 by default, the padding Larq Compute Engine's binary kernels implement;
  0 for replication of the PyTorch references);
- with ``Binarization(inputs="activations")`` the sign replaces each float activation at its
  place (`activation`), paper 000's convention.
"""
from __future__ import annotations

from typing import Any

import larq as lq
import tensorflow as tf

from lqbench import estimators
from lqbench.binarization import Binarization

FLOAT_SUFFIX = "_fp"
"""Name suffix of hidden weight layers that their architecture keeps real-valued."""

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

_FULL_PRECISION = Binarization.full_precision()


def is_float_by_design(layer: tf.keras.layers.Layer) -> bool:
    """Whether ``layer`` is a weight layer its architecture keeps real-valued in every binarization."""
    return layer.name.endswith(FLOAT_SUFFIX)


def _layer_kwargs(kind: str, binarization: Binarization, role: str, float_by_design: bool) -> dict[str, Any]:
    source = _FULL_PRECISION if float_by_design else binarization
    role = "hidden" if float_by_design else role
    return {
        "conv": source.conv_kwargs,
        "dense": source.dense_kwargs,
        "depthwise": source.depthwise_kwargs,
    }[kind](role)


def _name(name: str, float_by_design: bool) -> str:
    return name + FLOAT_SUFFIX if float_by_design else name


def conv(
    x: tf.Tensor,
    filters: int,
    kernel_size: int,
    *,
    binarization: Binarization,
    role: str,
    name: str,
    strides: int = 1,
    padding: str = "same",
    use_bias: bool = False,
    float_by_design: bool = False,
    input_quantizer: Any = "binarization",
) -> tf.Tensor:
    """`larq.layers.QuantConv2D` with the binarization's arguments for ``role``.

    ``input_quantizer`` replaces the binarization's input quantizer when the layer's inputs
    are binary (ReActNet-A's RSign); it is ignored when they are not.
    """
    kwargs = _layer_kwargs("conv", binarization, role, float_by_design)
    if padding != "same":
        kwargs["pad_values"] = 0.0  # Larq pads with pad_values only for "same"
    if input_quantizer != "binarization" and kwargs["input_quantizer"] is not None:
        kwargs["input_quantizer"] = input_quantizer
    return lq.layers.QuantConv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        name=_name(name, float_by_design),
        **kwargs,
    )(x)


def depthwise(
    x: tf.Tensor,
    kernel_size: int,
    *,
    binarization: Binarization,
    role: str,
    name: str,
    strides: int = 1,
    use_bias: bool = False,
) -> tf.Tensor:
    """`larq.layers.QuantDepthwiseConv2D` (``padding="same"``) for ``role``."""
    kwargs = _layer_kwargs("depthwise", binarization, role, False)
    return lq.layers.QuantDepthwiseConv2D(
        kernel_size, strides=strides, padding="same", use_bias=use_bias, name=name, **kwargs
    )(x)


def dense(
    x: tf.Tensor,
    units: int,
    *,
    binarization: Binarization,
    role: str,
    name: str,
    use_bias: bool = True,
    float_by_design: bool = False,
    as_conv: bool = False,
) -> tf.Tensor:
    """`larq.layers.QuantDense` for ``role`` (acts on the last axis of a ``(batch, d)`` ``x``).

    ``as_conv=True`` writes the same layer as ``Reshape(1, 1, d) -> QuantConv2D(units, 1) ->
    Reshape(units)``: identical maths and parameters, but Larq Compute Engine turns a binary
    1x1 convolution into ``LceBconv2d``, while it runs binary ``QuantDense`` layers as float
    ops with float weights. Only layers with binary inputs and kernels are rewritten.
    `lqbench.tflite.convert` applies the same rewrite to any model at conversion
    (`lqbench.tflite.rewrite`), so ``as_conv`` is only kept for compatibility.
    """
    kwargs = _layer_kwargs("dense", binarization, role, float_by_design)
    layer_name = _name(name, float_by_design)
    binary = kwargs["input_quantizer"] is not None and kwargs["kernel_quantizer"] is not None
    if as_conv and binary and len(x.shape) == 2:
        x = tf.keras.layers.Reshape((1, 1, int(x.shape[-1])), name=f"{layer_name}_to_1x1")(x)
        x = lq.layers.QuantConv2D(units, 1, use_bias=use_bias, name=layer_name, pad_values=0.0, **kwargs)(x)
        return tf.keras.layers.Reshape((units,), name=f"{layer_name}_from_1x1")(x)
    return lq.layers.QuantDense(units, use_bias=use_bias, name=layer_name, **kwargs)(x)


def batch_norm(x: tf.Tensor, name: str, **kwargs) -> tf.Tensor:
    """Batch normalisation with PyTorch's default momentum and epsilon."""
    kwargs.setdefault("momentum", BN_MOMENTUM)
    kwargs.setdefault("epsilon", BN_EPSILON)
    return tf.keras.layers.BatchNormalization(name=name, **kwargs)(x)


def activation(
    x: tf.Tensor, binarization: Binarization, float_activation: str | None, name: str, next_binary: bool = True
) -> tf.Tensor:
    """Apply ``float_activation`` unless the next weight layer signs this tensor.

    With ``binarization.inputs == "activations"`` and binary activations, the sign itself is
    applied here (a quantizer layer named ``<name>_sign``), whatever the consumer.

    ``next_binary`` says whether the consumer is a binarizable weight layer (True for the
    usual hidden layer); pass False when the consumer keeps real inputs by design, e.g. a
    residual path or a float-by-design layer: the float activation is then always applied.
    """
    if binarization.inputs == "activations" and binarization.activations and float_activation is not None:
        # paper 000's replace_activations_to_sign: every activation function becomes the sign
        return binarization.activation(float_activation, name=f"{name}_sign")(x)
    act = binarization.activation(float_activation) if next_binary else (float_activation or "linear")
    if act == "linear":
        return x
    return tf.keras.layers.Activation(act, name=name)(x)


BLOCK_ORDERS = ("conv_bn_pool_act", "conv_pool_bn_act", "conv_bn_act_pool")
"""Orders of a conv block with max-pooling (`conv_block`)."""


def conv_block_tail(
    x: tf.Tensor, binarization: Binarization, float_activation: str | None, name: str, pool: bool, order: str,
    keep_activation: bool = False,
) -> tf.Tensor:
    """Batch norm, optional 2x2 max-pool and activation after a convolution, in ``order``.

    - ``"conv_bn_pool_act"`` (lqbench's default): Larq Compute Engine fuses binary conv -> BN
      -> max-pool; the sign is the next layer's input quantizer;
    - ``"conv_pool_bn_act"``: the papers' BinaryNet and IR-Net VGG-small (pool before BN);
    - ``"conv_bn_act_pool"``: torchvision's VGG, paper 000's code (activation, i.e. the sign
      with ``Binarization(inputs="activations")``, before pooling).

    ``keep_activation`` keeps ``float_activation`` in front of the next layer's sign (IR-Net's
    hard tanh, see `vgg_small`) instead of leaving the clipping to the sign estimator.

    The forward passes are equal when BN's scales are positive (max-pooling commutes with
    monotone maps); gradients differ: max-pooling routes the gradient to the argmax of what
    it pools (real values, or the first of tied signs), and BN's batch statistics are taken
    before or after pooling.
    """
    check_choice("block_order", order, BLOCK_ORDERS)
    if not pool:
        order = "conv_bn_pool_act"

    def act(t):
        return activation(t, binarization, float_activation, f"{name}_{float_activation}",
                          next_binary=not keep_activation)

    if order == "conv_pool_bn_act":
        x = max_pool(x, f"{name}_pool")
        x = batch_norm(x, f"{name}_bn")
        return act(x)
    x = batch_norm(x, f"{name}_bn")
    if order == "conv_bn_act_pool":
        return max_pool(act(x), f"{name}_pool")
    if pool:
        x = max_pool(x, f"{name}_pool")
    return act(x)


def max_pool(x: tf.Tensor, name: str, pool_size: int = 2, strides: int | None = None, padding: str = "valid"):
    return tf.keras.layers.MaxPool2D(pool_size, strides=strides, padding=padding, name=name)(x)


def add(tensors: list[tf.Tensor], name: str) -> tf.Tensor:
    return tf.keras.layers.Add(name=name)(tensors)


def rsign_or_default(binarization: Binarization, use_rsign: bool):
    """ReActNet's RSign quantizer when requested (used only where inputs are binary)."""
    return estimators.get("rsign") if (use_rsign and binarization.activations) else "binarization"


# ------------------------------------------------------------------------ custom layers
@lq.utils.register_keras_custom_object
class LearnableBias(tf.keras.layers.Layer):
    r"""A learnt per-channel shift (ReActNet / Bi-Real "move" layer).

    \\[ y_{\dots c} = x_{\dots c} + b_c, \qquad b \text{ initialised to } 0. \\]

    Before a sign it is ReActNet's learnt threshold; around a PReLU it forms RPReLU.
    LCE converts it to a float add, fused into the neighbouring ops where possible.

    !!! example
        ```python
        y = LearnableBias(name="move")(x)
        ```
    """

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(int(input_shape[-1]),), initializer="zeros", trainable=True)
        super().build(input_shape)

    def call(self, inputs):
        return inputs + tf.cast(self.bias, inputs.dtype)


@lq.utils.register_keras_custom_object
class ChannelScale(tf.keras.layers.Layer):
    r"""A learnt per-channel scale (the BNEW ResNet20's ``scale0``), initialised to 1.

    \\[ y_{\dots c} = \alpha_c x_{\dots c}. \\]
    """

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(int(input_shape[-1]),), initializer="ones", trainable=True)
        super().build(input_shape)

    def call(self, inputs):
        return inputs * tf.cast(self.scale, inputs.dtype)


@lq.utils.register_keras_custom_object
class RPReLU(tf.keras.layers.Layer):
    r"""ReActNet's RPReLU: a PReLU between two learnt per-channel shifts.

    \\[ f(x_c) = \begin{cases} x_c - \gamma_c + \zeta_c & x_c > \gamma_c \\\
                              \beta_c (x_c - \gamma_c) + \zeta_c & x_c \leq \gamma_c \end{cases} \\]

    with \\(\gamma = \zeta = 0\\) and \\(\beta = 0.25\\) (PyTorch's PReLU default) at
    initialisation. The block's real-valued non-linearity in ReActNet-A and the BNEW ResNet20
    (it stays in every binarization: its output feeds the real-valued shortcut too).

    !!! example
        ```python
        y = RPReLU(name="block1_rprelu")(tf.keras.layers.Add()([shortcut, residual]))
        ```
    """

    def __init__(self, alpha_initializer: float = 0.25, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = float(alpha_initializer)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.shift_in = self.add_weight(name="shift_in", shape=(channels,), initializer="zeros", trainable=True)
        self.alpha = self.add_weight(
            name="alpha",
            shape=(channels,),
            initializer=tf.keras.initializers.Constant(self.alpha_initializer),
            trainable=True,
        )
        self.shift_out = self.add_weight(name="shift_out", shape=(channels,), initializer="zeros", trainable=True)
        super().build(input_shape)

    def call(self, inputs):
        x = inputs - tf.cast(self.shift_in, inputs.dtype)
        # A select: 3 TFLite ops (GREATER, MUL, SELECT); the relu(x) - alpha relu(-x) form is not
        # fused into PRELU by the LCE 0.16 converter and costs 5 (measured).
        x = tf.where(x > 0, x, tf.cast(self.alpha, inputs.dtype) * x)
        return x + tf.cast(self.shift_out, inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "alpha_initializer": self.alpha_initializer}


@lq.utils.register_keras_custom_object
class ZeroPadShortcut(tf.keras.layers.Layer):
    r"""He et al.'s parameter-free CIFAR ResNet shortcut (option A).

    Subsamples by ``strides`` and pads the channel axis with zeros up to ``channels``:
    \\( y = [x_{::s, ::s}, 0] \\), the extra channels split evenly before and after.
    """

    def __init__(self, channels: int, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.strides = int(strides)

    def call(self, inputs):
        x = inputs[:, :: self.strides, :: self.strides, :] if self.strides > 1 else inputs
        extra = self.channels - int(inputs.shape[-1])
        if extra < 0:
            raise ValueError(f"ZeroPadShortcut cannot reduce {inputs.shape[-1]} channels to {self.channels}")
        if extra:
            x = tf.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])
        return x

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape).as_list()
        for axis in (1, 2):
            if shape[axis] is not None:
                shape[axis] = -(-shape[axis] // self.strides)
        shape[-1] = self.channels
        return tf.TensorShape(shape)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "strides": self.strides}


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never below 90% of it (MobileNet rule)."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def check_positive_int(name: str, value, allow_zero: bool = False) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}")
    return value


def check_positive_float(name: str, value) -> float:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


def check_int_tuple(name: str, value, allow_empty: bool = False) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    try:
        value = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of integers > 0, got {value!r}") from None
    if (not value and not allow_empty) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    ):
        raise ValueError(f"{name} must be a {'' if allow_empty else 'non-empty '}sequence of integers > 0, got {value!r}")
    return value


def check_choice(name: str, value, allowed) -> str:
    if value not in allowed:
        raise ValueError(f"{name}: unknown value {value!r}; allowed: {', '.join(map(str, allowed))}")
    return value
