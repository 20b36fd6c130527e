"""``edgebench search`` end to end on digits (tiny model, one attack, ONNX Runtime on this machine): a few trials
give a front, the report's search section and a chosen.toml that ``edgebench run`` runs to the same robust accuracy;
killed with SIGKILL after a trial finished, the same command resumes without redoing a finished trial."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgebench.cli import main
from edgebench.store import Store

REPO = Path(__file__).resolve().parents[2]

PLAN = """
attacks = [{{ name = "fgsm", eps = [0.1], n = 60 }}]
targets = [{{ target = "local", backends = ["onnxruntime"] }}]
models = [{{ name = "cnn", arch = "digits_cnn", train = {{ epochs = 3 }} }}]
measure = {{ warmup = 2, min_runs = 20, min_duration_s = 0.02, rounds = 1 }}
export = {{ openvino = false }}
plan = {{ name = "tiny-search", seed = {seed} }}
data = {{ dataset = "digits" }}
budget = {{ size_mb = 0.03 }}
[search]
trials = 3
population = 2
compress = {{ optional = false, kbit = {{ bits = [2, 4] }} }}  # always within the 30 kB budget
defend = {{ mu_law = {{ mu = [16.0, 255.0] }} }}
"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifact cache for the module: the base model is trained once."""
    return tmp_path_factory.mktemp("search-cache")


@pytest.fixture(autouse=True)
def _shared_cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEBENCH_CACHE", str(cache_dir))


def trials(db: Path) -> list[tuple[int, str, str | None]]:
    """(number, state, datetime_complete) of every trial in a study's SQLite file, read-only."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT number, state, datetime_complete FROM trials ORDER BY number").fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        conn.close()


def test_search_gives_a_front_a_report_section_and_a_chosen_plan_that_runs(tmp_path: Path) -> None:
    plan = tmp_path / "search.toml"
    plan.write_text(PLAN.format(seed=0))
    out = tmp_path / "reports"
    assert main(["search", str(plan), "--out", str(out), "--workers", "0"]) == 0
    run_dir = next(out.iterdir())
    assert [s for _, s, _ in trials(run_dir / "search.db")] == ["COMPLETE"] * 3
    with Store.open(run_dir / "results.sqlite", create=False) as store:
        rows = [s["data"] for s in store.samples(run_dir.name, "search") if s["source"].startswith("trial ")]
        results = store.results(run_dir.name)
    assert len(rows) == 3 and all(r["state"] == "COMPLETE" for r in rows)
    for r in rows:  # each trial's figures are the store's rows of its variant: measured, not estimated
        clean = next(x for x in results if x["variant"] == r["variant"] and x["attack"] == "none")
        adv = next(x for x in results if x["variant"] == r["variant"] and x["attack"] == "fgsm")
        assert r["values"]["p50_ms"] == clean["p50_ms"] > 0 and r["values"]["robust_acc"] == adv["robust_acc"]
        assert r["feasible"] == (r["values"]["size_mb"] <= 0.03)
    report = (run_dir / "report.md").read_text()
    assert "## Search" in report and "**Pareto front" in report and "**Chosen** (trial" in report
    assert (run_dir / "plots" / "search-front.png").stat().st_size > 1000
    chosen = run_dir / "chosen.toml"
    pick = next(r for r in rows if f"trial {r['number']}" in chosen.read_text().splitlines()[0])
    assert pick["feasible"] and pick["values"]["robust_acc"] == max(
        r["values"]["robust_acc"] for r in rows if r["feasible"])
    # the chosen plan is an ordinary plan: edgebench run measures the same variant again, to the same accuracy
    again = tmp_path / "again"
    assert main(["run", str(chosen), "--out", str(again), "--workers", "0"]) == 0
    rerun = json.loads((next(again.iterdir()) / "results.json").read_text())
    adv = next(x for x in rerun if x["variant"] == pick["variant"] and x["attack"] == "fgsm")
    assert adv["robust_acc"] == pick["values"]["robust_acc"]


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_search_resumes_after_sigkill_without_redoing_a_finished_trial(tmp_path: Path) -> None:
    plan = tmp_path / "search.toml"
    plan.write_text(PLAN.format(seed=1))
    out = tmp_path / "reports"
    cmd = ["search", str(plan), "--out", str(out), "--workers", "0", "--run-id", "killed"]
    db = out / "killed" / "search.db"
    proc = subprocess.Popen([sys.executable, "-m", "edgebench.cli", *cmd], cwd=REPO, env=os.environ.copy(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not any(s == "COMPLETE" for _, s, _ in (trials(db) if db.is_file() else [])):
            assert proc.poll() is None, "the search ended before it could be killed"
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    before = trials(db)
    finished = {n: done for n, s, done in before if s == "COMPLETE"}
    assert finished and len(finished) < 3
    cache = Path(os.environ["EDGEBENCH_CACHE"])
    cached = _files(cache)
    assert main(cmd) == 0
    after = trials(db)
    states = [s for _, s, _ in after]
    assert states.count("COMPLETE") == 3  # the trial budget, not 3 more
    assert states.count("FAIL") == sum(s == "RUNNING" for _, s, _ in before) <= 1  # the one killed mid-way
    assert {n: done for n, s, done in after if n in finished} == finished  # finished trials untouched
    now = _files(cache)
    assert all(now.get(f) == t for f, t in cached.items())  # nothing the killed run cached was computed again
    with Store.open(out / "killed" / "results.sqlite", create=False) as store:
        rows = [s["data"] for s in store.samples("killed", "search") if s["source"].startswith("trial ")]
    assert sorted(r["number"] for r in rows if r["state"] == "COMPLETE") == [n for n, s, _ in after if s == "COMPLETE"]
    assert [r["number"] for r in rows if r["state"] == "INTERRUPTED"] == [n for n, s, _ in before if s == "RUNNING"]
    killed = [n for n, s, _ in before if s == "RUNNING"]
    if killed:  # asked again with the parameters it had drawn (none where it was killed before drawing them)
        import optuna

        study = optuna.load_study(study_name="search", storage=f"sqlite:///{db}")
        drawn = study.trials[killed[0]].params
        retry = min((r for r in rows if r["number"] not in finished and r["state"] == "COMPLETE"),
                    key=lambda r: r["number"])
        assert all(retry["params"][k] == v for k, v in drawn.items())
