"""Training seeds end to end (issue 20 §2): a tiny plan with ``seeds = [0, 1]`` (digits, one epoch, one 4-bit
variant, FGSM, ONNX Runtime on this host) trains two different models per unit, measures both on the same test
samples, and reports the mean over seeds with its t interval; each seed's stages are those of the one-seed plan of
that seed (same keys: existing caches serve them)."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sqlite3
from pathlib import Path

import pytest

from edgebench.cli import main
from edgebench.config import load_plan
from edgebench.metrics.seeds import seed_interval
from edgebench.runner.cache import Cache
from edgebench.runner.pipeline import Pipeline
from tests.fixtures.seeds import seeds_plan


def _onnx_sha(key: str) -> str:
    (onnx,) = Cache().path("export", key).glob("*.onnx")
    return hashlib.sha256(onnx.read_bytes()).hexdigest()


def test_two_seeds_train_two_models_on_the_same_samples_and_report_the_mean(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan, out = seeds_plan(tmp_path, "seeds = [0, 1]", "two.toml"), tmp_path / "reports"
    assert main(["run", str(plan), "--out", str(out), "--workers", "0"]) == 0
    (run_dir,) = [p.parent for p in out.glob("*/results.sqlite")]
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        done = dict(db.execute("SELECT stage, status FROM stages").fetchall())
        rows = [dict(zip([c[0] for c in q.description], r)) for q in [db.execute(
            "SELECT seed, model, variant, attack, n, clean_acc, robust_acc FROM results")] for r in q.fetchall()]
        clean_sets = db.execute("SELECT seed, variant, data FROM samples WHERE kind='correct' AND attack='none'"
                                ).fetchall()
    stages = {r["stage"]: r["key"] for r in Pipeline(load_plan(plan), out_dir=out).dry_run()}
    assert set(stages) == set(done) and set(done.values()) == {"done"}
    # one shared data and clean-set stage; every other stage once per seed
    assert "testset/clean" in stages and "model/cnn" not in stages
    assert {"model/cnn@seed0", "model/cnn@seed1", "compress/cnn/kbit@seed0", "compress/cnn/kbit@seed1",
            "craft/cnn/fgsm@seed1", "device/local/onnxruntime/cnn/kbit@seed1"} <= set(stages)
    # two seeds, two different trained models (keys and ONNX files)
    assert stages["model/cnn@seed0"] != stages["model/cnn@seed1"]
    assert _onnx_sha(stages["model/cnn@seed0"]) != _onnx_sha(stages["model/cnn@seed1"])
    # the same test samples for both seeds: one set hash, one sample count
    assert {r["seed"] for r in rows} == {0, 1} and len(rows) == 2 * 4  # (base, kbit) × (clean, fgsm) per seed
    assert {r["n"] for r in rows if r["attack"] == "none"} == {120}
    assert len({json.loads(data)["set_sha256"] for _, _, data in clean_sets}) == 1 and len(clean_sets) == 4

    # the report: per seed, the mean and its t interval, and the paper table on that interval
    report = (run_dir / "report.md").read_text()
    assert "## Training seeds" in report and "Against the base, paired by seed" in report
    clean = sorted((r for r in rows if (r["variant"], r["attack"]) == ("base", "none")), key=lambda r: r["seed"])
    stat = seed_interval([r["clean_acc"] for r in clean])
    assert stat is not None and stat.lo is not None and stat.hi is not None
    per_seed = " / ".join(f"{r['clean_acc']:.3f}" for r in clean)
    line = f"| cnn | local/onnxruntime | none | 0 |  | clean_acc | {per_seed} | {stat.mean:.3f} " \
           f"[{max(0.0, stat.lo):.3f}, {min(1.0, stat.hi):.3f}] |"
    assert line in report, report
    assert re.search(r"\| test \| cnn \| clean_acc \| 0\.5000 \| [0-9.]+ \[[0-9.]+, [0-9.]+\] \(mean of 2 seeds, "
                     r"t interval; n=120 each\)", report)
    assert len(json.loads((run_dir / "results.json").read_text())) == 8  # every seed's rows, with their seed
    # the summary files for docs/results/ carry every seed's rows, and the rebuild shows their mean
    folder = tmp_path / "results"
    assert main(["report", run_dir.name, "--out", str(out), "--results", str(folder)]) == 0
    with (folder / "clean.csv").open() as f:
        base_rows = [r for r in csv.DictReader(f) if r["variant"] == "base"]
    assert sorted((int(r["seed"]), float(r["clean_acc"])) for r in base_rows) == [
        (r["seed"], pytest.approx(r["clean_acc"], abs=1e-6)) for r in clean]

    # resumed: nothing to compute or measure again
    capsys.readouterr()
    assert main(["run", str(plan), "--out", str(out), "--dry-run"]) == 0
    assert "nothing to run" in capsys.readouterr().out

    # each seed's stages are those of the one-seed plan of that seed with the first seed's test subset: same keys
    for seed in (0, 1):
        one_plan = seeds_plan(tmp_path, f"seed = {seed}", f"one{seed}.toml")
        one_plan.write_text(one_plan.read_text().replace('dataset = "digits"', 'dataset = "digits"\nseed = 0'))
        one = Pipeline(load_plan(one_plan), out_dir=out)
        keys = {r["stage"]: r for r in one.dry_run()}
        assert keys["model/cnn"]["key"] == stages[f"model/cnn@seed{seed}"]
        assert keys["model/cnn"]["status"] == "cached" and keys["craft/cnn/fgsm"]["status"] == "cached"

