"""Query attacks on the deployed artifact (issue 17, section 1), end to end through the CLI: a plan with only an
ONNX file (exported here from a small trained torch model) and no surrogate, attacked by Square crafted on the
host through an ONNX Runtime session of that file, and inside the agent in a torch-free virtual environment; a
resumed device job does not craft again; a plan with an ONNX model and no attacks benchmarks it."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from edgebench.agent.protocol import sha256_file
from edgebench.cli import main
from tests.fixtures.devices import torch_free_venv

N = 60  # samples attacked
BUDGET = 300  # queries per sample

PLAN = """
[plan]
name = "{name}"
[data]
dataset = "digits"
[[models]]
name = "vendor"
onnx = "{onnx}"
{attacks}
[[targets]]
target = "{target}"
backends = ["onnxruntime"]
[measure]
warmup = 2
min_runs = 10
min_duration_s = 0.01
rounds = 1
profile_runs = 0
"""

SQUARE = f"""
[[attacks]]
name = "square"
eps = [0.1, 0.3]
n = {N}
max_queries = {BUDGET}
batch_size = 64
"""


@pytest.fixture(scope="module")
def vendor_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's ONNX file: a small digits CNN trained here and exported (the plan never sees the torch model)."""
    from edgebench.export.onnx import export_onnx
    from tests.fixtures.models import dataset, trained

    path = tmp_path_factory.mktemp("vendor") / "vendor.onnx"
    export_onnx(trained("digits_cnn", epochs=5), dataset().shape, path)
    return path


def run_plan(tmp_path: Path, onnx: Path, *, attacks: str = SQUARE, target: str = "local",
             name: str = "q") -> tuple[Path, list[dict]]:
    plan = tmp_path / f"{name}.toml"
    plan.write_text(PLAN.format(name=name, onnx=onnx, attacks=attacks, target=target))
    out = tmp_path / "reports"
    assert main(["run", str(plan), "--out", str(out)]) == 0
    (run_dir,) = [p.parent for p in out.glob(f"{name}-*/results.sqlite")]
    return run_dir, json.loads((run_dir / "results.json").read_text())


def check_square_rows(records: list[dict]) -> dict[float, dict]:
    """The clean row and one black-box row per ε, with Square lowering the accuracy and spending queries."""
    clean = next(r for r in records if r["attack"] == "none")
    assert clean["model"] == "vendor" and clean["clean_acc"] > 0.85
    rows = {r["eps"]: r for r in records if r["attack"] == "square"}
    assert sorted(rows) == [0.1, 0.3]
    for r in rows.values():
        assert r["threat"] == "black-box" and r["source"] == "vendor" and r["n"] == N
        assert r["query_budget"] == BUDGET and r["host_asr"] is None  # no torch twin
        assert 1 <= r["queries_median"] <= BUDGET and 1 <= r["queries_mean"] <= BUDGET
    assert rows[0.3]["robust_acc"] < rows[0.3]["clean_acc"] - 0.3  # ε = 0.3 on 8×8 digits: most samples fall
    assert rows[0.3]["robust_acc"] <= rows[0.1]["robust_acc"]
    return rows


def check_set(path: Path, clean_set: Path, eps: float) -> None:
    """An adversarial set within ε (L∞) of the clean samples, in [0, 1], with a query count per sample."""
    with np.load(path) as f, np.load(clean_set) as c:
        x, queries, clean = f["x"], f["queries"], c["x"][:N]
    assert x.shape == clean.shape and np.abs(x - clean).max() <= eps + 1e-6 and x.min() >= 0 and x.max() <= 1
    assert queries.shape == (N,) and 1 <= queries.min() and queries.max() <= BUDGET


def test_square_on_the_onnx_file_crafted_on_the_host(vendor_onnx: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, records = run_plan(tmp_path, vendor_onnx)
    check_square_rows(records)
    # the dry run knows the crafting stage's key (the file's hash, read from its card) and finds it cached
    assert main(["run", str(tmp_path / "q.toml"), "--out", str(tmp_path / "reports"), "--dry-run"]) == 0
    assert "nothing to run: everything is cached or measured" in capsys.readouterr().out
    # the sets were crafted on the very file the device ran, in a session of its runtime, and carry the queries
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        (artifact,) = db.execute("SELECT path FROM artifacts WHERE model='vendor'").fetchone()
        stages = dict(db.execute("SELECT stage, status FROM stages").fetchall())
    assert stages["craft/vendor/square@onnxruntime"] == "done"
    cache = Path(os.environ["EDGEBENCH_CACHE"])
    (entry,) = [p.parent for p in cache.glob("adv/*/attack.json")]
    info = json.loads((entry / "attack.json").read_text())
    assert info["artifact_sha256"] == sha256_file(Path(artifact)) and info["where"] == "host"
    (clean_set,) = cache.glob("testset/*/clean.npz")
    check_set(entry / "eps0.npz", clean_set, 0.1)
    report = (run_dir / "report.md").read_text()
    assert "## Query attacks" in report and "| square | host |" in report


@pytest.mark.slow
def test_square_inside_the_agent_without_torch_and_resume(vendor_onnx: Path, tmp_path: Path) -> None:
    python = torch_free_venv(tmp_path / "venv")
    target = tmp_path / "venv-target.toml"
    target.write_text(f'[target]\nname = "venv"\ntransport = "local"\npython = "{python}"\n'
                      "[backends.onnxruntime]\nintra_op_num_threads = 1\ninter_op_num_threads = 1\n")
    run_dir, records = run_plan(tmp_path, vendor_onnx, attacks=SQUARE + 'where = "device"\n', target=str(target))
    rows = check_square_rows(records)
    (raw,) = run_dir.glob("raw/*/result.json")
    result = json.loads(raw.read_text())
    assert result["torch_loaded"] is False and result["resumed"] == []
    (attack,) = result["attacks"]
    assert attack["max_queries"] == BUDGET and len(attack["files"]) == 2
    (clean_set,) = Path(os.environ["EDGEBENCH_CACHE"]).glob("testset/*/clean.npz")
    check_set(raw.parent / attack["files"][1], clean_set, 0.3)
    report = (run_dir / "report.md").read_text()
    assert "| square | device |" in report
    # the job is killed after its attack, before its result: run again, the agent reuses the finished attack
    stamps = {f: (raw.parent / f).stat().st_mtime_ns for f in attack["files"]}
    raw.unlink()
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        db.execute("UPDATE stages SET status='failed' WHERE stage LIKE 'device/%'")
    _, again = run_plan(tmp_path, vendor_onnx, attacks=SQUARE + 'where = "device"\n', target=str(target))
    resumed = json.loads(raw.read_text())
    assert "attack-0" in resumed["resumed"]
    assert {f: (raw.parent / f).stat().st_mtime_ns for f in attack["files"]} == stamps
    assert {r["eps"]: r["robust_acc"] for r in again if r["attack"] == "square"} == \
        {e: r["robust_acc"] for e, r in rows.items()}


def test_an_onnx_model_with_no_attacks_is_benchmarked(vendor_onnx: Path, tmp_path: Path) -> None:
    _, records = run_plan(tmp_path, vendor_onnx, attacks="", name="bench")
    (row,) = records
    assert row["attack"] == "none" and row["clean_acc"] > 0.85
    assert row["p50_ms"] > 0 and row["runs"] >= 10 and row["peak_rss_mb"] > 0
