"""The local transport's agent processes: a job that runs over ``timeout_s`` is stopped and said so in one line,
and closing the transport (the run stopped by ``kill PID``) stops an agent still running on a device thread.
The "agent" here is a Python that hangs: what a wedged runtime or a long latency job looks like from the host."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from edgebench.errors import DeviceError
from edgebench.targets import load_target, open_transport


def hanging_python(tmp_path: Path) -> tuple[Path, Path]:
    """An executable that writes its pid, then sleeps far longer than any test waits."""
    pid_file = tmp_path / "agent.pid"
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 600\n")
    script.chmod(0o755)
    return script, pid_file


def target(tmp_path: Path, python: Path, timeout_s: float) -> object:
    path = tmp_path / "board.toml"
    path.write_text(f'[target]\nname = "board"\ntransport = "local"\npython = "{python}"\ntimeout_s = {timeout_s}\n'
                    "[backends.onnxruntime]\nintra_op_num_threads = 1\n")
    return load_target(str(path))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): it has ended, only its status is unread
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


def wait_pid(pid_file: Path, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while not (pid_file.is_file() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the agent never started"
        time.sleep(0.02)
    return int(pid_file.read_text())


def test_a_job_over_timeout_s_is_stopped_and_named(tmp_path: Path) -> None:
    python, pid_file = hanging_python(tmp_path)
    with open_transport(target(tmp_path, python, 1), cache_dir=tmp_path / "bundle") as t:
        t0 = time.monotonic()
        with pytest.raises(DeviceError, match=r"target 'board': run ran over 1 s \(timeout_s in .*board\.toml\)"):
            t.run_job(_job(), tmp_path / "out")
        assert time.monotonic() - t0 < 10
    assert not alive(wait_pid(pid_file))


def test_closing_the_transport_stops_a_running_agent(tmp_path: Path) -> None:
    python, pid_file = hanging_python(tmp_path)
    t = open_transport(target(tmp_path, python, 300), cache_dir=tmp_path / "bundle")
    failed: list[BaseException] = []

    def job() -> None:
        try:
            t.run_job(_job(), tmp_path / "out")
        except BaseException as exc:  # noqa: BLE001 - checked below
            failed.append(exc)

    worker = threading.Thread(target=job, daemon=True)  # as the scheduler runs a device job
    worker.start()
    pid = wait_pid(pid_file)
    assert alive(pid)
    t0 = time.monotonic()
    t.close()
    assert time.monotonic() - t0 < 10 and not alive(pid)
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert len(failed) == 1 and isinstance(failed[0], DeviceError) and "killed by SIGTERM" in str(failed[0])


def test_a_job_after_close_starts_no_agent(tmp_path: Path) -> None:
    """A run stopped while a device thread was still getting a job ready (building the agent bundle, say)
    closes its transports first; the thread then went on to start the agent, which measured to the end of its
    job for nobody while the stopped run waited for its thread. Once closed, a job fails in one line and no
    agent starts."""
    python, pid_file = hanging_python(tmp_path)
    t = open_transport(target(tmp_path, python, 5), cache_dir=tmp_path / "bundle")
    t.close()
    with pytest.raises(DeviceError, match=r"^target 'board': run was not started \(the run is closing\)$"):
        t.run_job(_job(), tmp_path / "out")
    time.sleep(0.2)
    assert not pid_file.exists(), "an agent started after the transport was closed"


def _job():  # noqa: ANN202 - a protocol Job; its content never reaches the hanging "agent"
    from edgebench.agent.protocol import Job

    return Job("latency", "", "", "")
