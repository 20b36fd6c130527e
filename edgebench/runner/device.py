"""Device jobs: one per (target, backend, unit), prepared on the scheduler's thread, shipped and waited for on a
thread of their own (a :class:`~edgebench.runner.stages.Deferred`), recorded back on the scheduler's thread.

A job runs the unit's artifact on the clean set and every adversarial set the unit is evaluated on; its key is
the hash of everything it ran (artifact, sets, backend options, protocols, target), so a resumed run skips a job
it already measured.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgebench.agent.protocol import EnergyProtocol, Job, LatencyProtocol, TestSet
from edgebench.config import MeasureSpec, Plan, TargetSpec
from edgebench.export.onnx_io import artifact_io
from edgebench.naming import slug
from edgebench.runner.cache import content_key
from edgebench.runner.context import RunContext
from edgebench.runner.family import FamilySource
from edgebench.runner.fleet import shard_file
from edgebench.runner.graph import sources_for
from edgebench.runner.query import device_requests, host_sets, request_key, with_device_sets
from edgebench.runner.stages import Deferred
from edgebench.runner.units import (
    AdvSets,
    Built,
    DeviceRun,
    Unit,
    craft_stage,
    device_stage,
    latency_stage,
    shard_stage,
)


def transport(ctx: RunContext, name: str) -> Any:
    """One transport (one connection, one remote work folder) per target for the whole run."""
    from edgebench.targets import load_target, open_transport

    if name not in ctx.transports:
        ctx.transports[name] = open_transport(load_target(name))
    return ctx.transports[name]


def close_transports(ctx: RunContext) -> None:
    for t in ctx.transports.values():
        t.close()


def job_sets(ctx: RunContext, unit: Unit) -> list[dict[str, Any]]:
    """The sets a device job of ``unit`` runs: the clean set, then every adversarial set it is evaluated on."""
    clean: Path = ctx.value("testset/clean")
    sets = [{"name": "clean", "path": clean, "attack": "none", "eps": 0.0, "source": unit.id}]
    for a in ctx.plan.attacks:
        for src in sources_for(ctx.plan, unit, a):
            adv: AdvSets = ctx.value(craft_stage(src, a.label))
            for k, e in enumerate(a.eps):
                sets.append({"name": f"{a.label}@{e:g} from {src.id}", "path": adv.files[k], "attack": a.label,
                             "eps": e, "source": src.id, "adv_key": adv.key, "k": k,
                             **({"threat": src.threat(unit)} if isinstance(src, FamilySource) else {})})
    return sets


def device_job(ctx: RunContext, tspec: TargetSpec, backend: str, unit: Unit,
               shard: tuple[int, int, str] | None = None) -> DeviceRun | Deferred:
    """The device job of ``unit`` on ``backend`` of target ``tspec``: prepared here, shipped and waited for by the
    returned :class:`Deferred`, recorded by :func:`finish`. ``shard`` ``(i, k, member)``: the ``i``-th of ``k``
    shards of every test set, on fleet member ``member``."""
    conn = transport(ctx, shard[2] if shard else tspec.target)
    target = conn.target
    built: Built = ctx.value(unit.stage)
    fmt, artifact = built.artifact_for(backend)
    card = built.cards[fmt]
    name = device_stage(tspec.target, backend, unit)
    if shard:
        name = shard_stage(name, shard[0], shard[1])
    sets = job_sets(ctx, unit) + host_sets(ctx, unit, backend)
    requests = device_requests(ctx, unit)  # query attacks the agent crafts on the artifact
    m = ctx.plan.measure
    proto = latency_protocol(m, in_rounds=uses_rounds(ctx.plan, tspec))
    power = target.power or {}
    energy = EnergyProtocol(sensor=power.get("sensor", "none"), options=power.get("options", {}),
                            rate_hz=power.get("rate_hz", EnergyProtocol.rate_hz), idle_s=m.energy_idle_s,
                            min_window_s=m.energy_min_window_s, windows=m.energy_windows,
                            min_samples=m.energy_min_samples)
    options = target.backends.get(backend, {})
    io = artifact_io(card)
    paths = [Path(s["path"]) for s in sets]
    if shard:
        paths = [shard_file(ctx, path, shard[0], shard[1]) for path in paths]
    key = content_key("device", {"artifact": card["sha256"], "sets": [str(p) for p in paths],
                                 "backend": backend, "options": options, "protocol": vars(proto),
                                 "energy": vars(energy), "batch": m.batch_size, "target": target.name,
                                 "transport": target.transport, "profile_runs": m.profile_runs,
                                 "io": io,
                                 # an emulated target's sysroot (cpu, distro, wheels) changes its logits
                                 **({"emulated": target.transport_options} if target.transport == "emulated"
                                    else {})})
    if requests:  # and the query attacks the agent crafts
        key = content_key("device", {"measure": key, **request_key(requests)})
    out_dir = ctx.run_dir / "raw" / slug(name.removeprefix("device/"))
    measured = already_measured(ctx, name, key, out_dir, sets)
    if measured is not None:
        return with_device_sets(ctx, unit, measured, key)
    job = Job(job_id=key, artifact=str(artifact), backend=backend, output_dir=str(out_dir),
              testsets=tuple(TestSet(s["name"], str(p)) for s, p in zip(sets, paths)), backend_options=options,
              batch_size=m.batch_size, latency=proto, energy=energy, artifact_sha256=card["sha256"],
              profile_runs=m.profile_runs, io=io)
    job = replace(job, attacks=tuple(requests))
    started = time.time()
    return Deferred(work=shipper(ctx, conn, job, out_dir),
                    finish=lambda done: with_device_sets(ctx, unit, finish(ctx, name, key, started, target, backend,
                                                                           unit, fmt, sets, done), key))


def latency_protocol(m: MeasureSpec, *, in_rounds: bool = False) -> LatencyProtocol:
    """The latency protocol of a plan's ``[measure]``; ``in_rounds``: the target's latency job times the units."""
    return LatencyProtocol(warmup=m.warmup, min_runs=m.min_runs, min_duration_s=m.min_duration_s,
                           max_runs=m.max_runs, rounds=m.rounds, cooldown_s=m.cooldown_s, settle_s=m.settle_s,
                           settle_c=m.settle_c, in_rounds=in_rounds)


def uses_rounds(plan: Plan, tspec: TargetSpec) -> bool:
    """Whether target ``tspec``'s units are timed in interleaved rounds by one latency job
    (:mod:`edgebench.runner.rounds`); a fleet's members time their shards' units in one block each."""
    return plan.measure.rounds > 1 and not tspec.fleet


def already_measured(ctx: RunContext, name: str, key: str, out_dir: Path,
                     sets: list[dict[str, Any]]) -> DeviceRun | None:
    """Device stage ``name``'s outputs when this run already finished it with the same ``key``."""
    prev = ctx.store.stage(ctx.run_id, name)
    if prev and prev["status"] == "done" and prev["key"] == key and (out_dir / "result.json").is_file():
        result = json.loads((out_dir / "result.json").read_text())
        if all((out_dir / f).is_file() for f in result.get("files", ())):
            return DeviceRun(name, out_dir, result, sets, note="already measured in this run", cached=True)
    return None


