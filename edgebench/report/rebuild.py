"""The Markdown tables of ``docs/reproductions.md`` rebuilt from a results folder alone (no store, no run
folder): the files :mod:`edgebench.report.results_files` writes, and the hand-written ``verdicts.toml``
(:mod:`edgebench.report.verdicts`). Each table is followed by one line citing the run id, the edgebench commit
and the command that made its numbers.

Two ways in:

- ``edgebench report --from-results docs/results/<plan>/`` prints every table of the folder;
- ``edgebench report --update-doc docs/reproductions.md`` replaces what lies between markers such as
  ``<!-- results:liu2018-hashnet:robust attack=hfgsm eps=0.1,0.5 -->`` and ``<!-- /results -->`` with the
  table they name, from ``docs/results/<plan>/`` (beside the document). The words after the table name keep
  the rows whose column has one of the listed values (columns as in the CSV file). Everything outside the
  markers is left as it is; ``--check`` changes nothing and fails when a table is out of date.

With training seeds (the files carry a ``seed`` column), clean and robust rows are grouped over seeds: the mean,
its 95 % interval from the t distribution over the seeds' values, and each seed's value with its own 95 % Wilson
interval; with one seed, the row's value and its 95 % Wilson interval.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError
from edgebench.report.data import unit_label
from edgebench.report.render import md_table
from edgebench.report.results_files import TABLES
from edgebench.report.seeds import proportion_interval
from edgebench.report.tables import Cell, Prop, Table, fmt_prop
from edgebench.report.verdicts import load_verdicts, verdicts_table

__all__ = ["KINDS", "Results", "folder_markdown", "read_results", "seed_interval", "table_markdown", "update_doc"]

#: what a marker may name: the tables of a results folder and the verdicts
KINDS = (*TABLES, "verdicts")
#: columns left out of a shown table when every row has the same value (named in the citation line instead)
_CONSTANT = ("target", "backend")
_TITLES = {"eps": "ε", "p50_ms": "p50 (ms)", "p90_ms": "p90 (ms)", "mean_ms": "mean (ms)",
           "onnx_bytes": "ONNX bytes", "onnx_deflate_bytes": "ONNX DEFLATE bytes",
           "stored_bytes": "stored bytes (true)", "rate_stored": "rate (stored)", "delta_points": "Δ (points)",
           "tau": "τ", "max_w": "max |w|", "max_w_base": "max |w| × base", "max_w_last_layer": "max |w| (last layer)",
           "median_d_j_per_d_x": "median |∂J/∂x|", "zero_share": "zero share", "large_1e_10_1": "large (1e-10…1)",
           "small_1e_25_1e_15": "small (1e-25…1e-15)"}
_OPEN = re.compile(r"<!--\s*results:(?P<plan>[A-Za-z0-9._-]+):(?P<kind>[a-z_-]+)(?P<filters>[^>]*?)\s*-->")
_CLOSE = "<!-- /results -->"


@dataclass
class Results:
    """A results folder as read back: ``run.json``, the tables (rows as dicts of strings), the verdicts."""

    folder: Path
    run: dict[str, Any]
    tables: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    columns: dict[str, list[str]] = field(default_factory=dict)
    cite_as: Path | None = None  #: the folder as the citation names it (relative to the document it goes into)

    def link(self, name: str) -> str:
        """A Markdown link to one file of the folder."""
        path = _posix((self.cite_as or self.folder) / name)
        return f"[{path}]({path})"

    def citation(self, table: str, constant: dict[str, str]) -> str:
        """One line: the run, its size and date, the commit, the command, and the folder the table is from; a
        folder that adds up several runs' seeds (:mod:`edgebench.report.results_merge`) names each run whose
        rows the table holds."""
        r = self.run
        runs = [x for x in r.get("runs") or [] if table not in (r.get("tables_from") or {})
                or x.get("run_id") == r["tables_from"][table]]
        where = f", on {'/'.join(constant[k] for k in _CONSTANT if k in constant)}" if constant else ""
        if len(runs) > 1:
            each = "; ".join(
                f"`{x.get('run_id')}` (seed{'s' if len(x.get('seeds') or []) > 1 else ''} "
                f"{', '.join(map(str, x.get('seeds') or []))}, {(x.get('finished') or x.get('created') or '')[:10]}, "
                f"edgebench `{x.get('commit')}`, `{x.get('command')}`)" for x in runs)
            return (f"*Runs {each}: {r.get('size')} size, seeds {', '.join(map(str, r.get('seeds') or []))}, "
                    f"status {r.get('status')}{where}; {self.link(table + '.csv')}.*")
        alone = ""
        if runs:  # a table of one run of several (the paper comparison, the amplitude): that run's seeds alone
            r = runs[0]
            alone = f", seed {', '.join(map(str, r.get('seeds') or []))} alone"
        when = (r.get("finished") or r.get("created") or "")[:10]
        commit = f"edgebench `{r['commit']}`" if r.get("commit") else "edgebench commit not recorded"
        if r.get("commits_differ"):
            commit += " (resumed: earlier starts ran other commits, listed in run.json)"
        seeds = f", seeds {', '.join(map(str, r['seeds']))}" if len(r.get("seeds") or []) > 1 else ""
        command = f"`{r['command']}`" if r.get("command") else "command not recorded"
        return (f"*Run `{r.get('run_id')}` ({r.get('size')} size{seeds}{alone}, status {r.get('status')}, {when}), "
                f"{commit}, {command}{where}; {self.link(table + '.csv')}.*")


def _posix(p: Path) -> str:
    return p.as_posix()


def read_results(folder: Path) -> Results:
    """The results folder ``folder`` (a folder with only ``verdicts.toml`` reads as verdicts, no run); a missing
    or damaged one is one line naming the file."""
    folder = Path(folder)
    path = folder / "run.json"
    if not path.is_file() and (folder / "verdicts.toml").is_file():
        return Results(folder, {})  # verdicts alone: a paper whose plan has not run at its current settings
    if not path.is_file():
        raise ConfigError(f"{folder}: no run.json here: write the folder with edgebench report RUN --results "
                          f"{folder}")
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable run record ({exc}); write it again with edgebench report RUN "
                          "--results") from None
    if not isinstance(run, dict) or "run_id" not in run:
        raise ConfigError(f"{path}: not a run record (no run_id); write it again with edgebench report RUN --results")
    res = Results(folder, run)
    for name in TABLES:
        p = folder / f"{name}.csv"
        if p.is_file():
            with p.open(encoding="utf-8", newline="") as f:
                reader = csv.DictReader(f)
                res.tables[name] = list(reader)
                res.columns[name] = list(reader.fieldnames or [])
    return res


# -- statistics -----------------------------------------------------------------------------------------------
def seed_interval(values: list[float]) -> tuple[float, float | None, float | None]:
    """Mean of per-seed proportions and its 95 % t interval, clipped to [0, 1] as the report clips it
    (:func:`edgebench.report.seeds.proportion_interval`); no interval from a single value."""
    stat = proportion_interval(values)
    assert stat is not None
    return stat.mean, stat.lo, stat.hi


# -- tables -----------------------------------------------------------------------------------------------------
def _num(text: str) -> float | None:
    try:
        return float(text) if text != "" else None
    except ValueError:
        return None


def _prop(row: dict[str, str], key: str, n_key: str = "n") -> Prop:
    n = _num(row.get(n_key, ""))
    return Prop(_num(row.get(key, "")), _num(row.get(f"{key}_lo", "")), _num(row.get(f"{key}_hi", "")),
                None if n is None else int(n))


def _filter(rows: list[dict[str, str]], columns: list[str], filters: dict[str, list[str]],
            where: str) -> list[dict[str, str]]:
    for k in filters:
        if k not in columns:
            raise ConfigError(f"{where}: no column {k!r} to select rows by; columns: {', '.join(columns)}")

    def keep(r: dict[str, str]) -> bool:
        for k, allowed in filters.items():
            v = r.get(k, "")
            if v not in allowed and not any(_num(v) is not None and _num(v) == _num(a) for a in allowed):
                return False
        return True

    return [r for r in rows if keep(r)]


def _constants(rows: list[dict[str, str]]) -> dict[str, str]:
    out = {}
    for k in _CONSTANT:
        vals = {r.get(k) for r in rows}
        if len(vals) == 1 and rows and rows[0].get(k):
            out[k] = rows[0][k]
    return out


def _group(rows: list[dict[str, str]], key: list[str]) -> list[list[dict[str, str]]]:
    groups: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k, "") for k in key), []).append(r)
    return list(groups.values())


def _seed_cells(group: list[dict[str, str]], key: str, n_key: str) -> list[Cell]:
    """Mean over seeds [t 95 %], and each seed's value with its own 95 % Wilson interval (seeds in order)."""
    values = [v for v in (_num(r.get(key, "")) for r in group) if v is not None]
    if not values:
        return [None, None]
    mean, lo, hi = seed_interval(values)
    per = "; ".join(f"{r['seed']}: {fmt_prop(_prop(r, key, n_key))}"
                    for r in sorted(group, key=lambda r: _num(r.get("seed", "")) or 0))
    return [Prop(mean, lo, hi, None), per]


