"""The pipeline of DESIGN.md for one plan: data -> models -> export + parity -> clean and adversarial test sets
-> device jobs -> scores -> store -> report.

:class:`Pipeline` turns the plan into a stage graph (:mod:`edgebench.runner.stages`), runs it on an executor, and
records every stage in the run's store. What each stage does lives in its own module: :mod:`~.dataset` (the data
and the clean test set), :mod:`~.build` (models, variants, export), :mod:`~.craft` (adversarial sets),
:mod:`~.device` and :mod:`~.fleet` (device jobs), :mod:`~.score` (records from outcomes); their cache keys in
:mod:`~.keys`. Host stages are pure functions of their inputs, cached by content hash; device jobs are recorded
with the hash of everything they ran, so re-running the same plan (same run id) skips finished work, and an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgebench import __version__, provenance
from edgebench.config import Plan
from edgebench.errors import ConfigError, EdgebenchError
from edgebench.hostdevice import describe, oom_as_error, with_device
from edgebench.naming import slug
from edgebench.runner import build, craft, dataset, device, fleet, query, rounds
from edgebench.runner.cache import Cache
from edgebench.runner.context import DiscardStore, RunContext
from edgebench.runner.executors.base import BASE_MB, HostTask, InlineExecutor
from edgebench.runner.family import FamilySource
from edgebench.runner.graph import crafting_sources, sources_for, torch_units, units
from edgebench.runner.keys import cache_status, oracle_unit, resume_point
from edgebench.runner.placement import batch_key, uses_gpu
from edgebench.runner.progress import Progress
from edgebench.runner.score import Scores, bpda_samples, gradient_flags, score, through_bpda
from edgebench.runner.seeds import SeedContext, seed_stages, split_tag
from edgebench.runner.stages import Needs, Stage, dependencies_first, execute
from edgebench.runner.units import Built, RunSummary, Unit, craft_stage, device_stage, latency_stage, shard_stage
from edgebench.store import Store

log = logging.getLogger("edgebench")

HOST_KINDS = ("model", "compress", "craft")  # the stages a worker computes


def default_run_id(plan: Plan) -> str:
    return f"{slug(plan.name)}-{plan.digest()[:10]}"


class Pipeline(RunContext):
    """Expands a plan into stages, runs them and records them. ``store``: where host stages record what they
    built when the run's own store is not open (a worker's replica passes a :class:`DiscardStore`)."""

    def __init__(self, plan: Plan, *, out_dir: Path, run_id: str | None = None, cache: Cache | None = None,
                 executor: Any = None, store: Any = None) -> None:
        run_id = run_id or default_run_id(plan)
        if slug(run_id) != run_id:
            raise ConfigError(f"run id {run_id!r}: use letters, digits, '.', '_' and '-' only")
        super().__init__(plan=plan, cache=cache or Cache(), run_id=run_id, run_dir=Path(out_dir) / run_id,
                         store=store if store is not None else DiscardStore(), executor=executor)
        self._entries: dict[str, list[tuple[str, str, bool]]] = {}  # cache entries each host stage used or made
        self._gpu_stages: dict[str, bool] = {}  # host stage -> computes on a GPU (see _on_gpu)
        self._stages: list[Stage] | None = None
        self._seeds: list[SeedPipeline] | None = None

    # the graph ------------------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        """The plan's stage graph, dependencies first (see :mod:`edgebench.runner.stages` for the kinds)."""
        plan = self.plan
        if plan.seeds:  # one copy of the one-seed graph per training seed (edgebench.runner.seeds)
            return seed_stages(self.seed_contexts())
        st: list[Stage] = [Stage("data", lambda: dataset.load_data(self), describe=f"load {plan.data.dataset}")]
        for m in plan.models:  # a substitute also needs the unit it queries (edgebench.models.substitute)
            oracle = oracle_unit(m)
            st.append(self._host_stage(f"model/{m.name}", lambda m=m: build.build_model(self, m),
                                       ("data",) if oracle is None else ("data", oracle.stage)))
        for c in plan.compress:
            st.append(self._host_stage(Unit(c.model, c.variant).stage, lambda c=c: build.apply_method(self, c),
                                       (Unit(c.model, c.on).stage,)))
        if any(m.substitute for m in plan.models):  # an oracle may be a variant: its stage comes first
            st = dependencies_first(st)
        st.append(Stage("testset/clean", lambda: dataset.clean_set(self), ("data",)))
        all_units = units(plan)
        for a in plan.attacks:
            for src in dict.fromkeys(s for u in all_units for s in sources_for(plan, u, a)):
                st.append(self._host_stage(craft_stage(src, a.label), lambda s=src, a=a: craft.craft(self, s, a),
                                           src.deps if isinstance(src, FamilySource) else (src.stage,)))
        st += [self._host_stage(*spec) for spec in query.craft_stages(self)]  # query attacks: host sessions
        for t in plan.targets:
            devices = [self._device_of(m) for m in t.fleet or (t.target,)]
            for b in t.backends:
                if device.uses_rounds(plan, t):  # every unit timed in interleaved rounds by one latency job
                    (dev, exclusive), = devices
                    st.append(Stage(latency_stage(t.target, b), lambda t=t, b=b: rounds.latency_job(self, t, b),
                                    (*(u.stage for u in all_units), "testset/clean"), kind="device", device=dev,
                                    exclusive=exclusive))
                for u in all_units:
                    crafts = (craft_stage(s, a.label) for a in plan.attacks for s in sources_for(plan, u, a))
                    deps = (u.stage, "testset/clean", *dict.fromkeys(crafts), *query.host_stages(plan, u, b))
                    name = device_stage(t.target, b, u)
                    if not t.fleet:
                        (dev, exclusive), = devices
                        st.append(Stage(name, lambda t=t, b=b, u=u: device.device_job(self, t, b, u), deps,
                                        kind="device", device=dev, exclusive=exclusive))
                        continue
                    # a fleet: one shard of every test set per member device, then the shards' outputs merged
                    k = len(t.fleet)
                    for i, (member, (dev, exclusive)) in enumerate(zip(t.fleet, devices)):
                        shard = (i, k, member)
                        st.append(Stage(shard_stage(name, i, k),
                                        lambda t=t, b=b, u=u, shard=shard: device.device_job(self, t, b, u, shard),
                                        deps, kind="device", device=dev, exclusive=exclusive))
                    st.append(Stage(name, lambda t=t, b=b, u=u: fleet.merge_fleet(self, t, b, u),
                                    tuple(shard_stage(name, i, k) for i in range(k))))
        return st

    def seed_contexts(self) -> list[SeedPipeline]:
        """The pipeline of each training seed of a several-seed plan (none for a one-seed plan)."""
        if self._seeds is None:
            self._seeds = [SeedPipeline(self, s) for s in self.plan.seeds]
        return self._seeds

    def _owner(self, name: str) -> tuple[Pipeline, str]:
        """The pipeline whose stage ``name`` is, and the name it knows it by (its seed's, without the tag)."""
        plain, seed = split_tag(name)
        if seed is None:
            return self, name
        return next(c for c in self.seed_contexts() if c.seed == seed), plain

    def _stage_list(self) -> list[Stage]:
        if self._stages is None:
            self._stages = self.stages()
        return self._stages

    def _host_stage(self, name: str, fn: Any, deps: tuple[str, ...]) -> Stage:
        """A host stage: ``fn`` computes (or loads) it here, noting the cache entries it used and made; ``task`` is
        what a worker computes instead; ``cached`` tells whether ``fn`` would only load."""
        def run() -> Any:
            with self.cache.recording() as used, oom_as_error(name, batch_key(self.plan, name)):
                value = fn()
            self._entries[name] = used
            return value

        return Stage(name, run, deps, kind="host", task=lambda: self._task(name),
                     cached=lambda: cache_status(self, name, self._known_keys())[0] == "cached",
                     gpu=lambda: self._on_gpu(name))

    def _on_gpu(self, name: str) -> bool:
        """Whether host stage ``name`` computes on a GPU (:func:`~edgebench.runner.placement.uses_gpu`), worked
        out once per stage: the scheduler asks on every pass."""
        if name not in self._gpu_stages:
            self._gpu_stages[name] = uses_gpu(self.plan, name, self.torch_device())
        return self._gpu_stages[name]

    @staticmethod
    def _device_of(target: str) -> tuple[str, bool]:
        """The physical device of target ``target`` and whether it is this host (its jobs never overlap host
        work). A target that does not load fails its own stages later, with the reason."""
        from edgebench.targets import load_target

        try:
            t = load_target(target)
        except EdgebenchError:
            return f"unknown:{target}", False
        return t.device, t.transport == "local"

    # workers --------------------------------------------------------------------------------------
    def _task(self, name: str) -> tuple[HostTask, Needs]:
        """The worker's task for host stage ``name``: the plan, the stage, and the cache entries the stages it
        depends on used or made (for workers that do not share this cache)."""
        index = {s.name: s for s in self._stage_list()}
        closure: list[str] = []
        todo = list(index[name].deps)
        while todo:
            d = todo.pop()
            if d not in closure:
                closure.append(d)
                todo.extend(index[d].deps)
        data = dataset.data_entry(self)
        inputs = tuple(dict.fromkeys([("dataset", data, None)] + [(kind, key, None) for d in closure
                                                                  for kind, key, _ in self._entries.get(d, ())]))
        needs = self.needs()
        if self._on_gpu(name):  # Ray schedules it on a GPU (num_gpus)
            needs = dataclasses.replace(needs, gpus=1.0)
        return (HostTask(plan=self.plan, stage=name, cache_root=str(self.cache.root), inputs=inputs, data=data),
                needs)

    def needs(self) -> Needs:
        """What one host stage asks of a worker: a core, and an estimate of its memory (a worker's base, plus the
        data set a few times over: training copies and batches it)."""
        data = (self.data.x_train.nbytes + self.data.x_test.nbytes) if self.data is not None else 0
        return Needs(cpus=1.0, gpus=0.0, memory_mb=BASE_MB + int(6 * data / 2**20))

    def use_data_entry(self, key: str) -> bool:
        return dataset.use_data_entry(self, key)

    def compute(self, name: str) -> Any:
        """The value of stage ``name``, computing (from the cache where it can) the stages it needs first, in this
        process: what a worker does for one host stage."""
        index = {s.name: s for s in self._stage_list()}

        def ensure(n: str) -> Any:
            if n not in self.outcome.values:
                stage = index[n]
                for d in stage.deps:
                    ensure(d)
                self.outcome.values[n] = stage.fn()
            return self.outcome.values[n]

        return ensure(name)

    # the dry run ----------------------------------------------------------------------------------
    def _known_keys(self) -> dict[Unit, str | None]:
        """The export key of every unit built so far."""
        return {v.unit: v.key for v in self.outcome.values.values() if isinstance(v, Built)}

    def dry_run(self) -> list[dict[str, Any]]:
        """What :meth:`run` would do, stage by stage, without doing it (``edgebench run --dry-run``): each stage with
        its dependencies and ``status``: ``cached`` (its outputs are in the content-addressed cache), ``measured``
        (a device job this run already finished), ``run`` (to compute), ``unknown`` (its key depends on an output
        that must be computed first: it may still turn out cached) or ``always`` (loading the data); and, for a
        variant that will run, the checkpoint it ``resumes`` from (:func:`~edgebench.runner.keys.resume_point`),
        else None. Loads the data set (the keys hash it) and reads cache manifests, nothing else."""
        dataset.load_data(self)
        done: dict[str, str] = {}
        db = self.run_dir / "results.sqlite"
        if db.is_file():
            with Store.open(db, create=False) as store:
                done = {s["stage"]: s["status"] for s in store.stages(self.run_id)}
        keys: dict[Any, dict[Unit, str | None]] = {}  # per seed, each unit's Built.key (export key) where known
        rows = []
        for stage in self._stage_list():
            kind = stage.name.partition("/")[0]
            resumes = None
            if kind in ("device", "latency"):
                status, key = ("measured" if done.get(stage.name) == "done" else "run"), None
            else:
                owner, plain = self._owner(stage.name)
                known = keys.setdefault(id(owner), {})
                status, key = cache_status(owner, plain, known)
                resumes = resume_point(owner, plain, known) if status == "run" else None
            rows.append({"stage": stage.name, "kind": kind, "deps": list(stage.deps), "status": status, "key": key,
                         "resumes": resumes})
        return rows

    def host_stages_to_compute(self) -> int | None:
        """How many host stages a run would compute (None when the data does not load: its stage fails with that
        line, and is recorded)."""
        try:
            return sum(r["status"] in ("run", "unknown") for r in self.dry_run() if r["kind"] in HOST_KINDS)
        except EdgebenchError:
            return None

    # running --------------------------------------------------------------------------------------
    def run(self, *, command: str | None = None, report: bool = True) -> RunSummary:
        """Run the stage graph, record it and (``report``) render the report and check the gates; a search trial
        (:mod:`edgebench.search`) leaves the report to the search's last run. ``command``: the command line that
        started it, for the run's provenance (:mod:`edgebench.provenance`; default: this process's)."""
        t0 = time.perf_counter()
        log.info("host device: %s", describe(self.torch_device()))  # the CUDA probe: before any stage runs
        if self.plan.export.openvino or self.plan.compress:  # before NNCF or the converter send anything
            from edgebench.export.openvino import disable_openvino_telemetry

            disable_openvino_telemetry()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "plan.json").write_text(json.dumps(self.plan.as_dict(), indent=1, default=str))
        executor = self.executor if self.executor is not None else InlineExecutor()
        records: list[dict[str, Any]] = []
        with Store.open(self.run_dir / "results.sqlite") as store:
            self.store = store
            store.begin_run(self.run_id, plan_name=self.plan.name, plan_hash=self.plan.digest(),
                            plan=self.plan.as_dict(), version=__version__)
            store.add_provenance(self.run_id, provenance.record(command))
            status = "interrupted"
            try:
                executor.fit(self.host_stages_to_compute)
                if self.executor is not None:
                    log.info("executor: %s", executor.describe())
                try:
                    execute(self._stage_list(), on_status=self._record_stage, outcome=self.outcome,
                            progress=Progress(), executor=executor,
                            gpu_slots=self.plan.host.gpu_workers if executor.name == "local" else None)
                finally:
                    executor.shutdown()
                by_seed = self.seed_scores()
                for seed, scores in by_seed:
                    rows = [r.row() for r in scores.records]
                    store.put_results(self.run_id, rows, seed=seed)
                    store.put_samples(self.run_id, scores.samples, seed=seed)
                    records += [r | {"seed": seed} for r in rows] if self.plan.seeds else rows
                store.put_min_eps(self.run_id, by_seed[0][1].min_eps)  # keyed by unit: the first seed's
                store.put_flags(self.run_id, by_seed[0][1].flags)
                status = "failed" if self.outcome.failed else "done"
            finally:
                store.finish_run(self.run_id, status)
                device.close_transports(self)
            broken: list[str] = []
            if report:
                from edgebench.report.render import write_report

                write_report(store, self.run_id, self.run_dir)
                from edgebench.report.data import RunData
                from edgebench.report.gates import violations

                broken = [v.line() for v in violations(RunData.load(store, self.run_id))] if self.plan.gates.any() \
                    else []
        return RunSummary(self.run_id, self.run_dir, records, dict(self.outcome.failed), dict(self.outcome.skipped),
                          time.perf_counter() - t0, broken)

    def _record_stage(self, name: str, status: str, note: str, seconds: float) -> None:
        if name.startswith(("device/", "latency/")) and status == "done":
            return  # recorded with its key by the stage itself
        prev = self.store.stage(self.run_id, name)
        key = prev["key"] if prev else ""
        info: dict[str, Any] = {"note": note, "seconds": seconds}
        worker = getattr(self.outcome.values.get(name), "worker", None)
        if worker:
            info["worker"] = worker
        computed_on = getattr(self.outcome.values.get(name), "device", None)
        if computed_on:
            info["device"] = computed_on
        self.store.set_stage(self.run_id, name, key=key, status=status, info=info)

    # scoring --------------------------------------------------------------------------------------
    def seed_scores(self) -> list[tuple[int, Scores]]:
        """The run's scores per training seed (one pair for a one-seed plan): each seed's stages scored as the
        one-seed run of that seed would score them."""
        if not self.plan.seeds:
            return [(self.plan.seed, self.scores())]
        return [(c.seed, c.scores()) for c in self.seed_contexts()]

    def scores(self) -> Scores:
        """The run's records from its stage outcomes (:func:`edgebench.runner.score.score`), with the host twins'
        predictions and gradient checks computed here (torch). Nothing to score when the data did not load."""
        if self.data is None:
            return Scores()
        ds = self.data
        from edgebench.models.train import predict_logits

        memo: dict[tuple[Unit, Path | None], np.ndarray | None] = {}

        def host_predict(unit: Unit, path: Path | None) -> np.ndarray | None:
            if (unit, path) not in memo:  # the same on every backend and target: predict once
                built: Built = self.outcome.values[unit.stage]
                if built.torch_model is None:
                    memo[(unit, path)] = None
                elif path is None:
                    memo[(unit, path)] = predict_logits(built.torch_model, ds.x_test).argmax(1)
                else:
                    with np.load(path, allow_pickle=False) as f:
                        memo[(unit, path)] = predict_logits(built.torch_model, f["x"]).argmax(1)
            return memo[(unit, path)]

        def target_name(target: str) -> str:
            return self.transports[target].target.name if target in self.transports else target

        out = score(self.plan, self.outcome.values, ds.y_test, host_predict=host_predict, target_name=target_name)
        if self.plan.attacks:
            crafted = crafting_sources(self.plan)
            twins = {u: b.torch_model for u in torch_units(self.plan)
                     if u in crafted and (b := self.outcome.values.get(u.stage)) is not None
                     and b.torch_model is not None}
            out.samples.extend(bpda_samples(self.plan, twins, ds.x_test))  # which steps BPDA replaced, per twin
            out.flags.extend(gradient_flags(through_bpda(self.plan, twins), ds.x_test, ds.y_test))
        return out


def run_plan(plan: Plan, *, out_dir: Path = Path("reports"), run_id: str | None = None,
             executor: Any = None, device: str | None = None, command: str | None = None) -> RunSummary:
    """Run ``plan``; results land in ``out_dir/<run-id>/``. Re-running resumes. ``executor`` computes the host
    stages (:func:`edgebench.runner.executors.create_executor`; None: in this process, one at a time). ``device``
    (``auto``, ``cpu``, ``cuda``, ``cuda:N``) overrides the plan's ``[host] device``; ``command``: the command line
    recorded as the run's provenance (default: this process's)."""
    plan = with_device(plan, device, where="run_plan(device=...)")
    return Pipeline(plan, out_dir=out_dir, run_id=run_id, executor=executor).run(command=command)


class SeedPipeline(SeedContext, Pipeline):
    """The pipeline of one training seed of a several-seed run (:class:`~edgebench.runner.seeds.SeedContext`): its
    stages are the one-seed graph of that seed; the run's pipeline schedules them under their seed's tag."""
