"""The host's compute device: the plan's ``[host] device`` (or ``edgebench run --device``) resolved to a
``torch.device``, described for the records, and the rules every host stage follows on it.

- :func:`check_spec` (torch-free, used by :mod:`edgebench.config` and the CLI): ``auto``, ``cpu``, ``cuda`` or
  ``cuda:N``; anything else is one line naming the key.
- :func:`resolve` probes torch at run start: ``auto`` is CUDA where torch sees a device, else the CPU; ``cuda``
  (or ``cuda:N`` beyond the count) where torch sees none is one line naming the key and what torch sees.
- :func:`describe`: the device, its name and memory, the torch and CUDA versions (what the stage records and
  the report's environment section show).
- :func:`stage_device`: the device one stage runs on. A method, defense or attack class may declare
  ``cpu_only = "<reason>"`` (a library limit): its stage then runs on the CPU and its record says why; nothing
  falls back silently.
- :func:`oom_as_error`: CUDA out of memory inside a stage becomes a :class:`~edgebench.errors.ResourceError`
  naming the batch-size key to lower, so that stage fails and the others go on.

Cache keys never hold the device: a result computed on a GPU serves a CPU re-run and the other way round, and
models are stored (state dicts) and exported (ONNX) from the CPU (:mod:`edgebench.models.placement`), so files
are the same.
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Iterator
from typing import Any

from edgebench.errors import ConfigError, ResourceError

__all__ = ["DEFAULT", "check_spec", "cpu_only_reason", "describe", "oom_as_error",
           "place", "record", "resolve", "stage_device", "with_device"]

DEFAULT = "auto"
_SPEC = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_spec(value: Any, where: str) -> str:
    """``value`` if it is a device spec (``auto``, ``cpu``, ``cuda``, ``cuda:N``); else one line naming ``where``."""
    if not isinstance(value, str) or not _SPEC.match(value.strip().lower()):
        raise ConfigError(f"{where}: {value!r} is not a host device; use auto, cpu, cuda or cuda:N "
                          "(N: the GPU's index)")
    return value.strip().lower()


def _what_torch_sees(torch: Any) -> str:
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not n:
        return f"torch {torch.__version__} sees no CUDA device"
    return f"torch {torch.__version__} sees {n} CUDA device(s): cuda:0 to cuda:{n - 1}"


def resolve(spec: str, where: str) -> Any:
    """The ``torch.device`` of ``spec`` on this machine (the CUDA probe); a spec it cannot honour is one
    :class:`ConfigError` naming ``where`` and what torch sees."""
    import torch

    spec = check_spec(spec, where)
    if spec == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available() and torch.cuda.device_count() > 0
    if spec == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if available else torch.device("cpu")
    index = int(spec.partition(":")[2] or 0)
    if not available or index >= torch.cuda.device_count():
        raise ConfigError(f"{where}: {spec!r} asks for a CUDA device, but {_what_torch_sees(torch)}; "
                          "use 'cpu' or 'auto'" + (f", or cuda:0 to cuda:{torch.cuda.device_count() - 1}"
                                                   if available else ""))
    return torch.device("cuda", index)


def describe(device: Any) -> dict[str, Any]:
    """``{device, name, memory_mb, torch, cuda}`` of a resolved device (the record of which device computed)."""
    import platform

    import torch

    out: dict[str, Any] = {"device": str(device), "torch": torch.__version__, "cuda": torch.version.cuda}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        out.update(name=torch.cuda.get_device_name(device), memory_mb=int(props.total_memory // 2**20))
    else:
        import psutil

        from edgebench.agent.envinfo import cpu_model

        out.update(name=cpu_model() or platform.machine() or "cpu",
                   memory_mb=int(psutil.virtual_memory().total // 2**20))
    return out


def record(device: Any, note: str = "") -> dict[str, Any]:
    """What a stage's record (and its cache entry's JSON) says about the device that computed it."""
    out = describe(device)
    if note:
        out["note"] = note
    return out


def cpu_only_reason(obj: Any) -> str:
    """The ``cpu_only`` reason a method, defense or attack (class or instance) declares; ``""`` when none."""
    reason = getattr(obj, "cpu_only", "")
    return reason if isinstance(reason, str) else ""


def stage_device(device: Any, obj: Any, what: str) -> tuple[Any, str]:
    """The device a stage of ``obj`` (a class or instance, named ``what``) runs on, and the note its record
    carries: the run's device, or the CPU with ``"<what> runs only on the CPU: <reason>"`` when ``obj`` declares
    ``cpu_only`` and the run's device is not the CPU."""
    reason = cpu_only_reason(obj)
    if not reason or device.type == "cpu":
        return device, ""
    import torch

    return torch.device("cpu"), f"{what} runs only on the CPU: {reason}"


def place(model: Any, device: Any) -> Any:
    """``model`` on ``device``: itself when it is there already (or has no parameters), else a copy moved there
    (the original may be another stage's twin: it is never moved in place)."""
    if model is None:
        return None
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    if not params or all(p.device == device for p in params):
        return model
    return copy.deepcopy(model).to(device)


def oom_types() -> tuple[type[BaseException], ...]:
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return ()
    return tuple(t for t in (getattr(torch.cuda, "OutOfMemoryError", None),) if t is not None)


@contextlib.contextmanager
def oom_as_error(stage: str, batch_key: str) -> Iterator[None]:
    """Run a stage; CUDA out of memory inside it becomes one :class:`ResourceError` line naming ``batch_key``."""
    try:
        yield
    except BaseException as exc:
        if not isinstance(exc, oom_types()):
            raise
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the stages that go on get the memory back
        raise ResourceError(f"{stage}: CUDA out of memory; lower {batch_key} (or run it with --device cpu)") \
            from None


def with_device(plan: Any, value: str | None, where: str = "--device") -> Any:
    """``plan`` with its ``[host] device`` replaced by ``value`` (``edgebench run --device``; None: unchanged),
    checked here and remembered as coming from ``where``."""
    if value is None:
        return plan
    import dataclasses

    host = dataclasses.replace(plan.host, device=check_spec(value, where), origin=where)
    return dataclasses.replace(plan, host=host)


def with_gpu_workers(plan: Any, value: int | None, where: str = "--gpu-workers") -> Any:
    """``plan`` with its ``[host] gpu_workers`` replaced by ``value`` (``edgebench run --gpu-workers``; None:
    unchanged): how many host stages the local pool runs on the GPU at once. Small networks leave a GPU mostly
    idle between kernel launches, so several training seeds side by side finish sooner than one after another."""
    if value is None:
        return plan
    if value < 1:
        raise ConfigError(f"{where} {value}: must be 1 or more (the host stages run on the GPU at once)")
    import dataclasses

    return dataclasses.replace(plan, host=dataclasses.replace(plan.host, gpu_workers=value, origin=where))
