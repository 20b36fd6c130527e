"""Render a stored run: ``report.md`` (+ ``plots/*.png``), ``report.html`` (self-contained, images embedded),
one CSV per table under ``csv/``, and ``results.json`` (one flat record per result row). Everything comes from
the run's store, so any stored run can be re-rendered without hardware (``edgebench report RUN``)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError
from edgebench.naming import slug
from edgebench.report.amplitude import amplitude_section
from edgebench.report.costs import cost_sections
from edgebench.report.cumulative import cumulative_section
from edgebench.report.data import RunData
from edgebench.report.efficiency import efficiency_section
from edgebench.report.emulation import emulation_section
from edgebench.report.family import family_section
from edgebench.report.gates import gates_section
from edgebench.report.queries import query_section
from edgebench.report.robustness import robustness_sections
from edgebench.report.rounds import rounds_section
from edgebench.report.search import search_section
from edgebench.report.sections import (
    artifacts_section,
    environment_section,
    flags_section,
    incomplete_section,
    latency_section,
    reference_section,
    summary_section,
    tradeoff_section,
    variants_sections,
)
from edgebench.report.seeds import seeds_section
from edgebench.report.suite import suite_section
from edgebench.report.tables import Bullets, Code, Para, PlotRef, Section, Table, cell_text, csv_rows
from edgebench.store import Store

FORMATS = ("md", "html", "csv", "json")


def build_sections(d: RunData, plots: dict[str, Any]) -> list[Section]:
    """The report's sections in reading order, each plot placed after the intro of the section it declares
    (a section that is absent sends its plots to the robustness section, else to a last "Plots" section)."""
    out: list[Section | None] = [summary_section(d), gates_section(d), incomplete_section(d), flags_section(d),
                                 reference_section(d), seeds_section(d), latency_section(d), rounds_section(d),
                                 efficiency_section(d),
                                 *cost_sections(d), *robustness_sections(d), query_section(d), suite_section(d),
                                 cumulative_section(d), amplitude_section(d),
                                 family_section(d), emulation_section(d),
                                 tradeoff_section(any(p.section == "tradeoffs" for p in plots.values())),
                                 *variants_sections(d), artifacts_section(d), environment_section(d)]
    out.insert(1, search_section(d))  # a searched run (edgebench search): after the summary
    sections = [s for s in out if s is not None]
    by_id = {s.id: s for s in sections}
    extra = Section("plots", "Plots")
    placed: dict[str, int] = {}
    for p in plots.values():
        home = by_id.get(p.section) or by_id.get("robustness") or extra
        at = len(home.blocks) if home.id == "summary" else \
            next((i + 1 for i, b in enumerate(home.blocks) if isinstance(b, Para)), 0) + placed.get(home.id, 0)
        home.blocks.insert(at, PlotRef(p.name))
        placed[home.id] = placed.get(home.id, 0) + 1
    return sections + ([extra] if extra.blocks else [])


def header_line(d: RunData) -> str:
    run = d.run
    return (f"Plan `{run.get('plan_name')}` (hash `{(run.get('plan_hash') or '')[:12]}`), edgebench "
            f"{run.get('edgebench_version')}, status **{run.get('status')}**.")


# -- Markdown -----------------------------------------------------------------------------------------------
def _md_cell(c: Any) -> str:
    return cell_text(c).replace("|", "\\|").replace("\n", " ")


def md_table(t: Table) -> str:
    lines = ["| " + " | ".join(_md_cell(c) for c in t.columns) + " |", "|" + "|".join("---" for _ in t.columns) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in t.rows]
    return "\n".join(lines)


def markdown(title: str, lead: str, sections: list[Section], plots: dict[str, Any], *, plot_dir: str = "plots") -> str:
    """Markdown of ``sections`` under ``# title`` and a ``lead`` line; plots are referenced in ``plot_dir``."""
    out = [f"# {title}", "", lead, ""]
    for s in sections:
        out += ["#" * s.level + " " + s.title, ""]
        for b in s.blocks:
            if isinstance(b, Para):
                out += [b.text, ""]
            elif isinstance(b, Bullets):
                out += [f"- {i}" for i in b.items] + [""]
            elif isinstance(b, Table):
                if b.title != s.title:
                    out += [b.title if b.title.startswith("**") else f"**{b.title}**", ""]
                out += [md_table(b), ""]
                if b.caption:
                    out += [b.caption, ""]
            elif isinstance(b, Code):
                out += [f"<details><summary>{b.summary}</summary>", "", f"```{b.lang}", b.text, "```", "",
                        "</details>", ""] if b.summary else [f"```{b.lang}", b.text, "```", ""]
            elif isinstance(b, PlotRef) and b.name in plots:
                p = plots[b.name]
                out += [f"![{p.title}]({plot_dir}/{p.name}.png)", "", f"*{p.caption}*", ""]
    return "\n".join(out)


