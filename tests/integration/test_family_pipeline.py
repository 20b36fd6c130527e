"""The family threat model end to end on digits through ONNX Runtime on the local target: one EOT set crafted on
the base and its 2-bit variant at once, evaluated on both (threat ``family``) and on the held-out 8-bit variant
(``family-holdout``), beside ordinary transfer from the base; its cost and per-member host success recorded,
the report's section, and the set's key independent of the order the plan lists the family in."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest

from edgebench.config import parse_plan
from edgebench.metrics.samples import unpack_correct
from edgebench.runner.pipeline import Pipeline
from edgebench.store import Store
from tests.fixtures.runs import module_cache, run_plan_text
from tests.integration.test_threat_models import PLAN as THREATS

# the threat-model test's plan (digits CNN, 2- and 8-bit variants, the local target) with a family attack
PLAN = THREATS.split("[[attacks]]")[0] + """
[[attacks]]
name = "pgd"
eps = [0.1, 0.2]
steps = 5
threat = ["family", "transfer"]
family = FAMILY
holdout = ["kbit-8"]
n = 100
[[targets]]""" + THREATS.split("[[targets]]", 1)[1]
SOURCE = "cnn/family[base,kbit-2]"

pytestmark = pytest.mark.slow  # one short run: ~25 s on an idle 2-core machine, a minute when it is shared


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("family")
    run_dir = run_plan_text(tmp, PLAN.replace("FAMILY", '["kbit-2", "base"]'))
    with module_cache(tmp):  # the same family listed in the other order: the same set, found in the cache
        other = parse_plan(tomllib.loads(PLAN.replace("FAMILY", '["base", "kbit-2"]')), "other.toml")
        status = {r["stage"]: r["status"] for r in Pipeline(other, out_dir=tmp / "reports2").dry_run()}
    store = Store.open(run_dir / "results.sqlite", create=False)
    yield run_dir, store, tmp / "cache", status
    store.close()


def test_rows_per_member_holdout_and_transfer(run) -> None:
    run_dir, store, _, _ = run
    rows = {(r["variant"], r["threat"], r["source"], r["eps"]): r for r in store.results(run_dir.name)
            if r["attack"] == "pgd"}
    for eps in (0.1, 0.2):
        assert {k[:3] for k in rows if k[3] == eps} == {
            ("base", "family", SOURCE), ("kbit-2", "family", SOURCE), ("kbit-8", "family-holdout", SOURCE),
            ("base", "white-box", "cnn"), ("kbit-2", "transfer", "cnn"), ("kbit-8", "transfer", "cnn")}
    for r in rows.values():
        assert r["n"] == 100 and 0.0 <= r["asr"] <= 1.0
        # the float and 2-bit twins export faithfully: the device fools each member as the host twin does
        assert abs(r["deployment_gap"]) <= 0.03, r
    for v in ("base", "kbit-2", "kbit-8"):  # a larger budget fools every victim more often
        assert rows[(v, "family-holdout" if v == "kbit-8" else "family", SOURCE, 0.2)]["asr"] > \
            rows[(v, "family-holdout" if v == "kbit-8" else "family", SOURCE, 0.1)]["asr"] + 0.3


def test_the_set_records_its_cost_and_every_member_fooled(run) -> None:
    _, _, cache, status = run
    (entry,) = [p.parent for p in cache.glob("adv/*/attack.json")
                if "family" in json.loads(p.read_text())]
    info = json.loads((entry / "attack.json").read_text())
    fam = info["family"]
    # 2 ε × (5 forward+backward + 1 forward on the last iterate) per member, 100 samples in one batch
    assert fam["per_member"] == {"base": {"forward": 12, "backward": 10}, "kbit-2": {"forward": 12, "backward": 10}}
    assert (fam["forward"], fam["backward"]) == (info["forward_passes"], info["backward_passes"]) == (24, 20)
    assert fam["holdout"] == ["kbit-8"] and fam["id"] == SOURCE
    for k in range(2):
        with np.load(entry / f"eps{k}.npz") as f:  # success: every member fooled, never more than either member
            rate = float(f["success"].mean())
        assert rate == pytest.approx(info["host_success_rate"][k])
        assert rate <= min(fam["host_success_per_member"][m][k] for m in ("base", "kbit-2")) + 1e-9
    assert status[f"craft/{SOURCE}/pgd"] == "cached"


def test_report_shows_worst_case_holdout_and_transfer(run) -> None:
    run_dir, store, _, _ = run
    report = (run_dir / "report.md").read_text()
    section = report.split("## Attacks across a family of variants", 1)[1].split("\n## ", 1)[0]
    rows = {(r["variant"], r["threat"], r["eps"]): r for r in store.results(run_dir.name) if r["attack"] == "pgd"}
    worst = min((rows[("base", "family", 0.1)], rows[("kbit-2", "family", 0.1)]), key=lambda r: r["asr"])
    assert f"{worst['asr']:.3f} ({worst['variant']}, robust acc {worst['robust_acc']:.3f})" in section
    assert f"kbit-8 {rows[('kbit-8', 'family-holdout', 0.1)]['asr']:.3f}" in section
    assert f"kbit-8 {rows[('kbit-8', 'transfer', 0.1)]['asr']:.3f}" in section
    assert "EOT over 2 members: 24 forward + 20 backward passes (base 12+10, kbit-2 12+10)" in section
    # every member fooled at once, from the device's per-sample results: at most the least-fooled member's share
    correct = {(s["variant"], s["source"]): unpack_correct(s["data"]) for s in store.samples(run_dir.name, "correct")
               if s["attack"] == "pgd" and s["eps"] == 0.1}
    both = float(np.mean(~(correct[("base", SOURCE)] | correct[("kbit-2", SOURCE)])))
    assert both <= 1 - max(rows[("base", "family", 0.1)]["robust_acc"], rows[("kbit-2", "family", 0.1)]["robust_acc"])
    assert f"| {both:.3f} |" in section
