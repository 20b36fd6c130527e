"""The ssh transport end to end against a real ``sshd`` on 127.0.0.1 (throw-away keys, started here), with the
agent shipped as a bundle into a virtual environment that has numpy and onnxruntime only (no torch, no
edgebench): connection reuse, copy once per content hash, clean-up, a dropped connection mid-job, and the
failures a user meets (wrong key, unreachable host, missing Python or runtime, a killed agent)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from edgebench.agent.protocol import Job, LatencyProtocol, sha256_file
from edgebench.agent.protocol import TestSet as TS  # not collected by pytest
from edgebench.errors import DeviceError
from edgebench.targets import load_target
from tests.fixtures.devices import Sshd, start_sshd, torch_free_venv

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Device:
    sshd: Sshd
    python: Path
    model: Path
    testset: Path
    expected: np.ndarray  # logits from onnxruntime on this host
    root: Path


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Device:
    from edgebench.data import load_dataset
    from edgebench.export.card import ModelCard
    from edgebench.export.onnx import export_onnx
    from edgebench.models import create_model
    from edgebench.runtime import create_backend

    root = tmp_path_factory.mktemp("ssh")
    sshd = start_sshd(root / "sshd")
    python = torch_free_venv(root / "venv")
    ds = load_dataset("digits")
    (root / "host").mkdir()
    model = create_model("digits_cnn", input_shape=(1, 8, 8), num_classes=10)
    path = export_onnx(model, (1, 8, 8), root / "host" / "digits_cnn.onnx")
    ModelCard(name="digits_cnn", format="onnx", input_shape=(1, 8, 8), num_classes=10, classes=ds.classes,
              sha256=sha256_file(path), size_bytes=path.stat().st_size).save(path)
    testset = root / "host" / "test.npz"
    np.savez_compressed(testset, x=ds.x_test, y=ds.y_test)  # deflated: the agent streams it anyway
    backend = create_backend("onnxruntime", intra_op_num_threads=1, inter_op_num_threads=1)
    backend.load(path)
    yield Device(sshd, python, path, testset, backend.predict(ds.x_test), root)
    sshd.stop()


def _target(d: Device, tmp_path: Path, *, name: str = "dev", transport: str = "", python: str = "",
            backends: str = "") -> Path:
    transport = transport or (f'host = "{d.sshd.alias}"\nssh_config = "{d.sshd.ssh_config}"\n'
                              f'workdir = "{tmp_path / "remote"}"\nretries = 2\nbackoff_s = 0.2\n')
    backends = backends or "[backends.onnxruntime]\nintra_op_num_threads = 1\ninter_op_num_threads = 1\n" \
                           "[backends.null]\n"
    path = tmp_path / f"{name}.toml"
    path.write_text(f'[target]\nname = "{name}"\ntransport = "ssh"\npython = "{python or d.python}"\n'
                    f"timeout_s = 120\n[transport]\n{transport}{backends}")
    return path


def _job(d: Device, job_id: str, *, backend: str = "onnxruntime", seconds: float = 0.05) -> Job:
    options = {"intra_op_num_threads": 1, "inter_op_num_threads": 1} if backend == "onnxruntime" else {}
    return Job(job_id=job_id, artifact=str(d.model), backend=backend, output_dir="unused",
               testsets=(TS("clean", str(d.testset)),), backend_options=options, batch_size=50,
               latency=LatencyProtocol(warmup=5, min_runs=20, min_duration_s=seconds),
               artifact_sha256=sha256_file(d.model))


def _remote_runs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "remote").glob("run-*")) if (tmp_path / "remote").is_dir() else []


def test_jobs_share_one_connection_and_each_file_is_copied_once(device: Device, tmp_path: Path) -> None:
    from edgebench.targets import open_transport

    target = load_target(str(_target(device, tmp_path)))
    with open_transport(target) as t:
        r1, out1 = t.run_job(_job(device, "job-one"), tmp_path / "out1")
        master = t.master_pid()
        r2, out2 = t.run_job(_job(device, "job-two", backend="null"), tmp_path / "out2")
        assert master is not None and t.master_pid() == master  # the same connection served both jobs
        [session] = _remote_runs(tmp_path)
        assert session.is_dir()
        # bundle, model + card, test set once; a job file per job
        uploaded = [Path(p).name for p in t.uploaded]
        assert sorted(n for n in uploaded if n != "job.json") == sorted(
            [t.bundle().name, "model.onnx", "model.card.json", f"{sha256_file(device.testset)[:32]}.npz"])
        assert uploaded.count("job.json") == 2
    # the device really ran it, without torch, and the raw outputs came back
    assert r1["status"] == "ok" and r1["torch_loaded"] is False
    logits = np.load(out1 / "set-0.npy")
    np.testing.assert_allclose(logits, device.expected, atol=1e-5)
    assert len(np.load(out1 / "latency_ns.npy")) == r1["latency"]["runs"] >= 20
    assert r1["environment"]["before"]["python"] and r1["backend"]["providers"] == ["CPUExecutionProvider"]
    assert r2["backend"]["backend"] == "null" and not np.load(out2 / "set-0.npy").any()
    # closed: the remote work folder and the connection are gone
    assert not _remote_runs(tmp_path)
    assert t.master_pid() is None


def test_a_query_attack_crafted_on_the_device_comes_back(device: Device, tmp_path: Path) -> None:
    """A job with a Square request over ssh: the agent crafts on the remote artifact, and each ε's set with its
    per-sample queries and its logits come back with the result."""
    from edgebench.agent.protocol import AttackRequest
    from edgebench.targets import open_transport

    y = tuple(int(v) for v in np.load(device.testset)["y"][:20])
    request = AttackRequest(name="square", params={"max_queries": 30}, eps=(0.2,), y=y, names=("square@0.2",))
    with open_transport(load_target(str(_target(device, tmp_path)))) as t:
        result, out = t.run_job(replace(_job(device, "attack"), attacks=(request,)), tmp_path / "out")
    (attack,) = result["attacks"]
    with np.load(out / attack["files"][0]) as f:
        assert f["x"].shape == (20, 1, 8, 8) and f["queries"].shape == (20,) and f["queries"].max() <= 30
        pred = f["pred"]
    assert np.array_equal(np.load(out / "attack-0-eps0.npy").argmax(1), pred)
    assert result["torch_loaded"] is False


def test_dropped_connection_mid_job_is_retried_and_resumes(device: Device, tmp_path: Path) -> None:
    from edgebench.targets import open_transport

    target = load_target(str(_target(device, tmp_path)))
    killed: list[int] = []

    def drop_when_the_agent_runs(t) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            locks = list((tmp_path / "remote").glob("run-*/jobs/*/.lock"))
            pid = t.master_pid()
            if locks and pid:
                time.sleep(0.5)
                os.kill(pid, signal.SIGKILL)  # the shared connection dies under the running job
                killed.append(pid)
                return
            time.sleep(0.05)

    with open_transport(target) as t:
        t.run_job(_job(device, "warm-up", backend="null"), tmp_path / "out0")  # results received before the drop
        dropper = threading.Thread(target=drop_when_the_agent_runs, args=(t,))
        dropper.start()
        result, out = t.run_job(_job(device, "long", seconds=3.0), tmp_path / "out")
        dropper.join()
        assert killed, "the connection was never dropped"
        assert t.retries_used >= 1
        assert t.master_pid() not in (None, killed[0])  # a new connection
    assert result["status"] == "ok" and result["latency"]["duration_s"] >= 3.0
    np.testing.assert_allclose(np.load(out / "set-0.npy"), device.expected, atol=1e-5)
    assert (tmp_path / "out0" / "result.json").is_file()  # what was received before is still there


def test_close_stops_the_agents_still_running(device: Device, tmp_path: Path) -> None:
    """A run stopped mid-job (Ctrl-C, ``kill``) closes its transport while a job measures: the agent on the
    device stops with it (it has no terminal, so the ssh session's end alone would not stop it), and the job is
    not retried behind the closing run's back."""
    import psutil

    from edgebench.targets import open_transport

    def agents() -> list[psutil.Process]:
        return [p for p in psutil.process_iter(["cmdline"])
                if any(str(tmp_path / "remote") in c for c in p.info["cmdline"] or []) and "run" in p.info["cmdline"]]

    failures: list[BaseException] = []

    def run(t) -> None:
        try:
            t.run_job(_job(device, "long", seconds=60.0), tmp_path / "out")
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failures.append(exc)

    with open_transport(load_target(str(_target(device, tmp_path)))) as t:
        job = threading.Thread(target=run, args=(t,))
        job.start()
        deadline = time.monotonic() + 60
        while not (pids := list((tmp_path / "remote").glob("run-*/jobs/*/.agents"))) or not agents():
            assert time.monotonic() < deadline, "the agent never started"
            time.sleep(0.05)
        (recorded,) = [int(p) for p in pids[0].read_text().split()]
        assert [p.pid for p in agents()] == [recorded]  # the pid the job folder records is the agent's
        started = time.monotonic()
        t.close()
        job.join(timeout=30)
        assert not job.is_alive() and time.monotonic() - started < 15
    assert not psutil.pid_exists(recorded) or psutil.Process(recorded).status() == psutil.STATUS_ZOMBIE
    assert agents() == []  # and no retry started another
    (failure,) = failures
    assert isinstance(failure, DeviceError) and "dev" in str(failure)
    assert not _remote_runs(tmp_path)


def test_targets_check_over_ssh(device: Device, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgebench.cli import main

    path = _target(device, tmp_path, backends="[backends.onnxruntime]\n[backends.openvino]\n")
    rc = main(["targets", "check", str(path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    lines = {ln.split()[0] + (" " + ln.split()[1] if ln.startswith("backend") else ""): ln
             for ln in out.splitlines()[2:] if ln.strip()}
    assert " ok " in lines["connection"] and "ssh" in lines["connection"]
    assert " ok " in lines["python"] and str(device.python) in lines["python"]
    assert " ok " in lines["torch-free"]
    assert "CPUExecutionProvider" in lines["onnxruntime"]
    assert "not installed" in lines["openvino"]  # the venv has no openvino
    assert "FAIL" in lines["backend openvino"] and "pip install openvino" in lines["backend openvino"]
    assert " ok " in lines["backend onnxruntime"]
    assert "none configured" in lines["power"]
    assert "MB free" in lines["memory"]
    assert out.rstrip().endswith("usable: yes")
    assert not _remote_runs(tmp_path)  # cleaned up after the check too


def test_wrong_key_is_one_line_without_retries(device: Device, tmp_path: Path) -> None:
    from edgebench.targets import open_transport

    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    config = tmp_path / "ssh_config"
    config.write_text(device.sshd.ssh_config.read_text().replace(str(device.sshd.key), str(other)))
    target = load_target(str(_target(device, tmp_path, transport=f'host = "{device.sshd.alias}"\n'
                                                                 f'ssh_config = "{config}"\nretries = 3\n')))
    t0 = time.monotonic()
    with open_transport(target) as t, pytest.raises(DeviceError, match="Permission denied") as info:
        t.run_job(_job(device, "x"), tmp_path / "out")
    assert t.retries_used == 0 and time.monotonic() - t0 < 20
    msg = str(info.value)
    assert "target 'dev'" in msg and "identity_file" in msg and "\n" not in msg


def test_unreachable_host_is_retried_with_backoff_then_one_line(device: Device, tmp_path: Path) -> None:
    from edgebench.targets import open_transport
    from tests.fixtures.devices import _free_port

    port = _free_port()  # nothing listens there
    target = load_target(str(_target(device, tmp_path, transport=(
        f'host = "127.0.0.1"\nport = {port}\nssh_options = ["UserKnownHostsFile={tmp_path}/kh", '
        f'"StrictHostKeyChecking=accept-new"]\nretries = 2\nbackoff_s = 0.2\n'))))
    t0 = time.monotonic()
    with open_transport(target) as t, pytest.raises(DeviceError, match="Connection refused") as info:
        t.run_job(_job(device, "x"), tmp_path / "out")
    assert t.retries_used == 2 and time.monotonic() - t0 >= 0.2 + 0.4  # backoff 0.2 s, then 0.4 s
    assert "after 3 attempts" in str(info.value) and "127.0.0.1" in str(info.value)


def test_missing_python_or_runtime_on_the_device(device: Device, tmp_path: Path) -> None:
    from edgebench.targets import open_transport

    target = load_target(str(_target(device, tmp_path, python="/opt/no-such/python3")))
    with open_transport(target) as t, pytest.raises(DeviceError, match="Python '/opt/no-such/python3' not found"):
        t.run_job(_job(device, "x"), tmp_path / "out")
    target = load_target(str(_target(device, tmp_path, name="dev2")))
    job = replace(_job(device, "ov"), backend="openvino", backend_options={})
    with open_transport(target) as t, pytest.raises(DeviceError, match="openvino is not installed") as info:
        t.run_job(job, tmp_path / "out")
    assert "pip install openvino" in str(info.value) and "target 'dev2'" in str(info.value)


def test_killed_agent_is_retried_and_said_so(device: Device, tmp_path: Path) -> None:
    """A killed agent (the OOM killer, a user) is retried like a drop; killed every time, the error says so."""
    from edgebench.targets import open_transport

    target = load_target(str(_target(device, tmp_path)))
    stop = threading.Event()

    def kill_agents() -> None:
        import psutil

        while not stop.is_set():
            for p in psutil.process_iter(["cmdline"]):
                cmd = p.info["cmdline"] or []
                if any(str(tmp_path / "remote") in c for c in cmd) and "run" in cmd and str(device.python) in cmd[0]:
                    p.kill()
            time.sleep(0.05)

    killer = threading.Thread(target=kill_agents)
    killer.start()
    try:
        with open_transport(target) as t, pytest.raises(DeviceError, match="killed by a signal") as info:
            t.run_job(_job(device, "doomed", seconds=5.0), tmp_path / "out")
    finally:
        stop.set()
        killer.join()
    assert t.retries_used == 2 and "after 3 attempts" in str(info.value)


def test_full_remote_disk_is_one_line(device: Device, tmp_path: Path) -> None:
    small = tmp_path / "remote"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], capture_output=True,
                             check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here to fill ({mounted.stderr.decode().strip()[:80]})")
    try:
        from edgebench.targets import open_transport

        target = load_target(str(_target(device, tmp_path)))
        with open_transport(target) as t, pytest.raises(DeviceError, match="disk is full") as info:
            t.run_job(_job(device, "x"), tmp_path / "out")
        assert "workdir" in str(info.value) and t.retries_used == 0
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_plan_runs_on_an_ssh_target(device: Device, tmp_path: Path) -> None:
    """A digits plan with its device stages on two ssh targets, one of which has no Python: the good one
    runs both backends over one connection and its results are stored; the bad one fails in one line per
    job and takes nothing else down; the remote folders are removed at the end."""
    from edgebench.config import load_plan
    from edgebench.runner.pipeline import run_plan
    from edgebench.store import Store

    target = _target(device, tmp_path)
    broken = _target(device, tmp_path, name="broken", python="/opt/no-such/python3")
    plan = tmp_path / "plan.toml"
    plan.write_text(f'[plan]\nname = "ssh-digits"\n[data]\ndataset = "digits"\n[[models]]\nname = "cnn"\n'
                    f'arch = "digits_cnn"\ntrain = {{ epochs = 3 }}\n[[targets]]\ntarget = "{broken}"\n'
                    f'backends = ["onnxruntime"]\n[[targets]]\ntarget = "{target}"\n'
                    f'backends = ["onnxruntime", "null"]\n[measure]\nmin_runs = 20\nmin_duration_s = 0.05\n'
                    f"warmup = 2\n")
    summary = run_plan(load_plan(str(plan)), out_dir=tmp_path / "reports")
    # its accuracy job and its latency job (the interleaved rounds of its units) fail, each in the same one line
    assert sorted(summary.failed) == [f"device/{broken}/onnxruntime/cnn", f"latency/{broken}/onnxruntime"]
    assert all("target 'broken': Python '/opt/no-such/python3' not found" in why for why in summary.failed.values())
    with Store.open(summary.run_dir / "results.sqlite", create=False) as store:
        rows = {r["backend"]: r for r in store.results(summary.run_id)}
        envs = store.environments(summary.run_id)
    assert rows["onnxruntime"]["clean_acc"] > 0.8 and rows["onnxruntime"]["target"] == "dev"
    assert rows["null"]["clean_acc"] < 0.2  # zeros: always class 0
    assert all(e["environment"]["energy"]["absent"] for e in envs)
    assert not _remote_runs(tmp_path)
    report = (summary.run_dir / "report.md").read_text()
    assert "Energy: not measured (no power sensor configured" in report
    json.loads((summary.run_dir / "plan.json").read_text())


def test_shell_metacharacters_never_reach_a_shell(device: Device, tmp_path: Path) -> None:
    """A work folder and file names full of shell syntax are passed as data: nothing runs, the job works."""
    import uuid

    from edgebench.targets import open_transport

    name = f"eb-pwned-{uuid.uuid4().hex[:8]}"  # a command would create it in the remote shell's folder (home)
    canaries = [Path.home() / name, tmp_path / name]
    workdir = tmp_path / f"remote dir; touch {name}; $(touch {name}) `touch {name}` 'q\""
    odd = tmp_path / f"test set $(touch {name}).npz"
    odd.write_bytes(device.testset.read_bytes())
    target = load_target(str(_target(device, tmp_path, transport=(
        f'host = "{device.sshd.alias}"\nssh_config = "{device.sshd.ssh_config}"\n'
        f"workdir = '''{workdir}'''\n"))))
    job = replace(_job(device, "odd; rm -rf ~"), testsets=(TS("a name; $(whoami)", str(odd)),))
    with open_transport(target) as t:
        result, out = t.run_job(job, tmp_path / "out")
        assert workdir.is_dir() and list(workdir.glob("run-*"))
    assert result["status"] == "ok" and result["testsets"][0]["name"] == "a name; $(whoami)"
    np.testing.assert_allclose(np.load(out / "set-0.npy"), device.expected, atol=1e-5)
    assert not any(c.exists() for c in canaries)
    assert not list(workdir.glob("run-*"))  # cleaned up, however odd the name


def test_bad_transport_options_are_config_errors(device: Device, tmp_path: Path) -> None:
    from edgebench.errors import ConfigError

    for body, match in ((f'host = "-oProxyCommand=touch {tmp_path}/x"\n', "not a host name"),
                        ('host = "a"\nport = "22"\n', "port must be int"),
                        ('host = "a"\nssh_options = ["-F/etc/passwd"]\n', "Key=Value"),
                        ('host = "a"\nretrys = 2\n', "did you mean 'retries'"),
                        ('user = "me"\n', "host is required")):
        path = _target(device, tmp_path, transport=body)
        with pytest.raises(ConfigError, match=match) as info:
            load_target(str(path))
        assert str(path) in str(info.value) and "[transport]" in str(info.value)
