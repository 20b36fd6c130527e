"""Cost beside speed: each variant's MACs and parameters next to its latency on every target, and one line
for each variant that does fewer MACs than its base but does not run faster (issue 16: filter pruning at
10–40 % made models slower, channel counts off the runtimes' vector width)."""

from __future__ import annotations

from typing import Any

from edgebench.report.data import BASE, RunData, unit_label
from edgebench.report.tables import Bullets, Cell, Mark, Num, Para, Section, Table

#: the channel block CPU runtimes vectorize convolutions over (oneDNN nChw8c, MLAS NCHWc on AVX2)
VECTOR_CHANNELS = 8


def off_grid_layers(info: dict[str, Any], width: int = VECTOR_CHANNELS) -> tuple[int, int]:
    """(pruned layers whose kept output channels are not a multiple of ``width``, pruned layers) from a
    filter-pruning variant's ``per_layer`` channel counts."""
    pruned = []
    for layer in (info.get("per_layer") or {}).values():
        before, after = (layer.get("channels_before"), layer.get("channels_after")) if isinstance(layer, dict) \
            else (None, None)
        if before and after and after[1] != before[1]:
            pruned.append(after[1])
    return sum(1 for c in pruned if c % width), len(pruned)


def _ratio(num: float | None, den: float | None) -> Cell:
    return Mark(f"{num / den:.2f}×", "plain", num / den) if num and den else None


def slower_line(unit: str, where: str, macs: float, p50: float, info: dict[str, Any]) -> str:
    """The report's line for a variant with fewer MACs than its base that is not faster on ``where``."""
    line = (f"`{unit}` on {where}: {macs:.2f}× the MACs of its base but {p50:.2f}× its p50 latency: fewer MACs, "
            "not faster")
    off, pruned = off_grid_layers(info)
    if off:
        line += (f"; {off} of {pruned} pruned layers keep a channel count that is not a multiple of {VECTOR_CHANNELS} "
                 f"(round_to = {info.get('round_to', 'unset')}), which loses the runtimes' vectorized kernels")
    return line + "."


def efficiency_section(d: RunData) -> Section | None:
    """Per target and backend: MACs, parameters, p50 and their ratios to the base; the "not faster" lines."""
    variants = {(v["model"], v["variant"]): v for v in d.variants}
    if not variants or not d.clean:
        return None
    blocks: list[Any] = [Para(
        "MACs of one inference and stored parameters of each variant's torch twin, beside its p50 latency; `× base` "
        "is variant ÷ base. Fewer MACs need not mean faster: CPU runtimes vectorize convolutions over blocks of "
        f"{VECTOR_CHANNELS} or 16 channels, so filter pruning rounds the channels each layer keeps down to a multiple "
        "of `round_to` (default 8; `round_to = 1` does not round), shown here.")]
    lines: list[str] = []
    pairs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in d.clean:
        pairs.setdefault((r["target"], r["backend"]), []).append(r)
    for (target, backend), rows in pairs.items():
        base_p50 = {r["model"]: r.get("p50_ms") for r in rows if r["variant"] == BASE}
        table: list[list[Cell]] = []
        for r in rows:
            v = variants.get((r["model"], r["variant"]), {})
            st, info = v.get("stats") or {}, v.get("info") or {}
            b = (variants.get((r["model"], BASE)) or {}).get("stats") or {}
            macs, p50 = _ratio(st.get("macs"), b.get("macs")), _ratio(r.get("p50_ms"), base_p50.get(r["model"]))
            table.append([r["model"], r["variant"], Num(st.get("macs")), Num(st.get("params")), macs,
                          Num(r.get("p50_ms")), p50, info.get("round_to")])
            fewer = isinstance(macs, Mark) and isinstance(p50, Mark) and macs.value < 1 <= p50.value
            if r["variant"] != BASE and fewer:
                lines.append(slower_line(unit_label(r["model"], r["variant"]), f"{target}/{backend}", macs.value,
                                         p50.value, info))
        blocks.append(Table(f"efficiency_{target}_{backend}", f"{target} / {backend}",
                            ["model", "variant", "MACs", "params", "MACs × base", "p50 ms", "p50 × base",
                             "round_to"], table))
    if lines:
        blocks.append(Bullets(lines))
    return Section("efficiency", "Cost and speed: MACs, parameters, latency", blocks)
