"""The worst case over an attack suite and the gradient-free-above-gradient flag, scored from hand-written stage
outcomes (:func:`edgebench.runner.score.score`) and checked against values computed here from the per-sample
outcomes; then stored and rendered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgebench.config import parse_plan
from edgebench.errors import ConfigError
from edgebench.metrics.robustness import mcnemar, wilson
from edgebench.report.data import RunData
from edgebench.report.render import render_markdown
from edgebench.runner.score import score
from edgebench.runner.suite import FLAG_KIND
from edgebench.store import Store
from tests.unit.test_score import Y, adv_sets, device_run

PLAN = {
    "plan": {"name": "suite"},
    "data": {"dataset": "digits"},
    "models": [{"name": "m", "arch": "digits_cnn"}],
    "attacks": [{"name": "fgsm", "eps": [0.1, 0.3]},
                {"name": "pgd", "eps": [0.1], "n": 8},
                {"name": "uniform-noise", "eps": [0.1]},
                {"name": "fgsm", "label": "fgsm-t", "eps": [0.1], "targeted": "next"}],
    "targets": [{"target": "local", "backends": ["onnxruntime"]}],
}


def wrong_on(idx: list[int], n: int = 10) -> np.ndarray:
    """Predictions equal to the labels but on ``idx``."""
    pred = Y[:n].copy()
    pred[idx] = (pred[idx] + 1) % 10
    return pred


def _outcome(tmp_path: Path, preds: dict[str, np.ndarray], plan_raw: dict = PLAN):
    """One device run of unit ``m`` with the clean set (sample 9 misclassified) and one set per attack at
    ε = 0.1 (``preds``: attack label -> device predictions on the samples it ran on)."""
    plan = parse_plan(plan_raw, "suite.toml")
    specs = {a.label: a for a in plan.attacks}
    values, adv = {}, {}
    for label in preds:
        sets = adv_sets(tmp_path / f"adv-{label}", "m", [Y.copy(), Y.copy()], specs[label])
        values[f"craft/m/{label}"] = sets
        adv[f"{label}@0.1"] = (preds[label], sets.files[0], label, 0)
    values["device/local/onnxruntime/m"] = device_run(tmp_path / "run", "device/local/onnxruntime/m",
                                                      wrong_on([9]), adv, "m")
    return score(plan, values, Y, host_predict=lambda unit, path: None)


def test_suite_accuracy_is_the_worst_case_over_the_samples_every_attack_evaluated(tmp_path: Path) -> None:
    preds = {"fgsm": wrong_on([0, 1]), "pgd": wrong_on([1, 2, 3], n=8), "uniform-noise": wrong_on([4]),
             "fgsm-t": wrong_on([5, 6, 7])}  # targeted: not in the suite
    scores = _outcome(tmp_path, preds)
    suite = [r for r in scores.records if r.threat == "suite"]
    assert [(r.attack, r.eps, r.source) for r in suite] == [("suite", 0.1, "suite:linf")]  # one attack at 0.3
    r = suite[0]
    # computed here: the first 8 samples (pgd's n), clean-correct and missed by fgsm, pgd and uniform-noise
    n = 8
    ok = wrong_on([9])[:n] == Y[:n]
    hits = np.stack([preds[a][:n] != Y[:n] for a in ("fgsm", "pgd", "uniform-noise")])
    robust = ok & ~hits.any(0)
    assert r.n == n and r.robust_acc == robust.mean() == 3 / 8
    assert (r.robust_acc_lo, r.robust_acc_hi) == wilson(int(robust.sum()), n)
    assert r.clean_acc == 1.0 and r.asr == 5 / 8 and r.asr_n == 8
    # never above any member's own robust accuracy
    own = {x.attack: x.robust_acc for x in scores.records if x.eps == 0.1 and x.threat == "white-box"}
    assert r.robust_acc <= min(own[a] for a in ("fgsm", "pgd", "uniform-noise"))
    (b,) = [s["data"] for s in scores.samples if s["kind"] == "suite"]
    assert b["members"] == ["fgsm", "pgd", "uniform-noise"]
    assert b["first"] == {"fgsm": 2, "pgd": 2, "uniform-noise": 1}  # sample 1: fgsm comes first
    assert b["only"] == {"fgsm": 1, "pgd": 2, "uniform-noise": 1}
    assert not [f for f in scores.flags if f["kind"] == FLAG_KIND]  # the noise breaks fewer than the gradients


def test_suite_false_and_the_reserved_label() -> None:
    raw = {**PLAN, "attacks": [dict(PLAN["attacks"][0], suite=False), *PLAN["attacks"][1:]]}
    plan = parse_plan(raw, "suite.toml")
    assert not plan.attacks[0].suite and plan.attacks[1].suite
    assert "suite" not in plan.as_dict()["attacks"][1]  # a default leaves the plan's hash as it was
    with pytest.raises(ConfigError, match="'suite' names the worst case"):
        parse_plan({**PLAN, "attacks": [{"name": "fgsm", "label": "suite", "eps": [0.1]}]}, "suite.toml")


def test_gradient_free_attack_above_every_gradient_attack_is_flagged(tmp_path: Path) -> None:
    preds = {"fgsm": wrong_on([0, 1]), "pgd": wrong_on([], n=8), "uniform-noise": wrong_on(list(range(9)))}
    scores = _outcome(tmp_path, preds)
    (flag,) = [f for f in scores.flags if f["kind"] == FLAG_KIND]
    assert (flag["attack"], flag["eps"], flag["variant"]) == ("uniform-noise", 0.1, "base")
    # against pgd on pgd's 8 samples: 8 vs 0; against fgsm on 9 clean-correct samples: 9 vs 2
    against = flag["detail"]["against"]
    assert (against["pgd"]["free_hits"], against["pgd"]["gradient_hits"]) == (8, 0)
    assert against["pgd"]["p_value"] == mcnemar(np.zeros(8, bool), np.ones(8, bool))["p_value"] < 0.05
    assert (against["fgsm"]["free_hits"], against["fgsm"]["gradient_hits"]) == (9, 2)
    # the flag opens the report with the other trust flags; the suite section shows the break-down
    with Store.open(tmp_path / "results.sqlite") as st:
        st.begin_run("r", plan_name="suite", plan_hash="h", plan={}, version="test")
        st.put_results("r", [x.row() for x in scores.records])
        st.put_samples("r", [s for s in scores.samples if s["kind"] in ("correct", "suite")] + [
            {"kind": "bpda", "model": "m", "variant": "base", "source": "m", "data": {"summary": "round × 1"}}])
        st.put_flags("r", scores.flags)
        d = RunData.load(st, "r")
        assert [x["attack"] for x in d.suite] == ["suite"] and all(x["threat"] != "suite" for x in d.adversarial)
        md = render_markdown(st, "r")
    summary = md[:md.index("## Clean accuracy")]
    assert "an attack without gradients beats every gradient attack" in summary
    assert "## Worst case over the attack suite" in md and "`m`: round × 1." in md
    assert "| m | base | 0.1 | linf | 8 | 1.000 | fgsm 0.800 · pgd 1.000 · uniform-noise 0.100 | 0.000" in md