def _measured(name: str, rows: list[dict[str, str]], columns: list[str]) -> Table:
    """The clean or robust table; grouped over seeds where the rows carry them."""
    const = _constants(rows)
    seeded = "seed" in columns and len({r.get("seed") for r in rows}) > 1  # one seed: its rows as they are
    if name == "clean":
        lead = ["model", "variant", "target", "backend"]
        props: list[tuple[str, str]] = [("clean_acc", "n")]
    else:
        lead = ["model", "variant", "attack", "eps", "threat", "source", "target", "backend"]
        props = [("robust_acc", "n"), ("asr", "asr_n")]
    lead = [k for k in lead if k not in const]
    titles = ["unit" if k == "model" else _TITLES.get(k, k) for k in lead if k != "variant"]
    out_rows: list[list[Cell]] = []
    if not seeded:
        for r in rows:
            head: list[Cell] = [unit_label(r["model"], r["variant"])] + [r[k] for k in lead[2:]]
            cells: list[Cell] = []
            for key, n_key in props:
                cells += [_prop(r, key, n_key), r.get(n_key) or None]
            out_rows.append(head + cells)
        cols = titles + [t for key, n_key in props for t in (f"{key} [95 % CI]", f"n ({key})" if key == "asr"
                                                              else "n")]
    else:
        for group in _group(rows, lead):
            r = group[0]
            head = [unit_label(r["model"], r["variant"])] + [r[k] for k in lead[2:]]
            cells = [len(group), r.get("n") or None]
            for key, n_key in props:
                cells += _seed_cells(group, key, n_key)
            out_rows.append(head + cells)
        cols = titles + ["seeds", "n (per seed)"] + [t for key, _ in props
                                                      for t in (f"{key}: mean [t 95 %]", f"{key} per seed [95 % CI]")]
    return Table(name, name, cols, out_rows)


