"""Plans on CIFAR-10 (the archive the test builds, a subset) and on an image folder, run end to end on the CPU
through the local target: train, export, attack, measure, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from edgebench.cli import main
from tests.integration.test_cifar import make_cifar10, md5

PLAN = """
targets = [{{ target = "local", backends = ["onnxruntime"] }}]
measure = {{ warmup = 2, min_runs = 10, min_duration_s = 0.05 }}
[plan]
name = "{name}"
[data]
{data}
[[models]]
name = "lenet"
arch = "lenet5"
train = {{ epochs = {epochs}, batch_size = 32, lr = 0.003 }}
[[attacks]]
name = "fgsm"
eps = [0.1]
"""


def _run(tmp_path: Path, name: str, data: str, epochs: int) -> tuple[list[dict], str]:
    plan = tmp_path / f"{name}.toml"
    plan.write_text(PLAN.format(name=name, data=data, epochs=epochs))
    out = tmp_path / "reports"
    assert main(["run", str(plan), "--out", str(out)]) == 0
    (run_dir,) = [p.parent for p in out.glob("*/results.sqlite")]
    return json.loads((run_dir / "results.json").read_text()), (run_dir / "report.md").read_text()


def test_cifar10_plan_end_to_end(tmp_path: Path) -> None:
    archive, _ = make_cifar10(tmp_path / "cifar", per_batch=40, n_test=60)
    data = (f'dataset = "cifar10"\nroot = "{archive.parent}"\nmd5 = "{md5(archive)}"\ndownload = false\n'
            "n_train = 150\nn_test = 40")
    recs, report = _run(tmp_path, "c10", data, epochs=1)
    clean = next(r for r in recs if r["attack"] == "none")
    assert clean["n"] == 40 and 0.0 <= clean["clean_acc"] <= 1.0  # random labels: no accuracy to expect
    fgsm = next(r for r in recs if r["attack"] == "fgsm")
    assert fgsm["n"] == 40 and abs(fgsm["deployment_gap"]) <= 0.05
    assert 0.09 < fgsm["mean_linf"] <= 0.1 + 1e-6
    assert "cifar10" in report


def _folder(root: Path, n: int, seed: int) -> None:
    """Two learnable classes: dark and bright noise, half 40x32 RGB PNG and half 20x20 gray JPEG each."""
    rng = np.random.default_rng(seed)
    for name, lo in (("bright", 150), ("dark", 0)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            if i % 2:
                px = rng.integers(lo, lo + 100, (20, 20), dtype=np.uint8)
                Image.fromarray(px, "L").save(root / name / f"{i}.jpg", quality=95)
            else:
                px = rng.integers(lo, lo + 100, (32, 40, 3), dtype=np.uint8)
                Image.fromarray(px, "RGB").save(root / name / f"{i}.png")


def test_imagefolder_plan_end_to_end(tmp_path: Path) -> None:
    _folder(tmp_path / "train", 30, seed=0)
    _folder(tmp_path / "test", 10, seed=1)
    data = (f'dataset = "imagefolder"\ntrain = "{tmp_path / "train"}"\ntest = "{tmp_path / "test"}"\n'
            "size = [24, 24]\nchannels = 3")
    recs, report = _run(tmp_path, "folder", data, epochs=3)
    clean = next(r for r in recs if r["attack"] == "none")
    assert clean["n"] == 20 and clean["clean_acc"] >= 0.9
    fgsm = next(r for r in recs if r["attack"] == "fgsm")
    assert fgsm["n"] == 20 and abs(fgsm["deployment_gap"]) <= 0.05
    assert "imagefolder" in report
