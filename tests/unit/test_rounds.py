"""Interleaved latency rounds (issue 16, item 6) on real ONNX Runtime sessions of tiny models: the agent's
latency job (order, per-round medians, CV, resume, the settle wait), the plan keys, and the round-median test
that ``edgebench compare`` and the report use instead of Welch's t over per-inference samples."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from edgebench.agent import Job, LatencyProtocol
from edgebench.agent import TestSet as TS  # aliased: pytest would try to collect a class named Test*
from edgebench.agent.protocol import ArtifactRef, sha256_file

ORT = {"intra_op_num_threads": 1, "inter_op_num_threads": 1}
FAST = LatencyProtocol(warmup=3, min_runs=30, min_duration_s=0.03, rounds=3, settle_s=0.0)


def tiny_onnx(path: Path, hidden: int) -> Path:
    """A two-layer MLP on 64 inputs (``hidden`` units, 10 outputs): a real graph ONNX Runtime runs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(hidden)
    w1 = numpy_helper.from_array(rng.standard_normal((64, hidden)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((hidden, 10)).astype(np.float32), "w2")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w1"], ["h"]),
         helper.make_node("Relu", ["h"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 10])], initializer=[w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rounds")
    x = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)
    np.savez(root / "set.npz", x=x)
    a = tiny_onnx(root / "a.onnx", 16)
    (root / "a2.onnx").write_bytes(a.read_bytes())  # the same artifact twice
    return {"a": a, "a2": root / "a2.onnx", "b": tiny_onnx(root / "b.onnx", 512), "set": root / "set.npz"}


def latency_job(tiny: dict[str, Path], out: Path, names: tuple[str, ...] = ("a", "b"), **proto) -> Job:
    return Job(job_id="lat", artifact="", backend="onnxruntime", output_dir=str(out), kind="latency",
               testsets=(TS("clean", str(tiny["set"])),), backend_options=dict(ORT),
               artifacts=tuple(ArtifactRef(n, str(tiny[n]), sha256_file(tiny[n])) for n in names),
               latency=dataclasses.replace(FAST, **proto))


