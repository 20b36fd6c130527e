"""Fleets: identical devices listed under one name share each test set, one shard per member, and their
outputs merge into the rows one device would have given. Two target files for this host form the fleet (they
name the same physical device, so their shards run one after the other); the plan also measures the single
``local`` target, whose rows the fleet's must equal."""

from __future__ import annotations

import json
import sqlite3
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from edgebench.cli import main
from edgebench.config import load_plan
from edgebench.errors import ConfigError

PLAN = """
[plan]
name = "fleet"
[data]
dataset = "digits"
[[models]]
name = "cnn"
arch = "digits_cnn"
train = { epochs = 3, batch_size = 32, lr = 0.003 }
[[attacks]]
name = "fgsm"
eps = [0.1]
n = 120
[[targets]]
target = "pair"
fleet = ["local-a", "local-b"]
backends = ["onnxruntime"]
[[targets]]
target = "local"
backends = ["onnxruntime"]
[measure]
warmup = 2
min_runs = 30
min_duration_s = 0.05
"""

COLUMNS = "model, variant, attack, eps, source, n, clean_acc, robust_acc, asr, host_asr"


@pytest.fixture()
def targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "targets"
    folder.mkdir()
    local = resources.files("edgebench.targets").joinpath("builtin", "local.toml").read_text()
    for name in ("local-a", "local-b"):
        (folder / f"{name}.toml").write_text(local.replace('name = "local"', f'name = "{name}"'))
    monkeypatch.setenv("EDGEBENCH_TARGETS", str(folder))
    return folder


def test_fleet_shards_merge_into_the_single_device_rows_and_resume(tmp_path: Path, targets: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    out = tmp_path / "reports"
    assert main(["run", str(plan), "--out", str(out)]) == 0
    (run_dir,) = [p.parent for p in out.glob("*/results.sqlite")]
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        rows = {t: db.execute(f"SELECT {COLUMNS} FROM results WHERE target = ? ORDER BY attack", (t,)).fetchall()
                for t in ("pair", "local")}
        runs = dict(db.execute("SELECT target, runs FROM results WHERE attack = 'none'").fetchall())
        env = dict(db.execute("SELECT target, environment FROM environments").fetchall())
        st = {s: (status, json.loads(info)) for s, status, info in db.execute("SELECT stage, status, info FROM stages")}
    assert len(rows["pair"]) == 2 and rows["pair"] == rows["local"]  # clean + fgsm, the same numbers
    assert rows["pair"][0][5] == 120 and rows["pair"][1][5] == 360  # fgsm, clean: every sample, once

    shards = [f"device/pair/onnxruntime/cnn#{i}of2" for i in (1, 2)]
    assert all(st[s][0] == "done" for s in [*shards, "device/pair/onnxruntime/cnn"])
    assert "2 devices, 360 samples per set merged" in st["device/pair/onnxruntime/cnn"][1]["note"]
    # each member ran its half: the first 180 clean samples and 60 adversarial ones, the rest on the other
    merged = json.loads((run_dir / "raw" / "pair_onnxruntime_cnn" / "result.json").read_text())
    assert [m["target"] for m in merged["fleet"]] == ["local-a", "local-b"]
    assert [m["n"] for m in merged["fleet"]] == [180, 180]
    halves = [np.load(run_dir / "raw" / f"pair_onnxruntime_cnn_{i}of2" / "set-1.npy") for i in (1, 2)]
    assert [len(h) for h in halves] == [60, 60]
    whole = np.load(run_dir / "raw" / "pair_onnxruntime_cnn" / "set-1.npy")
    np.testing.assert_array_equal(whole, np.concatenate(halves))
    # the latency samples of both members are pooled; the environment names both
    assert runs["pair"] == sum(m["latency"]["runs"] for m in merged["fleet"])
    assert sorted(json.loads(env["pair"])["fleet"]) == ["local-a", "local-b"]

    # the same command again: both shards are already measured, nothing is run again
    assert main(["run", str(plan), "--out", str(out)]) == 0
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        again = db.execute(f"SELECT {COLUMNS} FROM results WHERE target = 'pair' ORDER BY attack").fetchall()
        notes = [json.loads(i)["note"] for s, i in db.execute("SELECT stage, info FROM stages") if s in shards]
    assert again == rows["pair"]
    assert all("already measured" in n or "p50" in n for n in notes)


@pytest.mark.parametrize("fleet, message", [
    ('["local-a"]', "list two or more different target names"),
    ('["local-a", "local-a"]', "list two or more different target names"),
    ('["local-a", "odd"]', "members must be identical devices, but 'odd'"),
    ('["local-a", "nowhere"]', "unknown target 'nowhere'"),
])
def test_bad_fleets_are_one_line(tmp_path: Path, targets: Path, fleet: str, message: str) -> None:
    local = (targets / "local-a.toml").read_text()
    (targets / "odd.toml").write_text(local.replace('name = "local-a"', 'name = "odd"')
                                      .replace("intra_op_num_threads = 2", "intra_op_num_threads = 1"))
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.replace('fleet = ["local-a", "local-b"]', f"fleet = {fleet}"))
    with pytest.raises(ConfigError, match=message) as exc:
        load_plan(plan)
    assert str(plan) in str(exc.value) and "\n" not in str(exc.value)


def test_a_target_listed_twice_is_refused(tmp_path: Path, targets: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.replace('target = "pair"', 'target = "local"').replace(
        'fleet = ["local-a", "local-b"]\n', ""))
    with pytest.raises(ConfigError, match="'local' is listed twice"):
        load_plan(plan)
