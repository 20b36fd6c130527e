"""The two device-side scripts the ssh transport stops its agents with, run here by ``sh`` as the device runs them
(no sshd needed): an agent records its pid in its job folder before it starts, and stopping the agents of a folder
leaves a ``.stop`` marker first, so an agent that starts while the run closes is either stopped or does not start
(tests/integration/test_ssh.py::test_close_stops_the_agents_still_running covers the whole path over ssh)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil

from edgebench.targets.ssh import _RECORD_PID, _STOP_AGENTS

BUNDLE = "/nonexistent/run-0123/agent-abc.pyz"  # only named in the agent's command line, as the real one is


def stop(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", _STOP_AGENTS, "sh", BUNDLE, str(folder / ".agents")], capture_output=True,
                          text=True, timeout=30, check=False)


def agent(folder: Path) -> subprocess.Popen[str]:
    """A stand-in agent that would measure for 10 minutes, started through the pid-recording wrapper."""
    return subprocess.Popen(["sh", "-c", _RECORD_PID, "sh", str(folder / ".agents"), sys.executable, "-c",
                             "import time; time.sleep(600)", BUNDLE, "run", "job.json"], text=True)


def test_an_agent_starting_after_the_stop_does_not_start(tmp_path: Path) -> None:
    """The run closed (the stop script ran on this folder, no pid there yet), then a job's agent got going: it
    records its pid, sees the marker and exits 130 without running the agent."""
    assert stop(tmp_path).returncode == 0 and (tmp_path / ".stop").is_file()
    proc = agent(tmp_path)
    t0 = time.monotonic()
    assert proc.wait(timeout=10) == 130 and time.monotonic() - t0 < 10
    assert [int(p) for p in (tmp_path / ".agents").read_text().split()] == [proc.pid]


def test_an_agent_already_running_is_stopped(tmp_path: Path) -> None:
    proc = agent(tmp_path)
    deadline = time.monotonic() + 30
    while not psutil.Process(proc.pid).name().startswith("python"):  # the wrapper has exec'd the agent
        assert proc.poll() is None and time.monotonic() < deadline, "the agent never started"
        time.sleep(0.05)
    t0 = time.monotonic()
    assert stop(tmp_path).returncode == 0
    assert proc.wait(timeout=10) == -15 and time.monotonic() - t0 < 10  # SIGTERM, no need for the KILL
