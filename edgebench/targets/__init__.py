"""Targets (the devices a plan runs on) and their transports. HOST SIDE: nothing here ships to a device (the
power sensors that run there are :mod:`edgebench.sensors`).

A target is a TOML file: ``targets/<name>.toml`` in the working folder, a folder named by
``EDGEBENCH_TARGETS``, or one shipped with edgebench (``local``, ``raspberry-pi-4``, ``raspberry-pi-5``,
``jetson-nano``, ``jetson-orin-nano``, ``generic-ssh``, ``emulated-pi-4``, ``emulated-pi-5``). Users add devices
by copying one::

    [target]      name, transport (local | ssh | emulated), description, python, timeout_s
    [transport]   the transport's options (ssh: host, user, port, identity_file, ssh_config, ...; emulated:
                  arch, distro, cpu, cores, packages: see edgebench.targets.emulated)
    [power]       sensor (a registered power sensor, "none" by default), rate_hz, and the sensor's options
    [backends.X]  one table per runtime the device has, with its options (threads, providers, device, ...)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError, UnknownNameError
from edgebench.registry import Registry

TRANSPORTS: Registry[Any] = Registry("transport", modules=("edgebench.targets.local", "edgebench.targets.ssh",
                                                           "edgebench.targets.emulated"))


@dataclass(frozen=True)
class Target:
    """A device: how to reach it (transport and its options), which Python runs the agent there, and each
    backend's options (threads, providers)."""

    name: str
    source: str
    transport: str = "local"
    description: str = ""
    python: str = ""
    transport_options: dict[str, Any] = field(default_factory=dict)
    backends: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeout_s: float = 3600.0
    power: dict[str, Any] = field(default_factory=dict)  # {"sensor": name, "rate_hz": hz, "options": {...}}
    #: with ``--executor ray``: the custom resource of the Ray node(s) that reach this device; its jobs are
    #: dispatched from such a node (``ray start --resources '{"<name>": 1}'`` there). Empty: from the scheduler.
    ray_resource: str = ""

    @property
    def device(self) -> str:
        """The physical device this target runs on: two target files for one board (say, one per backend
        setting) name the same device, and the scheduler runs one job at a time on it. ``local`` is this host."""
        if self.transport in ("local", "emulated"):  # an emulated device runs on this host's cores
            return "local"
        opts = self.transport_options
        user = f"{opts['user']}@" if opts.get("user") else ""
        return f"{self.transport}:{user}{opts.get('host', self.name)}:{opts.get('port', 22)}"


def _search_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("EDGEBENCH_TARGETS", "").split(os.pathsep) if p]
    dirs.append(Path.cwd() / "targets")
    return dirs


def _builtin(name: str) -> str | None:
    res = resources.files("edgebench.targets").joinpath("builtin", f"{name}.toml")
    return res.read_text() if res.is_file() else None


def available_targets() -> dict[str, str]:
    """Every target name that :func:`load_target` finds, with where it comes from."""
    found: dict[str, str] = {}
    for d in reversed(_search_dirs()):
        if d.is_dir():
            found.update({p.stem: str(p) for p in sorted(d.glob("*.toml"))})
    for res in resources.files("edgebench.targets").joinpath("builtin").iterdir():
        if res.name.endswith(".toml"):
            found.setdefault(res.name[:-5], f"built-in {res.name}")
    return dict(sorted(found.items()))


def load_target(name: str, *, where: str = "") -> Target:
    """Find and validate the target ``name`` (or a path to a ``.toml`` file)."""
    text, source = None, ""
    if name.endswith(".toml"):
        p = Path(name)
        if not p.is_file():
            raise ConfigError(f"{where or name}: target file {p} not found")
        text, source = p.read_text(), str(p)
    else:
        for d in _search_dirs():
            p = d / f"{name}.toml"
            if p.is_file():
                text, source = p.read_text(), str(p)
                break
        else:
            text, source = _builtin(name), f"built-in target {name}"
    if text is None:
        known = list(available_targets())
        import difflib

        close = difflib.get_close_matches(name, known, n=2)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownNameError(f"{where + ': ' if where else ''}unknown target {name!r}.{hint} Known targets: "
                               f"{', '.join(known)} (add targets/{name}.toml to define it)")
    return parse_target(text, source)


def parse_target(text: str, source: str) -> Target:
    import tomllib

    from edgebench.agent.protocol import EnergyProtocol
    from edgebench.runtime import BACKENDS
    from edgebench.sensors import SENSORS
    from edgebench.toml_table import Table

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    top = Table(raw, source, "")
    t = top.table("target")
    name = t.get("name", str, required=True)
    transport = t.get("transport", str, "local")
    cls = TRANSPORTS.get(transport, where=f"{source}: target.transport")
    python = t.get("python", str, "")
    timeout_s = t.number("timeout_s", 3600.0, lo=0, lo_open=True)
    description = t.get("description", str, "")
    ray_resource = t.get("ray_resource", str, "")
    t.done()
    options = top.get("transport", dict, {})
    cls.check_options(options, where=f"{source}: [transport]")

    p = top.table("power")
    sensor = p.get("sensor", str, "none")
    SENSORS.get(sensor, where=f"{source}: power.sensor")
    power = {"sensor": sensor, "rate_hz": p.number("rate_hz", EnergyProtocol.rate_hz, lo=0, lo_open=True, hi=10_000),
             "options": p.rest()}
    from edgebench.registry import check_kwargs

    check_kwargs(SENSORS.get(sensor).__init__, power["options"], what=f"power sensor {sensor!r}",
                 where=f"{source}: [power]")

    backends = top.get("backends", dict, {})
    for b, opts in backends.items():
        BACKENDS.get(b, where=f"{source}: backends.{b}")
        if not isinstance(opts, dict):
            raise ConfigError(f"{source}: backends.{b}: expected a table of options")
    top.done()
    if not backends:
        raise ConfigError(f"{source}: backends: a target needs at least one [backends.NAME] table")
    return Target(name=name, source=source, transport=transport, description=description, python=python,
                  timeout_s=timeout_s, transport_options=options, backends=backends, power=power,
                  ray_resource=ray_resource)


def open_transport(target: Target, *, cache_dir: Path | None = None) -> Any:
    """A connected-on-demand transport for ``target`` (close it, or use it as a context manager)."""
    return TRANSPORTS.get(target.transport)(target, cache_dir=cache_dir)
