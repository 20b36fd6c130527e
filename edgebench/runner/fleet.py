"""Fleets: a target that is several identical devices. Every test set is cut into one shard per member (a
cache entry per shard, so a resumed run ships the same rows), each member runs its shard, and the shards'
outputs are merged into one device run as if one device had measured the whole set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.config import TargetSpec
from edgebench.naming import slug
from edgebench.runner.cache import content_key
from edgebench.runner.context import RunContext
from edgebench.runner.dataset import save_npz
from edgebench.runner.units import DeviceRun, Unit, device_stage, set_id, shard_stage


def shard_file(ctx: RunContext, path: Path, i: int, k: int) -> Path:
    """Rows ``[i·n/k, (i+1)·n/k)`` of test set ``path`` (every array of n rows cut alike): a cache entry named by
    the set's own content-addressed id, so that every member of a fleet gets a fixed, disjoint share and a resumed
    run ships the same files."""
    key = content_key("shard", {"set": set_id(path), "i": i, "k": k})
    entry = ctx.cache.get("shard", key)
    if entry is None:
        with np.load(path, allow_pickle=False) as f:
            n = len(f["x"])
            lo, hi = i * n // k, (i + 1) * n // k
            arrays = {a: (f[a][lo:hi] if f[a].ndim and len(f[a]) == n else f[a]) for a in f.files}
        with ctx.cache.build("shard", key) as tmp:
            save_npz(tmp / path.name, **arrays)
        entry = ctx.cache.path("shard", key)
    return entry / path.name


def merge_energy(parts: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """A fleet's energy: each numeric reading averaged over the members that measured it (identical devices,
    each drawing its own power); valid only if every member's is; absent when no member has a sensor."""
    measured = [p for p in parts if p and not p.get("absent")]
    if not measured:
        return next((p for p in parts if p), None)
    out: dict[str, Any] = {"valid": all(bool(p.get("valid")) for p in measured) and len(measured) == len(parts),
                           "members": len(measured),
                           "invalid_reasons": [r for p in measured for r in p.get("invalid_reasons", [])]}
    if len(measured) < len(parts):
        out["invalid_reasons"].append(f"{len(parts) - len(measured)} member(s) without a readable sensor")
    for field_ in ("energy_per_inference_j", "net_energy_per_inference_j", "mean_power_w", "idle_power_w"):
        values = [p[field_] for p in measured if isinstance(p.get(field_), (int, float))]
        out[field_] = float(np.mean(values)) if values else None
    return out


def merge_fleet(ctx: RunContext, tspec: TargetSpec, backend: str, unit: Unit) -> DeviceRun:
    """One device run out of a fleet's shards: each test set's logits concatenated in shard order (the rows of the
    whole set, as one device would have written them), the latency samples of every member pooled into one
    distribution, energy averaged over the members, and each member's own latency, energy, backend and
    environment kept under ``fleet``."""
    from edgebench.metrics.latency import latency_summary

    name = device_stage(tspec.target, backend, unit)
    k = len(tspec.fleet)
    parts: list[DeviceRun] = [ctx.value(shard_stage(name, i, k)) for i in range(k)]
    out_dir = ctx.run_dir / "raw" / slug(name.removeprefix("device/"))
    out_dir.mkdir(parents=True, exist_ok=True)
    first = parts[0].result
    sets = []
    for j, ts in enumerate(first["testsets"]):
        logits = np.concatenate([np.load(p.outputs / p.result["testsets"][j]["file"], allow_pickle=False)
                                 for p in parts])
        np.save(out_dir / f"set-{j}.npy", logits)
        sets.append({"name": ts["name"], "n": len(logits), "file": f"set-{j}.npy",
                     "seconds": sum(p.result["testsets"][j].get("seconds", 0.0) for p in parts)})
    files = [s["file"] for s in sets]
    latency = None
    samples = [np.load(p.outputs / "latency_ns.npy", allow_pickle=False) for p in parts
               if (p.outputs / "latency_ns.npy").is_file()]
    if samples and all(p.result.get("latency") for p in parts):
        pooled = np.concatenate(samples)
        np.save(out_dir / "latency_ns.npy", pooled)
        files.append("latency_ns.npy")
        lats = [p.result["latency"] for p in parts]
        firsts = [x["first_ms"] for x in lats if x.get("first_ms") is not None]
        latency = {**latency_summary(pooled, first_ns=int(np.median(firsts) * 1e6) if firsts else None,
                                     duration_s=sum(x["duration_s"] for x in lats)),
                   "protocol": lats[0].get("protocol"), "file": "latency_ns.npy", "members": len(lats)}
    members = [{"target": m, "n": p.result["testsets"][0]["n"] if p.result["testsets"] else 0,
                "latency": p.result.get("latency"), "energy": p.result.get("energy"),
                "backend": p.result.get("backend"), "environment": p.result.get("environment")}
               for m, p in zip(tspec.fleet, parts)]
    result = {**first, "testsets": sets, "latency": latency, "files": files, "resumed": [], "fleet": members,
              "energy": merge_energy([m["energy"] for m in members])}
    (out_dir / "result.json").write_text(json.dumps(result, indent=1, default=str))
    ctx.store.put_environment(ctx.run_id, target=tspec.target, backend=backend, model=unit.model,
                              variant=unit.variant, backend_info={**first["backend"], "fleet": list(tspec.fleet)},
                              environment={**first["environment"], "energy": result["energy"],
                                           "fleet": {m["target"]: m["environment"] for m in members}})
    shard_keys = [(ctx.store.stage(ctx.run_id, shard_stage(name, i, k)) or {}).get("key", "") for i in range(k)]
    note = (f"{k} devices, {sets[0]['n'] if sets else 0} samples per set merged"
            + (f"; p50 {latency['p50_ms']:.3f} ms over {latency['runs']} runs" if latency else ""))
    ctx.store.set_stage(ctx.run_id, name, key=content_key("fleet", {"shards": shard_keys}), status="done",
                        info={"note": note, "seconds": 0.0})
    return DeviceRun(name, out_dir, result, parts[0].testsets, note=note, cached=all(p.cached for p in parts))
