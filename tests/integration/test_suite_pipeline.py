"""The worst case over the suite, the gradient-masking flag and BPDA end to end on digits: a model with an input
quantizer (round(4x)/4, zero gradient almost everywhere) and an 8-bit variant of it attacked through BPDA, PGD
(no random start), FGSM on fewer samples and uniform noise, through ONNX Runtime on the local target."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgebench import run_plan
from edgebench.config import parse_plan
from edgebench.metrics.samples import unpack_correct
from edgebench.store import Store

pytestmark = pytest.mark.slow

PLAN = {
    "plan": {"name": "suite"},
    "data": {"dataset": "digits"},
    "models": [{"name": "m", "factory": "tests.fixtures.masked:rounding", "train": {"epochs": 5}}],
    "compress": [{"method": "kbit", "label": "q", "bits": 8, "bpda": True}],
    "export": {"openvino": False},
    "attacks": [{"name": "pgd", "eps": [0.1, 0.2], "steps": 10, "random_start": False, "n": 200},
                {"name": "fgsm", "eps": [0.2], "n": 150},
                {"name": "uniform-noise", "eps": [0.2], "repeats": 10, "n": 200}],
    "targets": [{"target": "local", "backends": ["onnxruntime"]}],
    "measure": {"warmup": 2, "min_runs": 10, "min_duration_s": 0.01, "profile_runs": 0},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Store]:
    tmp = tmp_path_factory.mktemp("suite")
    with pytest.MonkeyPatch.context() as mp:  # module-scoped: the autouse per-test cache is not set up yet
        mp.setenv("EDGEBENCH_CACHE", str(tmp / "cache"))
        summary = run_plan(parse_plan(PLAN, "suite.toml"), out_dir=tmp / "reports")
    assert not summary.failed and not summary.skipped
    with Store.open(summary.run_dir / "results.sqlite", create=False) as store:
        yield summary.run_dir, store


def test_suite_rows_equal_the_worst_case_of_the_stored_per_sample_outcomes(run) -> None:
    run_dir, store = run
    rid = run_dir.name
    suite = {(r["variant"], r["eps"]): r for r in store.results(rid) if r["threat"] == "suite"}
    assert set(suite) == {("base", 0.2), ("q", 0.2)}  # at 0.1 pgd is alone
    correct = {(s["variant"], s["attack"], s["eps"]): unpack_correct(s["data"]) for s in store.samples(rid, "correct")}
    for variant in ("base", "q"):
        r = suite[(variant, 0.2)]
        assert r["attack"] == "suite" and r["source"] == "suite:linf" and r["n"] == 150  # fgsm's n
        clean = correct[(variant, "none", 0.0)][:150]
        robust = clean.copy()
        for attack in ("pgd", "fgsm", "uniform-noise"):
            robust &= correct[(variant, attack, 0.2)][:150]
        assert r["robust_acc"] == pytest.approx(robust.mean())
        assert np.array_equal(correct[(variant, "suite", 0.2)], robust)
    (b,) = [s["data"] for s in store.samples(rid, "suite") if s["variant"] == "base"]
    assert sum(b["first"].values()) == b["clean_correct"] - b["robust"]


def test_masking_flag_on_the_rounding_model_and_bpda_on_its_variant(run) -> None:
    run_dir, store = run
    rid = run_dir.name
    flags = [f for f in store.flags(rid) if f["kind"] == "gradient-free-above-gradient"]
    assert [(f["variant"], f["attack"], f["eps"]) for f in flags] == [("base", "uniform-noise", 0.2)]
    pgd = {r["variant"]: r["asr"] for r in store.results(rid) if r["attack"] == "pgd" and r["eps"] == 0.2}
    assert pgd["base"] <= 0.02 and pgd["q"] >= 0.5  # blind through round(); through BPDA it finds its way
    (note,) = store.samples(rid, "bpda")
    assert (note["variant"], note["data"]["steps"]) == ("q", {"round": 1})
    report = (run_dir / "report.md").read_text()
    assert "an attack without gradients beats every gradient attack" in report
    assert "## Worst case over the attack suite" in report and "`m/q`: backward pass of round × 1" in report
