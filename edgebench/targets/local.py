"""The ``local`` transport: runs the agent on this machine in a child process, exactly as a remote
device would (job file in, ``result.json`` and ``outputs.npz`` out), so the harness path is the same."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgebench.agent.job import Job
from edgebench.errors import DeviceError
from edgebench.targets import TRANSPORTS, Target

log = logging.getLogger(__name__)


@TRANSPORTS.register("local")
class LocalTransport:
    """Files stay where they are; the agent runs as ``python -m edgebench.agent run JOB``."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def run_job(self, job: Job, workdir: Path) -> tuple[dict[str, Any], Path]:
        """Run ``job`` and return ``(result, outputs.npz path)``; raise :class:`DeviceError` on failure."""
        workdir.mkdir(parents=True, exist_ok=True)
        job_file = workdir / "job.json"
        job_file.write_text(job.to_json())
        python = self.target.python or sys.executable
        argv = [python, "-m", "edgebench.agent", "run", str(job_file)]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.target.timeout_s, check=False)
        except FileNotFoundError:
            raise DeviceError(f"target {self.target.name!r}: Python {python!r} not found; fix 'python' in "
                              f"{self.target.source}") from None
        except subprocess.TimeoutExpired:
            raise DeviceError(f"target {self.target.name!r}: job {job.job_id} ran over {self.target.timeout_s} s "
                              f"(timeout_s in {self.target.source})") from None
        result_file = Path(job.output_dir) / "result.json"
        result = json.loads(result_file.read_text()) if result_file.is_file() else None
        if proc.returncode != 0 or result is None or result.get("status") != "ok":
            why = (result or {}).get("error") or proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            raise DeviceError(f"target {self.target.name!r}: {why if isinstance(why, str) else why[0]}")
        return result, Path(job.output_dir) / "outputs.npz"
