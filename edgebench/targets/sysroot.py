"""``edgebench targets prepare NAME``: the Debian arm64 sysroot and aarch64 wheels an emulated target runs on.
Host side.

What it does, once per target spec, into ``$EDGEBENCH_EMULATED`` (default ``<cache>/emulated``):

1. a private apt (its own sources list, state and cache under the folder being built; nothing on the host
   changes, no root needed) downloads Debian's arm64 ``python3.X`` with everything it depends on, plus
   ``libstdc++6`` and ``libgomp1`` (the runtimes' C++ libraries), and ``dpkg -x`` unpacks them: the sysroot;
2. ``pip install --target site --platform manylinux_2_NN_aarch64 --only-binary=:all: --python-version 3.X``
   installs the target's packages (numpy and a runtime) from PyPI's ARM wheels, with their dependencies;
3. an ARM ``/proc/cpuinfo`` and ``/sys/devices/system/cpu`` tree for the target's CPU model go into the
   sysroot. qemu-user's ``-L`` prefix redirects the guest's opens of paths that exist under it, so the guest
   reads these instead of the x86 host's. Without the ARM ``/proc/cpuinfo`` (qemu 7.2 passes the host's
   through) ONNX Runtime >= 1.20's CPU probe (pytorch/cpuinfo) finds no ARM processor and ONNX Runtime dies
   with SIGSEGV at import; with it, the newest (1.32) imports and runs;
4. a smoke run under qemu imports every package and writes ``manifest.json`` (Debian package and wheel
   versions, the Python, the time it took).

The folder is built beside its final place and renamed into it at the end (atomic: a half-prepared folder
is never used; a failed attempt leaves nothing behind), and named by a hash of everything that changes its
content, so a changed spec prepares a new one and an unchanged one is never prepared twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from edgebench.errors import ConfigError, DeviceError

#: bump when what :func:`prepare` puts in a folder changes
PREPARE_VERSION = 1
#: Debian release -> (its python3 version, its glibc's minor version: the newest manylinux tag its wheels use)
DISTROS = {"bookworm": ("3.11", 36), "bullseye": ("3.9", 31)}
#: qemu ``-cpu`` models edgebench knows: (MIDR part number, L1d, L1i, L2 per cluster or core, L3 or "")
CPUS = {
    "cortex-a53": ("0xd03", "32K", "32K", "512K", ""),   # Raspberry Pi 3
    "cortex-a57": ("0xd07", "32K", "48K", "2048K", ""),  # Jetson Nano
    "cortex-a72": ("0xd08", "32K", "48K", "1024K", ""),  # Raspberry Pi 4
    "cortex-a76": ("0xd0b", "64K", "64K", "512K", "2048K"),  # Raspberry Pi 5 (L2 per core, L3 shared)
}
DEBS = ("libstdc++6", "libgomp1")  # beside python3.X: the C++ runtime the wheels link against


def emulated_root() -> Path:
    """Where prepared sysroots live: ``$EDGEBENCH_EMULATED``, else ``<edgebench cache>/emulated``."""
    env = os.environ.get("EDGEBENCH_EMULATED")
    if env:
        return Path(env)
    from edgebench.runner.cache import cache_root

    return cache_root() / "emulated"


def spec_key(name: str, options: Any) -> str:
    """The folder name of a target's sysroot: its name and a hash of what changes the folder's content."""
    spec = {"v": PREPARE_VERSION, "arch": options.arch, "distro": options.distro, "cpu": options.cpu,
            "cores": options.cores, "packages": list(options.packages), "mirror": options.mirror}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    return f"{name}-{digest}"


def prepared(name: str, options: Any) -> Path | None:
    """The prepared folder of this spec, or None."""
    folder = emulated_root() / spec_key(name, options)
    return folder if (folder / "manifest.json").is_file() else None


def python_of(options: Any) -> str:
    return f"python{DISTROS[options.distro][0]}"


def guest_argv(folder: Path, options: Any) -> list[str]:
    """The command that runs the sysroot's Python under user-mode qemu on the target's CPU model."""
    root = folder / "sysroot"
    return [qemu_binary(options), "-cpu", options.cpu, "-L", str(root), str(root / "usr/bin" / python_of(options))]


def guest_env(folder: Path) -> dict[str, str]:
    """The environment of the guest: the wheels on PYTHONPATH, nothing of this host's Python setup."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return {**env, "PYTHONPATH": str(folder / "site"), "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def qemu_binary(options: Any) -> str:
    return options.qemu or f"qemu-{options.arch}-static"


