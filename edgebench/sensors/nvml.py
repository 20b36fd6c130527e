"""The ``nvml`` sensor: an NVIDIA GPU's energy or power through NVML (the ``pynvml`` module of the
``nvidia-ml-py`` package, imported only when the sensor is probed).

- ``nvmlDeviceGetTotalEnergyConsumption(handle)``: the GPU's energy in millijoules since the driver was loaded
  (Volta and newer). Used when supported: kind ``"energy"``, :meth:`NvmlSensor.read` returns joules.
- ``nvmlDeviceGetPowerUsage(handle)``: the board power in milliwatts, averaged over 1 s on Ampere (except
  GA100) and newer, instantaneous on older GPUs. The fallback: kind ``"power"``, :meth:`NvmlSensor.read`
  returns watts; on recent GPUs short windows are smoothed by that 1 s average.

The kind is therefore decided by :meth:`NvmlSensor.probe` and is an *instance* attribute: probe before relying
on ``sensor.kind`` (:meth:`read` probes on first use). The reading covers the GPU board only, not the host CPU,
memory or power supply.
"""

from __future__ import annotations

import importlib
from typing import Any

from edgebench.errors import ConfigError, DeviceError
from edgebench.sensors import SENSORS
from edgebench.sensors.base import PowerSensor


@SENSORS.register("nvml")
class NvmlSensor(PowerSensor):
    """NVIDIA GPU energy counter (kind ``"energy"``, joules) or, where unsupported, power (kind ``"power"``, W).

    Args:
        root: accepted for uniformity with the sysfs sensors; unused.
        index: the GPU's NVML index (``nvidia-smi -L`` order).
        nvml: the NVML binding module to use; ``None`` imports ``pynvml``. Tests pass a small fake exposing the
            same function names.
    """

    name = "nvml"
    kind: str = "energy"  # set per instance by probe(): "energy", or "power" when the counter is unsupported

    def __init__(self, *, root: str = "/", index: int = 0, nvml: Any = None) -> None:
        super().__init__(root=root)
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ConfigError(f"power sensor 'nvml': index must be a GPU index >= 0, got {index!r}")
        self.index = index
        self._nvml = nvml
        self._handle: Any = None
        self._device: str | None = None

    def _lib(self) -> Any:
        if self._nvml is None:
            self._nvml = importlib.import_module("pynvml")
        return self._nvml

    def _open(self) -> str | None:
        try:
            lib = self._lib()
        except ImportError:
            return "NVML: the Python module pynvml is not installed: pip install nvidia-ml-py"
        error = getattr(lib, "NVMLError", Exception)
        try:
            lib.nvmlInit()
        except error as exc:
            return f"NVML: nvmlInit failed ({exc}): no NVIDIA driver loaded here, or no NVIDIA GPU"
        why = self._device_open(lib, error)
        if why:
            try:
                lib.nvmlShutdown()
            except error:
                pass
        return why

    def _device_open(self, lib: Any, error: type[BaseException]) -> str | None:
        try:
            count = lib.nvmlDeviceGetCount()
            if self.index >= count:
                return f"NVML: no GPU with index {self.index} ({count} GPU(s) here); set index to 0..{count - 1}"
            handle = lib.nvmlDeviceGetHandleByIndex(self.index)
            name = lib.nvmlDeviceGetName(handle)
            self._device = name.decode() if isinstance(name, bytes) else str(name)
        except error as exc:
            return f"NVML: cannot open GPU {self.index} ({exc})"
        try:
            lib.nvmlDeviceGetTotalEnergyConsumption(handle)
            self.kind = "energy"
        except error:
            try:
                lib.nvmlDeviceGetPowerUsage(handle)
                self.kind = "power"
            except error as exc:
                return f"NVML: GPU {self.index} ({self._device}) reports neither its energy nor its power ({exc})"
        self._handle = handle
        return None

    def probe(self) -> str | None:
        try:
            if self._handle is not None:  # already open: check it still reads
                self.read()
                return None
            return self._open()
        except Exception as exc:  # probe never raises
            return f"NVML: unexpected error while probing GPU {self.index}: {exc}"

    def read(self) -> float:
        """Joules since the driver loaded (from mJ) when kind is ``"energy"``; watts now (from mW) otherwise."""
        if self._handle is None:
            why = self._open()
            if why:
                raise DeviceError(f"power sensor 'nvml': {why}")
        lib = self._lib()
        try:
            if self.kind == "energy":
                return lib.nvmlDeviceGetTotalEnergyConsumption(self._handle) / 1e3
            return lib.nvmlDeviceGetPowerUsage(self._handle) / 1e3
        except getattr(lib, "NVMLError", Exception) as exc:
            raise DeviceError(f"power sensor 'nvml': reading GPU {self.index} failed ({exc})") from None

    def describe(self) -> dict[str, Any]:
        if self._handle is None:
            self.probe()
        energy = self.kind == "energy"
        return {
            "name": self.name, "kind": self.kind, "unit": self.unit, "index": self.index, "device": self._device,
            "source": ("nvmlDeviceGetTotalEnergyConsumption (mJ since the driver loaded)" if energy else
                       "nvmlDeviceGetPowerUsage (mW; averaged over 1 s on Ampere and newer GPUs except GA100)"),
            "summed": [f"GPU {self.index}"],
            "covers": "the GPU board only (not the host CPU, memory or power supply)",
        }

    def close(self) -> None:
        """Shut NVML down if this sensor initialised it."""
        if self._handle is not None:
            self._handle = None
            try:
                self._lib().nvmlShutdown()
            except Exception:  # closing is best effort
                pass
