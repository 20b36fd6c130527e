"""End to end through the CLI on digits: run, re-run (resume), SIGKILL mid-run then resume, the user's own
torch model and ONNX file, and bad input giving one line and a non-zero exit."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgebench.cli import main
from edgebench.store.sqlite import SCHEMA_VERSION

REPO = Path(__file__).resolve().parents[2]

PLAN = """
[plan]
name = "e2e"
[data]
dataset = "digits"
[[models]]
name = "cnn"
arch = "digits_cnn"
train = {{ epochs = 4, batch_size = 32, lr = 0.003 }}
{extra_models}
[[attacks]]
name = "fgsm"
eps = [0.05, 0.2]
[[attacks]]
name = "pgd"
eps = [0.05, 0.2]
steps = 5
n = 100
[[targets]]
target = "local"
backends = ["onnxruntime"]
[measure]
warmup = 5
min_runs = 50
min_duration_s = {duration}
"""


def write_plan(tmp_path: Path, *, extra_models: str = "", duration: float = 0.1, name: str = "plan.toml") -> Path:
    p = tmp_path / name
    p.write_text(PLAN.format(extra_models=extra_models, duration=duration))
    return p


def records(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "results.json").read_text())


def only_run(out: Path) -> Path:
    (run_dir,) = [p.parent for p in out.glob("*/results.sqlite")]
    return run_dir


def test_run_then_rerun_resumes(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                capsys: pytest.CaptureFixture[str]) -> None:
    plan, out = write_plan(tmp_path), tmp_path / "reports"
    # the dry run on an empty cache: the graph's size, and everything to compute
    assert main(["run", str(plan), "--out", str(out), "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "7 stages, 10 dependencies; 0 cached, 0 already measured in this run, 6 to run, 0 after stages" in dry
    assert ("to run: model/cnn, testset/clean, craft/cnn/fgsm, craft/cnn/pgd, latency/local/onnxruntime, "
            "device/local/onnxruntime/cnn") in dry
    assert not out.exists() or not list(out.glob("*/results.sqlite"))  # nothing ran
    assert main(["run", str(plan), "--out", str(out)]) == 0
    run_dir = only_run(out)
    capsys.readouterr()
    assert main(["run", str(plan), "--out", str(out), "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "4 cached, 2 already measured in this run, 0 to run" in dry and "nothing to run" in dry
    recs = records(run_dir)
    assert len(recs) == 1 + 2 + 2 + 2  # clean, fgsm and pgd at 2 ε, and the worst case over the two (suite) at each
    assert sorted(r["eps"] for r in recs if r["attack"] == "suite") == sorted(r["eps"] for r in recs
                                                                             if r["attack"] == "pgd")
    clean = next(r for r in recs if r["attack"] == "none")
    assert clean["n"] == 360 and clean["clean_acc"] >= 0.9
    assert clean["clean_acc_lo"] < clean["clean_acc"] < clean["clean_acc_hi"]
    assert 0 < clean["p50_ms"] <= clean["p99_ms"] <= clean["max_ms"] and clean["runs"] >= 50
    for attack in ("fgsm", "pgd"):
        rows = sorted((r for r in recs if r["attack"] == attack), key=lambda r: r["eps"])
        assert rows[0]["asr"] < rows[1]["asr"], rows
        assert rows[1]["asr"] > 0.5
        for r in rows:
            assert r["threat"] == "white-box" and r["n"] == (100 if attack == "pgd" else 360)
            assert abs(r["deployment_gap"]) <= 0.01  # ONNX Runtime agrees with the torch twin
            assert 0.95 * r["eps"] < r["mean_linf"] <= r["eps"] + 1e-6  # clipping to [0, 1] can cut it
            assert r["robust_acc"] < r["clean_acc"]
    report = (run_dir / "report.md").read_text()
    assert "## Robustness" in report and "| cnn | base | onnx |" in report and "| yes |" in report
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        before = db.execute("SELECT finished FROM stages WHERE stage LIKE 'device/%'").fetchall()

    # the same plan again: nothing is measured again, nothing duplicated
    caplog.clear()
    with caplog.at_level("INFO", logger="edgebench"):
        assert main(["run", str(plan), "--out", str(out)]) == 0
    assert "already measured in this run" in caplog.text and "(cached)" in caplog.text
    assert records(run_dir) == recs
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        assert db.execute("SELECT finished FROM stages WHERE stage LIKE 'device/%'").fetchall() == before
        assert db.execute("SELECT count(*) FROM results WHERE attack != 'suite'").fetchone() == (5,)

    # re-render from the store alone
    (run_dir / "report.md").unlink()
    assert main(["report", run_dir.name, "--out", str(out)]) == 0
    assert (run_dir / "report.md").read_text() == report
    assert (run_dir / "report.html").is_file() and (run_dir / "csv" / "robustness_local_onnxruntime.csv").is_file()

    # gates: the same plan with a [gates] table is the same run (gates change no measurement); a broken gate is
    # exit 3 after the report is written, which lists it; a kept one passes
    gated = tmp_path / "gated.toml"
    gated.write_text(plan.read_text() + '[gates]\nunits = "all"\nmax_p50_ms = 1e-6\nmin_robust_acc = { fgsm = 0.0 }\n')
    capsys.readouterr()
    assert main(["run", str(gated), "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "gate failed: cnn on local/onnxruntime: max_p50_ms — p50 latency in ms" in err and "≤ 1e-06" in err
    assert "min_robust_acc" not in err and "1 gate check(s) failed" in err
    gated_report = (run_dir / "report.md").read_text()
    assert "## Gates" in gated_report and "1 of 2 gate checks failed" in gated_report
    assert "| cnn | local | onnxruntime | min_robust_acc.fgsm |" in gated_report
    gated.write_text(plan.read_text() + '[gates]\nunits = "all"\nmax_p50_ms = 1e6\n')
    assert main(["run", str(gated), "--out", str(out)]) == 0
    assert "All 1 gate checks passed." in (run_dir / "report.md").read_text()

    # a second run of the plan measures the device anew: the same samples give the same accuracy (McNemar
    # p = 1 on identical predictions), and the latency comparison is there
    assert main(["run", str(plan), "--out", str(out), "--run-id", "second"]) == 0
    capsys.readouterr()
    assert main(["compare", run_dir.name, "second", "--out", str(out)]) == 0
    compared = (out / "compare" / f"{run_dir.name}--second" / "compare.md").read_text()
    rows = [ln for ln in compared.splitlines() if ln.startswith("| cnn |")]
    clean_row = next(ln for ln in rows if "| clean_acc |" in ln)
    assert "| +0.00 | McNemar | 1 n.s. |" in clean_row
    attack_rows = [ln for ln in rows if "suite" not in ln]  # the worst case over the suite is compared as well
    assert sum("| robust_acc |" in ln and "| McNemar |" in ln for ln in attack_rows) == 4
    assert sum("| asr |" in ln and "| z (unpaired) |" in ln for ln in attack_rows) == 4
    assert sum("| robust_acc |" in ln for ln in rows if "suite" in ln) == 2
    assert "## Latency and energy" in compared
    # the same artifact measured in two runs: its latency difference is inside the runs' spread (issue 16)
    lat_row = next(ln for ln in compared.splitlines() if ln.startswith("| cnn | local/onnxruntime |"))
    assert "| 5 | 5 |" in lat_row and "| not resolved (" in lat_row
    assert main(["runs", "--out", str(out)]) == 0
    listing = capsys.readouterr().out
    assert run_dir.name in listing and "second" in listing and listing.count(" done ") == 2


def test_sigkill_mid_run_then_resume(tmp_path: Path) -> None:
    # a latency job of 8 s of timed runs: the kill lands ~1 s into it; the resume times it again in full
    plan, out = write_plan(tmp_path, duration=8.0), tmp_path / "reports"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "edgebench.cli", "run", str(plan), "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("*/raw/*/job.json")):  # the device job has started
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before its device job started"
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)  # the host and its agent, mid device job
    proc.wait()
    run_dir = only_run(out)
    assert not list(run_dir.glob("raw/*/result.json"))  # killed before the device job finished
    # the interrupted run renders: what exists, marked incomplete, with the missing measurement named
    assert main(["report", run_dir.name, "--out", str(out), "--format", "md"]) == 0
    partial = (run_dir / "report.md").read_text()
    assert "**This run is incomplete (status `running` — still running, or stopped before it finished).**" in partial
    assert "cnn on local/onnxruntime:" in partial.split("## What did not finish")[1]
    # resume the *same* run: same plan, same run id; host stages come from the cache
    cmd2 = [sys.executable, "-m", "edgebench.cli", "run", str(plan), "--out", str(out)]
    p2 = subprocess.run(cmd2, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert p2.returncode == 0, p2.stderr
    assert "host clean acc" in p2.stderr and "(cached)" in p2.stderr
    assert "craft/cnn/pgd" in p2.stderr and p2.stderr.count("(cached)") >= 3
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        assert db.execute("SELECT count(*) FROM results WHERE attack != 'suite'").fetchone() == (5,)
        assert db.execute("SELECT count(*) FROM (SELECT DISTINCT model, attack, eps FROM results "
                          "WHERE attack != 'suite')").fetchone() == (5,)
        assert db.execute("SELECT status FROM runs").fetchall() == [("done",)]
    assert len([r for r in records(run_dir) if r["attack"] != "suite"]) == 5


def test_user_torch_model_and_onnx_transfer_victim(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    assert main(["run", str(write_plan(tmp_path)), "--out", str(out)]) == 0
    card = json.loads(next((only_run(out) / "raw").glob("*/result.json")).read_text())
    assert card["status"] == "ok"
    with sqlite3.connect(only_run(out) / "results.sqlite") as db:
        (onnx_path,) = db.execute("SELECT path FROM artifacts").fetchone()
    victim = tmp_path / "vendor.onnx"
    victim.write_bytes(Path(onnx_path).read_bytes())
    extra = f"""
