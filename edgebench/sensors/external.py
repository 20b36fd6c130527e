"""The ``external`` sensor: an external power meter's own timestamped log (a USB power meter, a Joulescope or
Otii export, a bench supply or a serial logger writing one line per sample).

The log is a text file, one sample per line: a timestamp and a power value in two columns separated by commas,
semicolons, tabs or spaces (detected from the first data line unless ``delimiter`` is given). An optional
header line names the columns; lines starting with ``#`` and blank lines are skipped, as are data lines that do
not parse (a logger's restart banner). A line counts once it ends with a newline, so a partially written last
line is never read half-way; an unterminated last line is taken once the file has not changed for a second.

- timestamps: ``time_unit`` ``"s"`` (epoch seconds), ``"ms"`` / ``"us"`` (epoch milli/microseconds) or
  ``"iso"`` (ISO 8601, e.g. ``2024-05-01T12:00:00.250+00:00``; without an offset it is local time), plus
  ``clock_offset_s`` when the meter's clock is not this device's (log time + offset = device time);
- power: the column's number times ``scale`` is watts (``scale = 0.001`` for a log in mW).

The agent uses :meth:`ExternalMeterSensor.log_between` with the timed window's epoch times: the rows inside
the window and one either side, so that the integral interpolates at the edges. :meth:`read` returns the newest
row's watts. The reading covers whatever the meter is wired to (usually the wall or USB input: the whole board).
"""

from __future__ import annotations

import os
import re
import time
from array import array
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.errors import ConfigError, DeviceError
from edgebench.sensors import SENSORS
from edgebench.sensors.base import PowerSensor

TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "iso": None}
_NUMBER = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*[A-Za-zµ]*$")
_SETTLE_S = 1.0


def _number(text: str) -> float:
    """``text`` as a float; a trailing unit (``4.95W``) is tolerated. Raises ValueError."""
    try:
        return float(text)
    except ValueError:
        m = _NUMBER.match(text.strip())
        if not m:
            raise
        return float(m.group(1))


