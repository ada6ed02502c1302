"""The errors lqbench raises for problems a user can fix.

Every such error derives from `LqbenchError`; the command line prints it as one line
(``lqbench <command>: error: <message>``) and exits with status 2, while any other exception
keeps its traceback (it is a bug). A wrong *type* is also a `TypeError`, an impossible
*value* also a `ValueError`, so ``except ValueError`` code written against earlier versions
keeps working.

This module imports nothing heavy: descriptive modules (`lqbench.spec`, `lqbench.hparams`)
use it without loading TensorFlow.
"""
from __future__ import annotations

__all__ = ["ConfigTypeError", "ConfigValueError", "IncompatibleError", "LqbenchError", "UsageError"]


class LqbenchError(Exception):
    """Base class of every error caused by the user's input (names, values, files)."""


class ConfigValueError(LqbenchError, ValueError):
    """A setting has an impossible value or an unknown name (the message lists the allowed ones)."""


class ConfigTypeError(LqbenchError, TypeError):
    """A setting has the wrong type (e.g. the TOML string ``"false"`` where a bool is expected)."""


class IncompatibleError(ConfigValueError):
    """Two settings that cannot be combined (e.g. continuous binarization with an update-unlocked algorithm)."""


class UsageError(LqbenchError):
    """A command-line usage problem reported as one line."""
