"""On a CUDA device (skipped elsewhere, with the reason): edgebench's PGD runs where the model lives and
agrees with its CPU run, and bench/bench_gpu.py measures both parts on the GPU.

Run by ``bench/gpu/run_on_device.sh`` (``pytest -m gpu tests/gpu``) on a lent GPU machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from edgebench.attacks import create_attack
from edgebench.models import create_model

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch sees none)")]
ROOT = Path(__file__).resolve().parents[2]


def test_pgd_on_cuda_matches_the_cpu_run() -> None:
    torch.manual_seed(0)
    model = create_model("resnet50_small", input_shape=(3, 32, 32), num_classes=10).eval()
    x, y = torch.rand(64, 3, 32, 32), torch.randint(0, 10, (64,))
    pgd = create_attack("pgd", steps=5, seed=3)
    cpu = pgd(model, x, y, eps=8 / 255)
    gpu = pgd(model.cuda(), x, y, eps=8 / 255)
    assert gpu.x_adv.dtype == np.float32 and gpu.x_adv.shape == cpu.x_adv.shape
    assert float(gpu.linf.max()) <= 8 / 255 + 1e-6
    # the same CPU-drawn start; sign steps may flip where a gradient is ~0, so compare predictions, not bits
    assert (gpu.pred == cpu.pred).mean() >= 0.9


def test_bench_gpu_quick_measures_on_cuda(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_gpu.py"), "--quick", "--skip-plan",
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert res["environment"]["device"] == "cuda" and res["environment"]["name"]
    assert "error" not in res["pgd"], res["pgd"]
    assert "error" not in res["train"], res["train"]  # needs training to follow the model's device
    assert res["pgd"]["ratio"] > 0 and res["train"]["ratio"] > 0
