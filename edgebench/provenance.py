"""Where a run's numbers came from (issue 20, "traceable"): the edgebench commit of the code that ran
(``git describe --always --dirty`` of the checkout that holds the imported package), the command line that
started the run, and a one-line summary of the host. :meth:`edgebench.runner.pipeline.Pipeline.run` records
:func:`record` in the run's store at every start (a resumed run appends one), and ``edgebench report RUN
--results DIR`` writes it into ``run.json``. Torch-free, and nothing happens at import time."""

from __future__ import annotations

import functools
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["code_commit", "command_line", "host_summary", "record"]


@functools.cache
def code_commit() -> str | None:
    """``git describe --always --dirty`` of the checkout edgebench is imported from; None where the package
    is not in a git checkout of its own (an installed wheel) or git is missing."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():  # a directory in a clone, a file in a worktree
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def command_line(argv: list[str] | None = None) -> str:
    """The command as a user would type it again: ``edgebench`` and the CLI's arguments (``argv``: what
    :func:`edgebench.cli.main` parsed), else this process's own command line."""
    if argv is not None:
        return shlex.join(["edgebench", *argv])
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if prog in ("cli.py", "__main__.py"):
        return shlex.join(["edgebench", *sys.argv[1:]])
    return shlex.join([prog, *sys.argv[1:]])


def host_summary() -> dict[str, Any]:
    """The machine that ran the host side: CPU model and count, OS, Python (the target devices are in the
    store's ``environments`` and the host's compute device in each stage's record)."""
    from edgebench.agent.envinfo import cpu_model

    return {"cpu": cpu_model() or platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "os": f"{platform.system()} {platform.release()}", "machine": platform.machine(),
            "python": platform.python_version()}


def record(command: str | None = None) -> dict[str, Any]:
    """One start of a run: commit, command, host, and the time (seconds since the epoch, UTC)."""
    return {"commit": code_commit(), "command": command or command_line(), "host": host_summary(),
            "started": time.time()}
