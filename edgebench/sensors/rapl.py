"""The ``rapl`` sensor: Intel (and AMD Zen) RAPL energy counters through the Linux powercap interface.

Reads, per selected zone ``/sys/class/powercap/intel-rapl:N[:M]/``:

- ``energy_uj``: the zone's energy counter in microjoules, which wraps to 0 after ``max_energy_range_uj``;
- ``max_energy_range_uj``: the counter's range in microjoules (used to unwrap it);
- ``name``: the zone's name (``package-0``, ``core``, ``uncore``, ``dram``, ``psys``).

(docs.kernel.org/power/powercap/powercap.html.) :meth:`RaplSensor.read` returns the sum over the zones of the
unwrapped counters in joules: a cumulative, monotone counter (kind ``"energy"``). A wrap is detected when a
counter reads lower than the previous reading, so the sensor must be read at least once per wrap period
(``max_energy_range_uj`` / power: typically tens of minutes); the sampler reads it several times a second.

By default the zones are the top-level *package* domains (``intel-rapl:N`` whose name starts with ``package``),
never their subzones (``intel-rapl:N:M``: core, uncore, dram), which would be counted twice, and not ``psys``
(the whole platform, which contains the packages). RAPL covers the CPU package (cores, caches, on-die graphics),
not DRAM unless a ``dram`` zone is selected, and not the rest of the system (disks, fans, power supply losses).

Since Linux 5.10 (the PLATYPUS fix, CVE-2020-8694) ``energy_uj`` is readable by root only; :meth:`probe` says
so and how to allow it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError, DeviceError
from edgebench.sensors import SENSORS
from edgebench.sensors.base import PowerSensor

POWERCAP = "/sys/class/powercap"
_ZONE = re.compile(r"^intel-rapl:\d+(:\d+)*$")
_TOP = re.compile(r"^intel-rapl:\d+$")


@SENSORS.register("rapl")
class RaplSensor(PowerSensor):
    """RAPL package energy (kind ``"energy"``, joules).

    Args:
        root: prefix of every sysfs path (tests point it at a fixture tree).
        domains: the zones to sum, each a zone directory (``"intel-rapl:0"``, ``"intel-rapl:0:2"``) or a zone
            name (``"package-0"``, ``"dram"``: every zone of that name); a single string is one zone. Default:
            every top-level package zone.
    """

    name = "rapl"
    kind = "energy"

    def __init__(self, *, root: str = "/", domains: str | Sequence[str] | None = None) -> None:
        super().__init__(root=root)
        if isinstance(domains, str):
            domains = [domains]
        if domains is not None:
            domains = list(domains)
            if not domains or not all(isinstance(d, str) and d for d in domains):
                raise ConfigError(f"power sensor 'rapl': domains must be a non-empty list of zone names such as "
                                  f"['package-0'] or ['intel-rapl:0'], got {domains!r}")
        self.domains: list[str] | None = domains
        self._zones: list[dict[str, Any]] | None = None
        self._last: list[int] = []
        self._offset: list[int] = []

    # ----------------------------------------------------------------------------------------- discovery
    def _all_zones(self) -> dict[str, Path]:
        base = self.path(POWERCAP)
        if not base.is_dir():
            return {}
        return {p.name: p for p in sorted(base.iterdir()) if _ZONE.match(p.name)}

    def _select(self) -> tuple[list[Path], str | None]:
        zones = self._all_zones()
        if not zones:
            return [], (f"RAPL: no intel-rapl zones under {self.path(POWERCAP)} (not an x86 CPU with RAPL, or the "
                        "intel_rapl_msr module is not loaded: sudo modprobe intel_rapl_msr)")
        names = {z: _read_str(p / "name") or "" for z, p in zones.items()}
        if self.domains is None:
            chosen = [z for z in zones if _TOP.match(z) and names[z].startswith("package")]
            if not chosen:
                found = ", ".join(f"{z} ({names[z] or '?'})" for z in zones)
                return [], (f"RAPL: no top-level package zone among {found}; choose zones with the option "
                            "domains = [...]")
        else:
            chosen = []
            for want in self.domains:
                hits = [z for z in zones if z == want or names[z] == want]
                if not hits:
                    found = ", ".join(f"{z} ({names[z] or '?'})" for z in zones)
                    return [], f"RAPL: no zone {want!r} under {self.path(POWERCAP)}; zones here: {found}"
                chosen += [z for z in hits if z not in chosen]
            for z in chosen:
                parents = [p for p in chosen if z.startswith(p + ":")]
                if parents:
                    return [], (f"RAPL: zone {z} ({names[z]}) is part of {parents[0]} ({names[parents[0]]}); "
                                "selecting both counts its energy twice, drop one from domains")
        return [zones[z] for z in chosen], None

    def _open(self) -> str | None:
        paths, why = self._select()
        if why:
            return why
        zones = []
        for p in paths:
            energy = p / "energy_uj"
            try:
                raw = int(energy.read_text().strip())
            except PermissionError:
                return (f"RAPL: {energy} is readable by root only (Linux >= 5.10, CVE-2020-8694); run the agent as "
                        f"root, or allow reading until the next reboot: sudo chmod a+r {energy}")
            except (OSError, ValueError) as exc:
                return f"RAPL: cannot read {energy} ({exc}); check that the zone is enabled"
            try:
                max_range = int((p / "max_energy_range_uj").read_text().strip())
            except (OSError, ValueError) as exc:
                return f"RAPL: cannot read {p / 'max_energy_range_uj'} ({exc}); the counter cannot be unwrapped"
            zones.append({"zone": p.name, "name": _read_str(p / "name"), "path": str(energy),
                          "max_energy_range_uj": max_range, "first_uj": raw})
        self._zones = zones
        self._last = [z["first_uj"] for z in zones]
        self._offset = [0] * len(zones)
        return None

    # ----------------------------------------------------------------------------------------------- API
    def probe(self) -> str | None:
        try:
            if self._zones is None:
                return self._open()
            for z in self._zones:  # already open: check the counters are still readable, keep the unwrap state
                int(Path(z["path"]).read_text().strip())
            return None
        except Exception as exc:  # probe never raises
            return f"RAPL: cannot read the energy counters under {self.path(POWERCAP)} ({exc})"

    def read(self) -> float:
        """The selected zones' summed energy counters, unwrapped, in joules (from ``energy_uj``, µJ)."""
        if self._zones is None:
            why = self._open()
            if why:
                raise DeviceError(f"power sensor 'rapl': {why}")
        assert self._zones is not None
        total = 0
        for i, z in enumerate(self._zones):
            try:
                raw = int(Path(z["path"]).read_text().strip())
            except (OSError, ValueError) as exc:
                raise DeviceError(f"power sensor 'rapl': cannot read {z['path']} ({exc})") from None
            if raw < self._last[i]:  # the counter wrapped past max_energy_range_uj
                self._offset[i] += z["max_energy_range_uj"]
            self._last[i] = raw
            total += raw + self._offset[i]
        return total / 1e6

    def describe(self) -> dict[str, Any]:
        if self._zones is None:
            self.probe()
        zones = self._zones or []
        return {
            "name": self.name, "kind": self.kind, "unit": self.unit,
            "source": "Linux powercap RAPL energy_uj (µJ), unwrapped with max_energy_range_uj",
            "zones": [{k: z[k] for k in ("zone", "name", "path", "max_energy_range_uj")} for z in zones],
            "summed": [z["zone"] for z in zones],
            "covers": "CPU package(s) only (cores, caches, on-die graphics); not the rest of the board"
            + ("" if any(z["name"] == "dram" for z in zones) else ", not DRAM"),
        }


def _read_str(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
