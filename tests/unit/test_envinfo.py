"""The device's environment record against fixture trees (a Raspberry Pi 5, a Jetson) and fake commands, and
the throttling verdict drawn from two snapshots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgebench.agent.envinfo import environment, parse_nvpmodel, parse_throttled, throttling_during

OLD_KEYS = {"hostname", "os", "machine", "cpu_model", "cpu_count", "governor", "cpu_freq_mhz", "temperatures_c",
            "loadavg", "python", "numpy", "memory_available_mb"}
NEW_KEYS = {"board_model", "governors", "cpu_freqs_mhz", "cpu_freq_summary_mhz", "thermal_trip_c", "runtimes",
            "memory_total_mb", "throttled", "jetson_power_mode", "jetson_release"}


def _write(root: Path, rel: str, text: str | int) -> None:
    p = root / rel.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(f"{text}\n")


def _script(path: Path, output: str) -> str:
    path.write_text(f"#!/bin/sh\ncat <<'OUT'\n{output}OUT\n")
    path.chmod(0o755)
    return str(path)


def _pi5_tree(root: Path, *, max_khz: int = 2400000, cur_khz: int = 2400000, governor: str = "ondemand",
              temp_mc: int = 61350) -> None:
    _write(root, "/proc/cpuinfo", "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm\n"
                                  "CPU implementer\t: 0x41\nCPU part\t: 0xd0b\n\nRevision\t: d04170\n"
                                  "Serial\t\t: 0ab1c2d3e4f56789\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0")
    _write(root, "/proc/meminfo", "MemTotal:        8245984 kB\nMemFree:         6912340 kB\n"
                                  "MemAvailable:    7574432 kB\nBuffers:           55872 kB")
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    for n in range(4):
        d = f"/sys/devices/system/cpu/cpu{n}/cpufreq"
        _write(root, f"{d}/scaling_governor", governor)
        _write(root, f"{d}/scaling_cur_freq", cur_khz if n else 1500000)
        _write(root, f"{d}/scaling_min_freq", 1500000)
        _write(root, f"{d}/scaling_max_freq", max_khz)
        _write(root, f"{d}/cpuinfo_max_freq", 2400000)
    _write(root, "/sys/devices/system/cpu/online", "0-3")
    _write(root, "/sys/devices/system/cpu/cpufreq/policy0/scaling_governor", governor)
    z = "/sys/class/thermal/thermal_zone0"
    _write(root, f"{z}/type", "cpu-thermal")
    _write(root, f"{z}/temp", temp_mc)
    for i, (kind, mc) in enumerate([("active", 50000), ("passive", 85000), ("critical", 110000),
                                    ("active", 60000)]):
        _write(root, f"{z}/trip_point_{i}_type", kind)
        _write(root, f"{z}/trip_point_{i}_temp", mc)


def test_environment_on_a_pi5_tree(tmp_path: Path) -> None:
    _pi5_tree(tmp_path)
    vcgencmd = _script(tmp_path / "vcgencmd", "throttled=0x50005\n")
    env = environment(str(tmp_path), vcgencmd=vcgencmd, nvpmodel=str(tmp_path / "no-nvpmodel"))
    assert OLD_KEYS | NEW_KEYS <= set(env)
    json.dumps(env)  # the record is stored as JSON
    assert env["board_model"] == "Raspberry Pi 5 Model B Rev 1.0"
    assert env["cpu_model"] == "Raspberry Pi 5 Model B Rev 1.0"
    assert env["memory_total_mb"] == pytest.approx(8245984 / 1024)
    assert env["memory_available_mb"] == pytest.approx(7574432 / 1024)
    assert env["governor"] == "ondemand" and env["governors"] == ["ondemand"]
    assert env["cpu_freq_mhz"] == 1500.0  # cpu0's current frequency, as before
    assert env["cpu_freqs_mhz"]["cpu2"] == {"cur": 2400.0, "min": 1500.0, "max": 2400.0, "hw_max": 2400.0}
    assert env["cpu_freq_summary_mhz"]["cur"] == {"min": 1500.0, "max": 2400.0, "mean": 2175.0}
    assert env["temperatures_c"] == {"cpu-thermal": 61.35}
    assert env["thermal_trip_c"] == {"cpu-thermal": 85.0}  # passive; active and critical trips do not count
    assert env["throttled"] == {"raw": "0x50005", "now": ["under-voltage", "throttled"],
                                "since_boot": ["under-voltage", "throttled"]}
    assert env["jetson_power_mode"] is None and env["jetson_release"] is None
    assert env["runtimes"]["numpy"] == env["numpy"]


def test_environment_on_a_jetson_tree(tmp_path: Path) -> None:
    _write(tmp_path, "/etc/nv_tegra_release", "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, "
                                              "EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023\n"
                                              "# KERNEL_VARIANT: oot")
    nvpmodel = _script(tmp_path / "nvpmodel", "NVPM WARN: patching tpc_pg_mask: (0x1:0x4)\nNV Power Mode: 15W\n0\n")
    env = environment(str(tmp_path), vcgencmd=str(tmp_path / "none"), nvpmodel=nvpmodel)
    assert env["jetson_power_mode"] == {"name": "15W", "id": 0}
    assert env["jetson_release"].startswith("# R35 (release), REVISION: 4.1")
    assert env["throttled"] is None
    # nothing readable under the tree: empty or None, never an error
    assert env["governors"] == [] and env["cpu_freq_mhz"] is None and env["cpu_freqs_mhz"] is None
    assert env["temperatures_c"] == {} and env["memory_total_mb"] is None


def test_environment_default_call_still_works() -> None:
    env = environment()
    assert OLD_KEYS | NEW_KEYS <= set(env) and env["cpu_count"] and env["numpy"]
    json.dumps(env)


def test_parsers() -> None:
    assert parse_throttled("throttled=0x0") == {"raw": "0x0", "now": [], "since_boot": []}
    assert parse_throttled("throttled=0xe0008") == {
        "raw": "0xe0008", "now": ["soft-temperature-limit"],
        "since_boot": ["arm-frequency-capped", "throttled", "soft-temperature-limit"]}
    assert parse_throttled('error=1 error_msg="Command not registered"') is None
    assert parse_nvpmodel("NV Power Mode: MAXN_SUPER\n2\n") == {"name": "MAXN_SUPER", "id": 2}
    assert parse_nvpmodel("NV Power Mode: 7W") == {"name": "7W", "id": None}
    assert parse_nvpmodel("") is None


def _snapshot(tmp_path: Path, name: str, throttled: str = "0x0", **tree: int | str) -> dict:
    root = tmp_path / name
    _pi5_tree(root, **tree)  # type: ignore[arg-type]
    return environment(str(root), vcgencmd=_script(tmp_path / f"vcgencmd-{name}", f"throttled={throttled}\n"))


def test_throttling_during(tmp_path: Path) -> None:
    cool = _snapshot(tmp_path, "cool")
    assert throttling_during(cool, cool) == []
    # the soft temperature limit hit during the run, still active after it, and the CPU cap lowered
    hot = _snapshot(tmp_path, "hot", throttled="0x80008", max_khz=1500000, temp_mc=86200)
    reasons = throttling_during(cool, hot)
    assert reasons == [
        "Raspberry Pi firmware reports soft-temperature-limit after the run (vcgencmd get_throttled 0x80008)",
        "Raspberry Pi firmware: soft-temperature-limit occurred during the run (get_throttled 0x0 before, 0x80008 "
        "after)",
        "the CPU frequency cap (scaling_max_freq) fell from 2400 MHz before the run to 1500 MHz after it (thermal "
        "or power capping)",
        "thermal zone cpu-thermal was at 86.2 °C after the run, at or above its trip point 85.0 °C: the kernel "
        "throttles there",
    ]
    # an old under-voltage (since boot before the run) is not blamed on this run
    old = _snapshot(tmp_path, "old", throttled="0x10000")
    assert throttling_during(old, old) == []
    # under the performance governor, the clock itself dropping counts
    fast = _snapshot(tmp_path, "fast", governor="performance")
    slow = _snapshot(tmp_path, "slow", governor="performance", cur_khz=1800000)
    assert throttling_during(fast, slow) == [
        "under the performance governor the highest CPU clock fell from 2400 MHz before the run to 1800 MHz after it"]
    assert throttling_during(cool, slow) == ["the CPU governor changed during the run, from ondemand to performance"]
    # Jetson power mode change; snapshots missing everything; malformed ones
    assert throttling_during({"jetson_power_mode": {"name": "MAXN", "id": 0}},
                             {"jetson_power_mode": {"name": "15W", "id": 1}}) == [
        "the Jetson power mode changed during the run, from MAXN to 15W"]
    assert throttling_during({}, {}) == []
    assert throttling_during({}, {"throttled": "0x5", "cpu_freqs_mhz": 3})[0].startswith(
        "the environment snapshots could not be compared")
