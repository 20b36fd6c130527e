"""The robustness sections of a run's report, built from :class:`RunData` alone: attack × variant per target and
backend with Wilson intervals, the poster's "max δ" beside the base with McNemar's test (seed 004), transfer
between sources, the minimal ε that flips a sample (seed 000's Algorithm 1), and the deployment gap between the
device and its host twin."""

from __future__ import annotations

import math
from typing import Any

from edgebench.report.data import BASE, RunData, by_pair, row_unit
from edgebench.report.tables import Cell, Mark, Num, Para, Prop, Section, Table, fmt_num


def robustness_sections(d: RunData) -> list[Section]:
    adv = d.adversarial
    if not adv:
        return []
    blocks: list[Any] = [Para(
        "`asr`: among samples classified correctly when clean, the fraction misclassified once perturbed. "
        "`host asr`: the same examples on the host torch twin; `gap` = device asr − host asr. `δ`: robust accuracy "
        "minus the base's under the same attack, in points, with McNemar's paired p on the same samples "
        "(`n.s.`: p ≥ 0.05, inside the noise).")]
    for (target, backend), rows in by_pair(adv).items():
        blocks.append(Table(
            f"robustness_{target}_{backend}", f"{target} / {backend}",
            ["model", "variant", "attack", "threat", "source", "ε", "n", "clean_acc", "robust_acc [95 % CI]",
             "asr n", "asr [95 % CI]", "δ vs base", "host asr", "gap", "mean L∞", "mean L2"],
            [[r["model"], r["variant"], r["attack"], r["threat"] or "", r["source"] or "", Num(r["eps"], None), r["n"],
              Num(r["clean_acc"]), Prop.of(r, "robust_acc"), r["asr_n"], Prop.of(r, "asr"), delta_cell(r),
              Num(r["host_asr"]),
              Num(r["deployment_gap"]), Num(r["mean_linf"]), Num(r["mean_l2"])] for r in rows]))
    out = [Section("robustness", "Robustness", blocks)]
    for extra in (_delta_section(d), _transfer_section(d), _min_eps_section(d),
                  _deployment_section(d)):
        if extra is not None:
            out.append(extra)
    return out


def delta_cell(r: dict[str, Any]) -> Cell:
    if r.get("robust_delta") is None:
        return None
    text = f"{r['robust_delta'] * 100:+.1f} (p={r['robust_delta_p']:.2g})"
    return Mark(text, "plain", r["robust_delta"]) if r["robust_delta_p"] < 0.05 else \
        Mark(text + " n.s.", "muted", r["robust_delta"])


def _delta_section(d: RunData) -> Section | None:
    """Robust accuracy of every variant beside its base's, per attack, ε and threat (poster 004's table), with
    "max δ": the variant whose robust accuracy moved most from the base's, and McNemar's paired p on the same
    samples (a δ with p ≥ 0.05 is inside the noise and shown as such). First target and backend only."""
    adv = d.adversarial
    with_delta = [r for r in adv if r.get("robust_delta") is not None]
    if not with_delta:
        return None
    pair = (with_delta[0]["target"], with_delta[0]["backend"])
    rows_in = [r for r in adv if (r["target"], r["backend"]) == pair]
    base_rows = {(r["model"], r["attack"], r["eps"], r["source"]): r for r in rows_in if r["variant"] == BASE}
    groups: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in rows_in:
        if r["variant"] == BASE or r.get("robust_delta") is None:
            continue
        own = r["threat"] == "white-box"
        examples = "each its own (white-box)" if own else f"crafted on {r['source']}"
        cells = groups.setdefault((r["model"], r["attack"], r["eps"], examples), {})
        cells[r["variant"]] = r
        base = base_rows.get((r["model"], r["attack"], r["eps"], r["model"] if own else r["source"]))
        if base is not None:
            cells.setdefault(BASE, base)
    variants = list(dict.fromkeys(r["variant"] for g in groups.values() for r in g.values()))
    variants = [BASE] + [v for v in variants if v != BASE]
    table: list[list[Cell]] = []
    for (model, attack, eps, threat), cells in groups.items():
        deltas = [c for v, c in cells.items() if v != BASE and c.get("robust_delta") is not None]
        top = max(deltas, key=lambda c: abs(c["robust_delta"]))
        text = f"{top['robust_delta'] * 100:+.1f} ({top['variant']}, p={top['robust_delta_p']:.2g})"
        max_delta = Mark(text, "plain", top["robust_delta"]) if top["robust_delta_p"] < 0.05 else \
            Mark(text + " (n.s.)", "muted", top["robust_delta"])
        table.append([model, attack, Num(eps, None), threat,
                      *(Num(cells[v]["robust_acc"]) if v in cells else None for v in variants), max_delta])
    return Section("delta", "Robustness against the base", [
        Para(f"Robust accuracy per variant on {pair[0]}/{pair[1]}; `max δ`: the largest change from the base in "
             "points, with McNemar's paired p on the same samples — `(n.s.)` marks a change inside the noise "
             "(poster 004's table, with the significance test it lacked)."),
        Table("robustness_vs_base", "Robust accuracy against the base", ["model", "attack", "ε", "examples",
                                                                         *variants, "max δ"], table)])


