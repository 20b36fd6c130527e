"""Power sensors against fixture trees with the real sysfs layouts and realistic values, fake ``vcgencmd`` and
NVML, external meter logs, and the sampler thread."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgebench.errors import ConfigError, DeviceError, UnknownNameError
from edgebench.metrics.energy import counter_delta, integrate_power
from edgebench.sensors import SENSORS, PowerSensor, create_sensor
from edgebench.sensors.sampler import PowerSampler
from tests.fixtures.imports import assert_fresh_imports_clean


def _write(root: Path, rel: str, text: str | int) -> Path:
    p = root / rel.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(f"{text}\n")
    return p


def _script(path: Path, output: str, exit_code: int = 0) -> str:
    path.write_text(f"#!/bin/sh\ncat <<'OUT'\n{output}OUT\nexit {exit_code}\n")
    path.chmod(0o755)
    return str(path)


# ------------------------------------------------------------------------------------------------- registry


def test_registry_knows_every_builtin_sensor() -> None:
    assert SENSORS.names() == ["external", "jetson", "none", "nvml", "pi5-pmic", "rapl"]
    for name, cls in SENSORS.items():
        assert cls.name == name and cls.kind in ("power", "energy")


def test_create_sensor_checks_names_and_options(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match=r"unknown power sensor 'rapel'.*Did you mean 'rapl'"):
        create_sensor("rapel")
    with pytest.raises(ConfigError, match=r"t.toml: power: power sensor 'rapl' has no parameter 'domain' "
                                          r"\(did you mean 'domains'\?\)"):
        create_sensor("rapl", where="t.toml: power", domain=["package-0"])
    with pytest.raises(ConfigError, match=r"power sensor 'external' needs parameter\(s\) 'path'"):
        create_sensor("external")
    # a bad value is named with where it came from
    with pytest.raises(ConfigError, match=r"^t.toml: power: power sensor 'external': time_unit 'min' is not one"):
        create_sensor("external", where="t.toml: power", path=str(tmp_path / "log.csv"), time_unit="min")
    sensor = create_sensor("jetson", root=str(tmp_path), rail="VDD_IN")
    assert isinstance(sensor, PowerSensor) and sensor.rail == ["VDD_IN"]


def test_none_sensor_says_energy_is_absent() -> None:
    s = create_sensor("none")
    assert s.probe() == "no power sensor configured for this target"
    assert s.kind == "power" and s.describe()["available"] is False
    with pytest.raises(DeviceError, match="no power sensor configured"):
        s.read()
    assert s.log_between(0.0, 1.0) is None


# ------------------------------------------------------------------------------------------------------ RAPL

MAX_UJ = 262143328850  # a typical max_energy_range_uj (2^32 units of 61 µJ)


def _rapl_zone(root: Path, zone: str, name: str, energy_uj: int) -> None:
    base = f"/sys/class/powercap/{zone}"
    _write(root, f"{base}/name", name)
    _write(root, f"{base}/energy_uj", energy_uj)
    _write(root, f"{base}/max_energy_range_uj", MAX_UJ)
    _write(root, f"{base}/enabled", 1)


def _laptop_rapl(root: Path) -> None:
    """A laptop: one package with core/uncore subzones, and the platform-wide psys domain."""
    _rapl_zone(root, "intel-rapl:0", "package-0", 48_213_456_789)
    _rapl_zone(root, "intel-rapl:0:0", "core", 20_111_222_333)
    _rapl_zone(root, "intel-rapl:0:1", "uncore", 1_234_567_890)
    _rapl_zone(root, "intel-rapl:1", "psys", 99_876_543_210)
    _write(root, "/sys/class/powercap/intel-rapl/enabled", 1)  # the control type folder, not a zone


def test_rapl_sums_top_level_packages_only(tmp_path: Path) -> None:
    _laptop_rapl(tmp_path)
    s = create_sensor("rapl", root=str(tmp_path))
    assert s.probe() is None and s.kind == "energy" and s.unit == "J"
    assert s.read() == pytest.approx(48_213.456789)
    d = s.describe()
    assert d["summed"] == ["intel-rapl:0"] and d["zones"][0]["name"] == "package-0"
    assert d["zones"][0]["max_energy_range_uj"] == MAX_UJ and "not DRAM" in d["covers"]

    # a two-socket server: both packages, not their dram subzones unless asked
    server = tmp_path / "server"
    _rapl_zone(server, "intel-rapl:0", "package-0", 1_000_000)
    _rapl_zone(server, "intel-rapl:0:0", "dram", 300_000)
    _rapl_zone(server, "intel-rapl:1", "package-1", 2_500_000)
    _rapl_zone(server, "intel-rapl:1:0", "dram", 400_000)
    s = create_sensor("rapl", root=str(server))
    assert s.probe() is None and s.read() == pytest.approx(3.5)
    dram = create_sensor("rapl", root=str(server), domains=["dram"])
    assert dram.probe() is None and dram.read() == pytest.approx(0.7)
    assert dram.describe()["summed"] == ["intel-rapl:0:0", "intel-rapl:1:0"]
    both = create_sensor("rapl", root=str(server), domains=["package-0", "intel-rapl:0:0"])
    assert "counts its energy twice" in both.probe()
    missing = create_sensor("rapl", root=str(server), domains="psys")
    assert "no zone 'psys'" in missing.probe() and "intel-rapl:1 (package-1)" in missing.probe()


def test_rapl_unwraps_the_counter(tmp_path: Path) -> None:
    _laptop_rapl(tmp_path)
    energy = tmp_path / "sys/class/powercap/intel-rapl:0/energy_uj"
    energy.write_text(f"{MAX_UJ - 1_000_000}\n")
    s = create_sensor("rapl", root=str(tmp_path))
    r0 = s.read()
    energy.write_text("500000\n")  # wrapped past max_energy_range_uj: 1 J before the wrap, 0.5 J after
    r1 = s.read()
    assert r1 - r0 == pytest.approx(1.5)
    energy.write_text("2500000\n")
    assert s.read() - r1 == pytest.approx(2.0)
    assert s.probe() is None and s.read() - r1 == pytest.approx(2.0)  # probing again keeps the unwrap state


def test_rapl_probe_explains_root_only_and_absence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "no intel-rapl zones" in create_sensor("rapl", root=str(tmp_path)).probe()
    _laptop_rapl(tmp_path)
    real = Path.read_text

    def denied(self: Path, *a: object, **k: object) -> str:
        if self.name == "energy_uj":  # what a non-root user meets on Linux >= 5.10
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", denied)
    why = create_sensor("rapl", root=str(tmp_path)).probe()
    assert "intel-rapl:0/energy_uj is readable by root only" in why and "chmod a+r" in why
    with pytest.raises(DeviceError, match=r"power sensor 'rapl': .*readable by root only"):
        create_sensor("rapl", root=str(tmp_path)).read()


# ---------------------------------------------------------------------------------------------------- Jetson


def _orin_nano_hwmon(root: Path) -> None:
    """JetPack 5/6 on an Orin Nano: the INA3221 behind hwmon1 (hwmon0 is another chip)."""
    _write(root, "/sys/class/hwmon/hwmon0/name", "tegra_pwm_fan")
    _write(root, "/sys/class/hwmon/hwmon0/rpm", 2270)
    h = "/sys/class/hwmon/hwmon1"
    _write(root, f"{h}/name", "ina3221")
    for n, (label, mv, ma) in enumerate([("VDD_IN", 5072, 1344), ("VDD_CPU_GPU_CV", 5064, 480),
                                         ("VDD_SOC", 5072, 1032)], start=1):
        _write(root, f"{h}/in{n}_label", label)
        _write(root, f"{h}/in{n}_input", mv)
        _write(root, f"{h}/curr{n}_input", ma)
        _write(root, f"{h}/curr{n}_max", 32760)
    _write(root, f"{h}/in7_label", "sum of shunt voltages")
    _write(root, f"{h}/in7_input", 61)


def test_jetson_hwmon_reads_vdd_in(tmp_path: Path) -> None:
    _orin_nano_hwmon(tmp_path)
    s = create_sensor("jetson", root=str(tmp_path))
    assert s.probe() is None and s.kind == "power"
    assert s.read() == pytest.approx(5.072 * 1.344)  # mV x mA
    d = s.describe()
    assert d["rail"] == "VDD_IN" and d["summed"] == ["VDD_IN"]
    assert d["available_rails"] == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]  # not the sum-of-shunts channel
    assert d["channels"][0]["unit"] == "mV*mA" and "not the carrier board" in d["covers"]
    (tmp_path / "sys/class/hwmon/hwmon1/curr1_input").write_text("2688\n")  # the next reading follows the file
    assert s.read() == pytest.approx(5.072 * 2.688)
    soc = create_sensor("jetson", root=str(tmp_path), rail="vdd_soc")  # case-insensitive
    assert soc.read() == pytest.approx(5.072 * 1.032)


def test_jetson_jetpack4_nano_iio_uses_pom_5v_in(tmp_path: Path) -> None:
    d = "/sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    for n, (rail, mw, mv, ma) in enumerate([("POM_5V_IN", 3964, 5000, 792), ("POM_5V_GPU", 78, 5008, 16),
                                            ("POM_5V_CPU", 1016, 5000, 203)]):
        _write(tmp_path, f"{d}/rail_name_{n}", rail)
        _write(tmp_path, f"{d}/in_power{n}_input", mw)
        _write(tmp_path, f"{d}/in_voltage{n}_input", mv)
        _write(tmp_path, f"{d}/in_current{n}_input", ma)
    _write(tmp_path, "/sys/bus/i2c/drivers/ina3221x/uevent", "DRIVER=ina3221x")
    s = create_sensor("jetson", root=str(tmp_path))
    assert s.probe() is None
    assert s.read() == pytest.approx(3.964)  # in_power0_input, mW
    desc = s.describe()
    assert desc["rail"] == "POM_5V_IN" and desc["candidates"] == ["VDD_IN", "POM_5V_IN"]
    assert desc["channels"][0]["unit"] == "mW" and "iio ina3221x" in desc["channels"][0]["source"]


def test_jetson_ina238_and_summed_rails(tmp_path: Path) -> None:
    # AGX Orin: two INA3221 without a total rail (NC channels skipped) and a labelled INA238 on the input
    for h, rails in (("hwmon2", [("VDD_GPU_SOC", 19152, 1608), ("VDD_CPU_CV", 19176, 432),
                                 ("VIN_SYS_5V0", 5016, 904)]),
                     ("hwmon3", [("NC", 0, 0), ("VDDQ_VDD2_1V8AO", 5000, 184), ("NC", 0, 0)])):
        _write(tmp_path, f"/sys/class/hwmon/{h}/name", "ina3221")
        for n, (label, mv, ma) in enumerate(rails, start=1):
            _write(tmp_path, f"/sys/class/hwmon/{h}/in{n}_label", label)
            _write(tmp_path, f"/sys/class/hwmon/{h}/in{n}_input", mv)
            _write(tmp_path, f"/sys/class/hwmon/{h}/curr{n}_input", ma)
    s = create_sensor("jetson", root=str(tmp_path))
    why = s.probe()
    assert "none of the rails VDD_IN, POM_5V_IN found" in why and "VDD_GPU_SOC, VDD_CPU_CV" in why
    assert "NC" not in why.split("rails here:")[1]
    with pytest.raises(DeviceError, match="power sensor 'jetson': Jetson: none of the rails"):
        s.read()
    summed = create_sensor("jetson", root=str(tmp_path), sum_rails=["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"])
    assert summed.probe() is None
    assert summed.read() == pytest.approx(19.152 * 1.608 + 19.176 * 0.432 + 5.016 * 0.904)
    assert summed.describe()["summed"] == ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"]
    assert "not found" in create_sensor("jetson", root=str(tmp_path), sum_rails=["VDD_GPU_SOC", "X"]).probe()

    # an INA238 (hwmon: power1_input in µW), labelled through the chip's label attribute
    _write(tmp_path, "/sys/class/hwmon/hwmon4/name", "ina238")
    _write(tmp_path, "/sys/class/hwmon/hwmon4/label", "VDD_IN")
    _write(tmp_path, "/sys/class/hwmon/hwmon4/in1_input", 19080)
    _write(tmp_path, "/sys/class/hwmon/hwmon4/curr1_input", 1826)
    _write(tmp_path, "/sys/class/hwmon/hwmon4/power1_input", 34_840_000)
    s = create_sensor("jetson", root=str(tmp_path))
    assert s.probe() is None and s.read() == pytest.approx(34.84)
    assert s.describe()["channels"][0]["unit"] == "uW"
    # an unlabelled INA238 gets a name from its folder, which the rail option can pick
    _write(tmp_path, "/sys/class/hwmon/hwmon5/name", "ina238")
    _write(tmp_path, "/sys/class/hwmon/hwmon5/in1_input", 12000)
    _write(tmp_path, "/sys/class/hwmon/hwmon5/curr1_input", 500)
    s = create_sensor("jetson", root=str(tmp_path), rail=["VIN", "ina238:hwmon5"])
    assert s.probe() is None and s.read() == pytest.approx(6.0)  # no power1_input: mV x mA
    assert s.describe()["rail"] == "ina238:hwmon5"


def test_jetson_absent(tmp_path: Path) -> None:
    why = create_sensor("jetson", root=str(tmp_path)).probe()
    assert why.startswith("Jetson: no INA3221/INA238 power monitor") and str(tmp_path) in why
    with pytest.raises(ConfigError, match="rail must be a rail name"):
        create_sensor("jetson", rail=[])


# ---------------------------------------------------------------------------------------------- Pi 5 PMIC

PI5_RAILS = {  # rail: (A, V, current channel, volt channel), as vcgencmd pmic_read_adc prints them
    "3V7_WL_SW": (0.08893260, 3.70818800, 0, 8), "3V3_SYS": (0.07214590, 3.31089400, 1, 9),
    "1V8_SYS": (0.19421360, 1.80054800, 2, 10), "DDR_VDD2": (0.03025710, 1.10622500, 3, 11),
    "DDR_VDDQ": (0.00000000, 0.60256400, 4, 12), "1V1_SYS": (0.19030480, 1.10439400, 5, 13),
    "0V8_SW": (0.29719960, 0.80036540, 6, 14), "VDD_CORE": (0.84650200, 0.72431300, 7, 15),
    "3V3_DAC": (0.00012210, 3.31455700, 17, 20), "3V3_ADC": (0.00024420, 3.31089400, 18, 21),
    "0V8_AON": (0.00439560, 0.79951000, 16, 19), "HDMI": (0.01440780, 5.08043200, 22, 23),
}


def _pmic_output(rails: dict[str, tuple[float, float, int, int]]) -> str:
    lines = [f"{name + '_A':>12} current({c})={a:.8f}A" for name, (a, _, c, _) in rails.items()]
    lines += [f"{name + '_V':>12} volt({v})={volt:.8f}V" for name, (_, volt, _, v) in rails.items()]
    lines += ["     EXT5V_V volt(24)=5.12826000V", "      BATT_V volt(25)=0.00000000V"]
    return "\n".join(lines) + "\n"


def test_pi5_pmic_sums_current_times_voltage(tmp_path: Path) -> None:
    exe = _script(tmp_path / "vcgencmd", _pmic_output(PI5_RAILS))
    s = create_sensor("pi5-pmic", vcgencmd=exe)
    assert s.probe() is None and s.kind == "power"
    expected = sum(a * v for a, v, _, _ in PI5_RAILS.values())
    assert s.read() == pytest.approx(expected, rel=1e-6)
    assert 1.5 < expected < 3.0  # an idle Pi 5's rails: about 2 W
    d = s.describe()
    assert d["wall_power"] is False and "not the wall power" in d["covers"]
    assert sorted(d["summed"]) == sorted(PI5_RAILS) and "EXT5V" not in d["summed"]
    # two rails by hand: 2.0 A x 0.9 V + 0.2 A x 3.3 V
    small = _script(tmp_path / "small", "  VDD_CORE_A current(7)=2.00000000A\n   3V3_SYS_A current(1)=0.20000000A\n"
                                        "   3V3_SYS_V volt(9)=3.30000000V\n  VDD_CORE_V volt(15)=0.90000000V\n"
                                        "     EXT5V_V volt(24)=5.10000000V\n")
    assert create_sensor("pi5-pmic", vcgencmd=small).read() == pytest.approx(2.46)


def test_pi5_pmic_explains_failures(tmp_path: Path) -> None:
    why = create_sensor("pi5-pmic", vcgencmd=str(tmp_path / "nope")).probe()
    assert why.startswith("Pi 5 PMIC:") and "not found or not executable" in why
    pi4 = _script(tmp_path / "pi4", 'error=1 error_msg="Command not registered"\n')
    why = create_sensor("pi5-pmic", vcgencmd=pi4).probe()
    assert "pmic_read_adc failed" in why and "Raspberry Pi 5 only" in why
    denied = _script(tmp_path / "denied", "VCHI initialization failed\n", exit_code=255)
    assert "video group" in create_sensor("pi5-pmic", vcgencmd=denied).probe()
    empty = _script(tmp_path / "empty", "     EXT5V_V volt(24)=5.10000000V\n")
    assert "not a Raspberry Pi 5" in create_sensor("pi5-pmic", vcgencmd=empty).probe()
    with pytest.raises(DeviceError, match="power sensor 'pi5-pmic': .*pmic_read_adc failed"):
        create_sensor("pi5-pmic", vcgencmd=pi4).read()


# ---------------------------------------------------------------------------------------------------- NVML


class FakeNVMLError(Exception):
    pass


class FakeNvml:
    """The part of pynvml the sensor uses, with a T4-like GPU (energy counter in mJ, power in mW)."""

    NVMLError = FakeNVMLError

    def __init__(self, *, energy: bool = True, gpus: int = 1) -> None:
        self.energy, self.gpus, self.live = energy, gpus, 0
        self.energy_mj, self.power_mw = 123_456_789, 27_350

    def nvmlInit(self) -> None:
        self.live += 1

    def nvmlShutdown(self) -> None:
        self.live -= 1

    def nvmlDeviceGetCount(self) -> int:
        return self.gpus

    def nvmlDeviceGetHandleByIndex(self, index: int) -> tuple[str, int]:
        return ("gpu", index)

    def nvmlDeviceGetName(self, handle: object) -> bytes:
        return b"Tesla T4"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: object) -> int:
        if not self.energy:
            raise FakeNVMLError("Not Supported")
        return self.energy_mj

    def nvmlDeviceGetPowerUsage(self, handle: object) -> int:
        return self.power_mw


def test_nvml_energy_counter_then_power_fallback() -> None:
    lib = FakeNvml()
    s = create_sensor("nvml", nvml=lib)
    assert s.probe() is None and s.kind == "energy" and s.unit == "J"
    assert s.read() == pytest.approx(123_456.789)  # mJ -> J
    lib.energy_mj += 4_500
    assert s.read() == pytest.approx(123_461.289)
    d = s.describe()
    assert d["device"] == "Tesla T4" and "TotalEnergyConsumption" in d["source"]
    s.close()
    assert lib.live == 0

    old = FakeNvml(energy=False)  # pre-Volta: no energy counter, power only
    s = create_sensor("nvml", nvml=old)
    assert s.probe() is None and s.kind == "power" and s.unit == "W"
    assert s.read() == pytest.approx(27.35)  # mW -> W
    assert "averaged over 1 s" in s.describe()["source"]
    assert type(s).kind == "energy"  # the kind is decided per instance


def test_nvml_probe_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    assert create_sensor("nvml").probe() == "NVML: the Python module pynvml is not installed: pip install nvidia-ml-py"
    lib = FakeNvml(gpus=1)
    why = create_sensor("nvml", index=2, nvml=lib).probe()
    assert "no GPU with index 2 (1 GPU(s) here)" in why and lib.live == 0  # NVML shut down again
    with pytest.raises(DeviceError, match="power sensor 'nvml': NVML: no GPU with index 2"):
        create_sensor("nvml", index=2, nvml=lib).read()
    with pytest.raises(ConfigError, match="index must be a GPU index"):
        create_sensor("nvml", index=-1)


# ---------------------------------------------------------------------------------------------- external

T0 = 1_714_000_000.0  # epoch seconds of the logs' first row


def _ms(t: float) -> int:
    return round(t * 1000)


def _usb_meter_log(path: Path, rows: int = 20) -> None:
    """A CSV in ms and mW with comments, a header and a partially written last line."""
    lines = ["# UM34C logger v1.2, 10 Hz", "time_ms,voltage_V,power_mW"]
    lines += [f"{_ms(T0 + k / 10)},5.08,{4950 + 10 * k}" for k in range(rows)]
    path.write_text("\n".join(lines) + "\n" + f"{_ms(T0 + rows / 10)},5.0")


def test_external_csv_log(tmp_path: Path) -> None:
    log = tmp_path / "meter.csv"
    _usb_meter_log(log)
    s = create_sensor("external", path=str(log), time_column="time_ms", power_column="power_mW",
                      time_unit="ms", scale=0.001)
    assert s.probe() is None and s.kind == "power"
    assert s.read() == pytest.approx(5.140)  # the newest complete row, not the half-written one
    t, w = s.log_between(T0 + 0.25, T0 + 0.55)
    np.testing.assert_allclose(t - T0, [0.2, 0.3, 0.4, 0.5, 0.6], atol=1e-6)  # one row either side
    np.testing.assert_allclose(w, [4.97, 4.98, 4.99, 5.00, 5.01])
    joules = integrate_power(t, w, T0 + 0.25, T0 + 0.55)
    assert joules == pytest.approx(0.3 * (4.975 + 5.005) / 2, rel=1e-5)  # linear power: mean edge value x 0.3 s
    d = s.describe()
    assert d["rows"] == 20 and d["header"] == ["time_ms", "voltage_V", "power_mW"]
    assert d["median_interval_s"] == pytest.approx(0.1, abs=1e-6)

    # the logger completes its line and writes more: read incrementally
    with open(log, "a") as f:
        f.write(f"8,5100\n{_ms(T0 + 2.1)},5.08,5300\n")
    assert s.read() == pytest.approx(5.3)
    t, w = s.log_between(T0 + 2.0, T0 + 2.0)
    np.testing.assert_allclose(t - T0, [1.9, 2.0, 2.1], atol=1e-6)
    np.testing.assert_allclose(w, [5.14, 5.1, 5.3])
    assert s.describe()["rows"] == 22
    # a window before the log starts: the log does not cover it
    t, _ = s.log_between(T0 - 5, T0 - 4)
    assert t.tolist() == [T0]


def test_external_unterminated_last_line_once_settled(tmp_path: Path) -> None:
    log = tmp_path / "meter.csv"
    log.write_text(f"{_ms(T0)},5.08,4950\n{_ms(T0 + 0.1)},5.08,4970\n{_ms(T0 + 0.2)},5.08,5012")
    s = create_sensor("external", path=str(log), time_column=0, power_column=2, time_unit="ms", scale=1e-3)
    assert s.read() == pytest.approx(4.970)  # the file just changed: its last line may still be growing
    old = time.time() - 5
    os.utime(log, (old, old))
    assert s.read() == pytest.approx(5.012)  # the writer has stopped: the unterminated line is taken
    assert s.describe()["rows"] == 3


def test_external_serial_text_log(tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    log.write_text("# pi-meter serial log\n" + "".join(f"{T0 + k * 0.5:.3f} {2.5 + k:.2f}W\n" for k in range(6))
                   + "--- logger restarted ---\n" + f"{T0 + 3.0:.3f} 9.00W\n")
    s = create_sensor("external", path=str(log))
    assert s.probe() is None and s.read() == pytest.approx(9.0)
    t, w = s.log_between(T0 + 1.0, T0 + 1.5)
    np.testing.assert_allclose(t - T0, [0.5, 1.0, 1.5, 2.0], atol=1e-6)
    np.testing.assert_allclose(w, [3.5, 4.5, 5.5, 6.5])
    assert s.describe()["skipped_lines"] == 1

    iso = tmp_path / "iso.csv"
    iso.write_text("when;watts\n2024-04-25T00:00:00+00:00;3.0\n2024-04-25T00:00:01.500000+00:00;4.0\n")
    s = create_sensor("external", path=str(iso), time_column="when", power_column="watts", time_unit="iso",
                      clock_offset_s=-2.0)
    t, w = s.log_between(0, 2e9)
    assert t.tolist() == [1_714_003_200.0 - 2.0, 1_714_003_201.5 - 2.0] and w.tolist() == [3.0, 4.0]


def test_external_probe_messages(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"
    why = create_sensor("external", path=str(missing)).probe()
    assert why.startswith("external meter: cannot read the meter log") and str(missing) in why
    with pytest.raises(DeviceError, match="power sensor 'external': cannot read the meter log"):
        create_sensor("external", path=str(missing)).read()
    empty = tmp_path / "empty.csv"
    empty.write_text("# nothing logged yet\n")
    assert "holds no sample yet" in create_sensor("external", path=str(empty)).probe()
    noheader = tmp_path / "noheader.csv"
    noheader.write_text(f"{T0},4.2\n")
    named = create_sensor("external", path=str(noheader), power_column="watts")
    assert "power_column 'watts' is not a column" in named.probe() and "(header: none)" in named.probe()
    with pytest.raises(ConfigError, match="scale must be > 0"):
        create_sensor("external", path=str(noheader), scale=0)


# ------------------------------------------------------------------------------------------------- sampler


class RampSensor(PowerSensor):
    """A test sensor: constant 2.5 W (kind power) or a counter rising 3 J/s (kind energy); fails on request."""

    name = "ramp"

    def __init__(self, kind: str = "power", fail_after: int | None = None) -> None:
        super().__init__()
        self.kind = kind  # type: ignore[misc]
        self.fail_after, self.reads, self.threads = fail_after, 0, set()
        self.t_start = time.perf_counter()

    def probe(self) -> str | None:
        return None

    def read(self) -> float:
        self.reads += 1
        self.threads.add(threading.current_thread().name)
        if self.fail_after is not None and self.reads > self.fail_after:
            raise DeviceError("power sensor 'ramp': the rail vanished")
        return 2.5 if self.kind == "power" else 3.0 * (time.perf_counter() - self.t_start)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind}


def test_sampler_covers_marked_window_without_busy_looping() -> None:
    sensor = RampSensor("power")
    sampler = PowerSampler(sensor, rate_hz=50)
    sampler.start()
    assert len(sampler) >= 1  # start() returns after the first sample
    t0 = sampler.mark()
    time.sleep(0.3)
    t1 = sampler.mark()
    sampler.stop()
    assert not sampler.running and sampler.error is None
    t_ns, w = sampler.samples()
    assert t_ns.dtype == np.int64 and w.dtype == np.float64
    assert t_ns[0] <= t0 and t_ns[-1] >= t1 and np.all(np.diff(t_ns) > 0)
    assert 8 <= len(t_ns) <= 0.3 * 50 + 6  # ~50 Hz: sleeps between reads
    assert integrate_power(t_ns / 1e9, w, t0 / 1e9, t1 / 1e9) == pytest.approx(2.5 * (t1 - t0) / 1e9)
    assert sensor.threads == {"power-sampler-ramp"}
    assert abs(sampler.to_epoch_s(sampler.mark()) - time.time()) < 0.05


def test_sampler_with_an_energy_counter() -> None:
    sensor = RampSensor("energy")
    with PowerSampler(sensor, rate_hz=40) as sampler:
        t0 = sampler.mark()
        time.sleep(0.25)
        t1 = sampler.mark()
    t_ns, j = sampler.samples()
    assert sampler.kind == "energy"
    assert counter_delta(t_ns / 1e9, j, t0 / 1e9, t1 / 1e9) == pytest.approx(3.0 * (t1 - t0) / 1e9, rel=0.05)


def test_sampler_keeps_a_read_error() -> None:
    sampler = PowerSampler(RampSensor("power", fail_after=3), rate_hz=100)
    sampler.start()
    deadline = time.time() + 5
    while sampler.running and time.time() < deadline:
        time.sleep(0.01)
    assert not sampler.running
    assert sampler.error == "DeviceError: power sensor 'ramp': the rail vanished"
    sampler.stop()  # no exception
    assert len(sampler.samples()[0]) == 3
    with pytest.raises(ConfigError, match="rate_hz must be in"):
        PowerSampler(RampSensor(), rate_hz=0)


# -------------------------------------------------------------------------------------------- device side


def test_sensor_modules_are_device_side() -> None:
    """No torch, no psutil, no pynvml on import; every sensor module loads."""
    code = (
        "import sys\n"
        "from edgebench.sensors import SENSORS, create_sensor\n"
        "import edgebench.sensors.sampler, edgebench.metrics.energy, edgebench.agent.envinfo\n"
        "assert len(SENSORS.names()) == 6\n"
        "create_sensor('nvml', index=0)\n"
        "edgebench.agent.envinfo.environment()\n"
    )
    assert_fresh_imports_clean(code, ("torch", "psutil", "pynvml"))
