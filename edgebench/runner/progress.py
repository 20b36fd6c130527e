"""A live view of a run's stages: done / running / queued / failed, per kind of stage and per device target,
with rates and an estimate of the time left.

:func:`edgebench.runner.stages.execute` tells a :class:`Progress` what happens (:meth:`Progress.begin` with the
full list, then :meth:`~Progress.started` and :meth:`~Progress.finished` per stage, :meth:`~Progress.close` at
the end). What it shows depends on where it writes:

- a terminal (``stream.isatty()``): one block at the bottom of the screen, redrawn in place (ANSI cursor-up and
  clear, at most every ``min_interval`` seconds, and once a second by a ticker thread so the running stage's
  clock moves). Log records written to the same stream clear the block, print, and redraw it, so they are
  never garbled. When the run ends the block is erased and one summary line is logged.
- anything else (CI, pipes, log files): nothing live. The per-stage ``[k/N] name: note (x s)`` lines that
  ``execute`` logs stay as they are, and one summary line is logged at the end.

``EDGEBENCH_PROGRESS=0`` turns it off (no block, no summary line); ``EDGEBENCH_PROGRESS=1`` draws the live block
even when the stream is not a terminal.

The ETA adds up, over the stages still queued or running, the mean duration of the measured stages of the
same group (a device target/backend, else the kind: ``model``, ``compress``, ``craft`` ...), falling back to the
kind's mean and then to the mean over every measured stage; host stages' share is divided by the executor's
workers (they run that many at once) and device targets count as running beside each other (the longest
target's share counts, as if device jobs followed host work: an upper estimate). Only stages that did real
work count as measured: cached ones (their value says ``(cached)`` or ``already measured``, or has
``cached = True``) take no time and would make the estimate far too short; failed and skipped ones are left out
too. Until one stage is measured the ETA reads ``–``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

log = logging.getLogger("edgebench")

ENV = "EDGEBENCH_PROGRESS"
HOST_KINDS = ("model", "compress", "craft")  # the stages an executor's workers compute, ``workers`` at a time
STATUSES = ("done", "cached", "failed", "skipped")
_ON = {"1", "on", "yes", "true"}
_OFF = {"0", "off", "no", "false"}
_CACHED_MARKERS = ("(cached)", "already measured")


def is_cached(value: Any) -> bool:
    """Whether a stage's value says it was taken from a cache rather than computed: its ``cached`` attribute
    (the pipeline's stage values have one), else a ``note`` that says ``(cached)`` or ``already measured``."""
    flag = getattr(value, "cached", None)
    if isinstance(flag, bool):
        return flag
    note = getattr(value, "note", "")
    return isinstance(note, str) and any(m in note for m in _CACHED_MARKERS)


def mode_for(stream: TextIO, env: str | None = None) -> str:
    """``"live"``, ``"log"`` (summary line only) or ``"off"``, from ``EDGEBENCH_PROGRESS`` (``env`` when
    given, else the environment) and whether ``stream`` is a terminal. An unknown value counts as unset."""
    value = (os.environ.get(ENV, "") if env is None else env).strip().lower()
    if value in _OFF:
        return "off"
    if value in _ON:
        return "live"
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        tty = False
    return "live" if tty else "log"


def group_of(name: str) -> tuple[str, str]:
    """``(kind, group label)`` of a stage name: ``device/local/onnxruntime/cnn`` ->
    ``("device", "device local/onnxruntime")``; ``compress/cnn/int8`` -> ``("compress", "compress")``."""
    parts = name.split("/")
    if parts[0] in ("device", "latency") and len(parts) >= 3:
        return "device", f"{parts[0]} {parts[1]}/{parts[2]}"
    return parts[0], parts[0]


def fmt_clock(seconds: float) -> str:
    """``12s``, ``3m12s``, ``1h03m``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def fmt_eta(seconds: float) -> str:
    """A rough duration: ``~40s``, ``~6m``, ``~1h05m``."""
    s = max(0.0, seconds)
    if s < 60:
        return f"~{s:.0f}s"
    if s < 3600:
        return f"~{round(s / 60)}m"
    return f"~{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def fmt_rate(mean: float) -> str:
    """A group's rate as its mean seconds per stage: ``0.04 s/stage``, ``12.3 s/stage``, ``2m05s/stage``."""
    if mean < 0.01:
        return "<0.01 s/stage"
    if mean < 1.0:
        return f"{mean:.2f} s/stage"
    if mean < 60.0:
        return f"{mean:.1f} s/stage"
    return f"{fmt_clock(mean)}/stage"


@dataclass
class Counts:
    """How many stages are in each state."""

    total: int = 0
    done: int = 0  # finished with a value, cached ones included
    cached: int = 0
    running: int = 0
    queued: int = 0
    failed: int = 0
    skipped: int = 0


@dataclass
class _Stage:
    name: str
    kind: str
    group: str
    status: str = "queued"  # queued, running, done, cached, failed, skipped
    started: float = 0.0
    seconds: float = 0.0


class _Glyphs:
    """Separators that the stream can encode (a terminal on an ASCII locale gets ASCII)."""

    def __init__(self, stream: TextIO) -> None:
        enc = getattr(stream, "encoding", None) or "utf-8"
        try:
            "·–▸".encode(enc)
            self.dot, self.dash, self.arrow = "·", "–", "▸"
        except (UnicodeEncodeError, LookupError):
            self.dot, self.dash, self.arrow = "|", "-", ">"


class _BlockAwareHandler(logging.Handler):
    """Stands in for a handler that writes to the progress stream: erases the block, lets the real handler
    write, redraws the block."""

    def __init__(self, inner: logging.Handler, progress: Progress) -> None:
        super().__init__(inner.level)
        self.inner, self.progress = inner, progress

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        with self.progress._lock:
            self.progress._erase()
            try:
                return bool(self.inner.handle(record))
            finally:
                self.progress._draw()

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does the work
        self.inner.emit(record)


class Progress:
    """The state of a run's stages and its rendering; see the module docstring.

    ``stream`` defaults to ``sys.stderr`` (looked up when made); ``mode`` (``"live"``, ``"log"``, ``"off"``)
    defaults to :func:`mode_for`; ``clock`` is the time source (monotonic seconds); ``min_interval`` the shortest
    time between two redraws; ``tick`` how often a background thread redraws a live block (0: never, for
    tests); ``width``/``height`` the terminal size (default: asked of the stream's terminal)."""

    def __init__(self, stream: TextIO | None = None, *, mode: str | None = None,
                 clock: Callable[[], float] = time.monotonic, min_interval: float = 0.25, tick: float = 1.0,
                 width: int | None = None, height: int | None = None) -> None:
        import sys

        self.stream: TextIO = stream if stream is not None else sys.stderr
        self.mode = mode or mode_for(self.stream)
        if self.mode not in ("live", "log", "off"):
            raise ValueError(f"progress mode {self.mode!r}: use live, log or off")
        self.clock, self.min_interval, self.tick = clock, min_interval, tick
        self._width, self._height = width, height
        self.glyphs = _Glyphs(self.stream)
        self.stages: dict[str, _Stage] = {}
        self.workers = 1  #: host stages that run at once (the scheduler sets it from the executor)
        self.t0 = 0.0
        self.draws = 0  # how many times the block was drawn (for tests and curiosity)
        self._lock = threading.RLock()
        self._lines = 0  # lines of the block now on screen
        self._last_draw: float | None = None
        self._dirty = False
        self._closed = False
        self._swapped: list[tuple[logging.Logger, int, logging.Handler]] = []
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def live(self) -> bool:
        return self.mode == "live"

    # events ---------------------------------------------------------------------------------------
    def begin(self, names: Sequence[str]) -> None:
        """The run starts with these stages, all queued."""
        with self._lock:
            self.t0 = self.clock()
            for name in names:
                kind, group = group_of(name)
                self.stages[name] = _Stage(name, kind, group)
            if self.live:
                self._wrap_handlers()
                if self.tick > 0:
                    self._ticker = threading.Thread(target=self._tick, name="edgebench-progress", daemon=True)
                    self._ticker.start()
            self._maybe_draw(force=True)

    def started(self, name: str) -> None:
        """Stage ``name`` starts running."""
        with self._lock:
            st = self._get(name)
            st.status, st.started = "running", self.clock()
            self._maybe_draw()

    def finished(self, name: str, status: str, seconds: float) -> None:
        """Stage ``name`` ended: ``status`` is done, cached, failed or skipped; ``seconds`` its duration."""
        if status not in STATUSES:
            raise ValueError(f"stage status {status!r}: use one of {', '.join(STATUSES)}")
        with self._lock:
            st = self._get(name)
            st.status, st.seconds = status, float(seconds)
            self._maybe_draw()

    def close(self) -> None:
        """The run is over (or interrupted): stop the ticker, erase the block, put the log handlers back and
        log one summary line (not when off). Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2.0)
        with self._lock:
            self._erase()
            self._unwrap_handlers()
        if self.mode != "off" and self.stages:
            log.info("%s", self.summary())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # state ----------------------------------------------------------------------------------------
    def _get(self, name: str) -> _Stage:
        if name not in self.stages:  # a stage nobody announced: track it anyway
            kind, group = group_of(name)
            self.stages[name] = _Stage(name, kind, group)
        return self.stages[name]

    def counts(self, names: Iterable[str] | None = None) -> Counts:
        """How many stages (of ``names``, default all) are in each state."""
        c = Counts()
        for st in (self.stages[n] for n in names) if names is not None else self.stages.values():
            c.total += 1
            if st.status in ("done", "cached"):
                c.done += 1
                c.cached += st.status == "cached"
            else:
                setattr(c, st.status, getattr(c, st.status) + 1)
        return c

    def means(self) -> tuple[dict[str, float], dict[str, float], float | None]:
        """Mean seconds of the measured stages (done, not cached) per group, per kind, and over all of them."""
        by_group: dict[str, list[float]] = {}
        by_kind: dict[str, list[float]] = {}
        for st in self.stages.values():
            if st.status == "done":
                by_group.setdefault(st.group, []).append(st.seconds)
                by_kind.setdefault(st.kind, []).append(st.seconds)
        every = [s for v in by_kind.values() for s in v]
        return ({g: sum(v) / len(v) for g, v in by_group.items()}, {k: sum(v) / len(v) for k, v in by_kind.items()},
                sum(every) / len(every) if every else None)

    def eta(self) -> float | None:
        """Seconds left (see the module docstring), 0 when nothing is left, None before any measurement."""
        left = [st for st in self.stages.values() if st.status in ("queued", "running")]
        if not left:
            return 0.0
        by_group, by_kind, overall = self.means()
        if overall is None:
            return None
        now = self.clock()
        host, scheduler, devices = 0.0, 0.0, {}  # seconds of work left: host stages, scheduler's, per device target
        for st in left:
            mean = by_group.get(st.group, by_kind.get(st.kind, overall))
            rest = max(mean - (now - st.started), 0.0) if st.status == "running" else mean
            if st.kind == "device":
                target = st.group.split(" ", 1)[-1].split("/")[0]
                devices[target] = devices.get(target, 0.0) + rest
            elif st.kind in HOST_KINDS:
                host += rest
            else:
                scheduler += rest
        # host stages share the executor's workers; device targets run beside each other, their jobs in turn
        return scheduler + host / max(1, self.workers) + max(devices.values(), default=0.0)

    def elapsed(self) -> float:
        return self.clock() - self.t0 if self.stages else 0.0

    # rendering ------------------------------------------------------------------------------------
    def header(self) -> str:
        """``stages 23/73 done · 1 running · 48 queued · 1 failed · elapsed 3m12s · ETA ~6m``."""
        g, c = self.glyphs, self.counts()
        parts = [f"stages {c.done}/{c.total} done", f"{c.running} running", f"{c.queued} queued"]
        parts += [f"{c.failed} failed"] if c.failed else []
        parts += [f"{c.skipped} skipped"] if c.skipped else []
        parts.append(f"elapsed {fmt_clock(self.elapsed())}")
        eta = self.eta()
        if eta is None:
            parts.append(f"ETA {g.dash}")
        elif c.running or c.queued:
            parts.append(f"ETA {fmt_eta(eta)}")
        return f" {g.dot} ".join(parts)

    def group_lines(self) -> list[str]:
        """One line per group, in the order the groups first appear in the plan."""
        g = self.glyphs
        groups: dict[str, list[_Stage]] = {}
        for st in self.stages.values():
            groups.setdefault(st.group, []).append(st)
        by_group, _, _ = self.means()
        label_w = max((len(k) for k in groups), default=0)
        frac_w = max((len(f"{len(v)}/{len(v)}") for v in groups.values()), default=0)
        now, lines = self.clock(), []
        for label, members in groups.items():
            c = self.counts(st.name for st in members)
            bits = []
            running = [st for st in members if st.status == "running"]
            if running:
                more = f" (+{len(running) - 1} more)" if len(running) > 1 else ""
                bits.append(f"{g.arrow} {running[0].name} {fmt_clock(now - running[0].started)}{more}")
            elif c.queued:
                bits.append(f"{c.queued} queued")
            else:
                bits.append("finished")
            if label in by_group:
                bits.append(fmt_rate(by_group[label]))
            bits += [f"{c.cached} cached"] if c.cached else []
            bits += [f"{c.failed} failed"] if c.failed else []
            bits += [f"{c.skipped} skipped"] if c.skipped else []
            frac = f"{c.done}/{c.total}"
            lines.append(f"  {label:<{label_w}}  {frac:>{frac_w}}  " + f" {g.dot} ".join(bits))
        return lines

    def render(self) -> list[str]:
        """The live block's lines, cut to the terminal's width and height."""
        lines = [self.header(), *self.group_lines()]
        width, height = self._size()
        if len(lines) > height - 1:
            keep = max(height - 2, 1)
            lines = [*lines[:keep], f"  ... {len(lines) - keep} more"]
        return [ln[: width - 1] for ln in lines]  # a line that wraps would break the cursor-up count

    def summary(self) -> str:
        """One line for the end of the run: ``stages 70/73 done (12 cached), 1 failed, 2 skipped in 3m12s``."""
        c = self.counts()
        text = f"stages {c.done}/{c.total} done" + (f" ({c.cached} cached)" if c.cached else "")
        text += f", {c.failed} failed" if c.failed else ""
        text += f", {c.skipped} skipped" if c.skipped else ""
        text += f", {c.running + c.queued} not run" if c.running or c.queued else ""
        return f"{text} in {fmt_clock(self.elapsed())}"

    # drawing --------------------------------------------------------------------------------------
    def _size(self) -> tuple[int, int]:
        width, height = self._width, self._height
        if width is None or height is None:
            try:
                size = os.get_terminal_size(self.stream.fileno())
                cols, rows = size.columns, size.lines
            except (AttributeError, OSError, ValueError):
                cols, rows = 100, 40
            width, height = width or cols, height or rows
        return max(width, 20), max(height, 3)

    def _maybe_draw(self, *, force: bool = False) -> None:
        if not self.live or self._closed:
            return
        now = self.clock()
        if not force and self._last_draw is not None and now - self._last_draw < self.min_interval:
            self._dirty = True  # drawn by the next event or tick
            return
        self._erase()
        self._draw()

    def _erase(self) -> None:
        if self._lines:
            self.stream.write(f"\r\x1b[{self._lines}A\x1b[J")
            self.stream.flush()
            self._lines = 0

    def _draw(self) -> None:
        if not self.live or self._closed:
            return
        lines = self.render()
        self.stream.write("".join(f"{ln}\n" for ln in lines))
        self.stream.flush()
        self._lines, self._last_draw, self._dirty = len(lines), self.clock(), False
        self.draws += 1

    def _tick(self) -> None:
        while not self._stop.wait(self.tick):
            with self._lock:
                if self._closed:
                    return
                self._erase()
                self._draw()

    def _wrap_handlers(self) -> None:
        """Swap each handler that writes to our stream (on the ``edgebench`` logger and its ancestors) for one
        that erases the block first and redraws it after."""
        logger: logging.Logger | None = log
        while logger is not None:
            for i, h in enumerate(list(logger.handlers)):
                if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is self.stream:
                    wrapper = _BlockAwareHandler(h, self)
                    logger.handlers[i] = wrapper
                    self._swapped.append((logger, i, h))
            logger = logger.parent if logger.propagate else None

    def _unwrap_handlers(self) -> None:
        for logger, i, h in reversed(self._swapped):
            if i < len(logger.handlers) and isinstance(logger.handlers[i], _BlockAwareHandler):
                logger.handlers[i] = h
            else:  # the list changed meanwhile: find the wrapper by identity
                for j, cur in enumerate(logger.handlers):
                    if isinstance(cur, _BlockAwareHandler) and cur.inner is h:
                        logger.handlers[j] = h
        self._swapped.clear()
