"""The device-side agent on a really trained and exported model: the accuracy and latency passes, the
torch-free guarantee (in a child process), and the errors a user can cause."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgebench.agent import PROTOCOL_VERSION, Job, LatencyProtocol, run_job
from edgebench.agent import TestSet as TS  # aliased: pytest would try to collect a class named Test*
from edgebench.agent.protocol import sha256_file
from edgebench.errors import ArtifactError, ConfigError, DataError, DeviceError, UnknownNameError
from edgebench.export.card import ModelCard, card_path
from tests.fixtures.imports import assert_fresh_imports_clean
from tests.fixtures.signals import sigint_as_a_terminal_leaves_it

SMALL = LatencyProtocol(warmup=5, min_runs=50, min_duration_s=0.05)
ORT = {"intra_op_num_threads": 1, "inter_op_num_threads": 1}


@dataclasses.dataclass(frozen=True)
class Exported:
    root: Path
    artifact: Path
    testset: Path
    x: np.ndarray
    y: np.ndarray
    torch_logits: np.ndarray


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """digits_cnn trained for 5 epochs, exported to ONNX with its card, and the digits test split as .npz."""
    from edgebench.data import load_dataset
    from edgebench.export.onnx import export_onnx
    from edgebench.models.train import predict_logits
    from tests.fixtures.models import trained

    root = tmp_path_factory.mktemp("agent")
    ds = load_dataset("digits")
    model = trained("digits_cnn", epochs=5, seed=0)
    artifact = export_onnx(model, (1, 8, 8), root / "digits_cnn.onnx")
    ModelCard(name="digits_cnn", format="onnx", input_shape=(1, 8, 8), num_classes=10,
              classes=ds.classes, sha256=sha256_file(artifact), size_bytes=artifact.stat().st_size).save(artifact)
    testset = root / "digits_test.npz"
    np.savez(testset, x=ds.x_test, y=ds.y_test)
    logits = predict_logits(model, ds.x_test)
    assert float(np.mean(logits.argmax(1) == ds.y_test)) > 0.9
    return Exported(root, artifact, testset, ds.x_test, ds.y_test, logits)


def _job(e: Exported, out: Path, **changes) -> Job:
    job = Job(job_id="t1", artifact=str(e.artifact), backend="onnxruntime", output_dir=str(out),
              testsets=(TS("digits", str(e.testset)),), backend_options=dict(ORT), batch_size=64,
              latency=SMALL, artifact_sha256=sha256_file(e.artifact))
    return dataclasses.replace(job, **changes)


def _agent(job_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgebench.agent", "run", str(job_file)],
                          capture_output=True, text=True, timeout=120, check=False)


# ---------------------------------------------------------------------------------------------- success


def test_run_job_in_process(exported: Exported, tmp_path: Path) -> None:
    e = exported
    job = _job(e, tmp_path / "out")
    result = run_job(job)
    n = len(e.x)

    assert result["status"] == "ok" and result["protocol"] == PROTOCOL_VERSION and result["job_id"] == "t1"
    assert result["artifact_sha256"] == sha256_file(e.artifact) == job.artifact_sha256
    assert result["backend"]["backend"] == "onnxruntime"
    assert result["backend"]["providers"] == ["CPUExecutionProvider"]
    assert result["backend"]["intra_op_num_threads"] == 1
    assert result["batch_size"] == 64 and result["load_ms"] > 0
    assert result["testsets"] == [{"name": "digits", "n": n, "file": "set-0.npy",
                                   "seconds": result["testsets"][0]["seconds"]}]
    assert result["files"] == ["set-0.npy", "latency_ns.npy"] and result["resumed"] == []
    assert result["energy"] == {"sensor": "none", "absent": result["energy"]["absent"]}
    assert "no power sensor" in result["energy"]["absent"]
    assert {"before", "after"} <= set(result["environment"])

    # result.json on disk is the returned document
    assert json.loads((tmp_path / "out" / "result.json").read_text()) == json.loads(json.dumps(result))

    logits = np.load(tmp_path / "out" / "set-0.npy")
    latency_ns = np.load(tmp_path / "out" / "latency_ns.npy")
    assert logits.shape == (n, 10) and logits.dtype == np.float32
    agree = float(np.mean(logits.argmax(1) == e.torch_logits.argmax(1)))
    assert agree >= 0.99
    acc_device = float(np.mean(logits.argmax(1) == e.y))
    acc_torch = float(np.mean(e.torch_logits.argmax(1) == e.y))
    assert abs(acc_device - acc_torch) <= 1 - agree
    assert acc_device > 0.9
    assert float(np.max(np.abs(logits - e.torch_logits))) < 1e-4

    lat = result["latency"]
    assert lat["runs"] >= 50 and lat["runs"] == len(latency_ns)
    assert latency_ns.dtype == np.int64 and np.all(latency_ns > 0)
    assert lat["duration_s"] >= 0.05
    assert lat["min_ms"] <= lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert lat["p50_ms"] == pytest.approx(np.percentile(latency_ns / 1e6, 50))
    assert lat["max_ms"] == pytest.approx(latency_ns.max() / 1e6)
    assert lat["first_ms"] > 0
    assert lat["throughput_per_s"] == pytest.approx(lat["runs"] / lat["duration_s"])
    assert lat["output_max_abs_diff"] < 1e-4
    assert lat["sample"] == "digits" and lat["protocol"]["min_runs"] == 50 and lat["protocol"]["warmup"] == 5


def test_run_job_two_testsets_and_latency_off(exported: Exported, tmp_path: Path) -> None:
    e = exported
    small = tmp_path / "small.npz"
    np.savez(small, x=e.x[:7])  # y is optional for the agent
    job = _job(e, tmp_path / "out", latency=LatencyProtocol(enabled=False),
               testsets=(TS("digits", str(e.testset)), TS("small", str(small))))
    result = run_job(job)
    assert result["latency"] is None
    assert [(s["name"], s["n"], s["file"]) for s in result["testsets"]] == [
        ("digits", len(e.x), "set-0.npy"), ("small", 7, "set-1.npy")]
    assert result["files"] == ["set-0.npy", "set-1.npy"] and result["energy"] is None
    assert not (tmp_path / "out" / "latency_ns.npy").exists()
    first, second = np.load(tmp_path / "out" / "set-0.npy"), np.load(tmp_path / "out" / "set-1.npy")
    np.testing.assert_allclose(second, first[:7], atol=1e-5)


def test_job_json_round_trip(exported: Exported, tmp_path: Path) -> None:
    job = _job(exported, tmp_path / "out")
    again = Job.from_json(job.to_json())
    assert again == job
    assert again.backend_options == ORT and again.latency == SMALL and again.testsets == job.testsets


def test_agent_subprocess_never_loads_torch(exported: Exported, tmp_path: Path) -> None:
    job = _job(exported, tmp_path / "out")
    job_file = tmp_path / "job.json"
    job_file.write_text(job.to_json())
    proc = _agent(job_file)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["status"] == "ok"
    assert result["torch_loaded"] is False
    assert result["testsets"][0]["n"] == len(exported.x)
    assert result["latency"]["runs"] >= 50
    logits = np.load(tmp_path / "out" / "set-0.npy")
    assert logits.shape == (len(exported.x), 10)
    assert len(np.load(tmp_path / "out" / "latency_ns.npy")) == result["latency"]["runs"]
    np.testing.assert_allclose(logits, exported.torch_logits, atol=1e-4)


def test_device_side_modules_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import edgebench\n"
        "assert 'torch' not in sys.modules, 'import edgebench loaded torch'\n"
        "import edgebench.agent, edgebench.runtime.onnxruntime, edgebench.runtime.null, edgebench.agent.envinfo\n"
        "import edgebench.runtime.openvino\n"
        "import edgebench.metrics.latency, edgebench.metrics.robustness, edgebench.export.card, edgebench.errors\n"
        "from edgebench.agent.envinfo import environment\n"
        "from edgebench.runtime import BACKENDS, create_backend\n"
        "env = environment()\n"
        "assert env['cpu_count'] and env['numpy']\n"
        "assert {'onnxruntime', 'openvino', 'null'} <= set(BACKENDS.names())\n"
        "create_backend('onnxruntime')\n"
        "create_backend('openvino', inference_num_threads=1).info()\n"
    )
    assert_fresh_imports_clean(code, ("torch",))


# -------------------------------------------------------------------------------------------- bad input


def test_wrong_sample_shape(exported: Exported, tmp_path: Path) -> None:
    bad = tmp_path / "wrong_shape.npz"
    np.savez(bad, x=np.zeros((5, 1, 7, 7), np.float32), y=np.zeros(5, np.int64))
    job = _job(exported, tmp_path / "out", testsets=(TS("wrong", str(bad)),))
    with pytest.raises(DataError, match=r"shape \(1, 7, 7\), but the model .* takes \(1, 8, 8\)") as info:
        run_job(job)
    assert str(bad) in str(info.value)

    # the same through the command line: exit 3, result.json says what went wrong
    job_file = tmp_path / "job.json"
    job_file.write_text(dataclasses.replace(job, output_dir=str(tmp_path / "sub")).to_json())
    proc = _agent(job_file)
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    assert proc.stderr.startswith("edgebench-agent: ") and str(bad) in proc.stderr
    result = json.loads((tmp_path / "sub" / "result.json").read_text())
    assert result["status"] == "error" and result["error_type"] == "DataError"
    assert str(bad) in result["error"] and result["job_id"] == "t1"
    assert not list((tmp_path / "sub").glob("*.npy"))


def test_wrong_rank(exported: Exported, tmp_path: Path) -> None:
    bad = tmp_path / "flat.npz"
    np.savez(bad, x=np.zeros((5, 64), np.float32))
    with pytest.raises(DataError, match="shape") as info:
        run_job(_job(exported, tmp_path / "out", testsets=(TS("flat", str(bad)),)))
    assert str(bad) in str(info.value)


def test_nan_in_testset(exported: Exported, tmp_path: Path) -> None:
    x = exported.x[:10].copy()
    x[3, 0, 2, 2] = np.nan
    x[4, 0, 0, 0] = np.inf
    bad = tmp_path / "nan.npz"
    np.savez(bad, x=x, y=exported.y[:10])
    with pytest.raises(DataError, match="sample 3 holds NaN/inf") as info:
        run_job(_job(exported, tmp_path / "out", testsets=(TS("nan", str(bad)),)))
    assert str(bad) in str(info.value)


def test_testset_missing_or_without_x(exported: Exported, tmp_path: Path) -> None:
    missing = tmp_path / "nope.npz"
    with pytest.raises(DataError, match="not found") as info:
        run_job(_job(exported, tmp_path / "out", testsets=(TS("nope", str(missing)),)))
    assert str(missing) in str(info.value)
    no_x = tmp_path / "no_x.npz"
    np.savez(no_x, images=exported.x[:3])
    with pytest.raises(DataError, match="no array 'x'") as info:
        run_job(_job(exported, tmp_path / "out", testsets=(TS("no_x", str(no_x)),)))
    assert str(no_x) in str(info.value)


def test_pickled_object_array_is_refused(exported: Exported, tmp_path: Path) -> None:
    bad = tmp_path / "pickled.npz"
    np.savez(bad, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="pickle") as info:
        run_job(_job(exported, tmp_path / "out", testsets=(TS("pickled", str(bad)),)))
    assert str(bad) in str(info.value)


def test_corrupt_onnx_file(exported: Exported, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07garbage, not a protobuf" * 10)
    with pytest.raises(ArtifactError, match="cannot load") as info:
        run_job(_job(exported, tmp_path / "out", artifact=str(bad), artifact_sha256=sha256_file(bad)))
    assert str(bad) in str(info.value)


def test_missing_artifact(exported: Exported, tmp_path: Path) -> None:
    missing = tmp_path / "missing.onnx"
    with pytest.raises(DataError, match="not found") as info:
        run_job(_job(exported, tmp_path / "out", artifact=str(missing), artifact_sha256=""))
    assert str(missing) in str(info.value)


def test_sha256_mismatch(exported: Exported, tmp_path: Path) -> None:
    wrong = "0" * 64
    with pytest.raises(DataError, match="sha256") as info:
        run_job(_job(exported, tmp_path / "out", artifact_sha256=wrong))
    msg = str(info.value)
    assert str(exported.artifact) in msg and sha256_file(exported.artifact)[:12] in msg and wrong[:12] in msg


def test_job_protocol_version(exported: Exported, tmp_path: Path) -> None:
    raw = json.loads(_job(exported, tmp_path / "out").to_json())
    raw["protocol"] = 99
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="protocol 99") as info:
        Job.from_json(job_file.read_text(), source=str(job_file))
    assert str(job_file) in str(info.value) and f"speaks {PROTOCOL_VERSION}" in str(info.value)
    proc = _agent(job_file)
    assert proc.returncode == 3 and "protocol 99" in proc.stderr and str(job_file) in proc.stderr
    with pytest.raises(ConfigError, match="not valid JSON"):
        Job.from_json("{not json", source="job.json")
    raw["protocol"] = PROTOCOL_VERSION
    raw["colour"] = "blue"
    with pytest.raises(ConfigError, match="malformed job.*colour"):
        Job.from_json(json.dumps(raw), source=str(job_file))


def test_unknown_backend(exported: Exported, tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="unknown backend 'onnxruntim'.*Did you mean 'onnxruntime'"):
        run_job(_job(exported, tmp_path / "out", backend="onnxruntim"))


def test_provider_not_installed(exported: Exported, tmp_path: Path) -> None:
    import onnxruntime as ort

    options = {"providers": ["TensorrtExecutionProvider", "CPUExecutionProvider"]}
    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime build has TensorRT")
    with pytest.raises(DeviceError, match="TensorrtExecutionProvider") as info:
        run_job(_job(exported, tmp_path / "out", backend_options=options))
    assert f"available: {ort.get_available_providers()}" in str(info.value)


def test_bad_backend_option(exported: Exported, tmp_path: Path) -> None:
    # an unknown option is the user's error (ConfigError naming it and the allowed ones), not a TypeError
    with pytest.raises(ConfigError, match=r"job t1: backend: backend 'onnxruntime' has no parameter 'threads'") as info:
        run_job(_job(exported, tmp_path / "out", backend_options={"threads": 2}))
    assert "intra_op_num_threads" in str(info.value)
    with pytest.raises(ConfigError, match="'providers'"):
        run_job(_job(exported, tmp_path / "out", backend="null", backend_options={"providers": ["x"]}))
    with pytest.raises(ConfigError, match="graph_optimization_level"):
        run_job(_job(exported, tmp_path / "out", backend_options={"graph_optimization_level": "max"}))
    with pytest.raises(ConfigError, match=r"provider_options.CUDAExecutionProvider: .*listed in 'providers'"):
        run_job(_job(exported, tmp_path / "out", backend_options={"provider_options": {"CUDAExecutionProvider": {}}}))
    # provider options reach the session and are recorded
    result = run_job(_job(exported, tmp_path / "po", backend_options={
        **ORT, "provider_options": {"CPUExecutionProvider": {"use_arena": 0}}}))
    assert result["backend"]["provider_options"] == {"CPUExecutionProvider": {"use_arena": "0"}}
    # through the command line: exit 3 (fixable by the user), not 4 (internal error)
    job_file = tmp_path / "job.json"
    job_file.write_text(_job(exported, tmp_path / "sub", backend_options={"threads": 2}).to_json())
    proc = _agent(job_file)
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    result = json.loads((tmp_path / "sub" / "result.json").read_text())
    assert result["status"] == "error" and result["error_type"] == "ConfigError" and "'threads'" in result["error"]


# ------------------------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_during_a_job_records_nothing(exported: Exported, tmp_path: Path) -> None:
    """SIGINT while the agent measures: exit 130 and one line, no traceback and no ``result.json`` (the host, or
    the run that resumes, asks again)."""
    timed = LatencyProtocol(warmup=5, min_runs=50, min_duration_s=120, max_runs=10**9)  # the first pass
    job = _job(exported, tmp_path / "out", latency=timed)
    job_file = tmp_path / "job.json"
    job_file.write_text(job.to_json())
    proc = subprocess.Popen([sys.executable, "-m", "edgebench.agent", "run", str(job_file)],
                            stderr=subprocess.PIPE, text=True, preexec_fn=sigint_as_a_terminal_leaves_it)
    deadline = time.monotonic() + 60
    while "onnxruntime" not in Path(f"/proc/{proc.pid}/maps").read_text():  # the runtime is in: loading
        assert proc.poll() is None and time.monotonic() < deadline, "the agent never loaded onnxruntime"
        time.sleep(0.05)
    time.sleep(1.0)  # loaded, bound, timing
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["edgebench-agent: interrupted; nothing recorded for this job"]
    assert not (tmp_path / "out" / "result.json").exists()


@pytest.mark.parametrize("cause", [KeyboardInterrupt(), None])
def test_an_error_caused_by_ctrl_c_is_not_the_jobs_failure(cause: BaseException | None, exported: Exported,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A SIGINT that lands while a C extension initialises comes out of the import as ImportError('initialization
    failed') caused by the KeyboardInterrupt (2 of 60 SIGINTs sent during ``import numpy, onnxruntime``: how
    test_faults' Ctrl-C case once found a result.json its interrupted job should not have written). That cannot
    be timed from here, so the job raises it: interrupted, nothing recorded; the same ImportError without the
    Ctrl-C behind it is the job's failure, recorded."""
    import edgebench.agent.job as agent_job
    from edgebench.agent.__main__ import main as agent_main

    def interrupted_import(job: Job) -> None:
        raise ImportError("initialization failed") from cause

    monkeypatch.setattr(agent_job, "run_job", interrupted_import)
    job = _job(exported, tmp_path / "out")
    job_file = tmp_path / "job.json"
    job_file.write_text(job.to_json())
    rc = agent_main(["run", str(job_file)])
    result = tmp_path / "out" / "result.json"
    if cause is not None:
        assert rc == 130 and not result.exists()
        assert capsys.readouterr().err.strip() == "edgebench-agent: interrupted; nothing recorded for this job"
    else:
        assert rc == 4 and json.loads(result.read_text())["error"] == "initialization failed"


