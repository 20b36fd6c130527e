"""Executors: who computes a plan's host stages (training, compressing, crafting).

One registry, :data:`EXECUTORS`: ``local`` (a bounded pool of worker processes on this machine,
:mod:`edgebench.runner.executors.local`) and ``ray`` (tasks on a Ray cluster, :mod:`edgebench.runner.executors.ray`;
``pip install edgebench[ray]``). The scheduler (:mod:`edgebench.runner.stages`) is the same for both: it submits
a host stage's :class:`~edgebench.runner.worker.HostTask` when the stage's inputs are ready and a worker is
free, and when the task's outputs are in the cache it loads them and records them in the store on its own
thread. Device jobs never go through an executor's workers: they run from the scheduler (one thread per device).

An executor has:

- ``workers``: how many host stages may run at once (0: none off the scheduler's thread: each stage computes in
  place, one at a time);
- ``retries``: how often a stage whose worker was lost is tried again before it is recorded as failed;
- ``submit(task, needs) -> Future`` of the task's report (a dict);
- ``lost(exc, fut) -> str | None``: a one-line reason when ``exc`` means the worker died (the stage may be retried);
  None when it is the stage's own error;
- ``collect(report)``: bring what the task built into this machine's cache (when the workers' is not shared);
- ``shutdown(cancel)``; ``describe()``: one line for the log.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from edgebench.errors import ConfigError
from edgebench.registry import Registry

EXECUTORS: Registry[Any] = Registry("executor", modules=("edgebench.runner.executors.local",
                                                         "edgebench.runner.executors.ray"))


class InlineExecutor:
    """No workers: every host stage computes on the scheduler's thread, in plan order."""

    name = "inline"
    workers = 0
    retries = 0

    def submit(self, task: Any, needs: Any) -> Future:  # pragma: no cover - never called with workers == 0
        raise RuntimeError("the inline executor has no workers")

    def lost(self, exc: BaseException, fut: Future | None = None) -> str | None:
        return None

    def collect(self, report: dict[str, Any]) -> None:
        pass

    def shutdown(self, cancel: bool = False) -> None:
        pass

    def describe(self) -> str:
        return "host stages run in this process, one at a time"


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
