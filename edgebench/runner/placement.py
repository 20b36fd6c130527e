"""Where each host stage of a plan computes, as the scheduler and the executors see it: whether it runs on a GPU
(so the local pool runs at most ``[host] gpu_workers`` of them at once, and Ray gives it ``num_gpus``), and the
batch-size key a CUDA out-of-memory failure of it names (:func:`edgebench.hostdevice.oom_as_error`).

A host stage runs on the run's device (:meth:`~edgebench.runner.context.RunContext.torch_device`) unless its
method, defense or attack class declares ``cpu_only``; query attacks crafted on the host run an ONNX Runtime
session, never torch, and so are CPU stages. Functions of the plan and the stage name only.
"""

from __future__ import annotations

from typing import Any

from edgebench.config import Plan

__all__ = ["batch_key", "stage_class", "uses_gpu"]


def _split(name: str) -> tuple[str, list[str]]:
    kind, _, rest = name.partition("/")
    return kind, rest.split("/")


def _variant(plan: Plan, parts: list[str]) -> Any:
    model, variant = parts[0], "/".join(parts[1:])
    return next((c for c in plan.compress if c.model == model and c.variant == variant), None)


def _attack(plan: Plan, parts: list[str]) -> Any:
    return next((a for a in plan.attacks if a.label == parts[-1]), None)


def stage_class(plan: Plan, name: str) -> Any:
    """The method, defense or attack class host stage ``name`` runs (None: a model's training, or unknown)."""
    kind, parts = _split(name)
    if kind == "compress" and (c := _variant(plan, parts)) is not None:
        from edgebench.variants import method_for

        return method_for(c.kind, c.method)
    if kind == "craft" and (a := _attack(plan, parts)) is not None:
        from edgebench.attacks import ATTACKS

        return ATTACKS.get(a.name)
    return None


def uses_gpu(plan: Plan, name: str, device: Any) -> bool:
    """Whether host stage ``name`` computes on a CUDA device when the run's device is ``device``."""
    from edgebench.hostdevice import cpu_only_reason

    if device.type != "cuda" or "@" in name:  # "@": a query attack crafted through a runtime session
        return False
    return not cpu_only_reason(stage_class(plan, name))


def batch_key(plan: Plan, name: str) -> str:
    """The plan key that sets the batch size of host stage ``name`` (what to lower when it runs out of memory)."""
    kind, parts = _split(name)
    if kind == "craft" and (a := _attack(plan, parts)) is not None:
        return f"{plan.source}: attacks[{a.label}].batch_size (now {a.batch_size})"
    if kind == "compress" and (c := _variant(plan, parts)) is not None and "batch_size" in c.params:
        return f"{plan.source}: the batch_size of {c.kind} variant {c.variant!r} (now {c.params['batch_size']})"
    model = parts[0] if kind in ("model", "compress") else ""
    spec = next((m for m in plan.models if m.name == model), None)
    if spec is not None:
        size = spec.train.get("batch_size", 64)
        return f"{plan.source}: models[{model}].train.batch_size (now {size})"
    return f"{plan.source}: the batch size of stage {name}"
