"""A plan as an ordered graph of named stages with dependencies, and the loop that runs it.

A stage that fails with an :class:`EdgebenchError` is recorded as failed with its one-line reason;
stages that depend on it are recorded as skipped; independent stages go on. Ctrl-C stops after
recording the run as interrupted; everything finished stays stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgebench.errors import EdgebenchError
from edgebench.runner.progress import Progress, is_cached

log = logging.getLogger("edgebench")


@dataclass
class Stage:
    """One unit of work. ``fn`` returns the stage's value, available to dependents via ``values``."""

    name: str
    fn: Callable[[], Any]
    deps: tuple[str, ...] = ()
    describe: str = ""


@dataclass
class Outcome:
    """What happened to every stage: values of the finished ones, reasons for the others."""

    values: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def execute(stages: list[Stage], *, on_status: Callable[[str, str, str, float], None] | None = None,
            outcome: Outcome | None = None, progress: Progress | None = None) -> Outcome:
    """Run ``stages`` in order (dependencies must come first); log ``[k/N] name`` for each. Values land in
    ``outcome`` as they finish, so later stages can read earlier ones' values. ``progress``, when given, is
    told of every stage (queued, started, finished as done/cached/failed/skipped) and closed at the end."""
    progress = progress if progress is not None else Progress(mode="off")
    progress.begin([s.name for s in stages])
    try:
        return _run(stages, on_status, outcome if outcome is not None else Outcome(), progress)
    finally:
        progress.close()


def _run(stages: list[Stage], on_status: Callable[[str, str, str, float], None] | None, out: Outcome,
         progress: Progress) -> Outcome:
    n = len(stages)
    for i, stage in enumerate(stages, 1):
        blocked = [d for d in stage.deps if d in out.failed or d in out.skipped]
        if blocked:
            reason = f"needs {blocked[0]}, which did not finish"
            out.skipped[stage.name] = reason
            progress.finished(stage.name, "skipped", 0.0)
            log.warning("[%d/%d] %s: skipped (%s)", i, n, stage.name, reason)
            if on_status:
                on_status(stage.name, "skipped", reason, 0.0)
            continue
        progress.started(stage.name)
        t0 = time.perf_counter()
        try:
            out.values[stage.name] = stage.fn()
        except EdgebenchError as exc:
            out.failed[stage.name] = str(exc)
            progress.finished(stage.name, "failed", time.perf_counter() - t0)
            log.error("[%d/%d] %s: FAILED: %s", i, n, stage.name, exc)
            if on_status:
                on_status(stage.name, "failed", str(exc), time.perf_counter() - t0)
            continue
        dt = time.perf_counter() - t0
        note = out.values[stage.name].note if hasattr(out.values[stage.name], "note") else ""
        progress.finished(stage.name, "cached" if is_cached(out.values[stage.name]) else "done", dt)
        log.info("[%d/%d] %s%s (%.1f s)", i, n, stage.name, f": {note}" if note else "", dt)
        if on_status:
            on_status(stage.name, "done", note, dt)
    return out
