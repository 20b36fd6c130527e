"""The emulated target's spec: the built-ins load, bad ``[transport]`` values are one line naming the key,
the sysroot folder's name changes with everything that changes its content, a missing qemu or an unprepared
sysroot is one line saying what to run, and the ARM CPU tree the guest reads is a Cortex's."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebench.cli import main
from edgebench.errors import ConfigError, DeviceError
from edgebench.targets import load_target, open_transport
from edgebench.targets.emulated import EmulatedTransport
from edgebench.targets.sysroot import check_host, platforms, spec_key, write_cpu_tree


def _target(tmp_path: Path, transport: str) -> Path:
    path = tmp_path / "emu.toml"
    path.write_text(f'[target]\nname = "emu"\ntransport = "emulated"\n[transport]\n{transport}\n'
                    "[backends.onnxruntime]\n")
    return path


def test_builtin_emulated_pis_load() -> None:
    for name, cpu, distro, glibc in (("emulated-pi-4", "cortex-a72", "bookworm", 36),
                                     ("emulated-pi-5", "cortex-a76", "bookworm", 36),
                                     ("emulated-pi-4-bullseye", "cortex-a72", "bullseye", 31)):
        t = load_target(name)
        assert t.transport == "emulated" and t.transport_options["cpu"] == cpu and t.device == "local"
        opts = EmulatedTransport.check_options(t.transport_options, where=name)
        assert opts.distro == distro and opts.arch == "aarch64"
        assert platforms(opts)[0] == f"manylinux_2_{glibc}_aarch64" and platforms(opts)[-1] == "manylinux2014_aarch64"


@pytest.mark.parametrize(("line", "message"), [
    ('cpu = "cortex-a99"', "cpu 'cortex-a99' is not supported; use one of cortex-a53"),
    ('distro = "trixie"', "distro 'trixie' is not supported; use one of bookworm, bullseye"),
    ('arch = "riscv64"', "arch 'riscv64' is not supported; use one of aarch64"),
    ("cores = 0", "cores must be 1..64, got 0"),
    ('packages = ["--index-url=x"]', "packages must list pip requirements"),
    ('cpus = "cortex-a72"', "unknown key 'cpus' (did you mean 'cpu'?)"),
])
def test_bad_transport_values_are_one_line(tmp_path: Path, line: str, message: str) -> None:
    path = _target(tmp_path, line)
    with pytest.raises(ConfigError) as err:
        load_target(str(path))
    text = str(err.value)
    assert message in text and str(path) in text and "\n" not in text


def test_the_folder_name_follows_the_content() -> None:
    def key(**kw: object) -> str:
        base = {"arch": "aarch64", "distro": "bookworm", "cpu": "cortex-a72", "cores": 4,
                "packages": ["numpy", "onnxruntime"]}
        return spec_key("pi", EmulatedTransport.check_options({**base, **kw}, where="x"))

    same = key()
    assert same == key() and same.startswith("pi-")
    changed = {key(cpu="cortex-a76"), key(distro="bullseye"), key(cores=2),
               key(packages=["numpy", "onnxruntime==1.19.2"]), key(mirror="http://mirror.example/debian")}
    assert same not in changed and len(changed) == 5


def test_missing_qemu_and_unprepared_sysroot_say_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EDGEBENCH_EMULATED", str(tmp_path / "emu"))
    path = _target(tmp_path, 'qemu = "qemu-aarch64-nowhere"')
    opts = EmulatedTransport.check_options(load_target(str(path)).transport_options, where="x")
    with pytest.raises(ConfigError, match=r"qemu-aarch64-nowhere not found: .*apt-get install qemu-user-static"):
        check_host(opts)
    assert main(["targets", "prepare", str(path)]) == 2
    assert "apt-get install qemu-user-static" in capsys.readouterr().err
    with open_transport(load_target(str(path)), cache_dir=tmp_path / "bundle") as t, \
            pytest.raises(DeviceError, match=rf"not prepared: run edgebench targets prepare {path}"):
        t.info()
    assert main(["targets", "prepare", "local"]) == 2
    assert "only an emulated target" in capsys.readouterr().err
    assert not (tmp_path / "emu").exists() or not any((tmp_path / "emu").iterdir())


def test_the_guest_reads_a_cortex_cpu_tree(tmp_path: Path) -> None:
    write_cpu_tree(tmp_path, "cortex-a76", 4)
    info = (tmp_path / "proc/cpuinfo").read_text()
    assert info.count("processor\t:") == 4 and info.count("CPU part\t: 0xd0b") == 4
    cpu = tmp_path / "sys/devices/system/cpu"
    assert (cpu / "possible").read_text().strip() == "0-3"
    assert (cpu / "cpu3/cache/index3/level").read_text().strip() == "3"  # the A76's shared L3
    assert (cpu / "cpu3/cache/index3/shared_cpu_list").read_text().strip() == "0-3"
    assert (cpu / "cpu2/cache/index2/shared_cpu_list").read_text().strip() == "2"  # L2 per core
