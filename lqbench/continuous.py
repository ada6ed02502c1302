r"""Continuous binarization of activations (Sakr et al., paper 002).

A hidden activation is the parametrised clipping function (PCF) with learnable slope
\\(m\\) and scale \\(\alpha\\) (one pair per layer),

\\[ \text{PCF}(x) = \text{clip}\left(\frac{x}{m} + \frac{\alpha}{2}, 0, \alpha\right), \qquad
    \text{SBAF}(x) = \alpha \cdot 1_{x > 0}, \\]

and as \\(m \to 0\\) the PCF becomes the scaled binary activation (SBAF). Training uses
true gradients throughout (no straight-through estimator):

1. **pre-training**: every hidden activation is a PCF with fixed \\(m = 0.5\\), \\(\alpha = 2\\)
   (a clipping activation; this is also the paper's full-precision baseline);
2. **stage** \\(l = 1..L\\) (Algorithm 1): activations \\(1..l-1\\) are SBAF and every layer
   before activation \\(l\\) is frozen; activation \\(l\\) is a PCF whose \\(m_l\\) and
   \\(\alpha_l\\) are learnt with the penalty \\(\lambda_l |m_l|\\) (``"l1"``) or
   \\(\lambda_l m_l^2\\) (``"l2"``) added to the loss; later activations stay PCF (fixed).
   \\(\lambda_l\\) depends on what follows the activation: fully connected < convolution <
   pooling (defaults 0.001 / 0.01 / 0.1, the paper's CIFAR-10 values; its MNIST run used
   L2 with \\(\lambda = 1\\) everywhere);
3. at the end every hidden activation is SBAF: the network has binary activations
   \\(\{0, \alpha_l\}\\) (an affine image of \\(\{-1, +1\}\\)) and real-valued weights.

The training schedule is the method `lqbench.methods.cb.ContinuousBinarization` (``method = "cb"``).
The model must contain `PCF` layers: build it with
`mlp` / `cnn` (the paper's MNIST MLP and BinaryNet-style CNNs), or convert a float model
(e.g. a zoo model built with ``Binarization.full_precision()``) with `from_float`, which
replaces its hidden ReLU/tanh/hard-tanh activations by PCFs.

!!! example
    ```python
    model = lqbench.continuous.mlp((28, 28, 1), 10)
    method = lqbench.methods.get("cb", slope_regularizer="l2", slope_lambdas=[1.0, 1.0, 1.0])
    history = lqbench.methods.fit(model, train, method=method, epochs=10, validation_data=test)
    assert all(layer.is_binary for layer in lqbench.continuous.pcf_layers(model))
    ```

# References
- [Sakr et al., True Gradient-Based Training of Deep Binary Activated Neural Networks via
  Continuous Binarization (ICASSP 2018)](https://research.ibm.com/publications/true-gradient-based-training-of-deep-binary-activated-neural-networks-via-continuous-binarization) (paper 002;
  no public reference code: pinned to its equations and Algorithm 1).
"""
from __future__ import annotations

from typing import Sequence

import larq as lq
import tensorflow as tf

__all__ = ["PCF", "REGULARIZERS", "cnn", "following_kind", "from_float", "mlp", "pcf_layers", "set_binary"]

REGULARIZERS = ("l1", "l2")


