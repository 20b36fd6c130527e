"""Parameter checks shared by every configurable method: compression methods, defenses and attacks.

Each check takes the value and ``what`` — who owns the parameter (``"compression method 'kbit'"``,
``"defense 'mu_law'"``, ``"attack 'cw'"``) — and returns the value normalized or raises a one-line
:class:`~edgebench.errors.ConfigError` naming the owner, the parameter, the value and what is allowed.
:func:`check_integers` checks, from a constructor's signature, every parameter annotated ``int`` at once, so a
new method's integer parameters are checked without code of its own. Torch-free.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

from edgebench.errors import ConfigError

__all__ = ["check_bits", "check_choice", "check_fraction", "check_int", "check_integers", "check_layers",
           "check_number", "check_ratio", "check_schedule"]


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_number(name: str, value: Any, *, what: str, lo: float | None = None, lo_open: bool = False,
                 hi: float | None = None, rule: str = "") -> float:
    """A finite real number with optional bounds (``lo_open``: ``> lo`` rather than ``>= lo``); ``rule``
    replaces the generated description of what is allowed."""
    ok = _real(value) and math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value <= hi
    if not ok:
        if not rule:
            if lo is not None and hi is not None:
                rule = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
            elif lo is not None:
                rule = f"{'>' if lo_open else '>='} {lo:g}"
            else:
                rule = "finite"
        raise ConfigError(f"{what}: {name} must be a number {rule}, got {value!r}")
    return float(value)


def check_fraction(name: str, value: Any, *, what: str) -> float:
    """A number in [0, 1] (a ratio, an ε on inputs in [0, 1])."""
    return check_number(name, value, what=what, lo=0.0, hi=1.0)


def check_ratio(name: str, value: Any, *, what: str) -> float:
    """A fraction strictly between 0 and 1 (pruning ratios, partition shares)."""
    if not _real(value) or not 0.0 < float(value) < 1.0:
        raise ConfigError(f"{what}: {name} must be a number in (0, 1), got {value!r}")
    return float(value)


def check_int(name: str, value: Any, *, what: str, lo: int = 0) -> int:
    """An integer >= ``lo`` (``True`` / ``2.0`` are not integers)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(f"{what}: {name} must be an integer >= {lo}, got {value!r}")
    return value


def check_bits(value: Any, *, what: str, lo: int = 1, hi: int = 8) -> int:
    """A bit width, an integer in ``lo..hi``."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{what}: bits must be an integer in {lo}..{hi}, got {value!r}")
    return value


def check_choice(name: str, value: Any, allowed: Sequence[str], *, what: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{what}: {name} {value!r} is not one of {list(allowed)}")
    return str(value)


def check_schedule(value: Any, *, what: str) -> tuple[float, ...]:
    """An increasing list of accumulated shares in (0, 1] ending at 1 (INQ's 50, 75, 87.5, 100 %)."""
    ok = isinstance(value, (list, tuple)) and len(value) > 0 and all(_real(v) and 0 < v <= 1 for v in value)
    if not ok or any(b <= a for a, b in zip(value, value[1:])) or not math.isclose(value[-1], 1.0):
        raise ConfigError(f"{what}: schedule must be an increasing list of shares in (0, 1] ending with 1.0 "
                          f"(e.g. [0.5, 0.75, 0.875, 1.0]), got {value!r}")
    return tuple(float(v) for v in value)


def check_layers(value: Any, *, what: str, default: str) -> list[str] | None:
    """None, or a non-empty list of non-empty module-name globs; ``default`` says what None selects."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(p, str) and p for p in value):
        raise ConfigError(f"{what}: layers must be a non-empty list of module-name globs (e.g. ['features.*']) "
                          f"or omitted for {default}, got {value!r}")
    return list(value)


def _annotation_types(annotation: Any) -> set[str]:
    """The type names of an annotation (a string under ``from __future__ import annotations``):
    ``"int | None"`` -> ``{"int", "None"}``."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    return {part.strip() for part in text.split("|")}


def check_integers(func: Callable[..., object], params: dict[str, Any], *, what: str, where: str = "") -> None:
    """Raise :class:`ConfigError` for a value given to a parameter of ``func`` annotated ``int`` (or
    ``int | None``, ...) that is not an integer and not of another annotated type — ``steps = 2.5`` is an
    error here, in one line, rather than a ``TypeError`` deep inside the method. ``where``: the plan entry
    (``"plan.toml: attacks[0]"``); the message names ``<where>.<parameter>``."""
    for key, p in inspect.signature(func).parameters.items():
        if key not in params or p.annotation is inspect.Parameter.empty:
            continue
        types = _annotation_types(p.annotation)
        if "int" not in types or "float" in types or "Any" in types:
            continue
        value = params[key]
        if value is None and "None" in types:
            continue
        if type(value).__name__ not in types:  # bool is not int here
            allowed = " or ".join(["an integer", *sorted(t for t in types - {"int", "None"})])
            if where and where != what:
                raise ConfigError(f"{where}.{key}: must be {allowed} for {what}, got {value!r}")
            raise ConfigError(f"{what}: {key} must be {allowed}, got {value!r}")
