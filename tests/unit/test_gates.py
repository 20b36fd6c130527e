"""``[gates]``: the plan's checks (one-line errors, exit 2), the verdicts on a synthetic store against figures
computed here from its rows, and the report section. The end-to-end exit 3 is in
tests/integration/test_pipeline.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edgebench.config import load_plan
from edgebench.errors import ConfigError
from edgebench.report.data import RunData, middle_eps
from edgebench.report.gates import check_gates, gates_section, violations
from edgebench.store import BASE, Store
from tests.fixtures.synthetic import fill_synthetic
from tests.unit.test_config import BASE as PLAN_TOML

PLAN = PLAN_TOML.replace('name = "fgsm"\neps = [0.1]', 'name = "pgd"\neps = [0.05, 0.1]') + "[gates]\n"
assert "pgd" in PLAN


def _plan(tmp_path: Path, gates: str):
    p = tmp_path / "plan.toml"
    p.write_text(PLAN + gates)
    return load_plan(p)


def test_gates_parse_and_leave_the_plan_hash_alone(tmp_path: Path) -> None:
    plan = _plan(tmp_path, 'max_clean_drop = 0.01\nmax_p99_ms = 5\nmin_robust_acc = { pgd = 0.3 }\n')
    assert plan.gates.max_clean_drop == 0.01 and plan.gates.max_p99_ms == 5.0 and plan.gates.units == "variants"
    assert plan.gates.min_robust_acc == {"pgd": {"eps": None, "acc": 0.3}}
    assert plan.gates.any() and not _plan(tmp_path, "").gates.any()
    assert plan.digest() == _plan(tmp_path, "").digest()  # the same run: gates change no measurement
    one = _plan(tmp_path, "min_robust_acc = { pgd = { eps = 0.1, acc = 0.5 } }\n")
    assert one.gates.min_robust_acc == {"pgd": {"eps": 0.1, "acc": 0.5}}


@pytest.mark.parametrize("gates, expected", [
    ("max_p95_ms = 3\n", "gates.max_p95_ms: unknown key; allowed keys here: ['max_clean_drop'"),
    ("max_clean_drop = 1.5\n", "gates.max_clean_drop: must be <= 1.0, got 1.5"),
    ("max_p99_ms = 0\n", "gates.max_p99_ms: must be > 0.0, got 0"),
    ("max_size_mb = \"2\"\n", "gates.max_size_mb: must be int or float, got '2'"),
    ("units = \"every\"\n", "gates.units: 'every' is not one of ['variants', 'all']"),
    ("min_robust_acc = { fgsm = 0.3 }\n", "gates.min_robust_acc.fgsm: no attack of the plan is labelled 'fgsm'"),
    ("min_robust_acc = { pgd = { eps = 0.2, acc = 0.3 } }\n",
     "gates.min_robust_acc.pgd.eps: 0.2 is not in the ε grid of 'pgd' [0.05, 0.1]"),
    ("min_robust_acc = { pgd = { eps = 0.1 } }\n", "gates.min_robust_acc.pgd.acc: is required"),
])
def test_bad_gates_are_one_line_plan_errors(tmp_path: Path, gates: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        _plan(tmp_path, gates)
    assert expected in str(info.value) and "\n" not in str(info.value) and info.value.exit_code == 2


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunData:
    path = tmp_path_factory.mktemp("gates") / "results.sqlite"
    with Store.open(path) as store:
        fill_synthetic(store, "g", variants=3, attacks=2, eps_grid=3, targets=2, n=200)
        return RunData.load(store, "g")


def test_verdicts_match_the_rows(run: RunData) -> None:
    variants = [r for r in run.clean if r["variant"] != BASE]
    base = {(r["model"], r["target"], r["backend"]): r["clean_acc"] for r in run.clean if r["variant"] == BASE}
    drops = [base[(r["model"], r["target"], r["backend"])] - r["clean_acc"] for r in variants]
    p99s = sorted(r["p99_ms"] for r in variants)
    attack = run.adversarial[0]["attack"]
    mid = middle_eps([r for r in run.adversarial if r["threat"] == "white-box"])[attack]
    limit_drop, limit_p99 = min(drops), p99s[len(p99s) // 2]
    run.plan["gates"] = {"max_clean_drop": limit_drop, "max_p99_ms": limit_p99,
                         "min_robust_acc": {attack: {"eps": None, "acc": 0.0}}, "max_peak_rss_mb": None}
    verdicts = check_gates(run)
    assert len(verdicts) == 3 * len(variants)  # three gates per variant and target; the base is not gated
    assert {v.unit for v in verdicts} == {f"{r['model']}/{r['variant']}" for r in variants}
    drop = [v for v in verdicts if v.gate == "max_clean_drop"]
    assert sorted(v.value for v in drop) == pytest.approx(sorted(drops))
    assert sum(not v.ok for v in drop) == sum(d > limit_drop for d in drops) > 0
    p99 = [v for v in verdicts if v.gate == "max_p99_ms"]
    assert sum(not v.ok for v in p99) == sum(p > limit_p99 for p in p99s) > 0
    robust = [v for v in verdicts if v.gate == f"min_robust_acc.{attack}"]
    assert all(v.ok for v in robust) and f"at ε={mid:g}" in robust[0].what
    for v in robust:
        model, variant = v.unit.split("/")
        rows = [r["robust_acc"] for r in run.adversarial if (r["model"], r["variant"], r["target"], r["attack"])
                == (model, variant, v.target, attack) and r["eps"] == mid and r["threat"] == "white-box"]
        assert v.value == min(rows)
    bad = violations(run)
    assert bad == [v for v in verdicts if not v.ok]
    assert bad[0].line().startswith(f"{bad[0].unit} on {bad[0].target}/{bad[0].backend}: ")
    section = gates_section(run)
    assert section is not None and f"{len(bad)} of {len(verdicts)} gate checks failed" in section.blocks[0].text


def test_an_unmeasured_figure_fails_and_all_includes_the_base(run: RunData) -> None:
    run.plan["gates"] = {"max_peak_rss_mb": 1e9, "units": "all"}
    assert all(v.ok for v in check_gates(run))  # the synthetic agent's memory figures
    unmeasured = dataclasses.replace(run, results=[{**r, "peak_rss_mb": None} for r in run.results])
    verdicts = check_gates(unmeasured)  # a store written before the memory columns
    assert len(verdicts) == len(run.clean) and not any(v.ok for v in verdicts)
    assert "not measured" in verdicts[0].line()
    stored = {(v["model"], v["variant"]): v["stats"]["stored_bytes"] for v in run.variants}
    run.plan["gates"] = {"max_stored_mb": min(stored.values()) / 1e6}
    verdicts = check_gates(run)
    assert [v.value * 1e6 for v in verdicts] == pytest.approx([stored[tuple(v.unit.split("/"))] for v in verdicts])
    assert {v.ok for v in verdicts} == {True, False} and verdicts[0].what == "true stored size in MB"
    run.plan["gates"] = {}
    assert check_gates(run) == [] and gates_section(run) is None
