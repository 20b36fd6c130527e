"""The report's "Query attacks" section (issue 17): the success of the black-box attacks crafted against each
deployed artifact, against their query budget."""

from __future__ import annotations

from edgebench.report.data import RunData
from edgebench.report.tables import Num, Para, Prop, Section, Table
from edgebench.specs import BLACK_BOX


def query_section(d: RunData) -> Section | None:
    """Per target, backend, unit, attack and ε: where it was crafted, the budget, the success rate with its
    interval, the robust accuracy, and the mean and median queries spent on the samples it fooled."""
    rows = [r for r in d.adversarial if r.get("threat") == BLACK_BOX]
    if not rows:
        return None
    where = {a.get("label", a.get("name")): a.get("where", "host") for a in d.plan.get("attacks", [])}
    return Section("queries", "Query attacks", [
        Para("Black-box attacks crafted on each deployed artifact through its runtime, by queries alone (no torch "
             "twin): on the host, in a session of the very file the device runs, or on the device inside the agent "
             "(`where`). `asr`: among samples classified correctly when clean, the fraction fooled on the device "
             "within the budget of queries per sample; `queries`: the mean and median the attack spent on the "
             "samples it fooled (Andriushchenko et al. 2020's convention)."),
        Table("query_attacks", "Query attacks", ["target", "backend", "model", "variant", "attack", "where", "ε", "n",
                                                 "budget", "asr [95 % CI]", "robust_acc", "mean queries",
                                                 "median queries"],
              [[r["target"], r["backend"], r["model"], r["variant"], r["attack"], where.get(r["attack"], "host"),
                Num(r["eps"], None), r["n"], r.get("query_budget"), Prop.of(r, "asr"),
                Num(r["robust_acc"]), Num(r.get("queries_mean"), 0), Num(r.get("queries_median"), 0)]
               for r in rows])])
