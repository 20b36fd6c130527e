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
from edgebench.report.data import RunData

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
        assert v["latency"]["first_ms"] > 0 and v["load_ms"] > 0
        assert v["artifact_sha256"] == sha256_file(tiny[v["name"]])
    keys = {"temp_c", "freq_mhz", "freq_cap_mhz", "waited_s", "settled", "other_load"}
    assert all(set(r) >= keys for r in result["rounds"])
    assert all(r["other_load"] is None or r["other_load"] >= 0 for r in result["rounds"])


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


def test_an_artifact_that_does_not_load_leaves_the_others_timed(tiny: dict[str, Path], tmp_path: Path) -> None:
    from edgebench.agent.rounds import run_latency_job
    from edgebench.errors import ArtifactError

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    files = {**tiny, "broken": broken}
    result = run_latency_job(latency_job(files, tmp_path / "out", ("a", "broken", "b")))
    assert [v["name"] for v in result["variants"]] == ["a", "b"]
    assert [f["name"] for f in result["failed"]] == ["broken"] and str(broken) in result["failed"][0]["error"]
    assert [r["order"] for r in result["rounds"]] == [["a", "b"], ["b", "a"], ["a", "b"]]
    with pytest.raises(ArtifactError, match="no artifact of the latency job loads"):
        run_latency_job(latency_job(files, tmp_path / "none", ("broken",)))


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


def test_settle_waits_for_the_temperature_and_the_frequency_cap_within_its_bound(tmp_path: Path) -> None:
    import threading
    import time

    from edgebench.agent.envinfo import thermal_state
    from edgebench.agent.rounds import settle

    temp = _thermal_tree(tmp_path, 50_000)
    baseline = thermal_state(str(tmp_path))
    assert baseline == {"temp_c": 50.0, "freq_mhz": 1200.0, "freq_cap_mhz": 1500.0}
    temp.write_text("60000\n")
    proto = LatencyProtocol(settle_s=0.3, settle_c=2.0, cooldown_s=0.1)
    t0 = time.monotonic()
    hot = settle(proto, baseline, root=str(tmp_path))  # stays hot: gives up after settle_s, says so
    assert hot["settled"] is False and hot["temp_c"] == 60.0 and 0.4 <= hot["waited_s"] <= time.monotonic() - t0
    assert hot["freq_mhz"] == 1200.0 and hot["freq_cap_mhz"] == 1500.0
    threading.Timer(0.3, lambda: temp.write_text("51500\n")).start()  # cools to within 2 °C of the baseline
    cooled = settle(dataclasses.replace(proto, settle_s=10.0, cooldown_s=0.0), baseline, root=str(tmp_path))
    assert cooled["settled"] is True and cooled["temp_c"] == 51.5 and 0.25 <= cooled["waited_s"] < 2.0
    # a thermal governor capped the CPU at 1.0 GHz: wait for the cap to be lifted, even when the zone is cool
    cap = tmp_path / "sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq"
    cap.write_text("1000000\n")
    threading.Timer(0.3, lambda: cap.write_text("1500000\n")).start()
    lifted = settle(dataclasses.replace(proto, settle_s=10.0, cooldown_s=0.0), baseline, root=str(tmp_path))
    assert lifted["settled"] is True and lifted["freq_cap_mhz"] == 1500.0 and 0.25 <= lifted["waited_s"] < 2.0
    unreadable = settle(proto, thermal_state(str(tmp_path / "nowhere")), root=str(tmp_path / "nowhere"))
    assert unreadable["settled"] is None and unreadable["temp_c"] is None and unreadable["waited_s"] < 0.3


# ------------------------------------------------------------------------- the test on round medians


def test_welch_over_samples_reads_p0_where_round_medians_read_not_resolved() -> None:
    """The flaw of issue 16: the same lenet5 artifact run twice read p50 0.069 vs 0.055 ms and "p = 0" by
    Welch's t over ~15,000 per-inference samples. Tested on the runs' per-round medians, whose spread shows the
    run-to-run drift, the same numbers are not resolved."""
    from edgebench.metrics.latency import welch_test
    from edgebench.metrics.rounds import RUN_FLOOR, compare_rounds

    assert welch_test(0.069, 0.008, 15_000, 0.055, 0.008, 15_000)["p_value"] < 1e-200  # the old verdict
    run_a = [0.069, 0.081, 0.058, 0.074, 0.063]  # one run's rounds drift with the machine: CV ~13 %
    run_b = [0.055, 0.066, 0.049, 0.060, 0.071]
    c = compare_rounds(run_a, run_b, paired=False, floor=RUN_FLOOR)
    assert c["ratio"] == pytest.approx(0.060 / 0.069) and not c["resolved"]
    assert c["cv_a"] == pytest.approx(np.std(run_a, ddof=1) / np.mean(run_a))
    assert c["spread"] == pytest.approx(2 * max(c["cv_a"], c["cv_b"])) and abs(c["ratio"] - 1) < c["spread"]


