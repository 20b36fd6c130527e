"""Power sensors: how a device's power or energy is read while a model runs on it. DEVICE SIDE (standard library
and numpy only, never torch).

Built-in sensors, one module each, registered under these names:

============  ========  ==========================================================================================
name          kind      reads
============  ========  ==========================================================================================
``none``      power     nothing: the target has no sensor, energy is reported absent (never estimated)
``rapl``      energy    Intel/AMD RAPL package counters, ``/sys/class/powercap/intel-rapl:N/energy_uj`` (µJ)
``jetson``    power     NVIDIA Jetson INA3221/INA238 rails through hwmon (mV, mA, µW) or the JetPack 4 iio driver
``pi5-pmic``  power     Raspberry Pi 5 PMIC rails, ``vcgencmd pmic_read_adc`` (A and V per rail)
``nvml``      energy*   NVIDIA GPU through NVML (mJ counter; *falls back to power in mW where unsupported)
``external``  power     an external meter's timestamped log file (CSV or a serial logger's text)
============  ========  ==========================================================================================

A new sensor is one new module in this package holding a :class:`PowerSensor` subclass decorated with
``@SENSORS.register("name")``. The sampler thread that reads a sensor during a timed loop is
:class:`edgebench.sensors.sampler.PowerSampler`.
"""

from __future__ import annotations

from typing import Any

from edgebench.errors import ConfigError
from edgebench.registry import Registry, check_kwargs
from edgebench.sensors.base import KINDS, PowerSensor

SENSORS: Registry[type[PowerSensor]] = Registry("power sensor", modules=("edgebench.sensors.*",))


def create_sensor(name: str, *, where: str = "", **options: Any) -> PowerSensor:
    """The sensor registered as ``name``, built with ``options`` (its keyword-only parameters).

    Unknown names raise :class:`~edgebench.errors.UnknownNameError` with close matches; unknown or missing
    options raise :class:`~edgebench.errors.ConfigError` naming the allowed ones. ``where`` says where the name
    and options came from (``"targets/pi5.toml: power"``) for those messages. Nothing is read from the hardware
    until :meth:`PowerSensor.probe` or :meth:`PowerSensor.read`.
    """
    cls = SENSORS.get(name, where=where)
    check_kwargs(cls.__init__, options, what=f"power sensor {name!r}", where=where)
    try:
        return cls(**options)
    except ConfigError as exc:
        if not where:
            raise
        raise ConfigError(f"{where}: {exc}") from None


__all__ = ["KINDS", "SENSORS", "PowerSensor", "create_sensor"]
