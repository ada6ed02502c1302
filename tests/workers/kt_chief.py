"""``python -m lqbench.cli ARGS`` with KerasTuner's oracle server polling 6x more often (used by
test_distributed_tuning.py for the chief).

KerasTuner's chief (``keras_tuner/distribute/oracle_chief.py``, ``start_server``) looks every 30 s
whether a worker has been told the search is over, then every 10 s whether trials are still
running, and then waits 30 s more for the workers' last calls before it stops the server: a
minute of sleeping in every distributed search however short, most of the test's time. Here those
waits are 5 s, 1.7 s and 5 s; nothing else changes (the chief runs the same ``lqbench tune``
command as the workers). The last wait stays 5 s because the workers' calls wait for a server
(``wait_for_ready``): a worker whose last call came after the server stopped would hang, and the
test fail on its timeout, not pass.

usage: kt_chief.py tune ARGS...   (the arguments of ``lqbench``)
"""
import sys
import time
import types

import lqbench  # noqa: F401  (before KerasTuner and TensorFlow: tf-keras)
from keras_tuner.distribute import oracle_chief

SPEED_UP = 6
oracle_chief.time = types.SimpleNamespace(sleep=lambda seconds: time.sleep(seconds / SPEED_UP))

from lqbench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())  # as `python -m lqbench.cli`: the arguments from sys.argv
