"""``edgebench.run_plan`` end to end on a tiny digits plan, read back with ``edgebench.open_run``."""

from __future__ import annotations

from pathlib import Path

import pytest

import edgebench

PLAN = """
[plan]
name = "api"
[data]
dataset = "digits"
[[models]]
name = "cnn"
arch = "digits_cnn"
train = { epochs = 2, batch_size = 32, lr = 0.003 }
[[attacks]]
name = "fgsm"
eps = [0.05, 0.2]
n = 50
[[targets]]
target = "local"
backends = ["onnxruntime"]
[measure]
warmup = 2
min_runs = 20
min_duration_s = 0.05
"""


@pytest.mark.slow
def test_run_plan_then_open_run(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(PLAN)
    summary = edgebench.run_plan(edgebench.load_plan(tmp_path / "plan.toml"), out_dir=tmp_path / "reports")
    assert not summary.failed and (summary.run_dir / "results.sqlite").is_file()
    run = edgebench.open_run(summary.run_id, out=tmp_path / "reports")
    assert run.run_id == summary.run_id and run.run["status"] == "done"
    clean = [r for r in run.results if r["attack"] == "none"]
    assert len(clean) == 1 and 0.5 < clean[0]["clean_acc"] <= 1.0 and clean[0]["p50_ms"] > 0
    adv = sorted((r["eps"], r["robust_acc"]) for r in run.results if r["attack"] == "fgsm")
    assert [e for e, _ in adv] == [0.05, 0.2] and adv[1][1] <= adv[0][1] <= clean[0]["clean_acc"]
