r"""HSIC bottleneck (Ma et al. 2020), in the form of paper 000's code.

Same taps and gradient stops as DRTP (update-unlocked); each segment minimises a local,
kernelised information-bottleneck loss on its tap view \\(Z_k = a_k = q_k(h_k)\\) flattened
per sample:

\\[ L_k = \operatorname{HSIC}(K_Z, K_Z) - \gamma\, \operatorname{HSIC}(K_Y, K_Z), \qquad
    \operatorname{HSIC}(A, B) = \frac{1}{m^2} \operatorname{tr}(A H B H), \quad H = I - \tfrac{1}{m} 1 1^\top \\]

(the biased estimator, \\(m\\) the batch size) with cosine-similarity kernels
\\(K_{ij} = \frac{z_i^\top z_j}{\lVert z_i\rVert \lVert z_j\rVert}\\) on \\(Z_k\\) and on the
centred one-hot labels \\(Y = \operatorname{onehot}(y) - 1/C\\) (a zero row has norm 1 added
\\(10^{-6}\\), as in the code). \\(\gamma\\) grid {2, 20, 200}, default 20 (the value paper 000's
authors selected; the code's default is 2). The output layer trains on its true loss. Per-tap
losses are reported as training metrics ``hsic_<k>`` (not by ``evaluate``, which does not compute them).

With ``distillation`` the output layer's loss is the distillation loss (`Algorithm._output_loss`);
the hidden segments keep their local losses on the label kernel \\(K_Y\\) (the teacher does not
enter them).

Options: ``kernel="gaussian"`` with ``sigma``: \\(K_{ij} = \exp(-\lVert z_i - z_j\rVert^2 / (2 \sigma^2 d))\\)
(Ma et al.'s code scales the bandwidth by the dimension \\(d\\)); ``objective="nhsic"``: Ma et
al.'s normalised HSIC bottleneck \\(\operatorname{nHSIC}(Z, X) - \gamma\, \operatorname{nHSIC}(Z, Y)\\)
with \\(X\\) the flattened model input and

\\[ \operatorname{nHSIC}(A, B) = \operatorname{tr}(R_A R_B), \qquad
    R = \bar K (\bar K + \epsilon m I)^{-1}, \quad \bar K = H K H \\]

(``nhsic_eps`` \\(= \epsilon\\), default \\(10^{-5}\\)); ``objective="cka"``: the same with
centred kernel alignment \\(\operatorname{HSIC}(A, B) / \sqrt{\operatorname{HSIC}(A, A)
\operatorname{HSIC}(B, B)}\\) in place of nHSIC (what earlier lqbench versions called
``"nhsic"``).

**Cost.** Each tap's kernel matrix and its gradient take \\(2 m^2 d\\) multiply-adds
(`gram`, \\(d\\) the tap's size), whatever the network's own cost: on ResNet-20 at batch 128
(39 taps, \\(\\sum d = 93760\\)) 3.1 GMAC per step, so HSIC's step is 1.76x BP's
(0.178 vs 0.101 s, graph mode, this 2-core CPU; TensorFlow's own two-product gradient of
\\(Z Z^\\top\\): 0.195 s), measured by
``python bench/segment_cost.py --variants bp hsic hsic:autodiff --steps 6 --rounds 4``.
The label term alone could be had in \\(O(C m d)\\) (\\(K_Y\\) has rank \\(C\\)), but
\\(\\operatorname{HSIC}(K_Z, K_Z)\\) needs \\(K_Z\\) itself (or the \\(d \\times d\\)
\\(Z^\\top H Z\\)), so \\(m^2 d\\) is the floor.

!!! example
    ```python
    trainer = lqbench.algorithms.build("hsic", model, gamma=20.0)
    ```

# References
- [Ma, Lewis & Kleijn, The HSIC Bottleneck: Deep Learning without Back-Propagation,
  AAAI 2020](https://arxiv.org/abs/1908.01580)
- [Pogodin & Latham, Kernelized information bottleneck leads to biologically plausible 3-factor
  Hebbian learning in deep networks, NeurIPS 2020](https://arxiv.org/abs/2006.07123) (cited with
  Ma et al. for paper 000's HSIC method).
- Gretton, Bousquet, Smola & Schölkopf, *Measuring Statistical Dependence with Hilbert-Schmidt
  Norms*, ALT 2005 (the biased HSIC estimator).
- [Kornblith, Norouzi, Lee & Hinton, Similarity of Neural Network Representations Revisited,
  ICML 2019](https://arxiv.org/abs/1905.00414) (centred kernel alignment, ``objective="cka"``).
- [Crulis, Serres, de Runz & Venturini, An experimental comparative study of backpropagation
  and alternatives for training binary neural networks for image classification, 2024
  (paper 000)](https://arxiv.org/abs/2408.04460); code: https://github.com/BenCrulis/binary_nn_extended (``binary_nn/algorithms/hsic.py``, ``binary_nn/utils/hsic.py``).
"""
from __future__ import annotations

