"""Scoring: from the stage outcomes (device runs' raw outputs, the adversarial sets, the twins' host predictions)
to the store's records. A pure function of its inputs, so it can be tested without running a stage:

- one :class:`ResultRecord` per (model, variant, backend, target, attack, ε, source), whose fields are the
  store's ``RESULT_KEY + RESULT_FIELDS`` (DESIGN.md's definitions: clean_acc, robust_acc, asr with Wilson
  intervals, the deployment gap against the host twin, robust_delta with McNemar's paired test against the base);
- the worst case over each attack suite (:mod:`edgebench.runner.suite`: rows with ``threat = "suite"``);
- minimal-ε distributions (attacks with ``min_eps``), trust flags (white-box weaker than transfer, a gradient-free
  attack above the gradient ones, invalid energy windows, throttling, gradient health), and per-row samples
  (latency histograms, packed per-sample correctness).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.config import Plan
from edgebench.metrics.gradients import MASKING_SHARE, masked
from edgebench.runner.graph import units
from edgebench.runner.query import query_fields, query_sample
from edgebench.runner.rounds import round_record, unit_latency
from edgebench.runner.suite import suite_scores
from edgebench.runner.units import BASE, AdvSets, DeviceRun, Unit, craft_stage, device_stage, latency_stage, set_id

#: the latency fields of a device run that a result record carries
LATENCY_FIELDS = ("mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms", "first_ms", "runs",
                  "duration_s", "throughput_per_s", "rounds", "round_cv")

#: the memory fields of a device run (its ``result.json``'s ``memory``, :mod:`edgebench.agent.memory`)
MEMORY_FIELDS = ("load_rss_mb", "peak_rss_mb")

#: the twin's predictions of ``unit`` on the clean test set (``path`` None) or on the adversarial set at ``path``;
#: None when the unit has no torch twin (an imported ONNX model)
HostPredict = Callable[[Unit, "Path | None"], "np.ndarray | None"]


@dataclass
class ResultRecord:
    """One row of the store's ``results`` table (fields: ``RESULT_KEY + RESULT_FIELDS``)."""

    model: str
    variant: str
    attack: str
    eps: float
    backend: str
    target: str
    source: str
    n: int | None = None
    clean_acc: float | None = None
    clean_acc_lo: float | None = None
    clean_acc_hi: float | None = None
    robust_acc: float | None = None
    robust_acc_lo: float | None = None
    robust_acc_hi: float | None = None
    asr: float | None = None
    asr_lo: float | None = None
    asr_hi: float | None = None
    asr_n: int | None = None
    host_asr: float | None = None
    deployment_gap: float | None = None
    threat: str | None = None
    mean_ms: float | None = None
    std_ms: float | None = None
    min_ms: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    first_ms: float | None = None
    runs: int | None = None
    duration_s: float | None = None
    throughput_per_s: float | None = None
    mean_linf: float | None = None
    mean_l2: float | None = None
    energy_j: float | None = None
    energy_net_j: float | None = None
    power_w: float | None = None
    idle_power_w: float | None = None
    energy_valid: bool | None = None
    robust_delta: float | None = None
    robust_delta_p: float | None = None
    rounds: int | None = None
    round_cv: float | None = None
    load_rss_mb: float | None = None
    peak_rss_mb: float | None = None
    queries_mean: float | None = None
    queries_median: float | None = None
    query_budget: int | None = None

    def row(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # shallow: every field is a scalar


@dataclass
class Scores:
    records: list[ResultRecord] = field(default_factory=list)
    min_eps: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)


