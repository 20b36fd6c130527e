"""Defenses through the pipeline, chained with compression both ways: adversarially trained then quantized
(seed 003's "Adv. (Q)") and quantized then inhibited; each defended variant is exported, parity-checked,
attacked white-box on its own twin and measured on the device like any variant."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebench.cli import main
from edgebench.store import Store

pytestmark = pytest.mark.slow

PLAN = """
[plan]
name = "defended"
[data]
dataset = "digits"
[[models]]
name = "cnn"
arch = "digits_cnn"
train = { epochs = 6 }
[[compress]]
method = "kbit"
bits = 3
[[compress]]
method = "kbit"
label = "q"
bits = 3
on = "adv"
[[defend]]
method = "adversarial_training"
label = "adv"
mode = "pgd"
eps = 0.2
steps = 5
epochs = 3
lr = 1e-3
[[defend]]
method = "gradient_inhibition"
label = "gi"
tau = 0.5
on = "kbit"
[[attacks]]
name = "pgd"
eps = [0.1]
steps = 10
n = 200
[[targets]]
target = "local"
backends = ["onnxruntime"]
[measure]
warmup = 2
min_runs = 10
min_duration_s = 0.01
"""


def test_defended_and_chained_variants_run_end_to_end(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    assert main(["run", str(plan), "--out", str(tmp_path / "r")]) == 0
    run_dir = next((tmp_path / "r").iterdir())
    with Store.open(run_dir / "results.sqlite", create=False) as store:
        rows = {(r["variant"], r["attack"]): r for r in store.results(run_dir.name)}
        variants = {v["variant"]: v for v in store.variants(run_dir.name)}
        arts = store.artifacts(run_dir.name)
    assert set(variants) == {"base", "kbit", "adv", "adv+q", "kbit+gi"}
    assert variants["adv+q"]["method"] == "adv → kbit" and variants["kbit+gi"]["method"] == "kbit → gradient_inhibition"
    assert all(a["parity_ok"] == 1 for a in arts)
    robust = {v: rows[(v, "pgd")]["robust_acc"] for v in variants}
    clean = {v: rows[(v, "none")]["clean_acc"] for v in variants}
    # adversarial training makes the model more robust to PGD than the undefended one (white-box, own twin)
    assert robust["adv"] > robust["base"] + 0.1, robust
    # the chained variant is the 3-bit quantization of the adversarially trained model, not of the base
    assert variants["adv+q"]["info"]["bits"] == 3 and clean["adv+q"] > 0.5, clean
    assert rows[("adv+q", "pgd")]["source"] == "cnn/adv+q"
    # each variant against the base on the same samples (poster 004's "max δ", with McNemar's p)
    adv = rows[("adv", "pgd")]
    assert adv["robust_delta"] == pytest.approx(robust["adv"] - robust["base"]) and adv["robust_delta_p"] < 1e-3
    assert rows[("base", "pgd")]["robust_delta"] is None
    report = (run_dir / "report.md").read_text()
    section = report.split("## Robustness against the base")[1].split("\n## ")[0]
    row = next(ln for ln in section.splitlines() if ln.startswith("| cnn | pgd |"))
    top = max((v for v in variants if v != "base"), key=lambda v: abs(rows[(v, "pgd")]["robust_delta"]))
    assert f"({top}, p=" in row and "each its own (white-box)" in row


def test_an_interrupted_adversarial_training_resumes_and_the_dry_run_says_from_where(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C in epoch 2 of 3: the run stops (exit 130) with epoch 1 checkpointed; ``--dry-run`` names the stage and
    the checkpoint it resumes from; the same command then finishes from epoch 1 and the checkpoints are gone."""
    from tests.unit.test_defenses import interrupt_in_epoch

    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.split("[[compress]]")[0] + "[[defend]]\nmethod = \"adversarial_training\"\nlabel = \"adv\"\n"
                    "mode = \"pgd\"\neps = 0.2\nsteps = 3\nepochs = 3\n[[targets]]\ntarget = \"local\"\n"
                    "backends = [\"onnxruntime\"]\n")
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "cache"))
    args = ["run", str(plan), "--out", str(tmp_path / "r"), "--workers", "0"]
    undo = interrupt_in_epoch(monkeypatch, 2)
    assert main(args) == 130
    undo()
    (checkpoint,) = (tmp_path / "cache" / "work").glob("*/*/epoch-0001.pt")
    (checkpoint.parent / "epoch-0002.tmp").write_bytes(b"")  # a write the cut stopped half way
    capsys.readouterr()
    assert main([*args, "--dry-run"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("resumes from a checkpoint: "))
    assert line.startswith("resumes from a checkpoint: compress/cnn/adv (adversarial_training-")
    assert line.endswith("/epoch-0001.pt)")
    assert main(args) == 0
    run_dir = next((tmp_path / "r").iterdir())
    with Store.open(run_dir / "results.sqlite", create=False) as store:
        adv = next(v for v in store.variants(run_dir.name) if v["variant"] == "adv")
    assert adv["info"]["resumed_from_epoch"] == 1 and adv["info"]["epochs_done"] == 3
    assert not list((tmp_path / "cache" / "work").glob("*/*/*.pt"))
    capsys.readouterr()
    assert main([*args, "--dry-run"]) == 0
    assert "resumes from a checkpoint" not in capsys.readouterr().out
