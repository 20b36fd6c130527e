"""Verdicts on a paper's claims: ``docs/results/<plan>/verdicts.toml``, written by hand beside a run's result
files (:mod:`edgebench.report.results_files`), checked on loading, shown by the rebuild
(:mod:`edgebench.report.rebuild`) as a "Verdicts" table. The format is fixed (issue 20); a key outside it is
an error::

    [[verdict]]
    id = "fig10a-inhibition"          # unique within the file, [a-z0-9-]
    figure = "Fig. 10a"               # where in the paper
    claim = "Gradient inhibition ..." # the paper's claim, one sentence
    verdict = "holds"                 # holds | does-not-hold | untested
    evidence = "..."                  # numbers with intervals / paired test / seeds, and the run id they come from
    reason = "..."                    # required when verdict = "does-not-hold"; optional otherwise
    size = "quick"                    # quick | full: the size of the run the evidence comes from (omit when untested)

Every problem is one :class:`~edgebench.errors.ConfigError` line naming the file, the entry and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from edgebench.errors import ConfigError
from edgebench.report.tables import Mark, Table
from edgebench.toml_table import Table as TomlTable
from edgebench.toml_table import read_toml

__all__ = ["VERDICTS", "SIZES", "Verdict", "load_verdicts", "parse_verdicts", "verdicts_table"]

VERDICTS = ("holds", "does-not-hold", "untested")
SIZES = ("quick", "full")
_ID = re.compile(r"[a-z0-9-]+")


@dataclass(frozen=True)
class Verdict:
    id: str
    figure: str
    claim: str
    verdict: str
    evidence: str
    reason: str = ""
    size: str | None = None


def _text(t: TomlTable, name: str, *, required: bool = True) -> str:
    value = t.get(name, str, "", required=required)
    if required and not value.strip():
        raise t.fail(name, "must not be empty")
    return value.strip()


def _entry(t: TomlTable) -> Verdict:
    vid = _text(t, "id")
    if not _ID.fullmatch(vid):
        raise t.fail("id", f"{vid!r} may hold only lower-case letters, digits and '-'")
    figure, claim = _text(t, "figure"), _text(t, "claim")
    verdict = t.choice("verdict", list(VERDICTS), required=True)
    evidence = _text(t, "evidence")
    reason = _text(t, "reason", required=False)
    if verdict == "does-not-hold" and not reason:
        raise t.fail("reason", "is required when verdict = \"does-not-hold\": the most likely reason")
    size = t.choice("size", list(SIZES))
    if verdict == "untested" and size is not None:
        raise t.fail("size", "must be left out when verdict = \"untested\" (no run gave evidence)")
    if verdict != "untested" and size is None:
        raise t.fail("size", f"is required when verdict = {verdict!r}: the size of the run the evidence comes "
                             "from, \"quick\" or \"full\"")
    t.done()
    return Verdict(vid, figure, claim, verdict, evidence, reason, size)


def parse_verdicts(raw: dict[str, object], source: str) -> list[Verdict]:
    """The entries of a verdicts document, in file order, each checked (see the module's docstring)."""
    top = TomlTable(raw, source, "")
    entries = top.get("verdict", list, [])
    top.done()
    out: list[Verdict] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        v = _entry(TomlTable(entry, source, f"verdict[{i}]"))
        if v.id in seen:
            raise ConfigError(f"{source}: verdict[{i}].id: {v.id!r} is already the id of verdict[{seen[v.id]}]; "
                              "ids must be unique within the file")
        seen[v.id] = i
        out.append(v)
    return out


def load_verdicts(path: Path) -> list[Verdict]:
    """``path``'s verdicts; a missing, unreadable or invalid file is one line naming it."""
    return parse_verdicts(read_toml(Path(path), "verdicts"), str(path))


_SHOWN = {"holds": Mark("holds", "ok"), "does-not-hold": Mark("does not hold"), "untested": Mark("untested", "missing")}


def verdicts_table(verdicts: list[Verdict]) -> Table:
    """The "Verdicts" table, one row per claim in file order."""
    return Table("verdicts", "Verdicts", ["figure", "claim", "verdict", "evidence", "reason", "size"],
                 [[v.figure, v.claim, _SHOWN[v.verdict], v.evidence, v.reason or None, v.size or "–"]
                  for v in verdicts])
