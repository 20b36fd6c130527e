"""The local executor end to end on digits: a pool of two worker processes computes the host stages of a sweep
(each stage's store record names the process that computed it), with the same stored results as computing in
place; a worker SIGKILLed mid-stage is retried on a fresh pool and nothing is lost or duplicated."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from edgebench.cli import main

SWEEP = """
[plan]
name = "sweep"
[data]
dataset = "digits"
{models}
[[attacks]]
name = "fgsm"
eps = [0.1]
n = 120
[[targets]]
target = "local"
backends = ["onnxruntime"]
[measure]
warmup = 2
min_runs = 20
min_duration_s = 0.05
"""

MODEL = """
[[models]]
name = "cnn{i}"
arch = "digits_cnn"
train = {{ epochs = {epochs}, batch_size = 32, lr = {lr} }}
"""

#: the columns that must not depend on who computed what (latency does, and is left out)
COLUMNS = "model, variant, attack, eps, source, n, clean_acc, robust_acc, asr, host_asr"


def sweep(tmp_path: Path, n: int = 4, epochs: int = 3) -> Path:
    p = tmp_path / "sweep.toml"
    p.write_text(SWEEP.format(models="".join(MODEL.format(i=i, epochs=epochs, lr=0.002 + 0.001 * i)
                                             for i in range(n))))
    return p


def results(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        return db.execute(f"SELECT {COLUMNS} FROM results ORDER BY model, variant, attack, eps, source").fetchall()


def stages(run_dir: Path) -> dict[str, dict]:
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        return {s: {"status": st, **json.loads(info)} for s, st, info in
                db.execute("SELECT stage, status, info FROM stages")}


def only_run(out: Path) -> Path:
    (run_dir,) = [p.parent for p in out.glob("*/results.sqlite")]
    return run_dir


def test_pool_spreads_host_stages_and_matches_computing_in_place(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    plan = sweep(tmp_path, n=3)  # 3 models for 2 workers: both take work before either runs out
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "cache-pool"))
    assert main(["run", str(plan), "--out", str(tmp_path / "pool"), "--workers", "2"]) == 0
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "cache-inline"))
    assert main(["run", str(plan), "--out", str(tmp_path / "inline"), "--workers", "0"]) == 0
    pool, inline = only_run(tmp_path / "pool"), only_run(tmp_path / "inline")

    rows = results(pool)
    assert len(rows) == 6 and rows == results(inline)  # 3 models × (clean + fgsm), bit for bit the same
    host = {n: s for n, s in stages(pool).items() if n.split("/")[0] in ("model", "craft")}
    assert len(host) == 6 and all(s["status"] == "done" for s in host.values())
    pids = {s["worker"]["pid"] for s in host.values()}
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes, not this one
    assert all(s["worker"]["threads"] == max(1, len(os.sched_getaffinity(0)) // 2) for s in host.values())
    assert not any("worker" in s for s in stages(inline).values())

    # the dry run agrees that the pool's outputs are the cache's: nothing left to compute
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "cache-pool"))
    assert main(["run", str(plan), "--out", str(tmp_path / "pool"), "--workers", "2"]) == 0
    again = stages(pool)
    assert all("worker" not in again[n] or again[n]["worker"] == host[n]["worker"] for n in host)


def _workers_of(proc: subprocess.Popen) -> list[psutil.Process]:
    try:
        kids = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for k in kids:
        try:  # a short-lived child (a tool the run calls) may be gone by now
            cmd = " ".join(k.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "multiprocessing" in cmd and "resource_tracker" not in cmd:
            out.append(k)
    return out


def test_worker_killed_mid_stage_is_retried_and_nothing_is_lost(tmp_path: Path) -> None:
    plan = sweep(tmp_path, n=2, epochs=12)  # long stages, so that the kill lands mid-stage
    out = tmp_path / "reports"
    env = {**os.environ, "EDGEBENCH_CACHE": str(tmp_path / "cache"), "EDGEBENCH_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "edgebench.cli", "run", str(plan), "--out", str(out),
                             "--workers", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, victim = time.monotonic() + 120, None
        while time.monotonic() < deadline and victim is None and proc.poll() is None:
            busy = [w for w in _workers_of(proc) if w.cpu_percent(interval=0.2) > 50]
            if busy:
                time.sleep(1.0)  # well inside its first training stage (each takes several seconds)
                victim = busy[0]
                victim.send_signal(signal.SIGKILL)
        assert victim is not None, "never saw a busy worker process to kill"
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    assert "its worker process died (killed, or out of memory); retrying (attempt 2 of 2)" in stderr
    run_dir = only_run(out)
    st = stages(run_dir)
    assert all(s["status"] == "done" for s in st.values()), st
    assert len(results(run_dir)) == 4  # every row once: none lost, none duplicated
    assert victim.pid not in {s["worker"]["pid"] for s in st.values() if "worker" in s}


def test_sigkill_of_the_run_mid_stage_leaves_no_worker_behind_and_resumes(tmp_path: Path) -> None:
    plan = sweep(tmp_path, n=2, epochs=12)  # long stages, so that the kill lands mid-stage
    out = tmp_path / "reports"
    env = {**os.environ, "EDGEBENCH_CACHE": str(tmp_path / "cache"), "EDGEBENCH_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "edgebench.cli", "run", str(plan), "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            busy = [w for w in _workers_of(proc) if w.cpu_percent(interval=0.2) > 50]
            if busy:
                time.sleep(1.0)
                workers = _workers_of(proc)
                proc.send_signal(signal.SIGKILL)  # the run itself, not its workers
                break
        assert workers, "never saw a busy worker process"
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the workers notice that the run is gone (their parent changes) and exit; none keeps computing for nobody
    gone, alive = psutil.wait_procs(workers, timeout=60)
    assert not alive, [w.pid for w in alive]

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = only_run(out)
    assert all(s["status"] == "done" for s in stages(run_dir).values())
    assert len(results(run_dir)) == 4
