"""The ``jetson`` sensor: NVIDIA Jetson on-board power monitors (TI INA3221, INA238), read from sysfs.

Two driver layouts are read:

- hwmon (JetPack 5/6, mainline driver; also INA238): ``/sys/class/hwmon/hwmon*/`` whose ``name`` is ``ina3221``
  or ``ina238``; channel ``N`` is labelled by ``inN_label`` (e.g. ``VDD_IN``) and measured by ``powerN_input`` in
  microwatts where present, else by ``inN_input`` (bus voltage, mV) times ``currN_input`` (mA). Channels labelled
  ``NC`` (not connected) and the INA3221's "sum of shunt voltages" channel are skipped. An INA238 has one
  channel (``in1_input`` is its bus voltage, ``power1_input`` its power); its rail name is ``in1_label`` or
  ``power1_label`` where present, else the chip's ``label`` attribute, else ``ina238:<i2c device>``.
- iio (JetPack 4, NVIDIA's ``ina3221x`` driver): ``/sys/bus/i2c/drivers/ina3221x/*/iio:device*/`` with
  ``rail_name_N`` and ``in_powerN_input`` in milliwatts (else ``in_voltageN_input`` mV x ``in_currentN_input`` mA).

(Layouts as read by rbonghi/jetson_stats ``jtop/core/power.py`` and the kernel's hwmon ina3221/ina238
documentation.) The default rail is the module's total input: ``VDD_IN`` (Orin, Xavier NX, TX2) or
``POM_5V_IN`` (Nano, JetPack 4), the first of these candidates that exists. It covers the Jetson module, not the
carrier board (USB devices, fan, NVMe). Boards without a total rail (AGX Xavier, AGX Orin) need ``sum_rails``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError, DeviceError
from edgebench.sensors import SENSORS
from edgebench.sensors.base import PowerSensor

HWMON = "/sys/class/hwmon"
IIO_DRIVER = "/sys/bus/i2c/drivers/ina3221x"
CHIPS = ("ina3221", "ina238")
DEFAULT_RAILS = ("VDD_IN", "POM_5V_IN")
_TO_WATTS = {"uW": 1e-6, "mW": 1e-3}


@dataclass(frozen=True)
class Channel:
    """One measured rail: ``power`` in ``power_unit`` (uW or mW), or ``volt`` (mV) x ``curr`` (mA)."""

    rail: str
    source: str
    power: Path | None = None
    power_unit: str = "uW"
    volt: Path | None = None
    curr: Path | None = None

    def watts(self) -> float:
        if self.power is not None:
            return int(self.power.read_text().split()[0]) * _TO_WATTS[self.power_unit]
        assert self.volt is not None and self.curr is not None
        return int(self.volt.read_text().split()[0]) * int(self.curr.read_text().split()[0]) / 1e6

    @property
    def unit(self) -> str:
        return self.power_unit if self.power is not None else "mV*mA"

    def files(self) -> list[str]:
        return [str(p) for p in (self.power, self.volt, self.curr) if p is not None]


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _num(name: str) -> int:
    m = re.search(r"(\d+)$", name)
    return int(m.group(1)) if m else 0


def _skip(label: str) -> bool:
    return label.upper() == "NC" or "sum of shunt" in label.lower()


def _channel(rail: str, source: str, power: Path, power_unit: str, volt: Path, curr: Path) -> Channel | None:
    if power.is_file():
        return Channel(rail, source, power=power, power_unit=power_unit)
    if volt.is_file() and curr.is_file():
        return Channel(rail, source, volt=volt, curr=curr)
    return None


def discover(root: Path) -> list[Channel]:
    """Every labelled INA3221/INA238 channel under ``root`` (hwmon first, then the JetPack 4 iio driver)."""
    found: list[Channel] = []
    hwmon = root / HWMON.lstrip("/")
    dirs = sorted(hwmon.glob("hwmon*"), key=lambda p: _num(p.name)) if hwmon.is_dir() else []
    for d in dirs:
        chip = _read(d / "name")
        if chip not in CHIPS:
            continue
        rails = {_num(f.name.split("_")[0]): _read(f) or "" for f in d.glob("in*_label")}
        if chip == "ina238" and not rails:
            dev = (d / "device").resolve().name if (d / "device").exists() else d.name
            rails = {1: _read(d / "power1_label") or _read(d / "label") or f"ina238:{dev}"}
        for n in sorted(rails):
            rail = rails[n]
            if not rail or _skip(rail):
                continue
            ch = _channel(rail, f"hwmon {chip} {d} channel {n}", d / f"power{n}_input", "uW",
                          d / f"in{n}_input", d / f"curr{n}_input")
            if ch is not None:
                found.append(ch)
    iio = root / IIO_DRIVER.lstrip("/")
    if iio.is_dir():
        for dev in sorted(p for p in iio.iterdir() if p.is_dir()):
            for d in sorted(dev.glob("iio:device*")):
                for f in sorted(d.glob("rail_name_*"), key=lambda p: _num(p.name)):
                    n, rail = _num(f.name), _read(f) or ""
                    if not rail or _skip(rail):
                        continue
                    ch = _channel(rail, f"iio ina3221x {d} channel {n}", d / f"in_power{n}_input", "mW",
                                  d / f"in_voltage{n}_input", d / f"in_current{n}_input")
                    if ch is not None:
                        found.append(ch)
    return found


def _names(value: str | Sequence[str] | None, option: str) -> list[str] | None:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else list(value)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"power sensor 'jetson': {option} must be a rail name or a non-empty list of rail names "
                          f"such as ['VDD_IN'], got {value!r}")
    return names


@SENSORS.register("jetson")
class JetsonSensor(PowerSensor):
    """Jetson INA3221/INA238 rail power (kind ``"power"``, watts).

    Args:
        root: prefix of every sysfs path (tests point it at a fixture tree).
        rail: the rail to read, or candidate rails of which the first present is read (default ``VDD_IN``, then
            ``POM_5V_IN``: the module's total input). Matched case-insensitively against the labels.
        sum_rails: rails to read and add up instead (all must be present), for boards without a total rail,
            e.g. ``["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"]`` on an AGX Orin. Overrides ``rail``.
    """

    name = "jetson"
    kind = "power"

    def __init__(self, *, root: str = "/", rail: str | Sequence[str] = DEFAULT_RAILS,
                 sum_rails: Sequence[str] | None = None) -> None:
        super().__init__(root=root)
        self.rail = _names(rail, "rail") or list(DEFAULT_RAILS)
        self.sum_rails = _names(sum_rails, "sum_rails")
        self._channels: list[Channel] | None = None
        self._available: list[str] = []

    def _open(self) -> str | None:
        found = discover(Path(self.root))
        self._available = [c.rail for c in found]
        if not found:
            return (f"Jetson: no INA3221/INA238 power monitor under {self.path(HWMON)} (hwmon name ina3221/ina238) "
                    f"or {self.path(IIO_DRIVER)}: not a Jetson, or a module without monitors (Jetson Nano 2GB)")
        by_name: dict[str, Channel] = {}
        for c in found:
            by_name.setdefault(c.rail.upper(), c)
        avail = ", ".join(self._available)
        if self.sum_rails is not None:
            missing = [r for r in self.sum_rails if r.upper() not in by_name]
            if missing:
                return f"Jetson: rail(s) {', '.join(missing)} not found; rails here: {avail}"
            chosen = [by_name[r.upper()] for r in self.sum_rails]
        else:
            hit = next((r for r in self.rail if r.upper() in by_name), None)
            if hit is None:
                return (f"Jetson: none of the rails {', '.join(self.rail)} found; rails here: {avail}; set the option "
                        "rail = NAME, or sum_rails = [...] on boards without a total input rail")
            chosen = [by_name[hit.upper()]]
        for c in chosen:
            try:
                c.watts()
            except PermissionError:
                return f"Jetson: {c.files()[0]} is not readable by this user; run the agent with sudo or as root"
            except (OSError, ValueError, IndexError) as exc:
                return f"Jetson: cannot read rail {c.rail} at {', '.join(c.files())} ({exc})"
        self._channels = chosen
        return None

    def probe(self) -> str | None:
        try:
            return self._open()
        except Exception as exc:  # probe never raises
            return f"Jetson: unexpected error while looking for power monitors under {self.root}: {exc}"

    def read(self) -> float:
        """The selected rails' power in watts, summed (from µW, mW, or mV x mA as the driver provides)."""
        if self._channels is None:
            why = self._open()
            if why:
                raise DeviceError(f"power sensor 'jetson': {why}")
        assert self._channels is not None
        total = 0.0
        for c in self._channels:
            try:
                total += c.watts()
            except (OSError, ValueError, IndexError) as exc:
                raise DeviceError(f"power sensor 'jetson': cannot read rail {c.rail} at "
                                  f"{', '.join(c.files())} ({exc})") from None
        return total

    def describe(self) -> dict[str, Any]:
        if self._channels is None:
            self.probe()
        chans = self._channels or []
        used = [c.rail for c in chans]
        return {
            "name": self.name, "kind": self.kind, "unit": self.unit,
            "rail": used[0] if len(used) == 1 else None,
            "summed": used,
            "candidates": list(self.sum_rails or self.rail),
            "available_rails": list(self._available),
            "channels": [{"rail": c.rail, "source": c.source, "files": c.files(),
                          "unit": c.unit}
                         for c in chans],
            "covers": ("the Jetson module's total input (not the carrier board: USB devices, fan, NVMe)"
                       if used and used[0].upper() in DEFAULT_RAILS and len(used) == 1 else "the rails listed"),
        }
