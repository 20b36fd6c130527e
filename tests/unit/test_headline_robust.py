"""The report's one robust-accuracy figure (:func:`edgebench.report.data.headline_robust`): on a store where the
largest ε breaks every variant (worst case 0 for all), the summary's "most robust" and the accuracy overview still
separate the variants, by their robust accuracy at each attack's middle ε."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgebench.report.data import HEADLINE_ROBUST, RunData, headline_robust, middle_eps
from edgebench.report.plots import make_plots
from edgebench.report.sections import summary_section
from edgebench.report.tables import Table
from edgebench.store import Store

RUN = "mid"
#: robust accuracy per (variant, attack, ε): 0 for all at the largest ε, apart at the middle ε
ROBUST = {
    "base": {"pgd": {0.1: 0.60, 0.2: 0.30, 0.3: 0.0}, "fgsm": {0.1: 0.70, 0.3: 0.0}},
    "int8": {"pgd": {0.1: 0.62, 0.2: 0.45, 0.3: 0.0}, "fgsm": {0.1: 0.50, 0.3: 0.0}},
    "prune": {"pgd": {0.1: 0.55, 0.2: 0.20, 0.3: 0.0}, "fgsm": {0.1: 0.15, 0.3: 0.0}},
}


def _row(variant: str, attack: str, eps: float, **kw: Any) -> dict[str, Any]:
    unit = "m" if variant == "base" else f"m/{variant}"
    return {"model": "m", "variant": variant, "attack": attack, "eps": eps, "backend": "onnxruntime",
            "target": "local", "source": unit, "n": 200, **kw}


def _store(path: Path, robust: dict[str, dict[str, dict[float, float]]]) -> RunData:
    with Store.open(path) as store:
        store.begin_run(RUN, plan_name="mid", plan_hash="0" * 12, plan={}, version="test")
        rows = [_row(v, "none", 0.0, threat="clean", clean_acc=0.9, clean_acc_lo=0.85, clean_acc_hi=0.93,
                     p50_ms=1.0 + i) for i, v in enumerate(robust)]
        rows += [_row(v, a, e, threat="white-box", clean_acc=0.9, robust_acc=r, robust_acc_lo=max(0.0, r - 0.05),
                      robust_acc_hi=min(1.0, r + 0.05), asr=1 - r / 0.9)
                 for v, attacks in robust.items() for a, grid in attacks.items() for e, r in grid.items()]
        # a transfer row at the middle ε, stronger than any white-box one: not part of the figure
        rows.append({**_row("int8", "pgd", 0.2, threat="transfer", clean_acc=0.9, robust_acc=0.01), "source": "m"})
        store.put_results(RUN, rows)
        store.finish_run(RUN, "done")
        return RunData.load(store, RUN)


def test_middle_eps_is_the_lower_middle_of_each_attacks_grid(tmp_path: Path) -> None:
    data = _store(tmp_path / "r.sqlite", ROBUST)
    assert middle_eps(data.adversarial) == {"pgd": 0.2, "fgsm": 0.1}


def test_figure_is_the_strongest_attack_at_mid_eps_where_worst_case_is_zero_for_all(tmp_path: Path) -> None:
    data = _store(tmp_path / "r.sqlite", ROBUST)
    assert {min(r["robust_acc"] for r in data.adversarial if r["variant"] == v) for v in ROBUST} == {0.0}
    figure = {k: (w["attack"], w["eps"], w["robust_acc"], c) for k, (w, c) in headline_robust(data.adversarial).items()}
    assert figure == {("m", "base", "local", "onnxruntime"): ("pgd", 0.2, 0.30, 2),
                      ("m", "int8", "local", "onnxruntime"): ("pgd", 0.2, 0.45, 2),
                      ("m", "prune", "local", "onnxruntime"): ("fgsm", 0.1, 0.15, 2)}

    summary = next(b for b in summary_section(data).blocks if isinstance(b, Table))
    most_robust = summary.rows[0][2]
    assert most_robust == "m/int8 on onnxruntime: 0.450 against the strongest of 2 attacks at mid ε (pgd ε=0.2)"
    assert HEADLINE_ROBUST in summary.caption


def test_overview_plot_draws_the_same_figure(tmp_path: Path) -> None:
    def overview(robust: dict[str, dict[str, dict[float, float]]], name: str) -> Any:
        return next(p for p in make_plots(_store(tmp_path / name, robust)) if p.name == "accuracy-overview")

    first = overview(ROBUST, "a.sqlite")
    assert HEADLINE_ROBUST in first.caption
    # the largest ε does not move the plot; the middle ε does
    largest = {v: {a: {**g, max(g): 0.02} for a, g in at.items()} for v, at in ROBUST.items()}
    assert overview(largest, "b.sqlite").png == first.png
    middle = {**ROBUST, "int8": {**ROBUST["int8"], "pgd": {**ROBUST["int8"]["pgd"], 0.2: 0.35}}}
    assert overview(middle, "c.sqlite").png != first.png
