"""The executor interface: who computes a plan's host stages, and what one host stage is to a worker.

The scheduler (:mod:`edgebench.runner.stages`) hands an :class:`Executor` a :class:`HostTask` (everything a
worker needs, picklable) and the stage's :class:`Needs` when the stage's inputs are ready and a worker is free;
when the task's outputs are in the cache it loads them and records them in the store on its own thread. Device
jobs never go through an executor's workers: they run from the scheduler (one thread per device).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from edgebench.registry import Registry

#: the executors by name (``local``, ``ray``): one registry, imported on first lookup
EXECUTORS: Registry[Any] = Registry("executor", modules=("edgebench.runner.executors.local",
                                                         "edgebench.runner.executors.ray"))

#: what one worker process holds before it loads any data: the interpreter, torch, ONNX Runtime, OpenVINO
BASE_MB = 700


@dataclass(frozen=True)
class Needs:
    """What one host stage asks of the machine that runs it (declared to Ray as the task's resources; the local
    pool sizes itself from the memory)."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_mb: int = 0


@dataclass(frozen=True)
class HostTask:
    """One host stage to compute: everything a worker needs, picklable (run by
    :func:`edgebench.runner.worker.run_host_task`)."""

    plan: Any  #: the :class:`~edgebench.config.Plan`
    stage: str
    cache_root: str
    threads: int = 1  #: torch's intra-op threads in the worker (the executor sets it: cores / workers)
    inputs: tuple[tuple[str, str, Any], ...] = ()  #: (kind, key, packed entry) to bring in when missing
    ship_outputs: bool = False  #: return the entries the stage built, packed
    data: str = ""  #: the cache entry of the loaded data set (none: the worker loads it from the source)


@runtime_checkable
class Executor(Protocol):
    """Computes host stages. ``workers``: how many may run at once (0: none off the scheduler's thread: each stage
    computes in place, one at a time); ``retries``: how often a stage whose worker was lost is tried again before
    it is recorded as failed."""

    name: str
    workers: int
    retries: int

    def fit(self, to_compute: Callable[[], int | None]) -> None:
        """Told, before the run starts, how to count the host stages it will have to compute (None: unknown). An
        executor sized automatically may decide to compute in place (``workers`` = 0) when a pool's start-up
        would cost more than it saves; others ignore it."""

    def submit(self, task: HostTask, needs: Needs) -> Future:
        """Start ``task``; the future's result is the worker's report (a dict)."""

    def lost(self, exc: BaseException, fut: Future | None = None) -> str | None:
        """A one-line reason when ``exc`` means the worker died (the stage may be retried); None when it is the
        stage's own error."""

    def collect(self, report: dict[str, Any]) -> None:
        """Bring what the task built into this machine's cache (when the workers' is not shared)."""

    def shutdown(self, cancel: bool = False) -> None: ...

    def describe(self) -> str:
        """One line for the log."""


class InlineExecutor:
    """No workers: every host stage computes on the scheduler's thread, in plan order."""

    name = "inline"
    workers = 0
    retries = 0

    def fit(self, to_compute: Callable[[], int | None]) -> None:
        pass

    def submit(self, task: HostTask, needs: Needs) -> Future:  # pragma: no cover - never called with workers == 0
        raise RuntimeError("the inline executor has no workers")

    def lost(self, exc: BaseException, fut: Future | None = None) -> str | None:
        return None

    def collect(self, report: dict[str, Any]) -> None:
        pass

    def shutdown(self, cancel: bool = False) -> None:
        pass

    def describe(self) -> str:
        return "host stages run in this process, one at a time"
