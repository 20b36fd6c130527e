"""The agent's attack pass (job protocol 4): a query attack crafted on the loaded artifact through the runtime,
each ε's set and its per-sample queries written and then run like any set, reused by a resumed job, and a
request the job cannot serve refused in one line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from edgebench.agent import Job, LatencyProtocol, run_job
from edgebench.agent import TestSet as TS  # aliased: pytest would try to collect a class named Test*
from edgebench.agent.protocol import AttackRequest, sha256_file
from edgebench.errors import DataError

N, BUDGET = 30, 100


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """digits_cnn (5 epochs) exported to ONNX, the digits test split as ``.npz``, and its labels."""
    from edgebench.export.onnx import export_onnx
    from tests.fixtures.models import dataset, trained

    root = tmp_path_factory.mktemp("attack")
    ds = dataset()
    model = export_onnx(trained("digits_cnn", epochs=5), ds.shape, root / "m.onnx")
    testset = root / "test.npz"
    np.savez(testset, x=ds.x_test, y=ds.y_test)
    return model, testset, ds.y_test


def job(artifact: tuple[Path, Path, np.ndarray], out: Path, n: int = N) -> Job:
    model, testset, y = artifact
    request = AttackRequest(name="square", params={"max_queries": BUDGET, "seed": 0}, eps=(0.1, 0.3),
                            y=tuple(int(v) for v in y[:n]), names=("sq@0.1", "sq@0.3"), batch_size=32)
    return Job(job_id="a1", artifact=str(model), backend="onnxruntime", output_dir=str(out),
               testsets=(TS("clean", str(testset)),), batch_size=64, artifact_sha256=sha256_file(model),
               latency=LatencyProtocol(enabled=False), profile_runs=0, attacks=(request,))


def test_the_agent_crafts_then_runs_the_sets_and_a_resumed_job_reuses_them(artifact, tmp_path: Path) -> None:
    j = job(artifact, tmp_path / "out")
    assert Job.from_json(j.to_json()) == j  # the request travels as JSON
    result = run_job(j)
    (rec,) = result["attacks"]
    assert rec["names"] == ["sq@0.1", "sq@0.3"] and rec["max_queries"] == BUDGET and rec["n"] == N
    sets = {s["name"]: s for s in result["testsets"]}
    assert list(sets) == ["clean", "sq@0.1", "sq@0.3"] and set(rec["files"]) <= set(result["files"])
    y = artifact[2][:N]
    for k, name in enumerate(rec["names"]):
        with np.load(tmp_path / "out" / rec["files"][k]) as f:
            pred, queries, success = f["pred"], f["queries"], f["success"]
        logits = np.load(tmp_path / "out" / sets[name]["file"])
        assert logits.shape == (N, 10) and np.array_equal(logits.argmax(1), pred)  # the accuracy pass agrees
        assert np.array_equal(success, pred != y) and queries.min() >= 1 and queries.max() <= BUDGET
        assert rec["success_rate"][k] == pytest.approx(success.mean())
    assert rec["success_rate"][1] > 0.5 and rec["queries"] == sum(
        int(np.load(tmp_path / "out" / f)["queries"].sum()) for f in rec["files"])
    # killed before its result: the same job again reuses the attack instead of spending its queries again
    stamps = [(tmp_path / "out" / f).stat().st_mtime_ns for f in rec["files"]]
    (tmp_path / "out" / "result.json").unlink()
    again = run_job(j)
    assert "attack-0" in again["resumed"] and again["attacks"] == result["attacks"]
    assert [(tmp_path / "out" / f).stat().st_mtime_ns for f in rec["files"]] == stamps
    # another request (another budget) is another job: crafted anew
    other = dataclasses.replace(j, attacks=(dataclasses.replace(j.attacks[0], params={"max_queries": 50}),))
    assert "attack-0" not in run_job(other)["resumed"]


def test_a_request_for_more_samples_than_the_set_holds_is_one_line(artifact, tmp_path: Path) -> None:
    j = job(artifact, tmp_path / "out")
    n = len(artifact[2]) + 1
    j = dataclasses.replace(j, attacks=(dataclasses.replace(j.attacks[0], y=(0,) * n),))
    with pytest.raises(DataError, match=f"attack 0 \\(square\\) asks for {n} samples of test set 0") as info:
        run_job(j)
    assert "\n" not in str(info.value)


def test_sets_rounded_to_8_bit_are_predicted_again(artifact) -> None:
    """``round_8bit``: the inputs an 8-bit pipeline would deliver, and the session's predictions on those."""
    from edgebench.agent.attack import adversarial_sets, top1
    from edgebench.blackbox import run_query_attack
    from edgebench.runtime import create_backend

    model, testset, y = artifact
    session = create_backend("onnxruntime")
    session.load(model)
    with np.load(testset) as f:
        x = f["x"][:N]
    result = run_query_attack("square", {"max_queries": 50}, session.predict, x, y[:N], [0.1], batch_size=16)
    (plain,) = adversarial_sets(result, x, y[:N], None, session.predict)
    (rounded,) = adversarial_sets(result, x, y[:N], None, session.predict, round_8bit=True, batch_size=7)
    assert np.array_equal(plain["pred"], result.pred[0]) and np.array_equal(plain["queries"], result.queries[0])
    assert np.allclose(rounded["x"] * 255, np.round(rounded["x"] * 255), atol=1e-4)
    assert np.array_equal(rounded["pred"], top1(session.predict, rounded["x"], 64))
    assert np.array_equal(rounded["success"], rounded["pred"] != y[:N])
    assert rounded["linf"].max() <= 0.1 + 0.5 / 255 + 1e-6
