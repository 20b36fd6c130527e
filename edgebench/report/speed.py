"""Is a compressed variant faster than its base, and if not, why: the one verdict the report's latency-rounds,
cost-and-speed and profile sections share (issue 16, items 2, 6 and 9).

The verdict is taken on the interleaved rounds' per-round medians where the target ran them
(:func:`edgebench.metrics.rounds.compare_rounds`, paired: *not resolved* inside the rounds' spread), else on the
two p50s of one block each (marked as such). A variant is *not faster* when its ratio to the base is ≥ 1 or the
difference is not resolved; for each such variant the report gives one line, with the MACs it saves, the channel
counts off the runtimes' vector width (filter pruning) and the reason its per-operator profile shows.
"""

from __future__ import annotations

from typing import Any

from edgebench.metrics.rounds import compare_rounds, verdict_text
from edgebench.report.costs import why_not_faster
from edgebench.report.data import RunData, unit_label
from edgebench.report.tables import Cell, Mark, fmt_num
from edgebench.store import BASE

__all__ = ["VECTOR_CHANNELS", "not_faster_lines", "off_grid_layers", "speed_cell", "speed_verdicts"]

#: the channel block CPU runtimes vectorize convolutions over (oneDNN nChw8c, MLAS NCHWc on AVX2)
VECTOR_CHANNELS = 8

#: (model, variant, target, backend)
UnitKey = tuple[str, str, str, str]


def speed_verdicts(d: RunData) -> dict[UnitKey, dict[str, Any]]:
    """Every compressed variant against its base on each target and backend: :func:`compare_rounds`'s dict
    (``ratio``, ``lo``, ``hi``, ``resolved``, ``why``) plus ``rounds`` (whether it came from interleaved rounds)."""
    rounds = {(s["model"], s["variant"], s["target"], s["backend"]): s["data"]
              for s in d.samples if s["kind"] == "rounds"}
    p50 = {(r["model"], r["variant"], r["target"], r["backend"]): r.get("p50_ms") for r in d.clean}
    out: dict[UnitKey, dict[str, Any]] = {}
    for (model, variant, target, backend), mine in p50.items():
        if variant == BASE:
            continue
        base_key = (model, BASE, target, backend)
        a, b = rounds.get(base_key), rounds.get((model, variant, target, backend))
        if a is not None and b is not None:
            out[(model, variant, target, backend)] = {**compare_rounds(a["median_ms"], b["median_ms"], paired=True),
                                                      "rounds": True}
        elif mine is not None and p50.get(base_key):
            out[(model, variant, target, backend)] = {"ratio": mine / p50[base_key], "resolved": True,
                                                      "rounds": False}
    return out


def not_faster(v: dict[str, Any]) -> bool:
    return v.get("ratio") is not None and (not v["resolved"] or v["ratio"] >= 1.0)


def speed_cell(v: dict[str, Any] | None) -> Cell:
    """``0.82× [0.79, 0.85]`` (rounds), ``0.82× (one block)``, or muted ``not resolved (why)``."""
    if v is None or v.get("ratio") is None:
        return None
    if not v["rounds"]:
        return Mark(f"{v['ratio']:.2f}× (one block each)", "plain", v["ratio"])
    return Mark(verdict_text(v), "plain" if v["resolved"] else "muted", v["ratio"])


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


def _meant_to_be_faster(macs: float | None, base_macs: float | None, profile: dict[str, Any] | None) -> bool:
    """Whether the artifact does less or cheaper arithmetic than its base: fewer MACs (filter pruning), or int8
    kernels or float↔int8 conversions in its profile. Variants that keep the base's float graph (k-bit, INQ,
    hashed and unstructured-sparse weights, defenses) are not expected to run faster, and get no line."""
    if macs and base_macs and macs < base_macs:
        return True
    shares = (profile or {}).get("shares") or {}
    return bool(shares.get("int8") or shares.get("quant"))


def not_faster_lines(d: RunData) -> list[str]:
    """One line per variant × target × backend meant to be faster than its base (:func:`_meant_to_be_faster`)
    that is not: the verdict, the MACs it saves, pruned channel counts off the vector width, and the profile's
    reason where there is one."""
    variants = {(v["model"], v["variant"]): v for v in d.variants}
    profiles = {(s["model"], s["variant"], s["target"], s["backend"]): s["data"]
                for s in d.samples if s["kind"] == "profile" and (s["data"] or {}).get("ops")}
    lines = []
    for (model, variant, target, backend), v in speed_verdicts(d).items():
        stats = (variants.get((model, variant)) or {}).get("stats") or {}
        info = (variants.get((model, variant)) or {}).get("info") or {}
        base_macs = ((variants.get((model, BASE)) or {}).get("stats") or {}).get("macs")
        profile = profiles.get((model, variant, target, backend))
        if not not_faster(v) or not _meant_to_be_faster(stats.get("macs"), base_macs, profile):
            continue
        speed = (f"{v['ratio']:.2f}× its base's p50" if v["resolved"] else
                 f"not resolved against its base ({v['why']})")
        parts = [f"`{unit_label(model, variant)}` on {target}/{backend}: {speed}"]
        if stats.get("macs") and base_macs and stats["macs"] < base_macs:
            parts.append(f"with {stats['macs'] / base_macs:.2f}× the MACs ({fmt_num(stats['macs'])} vs "
                         f"{fmt_num(base_macs)}): fewer MACs, not faster")
        off, pruned = off_grid_layers(info)
        if off:
            parts.append(f"{off} of {pruned} pruned layers keep a channel count that is not a multiple of "
                         f"{VECTOR_CHANNELS} (round_to = {info.get('round_to', 'unset')}), which loses the runtimes' "
                         "vectorized kernels")
        if profile is not None:  # the MACs are said above
            parts.append("the profile: " + why_not_faster(profile, profiles.get((model, BASE, target, backend))))
        lines.append("; ".join(parts) + ".")
    return lines
