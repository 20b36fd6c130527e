"""The report over training seeds (a run with several ``[plan] seeds``, :mod:`edgebench.runner.seeds`).

Every other section reads the first seed's rows (:class:`~edgebench.report.data.RunData`); this one reads all of
them (``seed_results``, ``seed_samples``) and gives, per row (unit × target/backend × attack × ε × source, and
clean accuracy):

- the value of each seed, their mean and the between-seed 95 % t interval
  (:func:`edgebench.metrics.seeds.seed_interval`), beside the within-seed Wilson interval at the mean with one
  seed's sample count (:func:`~edgebench.metrics.seeds.within_seed_wilson`: the seeds share their test samples,
  so they are not pooled);
- for each variant against its base, the per-seed differences (each on that seed's same test samples), their mean
  with the paired t interval (:func:`~edgebench.metrics.seeds.paired_seed_difference`), and McNemar's exact test
  *per seed* on those samples (how many of the seeds find the difference significant at 0.05).

:func:`seed_stat` is what the "Paper vs edgebench" table uses for its interval when there are several seeds.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from edgebench.metrics.seeds import SeedStat, paired_seed_difference, seed_interval, within_seed_wilson
from edgebench.report.data import RunData, unit_label
from edgebench.report.tables import Cell, Mark, Num, Para, Prop, Section, Table
from edgebench.store import BASE

__all__ = ["proportion_interval", "seed_stat", "seeds_section"]

Key = tuple[str, str, str, float, str, str, str]  # model, variant, attack, eps, backend, target, source


def _key(r: dict[str, Any]) -> Key:
    return (r["model"], r["variant"], r["attack"], float(r["eps"]), r["backend"], r["target"], r["source"])


def _by_key(d: RunData) -> dict[Key, dict[int, dict[str, Any]]]:
    """Each result key's row per seed."""
    out: dict[Key, dict[int, dict[str, Any]]] = {}
    order = sorted(d.seed_results, key=lambda r: (r["model"], r["variant"] != BASE, r["variant"], r["target"],
                                                  r["backend"], r["attack"] != "none", r["attack"], r["source"],
                                                  r["eps"]))
    for r in order:
        out.setdefault(_key(r), {})[int(r["seed"])] = r
    return out


def _metric(r: dict[str, Any]) -> str:
    return "clean_acc" if r["attack"] == "none" else "robust_acc"


def seed_stat(d: RunData, row: dict[str, Any], metric: str) -> SeedStat | None:
    """Proportion ``metric`` of ``row``'s result key over the run's seeds, its t interval clipped to [0, 1] (None
    for a one-seed run)."""
    if len(d.seeds) < 2 or not d.seed_results:
        return None
    rows = _by_key(d).get(_key(row), {})
    return proportion_interval([(rows.get(s) or {}).get(metric) for s in d.seeds])


def proportion_interval(values: list[float | None]) -> SeedStat | None:
    """:func:`~edgebench.metrics.seeds.seed_interval` of per-seed proportions, its bounds clipped to [0, 1]."""
    stat = seed_interval(values)
    return None if stat is None else replace(stat, lo=_clip(stat.lo), hi=_clip(stat.hi))


def _values(stat: SeedStat, scale: float = 1.0, digits: int = 3) -> str:
    return " / ".join(f"{v * scale:.{digits}f}" for v in stat.values)


def _mcnemar_clean(d: RunData, key: Key, base_key: Key) -> dict[int, float]:
    """Per seed: McNemar's p between the base's and the variant's clean per-sample correctness (same samples)."""
    from edgebench.metrics.robustness import mcnemar
    from edgebench.metrics.samples import unpack_correct

    bits: dict[tuple[Key, int], dict[str, Any]] = {}
    for s in d.seed_samples:
        if s["kind"] == "correct":
            bits[(_key(s), int(s["seed"]))] = s["data"]
    out = {}
    for seed in d.seeds:
        a, b = bits.get((base_key, seed)), bits.get((key, seed))
        if a and b and a.get("n") == b.get("n") and a.get("set_sha256") == b.get("set_sha256"):
            out[seed] = mcnemar(unpack_correct(a), unpack_correct(b))["p_value"]
    return out


