"""Executors: who computes a plan's host stages (training, compressing, crafting).

One registry, :data:`EXECUTORS`: ``local`` (a bounded pool of worker processes on this machine,
:mod:`edgebench.runner.executors.local`) and ``ray`` (tasks on a Ray cluster, :mod:`edgebench.runner.executors.ray`;
``pip install edgebench[ray]``). The scheduler (:mod:`edgebench.runner.stages`) is the same for both: it submits
a host stage's :class:`~edgebench.runner.executors.base.HostTask` when the stage's inputs are ready and a worker is
free, and when the task's outputs are in the cache it loads them and records them in the store on its own
thread. Device jobs never go through an executor's workers: they run from the scheduler (one thread per device).

The interface is :class:`~edgebench.runner.executors.base.Executor`; :class:`InlineExecutor` is the executor
with no workers.
"""

from __future__ import annotations

from typing import Any

from edgebench.errors import ConfigError
from edgebench.runner.executors.base import BASE_MB, EXECUTORS, Executor, HostTask, InlineExecutor, Needs

__all__ = ["BASE_MB", "EXECUTORS", "Executor", "HostTask", "InlineExecutor", "Needs", "create_executor",
           "parse_workers"]


def parse_workers(value: str | int | None, *, where: str = "--workers") -> int | None:
    """``auto`` (or None) → None (the executor decides); a whole number ≥ 0 → itself."""
    if value is None or value == "auto":
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = -1
    if n < 0 or str(n) != str(value).strip():
        raise ConfigError(f"{where}: {value!r} is not a number of workers; use a whole number ≥ 0 or 'auto'")
    return n


def create_executor(name: str, *, workers: str | int | None = None, address: str | None = None,
                    where: str = "--executor") -> Any:
    """The executor ``name`` (``local`` or ``ray``) with ``workers`` (None/``auto``: sized to the machine or the
    cluster; 0 with ``local``: compute in this process). ``address`` is the Ray cluster's (``ray`` only)."""
    cls = EXECUTORS.get(name, where=where)
    n = parse_workers(workers)
    if name == "local":
        if address:
            raise ConfigError(f"{where}: --address is for --executor ray, not local")
        from edgebench.runner.executors.local import cores

        if n == 0 or (n is None and cores() == 1):  # one core: a worker process would only add its start-up
            return InlineExecutor()
        return cls(workers=n)
    if n == 0:
        raise ConfigError(f"{where}: --workers 0 means no workers; with --executor ray give at least 1, or 'auto'")
    return cls(workers=n, address=address)