@pytest.mark.parametrize(("a", "b", "paired", "floor", "resolved", "why"), [
    ([1.00, 1.01, 0.99, 1.00], [0.50, 0.51, 0.49, 0.50], True, 0.0, True, ""),  # 2× faster, tight rounds
    ([1.00, 1.01, 0.99, 1.00], [0.50, 0.51, 0.49, 0.50], False, 0.10, True, ""),
    ([1.00, 1.01, 0.99, 1.00], [0.96, 0.97, 0.95, 0.96], True, 0.0, True, ""),  # 4 % with CV ~0.8 %: resolved
    ([1.00, 1.01, 0.99, 1.00], [0.96, 0.97, 0.95, 0.96], False, 0.10, False, "inside the spread (10.0 %)"),
    # the rounds drift together (per-round ratios ~0.95, tight) but each unit's CV is ~14 %: inside the spread
    ([1.00, 1.20, 0.85, 1.05], [0.95, 1.14, 0.81, 0.99], True, 0.0, False, "inside the spread"),
    ([1.00, 1.20, 0.85, 1.05], [0.95, 1.30, 0.70, 1.00], True, 0.0, False, "interval over rounds holds 1"),
    ([1.00, 1.01, 0.99, 1.00], [1.02, 0.98, 1.00, 1.01], True, 0.0, False, "interval over rounds holds 1"),
    ([1.00, 1.01], [0.50, 0.51], True, 0.0, False, "fewer than 3 rounds"),
    ([], [0.50, 0.51, 0.52], False, 0.0, False, "no per-round medians"),
    # CI's two runs of one 25-µs artifact (tight rounds, 2× apart): under the across-run floor of 0.05 ms ...
    ([0.049, 0.051, 0.048, 0.050, 0.049], [0.025, 0.026, 0.025, 0.024, 0.025], False, 0.10, False,
     "|B − A| = 0.024 ms is under the run-to-run floor of 0.05 ms"),
    # ... which a difference of whole milliseconds clears, and which rounds inside one run (paired) never meet
    ([4.9, 5.1, 4.8, 5.0, 4.9], [2.5, 2.6, 2.5, 2.4, 2.5], False, 0.10, True, ""),
    ([0.049, 0.051, 0.048, 0.050, 0.049], [0.025, 0.026, 0.025, 0.024, 0.025], True, 0.0, True, ""),
])
def test_compare_rounds_resolves_only_outside_the_spread(a: list[float], b: list[float], paired: bool, floor: float,
                                                        resolved: bool, why: str) -> None:
    from edgebench.metrics.rounds import RUN_FLOOR_MS, compare_rounds, verdict_text

    c = compare_rounds(a, b, paired=paired, floor=floor, floor_ms=0.0 if paired else RUN_FLOOR_MS)
    assert c["resolved"] is resolved and why in c.get("why", "")
    if resolved:
        assert c["lo"] <= c["ratio"] <= c["hi"] and (c["hi"] < 1 or c["lo"] > 1)
        assert verdict_text(c).startswith(f"{c['ratio']:.3f}× [")
    else:
        assert verdict_text(c).startswith("not resolved (")
    if paired and len(a) == len(b) and a:
        assert c["ratio"] == pytest.approx(float(np.median(np.asarray(b) / np.asarray(a))))


def test_a_busy_neighbour_leaves_a_difference_between_runs_unresolved() -> None:
    """Two runs whose rounds are tight but 2× apart: resolved when the device was idle, not when other processes
    kept a CPU busy during one of them (that moves a whole run; one run per side cannot tell)."""
    from edgebench.metrics.rounds import compare_rounds

    a, b = [1.00, 1.01, 0.99, 1.00], [0.50, 0.51, 0.49, 0.50]
    assert compare_rounds(a, b, paired=False, floor=0.1, other_load=([0.0] * 4, [0.1, 0.0, 0.2, 0.0]))["resolved"]
    assert compare_rounds(a, b, paired=False, floor=0.1, other_load=([None] * 4, []))["resolved"]  # not Linux
    busy = compare_rounds(a, b, paired=False, floor=0.1, other_load=([0.0] * 4, [1.2, 0.9, 1.1, 1.0]))
    assert not busy["resolved"] and busy["why"] == "other processes kept 1.1 CPUs in B busy during the rounds"


