"""Substitutes trained by querying (Papernot et al. 2017's JBDA, :mod:`edgebench.models.substitute`) end to end on
digits: one queries a compressed variant's ONNX file (``cnn/kbit-4``), one an ONNX file exported elsewhere with a
fixed batch of 4 (through its boundary, as its device jobs run it), and ``held`` is the same MLP trained on the held
images alone (``rounds = 1``: no query). FGSM is crafted on ``sub`` against its own prediction, as CleverHans does,
and transferred to every unit."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebench.agent.protocol import sha256_file
from edgebench.store import Store
from tests.fixtures.runs import module_cache, run_plan_text

MLP = """factory = "edgebench.models.substitute:mlp"
params = { inputs = 64, hidden = [200, 200], classes = 10 }
train = { epochs = 10, batch_size = 128, lr = 1e-3 }"""

PLAN = """
[plan]
name = "substitutes"
[data]
dataset = "digits"
[[models]]
name = "cnn"
arch = "digits_cnn"
train = { epochs = 5 }
[[models]]
name = "user"
onnx = "ONNX"
attack_source = "cnn"
[[models]]
name = "sub"
MLP
substitute = { oracle = "cnn/kbit-4", holdout = 100 }
[[models]]
name = "sub-file"
MLP
substitute = { oracle = "user", holdout = 100 }
[[models]]
name = "held"
MLP
substitute = { oracle = "cnn/kbit-4", holdout = 100, rounds = 1 }
[[compress]]
model = "cnn"
method = "kbit"
bits = [4]
[export]
openvino = false
[[attacks]]
name = "fgsm"
eps = [0.3]
threat = "transfer"
surrogate = "sub"
craft_label = "predicted"
n = 200
[[targets]]
target = "local"
backends = ["onnxruntime"]
[measure]
warmup = 2
min_runs = 10
min_duration_s = 0.01
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Store, Path]:
    from tests.fixtures.models import trained
    from tests.fixtures.userfiles import export_case

    tmp = tmp_path_factory.mktemp("substitutes")
    onnx, keys = export_case(trained("digits_cnn", epochs=5, seed=1), "batch4", tmp, (1, 8, 8))
    assert keys == {}  # a fixed batch needs no key: the file's own input says it
    run_dir = run_plan_text(tmp, PLAN.replace("MLP", MLP).replace("ONNX", str(onnx)))
    store = Store.open(run_dir / "results.sqlite", create=False)
    yield run_dir, store, onnx
    store.close()


def _trained(store: Store, run_id: str) -> dict[str, dict]:
    return {v["model"]: v["info"]["train"][-1] for v in store.variants(run_id)
            if v["variant"] == "base" and "train" in v["info"]}


def _clean(store: Store, run_id: str) -> dict[str, float]:
    return {r["model"] if r["variant"] == "base" else f"{r['model']}/{r['variant']}": r["clean_acc"]
            for r in store.results(run_id) if r["attack"] == "none"}


def test_the_substitute_learns_its_oracle_from_top1_queries(run) -> None:
    run_dir, store, _ = run
    info = _trained(store, run_dir.name)
    sha = {(a["model"], a["variant"]): a["sha256"] for a in store.artifacts(run_dir.name) if a["format"] == "onnx"}
    last = info["sub"]
    assert last["round"] == 6 and last["points"] == 3200  # 100 held images doubled 5 times
    assert last["oracle_queries"] == last["queries"] == 100 * (2 ** 5 - 1)  # every point but the held ones
    assert last["steps"] == [-0.1, -0.1, -0.1, 0.1, 0.1]  # CleverHans 2.1: -λ for the first τ = 3, then +λ
    assert last["oracle"] == "cnn/kbit-4" and last["oracle_sha256"] == sha[("cnn", "kbit-4")]
    assert info["held"]["round"] == 1 and info["held"]["oracle_queries"] == 0
    listed = {v["model"]: (v["method"], v["params"]) for v in store.variants(run_dir.name) if v["variant"] == "base"}
    assert listed["cnn"] == ("none", {}) and listed["sub"] == (
        "jbda substitute", {"oracle": "cnn/kbit-4", "holdout": 100, "rounds": 6, "lmbda": 0.1, "tau": 3})
    report = (run_dir / "report.md").read_text()  # the variants table says how it was made
    assert "| sub | base | jbda substitute | oracle=cnn/kbit-4, holdout=100, rounds=6, lmbda=0.1, tau=3 |" in report
    clean = _clean(store, run_dir.name)
    # 100 labelled images alone make a poor MLP (0.42-0.57 over seeds 0-2); the oracle's labels on 3,100
    # Jacobian-augmented points make it close to the oracle (0.91-0.93)
    assert clean["sub"] > 0.85 and clean["sub"] > clean["held"] + 0.25, clean


def test_a_file_exported_elsewhere_answers_through_its_boundary(run) -> None:
    run_dir, store, onnx = run
    last = _trained(store, run_dir.name)["sub-file"]
    assert last["oracle"] == "user" and last["oracle_sha256"] == sha256_file(onnx)  # the user's file, as it is
    assert last["oracle_queries"] == 3100  # in chunks of exactly 4: the file takes no other batch
    assert _clean(store, run_dir.name)["sub-file"] > 0.85


def test_examples_crafted_on_the_substitute_transfer_to_every_unit(run) -> None:
    run_dir, store, _ = run
    clean = _clean(store, run_dir.name)
    robust = {r["model"] if r["variant"] == "base" else f"{r['model']}/{r['variant']}": r["robust_acc"]
              for r in store.results(run_dir.name) if r["attack"] == "fgsm"}
    assert set(robust) == set(clean)
    for unit in ("cnn", "cnn/kbit-4", "user"):
        assert robust[unit] < clean[unit] - 0.3, (unit, clean[unit], robust[unit])
    assert robust["sub"] < 0.15  # white-box on the substitute itself


def test_a_second_run_finds_every_substitute_cached(run, capsys: pytest.CaptureFixture[str]) -> None:
    from edgebench.cli import main

    run_dir, _, _ = run
    capsys.readouterr()
    with module_cache(run_dir.parent.parent):
        assert main(["run", str(run_dir.parent.parent / "plan.toml"), "--out", str(run_dir.parent),
                     "--dry-run"]) == 0
    assert "nothing to run: everything is cached or measured" in capsys.readouterr().out
