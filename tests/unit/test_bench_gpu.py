"""bench/bench_gpu.py as a user runs it: a subprocess, real torch, real models (tiny sizes on the CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_gpu.py"


def _run(*args: str, cuda_visible: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if cuda_visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def test_without_cuda_it_says_so_in_one_line_and_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = _run("--out", str(out), cuda_visible="")  # hides any GPU, so this holds on a GPU machine too
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench_gpu: no CUDA device"), proc.stdout
    assert not out.exists()  # nothing measured, nothing written


def test_cpu_quick_writes_the_ratios(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = _run("--cpu", "--quick", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert res["environment"]["device"] == "cpu" and res["quick"] is True
    assert res["command"].startswith("python bench/bench_gpu.py") and res["commit"]
    pgd, tr = res["pgd"], res["train"]
    assert set(pgd["cases"]) >= {"floor", "edgebench_pgd"} and pgd["cases"]["floor"]["ratio"] == 1.0
    assert 0.1 < pgd["ratio"] < 10 and pgd["goal"] == 1.05
    assert pgd["passes_per_call"].startswith("Passes(forward=")
    assert set(tr["cases"]) == {"floor", "edgebench_train"} and 0.1 < tr["ratio"] < 10 and tr["goal"] == 1.10
    assert tr["cases"]["edgebench_train"]["images_per_s"] > 0
    assert res["plan"] == {"skipped": "--cpu"}
    assert "## PGD-2, digits_cnn, batch 8, cpu" in proc.stdout
