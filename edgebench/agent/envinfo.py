"""What the device looked like while it ran a job: CPU, governors, frequencies, temperatures and trip points,
load, memory, OS and runtime versions, and the board's throttling state (Raspberry Pi ``vcgencmd
get_throttled``, Jetson ``nvpmodel -q``) (pyperf's metadata habit). Reads what is readable and records ``None``
for the rest; never fails. Torch-free, psutil-free (used only as a fallback where ``/proc/meminfo`` is absent).

Every path is read under ``root`` (default ``/``) so tests point it at a fixture tree; commands run with an
argument list and a short timeout, only when found on ``PATH`` (or at the path given). Take one snapshot before
and one after a run; :func:`throttling_during` says from the two whether the run was throttled.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

THROTTLE_BITS = {0: "under-voltage", 1: "arm-frequency-capped", 2: "throttled", 3: "soft-temperature-limit"}
"""``vcgencmd get_throttled`` bits 0-3 (now); the same conditions "since boot" are bits 16-19
(raspberrypi.com/documentation/computers/os.html#get_throttled)."""
RUNTIME_DISTRIBUTIONS = {
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml"),
    "openvino": ("openvino",),
    "numpy": ("numpy",),
}
CMD_TIMEOUT_S = 3.0
FREQ_DROP = 0.9  # a frequency below 90 % of its value before the run counts as a cap


def _p(root: str, abspath: str) -> Path:
    return Path(root) / abspath.lstrip("/")


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip()
    except (OSError, ValueError):
        return None


def _int(path: str | Path) -> int | None:
    raw = _read(path)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _command(program: str) -> str | None:
    """``program``'s executable: a path as given if executable, else looked up on ``PATH``."""
    if not program:
        return None
    if os.sep in program:
        return program if os.path.isfile(program) and os.access(program, os.X_OK) else None
    return shutil.which(program)


def _run(program: str, *args: str) -> str | None:
    exe = _command(program)
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=CMD_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def cpu_model(root: str = "/") -> str | None:
    """The CPU's model name (``/proc/cpuinfo``: ``model name``, ``Model`` or ``Hardware``), else the platform's."""
    text = _read(_p(root, "/proc/cpuinfo")) or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware"):
            return value.strip()
    return platform.processor() or None


def _board_model(root: str = "/") -> str | None:
    """The device-tree model (``Raspberry Pi 5 Model B Rev 1.0``, ``NVIDIA Jetson Orin Nano Developer Kit``)."""
    for p in ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model"):
        raw = _read(_p(root, p))
        if raw:
            return raw.rstrip("\x00").strip() or None
    return None


def _zones(root: str) -> list[tuple[str, Path]]:
    """``(name, folder)`` per thermal zone; a type shared by several zones is suffixed with the zone folder."""
    base = _p(root, "/sys/class/thermal")
    zones = sorted(base.glob("thermal_zone*"), key=lambda p: int(re.sub(r"\D", "", p.name) or 0))
    out: list[tuple[str, Path]] = []
    seen: set[str] = set()
    for z in zones:
        name = _read(z / "type") or z.name
        if name in seen:
            name = f"{name} ({z.name})"
        seen.add(name)
        out.append((name, z))
    return out


def _temperatures(root: str = "/") -> dict[str, float]:
    """Each thermal zone's ``temp`` (millidegrees C) in degrees C."""
    temps: dict[str, float] = {}
    for name, z in _zones(root):
        raw = _read(z / "temp")
        if raw and raw.lstrip("-").isdigit():
            temps[name] = int(raw) / 1000.0
    return temps


def _trip_points(root: str = "/") -> dict[str, float]:
    """Per thermal zone, the lowest ``passive`` or ``hot`` trip point (``trip_point_N_temp``, m°C) in °C."""
    trips: dict[str, float] = {}
    for name, z in _zones(root):
        lows = []
        for f in z.glob("trip_point_*_type"):
            if _read(f) in ("passive", "hot"):
                t = _int(z / f.name.replace("_type", "_temp"))
                if t is not None and t > 0:
                    lows.append(t / 1000.0)
        if lows:
            trips[name] = min(lows)
    return trips


def _cpus(root: str) -> list[Path]:
    base = _p(root, "/sys/devices/system/cpu")
    cpus = [p for p in base.glob("cpu*") if re.fullmatch(r"cpu\d+", p.name)]
    return sorted(cpus, key=lambda p: int(p.name[3:]))


def _cpufreq(root: str = "/") -> tuple[list[str], dict[str, dict[str, float | None]]]:
    """The set of scaling governors over all CPUs, and per CPU its ``cur``/``min``/``max`` scaling frequency and
    hardware maximum ``hw_max`` in MHz (sysfs cpufreq values are kHz)."""
    governors: set[str] = set()
    per_cpu: dict[str, dict[str, float | None]] = {}
    for cpu in _cpus(root):
        d = cpu / "cpufreq"
        if not d.is_dir():
            continue
        gov = _read(d / "scaling_governor")
        if gov:
            governors.add(gov)
        vals = {k: _int(d / f) for k, f in (("cur", "scaling_cur_freq"), ("min", "scaling_min_freq"),
                                            ("max", "scaling_max_freq"), ("hw_max", "cpuinfo_max_freq"))}
        per_cpu[cpu.name] = {k: (v / 1000.0 if v is not None else None) for k, v in vals.items()}
    return sorted(governors), per_cpu


def _freq_summary(per_cpu: dict[str, dict[str, float | None]]) -> dict[str, dict[str, float] | None]:
    """Over all CPUs: min/max/mean of the current frequency, and min/max of the scaling cap and floor (MHz)."""
    out: dict[str, dict[str, float] | None] = {}
    for key in ("cur", "max", "min", "hw_max"):
        vals: list[float] = [x for x in (v.get(key) for v in per_cpu.values()) if x is not None]
        out[key] = {"min": min(vals), "max": max(vals), "mean": sum(vals) / len(vals)} if vals else None
    return out


def _meminfo(root: str = "/") -> dict[str, float | None]:
    """``MemTotal`` and ``MemAvailable`` from ``/proc/meminfo`` (kB) in MiB; psutil only where it is absent."""
    out: dict[str, float | None] = {"memory_total_mb": None, "memory_available_mb": None}
    text = _read(_p(root, "/proc/meminfo"))
    if text:
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            field = {"MemTotal": "memory_total_mb", "MemAvailable": "memory_available_mb"}.get(key.strip())
            parts = rest.split()
            if field and parts and parts[0].isdigit():
                out[field] = int(parts[0]) / 1024.0
        return out
    if Path(root).resolve() != Path("/"):  # a fixture tree: psutil would describe this machine instead
        return out
    try:  # not Linux: psutil if present
        import psutil

        vm = psutil.virtual_memory()
        out.update(memory_total_mb=vm.total / 2**20, memory_available_mb=vm.available / 2**20)
    except Exception:
        pass
    return out


def parse_throttled(text: str) -> dict[str, Any] | None:
    """``vcgencmd get_throttled`` output (``throttled=0x50005``) as ``{"raw", "now", "since_boot"}``: the names of
    the conditions active now (bits 0-3) and those that occurred since boot (bits 16-19)."""
    m = re.search(r"throttled=(0x[0-9a-fA-F]+|\d+)", text or "")
    if not m:
        return None
    raw = int(m.group(1), 0)
    return {"raw": hex(raw),
            "now": [n for b, n in THROTTLE_BITS.items() if raw >> b & 1],
            "since_boot": [n for b, n in THROTTLE_BITS.items() if raw >> (b + 16) & 1]}


def parse_nvpmodel(text: str) -> dict[str, Any] | None:
    """``nvpmodel -q`` output (``NV Power Mode: 15W`` then the mode id on the next line, possibly after
    ``NVPM WARN`` lines) as ``{"name": "15W", "id": 1}`` (``id`` ``None`` when not printed)."""
    lines = [ln.strip() for ln in (text or "").splitlines()]
    for i, line in enumerate(lines):
        m = re.search(r"NV Power Mode:\s*(.+)$", line)
        if m:
            mode_id = next((int(x) for x in lines[i + 1:i + 3] if x.isdigit()), None)
            return {"name": m.group(1).strip(), "id": mode_id}
    return None


def _runtimes() -> dict[str, str | None]:
    """Installed versions of the inference runtimes and numpy, from package metadata (nothing is imported)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for key, dists in RUNTIME_DISTRIBUTIONS.items():
        out[key] = None
        for dist in dists:
            try:
                out[key] = metadata.version(dist)
                break
            except Exception:
                continue
    return out


def _safe(fn: Any, *args: Any, default: Any = None) -> Any:
    try:
        return fn(*args)
    except Exception:
        return default


def environment(root: str = "/", *, vcgencmd: str = "vcgencmd", nvpmodel: str = "nvpmodel") -> dict[str, Any]:
    """One snapshot of the device's state; every unreadable field is ``None`` (or empty), nothing raises.

    Keys: ``hostname``, ``os``, ``machine``, ``board_model``, ``cpu_model``, ``cpu_count``, ``governor`` (cpu0's),
    ``governors`` (sorted set over all CPUs), ``cpu_freq_mhz`` (cpu0's current frequency, MHz),
    ``cpu_freqs_mhz`` (per CPU: ``cur``, ``min``, ``max`` scaling and ``hw_max``, MHz), ``cpu_freq_summary_mhz``
    (over CPUs: min/max/mean of each), ``temperatures_c``, ``thermal_trip_c`` (lowest passive/hot trip per
    zone), ``loadavg``, ``python``, ``numpy``, ``runtimes`` (onnxruntime, openvino, numpy versions),
    ``memory_total_mb``, ``memory_available_mb`` (MiB, /proc/meminfo), ``throttled`` (Raspberry Pi
    ``vcgencmd get_throttled``: ``raw``, ``now``, ``since_boot``), ``jetson_power_mode`` (``nvpmodel -q``:
    ``name``, ``id``), ``jetson_release`` (first line of /etc/nv_tegra_release).

    Args:
        root: prefix of every file read (tests pass a fixture tree).
        vcgencmd, nvpmodel: the commands to query (names on ``PATH`` or paths); skipped when not found.
    """
    import numpy as np

    governors, per_cpu = _safe(_cpufreq, root, default=([], {}))
    cpu0 = per_cpu.get("cpu0", {})
    env: dict[str, Any] = {
        "hostname": _safe(socket.gethostname),
        "os": _safe(platform.platform),
        "machine": _safe(platform.machine),
        "board_model": _safe(_board_model, root),
        "cpu_model": _safe(cpu_model, root),
        "cpu_count": os.cpu_count(),
        "governor": _safe(_read, _p(root, "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")),
        "governors": governors,
        "cpu_freq_mhz": cpu0.get("cur"),
        "cpu_freqs_mhz": per_cpu or None,
        "cpu_freq_summary_mhz": _safe(_freq_summary, per_cpu) if per_cpu else None,
        "temperatures_c": _safe(_temperatures, root, default={}),
        "thermal_trip_c": _safe(_trip_points, root, default={}),
        "loadavg": _safe(lambda: list(os.getloadavg())) if hasattr(os, "getloadavg") else None,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "runtimes": _safe(_runtimes, default={}),
    }
    env.update(_safe(_meminfo, root, default={"memory_total_mb": None, "memory_available_mb": None}))
    env["throttled"] = _safe(lambda: parse_throttled(_run(vcgencmd, "get_throttled") or ""))
    env["jetson_power_mode"] = _safe(lambda: parse_nvpmodel(_run(nvpmodel, "-q") or ""))
    release = _safe(_read, _p(root, "/etc/nv_tegra_release"))
    env["jetson_release"] = release.splitlines()[0].strip() if release else None
    return env


def throttling_during(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Why a run between two :func:`environment` snapshots was (or may have been) throttled: one line per
    reason, ``[]`` when nothing points to it.

    Reasons: Raspberry Pi conditions active after the run (``get_throttled`` bits 0-3) or that first occurred
    during it (new "since boot" bits); with the same governors before and after, the CPU frequency cap (highest
    ``scaling_max_freq``) falling below 90 % of its value before the run, and under the ``performance`` governor
    the highest current frequency falling below 90 % of before (a governor change is itself reported); a thermal
    zone at or above its passive/hot trip point after the run; the Jetson power mode changing during the run.
    """
    reasons: list[str] = []
    try:
        reasons += _pi_throttling(before.get("throttled"), after.get("throttled"))
        reasons += _freq_throttling(before, after)
        temps, trips = after.get("temperatures_c") or {}, after.get("thermal_trip_c") or {}
        for zone, trip in sorted(trips.items()):
            t = temps.get(zone)
            if isinstance(t, (int, float)) and isinstance(trip, (int, float)) and t >= trip:
                reasons.append(f"thermal zone {zone} was at {t:.1f} °C after the run, at or above its trip point "
                               f"{trip:.1f} °C: the kernel throttles there")
        pm0, pm1 = before.get("jetson_power_mode"), after.get("jetson_power_mode")
        if isinstance(pm0, dict) and isinstance(pm1, dict) and pm0.get("name") != pm1.get("name"):
            reasons.append(f"the Jetson power mode changed during the run, from {pm0.get('name')} to "
                           f"{pm1.get('name')}")
    except Exception as exc:  # malformed snapshots: say so rather than fail
        reasons.append(f"the environment snapshots could not be compared ({type(exc).__name__}: {exc})")
    return reasons


def _pi_throttling(before: Any, after: Any) -> list[str]:
    if not isinstance(after, dict):
        return []
    out = []
    now = list(after.get("now") or [])
    if now:
        out.append(f"Raspberry Pi firmware reports {', '.join(now)} after the run "
                   f"(vcgencmd get_throttled {after.get('raw')})")
    if isinstance(before, dict):
        new = [c for c in after.get("since_boot") or [] if c not in (before.get("since_boot") or [])]
        if new:
            out.append(f"Raspberry Pi firmware: {', '.join(new)} occurred during the run (get_throttled "
                       f"{before.get('raw')} before, {after.get('raw')} after)")
    return out


def _top(snapshot: dict[str, Any], key: str) -> float | None:
    per_cpu = snapshot.get("cpu_freqs_mhz") or {}
    vals = [v.get(key) for v in per_cpu.values() if isinstance(v, dict) and isinstance(v.get(key), (int, float))]
    return max(vals) if vals else None


def _freq_throttling(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    out: list[str] = []
    g0, g1 = before.get("governors") or [], after.get("governors") or []
    if g0 != g1:
        return [f"the CPU governor changed during the run, from {', '.join(g0) or '?'} to {', '.join(g1) or '?'}"]
    cap0, cap1 = _top(before, "max"), _top(after, "max")
    if cap0 and cap1 is not None and cap1 < FREQ_DROP * cap0:
        out.append(f"the CPU frequency cap (scaling_max_freq) fell from {cap0:.0f} MHz before the run to "
                   f"{cap1:.0f} MHz after it (thermal or power capping)")
    if g0 == ["performance"]:
        cur0, cur1 = _top(before, "cur"), _top(after, "cur")
        if cur0 and cur1 is not None and cur1 < FREQ_DROP * cur0:
            out.append(f"under the performance governor the highest CPU clock fell from {cur0:.0f} MHz before the "
                       f"run to {cur1:.0f} MHz after it")
    return out


def thermal_state(root: str = "/") -> dict[str, float | None]:
    """A cheap reading between latency rounds: the hottest thermal zone (``temp_c``), the highest current CPU
    frequency (``freq_mhz``) and the lowest scaling cap (``freq_cap_mhz``), each None where the device does not
    expose it."""
    temps = _safe(_temperatures, root, default={})
    _, per_cpu = _safe(_cpufreq, root, default=([], {}))
    summary = _freq_summary(per_cpu) if per_cpu else {}
    cur, cap = summary.get("cur"), summary.get("max")
    return {"temp_c": max(temps.values()) if temps else None, "freq_mhz": cur["max"] if cur else None,
            "freq_cap_mhz": cap["min"] if cap else None}


def cpu_busy_s(root: str = "/") -> float | None:
    """Busy CPU time of the whole machine since boot, in CPU-seconds (Linux ``/proc/stat``: every CPU's time less
    idle and iowait); None where it is not readable."""
    line = (_safe(_read, _p(root, "/proc/stat")) or "").splitlines()[:1]
    fields = line[0].split() if line else []
    if len(fields) < 5 or fields[0] != "cpu":
        return None
    try:
        ticks = [int(v) for v in fields[1:]]
    except ValueError:
        return None
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
