"""The agent's profiling pass and memory figures on real ONNX Runtime and OpenVINO sessions of a tiny CNN, fp32
and int8 (ONNX Runtime's own ``quantize_static``, QDQ), and the report's "Where the time goes" section on the
profiles they give."""

from __future__ import annotations

import dataclasses
import json
import mmap
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgebench.agent import Job, LatencyProtocol, run_job
from edgebench.agent import TestSet as TS  # aliased: pytest would try to collect a class named Test*
from edgebench.agent import memory as agent_memory
from edgebench.report.costs import cost_sections, why_not_faster
from edgebench.report.data import RunData
from edgebench.report.render import markdown
from edgebench.report.speed import not_faster_lines
from edgebench.report.tables import Bullets, Table, cell_text

SMALL = LatencyProtocol(warmup=5, min_runs=30, min_duration_s=0.02)
RUNS = 20
BACKENDS = {"onnxruntime": {"intra_op_num_threads": 1, "inter_op_num_threads": 1},
            "openvino": {"inference_num_threads": 1, "inference_precision": "f32"}}  # not bf16 (AMX, avx512_bf16)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """digits_cnn (untrained, seeded) as fp32 ONNX, its int8 QDQ twin by ``quantize_static``, and a test set."""
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from edgebench.data import load_dataset
    from edgebench.export.onnx import export_onnx
    from edgebench.models import create_model

    root = tmp_path_factory.mktemp("profile")
    torch.manual_seed(0)
    fp32 = export_onnx(create_model("digits_cnn", input_shape=(1, 8, 8), num_classes=10).eval(), (1, 8, 8),
                       root / "fp32.onnx")
    x = load_dataset("digits").x_test[:32].astype(np.float32)
    np.savez(root / "test.npz", x=x)
    import onnx

    name = onnx.load(str(fp32)).graph.input[0].name

    class Calib(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{name: x[i: i + 1]} for i in range(16)])

        def get_next(self):  # noqa: ANN201 (onnxruntime's interface)
            return next(self.it, None)

    int8 = root / "int8.onnx"
    quantize_static(str(fp32), str(int8), Calib(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return {"fp32": fp32, "int8": int8, "test": root / "test.npz"}


def _job(models: dict[str, Path], which: str, backend: str, out: Path, **changes) -> Job:
    job = Job(job_id="p", artifact=str(models[which]), backend=backend, output_dir=str(out),
              testsets=(TS("digits", str(models["test"])),), backend_options=dict(BACKENDS[backend]), batch_size=16,
              latency=SMALL, profile_runs=RUNS)
    return dataclasses.replace(job, **changes)


def _check_profile(p: dict, backend: str) -> None:
    assert p["backend"] == backend and p["runs"] == RUNS and p["total_ms"] > 0 and p["nodes"] >= 4
    assert sum(p["shares"].values()) == pytest.approx(1.0)
    assert sum(g["share"] for g in p["ops"]) == pytest.approx(1.0)  # a small graph: every group kept
    assert sum(g["ms"] for g in p["ops"]) == pytest.approx(p["total_ms"])
    assert [g["ms"] for g in p["ops"]] == sorted((g["ms"] for g in p["ops"]), reverse=True)


@pytest.fixture(scope="module")
def runs(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict]:
    """One in-process agent job per backend and artifact (the test set's first sample is profiled)."""
    root = tmp_path_factory.mktemp("runs")
    return {(b, w): run_job(_job(models, w, b, root / f"{b}-{w}")) for b in BACKENDS for w in ("fp32", "int8")}


def test_onnxruntime_profile_fp32_and_int8(runs: dict) -> None:
    fp32, int8 = runs[("onnxruntime", "fp32")]["profile"], runs[("onnxruntime", "int8")]["profile"]
    for p in (fp32, int8):
        _check_profile(p, "onnxruntime")
    assert {"Conv", "MaxPool"} <= {g["op"] for g in fp32["ops"]}
    assert all(g["kernel"] == "CPU/float" and g["class"] == "float" for g in fp32["ops"])
    assert fp32["shares"] == {"int8": 0.0, "quant": 0.0, "float": 1.0}
    ops = {g["op"]: g for g in int8["ops"]}
    assert ops["QLinearConv"]["class"] == "int8" and ops["QLinearConv"]["kernel"] == "CPU/uint8"
    assert ops["QLinearConv"]["nodes"] == 2 and "Conv" not in ops  # both convolutions fused to int8
    assert ops["QuantizeLinear"]["class"] == "quant"
    assert int8["shares"]["int8"] > 0.4 and 0 < int8["shares"]["quant"] < 0.5


def test_openvino_profile_fp32_and_int8(runs: dict) -> None:
    fp32, int8 = runs[("openvino", "fp32")], runs[("openvino", "int8")]
    for r in (fp32, int8):
        p = r["profile"]
        _check_profile(p, "openvino")
        # OpenVINO reports running means over the compiled model's inferences: the warm-up inference is taken out,
        # so the kernel time per inference stays near the timed p50 (summing means would give runs x it)
        assert p["total_ms"] < 5 * r["latency"]["p50_ms"] + 0.05, (p["total_ms"], r["latency"]["p50_ms"])
    assert {"Convolution", "MaxPool"} <= {g["op"] for g in fp32["profile"]["ops"]}
    assert all(g["kernel"].endswith("f32") for g in fp32["profile"]["ops"])
    assert fp32["profile"]["shares"]["int8"] == 0.0
    conv = [g for g in int8["profile"]["ops"] if g["op"] == "Convolution"]
    assert conv and all("I8" in g["kernel"] and g["class"] == "int8" for g in conv)
    assert int8["profile"]["shares"]["int8"] > 0.5


def test_profile_is_a_pass_of_its_own(models: dict[str, Path], runs: dict, tmp_path: Path) -> None:
    out = tmp_path / "off"
    off = run_job(_job(models, "fp32", "onnxruntime", out, profile_runs=0))
    assert off["profile"] is None and not (out / "profile.json").exists() and off["latency"]["runs"] >= 30
    out = tmp_path / "on"
    first = run_job(_job(models, "fp32", "onnxruntime", out))
    assert json.loads((out / "profile.json").read_text())["ops"] == first["profile"]["ops"]
    (out / "result.json").unlink()  # a rerun into the same folder resumes the finished profile
    again = run_job(_job(models, "fp32", "onnxruntime", out))
    assert "profile" in again["resumed"] and again["profile"] == first["profile"]


def test_memory_of_loading_and_of_the_latency_pass(models: dict[str, Path], tmp_path: Path) -> None:
    """In a fresh agent process (as on a device): RSS the model's loading added, and the latency pass's peak,
    both over the RSS before loading."""
    job = _job(models, "fp32", "openvino", tmp_path / "out")
    (tmp_path / "job.json").write_text(job.to_json())
    done = subprocess.run([sys.executable, "-m", "edgebench.agent", "run", str(tmp_path / "job.json")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    mem = result["memory"]
    assert mem["peak_method"] == "VmHWM reset before the latency pass"
    assert 1 < mem["load_rss_mb"] < 200  # an OpenVINO compiled model: ~30 MiB measured
    assert mem["load_rss_mb"] - 5 < mem["peak_rss_mb"] < 300  # the model stays resident while it is timed
    assert 20 < mem["baseline_rss_mb"] < result["peak_rss_mb"]  # the raw process-lifetime peak is kept
    assert json.loads((tmp_path / "out" / "latency.json").read_text())["memory"]["peak_rss_mb"] == mem["peak_rss_mb"]


def test_the_process_peak_survives_the_reset_before_the_latency_pass() -> None:
    """The reset that scopes the latency pass's peak erases VmHWM; the process-lifetime figure keeps what came
    before it (here 200 MiB mapped, touched and unmapped before the reset: an anonymous mmap, so no allocator
    can keep it). Where the kernel ignores the reset (some sandboxes), the probe says so instead."""
    probe = agent_memory.MemoryProbe()
    buf = mmap.mmap(-1, 200 * 2**20)
    buf.write(b"\x01" * (200 * 2**20))  # every page touched
    held = agent_memory.status_mb("VmRSS")
    buf.close()
    assert agent_memory.status_mb("VmRSS") < held - 150  # the pages really went back to the kernel
    probe.start_peak()
    if probe.peak()["peak_method"] == "VmHWM reset before the latency pass":
        assert agent_memory.status_mb("VmHWM") < held - 150  # the reset really dropped the high-water mark
    else:
        assert "or ignored" in probe.peak()["peak_method"]
    assert probe.process_peak_mb() > held - 5  # (the kernel folds per-thread RSS counters into VmHWM lazily)


def test_memory_without_proc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(agent_memory, "_CLEAR_REFS", tmp_path / "no" / "clear_refs")  # the reset refused
    probe = agent_memory.MemoryProbe()
    probe.loaded()
    probe.start_peak()
    peak = probe.peak()
    assert peak["peak_method"].startswith("VmHWM since the agent started") and peak["peak_rss_mb"] >= 0
    monkeypatch.setattr(agent_memory, "_STATUS", tmp_path / "status")  # not Linux: no /proc
    probe = agent_memory.MemoryProbe()
    probe.loaded()
    doc = probe.result(probe.peak())
    assert doc["load_rss_mb"] is None and doc["peak_rss_mb"] is None and "not Linux" in doc["memory_note"]


def _run_data(rows: list[tuple[str, float, dict]], variants: list[dict] | None = None) -> RunData:
    key = {"target": "local", "backend": "onnxruntime", "model": "cnn", "attack": "none", "eps": 0.0}
    return RunData(run_id="r", run={}, plan={}, results=[{**key, "variant": v, "p50_ms": p50} for v, p50, _ in rows],
                   variants=variants or [], artifacts=[], environments=[], min_eps=[], flags=[], stages=[],
                   samples=[{"kind": "profile", **key, "variant": v, "source": v, "data": p} for v, _, p in rows])


def test_report_explains_an_unfused_int8_artifact(models: dict[str, Path], runs: dict, tmp_path: Path) -> None:
    """ONNX Runtime without graph optimizations runs the QDQ graph as written: DequantizeLinear then a float
    Conv. The report names that as the reason the int8 artifact is not faster."""
    raw = run_job(_job(models, "int8", "onnxruntime", tmp_path / "raw",
                       backend_options={**BACKENDS["onnxruntime"], "graph_optimization_level": "disable"}))
    unfused = raw["profile"]
    assert {"DequantizeLinear", "Conv"} <= {g["op"] for g in unfused["ops"]} and unfused["shares"]["int8"] == 0
    base, fused = runs[("onnxruntime", "fp32")]["profile"], runs[("onnxruntime", "int8")]["profile"]
    d = _run_data([("base", 0.05, base), ("int8", 0.06, fused), ("int8raw", 0.09, unfused), ("int8b", 0.04, fused)])
    (section,) = cost_sections(d)
    (table,) = [b for b in section.blocks if isinstance(b, Table)]
    cells = {r[1]: [cell_text(c) for c in r] for r in table.rows}
    assert cells["base"][4] == "–" and cells["int8"][4].endswith(" %") and int(cells["int8"][4][:-2]) > 40
    # the top operators, by measured share: QLinearConv and QGemm trade first place run to run on this small net
    assert "QLinearConv (CPU/uint8)" in cells["int8"][6]
    assert not any(isinstance(b, Bullets) for b in section.blocks)  # the reasons go under "Cost and speed"
    why = not_faster_lines(d)
    assert len(why) == 2  # int8b is faster than the base: nothing to explain
    assert why[0].startswith("`cnn/int8` on local/onnxruntime: 1.20× its base's p50; the profile: ")
    top = next(g for g in fused["ops"] if g["class"] == "int8")  # measured: QLinearConv or QGemm, run to run
    assert top["op"] in {"QLinearConv", "QGemm"} and top["kernel"] == "CPU/uint8"
    assert f"of time in int8 kernels (most in {top['op']}, CPU/uint8)" in why[0]
    assert "the int8 kernels are not faster than the float ones here" in why[0]
    assert why[1].startswith("`cnn/int8raw` on local/onnxruntime: 1.80× its base's p50")
    assert "of time in float Conv (CPU/float) and " in why[1] and "DequantizeLinear" in why[1]
    assert "0 % in int8 kernels: the int8 pattern was not fused" in why[1]
    text = markdown("t", "", [section], {})
    assert "## Where the time goes" in text


@pytest.mark.parametrize(("quant", "int8", "cause"), [
    (0.16, 0.77, "the int8 kernels are not faster"),  # a fused int8 graph measured here: most time in int8 kernels
    (0.14, 0.79, "the int8 kernels are not faster"),  # the same graph another time: the line must not flip
    (0.40, 0.45, "the conversions cost more than the int8 arithmetic saves"),
])
def test_why_line_names_the_larger_share(quant: float, int8: float, cause: str) -> None:
    """Conversions are named as the cause only where the int8 kernels do not hold most of the time: a profile that
    puts 15-16 % in QuantizeLinear/DequantizeLinear and 77 % in QLinearConv read either way from one run to the
    next (CI and this machine), though its int8 kernels are what takes the time."""
    rest = 1.0 - quant - int8
    ops = [{"op": "QLinearConv", "kernel": "CPU/uint8", "class": "int8", "share": int8, "ms": int8},
           {"op": "DequantizeLinear", "kernel": "CPU/uint8", "class": "quant", "share": quant / 2, "ms": quant / 2},
           {"op": "QuantizeLinear", "kernel": "CPU/float", "class": "quant", "share": quant / 2, "ms": quant / 2},
           {"op": "Relu", "kernel": "CPU/float", "class": "float", "share": rest, "ms": rest}]
    profile = {"shares": {"int8": int8, "quant": quant, "float": rest}, "ops": ops, "total_ms": 1.0}
    line = why_not_faster(profile, None)
    assert cause in line and f"{int8 * 100:.0f} %" in line and f"{quant * 100:.0f} %" in line


def test_why_line_for_fewer_macs(runs: dict) -> None:
    """A float variant slower than its base with fewer MACs: the operator whose time grew is named."""
    base = runs[("onnxruntime", "fp32")]["profile"]
    slower = json.loads(json.dumps(base))
    conv = next(g for g in slower["ops"] if g["op"] == "Conv")
    conv["ms"] *= 3
    slower["total_ms"] += 2 * conv["ms"] / 3
    line = why_not_faster(slower, base, (1000, 2000))
    assert line.startswith("fewer MACs (1000 vs 2000) but ") and "of time in Conv" in line
    assert "kernel time" in why_not_faster(base, base)  # same kernels: the overhead, not an operator