@lq.utils.register_keras_custom_object
class PCF(tf.keras.layers.Layer):
    r"""Parametrised clipping activation, switchable to its binary limit (SBAF).

    \\[ y = \begin{cases} \text{clip}(x / m + \alpha / 2, 0, \alpha) & \text{PCF mode} \\\
        \alpha \cdot 1_{x > 0} & \text{binary (SBAF) mode} \end{cases} \\]

    Gradients are the true ones: \\(\partial y / \partial x = 1/m\\),
    \\(\partial y / \partial m = -x / m^2\\), \\(\partial y / \partial \alpha = 1/2\\) inside the
    linear region; \\(\partial y / \partial \alpha = 1\\) where clipped at \\(\alpha\\); 0
    otherwise. In SBAF mode \\(\partial y / \partial x = 0\\) and
    \\(\partial y / \partial \alpha = 1_{x > 0}\\). The slope penalty
    \\(\lambda |m|\\) or \\(\lambda m^2\\) is added as a layer loss with \\(\lambda\\) held in
    the non-trainable ``slope_lambda`` variable (0 unless this layer's stage is training).

    # Arguments
        slope, scale: initial \\(m > 0\\) and \\(\alpha > 0\\).
        slope_regularizer: ``"l1"`` or ``"l2"``.
        binary: start in SBAF mode.
        min_slope: lower bound kept on \\(m\\) (a projection after each step).
    """

    def __init__(self, slope: float = 0.5, scale: float = 2.0, slope_regularizer: str = "l2", binary: bool = False,
                 min_slope: float = 1e-4, **kwargs):
        super().__init__(**kwargs)
        if not (slope > 0 and scale > 0 and min_slope > 0):
            raise ValueError(f"PCF: slope={slope}, scale={scale}, min_slope={min_slope} must all be > 0")
        if slope_regularizer not in REGULARIZERS:
            raise ValueError(f"PCF: unknown slope_regularizer {slope_regularizer!r}; allowed: {', '.join(REGULARIZERS)}")
        self.initial_slope, self.initial_scale = float(slope), float(scale)
        self.slope_regularizer, self.initial_binary, self.min_slope = slope_regularizer, bool(binary), float(min_slope)

    def build(self, input_shape):
        floor = self.min_slope
        self.slope = self.add_weight(
            name="slope", shape=(), initializer=tf.keras.initializers.Constant(self.initial_slope),
            constraint=lambda m: tf.maximum(m, floor),
        )
        self.scale = self.add_weight(name="scale", shape=(), initializer=tf.keras.initializers.Constant(self.initial_scale))
        self.binary = self.add_weight(name="binary", shape=(), trainable=False,
                                      initializer=tf.keras.initializers.Constant(float(self.initial_binary)))
        self.slope_lambda = self.add_weight(name="slope_lambda", shape=(), trainable=False, initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        m = tf.cast(self.slope, inputs.dtype)
        alpha = tf.cast(self.scale, inputs.dtype)
        pcf = tf.clip_by_value(inputs / m + alpha / 2.0, 0.0, alpha)
        sbaf = alpha * tf.cast(inputs > 0, inputs.dtype)
        penalty = tf.abs(self.slope) if self.slope_regularizer == "l1" else tf.square(self.slope)
        self.add_loss(self.slope_lambda * penalty)
        return tf.where(self.binary > 0.5, sbaf, pcf)

    @property
    def is_binary(self) -> bool:
        return bool(self.built and float(self.binary.numpy()) > 0.5)

    def get_config(self):
        return {**super().get_config(), "slope": self.initial_slope, "scale": self.initial_scale,
                "slope_regularizer": self.slope_regularizer, "binary": self.initial_binary,
                "min_slope": self.min_slope}


def pcf_layers(model) -> list[PCF]:
    """`PCF` layers of ``model`` in layer order (the wrapped ``.model`` of a wrapper)."""
    inner = getattr(model, "model", None)
    model = inner if isinstance(inner, tf.keras.Model) else model
    return [layer for layer in model.layers if isinstance(layer, PCF)]


def set_binary(model, binary: bool = True) -> None:
    """Switch every `PCF` of ``model`` to SBAF (``binary=True``) or back to PCF."""
    for layer in pcf_layers(model):
        layer.binary.assign(1.0 if binary else 0.0)


_POOLING = (tf.keras.layers.MaxPooling2D, tf.keras.layers.AveragePooling2D, tf.keras.layers.MaxPooling1D,
            tf.keras.layers.AveragePooling1D, tf.keras.layers.GlobalAveragePooling2D,
            tf.keras.layers.GlobalMaxPooling2D)
_CONV = (tf.keras.layers.Conv1D, tf.keras.layers.Conv2D, tf.keras.layers.DepthwiseConv2D,
         tf.keras.layers.SeparableConv2D, lq.layers.QuantConv2D, lq.layers.QuantDepthwiseConv2D,
         lq.layers.QuantSeparableConv2D, lq.layers.QuantConv1D)
_DENSE = (tf.keras.layers.Dense, lq.layers.QuantDense)


def following_kind(model, layer) -> str:
    """``"fc"``, ``"conv"`` or ``"pool"``: the kind of layer activation ``layer`` precedes (paper 002's
    \\(\\lambda_1 < \\lambda_2 < \\lambda_3\\)).

    The first weight or pooling layer after ``layer`` decides; a block ordered
    conv -> pool -> BN -> activation (the zoo's BinaryNet/VGG order, where the activation sits
    *after* its block's pooling) counts as "pool" too: in the paper's order the same activation
    precedes that pooling layer.
    """
    inner = getattr(model, "model", None)
    model = inner if isinstance(inner, tf.keras.Model) else model
    layers = model.layers
    index = layers.index(layer)
    for previous in reversed(layers[:index]):
        if isinstance(previous, (*_CONV, *_DENSE)):
            break
        if isinstance(previous, _POOLING):
            return "pool"
    for nxt in layers[index + 1:]:
        if isinstance(nxt, _POOLING):
            return "pool"
        if isinstance(nxt, _CONV):
            return "conv"
        if isinstance(nxt, _DENSE):
            return "fc"
    return "fc"


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------
def _activation(kind: str, slope: float, scale: float, name: str):
    if kind == "pcf":
        return PCF(slope, scale, name=name)
    if kind == "relu":
        return tf.keras.layers.Activation("relu", name=name)
    raise ValueError(f"unknown activation kind {kind!r}; allowed: pcf, relu")


def mlp(input_shape=(28, 28, 1), num_classes: int = 10, hidden: Sequence[int] = (2048, 2048, 2048),
        activation: str = "pcf", batch_norm: bool = True, dropout: float = 0.0, slope: float = 0.5,
        scale: float = 2.0, name: str = "cb_mlp") -> tf.keras.Model:
    """Paper 002's MNIST MLP (784-2048-2048-2048-10, logits output), BinaryNet style.

    ``activation``: ``"pcf"`` (continuous binarization; with no stages trained it is the
    clipping full-precision baseline), ``"ste"`` (binary sign activations with Larq's
    ``ste_sign`` as the next layer's input quantizer, the STE baseline) or ``"relu"``.
    Each hidden layer is Dense -> BatchNorm -> activation (-> Dropout).
    """
    if activation not in ("pcf", "ste", "relu"):
        raise ValueError(f"mlp: unknown activation {activation!r}; allowed: pcf, ste, relu")
    inputs = tf.keras.Input(input_shape)
    x = tf.keras.layers.Flatten()(inputs)
    for i, width in enumerate(hidden):
        quantizer = "ste_sign" if activation == "ste" and i > 0 else None
        x = lq.layers.QuantDense(width, input_quantizer=quantizer, use_bias=not batch_norm, name=f"dense{i + 1}")(x)
        if batch_norm:
            x = tf.keras.layers.BatchNormalization(momentum=0.9, name=f"bn{i + 1}")(x)
        if activation != "ste":
            x = _activation(activation, slope, scale, f"act{i + 1}")(x)
        if dropout:
            x = tf.keras.layers.Dropout(dropout)(x)
    quantizer = "ste_sign" if activation == "ste" and hidden else None
    outputs = lq.layers.QuantDense(num_classes, input_quantizer=quantizer, name="logits")(x)
    return tf.keras.Model(inputs, outputs, name=name)


def cnn(input_shape=(32, 32, 3), num_classes: int = 10,
        architecture: Sequence[str] = ("128C3", "128C3", "MP2", "256C3", "256C3", "MP2", "512C3", "512C3",
                                       "1024FC", "1024FC"),
        activation: str = "pcf", slope: float = 0.5, scale: float = 2.0, name: str = "cb_cnn") -> tf.keras.Model:
    """Paper 002's BinaryNet-style CNN (default: the CIFAR-10 one; SVHN: 64C3-64C3-MP2-128C3-
    128C3-MP2-256C3-256C3-1024FC-1024FC-1024FC). Each conv/FC is followed by BatchNorm and the
    activation (``"pcf"`` or ``"relu"``); ``MP2`` is 2x2 max-pooling; logits output."""
    if activation not in ("pcf", "relu"):
        raise ValueError(f"cnn: unknown activation {activation!r}; allowed: pcf, relu")
    inputs = tf.keras.Input(input_shape)
    x = inputs
    flat = False
    for i, token in enumerate(architecture):
        if token.startswith("MP"):
            x = tf.keras.layers.MaxPooling2D(int(token[2:]), name=f"pool{i}")(x)
            continue
        if token.endswith("FC"):
            if not flat:
                x = tf.keras.layers.Flatten()(x)
                flat = True
            x = tf.keras.layers.Dense(int(token[:-2]), use_bias=False, name=f"fc{i}")(x)
        elif "C" in token:
            filters, size = token.split("C")
            x = tf.keras.layers.Conv2D(int(filters), int(size), padding="same", use_bias=False, name=f"conv{i}")(x)
        else:
            raise ValueError(f"cnn: unknown architecture token {token!r} (use e.g. 128C3, MP2, 1024FC)")
        x = tf.keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = _activation(activation, slope, scale, f"act{i}")(x)
    if not flat:
        x = tf.keras.layers.Flatten()(x)
    outputs = tf.keras.layers.Dense(num_classes, name="logits")(x)
    return tf.keras.Model(inputs, outputs, name=name)


_REPLACEABLE = ("relu", "tanh", "hard_tanh", "hard_sigmoid", "sigmoid", "relu6", "elu", "selu", "swish", "gelu")


def from_float(model: tf.keras.Model, slope: float = 0.5, scale: float = 2.0) -> tf.keras.Model:
    """A copy of the functional ``model`` whose hidden activations are `PCF` layers.

    ``Activation`` layers with one of ReLU/tanh/hard-tanh/sigmoid-like functions and
    ``ReLU`` layers are replaced (the output layer's softmax, if any, is kept); every other
    layer is cloned with its weights. Activations fused into Dense/Conv layers
    (``Dense(..., activation="relu")``) are not touched: lqbench models use separate
    ``Activation`` layers (``Binarization.activation``).
    """

    def replace(layer):
        is_act = isinstance(layer, tf.keras.layers.Activation) and getattr(layer.activation, "__name__", "") in _REPLACEABLE
        if is_act or isinstance(layer, tf.keras.layers.ReLU):
            return PCF(slope, scale, name=f"{layer.name}_pcf")
        return layer.__class__.from_config(layer.get_config())

    clone = tf.keras.models.clone_model(model, clone_function=replace)
    replaced = [layer for layer in clone.layers if isinstance(layer, PCF)]
    if not replaced:
        raise ValueError(f"from_float: model {model.name!r} has no replaceable activation layers ({', '.join(_REPLACEABLE)})")
    for layer in model.layers:
        if layer.weights:
            clone.get_layer(layer.name).set_weights(layer.get_weights())
    return clone