def score(plan: Plan, values: Mapping[str, Any], y: np.ndarray, *, host_predict: HostPredict,
          target_name: Callable[[str], str] = str) -> Scores:
    """Score every device run among ``values`` (stage name -> value) against the true labels ``y``.
    ``host_predict`` gives the twins' predictions (for the deployment gap); ``target_name`` the recorded name of
    a plan target."""
    from edgebench.metrics.energy import energy_fields
    from edgebench.metrics.robustness import (
        attack_success_rate,
        clean_accuracy,
        robust_accuracy,
        whitebox_below_transfer,
    )
    from edgebench.metrics.samples import latency_histogram, pack_correct

    out = Scores()
    host_clean: dict[Unit, np.ndarray | None] = {}
    correct: dict[tuple[Any, ...], np.ndarray] = {}  # per-sample robust correctness, for the paired tests
    attacks = {a.label: a for a in plan.attacks}
    for t in plan.targets:
        for b in t.backends:
            timed_in: DeviceRun | None = values.get(latency_stage(t.target, b))  # interleaved rounds, if any
            for unit in units(plan):
                run: DeviceRun | None = values.get(device_stage(t.target, b, unit))
                if run is None:
                    continue
                timed = None if timed_in is None else unit_latency(timed_in, unit)
                lat = {k: v for k, v in (timed[0] if timed else run.result.get("latency") or {}).items()
                       if k in LATENCY_FIELDS}
                latency_file = timed[1] if timed else run.outputs / "latency_ns.npy"
                emulated = run.result.get("emulated")  # timings under qemu: flagged, never recorded
                if emulated:
                    out.flags.append(emulated_flag(unit, b, target_name(t.target), emulated, lat))
                    lat, timed = {}, None
                logits = {ts["name"]: np.load(run.outputs / ts["file"], allow_pickle=False)
                          for ts in run.result["testsets"]}
                clean_pred = logits["clean"].argmax(1)
                ca = clean_accuracy(clean_pred, y)
                where = {"model": unit.model, "variant": unit.variant, "backend": b, "target": target_name(t.target)}
                mem = {k: (run.result.get("memory") or {}).get(k) for k in MEMORY_FIELDS}
                base = dict(where) if emulated else {**where, **lat, **energy_fields(run.result.get("energy")), **mem}
                out.records.append(ResultRecord(**base, attack="none", eps=0.0, n=ca["n"], clean_acc=ca["value"],
                                                clean_acc_lo=ca["lo"], clean_acc_hi=ca["hi"], source=unit.id,
                                                threat="clean"))
                out.samples.append({"kind": "correct", **where, "attack": "none", "eps": 0.0, "source": unit.id,
                                    "data": pack_correct(clean_pred == y, set_id(run.testsets[0]["path"]))})
                if latency_file.is_file() and not emulated:
                    out.samples.append({"kind": "latency", **where, "attack": "none", "eps": 0.0, "source": unit.id,
                                        "data": latency_histogram(np.load(latency_file, allow_pickle=False))})
                if timed:
                    out.samples.append({"kind": "rounds", **where, "attack": "none", "eps": 0.0, "source": unit.id,
                                        "data": round_record(timed_in, unit)})
                if (run.result.get("profile") or {}).get("ops"):  # the agent's per-operator profile
                    out.samples.append({"kind": "profile", **where, "attack": "none", "eps": 0.0, "source": unit.id,
                                        "data": run.result["profile"]})
                if unit not in host_clean:
                    host_clean[unit] = host_predict(unit, None)
                twin_clean = host_clean[unit]
                per_sample: dict[tuple[str, str], list[dict[str, Any]]] = {}
                for s in run.testsets[1:]:
                    adv: AdvSets = s.get("adv") or values[craft_stage(s["source"], s["attack"])]  # query sets carry it
                    norm = adv.info["norm"] if adv.info["norm"] in ("l2", "l0") else "linf"
                    with np.load(s["path"], allow_pickle=False) as f:
                        target = f["target"] if "target" in f.files else None
                        norms = f[norm]
                        host_adv = None
                        if twin_clean is not None:  # its own examples carry its predictions; others' are predicted
                            host_adv = f["host_pred"] if s["source"] == unit.id and "host_pred" in f.files \
                                else host_predict(unit, Path(s["path"]))
                        queries = f["queries"] if "queries" in f.files else None  # a query attack's, per sample
                    adv_pred = logits[s["name"]].argmax(1)
                    n = len(adv_pred)
                    yy, cp = y[:n], clean_pred[:n]
                    ca_n, ra = clean_accuracy(cp, yy), robust_accuracy(adv_pred, yy)
                    asr = attack_success_rate(cp, adv_pred, yy, target)
                    host_asr = None if host_adv is None else \
                        attack_success_rate(twin_clean[:n], host_adv, yy, target)["value"]
                    threat = s.get("threat") or ("white-box" if s["source"] == unit.id else "transfer")
                    hit = (adv_pred != yy) if target is None else (adv_pred == target)
                    out.records.append(ResultRecord(
                        **base, attack=s["attack"], eps=s["eps"], n=n,
                        clean_acc=ca_n["value"], clean_acc_lo=ca_n["lo"], clean_acc_hi=ca_n["hi"],
                        robust_acc=ra["value"], robust_acc_lo=ra["lo"], robust_acc_hi=ra["hi"],
                        asr=asr["value"], asr_lo=asr["lo"], asr_hi=asr["hi"], asr_n=asr["n"], host_asr=host_asr,
                        deployment_gap=None if host_asr is None else asr["value"] - host_asr,
                        source=s["source"], threat=threat,
                        mean_linf=adv.info["mean_linf"][s["k"]], mean_l2=adv.info["mean_l2"][s["k"]],
                        **query_fields(adv, queries, hit & (cp == yy))))
                    correct[(unit.model, unit.variant, b, where["target"], s["attack"], float(s["eps"]),
                             s["source"])] = adv_pred == yy
                    out.samples.append({"kind": "correct", **where, "attack": s["attack"], "eps": s["eps"],
                                        "source": s["source"], "data": pack_correct(adv_pred == yy, set_id(s["path"]))})
                    if queries is not None:  # a query attack's per-sample counts
                        out.samples.append({"kind": "queries", **where, "attack": s["attack"], "eps": s["eps"],
                                            "source": s["source"],
                                            "data": query_sample(queries, hit & (cp == yy), set_id(s["path"]))})
                    host_hit = None if host_adv is None else \
                        ((host_adv != yy) if target is None else (host_adv == target))
                    per_sample.setdefault((s["attack"], s["source"]), []).append(
                        {"eps": s["eps"], "ok": cp == yy, "hit": hit, "norms": norms, "threat": threat,
                         "host_ok": None if host_adv is None else twin_clean[:n] == yy, "host_hit": host_hit,
                         "norm": adv.info.get("norm"), "set": set_id(s["path"])})
                for (label, src), rows in per_sample.items():
                    if attacks[label].min_eps:
                        out.min_eps.append({**where, "attack": label, "source": src, "threat": rows[0]["threat"],
                                            **min_eps_record(rows)})
                out.flags.extend(whitebox_below_transfer(where, unit.id, per_sample))
                suite = suite_scores(where, unit.id, per_sample, attacks)  # the worst case over the suite
                out.records.extend(ResultRecord(**base, **r) for r in suite.records)
                out.samples.extend(suite.samples)
                out.flags.extend(suite.flags)
                correct.update(suite.correct)
                for part in run.result.get("fleet") or [run.result]:  # each member of a fleet
                    out.flags.extend(device_flags(where, part))
    deltas_vs_base(out.records, correct)
    return out


