"""A plan on the emulated Raspberry Pi 4 end to end (Debian bookworm's arm64 Python 3.11, PyPI's aarch64 numpy
and ONNX Runtime under qemu-aarch64 -cpu cortex-a72), beside the same plan on this x86 host: digits, the fp32
base and an int8 variant, FGSM. The ARM logits agree with x86's (fp32 within 1e-4, the same class on every
sample; int8 on at least 97 % of samples, its ARM kernels being its own), the accuracy and the deployment gap
against the twin are recorded for the ARM artifact, and no latency, energy or memory figure of the emulated
target reaches a record, a latency table or a gate: the report flags it "emulated" instead, also when the run
is resumed from its recorded jobs. Skips where
qemu-user-static or the downloads are unavailable (:mod:`tests.fixtures.emulated`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgebench.cli import main
from tests.fixtures.emulated import EMULATED_PI, emulated_pi  # noqa: F401 (the fixture)

PLAN = f"""
[plan]
name = "emulated"
seed = 0
[data]
dataset = "digits"
n_test = 64
[[models]]
name = "cnn"
arch = "digits_cnn"
train = {{ epochs = 3, batch_size = 32, lr = 0.003 }}
[[compress]]
method = "int8"
calibration_size = 32
[[attacks]]
name = "fgsm"
eps = [0.1]
[[targets]]
target = "{EMULATED_PI}"
backends = ["onnxruntime"]
[[targets]]
target = "local"
backends = ["onnxruntime"]
[measure]  # a short latency protocol: the emulated target's timings are not used
rounds = 1
profile_runs = 0
warmup = 2
min_runs = 5
min_duration_s = 0.01
[gates]
max_p50_ms = 1000.0
"""


@pytest.mark.slow
def test_a_plan_on_the_emulated_pi_agrees_with_x86_and_reports_no_emulated_latency(
        emulated_pi: Path, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    assert main(["run", str(plan), "--out", str(tmp_path / "runs"), "--workers", "0"]) == 0
    run = next((tmp_path / "runs").iterdir())
    raw = run / "raw"
    for variant, atol, agree in (("cnn", 1e-4, 1.0), ("cnn_int8", None, 0.97)):
        result = json.loads((raw / f"{EMULATED_PI}_onnxruntime_{variant}" / "result.json").read_text())
        assert result["emulated"]["cpu"] == "cortex-a72" and result["environment"]["before"]["machine"] == "aarch64"
        assert result["torch_loaded"] is False
        for s in ("set-0.npy", "set-1.npy"):  # clean and fgsm
            x86 = np.load(raw / f"local_onnxruntime_{variant}" / s)
            arm = np.load(raw / f"{EMULATED_PI}_onnxruntime_{variant}" / s)
            assert (x86.argmax(1) == arm.argmax(1)).mean() >= agree, (variant, s)
            if atol is not None:
                assert np.abs(x86 - arm).max() <= atol, (variant, s, np.abs(x86 - arm).max())
    rows = json.loads((run / "results.json").read_text())
    emu = [r for r in rows if r["target"] == EMULATED_PI]
    x86 = {(r["variant"], r["attack"]): r for r in rows if r["target"] == "local"}
    assert len(emu) == 4 and len(x86) == 4
    for r in emu:
        assert all(r[k] is None for k in ("p50_ms", "mean_ms", "runs", "energy_j", "peak_rss_mb", "load_rss_mb"))
        twin = x86[(r["variant"], r["attack"])]
        assert twin["p50_ms"] is not None
        assert abs(r["clean_acc"] - twin["clean_acc"]) <= (0 if r["variant"] == "base" else 2 / 64)
        if r["attack"] != "none":
            assert r["deployment_gap"] is not None and abs(r["deployment_gap"] - twin["deployment_gap"]) <= 2 / 64
    report = (run / "report.md").read_text()
    assert report.count("**emulated**") == 2 and "not a measurement" in report
    # the latency table's rows of the emulated target carry no figure; the latency gate is checked on x86 only
    # (on the emulated target it would be "not measured", a failure: the run's exit 0 above says it was not)
    latency_rows = [ln for ln in report.splitlines() if ln.startswith("| cnn | ") and "± –" in ln]
    assert len(latency_rows) == 2
    assert "All 1 gate checks passed." in report
    # the x86 vs aarch64 section: each unit's clean accuracy and FGSM success on both, and both deployment gaps
    side = report.split("## Emulated targets: x86 vs ARM")[1].split("\n## ")[0]
    assert len([ln for ln in side.splitlines() if ln.startswith("| cnn")]) == 4 and "| local |" in side
    # run again: every device job is found recorded, and still known as emulated (result.json carries it)
    assert main(["run", str(plan), "--out", str(tmp_path / "runs"), "--workers", "0"]) == 0
    again = json.loads((run / "results.json").read_text())
    assert [r for r in again if r["target"] == EMULATED_PI] == emu
    assert (run / "report.md").read_text().count("**emulated**") == 2
