"""The ``local`` transport: runs the agent bundle on this machine in a child process, exactly as a remote
device would (job file in, ``result.json`` and raw outputs out), so the harness path is the same."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from edgebench.agent.protocol import Job
from edgebench.errors import DeviceError
from edgebench.targets import TRANSPORTS
from edgebench.targets.base import Transport, read_result


@TRANSPORTS.register("local")
class LocalTransport(Transport):
    """Files stay where they are; the agent runs as ``PYTHON agent-<hash>.pyz run JOB`` (``python`` from the
    target file, by default the Python running edgebench: a separate torch-free environment works too)."""

    @dataclasses.dataclass(frozen=True)
    class Options:
        pass

    def __init__(self, target: Any, *, cache_dir: Path | None = None) -> None:
        super().__init__(target, cache_dir=cache_dir)
        self._agents: set[subprocess.Popen[str]] = set()  # running agent processes (jobs run on device threads)
        self._closed = False
        self._lock = threading.Lock()  # a job starting its agent and close() stopping them: one at a time

    def _python(self) -> str:
        return self.target.python or sys.executable

    def _command(self) -> list[str]:
        """The command that runs the agent's Python (the emulated transport puts qemu in front)."""
        return [self._python()]

    def _env(self) -> dict[str, str] | None:
        return None  # this process's environment

    def _call(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        argv = [*self._command(), str(self.bundle()), *args]
        with self._lock:
            if self._closed:  # the run stopped while this job got ready (building the bundle, say): no agent
                raise DeviceError(f"{self.label}: {args[0]} was not started (the run is closing)")
            try:
                proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        stdin=subprocess.DEVNULL, env=self._env())
            except FileNotFoundError:
                raise DeviceError(f"{self.label}: Python {self._python()!r} not found; fix 'python' in "
                                  f"{self.target.source}") from None
            self._agents.add(proc)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc)
            proc.communicate()
            raise DeviceError(f"{self.label}: {args[0]} ran over {timeout:g} s (timeout_s in "
                              f"{self.target.source})") from None
        finally:
            self._agents.discard(proc)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def close(self) -> None:
        """Stop the agents still running: a run stopped by ``kill PID`` (rather than Ctrl-C, which reaches the
        whole process group) must not leave one measuring for nobody, beside the run that resumes it; nor may a
        job still getting ready start one afterwards (it would measure for nobody while the stopped run waits
        for its thread)."""
        with self._lock:
            self._closed = True
            running = list(self._agents)
        for proc in running:
            _stop(proc)
        super().close()

    def run_job(self, job: Job, local_out: Path) -> tuple[dict[str, Any], Path]:
        local_out.mkdir(parents=True, exist_ok=True)
        job = dataclasses.replace(job, output_dir=str(local_out))
        job_file = local_out / "job.json"
        job_file.write_text(job.to_json())
        proc = self._call(["run", str(job_file)], self.target.timeout_s)
        result = read_result(local_out / "result.json")
        if proc.returncode != 0 or result is None or result.get("status") != "ok":
            raise self.job_failure(proc.returncode, proc.stderr, result, job)
        return result, local_out

    def info(self) -> dict[str, Any]:
        import json

        proc = self._call(self.info_args(str(Path.cwd())), 120)
        if proc.returncode != 0:
            raise self.job_failure(proc.returncode, proc.stderr, None, Job("info", "", "", ""))
        return json.loads(proc.stdout)


def _stop(proc: subprocess.Popen[str], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds, and wait for the end (the pipes stay with whoever reads
    them: the device thread's ``communicate``)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=grace)
