r"""Sign gradient estimators as Larq quantizers.

Every estimator computes the same forward pass, Larq's sign with ``sign(0) = +1``,

\\[ q(x) = \begin{cases} -1 & x < 0 \\\ +1 & x \geq 0 \end{cases} \\]

and differs only in the pseudo-gradient \\(\partial q / \partial x\\) used on the backward
pass (paper 003, methods.md §2):

| lqbench name   | backward \\(\partial q/\partial x\\)                                              | class |
|----------------|-------------------------------------------------------------------------------------|-------|
| `ste`          | \\(1\\) (identity straight-through)                                                   | `larq.quantizers.SteSign(clip_value=None)` |
| `ste_clipped`  | \\(1_{\|x\| \leq 1}\\) (hard tanh)                                                    | `larq.quantizers.SteSign` |
| `approx_sign`  | \\((2 - 2\|x\|) 1_{\|x\| \leq 1}\\) (Bi-Real)                                         | `larq.quantizers.ApproxSign` |
| `tanh`         | \\(\beta (1 - \tanh^2(\beta x))\\)                                                   | `TanhSign` |
| `swish_sign`   | \\(\beta (2 - \beta x \tanh(\beta x / 2)) / (1 + \cosh(\beta x))\\)                 | `larq.quantizers.SwishSign` |
| `cosh2`        | \\((2 / \cosh(\beta x))^2\\) (paper 003 eq. 7)                                       | `Cosh2Sign` |
| `gumbel`       | \\(\partial s / \partial x\\), \\(s = \tanh((2x + g_1 - g_2) / (2\tau))\\)            | `GumbelSign` |
| `ede`          | \\(k t (1 - \tanh^2(t x))\\), \\(t, k\\) set per epoch by `EDESchedule`                | `EDESign` |
| `rsign`        | clipped STE at the learnt threshold: \\(1_{\|x - b\| \leq 1}\\), \\(q = sign(x - b)\\) | `RSign` |

Paper 003's rows map to: "STE" -> `ste_clipped` (its eq. 3, the hard-tanh-clipped STE; with
Larq's weight clip on latent weights `ste` and `ste_clipped` coincide for weights, not for
activations), "second order" -> `approx_sign` (eq. 5), "tanh" -> `tanh` (eq. 6, \(\beta = 1\)),
"2/cosh x" -> `cosh2` (eq. 7, \(\beta = 1\); `swish_sign` is BNN+'s SignSwish, a different member
of that family, kept as an option), "Gumbel softmax" -> `gumbel`, IR-Net -> `ede` (IR-Net's
``BinaryQuantize.backward``, ``CIFAR-10/VGG-Small/modules/binaryfunction.py:13-16`` @f63a590, and
its ``Log_UP`` schedule, ``main.py:123-137``). `bench/reference/estimators.py` compares each
against these formulas (`docs/fidelity.md`).

Larq's own quantizers are reused (not rewritten) for `ste`, `ste_clipped`, `approx_sign`
and `swish_sign`. The new ones are registered Keras custom objects, so they serialise with
saved models and can be referred to by string in Larq layers. The Keras string of `tanh`
is `"tanh_sign"` (plain `"tanh"` is Keras's activation); all others use their lqbench name.

!!! example
    ```python
    import lqbench
    import larq as lq
    layer = lq.layers.QuantDense(64, input_quantizer=lqbench.estimators.get("tanh"),
                                 kernel_quantizer="ste")
    ```

# References
- So, *A Survey of Gradient Estimators for Binary Neural Networks for Image Classification*,
  EE 367 report, Stanford University (paper 003): the estimators compared, its eqs. 3-7.
- [Bengio, Léonard & Courville, Estimating or Propagating Gradients Through Stochastic Neurons
  for Conditional Computation, 2013](https://arxiv.org/abs/1308.3432) (the straight-through estimator).
- [Courbariaux, Hubara, Soudry, El-Yaniv & Bengio, Binarized Neural Networks: Training Deep
  Neural Networks with Weights and Activations Constrained to +1 or -1, 2016](https://arxiv.org/abs/1602.02830)
  (`ste_clipped`).
- [Liu, Wu, Luo, Yang, Liu & Cheng, Bi-Real Net: Enhancing the Performance of 1-bit CNNs With
  Improved Representational Capability and Advanced Training Algorithm, ECCV 2018](https://arxiv.org/abs/1808.00278)
  (`approx_sign`).
- [Darabi et al., BNN+: Improved Binary Network Training,
  2018](https://arxiv.org/abs/1812.11800) (`swish_sign`).
- `tanh`, `cosh2`, `gumbel`, `ede`, `rsign`: see their classes.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import larq as lq
import tensorflow as tf

from lqbench import walk

__all__ = [
    "TanhSign",
    "Cosh2Sign",
    "GumbelSign",
    "EDESign",
    "RSign",
    "SignAtZero",
    "SteIdentity",
    "EDESchedule",
    "GumbelTemperatureSchedule",
    "available",
    "get",
    "ede_parameters",
    "quantizers_of",
]


def _register(alias: str):
    """Register a class as a Keras custom object under its class name and an alias."""

    def decorator(cls):
        lq.utils.register_keras_custom_object(cls)
        lq.utils.register_alias(alias)(cls)
        return cls

    return decorator


def _sign_with_gradient(x: tf.Tensor, gradient: Callable[[tf.Tensor], tf.Tensor]) -> tf.Tensor:
    """``lq.math.sign(x)`` whose backward pass multiplies ``dy`` by ``gradient(x)``."""

    @tf.custom_gradient
    def _call(x):
        def grad(dy):
            return dy * gradient(x)

        return lq.math.sign(x), grad

    return _call(x)


class _SignEstimator(lq.quantizers._BaseQuantizer):
    """Base class: a 1-bit quantizer with a configurable pseudo-gradient."""

    precision = 1

    def pseudo_gradient(self, x: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def call(self, inputs):
        outputs = _sign_with_gradient(inputs, self.pseudo_gradient)
        return super().call(outputs)


@_register("ste")
class SteIdentity(lq.quantizers.SteSign):
    r"""Sign with the identity straight-through estimator (non-saturating).

    \\[ q(x) = sign(x), \qquad \frac{\partial q}{\partial x} = 1. \\]

    Used for binary weights: with latent weights clipped to [-1, 1] after every step
    (`larq.constraints.WeightClip`), the clipped and identity STE coincide. Paper 003's STE
    rows use the clipped form (its eq. 3, `ste_clipped`), which differs from this one on
    activations.

    !!! example
        ```python
        layer = lq.layers.QuantDense(64, kernel_quantizer="ste",
                                     kernel_constraint=lq.constraints.WeightClip(1.0))
        ```

    # Arguments
        clip_value: ``None`` (default, identity); a float gives Larq's clipped `SteSign`.

    # References
        - [Bengio, Léonard & Courville, Estimating or Propagating Gradients Through Stochastic
          Neurons for Conditional Computation, 2013](https://arxiv.org/abs/1308.3432)
        - [Courbariaux, Bengio & David, BinaryConnect: Training Deep Neural Networks with binary
          weights during propagations, NeurIPS 2015](https://arxiv.org/abs/1511.00363)
    """

    def __init__(self, clip_value: float | None = None, **kwargs):
        super().__init__(clip_value=clip_value, **kwargs)


@_register("tanh_sign")
class TanhSign(_SignEstimator):
    r"""Sign with the derivative of \\(\tanh(\beta x)\\) as pseudo-gradient (paper 003 eq. 6).

    \\[ \frac{\partial q}{\partial x} = \beta \left(1 - \tanh^2(\beta x)\right). \\]

    With \\(\beta = 1\\) this is paper 003's "tanh" estimator.

    !!! example
        ```python
        quantizer = lqbench.estimators.TanhSign(beta=1.0)  # or lqbench.estimators.get("tanh")
        layer = lq.layers.QuantConv2D(32, 3, input_quantizer=quantizer, kernel_quantizer="ste")
        ```

    # Arguments
        beta: slope of the tanh; larger values approach the true (Dirac) gradient.

    # References
        - So, *A Survey of Gradient Estimators for Binary Neural Networks for Image Classification*,
          EE 367 report, Stanford University (paper 003), eq. 6.
    """

    def __init__(self, beta: float = 1.0, **kwargs):
        if beta <= 0:
            raise ValueError(f"TanhSign beta must be > 0, got {beta}")
        self.beta = float(beta)
        super().__init__(**kwargs)

    def pseudo_gradient(self, x):
        t = tf.tanh(self.beta * x)
        return self.beta * (1.0 - t * t)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


@_register("cosh2")
class Cosh2Sign(_SignEstimator):
    r"""Sign with the squared-sech pseudo-gradient of paper 003 eq. 7.

    \\[ \frac{\partial q}{\partial x} = \left(\frac{2}{\cosh(\beta x)}\right)^2. \\]

    With \\(\beta = 1\\) this is exactly paper 003's "2/cosh x" estimator (its eq. 7), the
    choice of the paper-003 presets. For the BNN+ "SignSwish" form of the 2/cosh family
    (methods.md's default, \\(\beta = 5\\)) use `swish_sign` (Larq's `SwishSign`).

    !!! example
        ```python
        layer = lq.layers.QuantConv2D(32, 3, input_quantizer="cosh2", kernel_quantizer="ste")
        ```

    # Arguments
        beta: width of the bump (> 0); 1 is paper 003's estimator.

    # References
        - So, *A Survey of Gradient Estimators for Binary Neural Networks for Image Classification*,
          EE 367 report, Stanford University (paper 003), eq. 7, which credits J. Kim's
          code https://github.com/penpaperkeycode/Binarized_Neural_Network_Pytorch
        - [Darabi et al., BNN+: Improved Binary Network Training,
          2018](https://arxiv.org/abs/1812.11800) (the SignSwish member of the family)
    """

    def __init__(self, beta: float = 1.0, **kwargs):
        if beta <= 0:
            raise ValueError(f"Cosh2Sign beta must be > 0, got {beta}")
        self.beta = float(beta)
        super().__init__(**kwargs)

    def pseudo_gradient(self, x):
        # (2 / cosh(bx))^2 written as 4 (1 - tanh^2(bx)) so it cannot overflow for large |x|.
        t = tf.tanh(self.beta * x)
        return 4.0 * (1.0 - t * t)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


class _ScheduledSign(_SignEstimator):
    """A sign estimator whose hyperparameters live in non-trainable variables.

    Variables let a callback change them between epochs without retracing compiled
    (graph or XLA) train functions.
    """

    _schedule_variables: tuple[tuple[str, float], ...] = ()

    def build(self, input_shape):
        for name, initial in self._schedule_variables:
            variable = tf.Variable(
                float(getattr(self, f"initial_{name}")),
                trainable=False,
                dtype=tf.float32,
                name=name,
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
            setattr(self, name, variable)
        super().build(input_shape)

    def assign(self, **values: float) -> None:
        for name, value in values.items():
            getattr(self, name).assign(float(value))


@_register("gumbel")
class GumbelSign(_ScheduledSign):
    r"""Stochastic binarization by the Gumbel-softmax trick over the two states {-1, +1}.

    Treating -1 and +1 as categories with logits \\(-x\\) and \\(+x\\), a Gumbel-softmax
    sample at temperature \\(\tau\\) is \\(s = \tanh((2x + g_1 - g_2) / (2\tau))\\) with
    \\(g_1, g_2 \sim \text{Gumbel}(0, 1)\\). In training the forward pass is the hard sample
    \\(sign(2x + g_1 - g_2)\\) and the backward pass is \\(\partial s / \partial x =
    (1 - s^2) / \tau\\) (straight-through Gumbel-softmax). At inference the forward pass is the
    deterministic \\(sign(x)\\). Anneal \\(\tau\\) with `GumbelTemperatureSchedule`.

    !!! example
        ```python
        layer = lq.layers.QuantDense(64, input_quantizer=lqbench.estimators.GumbelSign(tau=1.0))
        callbacks = [lqbench.estimators.GumbelTemperatureSchedule(initial=1.0, rate=0.9)]
        ```

    # Arguments
        tau: initial temperature (> 0).

    # References
        - [Jang, Gu & Poole, Categorical Reparameterization with Gumbel-Softmax,
          ICLR 2017](https://arxiv.org/abs/1611.01144)
        - [Maddison, Mnih & Teh, The Concrete Distribution: A Continuous Relaxation of Discrete
          Random Variables, ICLR 2017](https://arxiv.org/abs/1611.00712)
        - So, *A Survey of Gradient Estimators for Binary Neural Networks for Image Classification*,
          EE 367 report, Stanford University (paper 003) ("Gumbel softmax" rows).
    """

    _schedule_variables = (("tau", 1.0),)

    def __init__(self, tau: float = 1.0, **kwargs):
        if tau <= 0:
            raise ValueError(f"GumbelSign tau must be > 0, got {tau}")
        self.initial_tau = float(tau)
        super().__init__(**kwargs)

    def call(self, inputs, training=None):
        if training is None:
            training = tf.keras.backend.learning_phase()
        if isinstance(training, bool) or isinstance(training, int):
            outputs = self._sample(inputs) if training else lq.math.sign(inputs)
        else:
            outputs = tf.cond(
                tf.cast(training, tf.bool), lambda: self._sample(inputs), lambda: lq.math.sign(inputs)
            )
        return lq.quantizers._BaseQuantizer.call(self, outputs)

    def _sample(self, x):
        u = tf.random.uniform(tf.concat([[2], tf.shape(x)], 0), 1e-20, 1.0, dtype=x.dtype)
        gumbel = -tf.math.log(-tf.math.log(u))
        noise = gumbel[0] - gumbel[1]
        tau = tf.cast(self.tau, x.dtype)

        @tf.custom_gradient
        def _call(x):
            logits = 2.0 * x + noise

            def grad(dy):
                s = tf.tanh(logits / (2.0 * tau))
                return dy * (1.0 - s * s) / tau

            return lq.math.sign(logits), grad

        return _call(x)

    def get_config(self):
        return {**super().get_config(), "tau": self.initial_tau}


@_register("ede")
class EDESign(_ScheduledSign):
    r"""IR-Net's Error Decay Estimator (EDE): a tanh pseudo-gradient that sharpens over training.

    \\[ \frac{\partial q}{\partial x} = k\, t \left(1 - \tanh^2(t x)\right), \qquad
        t = T_{min} 10^{\frac{i}{N} \log_{10}(T_{max}/T_{min})}, \quad k = \max(1/t, 1) \\]

    at epoch \\(i\\) of \\(N\\). `EDESchedule` sets \\(t\\) and \\(k\\) at every epoch start.

    !!! example
        ```python
        layer = lq.layers.QuantConv2D(128, 3, input_quantizer="ede", kernel_quantizer="ede")
        model.fit(x, y, epochs=10, callbacks=[lqbench.estimators.EDESchedule(total_epochs=10)])
        ```

    # Arguments
        t, k: initial values (those of epoch 0 with the IR-Net defaults).

    # References
        - [Qin, Gong, Liu, Shen, Wei, Yu & Song, Forward and Backward Information Retention for
          Accurate Binary Neural Networks, CVPR 2020](https://arxiv.org/abs/1909.10788); code:
          https://github.com/htqin/IR-Net (``CIFAR-10/VGG-Small/modules/binaryfunction.py``,
          ``CIFAR-10/VGG-Small/main.py``: ``Log_UP``)
    """

    _schedule_variables = (("t", 0.1), ("k", 10.0))

    def __init__(self, t: float = 0.1, k: float = 10.0, **kwargs):
        if t <= 0 or k <= 0:
            raise ValueError(f"EDESign needs t > 0 and k > 0, got t={t}, k={k}")
        self.initial_t = float(t)
        self.initial_k = float(k)
        super().__init__(**kwargs)

    def pseudo_gradient(self, x):
        t = tf.cast(self.t, x.dtype)
        k = tf.cast(self.k, x.dtype)
        th = tf.tanh(t * x)
        return k * t * (1.0 - th * th)

    def get_config(self):
        return {**super().get_config(), "t": self.initial_t, "k": self.initial_k}


@_register("rsign")
class RSign(lq.quantizers._BaseQuantizer):
    r"""ReActNet's RSign: a sign with a learnt per-channel threshold \\(b\\).

    \\[ q(x) = sign(x - b), \qquad \frac{\partial q}{\partial x} = g(x - b), \qquad
        \frac{\partial q}{\partial b} = -g(x - b), \\]

    with the authors' pseudo-gradient, Bi-Real's piecewise-polynomial (ApproxSign)
    \\(g(u) = \max(0, 2 - 2|u|)\\) (``gradient="approx_sign"``, the default: ReActNet's
    ``BinaryActivation``, ``mobilenet/2_step2/reactnet.py``), or the clipped straight-through
    \\(g(u) = 1_{|u| \leq c}\\) (``gradient="ste"``, lqbench's rule before 2026-11-30). The
    authors' forward pass is ``torch.sign`` (0 at exactly 0); this one is Larq's (+1 at 0).

    The subtraction is a float op before the sign, which LCE converts (an add before
    `LceQuantize`). Use it as an input quantizer only.

    !!! example
        ```python
        layer = lq.layers.QuantConv2D(64, 3, input_quantizer=lqbench.estimators.RSign(),
                                      kernel_quantizer="ste")
        ```

    # Arguments
        gradient: ``"approx_sign"`` (the authors' code) or ``"ste"`` (clipped straight-through).
        clip_value: the straight-through window \\(|x - b| \leq c\\) of ``gradient="ste"``.

    # References
        - [Liu, Shen, Savvides & Cheng, ReActNet: Towards Precise Binary Neural Network with
          Generalized Activation Functions, ECCV 2020](https://arxiv.org/abs/2003.03488); code:
          https://github.com/liuzechun/ReActNet
    """

    precision = 1

    GRADIENTS = ("approx_sign", "ste")

    def __init__(self, gradient: str = "approx_sign", clip_value: float = 1.0, **kwargs):
        if gradient not in self.GRADIENTS:
            raise ValueError(f"RSign gradient: {gradient!r} is not allowed; allowed: {', '.join(self.GRADIENTS)}")
        self.gradient = gradient
        self.clip_value = clip_value
        super().__init__(**kwargs)

    def build(self, input_shape):
        self.threshold = self.add_weight(
            name="threshold", shape=(int(input_shape[-1]),), initializer="zeros", trainable=True
        )
        super().build(input_shape)

    def call(self, inputs):
        shifted = inputs - self.threshold
        if self.gradient == "approx_sign":
            outputs = lq.quantizers.approx_sign(shifted)
        else:
            outputs = lq.quantizers.ste_sign(shifted, clip_value=self.clip_value)
        return super().call(outputs)

    def get_config(self):
        return {**super().get_config(), "gradient": self.gradient, "clip_value": self.clip_value}


@lq.utils.register_keras_custom_object
class SignAtZero(lq.quantizers._BaseQuantizer):
    r"""A sign estimator with another value at exactly zero, and the same pseudo-gradient.

    \\[ q_z(x) = \begin{cases} q(x) & x \neq 0 \\\ z & x = 0 \end{cases}, \qquad
        \frac{\partial q_z}{\partial x} = \frac{\partial q}{\partial x} \\]

    for a wrapped deterministic sign estimator \\(q\\) (Larq's \\(q(0) = +1\\); not the
    stochastic `GumbelSign` or the thresholded `RSign`, whose sign is not taken at 0). With \\(z = -1\\) it is
    paper 000's sign, ``torch.where(x > 0, 1, -1)`` (``binary_nn/models/common/binary/utils.py``
    ``SignSatFun`` @212664d; not ``torch.sign``, which is 0 at 0). Only exact zeros change: the
    integer sums of binary layers (a zero bias, or batch normalisation with its initial
    \\(\beta = 0\\) at a value equal to the batch mean, or untrained running statistics in
    inference) hit 0. For replication runs (``Binarization(sign_at_zero=-1.0)``): Larq Compute
    Engine's binary kernels compute \\(+1\\) at 0.

    !!! example
        ```python
        q = SignAtZero(lq.quantizers.SteSign(), value=-1.0)
        q(tf.constant([-0.5, 0.0, 0.5]))  # [-1, -1, 1]
        ```

    # Arguments
        quantizer: the wrapped sign estimator (an instance, a name or a serialized config).
        value: the output at 0, -1.0 or 1.0.

    # References
        - Crulis et al., binary_nn_extended @212664d (paper 000's code)
    """

    precision = 1

    def __init__(self, quantizer, value: float = -1.0, **kwargs):
        if isinstance(value, bool) or value not in (-1.0, 1.0):
            raise ValueError(f"SignAtZero value: {value!r} is not allowed; allowed: -1.0, 1.0")
        self.quantizer = lq.quantizers.get(quantizer)
        self.value = float(value)
        super().__init__(**kwargs)

    def call(self, inputs, training=None):
        outputs = self.quantizer(inputs, training=training)
        at_zero = tf.cast(tf.equal(inputs, 0), outputs.dtype)
        # forward: `value` where the input is 0; backward: the wrapped estimator's gradient everywhere
        outputs = outputs + tf.stop_gradient(at_zero * (self.value - outputs))
        return super().call(outputs)

    def get_config(self):
        return {**super().get_config(), "quantizer": lq.quantizers.serialize(self.quantizer), "value": self.value}


def ede_parameters(epoch: int, total_epochs: int, t_min: float = 0.1, t_max: float = 10.0) -> tuple[float, float]:
    r"""IR-Net EDE values ``(t, k)`` at ``epoch`` (0-based) of ``total_epochs``.

    \\[ t = t_{min} 10^{\frac{e}{N} \log_{10}(t_{max}/t_{min})}, \qquad k = \max(1/t, 1). \\]

    !!! example
        ```python
        lqbench.estimators.ede_parameters(0, 10)  # (0.1, 10.0)
        ```

    # References
        - [Qin, Gong, Liu, Shen, Wei, Yu & Song, Forward and Backward Information Retention for
          Accurate Binary Neural Networks, CVPR 2020](https://arxiv.org/abs/1909.10788); code:
          https://github.com/htqin/IR-Net (``CIFAR-10/VGG-Small/modules/binaryfunction.py``,
          ``CIFAR-10/VGG-Small/main.py``: ``Log_UP``)
    """
    if total_epochs <= 0:
        raise ValueError(f"total_epochs must be > 0, got {total_epochs}")
    if not 0 < t_min <= t_max:
        raise ValueError(f"EDE needs 0 < t_min <= t_max, got t_min={t_min}, t_max={t_max}")
    t = t_min * 10 ** ((epoch / total_epochs) * math.log10(t_max / t_min))
    return t, max(1.0 / t, 1.0)


def quantizers_of(model: tf.keras.Model, cls: type) -> list:
    """All quantizer instances of type ``cls`` used by the layers of ``model`` (recursively; `lqbench.walk`)."""
    return walk.quantizers(model, cls)


@lq.utils.register_keras_custom_object
class EDESchedule(tf.keras.callbacks.Callback):
    r"""Sets `t` and `k` of every `EDESign` in the model at the start of each epoch (IR-Net).

    The values are `ede_parameters` of the epoch, so \\(t\\) grows from ``t_min`` to
    ``t_max`` over ``total_epochs``.

    !!! example
        ```python
        model.fit(x, y, epochs=10, callbacks=[lqbench.estimators.EDESchedule(total_epochs=10)])
        ```

    # Arguments
        total_epochs: \\(N\\), the length of the run.
        t_min, t_max: the first and the limiting \\(t\\).

    # References
        - [Qin, Gong, Liu, Shen, Wei, Yu & Song, Forward and Backward Information Retention for
          Accurate Binary Neural Networks, CVPR 2020](https://arxiv.org/abs/1909.10788); code:
          https://github.com/htqin/IR-Net (``CIFAR-10/VGG-Small/modules/binaryfunction.py``,
          ``CIFAR-10/VGG-Small/main.py``: ``Log_UP``)
    """

    def __init__(self, total_epochs: int, t_min: float = 0.1, t_max: float = 10.0):
        super().__init__()
        ede_parameters(0, total_epochs, t_min, t_max)  # validates the arguments
        self.total_epochs, self.t_min, self.t_max = total_epochs, t_min, t_max

    def on_epoch_begin(self, epoch, logs=None):
        t, k = ede_parameters(epoch, self.total_epochs, self.t_min, self.t_max)
        for quantizer in quantizers_of(self.model, EDESign):
            if quantizer.built:
                quantizer.assign(t=t, k=k)


@lq.utils.register_keras_custom_object
class GumbelTemperatureSchedule(tf.keras.callbacks.Callback):
    r"""Anneals the temperature of every `GumbelSign` geometrically per epoch.

    \\[ \tau_i = \max(\tau_{min}, \tau_0 \cdot r^i). \\]

    !!! example
        ```python
        schedule = lqbench.estimators.GumbelTemperatureSchedule(initial=1.0, rate=0.9, minimum=0.1)
        model.fit(x, y, epochs=10, callbacks=[schedule])
        ```

    # Arguments
        initial: \\(\tau_0 > 0\\).
        rate: \\(r \in (0, 1]\\).
        minimum: \\(\tau_{min} > 0\\).

    # References
        - [Jang, Gu & Poole, Categorical Reparameterization with Gumbel-Softmax,
          ICLR 2017](https://arxiv.org/abs/1611.01144) (annealing \\(\tau\\)
          exponentially with training)
    """

    def __init__(self, initial: float = 1.0, rate: float = 0.9, minimum: float = 0.1):
        super().__init__()
        if not (initial > 0 and minimum > 0 and 0 < rate <= 1):
            raise ValueError(
                f"Gumbel schedule needs initial > 0, minimum > 0, 0 < rate <= 1; got {initial}, {minimum}, {rate}"
            )
        self.initial, self.rate, self.minimum = initial, rate, minimum

    def temperature(self, epoch: int) -> float:
        return max(self.minimum, self.initial * self.rate**epoch)

    def on_epoch_begin(self, epoch, logs=None):
        for quantizer in quantizers_of(self.model, GumbelSign):
            if quantizer.built:
                quantizer.assign(tau=self.temperature(epoch))


# Larq registers "ste_sign", "approx_sign" and "swish_sign"; lqbench's name for the clipped STE too.
lq.utils.register_alias("ste_clipped")(lq.quantizers.SteSign)

_FACTORIES: dict[str, Callable[..., Any]] = {
    "ste": SteIdentity,
    "ste_clipped": lq.quantizers.SteSign,
    "approx_sign": lq.quantizers.ApproxSign,
    "tanh": TanhSign,
    "swish_sign": lq.quantizers.SwishSign,
    "cosh2": Cosh2Sign,
    "gumbel": GumbelSign,
    "ede": EDESign,
    "rsign": RSign,
}


def available() -> list[str]:
    """Names of all sign gradient estimators."""
    return list(_FACTORIES)


def get(name: str, **kwargs) -> lq.quantizers.Quantizer:
    """A new quantizer instance for the estimator ``name`` (see `available()`)."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown estimator {name!r}; available: {', '.join(available())}")
    return _FACTORIES[name](**kwargs)


def callbacks_for(names, epochs: int) -> list[tf.keras.callbacks.Callback]:
    """The schedule callbacks the estimators ``names`` need for a run of ``epochs`` epochs."""
    callbacks = []
    if "ede" in names:
        callbacks.append(EDESchedule(epochs))
    if "gumbel" in names:
        callbacks.append(GumbelTemperatureSchedule())
    return callbacks
