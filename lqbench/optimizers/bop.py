r"""Bop (Helwegen et al. 2019, Larq's native implementation) and second-order Bop.

**Bop** (`larq.optimizers.Bop`, used as is):

\\[ m_t = (1 - \gamma) m_{t-1} + \gamma g_t, \qquad
    w_t = \begin{cases} -w_{t-1} & w_{t-1} m_t > \tau \\\ w_{t-1} & \text{otherwise} \end{cases} \\]

defaults \\(\tau = 10^{-8}\\), \\(\gamma = 10^{-4}\\) (methods.md §4, paper 001 §5.1).

**Second-order Bop** (`Bop2`, Suarez-Ramirez et al. 2021, "Bop2ndOrder"):

\\[ m_t = m_{t-1} + \gamma (g_t - m_{t-1}), \quad v_t = v_{t-1} + \sigma (g_t^2 - v_{t-1}), \quad
    \text{flip where } w_{t-1} \frac{\hat m_t}{\sqrt{\hat v_t} + 10^{-10}} > \tau \\]

with \\(\hat m = m, \hat v = v\\) (``bias_correction=False``, the default: the authors'
``Bop2ndOrder``, ``bnn_optimization/optimizers.py:154-156`` @ff680fb) or, with
``bias_correction=True``, the authors' "unbiased" variant ``Bop2ndOrder_unbiased``
(branch ``conference`` @bf29ed4, ``bnn_optimization/optimizers.py:236-238``), which
rescales the moments by their rates,

\\[ \hat m_t = m_t / \gamma, \qquad \hat v_t = v_t / \sigma. \\]

This is not Adam's step-dependent correction \\(m_t / (1 - (1 - \gamma)^t)\\): the paper's
"unbiased" runs (its §5.1.1, README "Batch & Unbiased") used the rescaling above, and where
the paper's wording and the reference code disagree the code that produced the numbers is
followed. Defaults \\(\tau = 10^{-6}, \gamma = 10^{-6}, \sigma = 10^{-2}\\).

Both act only on binary kernels (which must hold \\(\pm 1\\): `lqbench.optimizers.prepare`
re-initialises them to the sign of their initial value); `build("bop")` / `build("bop2")`
wrap them in a `CaseOptimizer` with Adam (same learning rate and weight decay) for every
other parameter. Every hyperparameter may be a float or a
`tf.keras.optimizers.schedules.LearningRateSchedule` of the optimizer's own step.

!!! example
    ```python
    optimizer = lqbench.optimizers.build("bop2", learning_rate=1e-3, gamma=1e-6, sigma=1e-2)
    ```

# References
- Helwegen et al., *Latent Weights Do Not Exist: Rethinking Binarized Neural Network
  Optimization*, NeurIPS 2019 (`larq.optimizers.Bop`).
- Suarez-Ramirez et al., *A Bop and Beyond: A Second Order Optimizer for Binarized Neural
  Networks*, LXCV @ CVPR 2021; code ``CuauSuarez/Bop2ndOrder``.
"""
from __future__ import annotations

import larq as lq
import tensorflow as tf

from lqbench.optimizers._common import (
    check_range,
    decayed_hyper,
    deserialize_hypers,
    latent,
    serialize_hypers,
)

__all__ = ["Bop2", "check_bop_hypers"]


def check_bop_hypers(where: str, threshold=None, gamma=None, sigma=None) -> None:
    if threshold is not None:
        check_range("threshold", threshold, 0.0, float("inf"), low_inclusive=True, where=where)
    if gamma is not None:
        check_range("gamma", gamma, 0.0, 1.0, where=where)
    if sigma is not None:
        check_range("sigma", sigma, 0.0, 1.0, where=where)


@lq.utils.register_keras_custom_object
class Bop2(tf.keras.optimizers.legacy.Optimizer):
    r"""Second-order Bop: flip \\(w\\) where \\(w \hat m / (\sqrt{\hat v} + 10^{-10}) > \tau\\).

    # Arguments
        threshold: \\(\tau \geq 0\\).
        gamma: first-moment rate \\(\gamma \in (0, 1]\\).
        sigma: second-moment rate \\(\sigma \in (0, 1]\\).
        bias_correction: the authors' "unbiased" flip rule, \\(\hat m = m / \gamma\\),
            \\(\hat v = v / \sigma\\) (see module docstring).
    """

    _HAS_AGGREGATE_GRAD = True
    _HYPERS = ("threshold", "gamma", "sigma")

    def __init__(self, threshold=1e-6, gamma=1e-6, sigma=1e-2, bias_correction: bool = False,
                 name: str = "Bop2", **kwargs):
        check_bop_hypers(name, threshold, gamma, sigma)
        super().__init__(name=name, **kwargs)
        self._set_hyper("threshold", threshold)
        self._set_hyper("gamma", gamma)
        self._set_hyper("sigma", sigma)
        self.bias_correction = bool(bias_correction)

    def _create_slots(self, var_list):
        for var in var_list:
            self.add_slot(var, "m")
            self.add_slot(var, "v")

    def _resource_apply_dense(self, grad, var, apply_state=None):
        dtype = var.dtype.base_dtype
        gamma = decayed_hyper(self, "gamma", dtype)
        sigma = decayed_hyper(self, "sigma", dtype)
        threshold = decayed_hyper(self, "threshold", dtype)
        m = self.get_slot(var, "m")
        v = self.get_slot(var, "v")
        m_t = m.assign_add(gamma * (grad - m))
        v_t = v.assign_add(sigma * (tf.square(grad) - v))
        if self.bias_correction:  # the authors' Bop2ndOrder_unbiased (module docstring)
            m_t = m_t / gamma
            v_t = v_t / sigma
        w = latent(var).read_value()
        flip = w * (m_t / (tf.sqrt(v_t) + 1e-10)) > threshold
        return latent(var).assign(tf.where(flip, -w, w), read_value=False)

    def get_config(self):
        return {**super().get_config(), **serialize_hypers(self, self._HYPERS),
                "bias_correction": self.bias_correction}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**deserialize_hypers(dict(config), cls._HYPERS, custom_objects))