@SENSORS.register("external")
class ExternalMeterSensor(PowerSensor):
    """An external meter's log file (kind ``"power"``, watts).

    Args:
        root: accepted for uniformity with the sysfs sensors; ``path`` is used as given.
        path: the log file on the device (required).
        time_column, power_column: column index (0-based) or header name; default the first two columns.
        time_unit: ``"s"``, ``"ms"``, ``"us"`` (epoch) or ``"iso"`` (ISO 8601 date-time).
        scale: factor from the logged number to watts (``0.001`` for mW).
        delimiter: the column separator; default detected (comma, semicolon, tab, else whitespace).
        clock_offset_s: seconds added to the log's timestamps to bring them onto this device's clock.
        margin_s: extra seconds kept either side of a window by :meth:`log_between` (besides one sample).
    """

    name = "external"
    kind = "power"

    def __init__(self, *, root: str = "/", path: str, time_column: int | str = 0, power_column: int | str = 1,
                 time_unit: str = "s", scale: float = 1.0, delimiter: str | None = None,
                 clock_offset_s: float = 0.0, margin_s: float = 0.0) -> None:
        super().__init__(root=root)
        where = "power sensor 'external'"
        if not isinstance(path, str) or not path:
            raise ConfigError(f"{where}: path must name the meter's log file, got {path!r}")
        if time_unit not in TIME_UNITS:
            raise ConfigError(f"{where}: time_unit {time_unit!r} is not one of {', '.join(TIME_UNITS)}")
        for opt, col in (("time_column", time_column), ("power_column", power_column)):
            if isinstance(col, bool) or not isinstance(col, (int, str)) or (isinstance(col, int) and col < 0):
                raise ConfigError(f"{where}: {opt} must be a column index >= 0 or a header name, got {col!r}")
        if time_column == power_column:
            raise ConfigError(f"{where}: time_column and power_column are both {time_column!r}")
        for opt, val in (("scale", scale), ("clock_offset_s", clock_offset_s), ("margin_s", margin_s)):
            if isinstance(val, bool) or not isinstance(val, (int, float)) or not np.isfinite(val):
                raise ConfigError(f"{where}: {opt} must be a finite number, got {val!r}")
        if scale <= 0 or margin_s < 0:
            raise ConfigError(f"{where}: scale must be > 0 and margin_s >= 0 (got scale={scale!r}, "
                              f"margin_s={margin_s!r})")
        if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
            raise ConfigError(f"{where}: delimiter must be one character, got {delimiter!r}")
        self.file = Path(path)
        self.time_column, self.power_column = time_column, power_column
        self.time_unit, self.scale = time_unit, float(scale)
        self.delimiter = delimiter
        self.clock_offset_s, self.margin_s = float(clock_offset_s), float(margin_s)
        self._reset()

    # ------------------------------------------------------------------------------------------- parsing
    def _reset(self) -> None:
        self._pos = 0
        self._ino: int | None = None
        self._t = array("d")
        self._w = array("d")
        self._tail: tuple[float, float] | None = None  # a parsed unterminated last line, taken when settled
        self._delim: str | None = self.delimiter
        self._started = False
        self._cols: tuple[int, int] | None = None
        self._header: list[str] | None = None
        self._skipped = 0

    def _split(self, line: str) -> list[str]:
        if self._delim is None and not self._started:
            self._delim = next((d for d in (",", ";", "\t") if d in line), None)
        parts = line.split(self._delim) if self._delim is not None else line.split()
        return [p.strip().strip('"').strip("'").strip() for p in parts]

    def _resolve(self, header: list[str] | None) -> tuple[int, int]:
        cols = []
        for opt, col in (("time_column", self.time_column), ("power_column", self.power_column)):
            if isinstance(col, int):
                cols.append(col)
                continue
            names = [h.lower() for h in header or []]
            if col.lower() not in names:
                raise DeviceError(f"power sensor 'external': {opt} {col!r} is not a column of {self.file} "
                                  f"(header: {', '.join(header) if header else 'none'})")
            cols.append(names.index(col.lower()))
        return cols[0], cols[1]

    def _time(self, text: str) -> float:
        factor = TIME_UNITS[self.time_unit]
        if factor is None:
            stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T", 1))
            return stamp.timestamp() + self.clock_offset_s
        return _number(text) * factor + self.clock_offset_s

    def _row(self, line: str) -> tuple[float, float] | None:
        """``(epoch s, W)`` of one data line, ``None`` for a comment, the header, or a line that does not parse."""
        s = line.strip()
        if not s or s.startswith("#"):
            return None
        fields = self._split(s)
        if not self._started:  # the first line: a header unless its time column parses
            try:
                if not isinstance(self.time_column, int):
                    raise ValueError("a named column needs a header")
                self._time(fields[self.time_column])
            except (ValueError, IndexError, OverflowError):
                self._cols = self._resolve(fields)
                self._header, self._started = fields, True
                return None
            self._cols = self._resolve(None)
            self._started = True
        assert self._cols is not None
        ti, pi = self._cols
        try:
            return self._time(fields[ti]), _number(fields[pi]) * self.scale
        except (ValueError, IndexError, OverflowError):
            self._skipped += 1
            return None

    def _refresh(self) -> None:
        """Parse the lines appended since the last call (start over if the file was replaced or truncated)."""
        try:
            st = os.stat(self.file)
        except OSError as exc:
            raise DeviceError(f"power sensor 'external': cannot read the meter log {self.file} ({exc}); check the "
                              "path and that the logger is running") from None
        if st.st_ino != self._ino or st.st_size < self._pos:
            self._reset()
            self._ino = st.st_ino
        try:
            with open(self.file, "rb") as f:
                f.seek(self._pos)
                data = f.read()
        except OSError as exc:
            raise DeviceError(f"power sensor 'external': cannot read the meter log {self.file} ({exc})") from None
        end = data.rfind(b"\n") + 1
        for line in data[:end].decode("utf-8", errors="replace").splitlines():
            row = self._row(line)
            if row is not None:
                self._t.append(row[0])
                self._w.append(row[1])
        self._pos += end
        self._tail = None
        rest = data[end:].decode("utf-8", errors="replace")
        if rest.strip() and self._started and time.time() - st.st_mtime > _SETTLE_S:
            skipped = self._skipped  # an unterminated last line, but the writer has stopped: take it, uncommitted
            self._tail = self._row(rest)
            self._skipped = skipped

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        t = np.frombuffer(self._t, dtype=np.float64).copy() if len(self._t) else np.empty(0)
        w = np.frombuffer(self._w, dtype=np.float64).copy() if len(self._w) else np.empty(0)
        if self._tail is not None:
            t, w = np.append(t, self._tail[0]), np.append(w, self._tail[1])
        if t.size > 1 and np.any(np.diff(t) < 0):
            order = np.argsort(t, kind="stable")
            t, w = t[order], w[order]
        return t, w

    # ----------------------------------------------------------------------------------------------- API
    def probe(self) -> str | None:
        try:
            self._refresh()
        except DeviceError as exc:
            return "external meter: " + self._reason(exc)
        except Exception as exc:  # probe never raises
            return f"external meter: cannot parse the log {self.file} ({exc})"
        if not len(self._t) and self._tail is None:
            return (f"external meter: the log {self.file} holds no sample yet (columns {self.time_column!r}, "
                    f"{self.power_column!r}, time_unit {self.time_unit!r}); start the logger, or check the options")
        return None

    def read(self) -> float:
        """The newest logged power, in watts (the logged number times ``scale``)."""
        self._refresh()
        _, w = self._arrays()
        if not w.size:
            raise DeviceError(f"power sensor 'external': the meter log {self.file} holds no sample yet; start the "
                              "logger before the run")
        return float(w[-1])

    def log_between(self, t0_epoch: float, t1_epoch: float) -> tuple[np.ndarray, np.ndarray]:
        """The logged ``(epoch seconds, watts)`` rows with timestamps in ``[t0 - margin_s, t1 + margin_s]``, plus
        the row just before and the row just after, when the log has them. The result does not cover the window
        when the logger has not yet written past ``t1`` or its clock is off (see ``clock_offset_s``)."""
        self._refresh()
        t, w = self._arrays()
        lo = int(np.searchsorted(t, t0_epoch - self.margin_s, side="left"))
        hi = int(np.searchsorted(t, t1_epoch + self.margin_s, side="right"))
        lo, hi = max(lo - 1, 0), min(hi + 1, t.size)
        return t[lo:hi], w[lo:hi]

    def describe(self) -> dict[str, Any]:
        try:
            self._refresh()
            t, _ = self._arrays()
        except DeviceError:
            t = np.empty(0)
        return {
            "name": self.name, "kind": self.kind, "unit": self.unit, "path": str(self.file),
            "columns": {"time": self.time_column, "power": self.power_column},
            "header": self._header, "time_unit": self.time_unit, "scale_to_watts": self.scale,
            "clock_offset_s": self.clock_offset_s, "rows": int(t.size), "skipped_lines": self._skipped,
            "first_epoch_s": float(t[0]) if t.size else None, "last_epoch_s": float(t[-1]) if t.size else None,
            "median_interval_s": float(np.median(np.diff(t))) if t.size > 1 else None,
            "summed": [str(self.file)],
            "covers": "whatever the external meter is wired to (usually the board's whole input)",
        }
