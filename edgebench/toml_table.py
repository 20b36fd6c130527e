"""Reading TOML files and tables with checks: the plan (:mod:`edgebench.config`) and the target files
(:mod:`edgebench.targets`) are read through :class:`Table`, whose errors name the file, the key and the
allowed values in one line. Torch-free.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError

__all__ = ["Table", "read_toml"]


def _where(source: str, key: str) -> str:
    return f"{source}: {key}" if key else source


class Table:
    """A TOML table being validated: typed getters that record which keys were used; every error names the
    file (``source``) and the key's path (``key``, e.g. ``attacks[0]``)."""

    def __init__(self, raw: Any, source: str, key: str) -> None:
        if not isinstance(raw, dict):
            raise ConfigError(f"{_where(source, key)}: expected a table, got {type(raw).__name__}")
        self.raw, self.source, self.key = raw, source, key
        self.used: set[str] = set()

    def path(self, name: str) -> str:
        name = name if name.isprintable() else repr(name)  # a key holding a newline still gives one line
        return f"{self.key}.{name}" if self.key else name

    def fail(self, name: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.path(name)}: {msg}")

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        self.used.add(name)
        if name not in self.raw:
            if required:
                raise self.fail(name, "is required")
            return default
        value = self.raw[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(name, f"must be {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
        if not isinstance(value, kinds):
            raise self.fail(name, f"must be {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
        return value

    def number(self, name: str, default: float | None, *, lo: float | None = None, hi: float | None = None,
               integer: bool = False, lo_open: bool = False, required: bool = False) -> Any:
        value = self.get(name, int if integer else (int, float), default, required=required)
        if value is None:
            return None
        if not integer and not math.isfinite(value):
            raise self.fail(name, f"must be finite, got {value!r}")
        if lo is not None and (value < lo or (lo_open and value == lo)):
            raise self.fail(name, f"must be {'>' if lo_open else '>='} {lo}, got {value!r}")
        if hi is not None and value > hi:
            raise self.fail(name, f"must be <= {hi}, got {value!r}")
        return value

    def choice(self, name: str, allowed: list[str], default: str | None = None, *, required: bool = False) -> Any:
        value = self.get(name, str, default, required=required)
        if value is not None and value not in allowed:
            import difflib

            close = difflib.get_close_matches(value, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.fail(name, f"{value!r} is not one of {allowed}{hint}")
        return value

    def table(self, name: str) -> Table:
        self.used.add(name)
        return Table(self.raw.get(name, {}), self.source, self.path(name))

    def rest(self) -> dict[str, Any]:
        """The keys not read by a getter (passed through as parameters, checked by their consumer)."""
        return {k: v for k, v in self.raw.items() if k not in self.used}

    def done(self, allowed_extra: tuple[str, ...] = ()) -> None:
        unknown = [k for k in self.raw if k not in self.used and k not in allowed_extra]
        if unknown:
            allowed = sorted(self.used | set(allowed_extra))
            raise ConfigError(f"{self.source}: {self.path(unknown[0])}: unknown key; allowed keys here: {allowed}")


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The TOML file ``path`` as a dict; a missing, unreadable or invalid file is one line naming it."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what} file ({exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
