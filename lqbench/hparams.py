r"""Typed hyperparameters: the one validator every registry (models, algorithms, methods) uses.

A registry publishes, per entry, a tuple of `Hparam` declarations (name, kind, default, range,
choices). `validate` checks a user's table against them *before anything is built*: unknown
names (listing the allowed ones), types (a TOML string ``"false"`` is not a bool, ``true`` is
not a number, ``3`` is not a list), ranges and choices, and returns the table with defaults
filled in. Wrong types raise `lqbench.errors.ConfigTypeError` (a `TypeError`), impossible
values `lqbench.errors.ConfigValueError` (a `ValueError`), each one line naming the setting,
the value and what is allowed.

Kinds: ``"float"`` (int or float, not bool), ``"int"`` (not bool), ``"bool"``, ``"str"``,
``"floats"`` / ``"ints"`` (a list or tuple of them, with an optional fixed ``length``),
``"any"`` (not checked). ``optional=True`` also accepts ``None``.

!!! example
    ```python
    SCHEMA = (Hparam("gamma", "float", 1e-4, low=0, high=1, low_inclusive=False),
              Hparam("gamma_schedule", "str", "constant", choices=("constant", "linear")))
    validate(SCHEMA, {"gamma": 1e-3}, where="method 'bop'")
    # {'gamma': 0.001, 'gamma_schedule': 'constant'}
    ```

This module imports nothing heavy (no TensorFlow), so specs validate quickly.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import re
from typing import Any, Iterable, Sequence

from lqbench.errors import ConfigTypeError, ConfigValueError

__all__ = ["Hparam", "from_defaults", "from_signature", "schema_defaults", "validate"]

KINDS = ("float", "int", "bool", "str", "floats", "ints", "any")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class Hparam:
    """One typed hyperparameter: ``kind``, ``default``, optional range and choices."""

    name: str
    kind: str
    default: Any
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    choices: tuple | None = None
    optional: bool = False
    length: int | None = None
    doc: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Hparam {self.name!r}: unknown kind {self.kind!r}; allowed: {', '.join(KINDS)}")

    # ------------------------------------------------------------------ description
    def describe(self) -> str:
        """``name: kind = default in [low, high]`` (for help texts and error messages)."""
        text = f"{self.name}: {self.kind}{' or None' if self.optional else ''} = {self.default!r}"
        if self.choices is not None:
            text += f" (one of {', '.join(map(repr, self.choices))})"
        elif self.low is not None or self.high is not None:
            text += f" in {self._range_text()}"
        return text

    def _range_text(self) -> str:
        lo = "[" if self.low_inclusive else "("
        hi = "]" if self.high_inclusive else ")"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{lo}{low}, {high}{hi}"

    # ------------------------------------------------------------------ checks
    def check(self, value: Any, where: str = "") -> Any:
        """``value`` if it is valid for this hyperparameter (lists of a sequence kind stay lists)."""
        label = f"{where}: {self.name}" if where else self.name
        if value is None:
            if self.optional:
                return None
            raise ConfigTypeError(f"{label}=None is not allowed; expected {self._type_text()}")
        if self.kind == "any":
            return value
        if self.kind in ("floats", "ints"):
            if not isinstance(value, (list, tuple)):
                raise ConfigTypeError(f"{label}={value!r} must be a list of {self._type_text()}")
            if self.length is not None and len(value) != self.length:
                raise ConfigValueError(f"{label}={value!r} must have exactly {self.length} element(s)")
            scalar = "float" if self.kind == "floats" else "int"
            element = f"{label}={value!r}: element"
            try:
                return [self._check_scalar(v, element, scalar) for v in value]
            except (ConfigTypeError, ConfigValueError) as error:
                raise type(error)(str(error).replace(f"{element}=", f"{element} ", 1)) from None
        return self._check_scalar(value, label, self.kind)

    def _type_text(self) -> str:
        return {"float": "a number", "int": "an integer", "bool": "true or false", "str": "a string",
                "floats": "numbers", "ints": "integers"}.get(self.kind, self.kind)

    def _check_scalar(self, value, label: str, kind: str):
        ok = {"float": _is_number, "int": _is_int, "bool": lambda v: isinstance(v, bool),
              "str": lambda v: isinstance(v, str)}[kind](value)
        if not ok:
            expected = {"float": "a number", "int": "an integer", "bool": "true or false", "str": "a string"}[kind]
            raise ConfigTypeError(f"{label}={value!r} ({type(value).__name__}) must be {expected}")
        if self.choices is not None and value not in self.choices:
            raise ConfigValueError(f"{label}={value!r} is not allowed; allowed: {', '.join(map(repr, self.choices))}")
        if kind in ("float", "int"):
            if isinstance(value, float) and math.isnan(value):
                raise ConfigValueError(f"{label}={value!r} is not a number")
            too_low = self.low is not None and (value < self.low if self.low_inclusive else value <= self.low)
            too_high = self.high is not None and (value > self.high if self.high_inclusive else value >= self.high)
            if too_low or too_high:
                raise ConfigValueError(f"{label}={value!r} is outside the allowed range {self._range_text()}")
        return value


def validate(schema: Sequence[Hparam], values: dict[str, Any] | None, where: str,
             noun: str = "hyperparameter") -> dict[str, Any]:
    """Check ``values`` against ``schema``; the full table with defaults for missing names.

    # Raises
        ConfigTypeError: ``values`` is not a table, or a value has the wrong type.
        ConfigValueError: an unknown name (message lists the allowed ones), a value out of range
            or not among the choices.
    """
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigTypeError(f"{where}: expected a table of {noun}s, got {values!r}")
    by_name = {h.name: h for h in schema}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        allowed = ", ".join(by_name) or "none"
        raise ConfigValueError(f"{where}: unknown {noun}(s) {', '.join(map(str, unknown))}; allowed: {allowed}")
    out = {}
    for name, hparam in by_name.items():
        out[name] = hparam.check(values[name], where) if name in values else hparam.default
    return out


def schema_defaults(schema: Iterable[Hparam]) -> dict[str, Any]:
    """``{name: default}`` of a schema."""
    return {h.name: h.default for h in schema}


_SEQUENCE = re.compile(r"^(?:Sequence|list|tuple|Tuple|List)\[(int|float)(?:, \.\.\.)?\]$")


def from_annotation(name: str, annotation: Any, default: Any) -> Hparam:
    """An `Hparam` from a builder parameter's annotation (a string under postponed evaluation).

    ``int``, ``float``, ``bool``, ``str``, ``Sequence[int]``/``tuple[int, ...]``/``list[float]``
    and their ``| None`` forms are typed; anything else is ``"any"``.
    """
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    parts = [p.strip() for p in text.replace("Optional[", "").rstrip("]").split("|")] if "Optional[" in text \
        else [p.strip() for p in text.split("|")]
    optional = "None" in parts or default is None
    parts = [p for p in parts if p != "None"]
    kind = "any"
    if len(parts) == 1:
        base = parts[0]
        if base in ("int", "float", "bool", "str"):
            kind = base
        else:
            match = _SEQUENCE.match(base)
            if match:
                kind = match.group(1) + "s"
    elif sorted(parts) == ["float", "int"]:
        kind = "float"
    elif len(parts) == 2 and "int" in parts and any(_SEQUENCE.match(p) for p in parts):
        kind = "any"  # an int or a sequence of ints (checked by the builder)
    if kind == "float" and _is_int(default):
        kind = "float"
    return Hparam(name, kind, default, optional=optional)


def from_signature(function, skip: Iterable[str] = ()) -> tuple[Hparam, ...]:
    """Typed hyperparameters from the keyword-only parameters of ``function``."""
    skip = set(skip)
    out = []
    for p in inspect.signature(function).parameters.values():
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in skip:
            if p.annotation is inspect.Parameter.empty:
                out.append(from_defaults({p.name: p.default})[0])
            else:
                out.append(from_annotation(p.name, p.annotation, p.default))
    return tuple(out)


def from_defaults(defaults: dict[str, Any], choices: dict[str, tuple] | None = None) -> tuple[Hparam, ...]:
    """Typed hyperparameters from a ``{name: default}`` table (kind from the default's type)."""
    choices = choices or {}
    out = []
    for name, default in defaults.items():
        if isinstance(default, bool):
            kind = "bool"
        elif isinstance(default, (int, float)):
            kind = "float" if isinstance(default, float) else "int"
        elif isinstance(default, str):
            kind = "str"
        elif isinstance(default, (list, tuple)) and default and all(_is_number(v) for v in default):
            kind = "floats" if any(isinstance(v, float) for v in default) else "ints"
        else:
            kind = "any"
        allowed = tuple(choices[name]) if name in choices else None
        if kind == "bool" and allowed is not None and set(allowed) <= {True, False}:
            allowed = None
        out.append(Hparam(name, kind, default, choices=allowed, optional=default is None))
    return tuple(out)