# ------------------------------------------------------------------------------------------ null backend


def test_null_backend_reads_num_classes_from_the_card(exported: Exported, tmp_path: Path) -> None:
    e = exported
    result = run_job(_job(e, tmp_path / "out", backend="null", backend_options={}))
    logits = np.load(tmp_path / "out" / "set-0.npy")
    assert logits.shape == (len(e.x), 10) and not logits.any()
    assert result["backend"]["backend"] == "null" and result["latency"]["runs"] >= 50

    # another card: 4 classes, and the card's input shape is the one the test set is checked against
    other = tmp_path / "other.onnx"
    other.write_bytes(b"the null backend never reads the model")
    ModelCard(name="other", format="onnx", input_shape=(1, 8, 8), num_classes=4,
              classes=("a", "b", "c", "d")).save(other)
    assert card_path(other).is_file()
    run_job(_job(e, tmp_path / "out4", backend="null", backend_options={}, artifact=str(other),
                 artifact_sha256=sha256_file(other)))
    logits = np.load(tmp_path / "out4" / "set-0.npy")
    assert logits.shape == (len(e.x), 4) and logits.dtype == np.float32 and not logits.any()

    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, x=np.zeros((3, 1, 9, 9), np.float32))
    with pytest.raises(DataError, match=r"\(1, 9, 9\)") as info:
        run_job(_job(e, tmp_path / "out5", backend="null", backend_options={}, artifact=str(other),
                     artifact_sha256="", testsets=(TS("wrong", str(wrong)),)))
    assert str(wrong) in str(info.value)


