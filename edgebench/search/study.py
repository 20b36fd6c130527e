"""``edgebench search``: Optuna's multi-objective search with constraints over a plan's variant methods, every
trial an ordinary variant measured on the target by the runner.

One run folder (``<out>/<run id>/``) holds the study (``search.db``, Optuna's SQLite storage) and the run's store.
The plan itself (its base and its own grid of variants) runs first; then each trial samples a chain
(:func:`edgebench.search.trial.suggest`), runs the plan with that chain as its only variant through the same stages,
cache and executors (:class:`~edgebench.runner.pipeline.Pipeline`: the base's stages are cache hits after the first
trial) and reads its figures back from the store; a trial that breaks the budget is kept as infeasible (its
constraint values are set on the trial, ``Trial.set_constraint``, and kept as a user attribute).

Each trial's sampler is seeded from the search's seed and the trial's index, so the same command draws the same
trials, interrupted or not (random search always; NSGA-II and TPE also learn from measured latencies, which vary
from run to run). On resume a trial that was running when the process died is marked failed and asked again with
the parameters it had drawn (the cache keeps whatever stages it finished); a finished trial is never run again.
The last run is the plan with its grid and every trial's variant (all cached and already measured): its report
gains the search section (:mod:`edgebench.report.search`), and the chosen configuration is written as
``chosen.toml``.

Optuna is imported here only (``pip install 'edgebench[search]'``).
"""

from __future__ import annotations

import hashlib
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError
from edgebench.naming import slug
from edgebench.search.front import KIND, chosen
from edgebench.search.space import SearchSpec, parse_search
from edgebench.search.trial import Step, chain_specs, feasibility, suggest, trial_plan, trial_values, variant_name
from edgebench.specs import Plan

__all__ = ["SearchSummary", "default_search_id", "load_search", "run_search"]

log = logging.getLogger("edgebench")

INSTALL = "edgebench search needs Optuna: pip install 'edgebench[search]'"


def require_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError(INSTALL) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


@dataclass
class SearchSummary:
    run_id: str
    run_dir: Path
    trials: list[dict[str, Any]] = field(default_factory=list)
    chosen: dict[str, Any] | None = None
    report: Path | None = None
    chosen_toml: Path | None = None
    seconds: float = 0.0
    ran: int = 0  #: trials this invocation ran (the rest were finished before)


def load_search(path: str | Path, *, quick: bool = False) -> tuple[Plan, SearchSpec, dict[str, Any]]:
    """A search plan: the ordinary plan (``quick``: at its declared quick size), its search space and budget, and
    the document as read (for chosen.toml)."""
    from edgebench.config import parse_plan
    from edgebench.toml_table import read_toml

    p = Path(path)
    raw = read_toml(p, "plan")
    plan = parse_plan(raw, str(p), quick=quick)
    space = parse_search(raw, plan)
    if space is None:
        raise ConfigError(f"{p}: search: the plan has no [search] table; add one (README, 'edgebench search')")
    return plan, space, raw


def default_search_id(plan: Plan, space: SearchSpec) -> str:
    h = hashlib.sha256((plan.digest() + space.digest()).encode()).hexdigest()
    return f"search-{slug(plan.name)}-{h[:10]}"


def _sampler(optuna: Any, space: SearchSpec, seed: int) -> Any:
    """The space's sampler seeded with ``seed``; with a budget, the constraints each trial carries: through
    ``Trial.set_constraint`` (Optuna >= 5), else a ``constraints_func`` reading them back (Optuna 3.5 to 4)."""
    kw: dict[str, Any] = {}
    if space.budget and not hasattr(optuna.trial.Trial, "set_constraint"):
        kw["constraints_func"] = lambda t: list(t.user_attrs.get("constraints", {"budget": 1.0}).values())
    if space.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=space.population, seed=seed, **kw)
    if space.sampler == "tpe":
        return optuna.samplers.TPESampler(n_startup_trials=space.population, seed=seed, multivariate=True,
                                          group=True, **kw)
    return optuna.samplers.RandomSampler(seed=seed)


