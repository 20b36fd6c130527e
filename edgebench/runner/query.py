"""Query-based attacks in a run (issue 17): Square and HopSkipJump crafted against the **exported artifact through
the runtime it is deployed with**, never against a torch twin, so an ONNX model with no twin and no surrogate can
be attacked too.

An attack of threat :data:`~edgebench.specs.BLACK_BOX` attacks each of its victims' own artifact, the file a
backend runs (the ONNX file for onnxruntime, the IR for openvino), at one of two places (``where``):

- ``host``: a host stage (:func:`query_stage`, one per victim, attack and backend of the plan) opens a runtime
  session of that very file on this host and crafts there (:func:`craft_query`); its sets are cached by a key of
  the artifact's SHA-256, the backend, the attack's parameters and code (:func:`~edgebench.runner.keys.query_key`)
  and join the victim's device jobs on that backend as its other adversarial sets do.
- ``device``: the device job carries an :class:`~edgebench.agent.protocol.AttackRequest` per attack
  (:func:`device_requests`); the agent crafts through ``backend.predict`` on the target after its timed passes
  (:mod:`edgebench.agent.attack`), writes the sets and the per-sample query counts in its output folder and runs
  them like any set; :func:`device_sets` makes them the victim's sets of that job.

Either way each set is an ``.npz`` with the per-sample ``queries`` beside the arrays of a crafted set, scored as
usual with threat ``black-box``, plus the query columns of :func:`query_fields`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.agent.protocol import AttackRequest
from edgebench.config import AttackSpec, Plan
from edgebench.runner.context import RunContext
from edgebench.runner.craft import attack_targets
from edgebench.runner.dataset import save_npz
from edgebench.runner.graph import units
from edgebench.runner.keys import attack_n, query_key
from edgebench.runner.keys import seeded_params as request_params
from edgebench.runner.units import AdvSets, Built, DeviceRun, Unit, query_stage
from edgebench.specs import BLACK_BOX


def query_attacks(plan: Plan, unit: Unit, where: str) -> list[AttackSpec]:
    """The query attacks crafted ``where`` (``host`` or ``device``) that ``unit`` is evaluated on."""
    return [a for a in plan.attacks
            if BLACK_BOX in a.threat and a.where == where and a.attacks_unit(unit.model, unit.variant)]


def plan_backends(plan: Plan) -> list[str]:
    """Every backend some target of the plan runs."""
    return list(dict.fromkeys(b for t in plan.targets for b in t.backends))


def host_crafts(plan: Plan) -> list[tuple[Unit, AttackSpec, str]]:
    """The host crafting stages' (victim, attack, backend): one per backend, whose file and runtime differ."""
    return [(u, a, b) for u in units(plan) for a in query_attacks(plan, u, "host") for b in plan_backends(plan)]


def craft_stages(ctx: RunContext) -> list[tuple[str, Callable[[], AdvSets], tuple[str, ...]]]:
    """The host crafting stages of the run: name, function and dependencies (the victim's build)."""
    return [(query_stage(u, a.label, b), partial(craft_query, ctx, u, a, b), (u.stage,))
            for u, a, b in host_crafts(ctx.plan)]


def host_stages(plan: Plan, unit: Unit, backend: str) -> list[str]:
    """The host stages crafting the query sets of ``unit``'s device jobs on ``backend``."""
    return [query_stage(unit, a.label, backend) for a in query_attacks(plan, unit, "host")]


