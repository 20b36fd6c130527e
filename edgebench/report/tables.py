"""The report's building blocks, independent of the output format.

A report is a list of :class:`Section`; a section holds blocks: paragraphs, bullet lists, tables, code and
plots. Table cells keep their numbers (a :class:`Prop` is a proportion with its sample count and 95 %
interval, a :class:`Num` a number with its display precision, a :class:`Mark` a text with a meaning such as
"bad" or "not significant"), so the Markdown and HTML renderers format them for people while the CSV
renderer writes the raw values. Inline text uses a small Markdown subset: `` `code` ``, ``**bold**`` and
``~~struck~~``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from edgebench.naming import slug


@dataclass(frozen=True)
class Prop:
    """A proportion with its 95 % Wilson interval and sample count (DESIGN.md: every accuracy and asr)."""

    value: float | None
    lo: float | None = None
    hi: float | None = None
    n: int | None = None

    @classmethod
    def of(cls, row: dict[str, Any] | None, key: str, n_key: str = "n") -> Prop:
        if row is None:
            return cls(None)
        n = row.get("asr_n" if key == "asr" else n_key)
        return cls(row.get(key), row.get(key + "_lo"), row.get(key + "_hi"), None if n is None else int(n))


@dataclass(frozen=True)
class Num:
    """A number shown with ``digits`` decimals (``g`` format when ``digits`` is None), kept raw in CSV."""

    value: float | int | None
    digits: int | None = 3
    suffix: str = ""


@dataclass(frozen=True)
class Mark:
    """Text with a meaning the renderers show: ``bad`` (bold), ``ok``, ``struck`` (an invalid number),
    ``muted`` (inside the noise), ``missing`` (not measured)."""

    text: str
    kind: str = "bad"
    value: Any = None  #: the raw value for CSV (the text when None)


Cell = str | int | float | Prop | Num | Mark | None


@dataclass
class Table:
    name: str  #: file stem of its CSV and the HTML anchor
    title: str
    columns: list[str]
    rows: list[list[Cell]]
    caption: str = ""


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Code:
    text: str
    lang: str = ""
    summary: str = ""  #: shown folded under this title in HTML


@dataclass
class PlotRef:
    """A plot by name; the renderers look its image up in the report's plots."""

    name: str


Block = Para | Bullets | Table | Code | PlotRef


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    level: int = 2


# -- formatting shared by the renderers -----------------------------------------------------------------
def missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt_num(v: Any, digits: int | None = 3) -> str:
    if missing(v):
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.{digits}f}" if digits is not None else f"{v:g}"
    return str(v)


def fmt_prop(p: Prop) -> str:
    if missing(p.value):
        return "–"
    if missing(p.lo) or missing(p.hi):
        return f"{p.value:.3f}"
    return f"{p.value:.3f} [{p.lo:.3f}, {p.hi:.3f}]"


def cell_text(c: Cell) -> str:
    """A cell as plain text (Markdown inline marks included)."""
    if isinstance(c, Prop):
        return fmt_prop(c)
    if isinstance(c, Num):
        text = fmt_num(c.value, c.digits)
        return text + c.suffix if text != "–" else text
    if isinstance(c, Mark):
        return {"bad": f"**{c.text}**", "struck": f"~~{c.text}~~", "missing": f"*{c.text}*"}.get(c.kind, c.text)
    if isinstance(c, float | int) and not isinstance(c, bool):
        return fmt_num(c)
    return "–" if c is None else str(c)


_SYMBOLS = {"ε": "eps", "τ": "tau", "∂": "d", "δ": "delta", "Δ": "delta", "÷": "over", "→": "to", "±": "",
            "‖ΔW‖₂": "delta_w", "\\": "_", "/s": "_per_s", "/": "_per_"}


def csv_key(column: str) -> str:
    """A column title as a CSV header: ``[...]`` notes dropped, symbols spelled out, snake_case
    (``robust_acc [95 % CI]`` → ``robust_acc``, ``ε`` → ``eps``, ``mean ± std`` → ``mean_std``)."""
    text = re.sub(r"\s*\[[^\]]*\]", "", column)
    for sym, word in _SYMBOLS.items():
        text = text.replace(sym, f" {word} " if word else " ")
    return slug(text, keep="", lower=True, default="column")


def _prop_columns(table: Table) -> set[int]:
    return {i for i in range(len(table.columns)) if any(isinstance(r[i], Prop) for r in table.rows)}


def csv_rows(table: Table) -> list[list[Any]]:
    """The table for CSV, header first: a proportion column becomes ``name``, ``name_lo``, ``name_hi``,
    ``name_n``; numbers stay raw; a missing value is empty."""
    props = _prop_columns(table)
    header: list[Any] = []
    for i, title in enumerate(table.columns):
        name = csv_key(title)
        header += [name, f"{name}_lo", f"{name}_hi", f"{name}_n"] if i in props else [name]
    out = [header]
    for row in table.rows:
        values: list[Any] = []
        for i, c in enumerate(row):
            if i in props:
                p = c if isinstance(c, Prop) else Prop(None)
                values += [p.value, p.lo, p.hi, p.n]
            elif isinstance(c, Num):
                values.append(c.value)
            elif isinstance(c, Mark):
                values.append(c.text if c.value is None else c.value)
            else:
                values.append(c)
        out.append(["" if missing(v) else v for v in values])
    return out