def min_eps_record(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-sample minimal ε over an attack's grid, on the device and on the host twin, among the samples the
    victim classifies correctly when clean (the others need no attack). ``rows``: one per ε, with the per-sample
    ``hit`` (and ``host_hit``), ``ok`` (and ``host_ok``) and ``norms`` arrays."""
    from edgebench.metrics.robustness import minimal_eps, summarize_min_eps

    eps = np.array([r["eps"] for r in rows])
    inf = [i for i, e in enumerate(eps) if np.isinf(e)]
    norms = rows[inf[0]]["norms"] if inf else None
    ok = rows[0]["ok"]
    values = minimal_eps(eps, np.stack([r["hit"] for r in rows]), norms)[ok]
    out: dict[str, Any] = {"eps_grid": eps.tolist(), **summarize_min_eps(values),
                           "values": [float(v) if np.isfinite(v) else None for v in values]}
    if rows[0]["host_hit"] is not None:
        host = minimal_eps(eps, np.stack([r["host_hit"] for r in rows]), norms)[rows[0]["host_ok"]]
        out["host"] = {**summarize_min_eps(host), "values": [float(v) if np.isfinite(v) else None for v in host]}
    return out


def deltas_vs_base(records: list[ResultRecord], correct: Mapping[tuple[Any, ...], np.ndarray]) -> None:
    """Each variant's robust accuracy against its base's under the same attack, ε and source, with McNemar's
    paired test on the same samples (the poster's "max δ" column, with the significance it lacked): sets
    ``robust_delta`` (variant − base, in accuracy) and ``robust_delta_p`` on the adversarial records. ``correct``
    maps (model, variant, backend, target, attack, ε, source) to the per-sample correctness."""
    from edgebench.metrics.robustness import mcnemar

    for r in records:
        if r.attack == "none" or r.variant == BASE:
            continue
        key = (r.model, r.variant, r.backend, r.target, r.attack, float(r.eps), r.source)
        base_source = r.model if r.source == f"{r.model}/{r.variant}" else r.source
        mine, theirs = correct.get(key), correct.get((r.model, BASE, *key[2:6], base_source))
        if mine is None or theirs is None or len(mine) != len(theirs):
            continue
        r.robust_delta = float(np.mean(mine) - np.mean(theirs))
        r.robust_delta_p = mcnemar(theirs, mine)["p_value"]


def device_flags(where: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
    """What makes a device measurement untrustworthy: an invalid energy window, throttling during the run."""
    from edgebench.agent.envinfo import throttling_during

    label = f"{where['model']}/{where['variant']} on {where['backend']}/{where['target']}"
    out = []
    energy = result.get("energy") or {}
    if energy and not energy.get("absent") and not energy.get("valid", False):
        reasons = "; ".join(energy.get("invalid_reasons", [])) or "invalid window"
        out.append({**where, "kind": "energy-invalid", "detail": energy,
                    "message": f"{label}: energy not trustworthy ({reasons})"})
    env = result.get("environment") or {}
    why = throttling_during(env.get("before") or {}, env.get("after") or {})
    if why:
        out.append({**where, "kind": "throttling", "detail": {"reasons": why},
                    "message": f"{label}: the device throttled during the run ({'; '.join(why)}); latency and "
                               "energy are not steady-state"})
    return out


def emulated_flag(unit: Unit, backend: str, target: str, emulated: dict[str, Any],
                  latency: dict[str, Any]) -> dict[str, Any]:
    """The note that a device run was emulated (:mod:`edgebench.targets.emulated`): its logits are the guest
    architecture's, its timings qemu's, so the median is given here, marked emulated, and in no record."""
    p50 = latency.get("p50_ms")
    timing = f"p50 {p50:.3g} ms emulated, " if p50 is not None else ""
    return {"kind": "emulated", "model": unit.model, "variant": unit.variant, "backend": backend, "target": target,
            "attack": "", "eps": 0.0, "source": unit.id, "detail": {**emulated, "emulated_p50_ms": p50},
            "message": f"{unit.id} on {backend}/{target}: run under qemu-{emulated.get('arch')} -cpu "
                       f"{emulated.get('cpu')} ({timing}not a measurement): latency, energy and memory are kept "
                       "out of every table, plot and gate; accuracy, robustness and the deployment gap are the "
                       f"{emulated.get('arch')} build's own"}


def gradient_flag(unit: Unit, health: dict[str, Any]) -> dict[str, Any]:
    """The trust flag of one twin's input-gradient health (:func:`edgebench.attacks.checks.gradient_health`):
    ``gradient-masking`` when too many gradients are zero or non-finite, else a ``gradient-check`` note."""
    flagged = masked(health)
    share = f"{health['zero_share']:.1%} zero, {health['nonfinite_share']:.1%} non-finite"
    message = (f"{unit.id}: {health['zero_share']:.1%} of input gradients are zero and "
               f"{health['nonfinite_share']:.1%} non-finite (flag above {MASKING_SHARE:.0%}); white-box results may "
               "overstate robustness — compare transfer and margin-loss (cw, apgd dlr) attacks") if flagged else \
        f"{unit.id}: input gradients healthy ({share})"
    return {"kind": "gradient-masking" if flagged else "gradient-check", "model": unit.model,
            "variant": unit.variant, "backend": "", "target": "", "attack": "", "eps": 0.0, "source": unit.id,
            "detail": health, "message": message}


def gradient_flags(models: Mapping[Unit, Any], x: np.ndarray, y: np.ndarray) -> list[dict[str, Any]]:
    """Gradient health of every torch twin in ``models`` (those that crafted white-box examples), on up to 1,000
    test samples."""
    from edgebench.attacks.checks import gradient_health

    n = min(len(x), 1000)
    return [gradient_flag(unit, gradient_health(model, x[:n], y[:n])) for unit, model in models.items()]


def through_bpda(plan: Plan, models: Mapping[Unit, Any]) -> dict[Unit, Any]:
    """The twins as the attacks see them: wrapped for BPDA where the unit asks for it (``bpda = true``)."""
    from edgebench.runner.keys import bpda_on

    if not any(bpda_on(plan, u) for u in models):
        return dict(models)
    from edgebench.attacks.bpda import bpda

    return {u: bpda(m) if bpda_on(plan, u) else m for u, m in models.items()}


def bpda_samples(plan: Plan, models: Mapping[Unit, Any], x: np.ndarray) -> list[dict[str, Any]]:
    """A ``bpda`` sample per twin in ``models`` whose unit asks for BPDA: the steps of one forward pass (on 8 test
    samples) whose backward pass BPDA replaced, by name, and the report's sentence."""
    from edgebench.runner.keys import bpda_on

    out = []
    for unit, model in models.items():
        if bpda_on(plan, unit):
            from edgebench.attacks.bpda import describe, steps_in

            steps = steps_in(model, x[:8])
            out.append({"kind": "bpda", "model": unit.model, "variant": unit.variant, "backend": "", "target": "",
                        "attack": "", "eps": 0.0, "source": unit.id,
                        "data": {"steps": steps, "summary": describe(steps)}})
    return out
