"""lqbench: train, compare and deploy binary neural networks with Larq."""
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent


def _requirements():
    lines = (HERE / "requirements.txt").read_text().splitlines()
    return [l.split("#")[0].strip() for l in lines if l.split("#")[0].strip() and "pytest" not in l]


SUBPACKAGES = {
    # lqbench's own modules
    "lqbench": "lqbench",
    "lqbench.algorithms": "lqbench/algorithms",
    "lqbench.data": "lqbench/data",
    # top-level folders installed under the one lqbench namespace
    "lqbench.models": "models",
    "lqbench.tflite": "tflite",
}

setup(
    name="lqbench",
    version="0.1.0",
    description="Reference toolkit for training, comparing and deploying binary neural networks with Larq",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=[p for p, d in SUBPACKAGES.items() if (HERE / d).is_dir()],
    package_dir=SUBPACKAGES,
    package_data={"lqbench": ["presets/*.toml"]},
    install_requires=_requirements(),
    extras_require={"test": ["pytest>=7.4"]},
    entry_points={"console_scripts": ["lqbench=lqbench.cli:main"]},
    license="Apache-2.0",
)