[[models]]
name = "mine"
factory = "tests.fixtures.usermodels:tiny"
params = {{ width = 4 }}
train = {{ epochs = 3 }}
[[models]]
name = "vendor"
onnx = "{victim}"
attack_source = "mine"
"""
    out2 = tmp_path / "reports2"
    assert main(["run", str(write_plan(tmp_path, extra_models=extra, name="p2.toml")), "--out", str(out2)]) == 0
    recs = records(only_run(out2))
    vendor = [r for r in recs if r["model"] == "vendor"]
    assert len([r for r in vendor if r["attack"] != "suite"]) == 5
    clean = next(r for r in vendor if r["attack"] == "none")
    assert clean["clean_acc"] >= 0.9  # the same network as cnn, run from the user's file
    for r in (r for r in vendor if r["attack"] not in ("none", "suite")):
        assert r["threat"] == "transfer" and r["source"] == "mine" and r["deployment_gap"] is None
    mine = [r for r in recs if r["model"] == "mine" and r["attack"] not in ("none", "suite")]
    assert all(r["threat"] == "white-box" and r["host_asr"] is not None for r in mine)


def _run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(args)
    return code, capsys.readouterr().err


def test_bad_input_is_one_line_and_keeps_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports"
    # unknown name in the plan: exit 2, one line, no traceback
    bad = tmp_path / "bad.toml"
    bad.write_text(write_plan(tmp_path).read_text().replace('name = "pgd"', 'name = "pgdd"'))
    code, err = _run_cli(["run", str(bad), "--out", str(out)], capsys)
    assert code == 2 and "unknown attack 'pgdd'. Did you mean 'pgd'" in err
    assert err.count("\n") == 1 and "Traceback" not in err and not out.exists()

    # a missing and a corrupt ONNX model: their stages fail with one line naming the file; the rest is stored
    garbage = tmp_path / "corrupt.onnx"
    garbage.write_bytes(b"\x08\x07not an onnx model at all")
    extra = f"""