def _stored_run(path: Path, run_id: str, latency: dict[str, dict], target: str = "local") -> RunData:
    """A store holding one clean result row per unit with its latency summary and its rounds (as scoring writes
    them) from real latency-job results."""
    from edgebench.store import Store

    with Store.open(path) as store:
        store.begin_run(run_id, plan_name="lat", plan_hash="0" * 12, plan={}, version="test")
        rows, samples = [], []
        for variant, lat in latency.items():
            where = {"model": "m", "variant": variant, "backend": "onnxruntime", "target": target, "attack": "none",
                     "eps": 0.0, "source": "m" if variant == "base" else f"m/{variant}"}
            rows.append({**where, "threat": "clean", "n": 4, "clean_acc": 1.0,
                         **{k: lat[k] for k in ("mean_ms", "std_ms", "p50_ms", "runs", "rounds", "round_cv")}})
            samples.append({"kind": "rounds", **where, "data": {"median_ms": lat["round_median_ms"],
                                                                 "other_load": lat.get("other_load", [])}})
        store.put_results(run_id, rows)
        store.put_samples(run_id, samples)
        store.finish_run(run_id, "done")
        return RunData.load(store, run_id)


def test_compare_reads_the_same_artifact_run_twice_as_not_resolved(tiny: dict[str, Path], tmp_path: Path) -> None:
    """Two real runs of the same artifact (two latency jobs, one after the other): ``edgebench compare`` reads
    their latency difference as not resolved, whatever the two p50s happen to be."""
    from edgebench.agent.rounds import run_latency_job
    from edgebench.report.compare import compare_sections
    from edgebench.report.render import tables_of

    runs = []
    for k in range(2):
        result = run_latency_job(latency_job(tiny, tmp_path / f"run{k}", ("a",), rounds=5))
        lat = {**result["variants"][0]["latency"], "other_load": [r["other_load"] for r in result["rounds"]]}
        runs.append(_stored_run(tmp_path / f"{k}.sqlite", f"run{k}", {"base": lat}))
    lat = next(t for t in tables_of(compare_sections(*runs)) if t.name == "compare_latency")
    (row,) = lat.rows
    assert row[7] == row[8] == 5 and row[9] is not None and row[10] is not None
    assert row[11].kind == "muted" and row[11].text.startswith("not resolved (")
    assert row[4].value == pytest.approx(runs[1].clean[0]["p50_ms"] / runs[0].clean[0]["p50_ms"])


def test_compare_without_rounds_and_a_bad_floor(tmp_path: Path) -> None:
    from edgebench.errors import ConfigError
    from edgebench.report.compare import compare_sections
    from edgebench.report.render import tables_of

    old = {"mean_ms": 0.07, "std_ms": 0.01, "p50_ms": 0.069, "runs": 15_000, "rounds": None, "round_cv": None,
           "round_median_ms": []}  # a run of protocol 2: one block, no rounds
    a = _stored_run(tmp_path / "a.sqlite", "a", {"base": old})
    b = _stored_run(tmp_path / "b.sqlite", "b", {"base": {**old, "mean_ms": 0.056, "p50_ms": 0.055}})
    lat = next(t for t in tables_of(compare_sections(a, b)) if t.name == "compare_latency")
    assert lat.rows[0][11].text == "not resolved (no per-round medians)"
    with pytest.raises(ConfigError, match="compare --floor: 1.5 is not a fraction"):
        compare_sections(a, b, floor=1.5)


def test_report_section_marks_variants_inside_the_spread(tmp_path: Path) -> None:
    from edgebench.report.render import tables_of
    from edgebench.report.rounds import rounds_section

    def lat(medians: list[float]) -> dict:
        return {"mean_ms": medians[0], "std_ms": 0.0, "p50_ms": float(np.median(medians)), "runs": 100,
                "rounds": len(medians), "round_cv": None, "round_median_ms": medians}

    d = _stored_run(tmp_path / "r.sqlite", "r", {
        "base": lat([1.00, 1.01, 0.99, 1.00]), "fast": lat([0.50, 0.51, 0.49, 0.50]),
        "same": lat([1.01, 0.99, 1.00, 1.00]), "noisy": lat([0.80, 1.30, 0.70, 1.20])})
    section = rounds_section(d)
    (table,) = tables_of([section])
    rows = {r[0]: r for r in table.rows}
    assert list(rows) == ["m", "m/fast", "m/noisy", "m/same"]
    assert rows["m"][2] == 4 and rows["m"][3].value == pytest.approx(100 * np.std([1, 1.01, .99, 1], ddof=1))
    assert rows["m"][4] is None and rows["m"][5].text == "temperature not readable"
    assert rows["m/fast"][4].kind == "plain" and rows["m/fast"][4].text.startswith("0.500× [")
    assert rows["m/same"][4].text.startswith("not resolved (")
    assert rows["m/noisy"][4].text.startswith("not resolved (")
    assert rounds_section(_stored_run(tmp_path / "none.sqlite", "n", {})) is None
