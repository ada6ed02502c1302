"""Make sure TensorFlow runs with Keras 2 (``tf-keras``), which Larq needs.

TensorFlow 2.16 ships Keras 3 as ``tf.keras`` unless the environment variable
``TF_USE_LEGACY_KERAS=1`` is set *before TensorFlow is first imported*. Larq 0.14 and
Larq Compute Engine 0.16 only work with Keras 2, so lqbench sets the variable on import
and refuses to continue when TensorFlow was already imported with Keras 3.
"""
import atexit
import inspect
import logging
import os
import pathlib
import random
import re
import sys
import threading
import warnings

LEGACY_KERAS_VARIABLE = "TF_USE_LEGACY_KERAS"
VERBOSE_VARIABLE = "LQBENCH_VERBOSE"


def uses_tf_keras(tf) -> bool:
    """Whether ``tf.keras`` is tf-keras (Keras 2), judged by where its package lives."""
    return "tf_keras" in pathlib.Path(getattr(tf.keras, "__file__", "") or "").parts


class KerasVersionError(ImportError):
    """TensorFlow was imported with Keras 3 before lqbench could select Keras 2."""


def ensure_legacy_keras() -> None:
    """Select tf-keras (Keras 2) for TensorFlow, or raise if it is too late to do so."""
    tf_already_imported = "tensorflow" in sys.modules
    if not tf_already_imported:
        os.environ[LEGACY_KERAS_VARIABLE] = "1"
        # quiet by default: level 3 also hides the CUDA plugin "Unable to register" errors every
        # CPU-only import prints; an exported TF_CPP_MIN_LOG_LEVEL is respected
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose_requested() else "3")
        return
    if os.environ.get(LEGACY_KERAS_VARIABLE, "").lower() in ("1", "true", "yes"):
        return
    tf = sys.modules["tensorflow"]  # already imported: this is only a lookup

    if uses_tf_keras(tf):
        return
    keras_version = tf.keras.version() if hasattr(tf.keras, "version") else "3"
    raise KerasVersionError(
        "TensorFlow was imported with Keras "
        f"{keras_version} before lqbench; Larq needs Keras 2. Import lqbench before "
        "tensorflow, or set TF_USE_LEGACY_KERAS=1 in the environment before starting Python."
    )


def skip_autograph_for_tf_keras() -> None:
    """Stop AutoGraph from converting tf-keras's own code (measured: 19 s -> 4 s first epoch).

    AutoGraph never converts the ``keras`` package (it is in TensorFlow's
    ``CONVERSION_RULES``), but tf-keras lives in ``tf_keras``, which the rules miss: tracing a
    training function then runs all of tf-keras's internals through AutoGraph. Adding the same
    rule for ``tf_keras`` restores Keras 2's behaviour; user code (``train_step`` overrides,
    Larq quantizers) is still converted.
    """
    from tensorflow.python.autograph.core import config

    rule = config.DoNotConvert("tf_keras")
    if not any(getattr(r, "_prefix", None) == "tf_keras" for r in config.CONVERSION_RULES):
        config.CONVERSION_RULES = tuple(config.CONVERSION_RULES) + (rule,)


def integral_seed_draws() -> None:
    """Let tf-keras's seeded initializers run on Python 3.12, with the same seeds as on 3.10 and 3.11.

    After ``tf.keras.utils.set_random_seed(s)``, tf-keras 2.16 draws the seed of every initializer
    and random layer with ``generator.randint(1, 1e9)``: a float bound, deprecated since Python
    3.10 and a ``TypeError`` from 3.12 (keras-team/tf-keras#803, still in 2.17), so nothing with
    a seeded initializer could be built there. When the installed tf-keras has that draw, this
    replaces it by ``randint(1, 10**9)``: Python 3.10 and 3.11 truncate the float bound to that
    same integer, so every version draws the same seeds from the same ``s``.
    """
    from tf_keras.src import backend

    create = backend.RandomGenerator._create_seed
    try:
        needed = "randint(1, 1e9)" in inspect.getsource(create)
    except (OSError, TypeError):  # no source to read: leave tf-keras as it is
        needed = False
    if not needed:
        return

    def _create_seed(self, user_specified_seed):
        if user_specified_seed is not None:
            return user_specified_seed
        generator = getattr(backend._SEED_GENERATOR, "generator", None)
        return (generator or random).randint(1, 10**9)

    _create_seed.__doc__ = create.__doc__
    backend.RandomGenerator._create_seed = _create_seed


