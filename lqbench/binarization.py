r"""What to binarize in a network, and how: the single source of Larq layer arguments.

A network's weight layers (Dense, Conv, DepthwiseConv) are numbered in data-flow order.
`Binarization` decides, for each of three *roles* -- the ``first`` weight layer (it sees the
image), ``hidden`` layers, and the ``last`` (classifier) layer -- the Larq arguments of that
layer (methods.md §1):

- binary weights: \\(w_b = sign(w)\\) forward, gradient to the latent \\(w\\) through the
  weight estimator (identity STE by default), latent weights clipped to [-1, 1] after every
  step (`larq.constraints.WeightClip`). Applied to hidden layers, and to the first and last
  layers only when ``keep_first_last=False``.
- binary activations, two conventions (``inputs``):

  - ``inputs="all"`` (default; Larq's and Larq Compute Engine's convention): the input of
    every weight layer except the first (whose input is the image) is \\(sign\\)-quantized,
    realised as the ``input_quantizer`` of the weight layer (the form LCE turns into
    bit-packed binary convolutions). Models then apply *no* float activation before a sign:
    `Binarization.activation` returns the identity. Inputs without an activation in the float
    network are signed too: MobileNetV2's expansion and head convolutions read
    \\(sign\\)(BN + skip), MLP-Mixer's ``fc1`` read \\(sign\\)(LayerNorm), classifiers read
    \\(sign\\)(global average pool).
  - ``inputs="activations"`` (paper 000's code, ``replace_activations_to_sign``): the sign
    *replaces each activation function* of the float network, at its place, as a layer
    (`Binarization.activation` returns the quantizer); weight layers get no input
    quantizer. Inputs that follow no activation stay real (MobileNetV2's expansion and head
    convolutions, Mixer's ``fc1`` after LayerNorm), a residual stream after a ReLU becomes
    binary, and a classifier after global pooling reads the mean of signs. Only what follows
    the sign through value-preserving ops (max-pooling, flattening) is binary at a weight
    layer's input (`lqbench.models.binary_input_layers`); such convolutions pad with 0, as
    PyTorch does, and LCE does not turn them into binary convolutions (no input quantizer).
- biases and batch/layer normalisation are always real-valued.

Binary-input convolutions with ``padding="same"`` pad with ``pad_values`` (default +1, the
value LCE's binary kernels implement; ``pad_values=0`` zero-pads like the PyTorch reference
code, for replication runs).

Every sign is Larq's, \\(sign(0) = +1\\) (what LCE's binary kernels compute);
``sign_at_zero=-1.0`` gives every weight and activation quantizer paper 000's
\\(sign(0) = -1\\) (its code's ``x > 0 ? 1 : -1``; `lqbench.estimators.SignAtZero`), for
replication runs: binary integer sums hit exactly 0 at initialisation (zero biases, batch
normalisation with \\(\\beta = 0\\) or untrained running statistics), where the two
conventions differ.

Weights and activations are toggled independently: the four combinations of paper 000
Tables 4-6 are ``Binarization(weights=w, activations=a)`` for ``w, a`` in {True, False}.

!!! example
    ```python
    b = lqbench.Binarization(weights=True, activations=True, activation_estimator="approx_sign")
    x = lq.layers.QuantConv2D(128, 3, padding="same", use_bias=False, **b.conv_kwargs("hidden"))(x)
    ```

# References
- [Courbariaux, Hubara, Soudry, El-Yaniv & Bengio, Binarized Neural Networks: Training Deep
  Neural Networks with Weights and Activations Constrained to +1 or -1, 2016](https://arxiv.org/abs/1602.02830)
  (sign weights and activations, latent weights clipped to [-1, 1], first and last layers kept real).
- [Courbariaux, Bengio & David, BinaryConnect: Training Deep Neural Networks with binary weights
  during propagations, NeurIPS 2015](https://arxiv.org/abs/1511.00363) (binary weights only, W1A32).
- [Bannink et al., Larq Compute Engine: Design, Benchmark, and Deploy State-of-the-Art Binarized
  Neural Networks, MLSys 2021](https://arxiv.org/abs/2011.09398) (binary convolutions from
  ``input_quantizer`` + ``kernel_quantizer``, +1 padding).
- [Crulis, Serres, de Runz & Venturini, An experimental comparative study of backpropagation
  and alternatives for training binary neural networks for image classification, 2024
  (paper 000)](https://arxiv.org/abs/2408.04460); code: https://github.com/BenCrulis/binary_nn_extended
  (``replace_activations_to_sign``: ``inputs="activations"``; weights and activations binarized separately).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from lqbench._lazy import lazy_module

estimators = lazy_module("lqbench.estimators")
lq = lazy_module("larq")

ROLES = ("first", "hidden", "last")
INPUTS = ("all", "activations")


@dataclasses.dataclass(frozen=True)
class Binarization:
    """Which tensors are binary and which gradient estimator each uses.

    # Arguments
        weights: binarize weights of hidden weight layers.
        activations: binarize hidden activations (inputs of all weight layers but the first).
        weight_estimator: estimator name for weights (`lqbench.estimators.available()`).
        activation_estimator: estimator name for activations.
        keep_first_last: keep the weights of the first and last weight layers real-valued.
        clip_weights: clip latent binary weights to [-1, 1] after every step.
        weight_estimator_kwargs, activation_estimator_kwargs: extra estimator arguments,
            e.g. ``{"beta": 5.0}``.
        inputs: where binary activations are: ``"all"`` (every non-first weight layer's input,
            Larq/LCE) or ``"activations"`` (the sign replaces the float network's activation
            functions, paper 000's code).
        pad_values: padding value of binary-input ``"same"`` convolutions: 1.0 (LCE) or 0.0
            (the PyTorch references).
        sign_at_zero: the value of every sign at exactly 0: 1.0 (Larq, LCE) or -1.0
            (paper 000's code); -1.0 only with deterministic estimators at 0 (not ``rsign``,
            ``gumbel``).
    """

    weights: bool = True
    activations: bool = True
    weight_estimator: str = "ste"
    activation_estimator: str = "ste_clipped"
    keep_first_last: bool = True
    clip_weights: bool = True
    weight_estimator_kwargs: dict = dataclasses.field(default_factory=dict, hash=False)
    activation_estimator_kwargs: dict = dataclasses.field(default_factory=dict, hash=False)
    inputs: str = "all"
    pad_values: float = 1.0
    sign_at_zero: float = 1.0

    def __post_init__(self):
        if self.inputs not in INPUTS:
            raise ValueError(f"Binarization.inputs: unknown value {self.inputs!r}; allowed: {', '.join(INPUTS)}")
        if isinstance(self.pad_values, bool) or self.pad_values not in (0.0, 1.0):
            raise ValueError(f"Binarization.pad_values: {self.pad_values!r} is not allowed; allowed: 0.0, 1.0")
        object.__setattr__(self, "pad_values", float(self.pad_values))
        if isinstance(self.sign_at_zero, bool) or self.sign_at_zero not in (1.0, -1.0):
            raise ValueError(f"Binarization.sign_at_zero: {self.sign_at_zero!r} is not allowed; allowed: 1.0, -1.0")
        object.__setattr__(self, "sign_at_zero", float(self.sign_at_zero))
        for field in ("weight_estimator", "activation_estimator"):
            name = getattr(self, field)
            if name not in estimators.available():
                raise ValueError(
                    f"Binarization.{field}: unknown estimator {name!r}; "
                    f"available: {', '.join(estimators.available())}"
                )
        if self.weight_estimator == "rsign":
            raise ValueError("Binarization.weight_estimator: 'rsign' binarizes activations only")
        for field in ("weight_estimator", "activation_estimator"):
            if self.sign_at_zero != 1.0 and getattr(self, field) in ("rsign", "gumbel"):
                raise ValueError(f"Binarization.sign_at_zero: -1.0 is not supported with {field} "
                                 f"{getattr(self, field)!r} (its sign is not taken at 0: a learnt threshold or "
                                 "noise); allowed there: 1.0")

    @classmethod
    def full_precision(cls) -> "Binarization":
        """Nothing binary: the float baseline."""
        return cls(weights=False, activations=False)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> "Binarization":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(config) - names
        if unknown:
            raise ValueError(
                f"Binarization: unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(names))}"
            )
        return cls(**config)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def is_full_precision(self) -> bool:
        return not (self.weights or self.activations)

    @property
    def label(self) -> str:
        """Short label in the papers' W/A notation, e.g. ``W1A1``, ``W32A1``."""
        return f"W{1 if self.weights else 32}A{1 if self.activations else 32}"

    def _check_role(self, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown layer role {role!r}; allowed: {', '.join(ROLES)}")

    def binary_weights(self, role: str) -> bool:
        """Whether the weights of a layer in ``role`` are binary."""
        self._check_role(role)
        return self.weights and (role == "hidden" or not self.keep_first_last)

    def binary_inputs(self, role: str) -> bool:
        """Whether a layer in ``role`` sign-quantizes its own input (an ``input_quantizer``).

        Always False with ``inputs="activations"``: the signs are then activation layers
        (`activation`), and which weight layers read binary values depends on the network
        (`lqbench.models.binary_input_layers`).
        """
        self._check_role(role)
        return self.activations and self.inputs == "all" and role != "first"

    def _quantizer(self, name: str, kwargs: dict):
        quantizer = estimators.get(name, **kwargs)
        if self.sign_at_zero != 1.0:
            quantizer = estimators.SignAtZero(quantizer, value=self.sign_at_zero)
        return quantizer

    def input_quantizer(self, role: str):
        if not self.binary_inputs(role):
            return None
        return self._quantizer(self.activation_estimator, self.activation_estimator_kwargs)

    def kernel_quantizer(self, role: str):
        if not self.binary_weights(role):
            return None
        return self._quantizer(self.weight_estimator, self.weight_estimator_kwargs)

    def kernel_constraint(self, role: str):
        if not (self.binary_weights(role) and self.clip_weights):
            return None
        return lq.constraints.WeightClip(1.0)

    def dense_kwargs(self, role: str) -> dict[str, Any]:
        """Arguments of `larq.layers.QuantDense` for a layer in ``role``."""
        return {
            "input_quantizer": self.input_quantizer(role),
            "kernel_quantizer": self.kernel_quantizer(role),
            "kernel_constraint": self.kernel_constraint(role),
        }

    def conv_kwargs(self, role: str) -> dict[str, Any]:
        """Arguments of `larq.layers.QuantConv2D` for a layer in ``role``.

        Binary-input convolutions pad with ``pad_values`` (+1 by default, the value Larq
        Compute Engine's binary kernels support on every target for ``padding="same"``).
        """
        kwargs = self.dense_kwargs(role)
        kwargs["pad_values"] = self.pad_values if self.binary_inputs(role) else 0.0
        return kwargs

    def depthwise_kwargs(self, role: str) -> dict[str, Any]:
        """Arguments of `larq.layers.QuantDepthwiseConv2D` for a layer in ``role``."""
        kwargs = {
            "input_quantizer": self.input_quantizer(role),
            "depthwise_quantizer": self.kernel_quantizer(role),
            "depthwise_constraint": self.kernel_constraint(role),
        }
        kwargs["pad_values"] = self.pad_values if self.binary_inputs(role) else 0.0
        return kwargs

    def activation(self, float_activation: str | None = "relu", name: str | None = None):
        """The activation a model applies where its float version applies ``float_activation``.

        Real activations: ``float_activation``. Binary activations with ``inputs="all"``: the
        sign lives in the next layer's ``input_quantizer``, so the model applies the identity
        here (``"linear"``; a ReLU before a sign would make every value +1). With
        ``inputs="activations"``: a new activation-estimator quantizer (a Keras layer named
        ``name``), the sign in place of the activation function as in paper 000's
        ``replace_activations_to_sign``.
        """
        if float_activation is None:
            return "linear"
        if not self.activations:
            return float_activation
        if self.inputs == "all":
            return "linear"
        quantizer = self._quantizer(self.activation_estimator, self.activation_estimator_kwargs)
        if name is not None:
            quantizer = type(quantizer).from_config({**quantizer.get_config(), "name": name})
        return quantizer

    def estimator_names(self) -> set[str]:
        """Estimators used, for `lqbench.estimators.callbacks_for`."""
        names = set()
        if self.weights:
            names.add(self.weight_estimator)
        if self.activations:
            names.add(self.activation_estimator)
        return names
