"""Cost beside speed: each variant's MACs and parameters next to its latency on every target, and one line
for each variant that does fewer MACs than its base but does not run faster (issue 16: filter pruning at
10–40 % made models slower, channel counts off the runtimes' vector width)."""

from __future__ import annotations

from typing import Any

from edgebench.report.data import BASE, RunData
from edgebench.report.speed import VECTOR_CHANNELS, not_faster_lines, speed_cell, speed_verdicts
from edgebench.report.tables import Bullets, Cell, Mark, Num, Para, Section, Table


def _ratio(num: float | None, den: float | None) -> Cell:
    return Mark(f"{num / den:.2f}×", "plain", num / den) if num and den else None



def efficiency_section(d: RunData) -> Section | None:
    """Per target and backend: MACs, parameters, p50 and their ratios to the base; the "not faster" lines."""
    variants = {(v["model"], v["variant"]): v for v in d.variants}
    if not variants or not d.clean:
        return None
    blocks: list[Any] = [Para(
        "MACs of one inference and stored parameters of each variant's torch twin, beside its p50 latency; `× base` "
        "is variant ÷ base. Fewer MACs need not mean faster: CPU runtimes vectorize convolutions over blocks of "
        f"{VECTOR_CHANNELS} or 16 channels, so filter pruning rounds the channels each layer keeps to a multiple of "
        "`round_to` (default 8, down; up with NNCF's `rounding = \"up\"`; `round_to = 1` does not round), shown "
        "here. `p50 × base`: on the interleaved rounds' per-round medians with its 95 % interval, *not resolved* "
        "inside their spread (\"Latency rounds\").")]
    speed = speed_verdicts(d)
    pairs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in d.clean:
        pairs.setdefault((r["target"], r["backend"]), []).append(r)
    for (target, backend), rows in pairs.items():
        table: list[list[Cell]] = []
        for r in rows:
            v = variants.get((r["model"], r["variant"]), {})
            st, info = v.get("stats") or {}, v.get("info") or {}
            b = (variants.get((r["model"], BASE)) or {}).get("stats") or {}
            table.append([r["model"], r["variant"], Num(st.get("macs")), Num(st.get("params")),
                          _ratio(st.get("macs"), b.get("macs")), Num(r.get("p50_ms")),
                          speed_cell(speed.get((r["model"], r["variant"], target, backend))), info.get("round_to")])
        blocks.append(Table(f"efficiency_{target}_{backend}", f"{target} / {backend}",
                            ["model", "variant", "MACs", "params", "MACs × base", "p50 ms", "p50 × base",
                             "round_to"], table))
    lines = not_faster_lines(d)
    if lines:
        blocks += [Para("**Not faster than the base**, and why (the MACs saved, pruned channel counts off the "
                        "runtimes' vector width, and the per-operator profile's reason):"), Bullets(lines)]
    return Section("efficiency", "Cost and speed: MACs, parameters, latency", blocks)