import tensorflow as tf

from lqbench.algorithms.base import UPDATE_MODES, Algorithm, register

__all__ = ["HSIC", "hsic", "nhsic", "cosine_kernel", "gaussian_kernel", "gram"]


def _flatten(z: tf.Tensor) -> tf.Tensor:
    return tf.reshape(z, [tf.shape(z)[0], -1])


@tf.custom_gradient
def gram(z: tf.Tensor):
    """\\(Z Z^\\top\\) of a matrix \\(Z\\) (samples in rows), with the gradient \\((G + G^\\top) Z\\).

    Automatic differentiation of ``tf.matmul(z, z, transpose_b=True)`` treats the two operands
    as different tensors and computes \\(G Z\\) and \\(G^\\top Z\\) with two matrix products of
    \\(m^2 d\\) multiply-adds each; adding \\(G\\) and its transpose first (\\(m^2\\) additions)
    gives the same gradient with one. For the kernel matrices of large tap views (\\(d \\gg m\\))
    this product dominates HSIC's step, so its objective costs \\(2 m^2 d\\) instead of
    \\(3 m^2 d\\) per tap (`bench/segment_cost.py`).
    """
    z = tf.convert_to_tensor(z)

    def grad(g):
        return tf.matmul(g + tf.transpose(g), z)

    return tf.matmul(z, z, transpose_b=True), grad


def cosine_kernel(z: tf.Tensor, eps: float = 1e-6) -> tf.Tensor:
    """\\(K_{ij} = z_i^\\top z_j / (\\lVert z_i \\rVert \\lVert z_j \\rVert)\\) of samples flattened."""
    z = _flatten(z)
    norm = tf.norm(z, axis=1, keepdims=True)
    norm = norm + eps * tf.cast(norm <= 0.0, z.dtype)
    return gram(z / norm)


def gaussian_kernel(z: tf.Tensor, sigma: float) -> tf.Tensor:
    """\\(K_{ij} = \\exp(-\\lVert z_i - z_j \\rVert^2 / (2 \\sigma^2 d))\\)."""
    z = _flatten(z)
    sq = tf.reduce_sum(z * z, axis=1, keepdims=True)
    d2 = tf.abs(sq - 2.0 * gram(z) + tf.transpose(sq))
    dim = tf.cast(tf.shape(z)[1], z.dtype)
    return tf.exp(-d2 / (2.0 * sigma * sigma * dim))


def _centre(a: tf.Tensor) -> tf.Tensor:
    """\\(H A H\\) for a symmetric kernel matrix."""
    return (
        a
        - tf.reduce_mean(a, axis=0, keepdims=True)
        - tf.reduce_mean(a, axis=1, keepdims=True)
        + tf.reduce_mean(a)
    )