def shipper(ctx: RunContext, conn: Any, job: Job, out_dir: Path) -> Any:
    """What ships ``job`` and waits for it on a thread: through the target's transport, or from a node of the Ray
    cluster that reaches the device."""
    target = conn.target
    dispatch = getattr(ctx.executor, "device_job", None) if target.ray_resource else None
    if dispatch is not None:
        return lambda: dispatch(target, job, out_dir, cache_root=str(ctx.cache.root))
    return lambda: conn.run_job(job, out_dir)


def finish(ctx: RunContext, name: str, key: str, started: float, target: Any, backend: str, unit: Unit, fmt: str,
           sets: list[dict[str, Any]], done: tuple[dict[str, Any], Path]) -> DeviceRun:
    """Record a finished device job (on the scheduler's thread: every store write happens there)."""
    result, outputs = done
    ctx.store.put_environment(ctx.run_id, target=target.name, backend=backend, model=unit.model,
                              variant=unit.variant, backend_info={**result["backend"], "format": fmt},
                              environment={**result["environment"], "energy": result.get("energy"),
                                           "resumed": result.get("resumed", [])})
    lat = result.get("latency") or {}
    note = (f"p50 {lat.get('p50_ms', float('nan')):.3f} ms over {lat.get('runs', 0)} runs ({fmt})" if lat else
            f"accuracy ({fmt}); latency timed in {latency_stage(target.name, backend)}")
    if result.get("emulated"):
        note += f"; emulated ({result['emulated'].get('arch')} under qemu): not a measurement"
    if result.get("resumed"):
        note += f"; resumed {', '.join(result['resumed'])}"
    info: dict[str, Any] = {"note": note, "seconds": time.time() - started}
    if result.get("dispatched_from"):
        info["worker"] = result["dispatched_from"]
    ctx.store.set_stage(ctx.run_id, name, key=key, status="done", started=started, info=info)
    return DeviceRun(name, outputs, result, sets, note=note)
