"""Energy through the whole pipeline on this machine (which has no readable power sensor of its own): a local
target whose power sensor is an external meter's timestamped log, written by a thread standing in for a USB
power meter's logger. The report gets energy per inference, the store the energy columns, and a protocol
the windows cannot satisfy is flagged, never shown as a plain number."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebench.config import load_plan
from edgebench.runner.pipeline import run_plan
from edgebench.store import Store
from tests.fixtures.devices import meter_logging

pytestmark = pytest.mark.slow

WATTS = 3.2


@pytest.fixture
def meter_log(tmp_path: Path):
    with meter_logging(tmp_path / "meter.csv", WATTS) as log:
        yield log


def _plan(tmp_path: Path, log: Path, *, min_samples: int) -> Path:
    target = tmp_path / "metered.toml"
    target.write_text(f'[target]\nname = "metered"\ntransport = "local"\n[power]\nsensor = "external"\n'
                      f'path = "{log}"\nrate_hz = 50\n[backends.onnxruntime]\nintra_op_num_threads = 1\n'
                      "inter_op_num_threads = 1\n")
    plan = tmp_path / "plan.toml"
    plan.write_text(f'[plan]\nname = "energy"\n[data]\ndataset = "digits"\n[[models]]\nname = "cnn"\n'
                    f'arch = "digits_cnn"\ntrain = {{ epochs = 2 }}\n[[targets]]\ntarget = "{target}"\n'
                    'backends = ["onnxruntime"]\n[measure]\nmin_runs = 20\nmin_duration_s = 0.05\nwarmup = 2\n'
                    f"energy_idle_s = 0.1\nenergy_min_window_s = 0.3\nenergy_windows = 2\n"
                    f"energy_min_samples = {min_samples}\n")
    return plan


def test_energy_per_inference_reaches_the_store_and_the_report(meter_log: Path, tmp_path: Path) -> None:
    summary = run_plan(load_plan(str(_plan(tmp_path, meter_log, min_samples=5))), out_dir=tmp_path / "r")
    assert not summary.failed
    with Store.open(summary.run_dir / "results.sqlite", create=False) as store:
        [row] = store.results(summary.run_id)
        flags = store.flags(summary.run_id)
        [env] = store.environments(summary.run_id)
    energy = env["environment"]["energy"]
    assert row["energy_valid"] == 1 and row["power_w"] == pytest.approx(WATTS, rel=1e-6)
    # joules per inference = power × window / inferences, the median over the two windows
    per = sorted(w["joules"] / w["inferences"] for w in energy["windows"])
    assert row["energy_j"] == pytest.approx(sum(per) / 2) and 0 < row["energy_j"] < WATTS * 0.3
    for w in energy["windows"]:
        assert w["joules"] == pytest.approx(WATTS * (w["t1"] - w["t0"]), rel=1e-3)
    assert not [f for f in flags if f["kind"] == "energy-invalid"]
    report = (summary.run_dir / "report.md").read_text()
    assert f"{row['energy_j'] * 1e3:.3g}" in report and "Energy: sensor external, 2 windows" in report


def test_a_protocol_the_windows_cannot_meet_is_flagged(meter_log: Path, tmp_path: Path) -> None:
    summary = run_plan(load_plan(str(_plan(tmp_path, meter_log, min_samples=100_000))), out_dir=tmp_path / "r")
    with Store.open(summary.run_dir / "results.sqlite", create=False) as store:
        [row] = store.results(summary.run_id)
        flags = [f for f in store.flags(summary.run_id) if f["kind"] == "energy-invalid"]
    assert row["energy_valid"] == 0 and row["energy_j"] > 0  # the numbers are kept, marked invalid
    assert len(flags) == 1 and "fewer than the 100000 required" in flags[0]["message"]
    report = (summary.run_dir / "report.md").read_text()
    assert "(invalid)" in report and "energy-invalid" in report