def _retried(trials: list[Any]) -> set[int]:
    """The numbers of the trials a killed process left running: each was asked again (``retry_of``)."""
    return {int(t.user_attrs["retry_of"]) for t in trials if "retry_of" in t.user_attrs}


def _resume(optuna: Any, study: Any) -> list[tuple[int, str]]:
    """Trials left running by a killed process: marked failed (``interrupted``) and asked again, same parameters;
    their numbers and variants."""
    out = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)  # Optuna's public API, from any process
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
        log.info("search: trial %d was interrupted; it is asked again with the same parameters", t.number)
        out.append((t.number, str(t.user_attrs.get("variant", ""))))
    return out


def trial_row(space: SearchSpec, variant: str, source: str, data: dict[str, Any]) -> dict[str, Any]:
    """A ``samples`` row of kind ``search`` (one per trial, per grid variant, and one for the study)."""
    return {"kind": KIND, "model": space.model, "variant": variant, "backend": space.backend, "target": space.target,
            "attack": "", "eps": space.eps, "source": source, "data": data}


def _chain_data(chain: list[Step]) -> list[dict[str, Any]]:
    return [{"kind": k, "method": m, "params": p, "searched": list(s)} for k, m, p, s in chain]


def chain_of(data: list[dict[str, Any]]) -> list[Step]:
    return [(d["kind"], d["method"], dict(d["params"]), tuple(d["searched"])) for d in data]


