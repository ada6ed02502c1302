"""lqbench model zoo: the papers' architectures as flat Keras functional models of Larq layers.

Every model takes an `lqbench.Binarization` and asks it for the Larq arguments of each weight
layer by role (``first``, ``hidden``, ``last``), so one architecture gives its float, binary
weight, binary activation and fully binary versions (paper 000 Tables 4-6). Models output
logits (train with ``from_logits=True``).

| name | source | notes |
|---|---|---|
| `lenet` | paper 003 base CNN + Table 2 variants | conv 6@5x5, 16@5x5, FC 120-84 |
| `binarynet_mlp` | paper 002 MNIST MLP | 784-2048x3-10, BN |
| `binarynet_cnn` | paper 002 / BinaryNet / Bop | CIFAR-10 and SVHN variants |
| `vgg_small` | IR-Net, paper 003 Table 3 | 128-128-256-256-512-512 |
| `resnet20` | paper 001 (BNEW's Bi-Real ResNet20), He et al. | skip connections |
| `reactnet_a` | ReActNet-A, paper 001 Table 2 | RSign, RPReLU, skips |
| `vgg19` | torchvision vgg19_bn, paper 000 | 139,622,218 params at 224, 10 classes |
| `mobilenet_v2` | torchvision, paper 000 | 2,236,682 params; skips |
| `mlp_mixer` | paper 000 | 7,279,098 params; skips |

!!! example
    ```python
    import lqbench
    from lqbench import models
    model = models.build("resnet20", (32, 32, 3), 10, lqbench.Binarization(activation_estimator="approx_sign"))
    models.summary(model)
    ```
"""
# Import order is the order of `available()`: small paper-003/002 models first, paper 000's last.
from . import lenet  # noqa: F401, I001  (each import registers its models)
from . import binarynet  # noqa: F401
from . import vgg  # noqa: F401
from . import resnet  # noqa: F401
from . import reactnet  # noqa: F401
from . import mobilenet  # noqa: F401
from . import mixer  # noqa: F401
from ._blocks import FLOAT_SUFFIX, ChannelScale, LearnableBias, RPReLU, ZeroPadShortcut, is_float_by_design
from .registry import available, build
from .utils import (
    binarize_post_training,
    binary_input_layers,
    has_binary_input,
    has_binary_kernel,
    memory_footprint_bits,
    summary,
    weight_layer_roles,
    weight_layers,
)

__all__ = [
    "build",
    "available",
    "memory_footprint_bits",
    "summary",
    "binarize_post_training",
    "weight_layers",
    "weight_layer_roles",
    "has_binary_kernel",
    "has_binary_input",
    "binary_input_layers",
    "is_float_by_design",
    "FLOAT_SUFFIX",
    "LearnableBias",
    "ChannelScale",
    "RPReLU",
    "ZeroPadShortcut",
]