def run_agent(job: Job, tmp_path: Path) -> dict:
    """The job through the agent's command line, as a transport runs it (a fresh process, torch-free)."""
    import subprocess
    import sys

    f = tmp_path / f"{Path(job.output_dir).name}.json"
    f.write_text(job.to_json())
    proc = subprocess.run([sys.executable, "-m", "edgebench.agent", "run", str(f)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads((Path(job.output_dir) / "result.json").read_text())


# ------------------------------------------------------------------------------------------ the agent


def test_latency_job_interleaves_rounds_and_stores_their_medians(tiny: dict[str, Path], tmp_path: Path) -> None:
    from edgebench.metrics.latency import round_cv

    out = tmp_path / "out"
    result = run_agent(latency_job(tiny, out, ("a", "b", "a2")), tmp_path)
    assert result["status"] == "ok" and result["kind"] == "latency" and not result["torch_loaded"]
    # interleaved, the starting artifact rotating: A B C, B C A, C A B
    assert [r["order"] for r in result["rounds"]] == [["a", "b", "a2"], ["b", "a2", "a"], ["a2", "a", "b"]]
    assert result["files"] == ["latency-0.npy", "latency-1.npy", "latency-2.npy", "rounds.json"]
    for i, v in enumerate(result["variants"]):
        samples = np.load(out / v["file"])
        runs = [r["runs"][i] for r in result["rounds"]]
        assert all(n >= 10 for n in runs) and len(samples) == sum(runs) == v["latency"]["runs"]
        # each round's median is the median of that round's own slice of the samples, in time order
        edges = np.cumsum([0, *runs])
        medians = [float(np.median(samples[s:e])) / 1e6 for s, e in zip(edges, edges[1:])]
        assert v["latency"]["round_median_ms"] == pytest.approx(medians)
        assert [r["median_ms"][i] for r in result["rounds"]] == pytest.approx(medians)
        assert v["latency"]["rounds"] == 3 and v["latency"]["round_cv"] == pytest.approx(round_cv(medians))
        assert v["latency"]["p50_ms"] == pytest.approx(np.percentile(samples / 1e6, 50))
        assert v["latency"]["first_ms"] > 0 and v["load_ms"] > 0 and v["artifact_sha256"] == sha256_file(tiny[v["name"]])
    assert all(set(r) >= {"temp_c", "freq_mhz", "freq_cap_mhz", "waited_s", "settled"} for r in result["rounds"])


def test_an_interrupted_latency_job_resumes_after_its_last_round(tiny: dict[str, Path], tmp_path: Path) -> None:
    from edgebench.agent.rounds import run_latency_job

    out = tmp_path / "out"
    job = latency_job(tiny, out, rounds=4)
    first = run_latency_job(job)
    before = [np.load(out / v["file"]) for v in first["variants"]]
    # killed after round 2: rounds.json holds two rounds, the sample files hold more than those, no result.json
    state = json.loads((out / "rounds.json").read_text())
    state["rounds"] = state["rounds"][:2]
    (out / "rounds.json").write_text(json.dumps(state))
    (out / "result.json").unlink()
    again = run_latency_job(job)
    assert again["resumed"] == 2 and len(again["rounds"]) == 4
    assert again["rounds"][:2] == first["rounds"][:2]  # the finished rounds are kept, not measured again
    for i, v in enumerate(again["variants"]):
        kept = sum(r["runs"][i] for r in first["rounds"][:2])
        samples = np.load(out / v["file"])
        np.testing.assert_array_equal(samples[:kept], before[i][:kept])
        assert not np.array_equal(samples[kept:], before[i][kept:])  # rounds 3 and 4 were measured again
        assert len(samples) == sum(r["runs"][i] for r in again["rounds"]) == v["latency"]["runs"]
    # other agent code (another digest): nothing is reused
    other = run_latency_job(dataclasses.replace(job, code="changed"))
    assert other["resumed"] == 0 and other["job"] != again["job"]
    assert run_latency_job(dataclasses.replace(job, code="changed")) == other  # finished: returned as is


def test_a_latency_job_is_not_a_measure_job(tiny: dict[str, Path], tmp_path: Path) -> None:
    from edgebench.agent import run_job
    from edgebench.errors import ConfigError

    job = latency_job(tiny, tmp_path / "out")
    with pytest.raises(ConfigError, match="latency job runs with edgebench.agent.rounds"):
        run_job(job)
    raw = json.loads(job.to_json())
    assert Job.from_json(json.dumps(raw)) == job
    raw["kind"] = "profile"
    with pytest.raises(ConfigError, match="job kind 'profile'"):
        Job.from_json(json.dumps(raw), source="job.json")


def _thermal_tree(root: Path, milli_c: int) -> Path:
    zone = root / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text(f"{milli_c}\n")
    cpu = root / "sys/devices/system/cpu/cpu0/cpufreq"
    cpu.mkdir(parents=True, exist_ok=True)
    for f, khz in (("scaling_cur_freq", 1_200_000), ("scaling_max_freq", 1_500_000), ("cpuinfo_max_freq", 1_800_000)):
        (cpu / f).write_text(f"{khz}\n")
    return zone / "temp"


def test_settle_waits_for_the_temperature_within_its_bound(tmp_path: Path) -> None:
    import threading
    import time

    from edgebench.agent.rounds import settle

    temp = _thermal_tree(tmp_path, 60_000)
    proto = LatencyProtocol(settle_s=0.3, settle_c=2.0, cooldown_s=0.1)
    t0 = time.monotonic()
    hot = settle(proto, 50.0, root=str(tmp_path))  # stays hot: gives up after settle_s, says so
    assert hot["settled"] is False and hot["temp_c"] == 60.0 and 0.4 <= hot["waited_s"] <= time.monotonic() - t0
    assert hot["freq_mhz"] == 1200.0 and hot["freq_cap_mhz"] == 1500.0
    threading.Timer(0.3, lambda: temp.write_text("51500\n")).start()  # cools to within 2 °C of the baseline
    cooled = settle(dataclasses.replace(proto, settle_s=10.0, cooldown_s=0.0), 50.0, root=str(tmp_path))
    assert cooled["settled"] is True and cooled["temp_c"] == 51.5 and 0.25 <= cooled["waited_s"] < 2.0
    unreadable = settle(proto, None, root=str(tmp_path / "nowhere"))  # no sensor: only the cool-down
    assert unreadable["settled"] is None and unreadable["temp_c"] is None and unreadable["waited_s"] < 0.3
