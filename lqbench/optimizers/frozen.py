r"""An optimizer that never changes its variables: \\(w_{t+1} = w_t\\).

Routed by `CaseOptimizer` to binary kernels after they are projected to \\(\pm 1\\) (BNEW
phase 3, ProxQuant after its freeze epoch, BMD fine-tuning): the kernels stay exactly
binary while every other parameter keeps training. Equivalent to the papers' "set the
gradient of \\(w^b\\) to 0", without rebuilding the model.
"""
from __future__ import annotations

import larq as lq
import tensorflow as tf

__all__ = ["Frozen"]


@lq.utils.register_keras_custom_object
class Frozen(tf.keras.optimizers.legacy.Optimizer):
    """Leaves every variable it is given unchanged (its step counter still advances)."""

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
