"""One trial of a search: the sampled parameters as an ordinary variant chain of the plan, and the trial's figures
read back from the run's store after the runner measured it (torch-free, no optuna).

A trial's parameters come from an object with Optuna's ``suggest_*`` methods (:func:`suggest`); they become one or
two :class:`~edgebench.specs.CompressSpec` (a defense and a compression, in the sampled order, the second applied
``on`` the first), named by their content so that the same configuration is the same variant, cached and measured
once (:func:`chain_specs`). Its figures are the store's rows of that unit on the search's target and backend
(:func:`trial_values`); its feasibility is the budget checked by :func:`edgebench.report.gates.check_gates`, the
checker of the plan's ``[gates]``.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

from edgebench.naming import slug
from edgebench.search.space import MethodSpace, Param, SearchSpec
from edgebench.specs import CompressSpec, Plan

__all__ = ["Step", "chain_specs", "feasibility", "suggest", "trial_plan", "trial_values", "variant_name"]

NONE = "none"
#: one step of a chain: (kind, method, parameters, the parameters that were searched)
Step = tuple[str, str, dict[str, Any], tuple[str, ...]]


def _suggest_param(trial: Any, key: str, p: Param) -> Any:
    if p.kind == "fixed":
        return p.value
    if p.kind == "choice":
        if any(isinstance(c, list) for c in p.choices):  # Optuna's choices are scalars: a list goes as its JSON
            return json.loads(trial.suggest_categorical(key, [json.dumps(c) for c in p.choices]))
        return trial.suggest_categorical(key, list(p.choices))
    if p.kind == "int":
        return trial.suggest_int(key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    v = trial.suggest_float(key, p.low, p.high, step=p.step, log=p.log)
    return float(f"{v:.6g}")  # a short variant name; the method gets exactly the value the name shows


def _suggest_kind(trial: Any, space: SearchSpec, kind: str) -> Step | None:
    methods: dict[str, MethodSpace] = {m.method: m for m in space.methods(kind)}
    names = list(methods) + ([NONE] if space.optional(kind) or not methods else [])
    name = trial.suggest_categorical(kind, names) if len(names) > 1 else names[0]
    # every method's parameters are drawn in every trial and the chosen method's are used: each trial then has the
    # same parameters, and Optuna's samplers model and recombine only the parameters all trials share (NSGA-II's
    # crossover, TPE's joint model); a space drawn only for the chosen method leaves them the method names alone
    drawn = {m: {p.name: _suggest_param(trial, f"{kind}.{m}.{p.name}", p) for p in ms.params}
             for m, ms in methods.items()}
    if name == NONE:
        return None
    m = methods[name]
    return kind, name, drawn[name], tuple(p.name for p in m.params if p.kind != "fixed")


def suggest(trial: Any, space: SearchSpec) -> list[Step]:
    """The chain a trial samples: a defense and/or a compression (each optional where the space says so), in the
    sampled order."""
    order = trial.suggest_categorical("order", list(space.order)) if len(space.order) > 1 else space.order[0]
    steps = {k: _suggest_kind(trial, space, k) for k in ("defend", "compress")}
    return [s for k in order.split("-") if (s := steps[k]) is not None]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "_".join(_fmt(x) for x in v)
    return str(v)


def step_label(step: Step) -> str:
    """``kbit-bits3``: the method and the values of its searched parameters."""
    kind, method, params, searched = step
    return slug("-".join([method, *(f"{k}{_fmt(params[k])}" for k in searched)]), default=method)


def variant_name(chain: list[Step]) -> str:
    """The chain's variant name: its steps' labels joined by ``+`` (the plan's own naming of a variant ``on``
    another); ``base`` for the empty chain."""
    return "+".join(step_label(s) for s in chain) or "base"


def chain_specs(chain: list[Step], model: str) -> list[CompressSpec]:
    """The chain as plan variants of ``model``, each applied on the one before."""
    specs: list[CompressSpec] = []
    on = "base"
    for i, step in enumerate(chain):
        kind, method, params, _ = step
        name = variant_name(chain[:i + 1])
        specs.append(CompressSpec(method=method, variant=name, model=model, params=dict(params), on=on, kind=kind))
        on = name
    return specs


def trial_plan(plan: Plan, specs: list[CompressSpec]) -> Plan:
    """The plan a trial runs: the base plan's data, models, attacks and targets, with ``specs`` as its only
    variants (the base stages are cache hits after the first trial)."""
    return replace(plan, compress=tuple(specs))


def _at(eps: Any, target: float) -> bool:
    return eps is not None and math.isclose(float(eps), target, rel_tol=1e-9, abs_tol=1e-12)


def trial_values(d: Any, space: SearchSpec, variant: str) -> dict[str, float | None]:
    """The figures of unit ``space.model``/``variant`` on the search's target and backend, from a stored run
    (:class:`~edgebench.report.data.RunData`): ``robust_acc`` at ``space.eps`` (the worst case over the attack
    suite where the plan has one, else the lowest white-box robust accuracy of the attacks at that ε),
    ``clean_acc``, ``p50_ms``, ``p99_ms``, ``energy_mj`` (valid windows only), ``peak_rss_mb`` and ``size_mb``
    (the true stored size, :mod:`edgebench.compress.storage`). A figure not measured is None."""
    where = (space.model, variant, space.target, space.backend)

    def mine(r: dict[str, Any]) -> bool:
        return (r["model"], r["variant"], r["target"], r["backend"]) == where

    clean = next((r for r in d.clean if mine(r)), {})
    suite = [r["robust_acc"] for r in d.suite if mine(r) and _at(r.get("eps"), space.eps)
             and r.get("robust_acc") is not None]
    white = [r["robust_acc"] for r in d.adversarial if mine(r) and r.get("threat") == "white-box"
             and _at(r.get("eps"), space.eps) and r.get("robust_acc") is not None]
    robust = min(suite) if suite else min(white) if white else None
    stats = next((v.get("stats") or {} for v in d.variants if (v["model"], v["variant"]) == (space.model, variant)),
                 {})
    stored = stats.get("stored_bytes") if isinstance(stats, dict) else None
    energy = clean.get("energy_j") if clean.get("energy_valid") else None
    return {"robust_acc": robust, "clean_acc": clean.get("clean_acc"), "p50_ms": clean.get("p50_ms"),
            "p99_ms": clean.get("p99_ms"), "energy_mj": None if energy is None else energy * 1e3,
            "peak_rss_mb": clean.get("peak_rss_mb"), "size_mb": None if stored is None else stored / 1e6}


def feasibility(d: Any, space: SearchSpec, variant: str) -> tuple[dict[str, float], list[str]]:
    """The budget checked on the unit by the gate checker (:func:`edgebench.report.gates.check_gates`): per gate, a
    value <= 0 where it holds (Optuna's constraint convention: the size of the excess otherwise; a figure not
    measured is a violation of 1), and the lines of the broken checks."""
    from edgebench.report.gates import check_gates

    if not space.budget:
        return {}, []
    view = replace(d, plan={**d.plan, "gates": space.gates()})
    label = space.model if variant == "base" else f"{space.model}/{variant}"
    verdicts = [v for v in check_gates(view) if (v.unit, v.target, v.backend) == (label, space.target,
                                                                                   space.backend)]
    if not verdicts:
        return {g: 1.0 for g in space.gates() if g != "units"}, [
            f"{label} on {space.target}/{space.backend}: not measured"]
    values = {v.gate: 0.0 if v.ok else (1.0 if v.value is None else max(abs(v.value - v.limit), 1e-9))
              for v in verdicts}
    return values, [v.line() for v in verdicts if not v.ok]
