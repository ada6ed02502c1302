r"""Second-order Bop: flips binary weights by their Adam-normalised first moment.

\\[ m_t = (1 - \gamma) m_{t-1} + \gamma g_t, \quad v_t = (1 - \sigma) v_{t-1} + \sigma g_t^2,
    \quad w \leftarrow -w \ \text{ where } \frac{w\, m_t}{\sqrt{v_t} + 10^{-10}} > \tau. \\]

Otherwise as `lqbench.methods.bop` (Adam on the other parameters, \\(\pm 1\\) initialisation,
optional per-epoch schedules of \\(\gamma\\) and \\(\tau\\)). The update rule is
`lqbench.optimizers.Bop2`.

# References
- [Suarez-Ramirez et al., A Bop and Beyond: A Second Order Optimizer for Binarized Neural
  Networks (CVPR Workshops 2021)](https://arxiv.org/abs/2104.05124); reference code:
  https://github.com/CuauSuarez/Bop2ndOrder (``optimizers/Bop2ndOrder.py``).
"""
from __future__ import annotations

from lqbench.hparams import Hparam
from lqbench.methods.bop import Bop
from lqbench.optimizers import Bop2 as Bop2Rule

__all__ = ["Bop2"]


class Bop2(Bop):
    """`lqbench.optimizers.Bop2` on binary kernels, Adam on the rest."""

    name = "bop2"
    hparams = (
        Hparam("threshold", "float", 1e-6, low=0),
        Hparam("gamma", "float", 1e-6, low=0, high=1, low_inclusive=False),
        Hparam("sigma", "float", 1e-2, low=0, high=1, low_inclusive=False),
        Hparam("bias_correction", "bool", False),
        Hparam("gamma_schedule", "str", "constant", choices=("constant", "linear", "cosine", "step")),
        Hparam("threshold_schedule", "str", "constant", choices=("constant", "linear", "cosine", "step")),
    )

    def binary_optimizer(self):
        return Bop2Rule(threshold=self.threshold, gamma=self.gamma, sigma=self.sigma,
                        bias_correction=self.bias_correction)
