"""The power-sensor interface the device agent samples while it times a model. DEVICE SIDE: standard library and
numpy only, never torch.

A sensor is one of two kinds:

- ``"power"``: :meth:`PowerSensor.read` returns the power drawn *now*, in watts; the energy of a window is the
  time integral of the sampled power (:func:`edgebench.metrics.energy.integrate_power`).
- ``"energy"``: :meth:`PowerSensor.read` returns a cumulative energy counter in joules, already unwrapped so that
  it never decreases; the energy of a window is the counter's difference across it
  (:func:`edgebench.metrics.energy.counter_delta`).

Every sysfs/procfs path a sensor reads is prefixed with ``root`` (default ``"/"``), so that tests point a sensor
at a fixture tree holding the real file layout.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

KINDS = ("power", "energy")


class PowerSensor(abc.ABC):
    """One way of reading a device's power (watts now) or energy (cumulative joules).

    Subclasses set the class attributes ``name`` (the registry name) and ``kind`` (``"power"`` or ``"energy"``),
    take their options as keyword-only ``__init__`` parameters (validated by
    :func:`edgebench.sensors.create_sensor`), and implement :meth:`probe`, :meth:`read` and
    :meth:`describe`. Constructing a sensor reads nothing; :meth:`probe` is the first access to the hardware.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "power"

    def __init__(self, *, root: str = "/") -> None:
        self.root = str(root)

    # ------------------------------------------------------------------------------------------ helpers
    def path(self, abspath: str) -> Path:
        """``abspath`` (``"/sys/class/..."``) under this sensor's ``root``."""
        return Path(self.root) / abspath.lstrip("/")

    @property
    def unit(self) -> str:
        """``"W"`` for a power sensor, ``"J"`` for an energy counter: the unit :meth:`read` returns."""
        return "J" if self.kind == "energy" else "W"

    def _reason(self, exc: Exception) -> str:
        """``exc``'s message without the ``power sensor 'NAME': `` prefix this sensor's errors start with."""
        msg, prefix = str(exc), f"power sensor {self.name!r}: "
        return msg[len(prefix):] if msg.startswith(prefix) else msg

    # ------------------------------------------------------------------------------------------ the API
    @abc.abstractmethod
    def probe(self) -> str | None:
        """``None`` when the sensor is readable here; otherwise one line saying why not and what to do.

        Never raises.
        """

    @abc.abstractmethod
    def read(self) -> float:
        """One reading: watts now (kind ``"power"``) or the unwrapped cumulative joules (kind ``"energy"``).

        Raises :class:`~edgebench.errors.DeviceError` if the sensor is (or became) unreadable.
        """

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """What this sensor reads, for the result record and the report: at least ``name``, ``kind``, ``unit``,
        what is summed (rails, zones, paths) and what the reading covers."""

    def log_between(self, t0_epoch: float, t1_epoch: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Samples of a sensor that keeps its own timestamped log (an external meter): ``(epoch seconds,
        watts)`` covering ``[t0_epoch, t1_epoch]`` with one sample either side, or ``None`` for sensors that
        must be sampled live (the default)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for most sensors
        """Release what :meth:`probe` acquired (a library handle); the default does nothing."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r}, root={self.root!r})"