# ------------------------------------------------------------------------- protocol 2: streaming, resume


@pytest.mark.parametrize("kind", ["npz", "npz-deflated", "npy"])
def test_testsets_stream_in_writeable_chunks(kind: str, tmp_path: Path) -> None:
    from edgebench.agent.stream import iter_batches, testset_shape

    x = np.random.default_rng(0).random((1003, 1, 5, 5), dtype=np.float32)
    path = tmp_path / ("x.npy" if kind == "npy" else "x.npz")
    {"npz": lambda: np.savez(path, x=x), "npz-deflated": lambda: np.savez_compressed(path, x=x),
     "npy": lambda: np.save(path, x)}[kind]()
    assert testset_shape(path) == (1003, 1, 5, 5)
    chunks = list(iter_batches(path, 100))
    assert [len(c) for c in chunks] == [100] * 10 + [3]
    assert all(c.flags.writeable and c.flags.c_contiguous and c.dtype == np.float32 for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), x)


def test_truncated_testset_is_named(tmp_path: Path) -> None:
    from edgebench.agent.stream import iter_batches

    path = tmp_path / "cut.npy"
    np.save(path, np.zeros((50, 4), np.float32))
    path.write_bytes(path.read_bytes()[:-40])  # 2.5 of the 16-byte samples are missing: 47 are whole
    with pytest.raises(DataError, match=r"truncated \(47 of 50 samples\)") as info:
        list(iter_batches(path, 20))
    assert str(path) in str(info.value)


