"""What a device can do, for ``edgebench targets check``: Python, numpy, each runtime with its providers or
devices, each of the target's backends actually created with the target's options, the power sensor's
probe, free memory and disk. Torch-free; never raises (every failure is a line in the report)."""

from __future__ import annotations

import platform
import shutil
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from edgebench.agent.protocol import MIN_PYTHON, PROTOCOL_VERSION


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _runtimes() -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        import onnxruntime as ort

        out["onnxruntime"] = {"version": ort.__version__, "providers": ort.get_available_providers()}
    except Exception as exc:  # not installed, or a broken build
        out["onnxruntime"] = {"version": None, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    try:
        import openvino as ov

        out["openvino"] = {"version": ov.__version__, "devices": list(ov.Core().available_devices)}
    except Exception as exc:
        out["openvino"] = {"version": None, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    return out


def _backend(name: str, options: dict[str, Any]) -> dict[str, Any]:
    from edgebench.runtime import create_backend

    try:
        create_backend(name, where=f"backends.{name}", **options)
    except ImportError as exc:
        return {"ok": False, "error": f"{exc.name or name} is not installed on the device (pip install {name})"}
    except Exception as exc:  # EdgebenchError: provider/device missing, bad option
        return {"ok": False, "error": str(exc).splitlines()[0]}
    return {"ok": True}


def _sensor(spec: dict[str, Any]) -> dict[str, Any]:
    name = spec.get("sensor", "none")
    try:
        from edgebench.sensors import create_sensor

        sensor = create_sensor(name, where="power.sensor", **spec.get("options", {}))
        why = sensor.probe()
        if why:
            return {"sensor": name, "ok": False, "error": why}
        return {"sensor": name, "ok": True, "reading": sensor.read(), "kind": sensor.kind,
                "describe": sensor.describe()}
    except Exception as exc:
        return {"sensor": name, "ok": False, "error": str(exc).splitlines()[0]}


def device_report(*, backends: dict[str, dict[str, Any]] | None = None, power: dict[str, Any] | None = None,
                  path: str = ".") -> dict[str, Any]:
    """Everything ``targets check`` shows, as one JSON-able document."""
    from edgebench.agent.envinfo import environment

    doc: dict[str, Any] = {
        "protocol": PROTOCOL_VERSION,
        "python": platform.python_version(),
        "python_ok": sys.version_info[:2] >= MIN_PYTHON,
        "executable": sys.executable,
        "numpy": _version("numpy"),
        "runtimes": _runtimes(),
        "backends": {b: _backend(b, o) for b, o in (backends or {}).items()},
        "power": _sensor(power or {}),
        "torch_loaded": "torch" in sys.modules,
    }
    try:
        doc["environment"] = environment()
    except Exception as exc:
        doc["environment"] = {"error": str(exc)}
    try:
        doc["disk_free_mb"] = shutil.disk_usage(Path(path)).free / 2**20
    except OSError:
        doc["disk_free_mb"] = None
    return doc