def _transfer_section(d: RunData) -> Section | None:
    """Transferability tables (seed 002, Table III): asr on each victim (column) of the examples crafted on
    each source (row), per attack and ε, for every target and backend that ran them."""
    groups: dict[tuple[str, str, str, float], dict[tuple[str, str], float]] = {}
    for r in d.adversarial:
        groups.setdefault((r["target"], r["backend"], r["attack"], r["eps"]), {})[(r["source"], row_unit(r))] = r["asr"]
    blocks: list[Any] = []
    for (target, backend, attack, eps), cells in groups.items():
        sources = sorted({s for s, _ in cells})
        if len(sources) < 2:
            continue
        victims = sorted({v for _, v in cells})
        blocks.append(Table(f"transfer_{target}_{backend}_{attack}_{eps:g}", f"**{attack} at ε={eps:g}** ({target} / "
                            f"{backend})", ["source \\ victim", *victims],
                            [[s, *(Num(cells.get((s, v))) for v in victims)] for s in sources]))
    if not blocks:
        return None
    return Section("transfer", "Transferability", [
        Para("asr on the victim (column) of the examples crafted on the source (row); the diagonal is white-box."),
        *blocks])


def _min_eps_section(d: RunData) -> Section | None:
    """Distribution of the per-sample minimal ε (seed 000, Algorithm 1) among clean-correct samples."""
    if not d.min_eps:
        return None

    def q(v: Any) -> Cell:
        return Mark("> max", "plain", math.inf) if isinstance(v, float) and math.isinf(v) else Num(v)

    return Section("min_eps", "Minimal ε", [
        Para("Per sample, the smallest ε of the grid at which the attack succeeds on the device (Algorithm 1 of "
             "Liu et al. 2018), among samples classified correctly when clean; `> max`: not reached within the grid."),
        Table("min_eps", "Minimal ε", ["model", "variant", "target", "backend", "attack", "source", "n", "found",
                                       "p10", "p25", "median", "p75", "p90", "host median"],
              [[r["model"], r["variant"], r["target"], r["backend"], r["attack"], r["source"], r["n"],
                Mark(f"{r['found']} ({fmt_num(r.get('found_share'))})", "plain", r["found"]), q(r.get("p10")),
                q(r.get("p25")), q(r.get("p50")), q(r.get("p75")), q(r.get("p90")), q((r.get("host") or {}).get("p50"))]
               for r in d.min_eps])])


def _deployment_section(d: RunData) -> Section | None:
    """The deployment gap (DESIGN.md): asr on the device artifact minus asr of the same examples on the torch
    twin, summarised per target and backend."""
    rows = [r for r in d.adversarial if r.get("deployment_gap") is not None]
    if not rows:
        return None
    table = []
    for (t, b), pr in by_pair(rows).items():
        gaps = [r["deployment_gap"] for r in pr]
        top = max(pr, key=lambda r: abs(r["deployment_gap"]))
        table.append([t, b, len(pr), Num(sum(gaps) / len(gaps), 4), Num(top["deployment_gap"], 4),
                      f"{row_unit(top)}, {top['attack']} ε={top['eps']:g}"])
    return Section("deployment", "Host vs device (deployment gap)", [
        Para("The same adversarial examples on the device artifact and on the host torch twin: a gap far from 0 "
             "means the deployed model (quantized, converted, fused) does not behave like the one attacked."),
        Table("deployment_gap", "Deployment gap", ["target", "backend", "rows", "mean gap", "largest gap",
                                                   "where"], table)])