[[models]]
name = "missing"
onnx = "{tmp_path / 'nope.onnx'}"
attack_source = "cnn"
[[models]]
name = "corrupt"
onnx = "{garbage}"
attack_source = "cnn"
"""
    code, err = _run_cli(["run", str(write_plan(tmp_path, extra_models=extra)), "--out", str(out)], capsys)
    assert code == 1
    assert "nope.onnx not found" in err
    assert "corrupt.onnx" in err and "onnxruntime cannot load this model" in err
    assert "Traceback" not in err
    recs = records(only_run(out))
    assert {r["model"] for r in recs} == {"cnn"} and len([r for r in recs if r["attack"] != "suite"]) == 5
    report = (only_run(out) / "report.md").read_text()
    assert "## What did not finish" in report and "`model/corrupt`: failed" in report

    # the user's test set: NaN, labels out of range, and a shape the model does not take
    x = np.random.default_rng(0).random((20, 1, 8, 8), dtype=np.float32)
    y = np.arange(20) % 10
    cases = {
        "nan": (np.where(np.arange(x.size).reshape(x.shape) == 3, np.nan, x), y, "NaN"),
        "labels": (x, y + 5, "label"),
        "shape": (np.random.default_rng(0).random((20, 1, 10, 10), dtype=np.float32), y, "shape"),
    }
    with sqlite3.connect(only_run(out) / "results.sqlite") as db:
        (onnx_path,) = db.execute("SELECT path FROM artifacts WHERE model='cnn'").fetchone()
    for name, (xx, yy, expected) in cases.items():
        npz = tmp_path / f"{name}.npz"
        np.savez(npz, x=xx, y=yy)
        plan = tmp_path / f"{name}.toml"
        plan.write_text(f"""
