"""A plan as a graph of named stages with dependencies, and the scheduler that runs it.

A stage is one of three kinds:

- ``main``: quick work run on the scheduler's own thread (loading the data set, writing the clean test set).
- ``host``: heavy host work (training, compressing, crafting attacks) whose outputs are content-addressed cache
  entries. An :class:`~edgebench.runner.executors.base.Executor` with workers computes it off the scheduler's thread
  (a process of the local pool, a Ray task); the stage's ``fn`` then runs here and finds its outputs cached,
  loads them and records them in the store. With no workers (``--workers 0``, or the inline executor) ``fn``
  computes in place.
- ``device``: a job on a target. ``fn`` prepares it here and returns a :class:`Deferred` whose ``work`` (shipping
  the job, waiting for the agent) runs on a thread of its own, then ``finish`` records the result here. Device
  jobs on different devices run at once; on one device, one at a time (latency runs never overlap on a
  board). A job on this very host (``exclusive``) also waits until no host stage runs, and holds new host
  stages back while it runs, so that its latency is not measured against training on the other cores. While it
  waits, new host stages still start on idle workers: holding them back to drain the host would idle every
  other core for as long as the longest stage in flight (hours, for adversarial training); the job runs when no
  host work is in flight, at the latest once the host work is done.

Every store write happens on the scheduler's thread. A stage that fails with an :class:`EdgebenchError` is
recorded as failed with its one-line reason; stages that depend on it are recorded as skipped; independent
stages go on. A stage whose worker died (killed, out of memory) is retried as often as the executor allows,
then recorded as failed. Ctrl-C stops the workers and returns; everything finished stays stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from edgebench.agent.protocol import raise_interrupt_behind
from edgebench.errors import EdgebenchError
from edgebench.runner.executors.base import Executor, InlineExecutor, Needs
from edgebench.runner.progress import Progress, is_cached

log = logging.getLogger("edgebench")

KINDS = ("main", "host", "device")


@dataclass
class Stage:
    """One unit of work. ``fn`` returns the stage's value, available to dependents via ``values``."""

    name: str
    fn: Callable[[], Any]
    deps: tuple[str, ...] = ()
    describe: str = ""
    kind: str = "main"  #: ``main``, ``host`` or ``device`` (see the module docstring)
    device: str = ""  #: device stages: the physical device (one job at a time on it)
    exclusive: bool = False  #: device stages on this host: never alongside host work
    task: Callable[[], tuple[Any, Needs]] | None = None  #: host stages: the picklable task a worker runs, and
    #: what it needs of the worker (see :mod:`edgebench.runner.executors`)
    cached: Callable[[], bool] | None = None  #: host stages: True when ``fn`` would only load from the cache
    gpu: Callable[[], bool] | None = None  #: host stages: True when it computes on a GPU (see ``gpu_slots``)


@dataclass
class Deferred:
    """What a device stage's ``fn`` returns when there is slow work to do: ``work()`` runs on a thread, then
    ``finish(result)`` runs on the scheduler's thread and gives the stage's value."""

    work: Callable[[], Any]
    finish: Callable[[Any], Any]


@dataclass
class Outcome:
    """What happened to every stage: values of the finished ones, reasons for the others."""

    values: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def dependencies_first(stages: list[Stage]) -> list[Stage]:
    """``stages`` reordered so that each comes after the stages it depends on, otherwise in the order given (a list
    already in that order comes back unchanged). A dependency that is not in the list is left to :func:`execute`."""
    names = {s.name for s in stages}
    placed: set[str] = set()
    out: list[Stage] = []
    waiting = list(stages)
    while waiting:
        ready = next((s for s in waiting if all(d in placed or d not in names for d in s.deps)), waiting[0])
        waiting.remove(ready)  # waiting[0] only on a cycle, which the plan's checks rule out
        out.append(ready)
        placed.add(ready.name)
    return out


def execute(stages: list[Stage], *, on_status: Callable[[str, str, str, float], None] | None = None,
            outcome: Outcome | None = None, progress: Progress | None = None,
            executor: Executor | None = None, gpu_slots: int | None = None) -> Outcome:
    """Run ``stages`` (dependencies must come first in the list); log ``[k/N] name`` as each ends. Values land
    in ``outcome`` as they finish, so later stages can read earlier ones' values. ``executor`` computes host
    stages (default: in place, one at a time). ``progress``, when given, is told of every stage (queued,
    started, finished as done/cached/failed/skipped) and closed at the end. ``gpu_slots``: at most this many host
    stages that compute on a GPU run at once on the executor's workers (None: no limit; CPU stages beside them as
    before)."""
    progress = progress if progress is not None else Progress(mode="off")
    executor = executor if executor is not None else InlineExecutor()
    progress.workers = max(1, executor.workers)
    progress.begin([s.name for s in stages])
    try:
        return _Scheduler(stages, on_status, outcome if outcome is not None else Outcome(), progress, executor,
                          gpu_slots).run()
    finally:
        progress.close()


