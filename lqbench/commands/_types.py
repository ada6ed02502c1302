"""Argument types of the command line: numbers checked when the flags are parsed (exit 2, before any work)."""
from __future__ import annotations

import argparse


def _integer(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer (allowed: integers >= {minimum})") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} is not allowed (allowed: integers >= {minimum})")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (epochs, runs, batch sizes, threads)."""
    return _integer(text, 1)


def non_negative_int(text: str) -> int:
    """An integer >= 0 (warm-up runs, seeds)."""
    return _integer(text, 0)


def positive_float(text: str) -> float:
    """A finite number > 0 (timeouts)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (allowed: numbers > 0)") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{value} is not allowed (allowed: finite numbers > 0)")
    return value


#: ``--fallback`` choices: `lqbench.tflite.FALLBACK_POLICIES`, spelled here so that ``--help`` does not load TensorFlow.
FALLBACK_CHOICES = ("unavoidable", "any", "none")


def add_fallback_flags(parser) -> None:
    """``--fallback POLICY`` and its older spelling ``--allow-fallback`` (``--fallback any``), into ``args.fallback``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--fallback", choices=FALLBACK_CHOICES, default=None,
                       help="which binary layers may run as float ops: unavoidable (only those LCE has no binary op "
                            "for, e.g. depthwise; each listed in the report with its reason), any, or none (strict); "
                            "default: unavoidable")
    group.add_argument("--allow-fallback", action="store_const", const="any", dest="fallback",
                       help="the same as --fallback any")
