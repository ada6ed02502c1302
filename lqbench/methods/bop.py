r"""Bop: the binary optimizer that flips binary weights instead of updating latent ones.

For each binary weight \\(w \in \{-1, +1\}\\) with gradient \\(g_t\\):

\\[ m_t = (1 - \gamma) m_{t-1} + \gamma g_t, \qquad
    w \leftarrow -w \ \text{ where } |m_t| > \tau \text{ and } sign(m_t) = sign(w). \\]

Every other parameter is trained by Adam (same learning rate and coupled weight decay), the
binary kernels are set to \\(sign(w)\\) first (Bop needs \\(\pm 1\\) weights). The adaptivity
rate \\(\gamma\\) and the threshold \\(\tau\\) can follow a per-epoch schedule
(`lqbench.schedules` names; ``gamma_schedule="linear"`` decays \\(\gamma\\) linearly to 0, as
the BNEW authors' Bop baseline does with its per-iteration linear scheduler).

!!! example
    ```python
    method = lqbench.methods.get("bop", threshold=1e-8, gamma=1e-4, gamma_schedule="linear")
    ```

# References
- [Helwegen et al., Latent Weights Do Not Exist: Rethinking Binarized Neural Network
  Optimization (NeurIPS 2019)](https://arxiv.org/abs/1906.02107); reference code:
  `larq.optimizers.Bop` (https://github.com/larq/larq).
- The Bop baseline of [Paren & Poudel, BNEW (paper 001)](https://github.com/Alasdair-P/bnew)
  (``bop_main.py``: \\(\gamma = 10^{-4}\\), \\(\tau = 10^{-8}\\), \\(\gamma\\) decayed linearly).
"""
from __future__ import annotations

import larq as lq

from lqbench import schedules
from lqbench.callbacks import SubOptimizerScheduler
from lqbench.hparams import Hparam
from lqbench.methods.base import Method
from lqbench.optimizers import Adam, _common

__all__ = ["Bop", "epoch_schedule"]


def epoch_schedule(schedule_name: str, base: float, epochs: int):
    """``f(epoch)``: the `lqbench.schedules` schedule ``schedule_name`` from ``base`` over ``epochs``."""
    schedule = schedules.build(schedule_name, base, max(int(epochs), 1))
    return lambda epoch: schedules.value(schedule, epoch)


class Bop(Method):
    """Larq's `Bop` on binary kernels, Adam on the rest; optional per-epoch \\(\\gamma\\)/\\(\\tau\\) schedules."""

    name = "bop"
    hparams = (
        Hparam("threshold", "float", 1e-8, low=0),
        Hparam("gamma", "float", 1e-4, low=0, high=1, low_inclusive=False),
        Hparam("gamma_schedule", "str", "constant", choices=("constant", "linear", "cosine", "step")),
        Hparam("threshold_schedule", "str", "constant", choices=("constant", "linear", "cosine", "step")),
    )
    requires_binary_kernels = True

    def binary_optimizer(self):
        return lq.optimizers.Bop(threshold=self.threshold, gamma=self.gamma)

    def optimizer(self, learning_rate=1e-3, weight_decay: float = 0.0):
        return _common.case(self.binary_optimizer(), Adam(learning_rate, weight_decay=weight_decay),
                            name=f"case_{self.name}")

    def prepare(self, model) -> None:
        super().prepare(model)
        _common.project_sign(model)

    def finalize(self, model) -> None:
        _common.project_sign(model)

    def callbacks(self, epochs: int):
        out = []
        cls = type(self.binary_optimizer())
        for hyper in ("gamma", "threshold"):
            name = self.config[f"{hyper}_schedule"]
            if name != "constant":
                out.append(SubOptimizerScheduler(epoch_schedule(name, self.config[hyper], epochs), hyper, cls))
        return out
