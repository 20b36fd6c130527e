"""The latency job of a target: every unit of one backend timed in interleaved rounds on the device (issue 16,
item 6). Host side; the agent's side is :mod:`edgebench.agent.rounds`.

One job per (target, backend) loads all the units' artifacts and alternates rounds (A, B, C, B, C, A, ...), so
drift between blocks no longer reads as a difference between variants; the per-unit device jobs keep accuracy
and energy (their latency protocol says ``in_rounds``). Its key is the hash of every artifact, the sample set,
the protocol, the target and the agent code that measures, so a changed unit or changed code measures all units
again (they are only comparable when timed together); the agent resumes a job interrupted between rounds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edgebench.agent.protocol import ArtifactRef, Job, TestSet
from edgebench.config import TargetSpec
from edgebench.export.onnx_io import artifact_io
from edgebench.naming import slug
from edgebench.runner.cache import code_fingerprint, content_key
from edgebench.runner.context import RunContext
from edgebench.runner.device import already_measured, latency_protocol, shipper, transport
from edgebench.runner.graph import units
from edgebench.runner.stages import Deferred
from edgebench.runner.units import Built, DeviceRun, Unit, latency_stage

#: what the agent's latency job runs: part of its key and of the job's digest
AGENT_CODE = ("edgebench.agent.rounds", "edgebench.runtime")


def latency_job(ctx: RunContext, tspec: TargetSpec, backend: str) -> DeviceRun | Deferred:
    """The latency job of every unit on ``backend`` of target ``tspec``: prepared here, shipped by the returned
    :class:`Deferred` (on the device's thread), recorded by :func:`finish`."""
    conn = transport(ctx, tspec.target)
    target = conn.target
    refs = []
    for u in units(ctx.plan):
        built: Built = ctx.value(u.stage)
        fmt, artifact = built.artifact_for(backend)
        refs.append(ArtifactRef(u.id, str(artifact), built.cards[fmt]["sha256"], io=artifact_io(built.cards[fmt])))
    clean: Path = ctx.value("testset/clean")
    proto = latency_protocol(ctx.plan.measure)
    options = target.backends.get(backend, {})
    code = code_fingerprint(*AGENT_CODE)
    name = latency_stage(tspec.target, backend)
    key = content_key("latency", {"artifacts": [[r.name, r.sha256, r.io] for r in refs], "set": str(clean),
                                  "backend": backend, "options": options, "protocol": vars(proto),
                                  "target": target.name, "transport": target.transport, "code": code})
    out_dir = ctx.run_dir / "raw" / slug(name)
    measured = already_measured(ctx, name, key, out_dir, [])
    if measured is not None:
        return measured
    job = Job(job_id=key, artifact="", backend=backend, output_dir=str(out_dir), kind="latency",
              testsets=(TestSet("clean", str(clean)),), backend_options=options, latency=proto,
              artifacts=tuple(refs), code=code)
    started = time.time()
    return Deferred(work=shipper(ctx, conn, job, out_dir), finish=lambda done: finish(ctx, name, key, started, done))


def finish(ctx: RunContext, name: str, key: str, started: float, done: tuple[dict[str, Any], Path]) -> DeviceRun:
    """Record a finished latency job (on the scheduler's thread)."""
    result, outputs = done
    cvs = [v["latency"].get("round_cv") for v in result["variants"]]
    worst = max((c for c in cvs if c is not None), default=None)
    note = (f"{len(result['variants'])} units × {len(result['rounds'])} interleaved rounds"
            + ("" if worst is None else f"; round-median CV ≤ {worst * 100:.1f} %"))
    if result.get("resumed"):
        note += f"; resumed after round {result['resumed']}"
    for f in result.get("failed", ()):
        note += f"; {f['name']} not timed: {f['error']}"
    waits = [r["waited_s"] for r in result["rounds"] if r.get("settled") is not None]
    info: dict[str, Any] = {"note": note, "seconds": time.time() - started, "settle_wait_s": sum(waits)}
    if result.get("dispatched_from"):
        info["worker"] = result["dispatched_from"]
    ctx.store.set_stage(ctx.run_id, name, key=key, status="done", started=started, info=info)
    return DeviceRun(name, outputs, result, [], note=note)


def unit_latency(run: DeviceRun, unit: Unit) -> tuple[dict[str, Any], Path] | None:
    """``unit``'s latency summary in latency job ``run`` (with ``rounds``, ``round_cv``, ``round_median_ms``) and
    its samples file; None when the job did not time it."""
    for v in run.result.get("variants", ()):
        if v["name"] == unit.id:
            return v["latency"], run.outputs / v["file"]
    return None


def round_record(run: DeviceRun, unit: Unit) -> dict[str, Any]:
    """What the store keeps of ``unit``'s rounds (a ``samples`` row of kind ``rounds``): its per-round medians,
    its place in each round's order, and each round's thermal state and settle wait."""
    rounds = run.result["rounds"]
    i = [v["name"] for v in run.result["variants"]].index(unit.id)
    return {"median_ms": [r["median_ms"][i] for r in rounds], "runs": [r["runs"][i] for r in rounds],
            "position": [r["order"].index(unit.id) for r in rounds],
            **{k: [r.get(k) for r in rounds] for k in ("temp_c", "freq_mhz", "freq_cap_mhz", "waited_s", "settled",
                                                 "other_load")},
            "baseline": run.result.get("baseline")}
