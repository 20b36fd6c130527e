"""``python -m edgebench.agent run JOB.json`` — run one job on this device (see :mod:`edgebench.agent`).

Exit codes: 0 done; 3 the job failed for a reason the user can fix (``result.json`` says which);
4 an internal error. One line on stderr either way.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from edgebench.agent.job import Job, run_job, write_error
    from edgebench.errors import EdgebenchError

    parser = argparse.ArgumentParser(prog="python -m edgebench.agent")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run a job file")
    run.add_argument("job", type=Path)
    sub.add_parser("info", help="print this device's environment and backends as JSON")
    args = parser.parse_args(argv)

    if args.cmd == "info":
        from edgebench.agent.envinfo import environment
        from edgebench.runtime import BACKENDS

        print(json.dumps({"environment": environment(), "backends": BACKENDS.names()}, indent=1))
        return 0

    try:
        job = Job.from_json(args.job.read_text(), source=str(args.job))
    except (OSError, EdgebenchError) as exc:
        print(f"edgebench-agent: {exc}", file=sys.stderr)
        return 3
    try:
        run_job(job)
    except EdgebenchError as exc:
        write_error(job.output_dir, job.job_id, exc)
        print(f"edgebench-agent: {exc}", file=sys.stderr)
        return 3
    except Exception as exc:  # report, never hang the host
        write_error(job.output_dir, job.job_id, exc)
        print(f"edgebench-agent: internal error {type(exc).__name__}: {exc}", file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