class Search:
    """One search: the plan, its space, the run folder and how each run gets its executor."""

    def __init__(self, plan: Plan, space: SearchSpec, *, out_dir: Path, run_id: str | None = None,
                 executor: Callable[[], Any] | None = None, raw: dict[str, Any] | None = None,
                 quick: bool = False) -> None:
        self.plan, self.space, self.quick = plan, space, quick
        self.raw = raw or {}  # the plan document, for chosen.toml
        self.run_id = run_id or default_search_id(plan, space)
        if slug(self.run_id) != self.run_id:
            raise ConfigError(f"run id {self.run_id!r}: use letters, digits, '.', '_' and '-' only")
        self.run_dir = Path(out_dir) / self.run_id
        self.out_dir = Path(out_dir)
        self.executor = executor or (lambda: None)

    # runs ----------------------------------------------------------------------------------------
    def run_plan(self, plan: Plan, *, report: bool = False) -> Any:
        from edgebench.runner.pipeline import Pipeline

        return Pipeline(plan, out_dir=self.out_dir, run_id=self.run_id, executor=self.executor()).run(report=report)

    def rundata(self) -> Any:
        from edgebench.report.data import RunData
        from edgebench.store import Store

        with Store.open(self.run_dir / "results.sqlite") as store:
            return RunData.load(store, self.run_id)

    def put(self, rows: list[dict[str, Any]]) -> None:
        from edgebench.store import Store

        with Store.open(self.run_dir / "results.sqlite") as store:
            store.put_samples(self.run_id, rows)

    def measure(self, variant: str, failed: dict[str, str]) -> dict[str, Any]:
        """The unit's figures and feasibility from the store, or why it has none (``failed``: the stages of its
        run that failed)."""
        d = self.rundata()
        values = trial_values(d, self.space, variant)
        constraints, violations = feasibility(d, self.space, variant)
        missing = [o for o in self.space.objectives if values.get(o) is None]
        reason = "; ".join(f"{s}: {why}" for s, why in failed.items()) or (
            f"not measured: {', '.join(missing)}" if missing else "")
        return {"values": values, "constraints": constraints, "violations": violations,
                "feasible": not reason and all(c <= 0 for c in constraints.values()), "reason": reason}

    # the grid ------------------------------------------------------------------------------------
    def grid(self) -> list[str]:
        """Run the plan as it is (its base and its own variants) and record each unit's figures."""
        self.run_plan(self.plan)
        names = ["base", *[c.variant for c in self.plan.compress if c.model == self.space.model]]
        rows = []
        for v in names:
            m = self.measure(v, {})  # a grid variant that failed has no figures: "not measured"
            rows.append(trial_row(self.space, v, f"grid {v}", {
                "number": None, "state": "FAIL" if m["reason"] else "COMPLETE", "variant": v, "grid": True,
                "chain": [], **m}))
        self.put(rows)
        return names

    # the trials ----------------------------------------------------------------------------------
    def trial(self, optuna: Any, study: Any, index: int) -> dict[str, Any]:
        # one seed per (search seed, trial index): searches of other seeds draw unrelated trials
        study.sampler = _sampler(optuna, self.space, (self.space.seed * 1_000_003 + index) % 2**32)
        trial = study.ask()
        trial.set_user_attr("index", index)
        chain = suggest(trial, self.space)
        variant = variant_name(chain)
        trial.set_user_attr("variant", variant)
        t0 = time.perf_counter()
        log.info("search: trial %d (%d): %s", trial.number, index, variant)
        specs = chain_specs(chain, self.space.model)
        try:
            for s in specs:  # a combination of values the method refuses (each value alone was checked)
                from edgebench.variants import create_method

                create_method(s.kind, s.method, **s.params)
        except ConfigError as exc:
            m = {"values": {}, "constraints": {g: 1.0 for g in self.space.gates() if g != "units"}, "violations": [],
                 "feasible": False, "reason": str(exc)}
        else:
            summary = self.run_plan(trial_plan(self.plan, specs))
            m = self.measure(variant, summary.failed)
        trial.set_user_attr("constraints", m["constraints"])
        if hasattr(trial, "set_constraint"):
            for gate, value in m["constraints"].items():
                trial.set_constraint(gate, value)
        trial.set_user_attr("feasible", m["feasible"])
        state = "FAIL" if m["reason"] else "COMPLETE"
        data = {"number": trial.number, "index": index, "state": state, "variant": variant,
                "chain": _chain_data(chain), "params": dict(trial.params), "sampler": self.space.sampler,
                "seconds": time.perf_counter() - t0, **m}
        # stored before the study hears of it: a process killed in between leaves the trial running, so it is asked
        # again and its row replaced (_resume), never a finished trial without its row
        self.put([trial_row(self.space, variant, f"trial {trial.number:04d}", data)])
        if m["reason"]:
            trial.set_user_attr("reason", m["reason"][:500])
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, [float(m["values"][o]) for o in self.space.objectives])
        return data

    def study(self, optuna: Any) -> Any:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        storage = optuna.storages.RDBStorage(f"sqlite:///{(self.run_dir / 'search.db').resolve()}",
                                             engine_kwargs={"connect_args": {"timeout": 30}})
        study = optuna.create_study(storage=storage, study_name="search", directions=self.space.directions(),
                                    load_if_exists=True)
        digest = study.user_attrs.get("space")
        if digest is None:
            study.set_user_attr("space", self.space.digest())
        elif digest != self.space.digest():
            raise ConfigError(f"{self.run_dir}: this run's study searched another space or budget; give another "
                              "--run-id (or remove the folder) to search this one")
        return study

    def run(self, *, trials: int | None = None, timeout: float | None = None, finish: bool = True) -> SearchSummary:
        """Run trials until ``trials`` (default: the space's) have finished or ``timeout`` seconds have passed
        (the running trial finishes); then, with ``finish``, the last run, its report and chosen.toml."""
        optuna = require_optuna()
        t0 = time.perf_counter()
        study = self.study(optuna)
        self.put([trial_row(self.space, v, f"trial {n:04d}", {"number": n, "state": "INTERRUPTED", "variant": v,
                                                               "chain": [], "values": {}})
                  for n, v in _resume(optuna, study)])  # a row stored before the kill is replaced
        want = trials if trials is not None else self.space.trials
        grid = self.grid()
        self.put([trial_row(self.space, "", "study", {
            "sampler": self.space.sampler, "seed": self.space.seed, "objectives": list(self.space.objectives),
            "directions": self.space.directions(), "budget": self.space.budget, "eps": self.space.eps,
            "population": self.space.population, "grid": grid[1:], "trials": want, "model": self.space.model,
            "target": self.space.target, "backend": self.space.backend})])
        ran = 0
        while True:
            every = study.get_trials(deepcopy=False)
            retried = _retried(every)
            done = [t for t in every if t.state.is_finished() and t.number not in retried]
            if len(done) >= want or (timeout is not None and time.perf_counter() - t0 >= timeout):
                break
            self.trial(optuna, study, len(done))
            ran += 1
        rows = self.rows()
        summary = SearchSummary(self.run_id, self.run_dir, rows, ran=ran,
                                chosen=chosen(rows, list(self.space.objectives), self.space.directions()))
        if finish:
            self.finish(summary)
        summary.seconds = time.perf_counter() - t0
        return summary

    def rows(self) -> list[dict[str, Any]]:
        from edgebench.store import Store

        with Store.open(self.run_dir / "results.sqlite") as store:
            return [s["data"] for s in store.samples(self.run_id, KIND) if s["source"].startswith("trial ")]

    def finish(self, summary: SearchSummary) -> None:
        """The plan with its grid and every finished trial's variant (all cached, all measured): the run whose
        report shows the search; and the chosen configuration as chosen.toml."""
        specs = list(self.plan.compress)
        seen = {(c.model, c.variant) for c in specs}
        for r in summary.trials:
            if r["state"] == "COMPLETE":
                for s in chain_specs(chain_of(r["chain"]), self.space.model):
                    if (s.model, s.variant) not in seen:
                        seen.add((s.model, s.variant))
                        specs.append(s)
        self.run_plan(replace(self.plan, compress=tuple(specs)), report=True)
        summary.report = self.run_dir / "report.md"
        if summary.chosen is not None:
            from edgebench.search.chosen import chosen_plan, toml_text

            summary.chosen_toml = self.run_dir / "chosen.toml"
            c = summary.chosen
            name = self.plan.name.removesuffix("-quick") if self.quick else self.plan.name
            doc = chosen_plan(self.raw, chain_of(c["chain"]), self.space.model, f"{name}-chosen")
            head = (f"The configuration `edgebench search {self.plan.source}` chose (run {self.run_id}, trial "
                    f"{c['number']}):\n{c['variant']}: " + ", ".join(f"{k} {v:.4g}" for k, v in c["values"].items()
                                                                      if v is not None) +
                    f"\nedgebench run {'--quick ' if self.quick else ''}this file to measure it again.")
            summary.chosen_toml.write_text(toml_text(doc, head))


def run_search(path: str | Path, *, out_dir: Path = Path("reports"), run_id: str | None = None,
               trials: int | None = None, timeout: float | None = None, executor: Callable[[], Any] | None = None,
               finish: bool = True, sampler: str | None = None, seed: int | None = None,
               quick: bool = False) -> SearchSummary:
    """Search the plan file ``path`` (:mod:`edgebench.search.space`; ``quick``: at its quick size). ``executor``:
    a function giving each run its executor (None: host stages in this process). ``sampler`` / ``seed`` override
    the plan's (the benchmark)."""
    require_optuna()
    plan, space, raw = load_search(path, quick=quick)
    if sampler is not None:
        if sampler not in ("nsga2", "tpe", "random"):
            raise ConfigError(f"sampler {sampler!r}: choose nsga2, tpe or random")
        space = replace(space, sampler=sampler)
    if seed is not None:
        space = replace(space, seed=seed)
    search = Search(plan, space, out_dir=out_dir, run_id=run_id, executor=executor, raw=raw, quick=quick)
    return search.run(trials=trials, timeout=timeout, finish=finish)