def set_info(sets: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Per-ε summaries of a query attack's sets (the arrays of :func:`edgebench.agent.attack.adversarial_sets`)."""
    return {"host_success_rate": [float(np.mean(s["success"])) for s in sets],
            "mean_linf": [float(np.mean(s["linf"])) for s in sets], "mean_l2": [float(np.mean(s["l2"])) for s in sets],
            "mean_l0": [float(np.mean(s["l0"])) for s in sets],
            "mean_queries": [float(np.mean(s["queries"])) for s in sets]}


def _summary(info: dict[str, Any], eps: tuple[float, ...], where: str) -> str:
    rates = ", ".join(f"ε={e:g}: {r:.3f}" for e, r in zip(eps, info["host_success_rate"]))
    queries = ", ".join(f"{q:.0f}" for q in info["mean_queries"])
    return f"{where} success {rates}; mean queries {queries} (budget {info['max_queries']})"


def craft_query(ctx: RunContext, unit: Unit, attack: AttackSpec, backend: str) -> AdvSets:
    """Query attack ``attack`` crafted on the host through a ``backend`` session of the file ``unit``'s device
    jobs on ``backend`` run: one float32 ``.npz`` per ε (``x``, ``y``, the session's ``pred``, ``success``, the
    norms and the per-sample ``queries``), cached by :func:`~edgebench.runner.keys.query_key`."""
    from edgebench.agent.attack import adversarial_sets
    from edgebench.blackbox import run_query_attack
    from edgebench.export.onnx_io import artifact_io
    from edgebench.runtime import create_backend

    plan, ds = ctx.plan, ctx.ds
    built: Built = ctx.value(unit.stage)
    fmt, artifact = built.artifact_for(backend)
    key = query_key(ctx, built, backend, attack)
    entry = ctx.cache.get("adv", key)
    cached = entry is not None
    if entry is None:
        n = attack_n(attack, len(ds.x_test))
        x, y = np.ascontiguousarray(ds.x_test[:n], dtype=np.float32), np.asarray(ds.y_test[:n])
        target = attack_targets(plan, attack, y, ds.num_classes)
        # the file as the device runs it: a user's file through its boundary (fixed batch, layout, range, output)
        session = create_backend(backend, where=f"{plan.source}: attacks[{attack.label}]",
                                 io=artifact_io(built.cards[fmt]))
        session.load(artifact)
        t0 = time.perf_counter()
        result = run_query_attack(attack.name, request_params(plan, attack), session.predict, x, y, attack.eps,
                                  target=target, batch_size=attack.batch_size)
        seconds = time.perf_counter() - t0
        sets = adversarial_sets(result, x, y, target, session.predict, round_8bit=attack.round_8bit,
                                batch_size=attack.batch_size)
        info = {"attack": attack.name, "params": request_params(plan, attack), "source": unit.id,
                "eps": list(attack.eps), "n": n, "seconds": seconds, "norm": result.norm,
                "targeted": attack.targeted, "round_8bit": attack.round_8bit, "query_based": True, "where": "host",
                "backend": backend, "runtime_version": session.info().get("runtime_version"), "format": fmt,
                "artifact_sha256": built.cards[fmt]["sha256"],
                "max_queries": int(result.max_queries), "queries": int(np.sum(result.queries)), **set_info(sets)}
        with ctx.cache.build("adv", key) as tmp:
            for k, arrays in enumerate(sets):
                save_npz(tmp / f"eps{k}.npz", **arrays)
            (tmp / "attack.json").write_text(json.dumps(info, indent=1))
        entry = ctx.cache.path("adv", key)
    info = json.loads((entry / "attack.json").read_text())
    took = " (cached)" if cached else f" in {info['seconds']:.1f} s"
    return AdvSets(unit.id, attack, key, [entry / f"eps{k}.npz" for k in range(len(attack.eps))], info,
                   f"{_summary(info, attack.eps, f'{backend} session')}{took}", cached=cached)


def _set(attack: AttackSpec, k: int, unit: Unit, path: Path, adv: AdvSets, name: str) -> dict[str, Any]:
    """One adversarial set of a device job (the dicts of :func:`edgebench.runner.device.job_sets`)."""
    return {"name": name, "path": path, "attack": attack.label, "eps": attack.eps[k], "source": unit.id,
            "adv_key": adv.key, "k": k, "adv": adv, "threat": BLACK_BOX}


def set_name(attack: AttackSpec, k: int, unit: Unit) -> str:
    return f"{attack.label}@{attack.eps[k]:g} from {unit.id}"


def host_sets(ctx: RunContext, unit: Unit, backend: str) -> list[dict[str, Any]]:
    """The host-crafted query sets a device job of ``unit`` on ``backend`` runs."""
    out = []
    for a in query_attacks(ctx.plan, unit, "host"):
        adv: AdvSets = ctx.value(query_stage(unit, a.label, backend))
        out += [_set(a, k, unit, adv.files[k], adv, set_name(a, k, unit)) for k in range(len(a.eps))]
    return out


def device_requests(ctx: RunContext, unit: Unit) -> list[AttackRequest]:
    """The attacks the agent crafts on ``unit``'s artifact in its device job, on the first samples of the clean
    set (the job's first test set)."""
    plan, ds = ctx.plan, ctx.ds
    out = []
    for a in query_attacks(plan, unit, "device"):
        y = np.asarray(ds.y_test[:attack_n(a, len(ds.x_test))])
        target = attack_targets(plan, a, y, ds.num_classes)
        names = tuple(set_name(a, k, unit) for k in range(len(a.eps)))
        out.append(AttackRequest(name=a.name, params=request_params(plan, a), eps=a.eps, y=tuple(int(v) for v in y),
                                 names=names,
                                 target=None if target is None else tuple(int(v) for v in target),
                                 batch_size=a.batch_size, round_8bit=a.round_8bit))
    return out


def request_key(requests: list[AttackRequest]) -> dict[str, Any]:
    """What a device job's key adds for the attacks its agent crafts: the requests and their code (the attacks'
    and the pass's); nothing for a job without any, whose key stays as before."""
    if not requests:
        return {}
    from dataclasses import asdict

    from edgebench.blackbox import QUERY_ATTACKS
    from edgebench.runner.cache import code_fingerprint

    code = code_fingerprint(*(QUERY_ATTACKS.get(r.name) for r in requests), "edgebench.agent.attack")
    return {"attacks": [asdict(r) for r in requests], "attack_code": code}


def with_device_sets(ctx: RunContext, unit: Unit, run: DeviceRun, key: str) -> DeviceRun:
    """``run`` with the sets its agent crafted (``result.json``'s ``attacks``) among its test sets, each an
    :class:`AdvSets` of the files in its output folder."""
    attacks = query_attacks(ctx.plan, unit, "device")
    for a, rec in zip(attacks, run.result.get("attacks") or ()):
        files = [run.outputs / f for f in rec["files"]]
        arrays = []
        for f in files:
            with np.load(f, allow_pickle=False) as z:
                arrays.append({k: z[k] for k in ("success", "linf", "l2", "l0", "queries")})
        info = {"attack": a.name, "source": unit.id, "eps": list(a.eps), "n": rec["n"], "seconds": rec["seconds"],
                "norm": rec["norm"], "targeted": a.targeted, "round_8bit": a.round_8bit, "query_based": True,
                "where": "device", "max_queries": rec["max_queries"], "queries": rec["queries"], **set_info(arrays)}
        adv = AdvSets(unit.id, a, key, files, info, _summary(info, a.eps, "device"))
        run.testsets += [_set(a, k, unit, files[k], adv, rec["names"][k]) for k in range(len(a.eps))]
        run.note += f"; {a.label}: {adv.note} in {rec['seconds']:.1f} s"
    return run


def query_fields(adv: AdvSets, queries: np.ndarray | None, succeeded: np.ndarray) -> dict[str, Any]:
    """The result row's query columns: the mean and median queries the attack spent on the samples where it
    succeeded (clean-correct, then fooled: the convention of Andriushchenko et al. 2020, Tables 1-2), and the
    budget per sample. Empty for a set crafted without queries."""
    if queries is None or not adv.info.get("query_based"):
        return {}
    q = np.asarray(queries)[np.asarray(succeeded, dtype=bool)]
    return {"queries_mean": float(np.mean(q)) if len(q) else None,
            "queries_median": float(np.median(q)) if len(q) else None, "query_budget": adv.info.get("max_queries")}


def query_sample(queries: np.ndarray, succeeded: np.ndarray, set_name: str) -> dict[str, Any]:
    """The per-sample record of a query attack's result row (the store's ``samples``, kind ``queries``): the
    queries spent on each sample, and whether it was fooled (clean-correct, then fooled on the device), so the
    report can give the success within any share of the budget."""
    return {"queries": [int(q) for q in queries], "fooled": [bool(f) for f in succeeded], "set": set_name}