# -- CSV ----------------------------------------------------------------------------------------------------
def csv_text(t: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerows(csv_rows(t))
    return buf.getvalue()


def tables_of(sections: list[Section]) -> list[Table]:
    return [b for s in sections for b in s.blocks if isinstance(b, Table)]


# -- writing ------------------------------------------------------------------------------------------------
def _write(path: Path, data: str | bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(data, bytes):
        tmp.write_bytes(data)
    else:
        tmp.write_text(data, encoding="utf-8")
    os.replace(tmp, path)


def _remove_stale(folder: Path, pattern: str, keep: set[str]) -> None:
    """Files of an earlier rendering that this one no longer writes (a table or plot that went away)."""
    if folder.is_dir():
        for f in folder.glob(pattern):
            if f.name not in keep:
                f.unlink()


def plots_by_name(d: RunData) -> dict[str, Any]:
    """The run's plots by name (none, with a logged reason, where matplotlib is missing)."""
    from edgebench.report.plots import make_plots

    return {p.name: p for p in make_plots(d)}


def render_markdown(store: Store, run_id: str) -> str:
    """``report.md`` of a stored run, without writing plots (the references to them stay)."""
    d = RunData.load(store, run_id)
    return markdown(f"edgebench report: {d.run_id}", header_line(d), build_sections(d, {}), {})


def write_report(store: Store, run_id: str, run_dir: Path,
                 formats: tuple[str, ...] | list[str] = FORMATS) -> list[Path]:
    """Write the chosen formats of the run's report into ``run_dir``; return the files written."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ConfigError(f"report format {bad[0]!r} is not one of {', '.join(FORMATS)}")
    run_dir.mkdir(parents=True, exist_ok=True)
    d = RunData.load(store, run_id)
    written: list[Path] = []
    if "json" in formats:
        records = [{k: v for k, v in r.items() if k != "run_id"} | {"run_id": run_id}
                   for r in d.seed_results or d.results]  # several seeds: every seed's rows, each with its seed
        _write(run_dir / "results.json", json.dumps(records, indent=1))
        written.append(run_dir / "results.json")
    plots = plots_by_name(d) if {"md", "html"} & set(formats) else {}
    sections = build_sections(d, plots)
    if "md" in formats:
        plot_dir = run_dir / "plots"
        if plots:
            plot_dir.mkdir(exist_ok=True)
            for p in plots.values():
                _write(plot_dir / f"{p.name}.png", p.png)
        _remove_stale(plot_dir, "*.png", {f"{p.name}.png" for p in plots.values()})
        _write(run_dir / "report.md", markdown(f"edgebench report: {run_id}", header_line(d), sections, plots))
        written.append(run_dir / "report.md")
    if "html" in formats:
        from edgebench.report.html import html

        _write(run_dir / "report.html", html(f"edgebench report: {run_id}", header_line(d), sections, plots))
        written.append(run_dir / "report.html")
    if "csv" in formats:
        csv_dir = run_dir / "csv"
        csv_dir.mkdir(exist_ok=True)
        names: dict[str, int] = {}
        for t in tables_of(sections):
            stem = slug(t.name, default="table")
            names[stem] = names.get(stem, 0) + 1
            path = csv_dir / (f"{stem}.csv" if names[stem] == 1 else f"{stem}-{names[stem]}.csv")
            _write(path, csv_text(t))
            written.append(path)
        _remove_stale(csv_dir, "*.csv", {p.name for p in written})
    return written
