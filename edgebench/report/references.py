"""Finding the measurement a ``[[reference]]`` (a paper's number) is compared with, and the row of a reference
that averages over several variants (``variants = [...]``, ``aggregate = "mean"``).

Seed ``000`` (Liu et al. 2018, Fig. 10a) states its headline as an average: "the average success rate of
adversarial attacks (HashNets, perturbations crafted through HFGSM with ε = 0.5) can be reduced from 87.99 % to
4.77 %" for τ = 0 → 0.1. Its row here is the mean of the variants' measured values on the first target and
backend. Its interval is the mean of the variants' 95 % Wilson bounds: the variants are attacked on the same
samples, so their errors may move together, and averaging the bounds is exact when they move together
perfectly and wider than the true interval otherwise (never too narrow).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from edgebench.report.data import RunData, unit_label
from edgebench.report.tables import Cell, Mark, Num, Prop, fmt_prop
from edgebench.store import BASE

if TYPE_CHECKING:
    from edgebench.metrics.seeds import SeedStat


def reference_hit(d: RunData, ref: dict[str, Any], variant: str) -> dict[str, Any] | None:
    """The result row a reference compares with for ``variant`` (of the reference's model, or ``model/variant``):
    same attack and ε; crafted on ``ref["source"]`` if given, else white-box (or clean), or, for an attack the
    plan runs only as a transfer, crafted on its ``surrogate`` (seed 003's Table 2: "bb-fgsm" crafted on a
    substitute) or, where it names none, on the victim's base (its ``attack_source`` if set); on the first target
    and backend that has one."""
    model, _, name = variant.rpartition("/")
    model, variant = model or ref["model"], name
    source = ref["source"] or _transfer_source(d, ref["attack"], model)

    def match(r: dict[str, Any]) -> bool:
        if (r["model"], r["variant"], r["attack"]) != (model, variant, ref["attack"]):
            return False
        if ref["attack"] != "none" and not math.isclose(r["eps"], ref["eps"]):
            return False
        return r["source"] == source if source else r["threat"] in ("white-box", "clean")

    hits = [r for r in d.results if match(r)]
    return next((r for p in d.pairs for r in hits if (r["target"], r["backend"]) == p), None)


def _transfer_source(d: RunData, label: str, victim: str) -> str:
    """Where the plan's attack ``label`` crafts the examples model ``victim``'s variants see, when transfer is the
    attack's only threat: its ``surrogate``, else the victim's base model (or that model's ``attack_source``), as
    :func:`edgebench.runner.graph.sources_for` does; "" for an attack with another threat."""
    spec = next((a for a in d.plan.get("attacks") or [] if a.get("label") == label), None)
    if spec is None or list(spec.get("threat") or []) != ["transfer"]:
        return ""
    if not spec.get("surrogate"):
        model = next((m for m in d.plan.get("models") or [] if m.get("name") == victim), {})
        return str(model.get("attack_source") or victim)
    model, _, variant = str(spec["surrogate"]).partition("/")
    return unit_label(model, variant or BASE)  # as results name their source ("m", not "m/base")


def mean_of(hits: list[dict[str, Any]], metric: str) -> Prop:
    """The mean of ``metric`` over ``hits`` with the mean of their 95 % bounds (see the module doc); ``n`` is
    the smallest sample count among them. No interval where a row lacks its bounds."""
    values = [h[metric] for h in hits]
    los, his = [h.get(metric + "_lo") for h in hits], [h.get(metric + "_hi") for h in hits]
    ns = [Prop.of(h, metric).n for h in hits]
    bounded = all(v is not None for v in (*los, *his))
    return Prop(sum(values) / len(values), sum(los) / len(los) if bounded else None,  # type: ignore[arg-type]
                sum(his) / len(his) if bounded else None,  # type: ignore[arg-type]
                min(ns) if all(n is not None for n in ns) else None)  # type: ignore[type-var]


def mean_reference_row(d: RunData, ref: dict[str, Any]) -> list[Cell]:
    """The "Paper vs edgebench" row of a reference averaged over ``ref["variants"]``."""
    variants = list(ref["variants"])
    what = ref["metric"] + ("" if ref["attack"] == "none" else f", {ref['attack']} ε={ref['eps']:g}")
    qualified = all("/" in v for v in variants)
    unit = f"mean of {len(variants)}: {', '.join(variants)}" if qualified else \
        unit_label(ref["model"], f"mean of {len(variants)}: {', '.join(variants)}")
    hits = [reference_hit(d, ref, v) for v in variants]
    absent = [v for v, h in zip(variants, hits) if h is None or h.get(ref["metric"]) is None]
    if absent:
        return [ref["figure"], unit, what, Num(ref["value"], 4), Mark(f"not measured ({', '.join(absent)})"), None,
                None, ref.get("note", "")]
    p = mean_of(hits, ref["metric"])  # type: ignore[arg-type]
    measured = f"{fmt_prop(p)} (mean, n≥{p.n})"
    if (over := _seed_mean(d, hits, ref["metric"])) is not None:  # several seeds: the mean's between-seed interval
        p = Prop(over.mean, over.lo, over.hi, p.n)
        measured = f"{fmt_prop(p)} (mean over variants and {over.k} seeds, t interval; n≥{p.n} each)"
    inside: Cell = None if p.lo is None or p.hi is None else ("yes" if p.lo <= ref["value"] <= p.hi else Mark("no"))
    delta = (p.value - ref["value"]) * 100  # type: ignore[operator]
    return [ref["figure"], unit, what, Num(ref["value"], 4),
            Mark(measured, "plain", p.value), Mark(f"{delta:+.2f}", "plain", delta), inside,
            ref.get("note", "")]


def _seed_mean(d: RunData, hits: list[dict[str, Any]], metric: str) -> SeedStat | None:
    """Over a several-seed run: per seed, the mean of ``metric`` over the ``hits`` (each variant's value at that
    seed), and those means' between-seed t interval, clipped to [0, 1]; None for one seed, or where a variant
    misses a seed."""
    from edgebench.report.seeds import proportion_interval, seed_stat

    stats = [seed_stat(d, h, metric) for h in hits]
    if any(st is None or st.k != len(d.seeds) for st in stats):
        return None
    per_seed = [sum(vals) / len(vals) for vals in zip(*(st.values for st in stats))]  # type: ignore[union-attr]
    stat = proportion_interval(per_seed)
    return None if stat is None or stat.lo is None else stat
