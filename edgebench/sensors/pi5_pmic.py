"""The ``pi5-pmic`` sensor: the Raspberry Pi 5's PMIC (Renesas DA9091) rail monitors, through
``vcgencmd pmic_read_adc``.

The command prints one line per ADC channel, a rail's current and its voltage on separate lines::

      VDD_CORE_A current(7)=1.42880000A
      ...
      VDD_CORE_V volt(15)=0.90659250V
         EXT5V_V volt(24)=5.05716000V

:meth:`Pi5PmicSensor.read` pairs every ``X_A`` line with its ``X_V`` line and returns the sum of current (A) x
voltage (V) over the pairs, in watts; unpaired lines (``EXT5V_V``, ``BATT_V``: voltages without a current) are
ignored. (Output format: gist.github.com/cleverca22/95d2cb2f4e1f59be2bd94f0e1d446cc9.)

This is the total of the PMIC's regulated rails, **not the wall power**: it misses the 5 V USB-C input path and
the regulators' conversion losses, and USB/HAT peripherals fed from 5 V; the board draws more at the plug. The
report says so (``describe()["wall_power"]`` is ``False``). Each reading runs ``vcgencmd`` (a few milliseconds
to tens of milliseconds), which bounds the useful sampling rate to about 10-20 Hz. ``vcgencmd`` needs access to
``/dev/vcio`` (the ``video`` group).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any

from edgebench.errors import ConfigError, DeviceError
from edgebench.sensors import SENSORS
from edgebench.sensors.base import PowerSensor

_LINE = re.compile(r"^\s*(?P<rail>\S+)_(?P<q>[AV])\s+(?:current|volt)\(\d+\)=(?P<val>[-+0-9.eE]+)[AV]\s*$")


def parse_pmic_adc(text: str) -> dict[str, tuple[float, float]]:
    """``{rail: (amperes, volts)}`` for every rail with both an ``X_A`` and an ``X_V`` line in ``text``."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            (amps if m["q"] == "A" else volts)[m["rail"]] = float(m["val"])
    return {r: (amps[r], volts[r]) for r in amps if r in volts}


@SENSORS.register("pi5-pmic")
class Pi5PmicSensor(PowerSensor):
    """Raspberry Pi 5 PMIC rails' total power (kind ``"power"``, watts).

    Args:
        root: accepted for uniformity with the sysfs sensors; unused (the data come from ``vcgencmd``).
        vcgencmd: the ``vcgencmd`` binary, a name looked up on ``PATH`` or a path (default ``"vcgencmd"``).
        timeout_s: how long one ``vcgencmd`` call may take.
    """

    name = "pi5-pmic"
    kind = "power"

    def __init__(self, *, root: str = "/", vcgencmd: str = "vcgencmd", timeout_s: float = 2.0) -> None:
        super().__init__(root=root)
        if not isinstance(vcgencmd, str) or not vcgencmd:
            raise ConfigError(f"power sensor 'pi5-pmic': vcgencmd must be a program name or path, got {vcgencmd!r}")
        if not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
            raise ConfigError(f"power sensor 'pi5-pmic': timeout_s must be a positive number, got {timeout_s!r}")
        self.vcgencmd = vcgencmd
        self.timeout_s = float(timeout_s)
        self._exe: str | None = None
        self._rails: list[str] = []

    def _find(self) -> str | None:
        if os.sep in self.vcgencmd:
            return self.vcgencmd if os.access(self.vcgencmd, os.X_OK) else None
        return shutil.which(self.vcgencmd)

    def _run(self) -> str:
        """``vcgencmd pmic_read_adc``'s output; raises DeviceError with the reason when it fails."""
        exe = self._exe or self._find()
        if exe is None:
            raise DeviceError(f"power sensor 'pi5-pmic': {self.vcgencmd!r} not found or not executable; install "
                              "it (apt install libraspberrypi-bin / raspi-utils) or give its path as vcgencmd")
        self._exe = exe
        try:
            proc = subprocess.run([exe, "pmic_read_adc"], capture_output=True, text=True, timeout=self.timeout_s,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"power sensor 'pi5-pmic': {exe} pmic_read_adc did not answer within "
                              f"{self.timeout_s:g} s") from None
        except OSError as exc:
            raise DeviceError(f"power sensor 'pi5-pmic': cannot run {exe} ({exc})") from None
        out = proc.stdout
        if proc.returncode != 0 or out.lstrip().startswith("error="):
            msg = " ".join((out + " " + proc.stderr).split())[:200]
            hint = ("add the user to the video group (sudo usermod -aG video $USER) or run as root"
                    if any(k in msg.lower() for k in ("vcio", "vchi", "permission", "denied"))
                    else "pmic_read_adc exists on the Raspberry Pi 5 only; update the firmware/vcgencmd on a Pi 5")
            raise DeviceError(f"power sensor 'pi5-pmic': {exe} pmic_read_adc failed (exit {proc.returncode}: "
                              f"{msg or 'no output'}); {hint}")
        return out

    def probe(self) -> str | None:
        try:
            rails = parse_pmic_adc(self._run())
        except DeviceError as exc:
            return "Pi 5 PMIC: " + self._reason(exc)
        except Exception as exc:  # probe never raises
            return f"Pi 5 PMIC: {self.vcgencmd} pmic_read_adc: unexpected error ({exc})"
        if not rails:
            return (f"Pi 5 PMIC: {self._exe} pmic_read_adc printed no rail with both a current (_A) and a voltage "
                    "(_V): this is not a Raspberry Pi 5 (only the Pi 5 PMIC reports rail currents)")
        self._rails = sorted(rails)
        return None

    def read(self) -> float:
        """Sum over the PMIC rails of current (A) x voltage (V), in watts."""
        rails = parse_pmic_adc(self._run())
        if not rails:
            raise DeviceError(f"power sensor 'pi5-pmic': {self._exe} pmic_read_adc printed no current/voltage pairs; "
                              "this is not a Raspberry Pi 5")
        self._rails = sorted(rails)
        return float(sum(a * v for a, v in rails.values()))

    def describe(self) -> dict[str, Any]:
        if not self._rails:
            self.probe()
        return {
            "name": self.name, "kind": self.kind, "unit": self.unit,
            "source": f"{self._exe or self.vcgencmd} pmic_read_adc: sum of X_A (A) x X_V (V) per rail",
            "summed": list(self._rails),
            "wall_power": False,
            "covers": ("the Raspberry Pi 5 PMIC's regulated rails only, not the wall power: the 5 V USB-C input "
                       "path, the regulators' conversion losses and USB/HAT peripherals are not included"),
        }
