"""A background thread that reads a power sensor at a fixed rate while the agent times a model. DEVICE SIDE.

Samples and markers share one clock, :func:`time.perf_counter_ns`: the agent calls :meth:`PowerSampler.mark`
at the start and end of a timed window and later integrates the samples between the two marks
(:func:`edgebench.metrics.energy.window_energy`). ``epoch_offset_ns`` turns those marks into epoch time for
sensors that keep their own timestamped log (:meth:`PowerSensor.log_between`).

The thread sleeps between reads (an :class:`threading.Event` wait against absolute deadlines, so the rate does
not drift and nothing spins); each sample is stamped at the midpoint of its read, since reading some sensors
takes milliseconds (``vcgencmd`` runs a process). :meth:`start` returns once the first sample is stored, and
:meth:`stop` takes one last sample, so any window marked between the two is covered by samples on both sides.
A read error ends sampling and is kept in :attr:`PowerSampler.error`; it never escapes the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from array import array

import numpy as np

from edgebench.errors import ConfigError
from edgebench.sensors.base import PowerSensor

log = logging.getLogger(__name__)


class PowerSampler:
    """Read ``sensor`` about ``rate_hz`` times a second on a daemon thread.

    Use::

        sampler = PowerSampler(sensor, rate_hz=10)
        sampler.start()
        t0 = sampler.mark(); ...timed loop...; t1 = sampler.mark()
        sampler.stop()
        t_ns, values = sampler.samples()      # values: W (power sensor) or cumulative J (energy sensor)
    """

    def __init__(self, sensor: PowerSensor, *, rate_hz: float = 10.0) -> None:
        if isinstance(rate_hz, bool) or not isinstance(rate_hz, (int, float)) or not 0 < rate_hz <= 10_000:
            raise ConfigError(f"power sampler: rate_hz must be in (0, 10000], got {rate_hz!r}")
        self.sensor = sensor
        self.rate_hz = float(rate_hz)
        self.error: str | None = None
        self.epoch_offset_ns = 0
        self._t = array("q")
        self._v = array("d")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def kind(self) -> str:
        """The sensor's kind: ``"power"`` (values are W) or ``"energy"`` (values are cumulative J)."""
        return self.sensor.kind

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _sample(self) -> bool:
        a = time.perf_counter_ns()
        try:
            value = float(self.sensor.read())
        except Exception as exc:  # the thread must not die silently: keep the reason for the agent
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning("power sampling stopped: %s", self.error)
            return False
        b = time.perf_counter_ns()
        with self._lock:
            self._t.append((a + b) // 2)
            self._v.append(value)
        return True

    def _run(self) -> None:
        period_ns = int(1e9 / self.rate_hz)
        try:
            ok = self._sample()
            self._first.set()
            nxt = time.perf_counter_ns() + period_ns
            while ok:
                if self._stop.wait(max(0, nxt - time.perf_counter_ns()) / 1e9):
                    self._sample()  # one last sample, after every mark made before stop()
                    break
                ok = self._sample()
                nxt += period_ns
                now = time.perf_counter_ns()
                if nxt < now:  # a slow read overran one or more periods: skip them rather than burst
                    nxt = now + period_ns - (now - nxt) % period_ns
        finally:
            self._first.set()

    def start(self, *, timeout_s: float = 10.0) -> PowerSampler:
        """Start sampling; returns once the first sample is stored (or failed: see :attr:`error`)."""
        if self.running:
            return self
        self._stop.clear()
        self._first.clear()
        self.error = None
        self.epoch_offset_ns = time.time_ns() - time.perf_counter_ns()
        self._thread = threading.Thread(target=self._run, name=f"power-sampler-{self.sensor.name}", daemon=True)
        self._thread.start()
        self._first.wait(timeout_s)
        return self

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """Stop sampling (after one last sample) and wait for the thread to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def mark(self) -> int:
        """The current time on the samples' clock (:func:`time.perf_counter_ns`), for a window's edges."""
        return time.perf_counter_ns()

    def to_epoch_s(self, t_ns: int | np.ndarray) -> float | np.ndarray:
        """Sampler-clock nanoseconds as epoch seconds (for :meth:`PowerSensor.log_between`)."""
        return (np.asarray(t_ns, dtype=np.int64) + self.epoch_offset_ns) / 1e9 if isinstance(t_ns, np.ndarray) \
            else (t_ns + self.epoch_offset_ns) / 1e9

    def samples(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the samples so far: ``(t_ns int64 perf_counter_ns, values float64)``, in time order."""
        with self._lock:
            t = np.array(self._t, dtype=np.int64)
            v = np.array(self._v, dtype=np.float64)
        return t, v

    def __len__(self) -> int:
        return len(self._t)

    def __enter__(self) -> PowerSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
