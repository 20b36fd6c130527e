"""The host device in the report's environment section: which device computed the host stages (training,
compression, defenses, crafting), its name and memory and the torch/CUDA versions, and which stage ran where
when they differ (a ``cpu_only`` method on a GPU run, a stage cached from a run on another device). Reads the
``device`` each host stage's record carries (:func:`edgebench.hostdevice.record`)."""

from __future__ import annotations

from typing import Any

from edgebench.report.data import RunData
from edgebench.report.tables import Cell, Para, Table

__all__ = ["device_label", "host_device_blocks"]


def device_label(dev: dict[str, Any]) -> str:
    """``cuda:0 (NVIDIA H100, 81559 MiB), torch 2.11.0, CUDA 12.8``."""
    mem = f", {dev['memory_mb']} MiB" if dev.get("memory_mb") else ""
    cuda = f"CUDA {dev['cuda']}" if dev.get("cuda") else "no CUDA"
    return f"{dev.get('device')} ({dev.get('name')}{mem}), torch {dev.get('torch')}, {cuda}"


def host_device_blocks(d: RunData) -> list[Any]:
    """A line naming the host device, and a table of the stages per device when more than one computed."""
    placed = [(s["stage"], s["info"]["device"]) for s in d.stages
              if isinstance(s.get("info"), dict) and isinstance(s["info"].get("device"), dict)]
    if not placed:
        return []
    labels = list(dict.fromkeys(device_label(dev) for _, dev in placed))
    notes = [(stage, dev["note"]) for stage, dev in placed if dev.get("note")]
    if len(labels) == 1 and not notes:
        return [Para(f"Host stages ({len(placed)}) computed on {labels[0]}.")]
    rows: list[list[Cell]] = [[stage, device_label(dev), dev.get("note", "")] for stage, dev in placed]
    return [Para(f"Host stages computed on {len(labels)} device(s): " + "; ".join(labels) + "."),
            Table("host_devices", "Which host stage ran where", ["stage", "device", "note"], rows)]
