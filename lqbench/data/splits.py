r"""Deterministic stratified hold-out splits.

`stratified_holdout` moves a fraction \\(f\\) of every class into a held-out part. The total
held-out count is \\(k = \lfloor f N + 1/2 \rfloor\\); class \\(c\\) with \\(n_c\\) examples gets
\\(\lfloor f n_c \rfloor\\) plus one more for the \\(k - \sum_c \lfloor f n_c \rfloor\\) classes with the
largest fractional parts \\(f n_c - \lfloor f n_c \rfloor\\) (ties: smaller class index first), the
largest-remainder rule, so the held-out part follows the class proportions as closely as
integers allow and always has exactly \\(k\\) examples. Which examples of a class are held out
is drawn by a NumPy generator seeded from ``(tag, seed)``: the same arguments give the same
split on every machine, and the tag keeps the seed streams of different purposes apart.
"""
from __future__ import annotations

import numpy as np

from lqbench.errors import ConfigValueError

#: tags of the seed streams (arbitrary fixed constants).
VAL_TAG = 0x76616C  # "val": the validation split, drawn with the user's ``seed``
TEST_TAG = 0x74657374  # "test": the fixed test split of single-split datasets
TEST_SEED = 0  # the test split of digits and single-split folders never depends on ``seed``


def stratified_holdout(
    labels: np.ndarray, fraction: float, seed: int, tag: int = VAL_TAG
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(len(labels))`` into ``(kept, held_out)`` index arrays, both sorted.

    # Arguments
        labels: 1-D integer class labels.
        fraction: share of the examples to hold out, in [0, 1).
        seed: non-negative integer choosing which examples are held out.
        tag: seed-stream tag (`VAL_TAG` or `TEST_TAG`).

    !!! example
        ```python
        train_idx, val_idx = stratified_holdout(y, 0.1, seed=0)
        ```
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ConfigValueError(f"stratified_holdout: labels must be 1-D, got shape {labels.shape}")
    if not 0.0 <= fraction < 1.0:
        raise ConfigValueError(f"stratified_holdout: fraction {fraction} is not in [0, 1)")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConfigValueError(f"stratified_holdout: seed must be a non-negative int, got {seed!r}")
    n = labels.shape[0]
    classes, counts = np.unique(labels, return_counts=True)
    total = int(np.floor(fraction * n + 0.5))
    quota = fraction * counts
    take = np.floor(quota).astype(np.int64)
    remainder = quota - take
    extra = total - int(take.sum())
    order = np.lexsort((np.arange(len(classes)), -remainder))  # largest remainder first
    take[order[:extra]] += 1
    rng = np.random.default_rng(np.random.SeedSequence([int(tag), int(seed)]))
    held = []
    for cls, k in zip(classes, take):
        members = np.flatnonzero(labels == cls)
        held.append(rng.permutation(members)[:k])
    held_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    mask = np.ones(n, bool)
    mask[held_idx] = False
    return np.flatnonzero(mask), held_idx
