r"""Adam with coupled L2 weight decay (PyTorch ``Adam(weight_decay=...)`` semantics).

\\[ g_t \leftarrow g_t + \lambda_{wd} w_t, \qquad
    m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \\]
\\[ w_{t+1} = w_t - \eta_t \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t} \frac{m_t}{\sqrt{v_t} + \hat\epsilon}. \\]

The update is Keras's legacy Adam (the "epsilon hat" form of Kingma & Ba's Algorithm 1; it
differs from PyTorch's only in where \\(\epsilon\\) enters). Being a
`tf.keras.optimizers.legacy.Optimizer`, it composes with `larq.optimizers.CaseOptimizer`.

!!! example
    ```python
    optimizer = lqbench.optimizers.Adam(1e-3, weight_decay=1e-5)
    ```

# References
- [Kingma & Ba, Adam: A Method for Stochastic Optimization, ICLR 2015](https://arxiv.org/abs/1412.6980)
"""
from __future__ import annotations

import larq as lq
import tensorflow as tf

from lqbench.optimizers._common import CoupledWeightDecayMixin, check_learning_rate, check_range

__all__ = ["Adam"]


@lq.utils.register_alias("LqbenchAdam")
@lq.utils.register_keras_custom_object
class Adam(CoupledWeightDecayMixin, tf.keras.optimizers.legacy.Adam):
    r"""Registered as ``LqbenchAdam`` (its default name, which `CaseOptimizer` serialises).

    Legacy Keras Adam plus coupled weight decay ``weight_decay`` (default 0):
    \\(g_t \leftarrow g_t + \lambda_{wd} w_t\\) before the Adam moments (module docstring).

    !!! example
        ```python
        optimizer = lqbench.optimizers.Adam(1e-3, weight_decay=1e-5)
        ```

    # Arguments
        learning_rate: float > 0 or a `LearningRateSchedule`.
        beta_1, beta_2: moment decay rates in [0, 1).
        epsilon: \\(\hat\epsilon\\).
        amsgrad: Keras's AMSGrad variant.
        weight_decay: \\(\lambda_{wd} \geq 0\\).

    # References
        - [Kingma & Ba, Adam: A Method for Stochastic Optimization, ICLR 2015](https://arxiv.org/abs/1412.6980)
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 weight_decay: float = 0.0, name: str = "LqbenchAdam", **kwargs):
        check_learning_rate(learning_rate, name)
        check_range("beta_1", beta_1, 0.0, 1.0, low_inclusive=True, high_inclusive=False, where=name)
        check_range("beta_2", beta_2, 0.0, 1.0, low_inclusive=True, high_inclusive=False, where=name)
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, name=name, **kwargs)
        self._init_weight_decay(weight_decay)