[data]
dataset = "npz"
test = "{npz}"
train = "{npz if name != 'shape' else tmp_path / 'labels_ok.npz'}"
classes = ["0","1","2","3","4","5","6","7","8","9"]
[[models]]
name = "vendor"
onnx = "{onnx_path}"
attack_source = "vendor_src"
[[models]]
name = "vendor_src"
arch = "digits_cnn"
train = {{ epochs = 1 }}
[[targets]]
target = "local"
""")
        np.savez(tmp_path / "labels_ok.npz", x=cases["shape"][0], y=y)
        code, err = _run_cli(["run", str(plan), "--out", str(tmp_path / f"r-{name}")], capsys)
        assert code != 0, name
        assert (expected in err and str(npz) in err) or (
            name == "shape" and "has shape ?×1×8×8, the data's samples are 1×10×10" in err), (name, err)
        assert "Traceback" not in err


def test_data_that_does_not_load_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """MNIST with no files and no download: the data stage fails in one line, everything after it is skipped,
    and the run ends there (no traceback from scoring, which once reached for the missing data), with the run
    and its stages stored."""
    empty = tmp_path / "no-mnist"
    empty.mkdir()
    plan = write_plan(tmp_path).read_text().replace(
        'dataset = "digits"', f'dataset = "mnist"\nroot = "{empty}"\ndownload = false')
    (tmp_path / "mnist.toml").write_text(plan)
    out = tmp_path / "reports"
    code, err = _run_cli(["run", str(tmp_path / "mnist.toml"), "--out", str(out)], capsys)
    assert code == 1, err
    assert "Traceback" not in err and "AssertionError" not in err
    assert "data failed: " in err and "mnist: missing" in err and str(empty) in err
    run_dir = only_run(out)
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        stages = dict(db.execute("SELECT stage, status FROM stages").fetchall())
        assert db.execute("SELECT status FROM runs").fetchone()[0] == "failed"
    assert stages["data"] == "failed"
    assert stages["model/cnn"] == "skipped" and stages["device/local/onnxruntime/cnn"] == "skipped"
    assert records(run_dir) == [] and (run_dir / "report.md").is_file()