class _Scheduler:
    def __init__(self, stages: list[Stage], on_status: Callable[[str, str, str, float], None] | None,
                 out: Outcome, progress: Progress, executor: Executor, gpu_slots: int | None = None) -> None:
        for s in stages:
            if s.kind not in KINDS:
                raise ValueError(f"stage {s.name}: kind {s.kind!r} is not one of {KINDS}")
        self.pending = list(stages)
        self.n = len(stages)
        self.k = 0
        self.on_status, self.out, self.progress, self.executor = on_status, out, progress, executor
        self.host: dict[Future, tuple[Stage, float, int]] = {}  # running host work: stage, start, attempt
        self.device: dict[Future, tuple[Stage, float, Deferred]] = {}
        self.busy: set[str] = set()  # devices with a job running
        self.exclusive_running = False
        self.gpu_slots = gpu_slots  # at most this many GPU host stages at once (None: any number)

    def _gpu_full(self, stage: Stage) -> bool:
        """Whether ``stage`` computes on a GPU and ``gpu_slots`` of those already run."""
        if self.gpu_slots is None or stage.gpu is None or not stage.gpu():
            return False
        return sum(1 for s, _, _ in self.host.values() if s.gpu is not None and s.gpu()) >= self.gpu_slots

    # ---------------------------------------------------------------------------------------------
    def run(self) -> Outcome:
        try:
            while self.pending or self.host or self.device:
                started = self._start_ready()
                if not (self.host or self.device):
                    if started:
                        continue
                    if self.pending:  # nothing can start and nothing runs: a dependency is not in the list
                        for s in self.pending:
                            missing = [d for d in s.deps if d not in self.out.values]
                            self._skip(s, f"needs {missing[0] if missing else '?'}, which is not in the plan")
                        self.pending.clear()
                    break
                done, _ = wait([*self.host, *self.device], return_when=FIRST_COMPLETED)
                for fut in done:
                    if fut in self.host:
                        self._host_done(fut)
                    else:
                        self._device_done(fut)
        except BaseException:
            self.executor.shutdown(cancel=True)
            raise
        return self.out

    def _start_ready(self) -> bool:
        """Start every stage that can start now; True if any did (or was skipped)."""
        any_started = False
        for stage in list(self.pending):
            blocked = [d for d in stage.deps if d in self.out.failed or d in self.out.skipped]
            if blocked:
                self.pending.remove(stage)
                self._skip(stage, f"needs {blocked[0]}, which did not finish")
                any_started = True
                continue
            if not all(d in self.out.values for d in stage.deps):
                continue
            if stage.kind == "device":
                if stage.device in self.busy:
                    continue
                if stage.exclusive and (self.host or self.exclusive_running):
                    continue
                self.pending.remove(stage)
                self._start_device(stage)
                any_started = True
            elif stage.kind == "host":
                if self.exclusive_running:
                    continue
                inline = self.executor.workers == 0 or stage.task is None or (stage.cached and stage.cached())
                if inline:
                    self.pending.remove(stage)
                    self._call(stage, stage.fn)
                    any_started = True
                elif len(self.host) < self.executor.workers and not self._gpu_full(stage):
                    self.pending.remove(stage)
                    self._submit(stage, 1)
                    any_started = True
            else:
                self.pending.remove(stage)
                self._call(stage, stage.fn)
                any_started = True
        return any_started

    # host -----------------------------------------------------------------------------------------
    def _submit(self, stage: Stage, attempt: int, t0: float | None = None) -> None:
        if attempt == 1:
            self.progress.started(stage.name)
        assert stage.task is not None
        task, needs = stage.task()
        self.host[self.executor.submit(task, needs)] = (stage, t0 or time.perf_counter(), attempt)
        self.progress.workers = max(1, self.executor.workers)  # known once the executor has started

    def _host_done(self, fut: Future) -> None:
        stage, t0, attempt = self.host.pop(fut)
        try:
            report = fut.result()
        except EdgebenchError as exc:
            self._fail(stage, str(exc), time.perf_counter() - t0)
            return
        except Exception as exc:  # noqa: BLE001 - a lost worker is the executor's to judge
            why = self.executor.lost(exc, fut)
            if why is None:
                raise
            if attempt <= self.executor.retries:
                log.warning("%s: %s; retrying (attempt %d of %d)", stage.name, why, attempt + 1,
                            self.executor.retries + 1)
                self._submit(stage, attempt + 1, t0)
            else:
                times = f", {attempt} time(s)" if attempt > 1 else ""
                self._fail(stage, f"{why}{times}; nothing of it was kept", time.perf_counter() - t0)
            return
        self.executor.collect(report)
        self._call(stage, stage.fn, t0=t0, report=report)

    # device ---------------------------------------------------------------------------------------
    def _start_device(self, stage: Stage) -> None:
        self.progress.started(stage.name)
        t0 = time.perf_counter()
        try:
            value = stage.fn()
        except EdgebenchError as exc:
            raise_interrupt_behind(exc)  # a Ctrl-C in disguise stops the run, not the stage
            self._fail(stage, str(exc), time.perf_counter() - t0)
            return
        if not isinstance(value, Deferred):
            self._done(stage, value, time.perf_counter() - t0)
            return
        fut: Future = Future()

        def work() -> None:
            try:
                fut.set_result(value.work())
            except BaseException as exc:  # noqa: BLE001 - handed to the scheduler's thread
                fut.set_exception(exc)

        self.device[fut] = (stage, t0, value)
        self.busy.add(stage.device)
        self.exclusive_running = self.exclusive_running or stage.exclusive
        # a daemon thread: Ctrl-C must not wait for a job on a slow board to end
        threading.Thread(target=work, name=f"edgebench-{stage.device}", daemon=True).start()

    def _device_done(self, fut: Future) -> None:
        stage, t0, deferred = self.device.pop(fut)
        self.busy.discard(stage.device)
        if stage.exclusive:
            self.exclusive_running = False
        try:
            result = fut.result()
        except EdgebenchError as exc:
            self._fail(stage, str(exc), time.perf_counter() - t0)
            return
        self._call(stage, lambda: deferred.finish(result), t0=t0)

    # recording ------------------------------------------------------------------------------------
    def _call(self, stage: Stage, fn: Callable[[], Any], *, t0: float | None = None,
              report: dict[str, Any] | None = None) -> None:
        if t0 is None:
            self.progress.started(stage.name)
            t0 = time.perf_counter()
        try:
            value = fn()
        except EdgebenchError as exc:
            raise_interrupt_behind(exc)  # a Ctrl-C in disguise stops the run, not the stage
            self._fail(stage, str(exc), time.perf_counter() - t0)
            return
        if report is not None and hasattr(value, "cached"):  # computed by a worker: say what it did, and who
            value.cached = bool(report.get("cached"))
            value.note = report.get("note", getattr(value, "note", ""))
            value.worker = {k: report[k] for k in ("pid", "host", "node", "shared_cache", "threads", "seconds")
                            if k in report}
        self._done(stage, value, time.perf_counter() - t0)

    def _done(self, stage: Stage, value: Any, dt: float) -> None:
        self.out.values[stage.name] = value
        self.k += 1
        note = getattr(value, "note", "") or ""
        self.progress.finished(stage.name, "cached" if is_cached(value) else "done", dt)
        log.info("[%d/%d] %s%s (%.1f s)", self.k, self.n, stage.name, f": {note}" if note else "", dt)
        if self.on_status:
            self.on_status(stage.name, "done", note, dt)

    def _fail(self, stage: Stage, why: str, dt: float) -> None:
        self.out.failed[stage.name] = why
        self.k += 1
        self.progress.finished(stage.name, "failed", dt)
        log.error("[%d/%d] %s: FAILED: %s", self.k, self.n, stage.name, why)
        if self.on_status:
            self.on_status(stage.name, "failed", why, dt)

    def _skip(self, stage: Stage, why: str) -> None:
        self.out.skipped[stage.name] = why
        self.k += 1
        self.progress.finished(stage.name, "skipped", 0.0)
        log.warning("[%d/%d] %s: skipped (%s)", self.k, self.n, stage.name, why)
        if self.on_status:
            self.on_status(stage.name, "skipped", why, 0.0)
