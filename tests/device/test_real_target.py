"""Opt-in tests on real hardware: ``EDGEBENCH_DEVICE_TARGET=raspberry-pi-5 python -m pytest tests/device``.

They check what only a real board can show: the target answers ``targets check``, a job's logits on the
device equal this host's onnxruntime logits for the same artifact, latency and the environment record are
complete, and where the target names a power sensor, it is readable and gives a valid energy window.
Skipped unless ``EDGEBENCH_DEVICE_TARGET`` names a target (a built-in name, one in ``targets/``, or a path).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edgebench.agent.protocol import EnergyProtocol, Job, LatencyProtocol, sha256_file
from edgebench.agent.protocol import TestSet as TS  # not collected by pytest

pytestmark = pytest.mark.device

NAME = os.environ.get("EDGEBENCH_DEVICE_TARGET", "")


@pytest.fixture(scope="module")
def target():
    if not NAME:
        pytest.skip("no device configured: set EDGEBENCH_DEVICE_TARGET to a target name or file")
    from edgebench.targets import load_target

    return load_target(NAME)


def test_the_target_is_usable(target) -> None:
    from edgebench.targets import open_transport
    from edgebench.targets.check import usable

    with open_transport(target) as t:
        report = t.info()
    assert usable(target, report), report
    assert report["torch_loaded"] is False


def test_a_job_on_the_device_matches_this_host(target, tmp_path: Path) -> None:
    from edgebench.data import load_dataset
    from edgebench.export.onnx import export_onnx
    from edgebench.models import create_model
    from edgebench.runtime import create_backend
    from edgebench.targets import open_transport

    if "onnxruntime" not in target.backends:
        pytest.skip(f"{target.name} has no onnxruntime backend")
    ds = load_dataset("digits")
    model = export_onnx(create_model("digits_cnn", input_shape=(1, 8, 8), num_classes=10), (1, 8, 8),
                        tmp_path / "m.onnx")
    testset = tmp_path / "t.npz"
    np.savez(testset, x=ds.x_test)
    power = target.power or {}
    energy = EnergyProtocol(sensor=power.get("sensor", "none"), options=power.get("options", {}),
                            rate_hz=power.get("rate_hz", 10.0), idle_s=2.0, min_window_s=3.0, windows=2,
                            min_samples=5)
    job = Job(job_id="device-test", artifact=str(model), backend="onnxruntime", output_dir="unused",
              testsets=(TS("digits", str(testset)),), backend_options=target.backends["onnxruntime"],
              batch_size=64, latency=LatencyProtocol(warmup=10, min_runs=100, min_duration_s=1.0), energy=energy,
              artifact_sha256=sha256_file(model))
    with open_transport(target) as t:
        result, out = t.run_job(job, tmp_path / "out")
    host = create_backend("onnxruntime")
    host.load(model)
    np.testing.assert_allclose(np.load(out / "set-0.npy"), host.predict(ds.x_test), atol=1e-4)
    assert result["latency"]["runs"] >= 100 and result["latency"]["p50_ms"] > 0
    env = result["environment"]
    assert env["before"]["cpu_count"] and env["after"]["python"]
    if energy.sensor != "none":
        assert not result["energy"].get("absent"), result["energy"]
        assert result["energy"]["valid"], result["energy"]["invalid_reasons"]
