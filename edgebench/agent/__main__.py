"""``python -m edgebench.agent`` (or ``python agent-<hash>.pyz``, the bundle the host ships) — the device side.

``run JOB.json`` runs one job on this device (see :mod:`edgebench.agent`); ``info`` prints what this device
can do as JSON (``--backends`` and ``--power`` take the target's tables as JSON, ``--path`` the work folder
whose free disk to report).

Exit codes: 0 done; 3 the job failed for a reason the user can fix (``result.json`` says which);
4 an internal error; 130 interrupted (SIGINT: no ``result.json``, the host asks again). One line on stderr
either way.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgebench.agent.protocol import Job


def main(argv: list[str] | None = None) -> int:
    from edgebench.agent.job import run_job
    from edgebench.agent.protocol import Job, interrupt_behind
    from edgebench.errors import EdgebenchError

    parser = argparse.ArgumentParser(prog="python -m edgebench.agent")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run a job file")
    run.add_argument("job", type=Path)
    info = sub.add_parser("info", help="print this device's environment, runtimes and sensor as JSON")
    info.add_argument("--backends", default="{}", help="the target's [backends] tables as JSON")
    info.add_argument("--power", default="{}", help="the target's [power] table as JSON")
    info.add_argument("--path", default=".", help="the work folder (its free disk is reported)")
    args = parser.parse_args(argv)

    if args.cmd == "info":
        from edgebench.agent.info import device_report

        try:
            backends, power = json.loads(args.backends), json.loads(args.power)
        except json.JSONDecodeError as exc:
            print(f"edgebench-agent: info: bad JSON option ({exc})", file=sys.stderr)
            return 3
        print(json.dumps(device_report(backends=backends, power=power, path=args.path), indent=1, default=str))
        return 0

    try:
        job = Job.from_json(args.job.read_text(), source=str(args.job))
    except (OSError, EdgebenchError) as exc:
        print(f"edgebench-agent: {exc}", file=sys.stderr)
        return 3
    try:
        if job.kind == "latency":
            from edgebench.agent.rounds import run_latency_job

            run_latency_job(job)
        else:
            run_job(job)
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:
        if interrupt_behind(exc) is not None:  # a Ctrl-C in disguise: nothing to record
            return _interrupted()
        return _failed(job, exc)
    return 0


def _failed(job: Job, exc: Exception) -> int:
    """Record why ``job`` failed in its ``result.json``, say it in one line, and return the exit code."""
    from edgebench.agent.job import write_error
    from edgebench.errors import EdgebenchError

    write_error(job.output_dir, job.job_id, exc)
    if isinstance(exc, EdgebenchError):
        print(f"edgebench-agent: {exc}", file=sys.stderr)
        return 3
    if isinstance(exc, OSError):  # a full disk, a permission: the user can fix it
        print(f"edgebench-agent: {exc.strerror or exc} ({exc.filename or job.output_dir}); free space or fix "
              "permissions on the device", file=sys.stderr)
        return 3
    print(f"edgebench-agent: internal error {type(exc).__name__}: {exc}", file=sys.stderr)  # never hang the host
    return 4


def _interrupted() -> int:
    print("edgebench-agent: interrupted; nothing recorded for this job", file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(main())
