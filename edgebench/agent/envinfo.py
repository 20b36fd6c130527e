"""What the device looked like while it ran a job: CPU, governor, frequency, temperatures, load,
OS and runtime versions (pyperf's metadata habit). Reads what is readable and records ``None`` for the
rest; never fails. Torch-free."""

from __future__ import annotations

import os
import platform
import socket
import sys
from pathlib import Path
from typing import Any


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _cpu_model() -> str | None:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware"):
            return value.strip()
    return platform.processor() or None


def _temperatures() -> dict[str, float]:
    temps: dict[str, float] = {}
    for zone in sorted(Path("/sys/class/thermal").glob("thermal_zone*")):
        raw = _read(str(zone / "temp"))
        if raw and raw.lstrip("-").isdigit():
            temps[_read(str(zone / "type")) or zone.name] = int(raw) / 1000.0
    return temps


def environment() -> dict[str, Any]:
    """One snapshot of the device's state."""
    import numpy as np

    freq = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
    env: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "cpu_freq_mhz": int(freq) / 1000.0 if freq and freq.isdigit() else None,
        "temperatures_c": _temperatures(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
    }
    try:
        import psutil

        env["memory_available_mb"] = psutil.virtual_memory().available / 2**20
    except ImportError:
        env["memory_available_mb"] = None
    return env
