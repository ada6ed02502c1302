r"""Adam followed by a projection of the updated weights: the base of BNEW and ProxQuant.

\\[ w_{t+1} = P_t\left(\text{Adam}(w_t, g_t)\right) \\]

with a method-specific map \\(P_t\\). A ``frozen`` hyperparameter (0 or 1, changeable
between steps without retracing) makes the step a no-op, for the phase where the binary
kernels have been set to \\(\pm 1\\) and only the other parameters are fine-tuned.

``project_first=True`` is the order of the BNEW authors' training loop (``binary_main.py:84-95``
@f0c2019: ``reg.post_update()``, i.e. the projection, runs between ``loss.backward()`` and
``optimizer.step()``):

\\[ w_{t+1} = \text{Adam}\left(P_t(w_t), g_t\right), \qquad g_t = \nabla \ell(w_t), \\]

so the gradient is taken at the unprojected weights and the weights after the step are not
projected (only Larq's weight clip, if the kernel has one, applies). The two orders differ by
\\(O(\lambda \eta)\\) per step; ``bench/reference/bnew.py`` measures both.

!!! example
    ```python
    class Clipped(lqbench.optimizers.projected.ProjectedAdam):  # projected Adam on [-1, 1]
        def project(self, w, dtype):
            return tf.clip_by_value(w, -1.0, 1.0)
    ```

# References
- [Paren & Poudel, Training Binarized Neural Networks the Easy Way, BMVC 2022
  (paper 001)](https://bmvc2022.mpi-inf.mpg.de/35/); code: https://github.com/Alasdair-P/bnew
  (phase 1 is projected Adam; ``binary_main.py:84-95`` @f0c2019 for ``project_first``).
- [Bai, Wang & Liberty, ProxQuant: Quantized Neural Networks via Proximal Operators,
  ICLR 2019](https://arxiv.org/abs/1810.00861); code: https://github.com/allenbai01/ProxQuant
  (a gradient step followed by a proximal map on the binary kernels).
- [Kingma & Ba, Adam: A Method for Stochastic Optimization, ICLR 2015](https://arxiv.org/abs/1412.6980)
"""
from __future__ import annotations

import tensorflow as tf

from lqbench.optimizers._common import deserialize_hypers, latent, serialize_hypers
from lqbench.optimizers.adam import Adam

__all__ = ["ProjectedAdam"]


class ProjectedAdam(Adam):
    r"""Adam on binary kernels, then ``self.project(w)``; nothing while ``frozen`` is 1.

    \\[ w_{t+1} = P_t(\text{Adam}(w_t, g_t)) \\]

    or, with ``project_first=True``, \\(w_{t+1} = \text{Adam}(P_t(w_t), g_t)\\).

    Subclasses implement ``project(w, dtype)`` (`BNEW`, `ProxQuant`, `BMD`).

    # Arguments
        learning_rate: Adam learning rate (float or schedule).
        frozen: leave the kernels unchanged (a 0/1 hyperparameter, changeable between steps).
        project_first: project before the Adam step instead of after it.
        **kwargs: the arguments of `lqbench.optimizers.Adam`.
    """

    _EXTRA_HYPERS: tuple[str, ...] = ()

    def __init__(self, learning_rate=1e-3, frozen: bool | float = False, project_first: bool = False, **kwargs):
        if not isinstance(project_first, bool):
            where = kwargs.get("name", type(self).__name__)
            raise ValueError(f"{where}: project_first={project_first!r} must be true or false")
        super().__init__(learning_rate=learning_rate, **kwargs)
        self._set_hyper("frozen", float(frozen))
        self.project_first = project_first

    def project(self, w, dtype):
        raise NotImplementedError

    def _resource_apply_dense(self, grad, var, apply_state=None):
        dtype = var.dtype.base_dtype
        w = latent(var)
        before = tf.identity(w.read_value())
        if self.project_first:
            frozen = self._get_hyper("frozen", dtype) > 0.5
            with tf.control_dependencies([before]):
                projected = w.assign(tf.where(frozen, before, self.project(before, dtype)))
            with tf.control_dependencies([projected]):
                update = super()._resource_apply_dense(grad, var, apply_state)
            with tf.control_dependencies([update]):
                return w.assign(tf.where(frozen, before, w.read_value()), read_value=False)
        with tf.control_dependencies([before]):
            update = super()._resource_apply_dense(grad, var, apply_state)
        with tf.control_dependencies([update]):
            projected = self.project(w.read_value(), dtype)
            frozen = self._get_hyper("frozen", dtype) > 0.5
            return w.assign(tf.where(frozen, before, projected), read_value=False)

    def _resource_apply_sparse_duplicate_indices(self, grad, var, indices, **kwargs):
        raise NotImplementedError(f"{self.name}: binary kernels receive dense gradients only")

    def get_config(self):
        return {**super().get_config(), **serialize_hypers(self, ("frozen", *self._EXTRA_HYPERS)),
                "project_first": self.project_first}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if "lr" in config:
            config["learning_rate"] = config.pop("lr")
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = tf.keras.optimizers.schedules.deserialize(
                config["learning_rate"], custom_objects=custom_objects)
        return cls(**deserialize_hypers(config, cls._EXTRA_HYPERS, custom_objects))