def prepare(name: str, options: Any, *, log: Any = print) -> tuple[Path, dict[str, Any]]:
    """Prepare the sysroot of target ``name`` once; return ``(folder, manifest)``. Raises :class:`ConfigError`
    for what the user must install or fix, :class:`DeviceError` for a download that failed."""
    folder = emulated_root() / spec_key(name, options)
    if (folder / "manifest.json").is_file():
        return folder, json.loads((folder / "manifest.json").read_text())
    check_host(options)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.monotonic()
    try:
        log(f"{name}: downloading Debian {options.distro} arm64 {python_of(options)} and its libraries")
        debs = _debs(tmp, options)
        log(f"{name}: installing the aarch64 wheels of {', '.join(options.packages)}")
        _wheels(tmp / "site", options)
        write_cpu_tree(tmp / "sysroot", options.cpu, options.cores)
        log(f"{name}: checking that they import under qemu ({options.cpu})")
        smoke = _smoke(tmp, options)
        manifest = {"target": name, "arch": options.arch, "distro": options.distro, "cpu": options.cpu,
                    "cores": options.cores, "qemu": _qemu_version(options), "python": smoke["python"],
                    "machine": smoke["machine"], "debs": debs, "wheels": smoke["wheels"],
                    "packages": list(options.packages), "seconds": round(time.monotonic() - t0, 1),
                    "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        try:
            os.rename(tmp, folder)
        except OSError:  # another process prepared it meanwhile: theirs is as good
            if not (folder / "manifest.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder, json.loads((folder / "manifest.json").read_text())


def check_host(options: Any) -> None:
    """One line for each tool this host lacks."""
    if shutil.which(qemu_binary(options)) is None:
        raise ConfigError(f"{qemu_binary(options)} not found: install user-mode qemu (apt-get install "
                          "qemu-user-static) to run an emulated target")
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise ConfigError(f"{tool} not found: preparing an emulated target needs a Debian or Ubuntu host "
                              "(apt and dpkg download and unpack Debian's arm64 packages)")


def _run(argv: list[str], what: str, *, env: dict[str, str] | None = None, timeout: float = 1800) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{what}: no answer in {timeout:g} s (network?)") from None
    if proc.returncode != 0:
        raise DeviceError(f"{what}: {_why(proc.stdout + proc.stderr)}")
    return proc.stdout


def _why(text: str) -> str:
    """The line of apt's or pip's output that says what went wrong, with what to do for the usual causes."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("WARNING")]
    for ln in lines:
        if "Temporary failure resolving" in ln or "Could not resolve" in ln or "Network is unreachable" in ln \
                or "Failed to establish a new connection" in ln:
            return f"no network ({ln}); preparing needs Debian's mirror and PyPI once"
    for marker in ("Unable to locate package", "No matching distribution", "E: ", "ERROR: "):
        hit = [ln for ln in lines if marker in ln]
        if hit:
            return hit[0]
    return lines[-1] if lines else "failed without a message"


def _debs(tmp: Path, options: Any) -> dict[str, str]:
    """Download the Debian packages with a private apt and unpack them into ``tmp/sysroot``."""
    apt = tmp / "apt"
    for d in ("state/lists/partial", "cache/archives/partial", "etc"):
        (apt / d).mkdir(parents=True, exist_ok=True)
    (apt / "state/status").write_text("")
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    signed = f" signed-by={keyring}" if Path(keyring).is_file() else " trusted=yes"
    (apt / "etc/sources.list").write_text(f"deb [arch=arm64{signed}] {options.mirror} {options.distro} main\n")
    conf = ["-o", "APT::Architecture=arm64", "-o", "APT::Architectures::=arm64",
            "-o", f"Dir::Etc::SourceList={apt}/etc/sources.list", "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", f"Dir::State={apt}/state", "-o", f"Dir::State::status={apt}/state/status",
            "-o", f"Dir::Cache={apt}/cache", "-o", "Debug::NoLocking=1", "-o", "APT::Install-Recommends=false",
            "-o", "Acquire::Retries=3"]
    if os.geteuid() == 0:  # apt's _apt user could not write into the folder; no dropping needed as root
        conf += ["-o", "APT::Sandbox::User=root"]
    _run(["apt-get", *conf, "update"], f"apt-get update ({options.mirror} {options.distro} arm64)")
    _run(["apt-get", *conf, "install", "--download-only", "-y", "-q", python_of(options), *DEBS],
         f"apt-get download of Debian {options.distro} arm64 {python_of(options)}")
    versions: dict[str, str] = {}
    for deb in sorted((apt / "cache/archives").glob("*.deb")):
        _run(["dpkg-deb", "-x", str(deb), str(tmp / "sysroot")], f"dpkg-deb -x {deb.name}")
        pkg, version, _ = unquote(deb.name).split("_", 2)
        versions[pkg] = version
    shutil.rmtree(apt)
    return versions


def platforms(options: Any) -> list[str]:
    """The manylinux tags the distro's glibc runs, newest first (pip takes exactly the tags it is given)."""
    glibc = DISTROS[options.distro][1]
    return [f"manylinux_2_{m}_{options.arch}" for m in range(glibc, 16, -1)] + [f"manylinux2014_{options.arch}"]


def _wheels(site: Path, options: Any) -> None:
    argv = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "--target", str(site), "--only-binary=:all:", "--python-version", DISTROS[options.distro][0]]
    for p in platforms(options):
        argv += ["--platform", p]
    _run([*argv, *options.packages], f"pip install of the {options.arch} wheels {' '.join(options.packages)}")


#: run by the guest Python: the interpreter, the machine and each installed distribution's version
_SMOKE = """
import importlib, importlib.metadata as md, json, os, platform, sys
mods = sys.argv[1:]
for m in mods:
    importlib.import_module(m)
print(json.dumps({"python": platform.python_version(), "machine": platform.machine(),
                  "wheels": {d.metadata["Name"]: d.version
                             for d in md.distributions(path=[os.environ["PYTHONPATH"]])}}))
"""


def _smoke(folder: Path, options: Any) -> dict[str, Any]:
    mods = [_module(p) for p in options.packages]
    argv = [*guest_argv(folder, options), "-c", _SMOKE, *mods]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=guest_env(folder), timeout=600,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"importing {', '.join(mods)} under qemu took over 600 s") from None
    if proc.returncode != 0:
        last = ([ln for ln in proc.stderr.splitlines() if ln.strip()] or [f"exit {proc.returncode}"])[-1]
        raise DeviceError(f"the prepared {options.arch} Python cannot import {', '.join(mods)} under qemu "
                          f"-cpu {options.cpu}: {last}; pin an older release in [transport] packages")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _module(requirement: str) -> str:
    """The module a requirement installs (``onnxruntime==1.32.0`` -> ``onnxruntime``)."""
    import re

    name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("-", "_")
    return {"opencv_python": "cv2"}.get(name, name)