# ---------------------------------------------------------------------------- quiet by default
def verbose_requested() -> bool:
    """Whether TensorFlow's own logs were asked for: ``LQBENCH_VERBOSE=1``, or ``--verbose``
    (``-v``) on the ``lqbench`` command line (seen here because TensorFlow is imported, and reads
    its log level, before the command line is parsed)."""
    if os.environ.get(VERBOSE_VARIABLE, "").lower() in ("1", "true", "yes"):
        return True
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return program in ("lqbench", "cli.py") and any(a in ("--verbose", "-v") for a in sys.argv[1:])


def progress_verbosity(quiet: bool = False) -> int:
    """Keras ``verbose`` for training: 0 when quiet, a progress bar per batch (1) when stdout is
    a terminal, one line per epoch (2) when it is a file or a pipe."""
    if quiet:
        return 0
    try:
        return 1 if sys.stdout.isatty() else 2
    except (AttributeError, ValueError):
        return 2


#: Library loggers whose INFO/WARNING lines are hidden unless verbose ("callback is slow",
#: "compiled metrics have yet to be built", TFDS's and absl's chatter).
QUIET_LOGGERS = ("tensorflow", "absl", "tensorflow_datasets", "h5py", "matplotlib", "larq")
QUIET_WARNING_MODULES = r"(tensorflow|tf_keras|keras|larq|larq_compute_engine|tensorflow_datasets|absl|h5py)(\..*)?"


def quiet_python_logs(verbose: bool = False) -> None:
    """Hide the Python-level logs and warnings of TensorFlow, Keras and co. below ERROR
    (lqbench's own warnings stay); with ``verbose``, show everything and tell child processes."""
    if verbose:
        os.environ[VERBOSE_VARIABLE] = "1"
        return
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].get_logger().setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover - absl comes with TensorFlow
        pass
    warnings.filterwarnings("ignore", module=QUIET_WARNING_MODULES)


#: Lines of native (C++) logging that no TF_CPP_MIN_LOG_LEVEL reaches: XLA's absl INFO lines
#: ("XLA service ... initialized", "Compiled cluster using XLA!"), absl's pre-init notice, and
#: TensorFlow's own INFO/WARNING lines and CUDA plugin registration errors.
NATIVE_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] .*"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] \S+:\d+\] .*"
    r"|.*Unable to register (cuFFT|cuDNN|cuBLAS) factory.*"
    r"|.*TF-TRT Warning: Could not find TensorRT.*)\r?$"
)


class NativeStderrFilter:
    """Drop `NATIVE_NOISE` lines from everything written to file descriptor 2 (C++ included).

    File descriptor 2 becomes a pipe; a thread copies every other line (and partial lines that
    end in a carriage return, such as progress bars) to the original stderr. Child processes
    inherit the filtered descriptor. `stop` (also run at exit) restores the original.
    Only for a command-line process: it rewires the whole process's stderr.
    """

    def __init__(self):
        self._saved = None
        self._thread = None

    def start(self) -> "NativeStderrFilter":
        if self._saved is not None:
            return self
        sys.stderr.flush()
        self._saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._thread = threading.Thread(target=self._pump, args=(read_end,), name="lqbench-stderr", daemon=True)
        self._thread.start()
        atexit.register(self.stop)
        return self

    def _emit(self, data: bytes) -> None:
        kept = [line for line in data.split(b"\n") if not NATIVE_NOISE.match(line.decode("utf-8", "replace"))]
        if kept:
            try:
                os.write(self._saved, b"\n".join(kept) + b"\n")
            except OSError:
                pass

    def _pump(self, read_end: int) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(read_end, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            if b"\n" in pending:
                complete, pending = pending.rsplit(b"\n", 1)
                self._emit(complete)
            if b"\r" in pending:  # a progress bar redrawn in place: show it now
                shown, pending = pending.rsplit(b"\r", 1)
                try:
                    os.write(self._saved, shown + b"\r")
                except OSError:
                    pass
        if pending:
            self._emit(pending)
        os.close(read_end)

    def stop(self) -> None:
        if self._saved is None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._saved, 2)  # closes this process's write end of the pipe
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        os.close(self._saved)
        self._saved = None
