r"""BNEW's binary-kernel update (Paren & Poudel, paper 001, with its authors' code).

After each Adam step on the relaxed binary weights \\(w^b \in [-1, 1]\\), the concave
regulariser \\(R(w) = -\|w^b\|^2\\) is applied as a push-and-clip:

\\[ w^b \leftarrow \text{clip}\left((1 + 2\lambda_t)\, w^b, -1, 1\right). \\]

\\(\lambda_t = 0\\) is plain projected Adam (phase 1: real weights projected to [-1, 1]);
in phase 2 \\(\lambda\\) grows linearly per epoch, as in the authors' code:
\\(\lambda_e = \text{reg} \cdot (e + 1) / E\\) over the \\(E\\) epochs of the phase
(equivalently \\(\lambda_e = \lambda_{rate} (e + 1)\\) with \\(\lambda_{rate} = \text{reg}/E\\);
set by `lqbench.callbacks.BNEWRegularization`). Phase 3 sets \\(w^b \leftarrow sign(w^b)\\)
and freezes it. The forward pass uses \\(w^b\\) itself (no latent weights):
`lqbench.optimizers.prepare("bnew", model)` swaps the kernels' sign quantizer for the identity.

!!! example
    ```python
    history = lqbench.recipes.fit(model, train, epochs=30, optimizer="bnew", validation_data=val)
    ```

# References
- [Paren & Poudel, Training Binarized Neural Networks the Easy Way, BMVC 2022
  (paper 001)](https://bmvc2022.mpi-inf.mpg.de/35/); code: https://github.com/Alasdair-P/bnew
  (``prox.py``: ``u_reg``, ``adjust_reg``, ``post_update``; ``binary_main.py``).
- [Bai, Wang & Liberty, ProxQuant: Quantized Neural Networks via Proximal Operators,
  ICLR 2019](https://arxiv.org/abs/1810.00861); code: https://github.com/allenbai01/ProxQuant
  (the proximal-step view of a regularised binarizing update that BNEW builds on).
"""
from __future__ import annotations

import larq as lq
import tensorflow as tf

from lqbench.optimizers._common import check_range, decayed_hyper
from lqbench.optimizers.projected import ProjectedAdam

__all__ = ["BNEW"]


@lq.utils.register_keras_custom_object
class BNEW(ProjectedAdam):
    r"""Adam + push-and-clip \\(w \leftarrow \text{clip}((1 + 2\lambda) w, -1, 1)\\).

    # Arguments
        learning_rate: Adam learning rate (float or schedule).
        reg: \\(\lambda \geq 0\\), the current regularisation strength (a schedule or set per
            epoch by a callback).
        frozen: leave the kernels unchanged (phase 3).
        project_first: project before the Adam step (the authors' order, `ProjectedAdam`).

    !!! example
        ```python
        optimizer = lqbench.optimizers.build("bnew", learning_rate=1e-3, reg=0.01)  # Adam on the rest
        kernels_only = lqbench.optimizers.BNEW(1e-3, reg=0.01, project_first=True)
        ```

    # References
        - [Paren & Poudel, Training Binarized Neural Networks the Easy Way, BMVC 2022
          (paper 001)](https://bmvc2022.mpi-inf.mpg.de/35/); code: https://github.com/Alasdair-P/bnew
    """

    _EXTRA_HYPERS = ("reg",)

    def __init__(self, learning_rate=1e-3, reg=0.0, frozen=False, name: str = "BNEW", **kwargs):
        check_range("reg", reg, 0.0, float("inf"), low_inclusive=True, where=name)
        super().__init__(learning_rate=learning_rate, frozen=frozen, name=name, **kwargs)
        self._set_hyper("reg", reg)

    def project(self, w, dtype):
        reg = decayed_hyper(self, "reg", dtype)
        return tf.clip_by_value((1.0 + 2.0 * reg) * w, -1.0, 1.0)
