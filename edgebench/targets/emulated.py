"""The ``emulated`` transport: the agent bundle on Debian's arm64 Python under user-mode qemu (``qemu-aarch64-static
-cpu cortex-a72 -L SYSROOT SYSROOT/usr/bin/python3.11``), with PyPI's aarch64 wheels of numpy and the runtimes:
the software stack a Raspberry Pi runs, on this host. Host side; the sysroot comes from
``edgebench targets prepare NAME`` (:mod:`edgebench.targets.sysroot`).

The job protocol and files are the local transport's (qemu-user runs the guest's file operations on this
host's files). What the ARM stack computes is real (logits, accuracy, robustness, the deployment gap against
the host's twin); how fast it computes it is not: every instruction is translated by qemu (QEMU, Bellard,
USENIX ATC 2005), so the result is tagged ``emulated`` and :mod:`edgebench.runner.score` keeps its latency
and energy out of the records.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from edgebench.agent.protocol import Job
from edgebench.errors import ConfigError, DeviceError
from edgebench.targets import TRANSPORTS
from edgebench.targets.local import LocalTransport
from edgebench.targets.sysroot import CPUS, DISTROS, guest_argv, guest_env, prepared


@TRANSPORTS.register("emulated")
class EmulatedTransport(LocalTransport):
    """Runs the agent under qemu-user on a prepared Debian sysroot."""

    @dataclasses.dataclass(frozen=True)
    class Options:
        """``[transport]`` keys of an emulated target.

        arch: the guest architecture (aarch64). distro: the Debian release whose python3 runs the agent
        (bookworm: 3.11, as Raspberry Pi OS Bookworm; bullseye: 3.9). cpu: qemu's ``-cpu`` model (cortex-a53,
        -a57, -a72, -a76), also the ``/proc/cpuinfo`` the guest reads. cores: the cores that cpuinfo shows.
        packages: pip requirements installed from PyPI's aarch64 wheels (numpy and the runtimes). mirror: the
        Debian mirror. qemu: the qemu-user binary (default ``qemu-<arch>-static``).
        """

        arch: str = "aarch64"
        distro: str = "bookworm"
        cpu: str = "cortex-a72"
        cores: int = 4
        packages: list[str] = dataclasses.field(default_factory=lambda: ["numpy", "onnxruntime"])
        mirror: str = "http://deb.debian.org/debian"
        qemu: str = ""

    @classmethod
    def check_options(cls, options: dict[str, Any], *, where: str) -> Any:
        opts = super().check_options(options, where=where)
        for key, value, allowed in (("arch", opts.arch, ["aarch64"]), ("distro", opts.distro, sorted(DISTROS)),
                                    ("cpu", opts.cpu, sorted(CPUS))):
            if value not in allowed:
                raise ConfigError(f"{where}: {key} {value!r} is not supported; use one of {', '.join(allowed)}")
        if not 1 <= opts.cores <= 64:
            raise ConfigError(f"{where}: cores must be 1..64, got {opts.cores}")
        if not opts.packages or any(not p.strip() or p.startswith("-") for p in opts.packages):
            raise ConfigError(f"{where}: packages must list pip requirements (e.g. [\"numpy\", \"onnxruntime\"]), "
                              f"got {opts.packages!r}")
        return opts

    def _folder(self) -> Path:
        folder = prepared(self.target.name, self.options)
        if folder is None:
            name = self.target.source if self.target.source.endswith(".toml") else self.target.name
            raise DeviceError(f"{self.label}: its emulated {self.options.arch} system is not prepared: run "
                              f"edgebench targets prepare {name}")
        return folder

    def _command(self) -> list[str]:
        return guest_argv(self._folder(), self.options)

    def _python(self) -> str:
        return self._command()[-1]

    def _env(self) -> dict[str, str] | None:
        return guest_env(self._folder())

    def run_job(self, job: Job, local_out: Path) -> tuple[dict[str, Any], Path]:
        result, out = super().run_job(job, local_out)
        result["emulated"] = self.emulation()
        # in result.json too: a resumed run reads the job's result from there, and must still know
        (out / "result.json").write_text(json.dumps(result, indent=1))
        return result, out

    def info(self) -> dict[str, Any]:
        report = super().info()
        report["emulated"] = self.emulation()
        return report

    def emulation(self) -> dict[str, Any]:
        """What a result says about its emulation: timings under qemu are not the board's."""
        manifest = json.loads((self._folder() / "manifest.json").read_text())
        return {"arch": self.options.arch, "cpu": self.options.cpu, "distro": self.options.distro,
                "qemu": manifest.get("qemu", ""), "wheels": manifest.get("wheels", {})}


def prepare_target(name: str) -> int:
    """``edgebench targets prepare NAME``: prepare an emulated target's sysroot and wheels (once) and say what is
    inside."""
    import time

    from edgebench.targets import load_target
    from edgebench.targets.sysroot import prepare

    target = load_target(name)
    if target.transport != "emulated":
        raise ConfigError(f"{target.source}: target {target.name!r} has transport {target.transport!r}; only an "
                          "emulated target (transport = \"emulated\") is prepared")
    opts = EmulatedTransport.check_options(target.transport_options, where=f"{target.source}: [transport]")
    t0 = time.monotonic()
    folder, manifest = prepare(target.name, opts)
    done = "prepared" if time.monotonic() - t0 > 1 else "already prepared"
    wheels = ", ".join(f"{k} {v}" for k, v in sorted(manifest["wheels"].items()))
    print(f"{target.name}: {done} in {folder} ({manifest['seconds']:.0f} s): {manifest['machine']} Python "
          f"{manifest['python']} (Debian {manifest['distro']}) under qemu -cpu {manifest['cpu']}; {wheels}")
    return 0
