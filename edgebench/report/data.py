"""Everything a report shows, read from one run's store in one go (the report never touches live objects)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from edgebench.metrics.pareto import finite
from edgebench.store import BASE, Store

#: what the report's summary and accuracy overview call a unit's robust accuracy (see :func:`headline_robust`)
HEADLINE_ROBUST = "robust accuracy against the strongest white-box attack, each attack at the middle ε of its grid"


@dataclass
class RunData:
    """One stored run: the store's rows as plain dicts (the shapes :class:`edgebench.store.Store` returns)."""

    run_id: str
    run: dict[str, Any]
    plan: dict[str, Any]
    results: list[dict[str, Any]]
    variants: list[dict[str, Any]]
    artifacts: list[dict[str, Any]]
    environments: list[dict[str, Any]]
    min_eps: list[dict[str, Any]]
    flags: list[dict[str, Any]]
    stages: list[dict[str, Any]]
    samples: list[dict[str, Any]] = field(default_factory=list)
    #: a run with several ``[plan] seeds``: every seed's result rows and samples, each with its ``seed`` (the other
    #: fields hold the first seed's alone, so every section reads one seed's run; :mod:`edgebench.report.seeds`)
    seed_results: list[dict[str, Any]] = field(default_factory=list)
    seed_samples: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, store: Store, run_id: str) -> RunData:
        run = store.run(run_id) or {"run_id": run_id, "status": "unknown"}
        plan = json.loads(run["plan"]) if run.get("plan") else {}
        results, samples = store.results(run_id), store.samples(run_id)
        seeds = plan.get("seeds") or []
        return cls(run_id=run_id, run=run, plan=plan, results=_first_seed(results, seeds),
                   variants=store.variants(run_id), artifacts=store.artifacts(run_id),
                   environments=store.environments(run_id), min_eps=store.min_eps(run_id),
                   flags=store.flags(run_id), stages=store.stages(run_id), samples=_first_seed(samples, seeds),
                   seed_results=results if len(seeds) > 1 else [], seed_samples=samples if len(seeds) > 1 else [])

    @property
    def seeds(self) -> list[int]:
        """The run's training seeds (one for a one-seed run)."""
        return list(self.plan.get("seeds") or [self.plan.get("seed", 0)])

    def stage(self, name: str) -> dict[str, Any] | None:
        """The stored stage ``name`` as a one-seed run names it: the first seed's, where the run has several
        (``name@seed<N>``, :mod:`edgebench.runner.seeds`)."""
        tagged = f"{name}@seed{self.seeds[0]}" if len(self.seeds) > 1 else name
        return next((s for s in self.stages if s["stage"] == tagged), None)

    # views ---------------------------------------------------------------------------------------
    @property
    def clean(self) -> list[dict[str, Any]]:
        """One row per model × variant × target × backend: clean accuracy, latency, energy."""
        return [r for r in self.results if r["attack"] == "none"]

    @property
    def adversarial(self) -> list[dict[str, Any]]:
        """One row per attack, ε and source (the suite's worst-case rows, :attr:`suite`, are not attacks)."""
        return [r for r in self.results if r["attack"] != "none" and r.get("threat") != "suite"]

    @property
    def suite(self) -> list[dict[str, Any]]:
        """The worst case over each attack suite (:mod:`edgebench.runner.suite`): rows of threat ``suite``."""
        return [r for r in self.results if r.get("threat") == "suite"]

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """(target, backend) pairs in the order they were stored."""
        return list(dict.fromkeys((r["target"], r["backend"]) for r in self.results))

    def onnx_sizes(self) -> dict[tuple[str, str], int]:
        """Bytes of each (model, variant)'s ONNX artifact: the artifacts table, else the variant's statistics."""
        out: dict[tuple[str, str], int] = {}
        for v in self.variants:
            stats = v.get("stats") if isinstance(v.get("stats"), dict) else {}
            size = ((stats.get("artifacts") or {}).get("onnx") or {}).get("size_bytes")
            if isinstance(size, int | float) and size > 0:
                out[(v["model"], v["variant"])] = int(size)
        for a in self.artifacts:
            size = a.get("size_bytes")
            if a.get("format") == "onnx" and isinstance(size, int | float) and size > 0:
                out[(a["model"], a["variant"])] = int(size)
        return out

    def latency_histograms(self) -> list[dict[str, Any]]:
        """``samples`` rows of kind ``latency``: ``data`` = {edges_ms, counts, n}."""
        return [s for s in self.samples if s["kind"] == "latency"]

    def correctness(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        """``samples`` rows of kind ``correct`` keyed by the result key (model, variant, attack, eps, backend,
        target, source): ``data`` = {n, bits (base64 of numpy.packbits), set_sha256}."""
        return {(s["model"], s["variant"], s["attack"], float(s["eps"]), s["backend"], s["target"], s["source"]): s
                for s in self.samples if s["kind"] == "correct"}


def _first_seed(rows: list[dict[str, Any]], seeds: list[int]) -> list[dict[str, Any]]:
    """The rows of the first training seed (every row where the run has one), without their ``seed``: the rows
    a one-seed run's report reads."""
    return [{k: v for k, v in r.items() if k != "seed"} for r in rows if len(seeds) < 2 or r["seed"] == seeds[0]]


def unit_label(model: str, variant: str) -> str:
    """``model`` for the base, ``model/variant`` otherwise (the names used throughout a report)."""
    return model if variant == BASE else f"{model}/{variant}"


def row_unit(r: dict[str, Any]) -> str:
    """:func:`unit_label` of a result row."""
    return unit_label(r["model"], r["variant"])


def by_pair(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Result rows grouped by (target, backend), in first-seen order."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault((r["target"], r["backend"]), []).append(r)
    return out


def middle_eps(rows: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Per attack: the middle of its finite ε grid among ``rows`` (the lower of the two middles of an even grid)."""
    grids: dict[str, set[float]] = {}
    for r in rows:
        e = finite(r.get("eps"))
        if e is not None:
            grids.setdefault(r["attack"], set()).add(e)
    return {a: sorted(g)[(len(g) - 1) // 2] for a, g in grids.items()}


def headline_robust(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str, str], tuple[dict[str, Any], int]]:
    """The report's one robust-accuracy figure per (model, variant, target, backend): of the unit's white-box
    rows at each attack's middle ε (:func:`middle_eps`, one grid per attack across all units, so every unit is
    compared at the same budget), the row of lowest robust accuracy, with the number of attacks it is the worst of.

    Why this figure: the worst case over *every* ε is set by the largest ε, which a plan includes to show where
    everything breaks, so it is about 0 for every variant and picks the best one by noise. A fixed budget per
    attack, against the strongest attack at that budget, is how robustness benchmarks rank models (RobustBench:
    AutoAttack at one ε); the middle of the plan's own grid is the budget its author expects variants to differ
    at (the smallest ε is near-clean, the largest breaks everything). Unlike a mean over the grid, it is one
    measured row, so it keeps its sample count and 95 % interval, and it reads as a number a user can check."""
    rows = [r for r in rows if r.get("threat") == "white-box" and finite(r.get("robust_acc")) is not None]
    mid = middle_eps(rows)
    out: dict[tuple[str, str, str, str], tuple[dict[str, Any], int]] = {}
    for r in rows:
        if finite(r.get("eps")) != mid.get(r["attack"]):
            continue
        k = (r["model"], r["variant"], r["target"], r["backend"])
        prev, count = out.get(k, (None, 0))
        out[k] = (r if prev is None or r["robust_acc"] < prev["robust_acc"] else prev, count + 1)
    return out