def test_a_rerun_resumes_finished_passes(exported: Exported, tmp_path: Path) -> None:
    """A job run again into the same folder (the retry after a dropped connection) reuses what finished;
    a different job in that folder does not."""
    e = exported
    job = _job(e, tmp_path / "out")
    first = run_job(job)
    (tmp_path / "out" / "result.json").unlink()  # died after the passes, before the summary
    again = run_job(job)
    assert sorted(again["resumed"]) == ["energy", "latency", "profile", "set-0"]
    assert again["latency"] == first["latency"]
    other = run_job(dataclasses.replace(job, batch_size=32))  # another job: measured anew
    assert other["resumed"] == [] and other["latency"]["runs"] != 0
    done = run_job(dataclasses.replace(job, batch_size=32))  # finished: returned as is
    assert done == json.loads((tmp_path / "out" / "result.json").read_text())


def test_energy_from_an_external_meter_log(exported: Exported, tmp_path: Path) -> None:
    """The energy pass end to end with a real timestamped log that a 'meter' thread writes while the job
    runs (2.5 W steady): energy per inference = 2.5 W × window / inferences, valid; too few samples for
    the protocol's minimum: the same numbers, flagged invalid with the reason."""
    from edgebench.agent.protocol import EnergyProtocol
    from tests.fixtures.devices import meter_logging

    with meter_logging(tmp_path / "meter.csv", 2.5, period_s=0.02) as log:
        proto = EnergyProtocol(sensor="external", options={"path": str(log)}, rate_hz=20, idle_s=0.1,
                               min_window_s=0.4, windows=2, min_samples=5)
        result = run_job(_job(exported, tmp_path / "out", energy=proto))
        strict = run_job(_job(exported, tmp_path / "out2", energy=dataclasses.replace(proto, min_samples=10_000)))
    energy = result["energy"]
    assert energy["valid"] is True, energy
    assert energy["n_windows"] == 2 and energy["mean_power_w"] == pytest.approx(2.5, rel=1e-6)
    for w in energy["windows"]:
        assert w["t1"] - w["t0"] >= 0.4 and w["samples"] >= 5
        assert w["joules"] == pytest.approx(2.5 * (w["t1"] - w["t0"]), rel=1e-3)
    per = sorted(w["joules"] / w["inferences"] for w in energy["windows"])
    assert energy["energy_per_inference_j"] == pytest.approx(sum(per) / 2, rel=1e-9)
    assert strict["energy"]["valid"] is False
    assert any("sensor sample(s), fewer than the 10000 required" in r for r in strict["energy"]["invalid_reasons"])