def _generic(name: str, rows: list[dict[str, str]], columns: list[str]) -> Table:
    """A table shown as stored; a column with a ``<column>_shown`` twin shows the twin's text."""
    const = _constants(rows)
    shown = [c for c in columns if not c.endswith("_shown") and c not in const]
    return Table(name, name, [_TITLES.get(c, c) for c in shown],
                 [[r.get(f"{c}_shown") or r.get(c) or None for c in shown] for r in rows])


def _parse_filters(text: str, where: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for word in text.split():
        key, eq, values = word.partition("=")
        if not eq or not key or not values:
            raise ConfigError(f"{where}: {word!r} is not COLUMN=VALUE[,VALUE...]")
        out[key] = values.split(",")
    return out


def table_markdown(res: Results, kind: str, filters: dict[str, list[str]] | None = None, *,
                   where: str = "") -> str:
    """One table of ``res`` as Markdown, followed by its citation line (``kind``: one of :data:`KINDS`)."""
    where = where or str(res.folder)
    if kind not in KINDS:
        raise ConfigError(f"{where}: no table {kind!r}; tables: {', '.join(KINDS)}")
    if kind == "verdicts":
        path = res.folder / "verdicts.toml"
        if filters:
            raise ConfigError(f"{where}: the verdicts table takes no row selection")
        return (md_table(verdicts_table(load_verdicts(path))) + "\n\n"
                + f"*Verdicts: {res.link('verdicts.toml')}; each names the runs its evidence comes from.*")
    if kind not in res.tables:
        raise ConfigError(f"{where}: {res.folder} has no {kind}.csv (the run has no such table: "
                          f"{'no [[reference]] in its plan' if kind == 'paper' else 'write the folder again'})")
    columns = res.columns[kind]
    rows = _filter(res.tables[kind], columns, filters or {}, where)
    if not rows:
        raise ConfigError(f"{where}: no row of {kind}.csv matches {filters}")
    table = _measured(kind, rows, columns) if kind in ("clean", "robust") else _generic(kind, rows, columns)
    return md_table(table) + "\n\n" + res.citation(kind, _constants(rows))


_HEADINGS = {"clean": "Clean accuracy", "robust": "Robust accuracy and attack success", "paper": "Paper vs edgebench",
             "sizes": "Sizes", "latency": "Latency", "amplitude": "Weight range and gradient amplitude",
             "delta_w": "Spectral norm of the weight change per layer", "verdicts": "Verdicts"}


def folder_markdown(folder: Path) -> str:
    """Every table of a results folder (and its verdicts, where written) under a heading each."""
    res = read_results(folder)
    kinds = [k for k in KINDS if k in res.tables or (k == "verdicts" and (res.folder / "verdicts.toml").is_file())]
    return "\n\n".join(f"### {_HEADINGS[k]}\n\n{table_markdown(res, k)}" for k in kinds) + "\n"


def update_doc(doc: Path, root: Path | None = None, *, check: bool = False) -> tuple[int, bool]:
    """Replace every marked block of ``doc`` with the table it names, read from ``root/<plan>/`` (default:
    ``results/`` beside ``doc``). Returns (blocks, whether the text changed); with ``check``, writes nothing.
    A marker without its end, or naming a folder, table or column that does not exist, is one line naming the
    document and the line."""
    doc = Path(doc)
    root = doc.parent / "results" if root is None else Path(root)
    try:
        text = doc.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{doc}: cannot read the document ({exc})") from None
    cache: dict[str, Results] = {}
    out: list[str] = []
    pos = blocks = 0
    for m in _OPEN.finditer(text):
        if m.start() < pos:
            continue
        line = text.count("\n", 0, m.start()) + 1
        where = f"{doc}:{line}"
        end = text.find(_CLOSE, m.end())
        nxt = _OPEN.search(text, m.end())
        if end < 0 or (nxt is not None and nxt.start() < end):
            raise ConfigError(f"{where}: marker {m.group(0)} has no {_CLOSE} after it (before the next marker)")
        plan = m.group("plan")
        if plan not in cache:
            cache[plan] = read_results(root / plan)
            cache[plan].cite_as = Path(os.path.relpath(root / plan, doc.parent))
        body = table_markdown(cache[plan], m.group("kind"), _parse_filters(m.group("filters"), where), where=where)
        out += [text[pos:m.end()], "\n", body, "\n"]
        pos = end
        blocks += 1
    new = "".join(out) + text[pos:]
    changed = new != text
    if changed and not check:
        tmp = doc.with_name(doc.name + ".tmp")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(doc)
    return blocks, changed
