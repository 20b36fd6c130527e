"""The ``none`` sensor: the target has no way to measure power. The agent then records energy as absent, with
the reason, and never estimates it (DESIGN.md, "Energy")."""

from __future__ import annotations

from typing import Any

from edgebench.errors import DeviceError
from edgebench.sensors import SENSORS
from edgebench.sensors.base import PowerSensor

REASON = "no power sensor configured for this target"


@SENSORS.register("none")
class NoSensor(PowerSensor):
    """No power sensor: :meth:`probe` always explains why energy is absent; :meth:`read` always raises."""

    name = "none"
    kind = "power"

    def __init__(self, *, root: str = "/") -> None:
        super().__init__(root=root)

    def probe(self) -> str | None:
        return REASON

    def read(self) -> float:
        raise DeviceError(f"power sensor 'none': {REASON}; set one of the sensors rapl, jetson, pi5-pmic, nvml or "
                          "external in the target file to measure energy")

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "unit": self.unit, "available": False, "reason": REASON}
