"""What every transport shares: option checking, the agent bundle, and turning the agent's exit status and
``result.json`` into one clear line. Host side."""

from __future__ import annotations

import abc
import dataclasses
import json
import signal
from pathlib import Path
from typing import Any

from edgebench.agent.protocol import MIN_PYTHON, Job, python_version_text
from edgebench.errors import ConfigError, DeviceError


class Transport(abc.ABC):
    """Moves jobs to a target's agent and raw outputs back.

    ``Options`` is a dataclass of the transport's ``[transport]`` keys; :meth:`check_options` validates a
    target file's table against it before anything connects. A transport is opened once per target and
    run and reused for every job (one connection), then closed.
    """

    @dataclasses.dataclass(frozen=True)
    class Options:
        pass

    def __init__(self, target: Any, *, cache_dir: Path | None = None) -> None:
        self.target = target
        self.options = self.check_options(target.transport_options, where=f"{target.source}: [transport]")
        from edgebench.runner.cache import cache_root

        self.cache_dir = Path(cache_dir) if cache_dir else cache_root() / "agent"
        self._bundle: Path | None = None

    @classmethod
    def check_options(cls, options: dict[str, Any], *, where: str) -> Any:
        """The ``[transport]`` table as :class:`Options`; unknown keys, missing or mistyped values are errors."""
        fields = {f.name: f for f in dataclasses.fields(cls.Options)}
        for key, value in options.items():
            if key not in fields:
                import difflib

                close = difflib.get_close_matches(key, list(fields), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{where}: unknown key {key!r}{hint}; allowed keys: {sorted(fields) or 'none'}")
            kind = fields[key].type
            if not _fits(value, kind):
                raise ConfigError(f"{where}: {key} must be {kind}, got {value!r}")
        missing = [n for n, f in fields.items() if f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING and n not in options]
        if missing:
            raise ConfigError(f"{where}: {', '.join(missing)} is required")
        return cls.Options(**options)

    @property
    def label(self) -> str:
        return f"target {self.target.name!r}"

    def bundle(self) -> Path:
        """The agent bundle, built once per transport (the sources do not change during a run)."""
        if self._bundle is None:
            from edgebench.targets.bundle import build_bundle

            self._bundle = build_bundle(self.cache_dir)
        return self._bundle

    @abc.abstractmethod
    def run_job(self, job: Job, local_out: Path) -> tuple[dict[str, Any], Path]:
        """Run ``job`` (paths on this host) on the target; return ``(result, folder)``, the folder on this
        host holding ``result.json`` and the raw output files it lists. Raise :class:`DeviceError`."""

    @abc.abstractmethod
    def info(self) -> dict[str, Any]:
        """The agent's ``info`` report run on the target (see :mod:`edgebench.agent.info`)."""

    def close(self) -> None:
        """Release the connection and the target's work folder."""
        return None

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def info_args(self, path: str) -> list[str]:
        return ["info", "--backends", json.dumps(self.target.backends), "--power",
                json.dumps({"sensor": self.target.power.get("sensor", "none"),
                            "options": self.target.power.get("options", {})}), "--path", path]

    def job_failure(self, rc: int, stderr: str, result: dict[str, Any] | None, job: Job) -> DeviceError:
        """One line for a job that did not finish: the agent's own error, a signal, or the last stderr line."""
        python = self.target.python or "python3"
        if result is not None and result.get("status") == "error":
            return DeviceError(f"{self.label}: {result.get('error')}")
        lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else ""
        if rc == 127 or "No such file or directory" in last and python in last:
            return DeviceError(f"{self.label}: Python {python!r} not found on the device; install Python >= "
                               f"{python_version_text(MIN_PYTHON)} there or set 'python' in {self.target.source}")
        sig = -rc if rc < 0 else rc - 128 if rc > 128 else 0
        if sig:
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
            hint = " (out of memory? try a smaller [measure] batch_size)" if sig == signal.SIGKILL else ""
            return DeviceError(f"{self.label}: the agent was killed by {name} during job {job.job_id[:12]}{hint}")
        if rc == 3 and last.startswith("edgebench-agent: "):  # the agent's own one line (an old Python, ...)
            return DeviceError(f"{self.label}: {last[len('edgebench-agent: '):]}")
        if "No module named" in last:
            return DeviceError(f"{self.label}: {last.split(':')[-1].strip()} on the device; install numpy and "
                               "a runtime there (pip install numpy onnxruntime)")
        return DeviceError(f"{self.label}: the agent failed (exit {rc}): {last or 'no message'}")


def _fits(value: Any, kind: Any) -> bool:
    kinds = {"str": str, "int": int, "float": (int, float), "bool": bool, "list[str]": list}
    want = kinds.get(str(kind).replace(" ", ""), object)
    if want is int and isinstance(value, bool):
        return False
    if isinstance(value, list) and want is list:
        return all(isinstance(v, str) for v in value)
    return isinstance(value, want)


def read_result(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
