"""The local executor: host stages in a bounded pool of worker processes on this machine.

The pool is sized to the machine: at most one worker per core (``os.sched_getaffinity``), and no more than the
available memory holds at the stages' declared need (:class:`~edgebench.runner.stages.Needs`, estimated from the
data set); each worker's torch gets ``cores // workers`` threads, so two workers on two cores do not fight over
both. Workers are started with ``spawn`` (never forked from a process that has torch's thread pools running),
ignore Ctrl-C (the scheduler stops them), and share this machine's cache folder, so nothing is copied.

A worker that dies (SIGKILL, the kernel's out-of-memory killer) breaks the pool: the stages it and its peers
were running are retried once on a fresh pool, then recorded as failed; finished stages are never redone.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from edgebench.runner.executors.base import BASE_MB, EXECUTORS

log = logging.getLogger("edgebench")

#: with ``--workers auto``, fewer host stages to compute than this run in the scheduler's process
MIN_POOL_STAGES = 4


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def available_mb() -> int:
    import psutil

    return int(psutil.virtual_memory().available / 2**20)


def _init_worker(threads: int, parent: int, quiet: bool) -> None:
    import signal
    import threading

    from edgebench.logs import quiet_third_party
    from edgebench.runner.worker import set_threads

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the scheduler's to handle
    set_threads(threads)
    if quiet:  # the run is not verbose: NNCF's INFO lines stay out of the workers' output too
        quiet_third_party()
    threading.Thread(target=_exit_with, args=(parent,), name="edgebench-parent-watch", daemon=True).start()


def _exit_with(parent: int) -> None:
    """End this worker as soon as the run that started it is gone (SIGKILLed, say). Its task queue never reports
    the end (every worker holds both ends of it), so an orphan would wait, or compute, for nobody forever; what
    it was building is a temporary folder that the next build of that kind removes."""
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


@EXECUTORS.register("local")
class LocalExecutor:
    """``workers``: the pool's size (None: one per core, as the memory allows); ``threads``: torch threads per
    worker (None: ``cores // workers``)."""

    name = "local"
    retries = 1

    def __init__(self, workers: int | None = None, threads: int | None = None) -> None:
        self._auto = workers is None  # sized to the machine (and the run may decide it needs no pool at all)
        n = workers if workers is not None else cores()
        self.workers = max(1, n)
        self.fixed_threads = threads
        self.threads = threads or max(1, cores() // self.workers)
        self._pool: ProcessPoolExecutor | None = None
        self._generation = 0
        self._sized = False

    def fit(self, to_compute: Any) -> None:
        """With ``--workers auto``, compute in the scheduler's process (``workers`` = 0) when there is too little
        to compute for a pool's start-up (a few seconds per worker: importing torch) to pay off."""
        if not self._auto:
            return
        todo = to_compute()
        if todo is not None and todo < MIN_POOL_STAGES:
            log.info("executor: %d host stage(s) to compute; computing them in this process (fewer than %d: a "
                     "worker pool's start-up would cost more than it saves)", todo, MIN_POOL_STAGES)
            self.workers = 0

    def _size(self, needs: Any) -> None:
        """Fit the pool to the memory, once, at the first stage that needs a worker."""
        self._sized = True
        need = max(BASE_MB, int(getattr(needs, "memory_mb", 0) or 0))
        avail = available_mb()
        fits = max(1, avail // need)
        if fits < self.workers:
            log.warning("local executor: %d worker(s) asked, but %d MiB available holds %d at ~%d MiB each; "
                        "using %d", self.workers, avail, fits, need, fits)
            self.workers = fits
            self.threads = self.fixed_threads or max(1, cores() // self.workers)
        log.info("local executor: %d worker process(es) × %d thread(s) (%d cores, %d MiB available, ~%d MiB per "
                 "stage)", self.workers, self.threads, cores(), avail, need)

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing

            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker, initargs=(self.threads, os.getpid(),
                                                       logging.getLogger().getEffectiveLevel() > logging.DEBUG))
            self._generation += 1
        return self._pool

    def submit(self, task: Any, needs: Any) -> Future:
        import dataclasses

        from edgebench.runner.worker import run_host_task

        if not self._sized:
            self._size(needs)
        pool = self._ensure_pool()
        fut = pool.submit(run_host_task, dataclasses.replace(task, threads=self.threads))
        fut.generation = self._generation  # type: ignore[attr-defined]
        return fut

    def lost(self, exc: BaseException, fut: Future | None = None) -> str | None:
        if not isinstance(exc, BrokenProcessPool):
            return None
        # every stage the broken pool was running fails with it: drop that pool once; the retries start a new one
        if self._pool is not None and getattr(fut, "generation", self._generation) == self._generation:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        return "its worker process died (killed, or out of memory)"

    def collect(self, report: dict[str, Any]) -> None:
        pass  # the workers write this machine's cache

    def shutdown(self, cancel: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if cancel:
            processes = list((getattr(pool, "_processes", None) or {}).values())  # the stdlib gives no public handle
            pool.shutdown(wait=False, cancel_futures=True)
            for p in processes:
                if p.is_alive():
                    p.terminate()
            for p in processes:
                p.join(timeout=5)
        else:
            pool.shutdown(wait=True)

    def describe(self) -> str:
        if self.workers == 0:
            return "host stages run in this process, one at a time"
        return f"local pool of {self.workers} worker process(es) × {self.threads} thread(s)"
