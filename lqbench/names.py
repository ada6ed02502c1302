"""The names each registry accepts, without importing TensorFlow (for ``lqbench <command> --help``).

The registries themselves (`lqbench.models.available()`, `lqbench.methods.available()`, ...)
load TensorFlow; these tuples let the command line list valid names at once.
``tests/test_cli.py`` checks that they equal the registries, so they cannot drift.
"""
from __future__ import annotations

import pathlib

NAMES: dict[str, tuple[str, ...]] = {
    "model": ("binarynet_cnn", "binarynet_mlp", "lenet", "mlp_mixer", "mobilenet_v2", "reactnet_a", "resnet20",
              "vgg19", "vgg_small"),
    "dataset": ("cifar10", "cifar100", "digits", "fashion_mnist", "imagenette", "indoor67", "mnist", "svhn_cropped"),
    "algorithm": ("bp", "dfa", "drtp", "hsic", "sigprop"),
    "method": ("bmd", "bnew", "bop", "bop2", "cb", "proxquant", "ste"),
    "optimizer": ("adam", "bmd", "bnew", "bop", "bop2", "cb", "continuous", "proxquant", "sgd", "ste"),
    "estimator": ("approx_sign", "cosh2", "ede", "gumbel", "rsign", "ste", "ste_clipped", "swish_sign", "tanh"),
    "schedule": ("constant", "cosine", "linear", "step"),
}


def names(kind: str) -> tuple[str, ...]:
    """The valid names of ``kind`` (one of `NAMES` or ``"preset"``)."""
    if kind == "preset":
        folder = pathlib.Path(__file__).with_name("presets")
        return tuple(sorted(p.stem for p in folder.glob("*.toml")))
    return NAMES[kind]