def nhsic(a: tf.Tensor, b: tf.Tensor, eps: float = 1e-5) -> tf.Tensor:
    """Ma et al.'s normalised HSIC \\(\\operatorname{tr}(R_A R_B)\\), \\(R = \\bar K (\\bar K + \\epsilon m I)^{-1}\\)."""
    m = tf.shape(a)[0]
    ridge = eps * tf.cast(m, a.dtype) * tf.eye(m, dtype=a.dtype)

    def r(k):
        k = _centre(k)
        # K (K + eps m I)^-1 = (K + eps m I)^-1 K: the two commute
        return tf.linalg.solve(k + ridge, k)

    return tf.reduce_sum(r(a) * tf.transpose(r(b)))


def hsic(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Biased HSIC estimate \\(\\operatorname{tr}(A H B H) / m^2\\) of two symmetric kernel matrices."""
    m = tf.cast(tf.shape(a)[0], a.dtype)
    centred = (
        a
        - tf.reduce_mean(a, axis=0, keepdims=True)
        - tf.reduce_mean(a, axis=1, keepdims=True)
        + tf.reduce_mean(a)
    )
    return tf.reduce_sum(centred * b) / (m * m)


@register
class HSIC(Algorithm):
    """HSIC bottleneck, segment by segment.

    # Hyperparameters
        gamma: weight of the label dependence term (grid {2, 20, 200}, default 20).
        kernel: ``"cosine"`` (default) or ``"gaussian"``; sigma: Gaussian bandwidth.
        objective: ``"hsic"`` (default), ``"nhsic"`` (Ma et al.) or ``"cka"``; nhsic_eps: its \\(\\epsilon\\).
        update: ``"auto"``, ``"segment"`` or ``"step"`` (see `Algorithm`).
    """

    algorithm = "hsic"
    defaults = {
        "gamma": 20.0, "kernel": "cosine", "sigma": 5.0, "objective": "hsic", "nhsic_eps": 1e-5, "update": "auto"
    }
    choices = {"kernel": ("cosine", "gaussian"), "objective": ("hsic", "nhsic", "cka"), "update": UPDATE_MODES}
    supports_xla = True
    tap_granularity = "tensor"
    block_taps = True

    def _setup(self):
        self.tap_trackers = {str(t.index): self._tracker(f"hsic_{t.index}") for t in self.graph.taps}

    def _kernel(self, z):
        if self.hparams["kernel"] == "cosine":
            return cosine_kernel(z)
        return gaussian_kernel(z, float(self.hparams["sigma"]))

    def local_loss(self, z, k_y, k_x=None):
        """The local loss of a tap view ``z`` given the label kernel (and input kernel)."""
        gamma = float(self.hparams["gamma"])
        k_z = self._kernel(z)
        if self.hparams["objective"] == "hsic":
            return hsic(k_z, k_z) - gamma * hsic(k_y, k_z)

        if self.hparams["objective"] == "nhsic":
            eps = float(self.hparams["nhsic_eps"])
            return nhsic(k_z, k_x, eps) - gamma * nhsic(k_z, k_y, eps)

        def normalised(a, b):
            return hsic(a, b) / tf.sqrt(hsic(a, a) * hsic(b, b) + 1e-12)

        return normalised(k_z, k_x) - gamma * normalised(k_z, k_y)

    def _train_step(self, x, y, sample_weight):
        labels = self._onehot(y) - 1.0 / self.num_classes
        k_y = self._kernel(labels) if self.hparams["kernel"] == "gaussian" else cosine_kernel(labels)
        k_x = self._kernel(tf.nest.flatten(x)[0]) if self.hparams["objective"] != "hsic" else None
        scale = 1.0 / self._num_replicas()

        def segment_loss(segment, env):
            tap = segment.tap
            loss = self.local_loss(tap.view(env[tap.key], training=True), k_y, k_x)
            self.tap_trackers[str(tap.index)].update_state(loss)
            return loss * scale

        env = self._train_segments(x, segment_loss, labels=y, sample_weight=sample_weight,
                                   teacher_logits=self._teacher_logits(x))
        return env[self.graph.output_key]
