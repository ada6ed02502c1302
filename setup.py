"""lqbench: train, compare and deploy binary neural networks with Larq."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def _requirements(test: bool):
    """requirements.txt's lines: the test-only ones (marked ``# test``) or the others."""
    lines = (HERE / "requirements.txt").read_text().splitlines()
    return [l.split("#")[0].strip() for l in lines
            if l.split("#")[0].strip() and (l.partition("#")[2].strip().split(":")[0] == "test") == test]


# lqbench's own packages, plus the top-level folders installed under the one lqbench namespace.
TOP_LEVEL = {"lqbench.models": "models", "lqbench.tflite": "tflite"}
SUBPACKAGES = {"lqbench": "lqbench"}
SUBPACKAGES.update(
    {f"lqbench.{p}": f"lqbench/{p.replace('.', '/')}" for p in find_packages("lqbench")}
)
for package, folder in TOP_LEVEL.items():
    SUBPACKAGES[package] = folder
    SUBPACKAGES.update({f"{package}.{p}": f"{folder}/{p.replace('.', '/')}" for p in find_packages(folder)})

setup(
    name="lqbench",
    version="0.1.0",
    description="Reference toolkit for training, comparing and deploying binary neural networks with Larq",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=list(SUBPACKAGES),
    package_dir=SUBPACKAGES,
    package_data={"lqbench": ["presets/*.toml"]},
    install_requires=_requirements(test=False),
    extras_require={"test": _requirements(test=True)},
    entry_points={"console_scripts": ["lqbench=lqbench.cli:main"]},
    license="Apache-2.0",
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
    ],
)
