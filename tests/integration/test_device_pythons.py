"""The device side on the Pythons boards ship: JetPack 5 has 3.8 (the tested minimum,
:data:`edgebench.agent.protocol.MIN_PYTHON`), Raspberry Pi OS Bullseye 3.9. Each runs the shipped agent bundle
in a virtual environment holding numpy and onnxruntime from the registry (no torch, no edgebench), through the
local transport and a target file naming that Python: ``targets check`` says usable, and a real job (accuracy,
latency and energy passes on an .npz test set) gives this host's logits. A Python older than the minimum
(JetPack 4's 3.6) gets one line naming it. Skipped with a reason where the Python or the registry is absent;
the venvs are cached (see :func:`tests.fixtures.devices.device_venv`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgebench.agent.protocol import MIN_PYTHON, AttackRequest, EnergyProtocol, Job, LatencyProtocol, sha256_file
from edgebench.agent.protocol import TestSet as TS  # not collected by pytest
from edgebench.errors import DeviceError
from edgebench.targets import load_target, open_transport
from edgebench.targets.bundle import build_bundle
from edgebench.targets.check import check_table, usable
from tests.fixtures.devices import device_venv, meter_logging, pyenv_python

#: each tested device Python with numpy and onnxruntime releases that have wheels for it
PINS = {
    (3, 8): ("numpy==1.24.4", "onnxruntime==1.19.2"),
    (3, 9): ("numpy==1.26.4", "onnxruntime==1.19.2"),
}
ORT = {"intra_op_num_threads": 1, "inter_op_num_threads": 1}


def test_the_stated_minimum_is_the_tested_one() -> None:
    assert min(PINS) == MIN_PYTHON


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """digits_cnn (seeded, untrained: only the device's agreement with this host matters) exported to ONNX, a
    100-sample .npz test set, and this host's onnxruntime logits for it."""
    import torch

    from edgebench.export.onnx import export_onnx
    from edgebench.models import create_model
    from edgebench.runtime import create_backend

    root = tmp_path_factory.mktemp("pythons")
    torch.manual_seed(0)
    model = export_onnx(create_model("digits_cnn", input_shape=(1, 8, 8), num_classes=10), (1, 8, 8),
                        root / "digits_cnn.onnx")
    x = np.random.default_rng(0).random((100, 1, 8, 8), dtype=np.float32)
    testset = root / "set.npz"
    np.savez(testset, x=x, y=np.zeros(100, dtype=np.int64))
    host = create_backend("onnxruntime", **ORT)
    host.load(model)
    return model, testset, host.predict(x)


def _target(tmp_path: Path, python: Path, meter: Path | None = None) -> object:
    power = f'[power]\nsensor = "external"\npath = "{meter}"\n' if meter else ""
    path = tmp_path / "board.toml"
    path.write_text(f'[target]\nname = "board"\ntransport = "local"\npython = "{python}"\ntimeout_s = 300\n{power}'
                    "[backends.onnxruntime]\nintra_op_num_threads = 1\ninter_op_num_threads = 1\n")
    return load_target(str(path))


@pytest.mark.slow
@pytest.mark.parametrize("version", sorted(PINS), ids=lambda v: f"py{v[0]}.{v[1]}")
def test_the_agent_bundle_runs_on_device_pythons(version: tuple[int, int], exported, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    python = device_venv(version, PINS[version])
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the device sees the bundle only, never this host's package
    model, testset, host_logits = exported
    want = ".".join(map(str, version))
    with meter_logging(tmp_path / "meter.csv", 1.5, period_s=0.02) as log:
        target = _target(tmp_path, python, log)
        with open_transport(target, cache_dir=tmp_path / "bundle") as t:
            report = t.info()
            table = check_table(target, report, None, 0.1)
            assert report["python"].startswith(f"{want}.") and report["numpy"] == PINS[version][0].split("==")[1]
            assert usable(target, report), table
            assert "FAIL" not in table and "usable: yes" in table
            assert report["power"]["ok"] is True and report["torch_loaded"] is False

            job = Job(job_id=f"py{want}", artifact=str(model), backend="onnxruntime", output_dir="unused",
                      testsets=(TS("set", str(testset)),), backend_options=dict(ORT), batch_size=32,
                      latency=LatencyProtocol(warmup=2, min_runs=20, min_duration_s=0.01),
                      energy=EnergyProtocol(sensor="external", options={"path": str(log)}, rate_hz=20, idle_s=0.1,
                                            min_window_s=0.3, windows=1, min_samples=5),
                      artifact_sha256=sha256_file(model),
                      attacks=(AttackRequest(name="square", params={"max_queries": 20}, eps=(0.1,), y=(0,) * 10,
                                             names=("square@0.1",)),))  # the query attacks on this Python too
            result, out = t.run_job(job, tmp_path / "out")
    assert result["status"] == "ok" and result["torch_loaded"] is False
    assert result["environment"]["before"]["python"].startswith(f"{want}.")
    assert result["backend"]["runtime_version"] == "1.19.2"
    np.testing.assert_allclose(np.load(out / "set-0.npy"), host_logits, atol=1e-5)
    assert result["latency"]["runs"] >= 20 and len(np.load(out / "latency_ns.npy")) == result["latency"]["runs"]
    (attack,) = result["attacks"]
    with np.load(out / attack["files"][0]) as f:
        assert f["queries"].shape == (10,) and 1 <= f["queries"].min() and f["queries"].max() <= 20
        assert np.abs(f["x"] - np.load(testset)["x"][:10]).max() <= 0.1 + 1e-6
    assert np.load(out / "attack-0-eps0.npy").shape == (10, 10)
    energy = result["energy"]
    assert energy["valid"] is True and energy["mean_power_w"] == pytest.approx(1.5, rel=1e-6), energy


@pytest.mark.parametrize("version", [(2, 7), (3, 6), (3, 7)], ids=lambda v: f"py{v[0]}.{v[1]}")
def test_an_older_python_is_refused_in_one_line(version: tuple[int, int], tmp_path: Path) -> None:
    """JetPack 4's 3.6 (and 3.7, 2.7): the bundle starts, sees the version first and says in one line what is
    needed, before any module of the device side is parsed; the transport and ``targets check`` pass it on."""
    python = pyenv_python(version)
    if python is None:
        pytest.skip(f"no Python {version[0]}.{version[1]} here")
    need = f"the agent needs Python >= {'.'.join(map(str, MIN_PYTHON))}"
    proc = subprocess.run([str(python), str(build_bundle(tmp_path)), "info"], capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 3 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and need in proc.stderr and f"Python {version[0]}.{version[1]}." in proc.stderr
    target = _target(tmp_path, python)
    with open_transport(target, cache_dir=tmp_path / "bundle") as t, pytest.raises(DeviceError) as err:
        t.info()
    assert str(err.value).startswith("target 'board': Python ") and need in str(err.value)
    assert f"connection  FAIL    {err.value}" in check_table(target, None, str(err.value), 0.0)
