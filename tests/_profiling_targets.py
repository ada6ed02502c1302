"""Setup functions for tests/test_profiling.py, loaded by `lqbench.profiling.measure` in a child
process; no TensorFlow import, so the child starts fast."""
import os
import time

import numpy as np

MIB = 2**20
ALLOCATOR_KEYS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def allocating_setup(baseline_mib: int = 0, peak_mib: int = 0, sleep_s: float = 0.0, epochs: int = 1):
    """Holds ``baseline_mib`` from build time and allocates ``peak_mib`` during training."""
    held = np.ones(baseline_mib * MIB // 8)  # part of the baseline, must not count

    def train():
        buffer = np.ones(peak_mib * MIB // 8)  # touched pages: resident
        time.sleep(sleep_s)
        total = float(buffer[::4096].sum() + held[::4096].sum())
        del buffer
        return {"epochs": epochs, "checksum": total}

    return train


def failing_setup():
    raise RuntimeError("setup exploded on purpose")


def env_setup():
    def train():
        return {key: os.environ.get(key) for key in ALLOCATOR_KEYS}

    return train
