"""The one exception of `lqbench.data`."""

from lqbench.errors import LqbenchError


class DataError(LqbenchError, ValueError):
    """A dataset is missing or corrupt.

    A `ValueError` (bad input the user can fix), so the command line prints its one line
    without a traceback.

    The message is one line: the file (or folder), what is wrong with it, and how to obtain
    the data. lqbench never falls back silently to another source or another dataset when
    the files it found are broken.

    !!! example
        ```python
        try:
            ds = lqbench.data.load("mnist", "train", batch_size=128)
        except lqbench.data.DataError as e:
            print(e)  # .../train-images-idx3-ubyte.gz: bad IDX magic 1234 (expected 2051); ...
        ```
    """
