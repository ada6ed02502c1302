r"""SGD (optionally with momentum / Nesterov) with coupled L2 weight decay.

\\[ g_t \leftarrow g_t + \lambda_{wd} w_t, \qquad
    v_{t+1} = \mu v_t - \eta_t g_t, \quad w_{t+1} = w_t + v_{t+1} \\]

(Nesterov: \\(w_{t+1} = w_t + \mu v_{t+1} - \eta_t g_t\\)); Keras's legacy SGD update.

!!! example
    ```python
    optimizer = lqbench.optimizers.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    ```

# References
- Sutskever, Martens, Dahl & Hinton, *On the importance of initialization and momentum in deep
  learning*, ICML 2013 (the momentum and Nesterov forms above).
"""
from __future__ import annotations

import larq as lq
import tensorflow as tf

from lqbench.optimizers._common import CoupledWeightDecayMixin, check_learning_rate, check_range

__all__ = ["SGD"]


@lq.utils.register_alias("LqbenchSGD")
@lq.utils.register_keras_custom_object
class SGD(CoupledWeightDecayMixin, tf.keras.optimizers.legacy.SGD):
    r"""Registered as ``LqbenchSGD`` (its default name, which `CaseOptimizer` serialises).

    Legacy Keras SGD plus coupled weight decay ``weight_decay`` (default 0):
    \\(g_t \leftarrow g_t + \lambda_{wd} w_t\\) before the momentum update (module docstring).

    !!! example
        ```python
        optimizer = lqbench.optimizers.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
        ```

    # Arguments
        learning_rate: float > 0 or a `LearningRateSchedule`.
        momentum: \\(\mu \in [0, 1)\\).
        nesterov: Nesterov momentum.
        weight_decay: \\(\lambda_{wd} \geq 0\\).

    # References
        - Sutskever, Martens, Dahl & Hinton, *On the importance of initialization and momentum in
          deep learning*, ICML 2013.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay: float = 0.0,
                 name: str = "LqbenchSGD", **kwargs):
        check_learning_rate(learning_rate, name)
        check_range("momentum", momentum, 0.0, 1.0, low_inclusive=True, high_inclusive=False, where=name)
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov, name=name, **kwargs)
        self._init_weight_decay(weight_decay)
