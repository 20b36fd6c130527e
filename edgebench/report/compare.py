"""``edgebench compare RUN_A RUN_B``: two stored runs side by side (two devices, two backends, two dates),
with each difference and its significance.

Rows are matched on model, variant, attack, ε and source. Target/backend pairs present in both runs are
compared with themselves; the remaining pairs are matched in order (one device against another: the pairing
is printed). Accuracy, robust accuracy and asr differences carry McNemar's exact test when both rows stored
their per-sample correctness on the same test set (the same samples: the test that DESIGN.md asks for), and
an unpaired two-proportion z-test otherwise (said so in the row). Latency differences are tested on the unit
that varies, the per-round medians of interleaved rounds (:func:`~edgebench.metrics.rounds.compare_rounds`,
unpaired, with the run-to-run floor ``RUN_FLOOR``), not on per-inference samples: those are not independent, and
Welch's t over ~15,000 of them read "p = 0" for the same artifact run twice. A difference inside the runs'
spread, or a row without stored rounds (a run of protocol 2, ``rounds = 1``, a fleet), reads *not resolved*.
"""

from __future__ import annotations

from typing import Any

from edgebench.errors import ConfigError
from edgebench.metrics.robustness import mcnemar, two_proportion_test
from edgebench.metrics.rounds import BUSY_LIMIT, RUN_FLOOR, RUN_FLOOR_MS, compare_rounds
from edgebench.metrics.samples import unpack_correct
from edgebench.report.data import RunData, unit_label
from edgebench.report.rounds import cv_cell, round_data, verdict_cell
from edgebench.report.tables import Bullets, Cell, Mark, Num, Para, Prop, Section, Table, fmt_num

ALPHA = 0.05


def match_pairs(a: RunData, b: RunData) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """(pair in A, pair in B): identical pairs first, then the rest in order."""
    pa, pb = a.pairs, b.pairs
    same = [(p, p) for p in pa if p in pb]
    rest_a, rest_b = [p for p in pa if p not in pb], [p for p in pb if p not in pa]
    return same + list(zip(sorted(rest_a, key=lambda p: (p[1], p[0])), sorted(rest_b, key=lambda p: (p[1], p[0]))))


def _key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["model"], r["variant"], r["attack"], round(float(r["eps"]), 9), r["source"])


def _paired(a: dict[tuple[Any, ...], Any], b: dict[tuple[Any, ...], Any], ra: dict[str, Any], rb: dict[str, Any],
            metric: str) -> dict[str, Any]:
    """The test of one proportion's difference: McNemar when both runs kept the same samples' correctness
    (``a``, ``b``: :meth:`RunData.correctness` of each run)."""
    ca = a.get((ra["model"], ra["variant"], ra["attack"], float(ra["eps"]), ra["backend"],
                              ra["target"], ra["source"]))
    cb = b.get((rb["model"], rb["variant"], rb["attack"], float(rb["eps"]), rb["backend"],
                              rb["target"], rb["source"]))
    if (metric != "asr" and ca and cb and ca["data"]["n"] == cb["data"]["n"]
            and ca["data"].get("set_sha256") == cb["data"].get("set_sha256")):
        t = mcnemar(unpack_correct(ca["data"]), unpack_correct(cb["data"]))
        return {"test": "McNemar", "p_value": t["p_value"], "detail": f"b={t['b']}, c={t['c']}"}
    n_key = "asr_n" if metric == "asr" else "n"
    na, nb = int(ra.get(n_key) or 0), int(rb.get(n_key) or 0)
    t = two_proportion_test(round(ra[metric] * na), na, round(rb[metric] * nb), nb)
    return {"test": "z (unpaired)", "p_value": t["p_value"], "detail": f"z={fmt_num(t['z'], 2)}"}


def _verdict(p: float | None) -> Cell:
    if p is None or p != p:
        return None
    return Mark(f"{p:.2g}", "plain", p) if p < ALPHA else Mark(f"{p:.2g} n.s.", "muted", p)