def _qemu_version(options: Any) -> str:
    try:
        out = subprocess.run([qemu_binary(options), "--version"], capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return (out.stdout.splitlines() or [""])[0]


def write_cpu_tree(root: Path, cpu: str, cores: int) -> None:
    """An ARM ``/proc/cpuinfo`` and ``/sys/devices/system/cpu`` for ``cores`` cores of ``cpu`` under ``root``
    (what the Linux kernel shows on such a board; ONNX Runtime's CPU probe reads both)."""
    part, l1d, l1i, l2, l3 = CPUS[cpu]
    last = f"0-{cores - 1}"

    def put(rel: str, text: str) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text + "\n")

    put("proc/cpuinfo", "\n".join(
        f"processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n"
        f"CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: {part}\nCPU revision\t: 1\n" for i in range(cores)))
    base = "sys/devices/system/cpu"
    for f, v in (("kernel_max", "255"), ("possible", last), ("present", last), ("online", last), ("offline", "")):
        put(f"{base}/{f}", v)
    per_core_l2 = bool(l3)
    caches = [(1, "Data", l1d, None), (1, "Instruction", l1i, None), (2, "Unified", l2, None if per_core_l2 else last)]
    if l3:
        caches.append((3, "Unified", l3, last))
    for i in range(cores):
        c = f"{base}/cpu{i}"
        put(f"{c}/cpufreq/cpuinfo_max_freq", "1800000")
        put(f"{c}/cpufreq/cpuinfo_min_freq", "600000")
        for f, v in (("physical_package_id", "0"), ("core_id", str(i)), ("cluster_id", "0"),
                     ("cluster_cpus_list", last), ("core_cpus_list", str(i)), ("package_cpus_list", last),
                     ("thread_siblings_list", str(i)), ("core_siblings_list", last)):
            put(f"{c}/topology/{f}", v)
        for k, (level, kind, size, shared) in enumerate(caches):
            for f, v in (("level", str(level)), ("type", kind), ("size", size), ("shared_cpu_list", shared or str(i)),
                         ("coherency_line_size", "64")):
                put(f"{c}/cache/index{k}/{f}", v)
