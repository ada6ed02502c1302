"""Datasets for lqbench: tf.data pipelines with fixed splits, normalisation and augmentation.

`load` gives batched, normalised ``(images, labels)`` pipelines of ``train`` / ``val`` /
``test`` splits; `info` the shape, classes, split sizes and source; `load_arrays` the raw
split as NumPy arrays; `available` the dataset names. Missing or corrupt data raises
`DataError` with one line saying which file, what is wrong and how to obtain the data.
Sources, layouts and split rules are documented in `lqbench.data.datasets`.

!!! example
    ```python
    import lqbench.data

    train = lqbench.data.load("digits", "train", batch_size=32, augment=True, seed=0)
    images, labels = next(iter(train))  # (32, 8, 8, 1) float32, (32,) int32
    ```
"""
from lqbench.data.datasets import DatasetInfo, available, info, load, load_arrays
from lqbench.data.errors import DataError

__all__ = ["DataError", "DatasetInfo", "available", "info", "load", "load_arrays"]