def compare_sections(a: RunData, b: RunData, *, floor: float = RUN_FLOOR) -> list[Section]:
    """The two runs' sections; ``floor``: latency ratios within ``1 ± floor`` are not resolved between runs."""
    if not 0.0 <= floor < 1.0:
        raise ConfigError(f"compare --floor: {floor!r} is not a fraction in [0, 1); 0.1 reads ratios within 10 % "
                          "as not resolved")
    pairs = match_pairs(a, b)
    head = Section("runs", "The two runs", [
        Table("runs", "The two runs", ["", "run", "plan", "plan hash", "status", "edgebench", "target / backend"],
              [[label, d.run_id, str(d.run.get("plan_name")), (d.run.get("plan_hash") or "")[:12],
                str(d.run.get("status")), str(d.run.get("edgebench_version")),
                ", ".join(f"{t}/{bk}" for t, bk in d.pairs)] for label, d in (("A", a), ("B", b))]),
        Para("Compared: " + ("; ".join(f"A {pa[0]}/{pa[1]} with B {pb[0]}/{pb[1]}" for pa, pb in pairs) or
                             "nothing (no target/backend in common and none to pair)") + "."
             + ("" if a.run.get("plan_hash") == b.run.get("plan_hash") else
                " **The plans differ**: only rows with the same model, variant, attack, ε and source are compared.")),
    ])
    acc_rows: list[list[Cell]] = []
    lat_rows: list[list[Cell]] = []
    unmatched = 0
    correct_a, correct_b = a.correctness(), b.correctness()
    rounds_a, rounds_b = round_data(a), round_data(b)
    for pa, pb in pairs:
        rows_a = {_key(r): r for r in a.results if (r["target"], r["backend"]) == pa}
        rows_b = {_key(r): r for r in b.results if (r["target"], r["backend"]) == pb}
        unmatched += len(rows_a.keys() ^ rows_b.keys())
        where = f"{pa[0]}/{pa[1]}" if pa == pb else f"{pa[0]}/{pa[1]} → {pb[0]}/{pb[1]}"
        for k in [k for k in rows_a if k in rows_b]:
            ra, rb = rows_a[k], rows_b[k]
            metric = "clean_acc" if ra["attack"] == "none" else "robust_acc"
            for m in (metric, "asr") if metric == "robust_acc" else (metric,):
                if ra.get(m) is None or rb.get(m) is None:
                    continue
                t = _paired(correct_a, correct_b, ra, rb, m)
                acc_rows.append([unit_label(ra["model"], ra["variant"]), ra["attack"], Num(ra["eps"], None),
                                 ra["source"], where, m, Prop.of(ra, m), Prop.of(rb, m),
                                 Mark(f"{(rb[m] - ra[m]) * 100:+.2f}", "plain", rb[m] - ra[m]), t["test"],
                                 _verdict(t["p_value"])])
            if ra["attack"] == "none" and ra.get("p50_ms") and rb.get("p50_ms"):
                da, db = rounds_a.get((*k[:2], *pa[::-1]), {}), rounds_b.get((*k[:2], *pb[::-1]), {})
                c = compare_rounds(da.get("median_ms", []), db.get("median_ms", []), paired=False, floor=floor,
                                   floor_ms=RUN_FLOOR_MS,
                                   other_load=(da.get("other_load", []), db.get("other_load", [])))
                ea, eb = ra.get("energy_j"), rb.get("energy_j")
                lat_rows.append([unit_label(ra["model"], ra["variant"]), where, Num(ra["p50_ms"]), Num(rb["p50_ms"]),
                                 Mark(f"{rb['p50_ms'] / ra['p50_ms']:.3f}×", "plain", rb["p50_ms"] / ra["p50_ms"]),
                                 Mark(f"{fmt_num(ra['mean_ms'])} ± {fmt_num(ra['std_ms'])}", "plain", ra["mean_ms"]),
                                 Mark(f"{fmt_num(rb['mean_ms'])} ± {fmt_num(rb['std_ms'])}", "plain", rb["mean_ms"]),
                                 c["rounds_a"], c["rounds_b"], cv_cell(c["cv_a"]), cv_cell(c["cv_b"]), verdict_cell(c),
                                 Num(None if ea is None else ea * 1e3, None),
                                 Num(None if eb is None else eb * 1e3, None),
                                 Mark(f"{eb / ea:.3f}×", "plain", eb / ea) if ea and eb else None])
    out = [head]
    if acc_rows:
        out.append(Section("accuracy", "Accuracy and robustness", [
            Para("Each proportion with its 95 % Wilson interval; Δ = B − A in points; `p`: McNemar's exact test on "
                 "the same samples where both runs stored them, else an unpaired z-test (`n.s.`: p ≥ 0.05, the "
                 "difference is inside the noise)."),
            Table("compare_accuracy", "Accuracy and robustness",
                  ["unit", "attack", "ε", "source", "where", "metric", "A [95 % CI]", "B [95 % CI]", "Δ (points)",
                   "test", "p"], acc_rows)]))
    if lat_rows:
        out.append(Section("latency", "Latency and energy", [
            Para("p50 latency in ms and its ratio B ÷ A; `round medians`: B ÷ A on the two runs' per-round medians "
                 "(ratio of their medians, 95 % bootstrap interval over rounds), **not resolved** when the interval "
                 "holds 1, when the difference is inside the runs' spread (2 × the larger CV of round medians, and "
                 f"at least {floor * 100:g} %: rounds inside one run cannot see the drift between runs), when the "
                 f"medians differ by less than {RUN_FLOOR_MS:g} ms (per-call overhead that drifts between runs), "
                 f"when other processes kept more than {BUSY_LIMIT:g} CPUs busy during either run's rounds, or when "
                 "a run stored no rounds (per-inference samples are not independent: no test is made on them); "
                 "energy per inference in mJ."),
            Table("compare_latency", "Latency and energy",
                  ["unit", "where", "p50 A", "p50 B", "B ÷ A", "mean ± std A", "mean ± std B", "rounds A",
                   "rounds B", "CV A", "CV B", "round medians B ÷ A", "mJ A", "mJ B", "energy B ÷ A"], lat_rows)]))
    significant = sum(1 for r in acc_rows if isinstance(r[-1], Mark) and r[-1].kind == "plain")
    summary = [f"{len(acc_rows)} accuracy/robustness comparisons, {significant} significant at p < {ALPHA}",
               f"{len(lat_rows)} latency comparisons, "
               f"{sum(1 for r in lat_rows if isinstance(r[11], Mark) and r[11].kind == 'plain')} resolved on "
               "per-round medians"]
    if unmatched:
        summary.append(f"{unmatched} rows in only one of the two runs (not compared)")
    head.blocks.append(Bullets(summary))
    return out
