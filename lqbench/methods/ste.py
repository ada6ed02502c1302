r"""STE: latent real-valued weights trained by a float optimizer through the sign's estimator.

The forward pass uses \\(w_b = sign(w)\\) (and \\(sign\\) activations); the backward pass
passes the gradient to the latent \\(w\\) through the estimator chosen in
`lqbench.Binarization` (identity STE, clipped STE, ApproxSign, ...), and Adam or SGD updates
\\(w\\) (latent weights clipped to [-1, 1] by Larq's ``WeightClip`` when
``Binarization.clip_weights``). This is also plain training of a full-precision model.

\\[ w \leftarrow w - \eta\, \text{Adam}\!\left(\frac{\partial L}{\partial w_b}\right), \qquad
    w_b = sign(w). \\]

!!! example
    ```python
    method = lqbench.methods.get("ste", optimizer="sgd", momentum=0.9)
    lqbench.methods.fit(model, train, method=method, epochs=10)
    ```

# References
- [Courbariaux et al., BinaryConnect (2015)](https://arxiv.org/abs/1511.00363) and
  [Hubara et al., Binarized Neural Networks (2016)](https://arxiv.org/abs/1602.02830)
  (reference code: https://github.com/MatthieuCourbariaux/BinaryNet).
- Larq's latent-weight training: https://docs.larq.dev/larq/guides/bnn-optimization/
"""
from __future__ import annotations

from lqbench.hparams import Hparam
from lqbench.methods.base import Method
from lqbench.optimizers import Adam, SGD

__all__ = ["STE"]


class STE(Method):
    """Latent weights updated by ``optimizer`` (``"adam"`` or ``"sgd"``) through the estimator."""

    name = "ste"
    hparams = (
        Hparam("optimizer", "str", "adam", choices=("adam", "sgd")),
        Hparam("beta_1", "float", 0.9, low=0, high=1, high_inclusive=False),
        Hparam("beta_2", "float", 0.999, low=0, high=1, high_inclusive=False),
        Hparam("epsilon", "float", 1e-7, low=0, low_inclusive=False),
        Hparam("amsgrad", "bool", False),
        Hparam("momentum", "float", 0.9, low=0, high=1, high_inclusive=False),
        Hparam("nesterov", "bool", False),
    )

    def optimizer(self, learning_rate=1e-3, weight_decay: float = 0.0):
        if self.config["optimizer"] == "sgd":
            return SGD(learning_rate, momentum=self.momentum, nesterov=self.nesterov, weight_decay=weight_decay)
        return Adam(learning_rate, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon, amsgrad=self.amsgrad,
                    weight_decay=weight_decay)
