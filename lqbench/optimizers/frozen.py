r"""An optimizer that never changes its variables: \\(w_{t+1} = w_t\\).

Routed by `CaseOptimizer` to binary kernels after they are projected to \\(\pm 1\\) (BNEW
phase 3, ProxQuant after its freeze epoch, BMD fine-tuning): the kernels stay exactly
binary while every other parameter keeps training. Equivalent to the papers' "set the
gradient of \\(w^b\\) to 0", without rebuilding the model.

!!! example
    ```python
    optimizer = lqbench.optimizers.build("frozen", learning_rate=1e-3)  # Frozen kernels, Adam elsewhere
    ```

# References
- [Paren & Poudel, Training Binarized Neural Networks the Easy Way, BMVC 2022
  (paper 001)](https://bmvc2022.mpi-inf.mpg.de/35/); code: https://github.com/Alasdair-P/bnew
  (phase 3: \\(w^b \leftarrow sign(w^b)\\), only the real-valued parameters fine-tuned).
- [Bai, Wang & Liberty, ProxQuant: Quantized Neural Networks via Proximal Operators,
  ICLR 2019](https://arxiv.org/abs/1810.00861); code: https://github.com/allenbai01/ProxQuant
  (the final fine-tuning with quantized weights).
"""
from __future__ import annotations

import larq as lq
import tensorflow as tf

__all__ = ["Frozen"]


@lq.utils.register_keras_custom_object
class Frozen(tf.keras.optimizers.legacy.Optimizer):
    r"""Leaves every variable it is given unchanged (its step counter still advances).

    \\[ w_{t+1} = w_t. \\]

    !!! example
        ```python
        optimizer = lqbench.optimizers.case(lqbench.optimizers.Frozen(), lqbench.optimizers.Adam(1e-3),
                                            name="case_frozen")  # = build("frozen")
        ```

    # Arguments
        name: the optimizer's name.
    """

    _HAS_AGGREGATE_GRAD = True

    def __init__(self, name: str = "Frozen", **kwargs):
        super().__init__(name=name, **kwargs)

    def _create_slots(self, var_list):
        pass

    def _resource_apply_dense(self, grad, var, apply_state=None):
        return tf.no_op()

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        return tf.no_op()

    def get_config(self):
        return super().get_config()
