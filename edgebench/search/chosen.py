"""The chosen configuration written as an ordinary plan (``chosen.toml`` in the search's run folder): the search
plan's data, models, attacks, targets and measurement, with the chosen chain as its ``[[defend]]`` /
``[[compress]]`` entries and without ``[search]``, ``[budget]`` or the plan's own grid. ``edgebench run chosen.toml``
reproduces the chosen variant: the same parameters give the same cache keys, so its model, variant and adversarial
sets come from the cache and its device job is measured anew. Torch-free."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from edgebench.errors import ConfigError
from edgebench.search.trial import Step, step_label, variant_name

__all__ = ["chosen_plan", "toml_text"]


def chosen_plan(raw: dict[str, Any], chain: list[Step], model: str, name: str) -> dict[str, Any]:
    """The plan document ``raw`` (a search plan as read from its file) with ``chain`` as its only variants."""
    out = {k: v for k, v in raw.items() if k not in ("search", "budget", "compress", "defend")}
    out["plan"] = {**(raw.get("plan") or {}), "name": name}
    for i, step in enumerate(chain):
        kind, method, params, _ = step
        entry: dict[str, Any] = {"method": method, "label": step_label(step), "model": model}
        if i:
            entry["on"] = variant_name(chain[:i])
        out.setdefault(kind, []).append({**entry, **params})
    return out


_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _key(k: str) -> str:
    return k if _BARE.fullmatch(k) else json.dumps(k, ensure_ascii=False)


def _float(v: float) -> str:
    return repr(v) if math.isfinite(v) else "nan" if math.isnan(v) else "inf" if v > 0 else "-inf"


#: how each TOML scalar is written, by exact type (bool before int: a bool is an int to isinstance)
_SCALARS = {bool: lambda v: "true" if v else "false", int: str, float: _float,
            str: lambda v: json.dumps(v, ensure_ascii=False)}


def _value(v: Any) -> str:
    write = _SCALARS.get(type(v))
    if write is not None:
        return write(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise ConfigError(f"chosen.toml: cannot write a {type(v).__name__} ({v!r}) as TOML")


def _table(lines: list[str], header: str, t: dict[str, Any]) -> None:
    lines.append(header)
    lines += [f"{_key(k)} = {_value(v)}" for k, v in t.items()]
    lines.append("")


def toml_text(doc: dict[str, Any], header: str = "") -> str:
    """``doc`` as TOML: top-level values, then tables, then arrays of tables (nested tables inline)."""
    lines = [f"# {line}" for line in header.splitlines()] + ([""] if header else [])
    scalars = {k: v for k, v in doc.items() if not isinstance(v, dict)
               and not (isinstance(v, list) and v and all(isinstance(x, dict) for x in v))}
    lines += [f"{_key(k)} = {_value(v)}" for k, v in scalars.items()] + ([""] if scalars else [])
    for k, v in doc.items():
        if isinstance(v, dict):
            _table(lines, f"[{_key(k)}]", v)
    for k, v in doc.items():
        if k not in scalars and isinstance(v, list):
            for item in v:
                _table(lines, f"[[{_key(k)}]]", item)
    return "\n".join(lines)
