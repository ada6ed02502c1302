"""Ready-made experiment specs and sweeps: the four papers at full scale, and small ones that run here.

Each preset is a TOML file in this folder: a plain `lqbench.ExperimentSpec`, or a sweep file
(``[base]`` + ``[axes]`` + optional ``[[group]]`` tables, see `lqbench.sweep`).

| preset | what |
|---|---|
| ``paper000-imagenette`` | 000 Tables 3-9: VGG-19 / MobileNetV2 / MLP-Mixer x BP / DFA / DRTP (x4 binarizations), HSIC / SigpropTL (W1A1), without skips; 224x224, 80 epochs, grid search, 5 seeds |
| ``paper000-cifar10``, ``paper000-indoor67`` | 000 Table 3 on CIFAR-10 and Indoor67 |
| ``paper001-resnet20`` | 001 Tables 1-2: ResNet20 on CIFAR-10/100 with STE, BMD, Bop, BNEW, each from the phase-1 model of its seed (``init_from``); real-valued reference |
| ``paper001-cpu`` | 001 Table 1 (CIFAR-10) at CPU scale: phase 1, then STE, Bop, BMD, ProxQuant, BNEW from it, and the real-valued reference; 2 seeds, about 2 CPU-hours here |
| ``paper002-mnist`` | 002 Table 1: MLP 784-2048x3-10 on MNIST, full precision, STE, continuous binarization |
| ``paper003-base-cnn`` | 003 Tables 1-2: LeNet-style base CNN on CIFAR-10, every estimator, naive post-training binarization |
| ``paper003-vgg-small`` | 003 Table 3: IR-Net's VGG-small on CIFAR-10 with every estimator |
| ``small-*`` | minutes on 2 CPU cores, on the embedded ``digits`` or MNIST |

!!! example
    ```python
    from lqbench import presets, sweep

    presets.available()                      # ['paper000-cifar10', ...]
    specs = presets.specs("small-digits-algorithms")
    sweep.sweep(specs, "results/small")
    ```

or ``lqbench sweep small-digits-algorithms --output results/small``.
"""
from __future__ import annotations

import pathlib

from lqbench._compat import tomllib
from lqbench.errors import ConfigValueError
from lqbench.spec import ExperimentSpec
from lqbench.sweep import SweepSpec


HERE = pathlib.Path(__file__).resolve().parent


def available() -> list[str]:
    """Names of every preset (file names without ``.toml``), sorted."""
    return sorted(p.stem for p in HERE.glob("*.toml"))


def path(name: str) -> pathlib.Path:
    """The TOML file of preset ``name``."""
    file = HERE / f"{name}.toml"
    if not file.is_file():
        raise ConfigValueError(f"unknown preset {name!r}; available: {', '.join(available())}")
    return file


def is_sweep(name: str) -> bool:
    """Whether preset ``name`` is a sweep file (has a ``[base]`` table) rather than one spec."""
    return "base" in tomllib.loads(path(name).read_text())


def load(name: str):
    """Preset ``name``: an `lqbench.ExperimentSpec`, or an `lqbench.sweep.SweepSpec` for sweeps."""
    if is_sweep(name):
        return SweepSpec.load(path(name))
    return ExperimentSpec.load(path(name))


def specs(name: str) -> list:
    """Every `lqbench.ExperimentSpec` of preset ``name`` (one for a plain spec)."""
    preset = load(name)
    return preset.specs() if hasattr(preset, "specs") else [preset]