def _against_base(d: RunData, by_key: dict[Key, dict[int, dict[str, Any]]]) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for key, per_seed in by_key.items():
        model, variant, attack, eps, backend, target, source = key
        if variant == BASE or next(iter(per_seed.values())).get("threat") == "suite":
            continue
        if attack == "none":
            base_key: Key = (model, BASE, "none", eps, backend, target, model)
            base = by_key.get(base_key, {})
            diff = paired_seed_difference([(per_seed.get(s) or {}).get("clean_acc") for s in d.seeds],
                                          [(base.get(s) or {}).get("clean_acc") for s in d.seeds])
            ps = _mcnemar_clean(d, key, base_key)
        else:
            diff = seed_interval([(per_seed.get(s) or {}).get("robust_delta") for s in d.seeds])
            ps = {s: r["robust_delta_p"] for s, r in per_seed.items() if r.get("robust_delta_p") is not None}
        if diff is None:
            continue
        sig = sum(p < 0.05 for p in ps.values())
        rows.append([unit_label(model, variant), f"{target}/{backend}", attack, Num(eps, None),
                     source if attack != "none" else "", "clean_acc" if attack == "none" else "robust_acc",
                     _values(diff, 100, 1), _points(diff),
                     " / ".join(f"{ps[s]:.2g}" if s in ps else "–" for s in d.seeds),
                     f"{sig} of {len(ps)}" if ps else None])
    return rows


def _points(stat: SeedStat) -> Mark:
    """A mean difference in points with its t interval; muted when the interval holds 0."""
    if stat.lo is None or stat.hi is None:
        return Mark(f"{stat.mean * 100:+.1f}", "plain", stat.mean)
    text = f"{stat.mean * 100:+.1f} [{stat.lo * 100:+.1f}, {stat.hi * 100:+.1f}]"
    return Mark(text, "muted" if stat.lo <= 0 <= stat.hi else "plain", stat.mean)


def _clip(v: float | None) -> float | None:
    """A bound of a proportion's t interval, clipped to [0, 1] (the t interval does not know the range)."""
    return None if v is None else min(1.0, max(0.0, v))


def seeds_section(d: RunData) -> Section | None:
    """The section over seeds (None for a one-seed run): see the module docstring."""
    if len(d.seeds) < 2 or not d.seed_results:
        return None
    by_key = _by_key(d)
    rows: list[list[Cell]] = []
    for key, per_seed in by_key.items():
        model, variant, attack, eps, backend, target, source = key
        first = next(iter(per_seed.values()))
        metric = _metric(first)
        stat = seed_interval([(per_seed.get(s) or {}).get(metric) for s in d.seeds])
        if stat is None:
            continue
        n = first.get("n")
        wlo, whi = within_seed_wilson(stat.mean, int(n)) if n else (None, None)
        rows.append([unit_label(model, variant), f"{target}/{backend}", attack, Num(eps, None),
                     source if attack != "none" else "", metric, _values(stat),
                     Prop(stat.mean, _clip(stat.lo), _clip(stat.hi), stat.k),
                     Prop(stat.mean, wlo, whi, None if n is None else int(n))])
    seeds = ", ".join(str(s) for s in d.seeds)
    blocks: list[Any] = [
        Para(f"Every model trained, compressed, attacked and measured once per training seed ({seeds}), on the "
             "same test samples (the test subset is drawn by `[data] seed`, not by the training seed). The other "
             f"sections show seed {d.seeds[0]}. `mean [t 95 %]`: the mean over seeds with the between-seed interval "
             "mean ± t(0.975, k−1)·sd/√k, clipped to [0, 1] (what retraining moves); `Wilson [one seed's n]`: the "
             "within-seed interval "
             "at that mean with one seed's sample count (what the finite test set moves; the seeds share their "
             "samples, so they are not pooled)."),
        Table("seeds", "Over training seeds", ["unit", "target/backend", "attack", "ε", "source", "quantity",
                                               "per seed", "mean [t 95 %]", "Wilson [one seed's n]"], rows)]
    delta = _against_base(d, by_key)
    if delta:
        blocks += [
            Para("Each variant against its base, paired by seed and sample: the per-seed difference in points "
                 "(variant − base, on that seed's same test samples), their mean with the paired t interval over "
                 "seeds (muted where it holds 0), and McNemar's exact p per seed on those samples."),
            Table("seeds_vs_base", "Against the base, paired by seed",
                  ["unit", "target/backend", "attack", "ε", "source", "quantity", "Δ per seed (points)",
                   "mean Δ [t 95 %] (points)", "McNemar p per seed", "seeds with p < 0.05"], delta)]
    return Section("seeds", "Training seeds", blocks)
