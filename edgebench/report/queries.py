"""The report's "Query attacks" section (issue 17): the success of the black-box attacks crafted against each
deployed artifact, against their query budget."""

from __future__ import annotations

from typing import Any

from edgebench.report.data import RunData
from edgebench.report.tables import Cell, Num, Para, Prop, Section, Table
from edgebench.specs import BLACK_BOX

#: the shares of the budget at which the section gives the success rate (the last is the whole budget)
SHARES = (0.1, 0.5)


def success_within(sample: dict[str, Any] | None, n: int | None, budget: int | None, share: float) -> Cell:
    """The share of the ``n`` clean-correct samples fooled within ``share`` of the ``budget`` (the stored
    per-sample queries, :func:`edgebench.runner.query.query_sample`)."""
    if sample is None or not n or not budget:
        return None
    data = sample["data"]
    fooled = sum(f and q <= share * budget for q, f in zip(data["queries"], data["fooled"]))
    return Num(fooled / n)


def query_section(d: RunData) -> Section | None:
    """Per target, backend, unit, attack and ε: where it was crafted, the budget, the success rate within shares
    of the budget and within all of it (with its interval), the robust accuracy, and the mean and median queries
    spent on the samples it fooled."""
    rows = [r for r in d.adversarial if r.get("threat") == BLACK_BOX]
    if not rows:
        return None
    where = {a.get("label", a.get("name")): a.get("where", "host") for a in d.plan.get("attacks", [])}
    key = ("model", "variant", "backend", "target", "attack", "eps", "source")
    samples = {tuple(s[k] for k in key): s for s in d.samples if s["kind"] == "queries"}
    shares = [f"asr ≤ {s:.0%} budget" for s in SHARES]
    return Section("queries", "Query attacks", [
        Para("Black-box attacks crafted on each deployed artifact through its runtime, by queries alone (no torch "
             "twin): on the host, in a session of the very file the device runs, or on the device inside the agent "
             "(`where`). `asr`: among samples classified correctly when clean, the fraction fooled on the device "
             "within the budget of queries per sample (`≤ 10 % budget`: within a tenth of it); `queries`: the mean "
             "and median the attack spent on the samples it fooled (Andriushchenko et al. 2020's convention)."),
        Table("query_attacks", "Query attacks", ["target", "backend", "model", "variant", "attack", "where", "ε", "n",
                                                 "budget", *shares, "asr [95 % CI]", "robust_acc", "mean queries",
                                                 "median queries"],
              [[r["target"], r["backend"], r["model"], r["variant"], r["attack"], where.get(r["attack"], "host"),
                Num(r["eps"], None), r["n"], r.get("query_budget"),
                *(success_within(samples.get(tuple(r[k] for k in key)), r["asr_n"], r.get("query_budget"), s)
                  for s in SHARES),
                Prop.of(r, "asr"), Num(r["robust_acc"]), Num(r.get("queries_mean"), 0),
                Num(r.get("queries_median"), 0)]
               for r in rows])])
