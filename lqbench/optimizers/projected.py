r"""Adam followed by a projection of the updated weights: the base of BNEW and ProxQuant.

\\[ w_{t+1} = P_t\left(\text{Adam}(w_t, g_t)\right) \\]

with a method-specific map \\(P_t\\). A ``frozen`` hyperparameter (0 or 1, changeable
between steps without retracing) makes the step a no-op, for the phase where the binary
kernels have been set to \\(\pm 1\\) and only the other parameters are fine-tuned.
"""
from __future__ import annotations

import tensorflow as tf

from lqbench.optimizers._common import deserialize_hypers, latent, serialize_hypers
from lqbench.optimizers.adam import Adam

__all__ = ["ProjectedAdam"]


class ProjectedAdam(Adam):
    """Adam on binary kernels, then ``self.project(w)``; nothing while ``frozen`` is 1."""

    _EXTRA_HYPERS: tuple[str, ...] = ()

    def __init__(self, learning_rate=1e-3, frozen: bool | float = False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self._set_hyper("frozen", float(frozen))

    def project(self, w, dtype):
        raise NotImplementedError

    def _resource_apply_dense(self, grad, var, apply_state=None):
        dtype = var.dtype.base_dtype
        w = latent(var)
        before = tf.identity(w.read_value())
        with tf.control_dependencies([before]):
            update = super()._resource_apply_dense(grad, var, apply_state)
        with tf.control_dependencies([update]):
            projected = self.project(w.read_value(), dtype)
            frozen = self._get_hyper("frozen", dtype) > 0.5
            return w.assign(tf.where(frozen, before, projected), read_value=False)

    def _resource_apply_sparse_duplicate_indices(self, grad, var, indices, **kwargs):
        raise NotImplementedError(f"{self.name}: binary kernels receive dense gradients only")

    def get_config(self):
        return {**super().get_config(), **serialize_hypers(self, ("frozen", *self._EXTRA_HYPERS))}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if "lr" in config:
            config["learning_rate"] = config.pop("lr")
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = tf.keras.optimizers.schedules.deserialize(
                config["learning_rate"], custom_objects=custom_objects)
        return cls(**deserialize_hypers(config, cls._EXTRA_HYPERS, custom_objects))
