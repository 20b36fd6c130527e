"""Training seeds (``[plan] seeds = [0, 1, 2]``): one run, every model trained, compressed, defended, attacked and
measured once per seed, on the same test samples.

A plan with several seeds is run as one stage graph made of one copy of the one-seed graph per seed. Each copy
belongs to a *seed context* (:class:`SeedContext`, mixed into the pipeline's class): the plan with ``seed`` set to
that seed (so every cache key, the training order, the methods' and the attacks' generators take it, exactly as a
one-seed plan with that ``seed`` would) over the run's shared state (the cache, the loaded data, the transports,
the store). Its stages are named as in a one-seed run plus :func:`seed_tag` (``model/cnn@seed1``), except the
data and the clean test set, which every seed shares: the test subset is drawn by ``[data] seed`` (by default
the first training seed), never by the training seed, so the samples pair across seeds.

A one-seed plan has no tag, no seed context and no ``seeds`` in its resolved plan: its stage names, keys and run
id are those of a plan written before ``seeds`` existed. The statistics over seeds are
:mod:`edgebench.metrics.seeds`; the report's section :mod:`edgebench.report.seeds`.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgebench.config import Plan
from edgebench.runner.stages import Outcome, Stage

__all__ = ["SHARED", "SeedContext", "SeedStore", "SeedView", "seed_plan", "seed_stages", "seed_tag", "split_tag",
           "with_seeds"]

#: the stages every seed shares: the data set (and its test subset) and the clean test set
SHARED = ("data", "testset/clean")


def seed_tag(seed: int) -> str:
    """The suffix of a seed's stage names in a several-seed run."""
    return f"@seed{seed}"


def split_tag(name: str) -> tuple[str, int | None]:
    """A stage name without its seed tag, and the seed (None: a shared stage, or a one-seed run's)."""
    head, sep, tail = name.rpartition("@seed")
    if sep and tail.isdigit():
        return head, int(tail)
    return name, None


def seed_plan(plan: Plan, seed: int) -> Plan:
    """``plan`` as the one-seed plan of ``seed``: what each seed's stages compute (the data spec keeps its own
    seed, so the test subset does not move)."""
    return replace(plan, seed=seed, seeds=())


def with_seeds(plan: Plan, text: str) -> Plan:
    """``plan`` with the training seeds ``text`` (``edgebench run --seeds 0,1,2``) in place of its ``[plan]`` seed or
    seeds. The test subset stays the plan's (its ``[data] seed``), so the plan's own seed's stages keep their keys."""
    from edgebench.errors import ConfigError
    from edgebench.plan_seeds import seeds_error

    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = None
    why = "must be a comma-separated list of integers" if seeds is None else seeds_error(seeds)
    if why is not None:
        raise ConfigError(f"--seeds {text!r}: {why} (e.g. --seeds 0,1,2)")
    assert seeds is not None
    return replace(plan, seed=seeds[0], seeds=tuple(seeds) if len(seeds) > 1 else ())


class SeedView(MutableMapping[str, Any]):
    """A seed's view of a run-wide mapping keyed by stage name: ``name`` reads and writes ``name@seedN``; the
    shared stages are read under their own name."""

    def __init__(self, under: MutableMapping[str, Any], tag: str) -> None:
        self.under, self.tag = under, tag

    def _key(self, name: str) -> str:
        return name if name in SHARED else name + self.tag

    def __getitem__(self, name: str) -> Any:
        return self.under[self._key(name)]

    def __setitem__(self, name: str, value: Any) -> None:
        self.under[self._key(name)] = value

    def __delitem__(self, name: str) -> None:
        del self.under[self._key(name)]

    def __iter__(self) -> Iterator[str]:
        for k in list(self.under):
            if k in SHARED:
                yield k
            elif k.endswith(self.tag):
                yield k[: -len(self.tag)]

    def __len__(self) -> int:
        return sum(1 for _ in self)


class SeedStore:
    """A seed's side of the run's store: its device stages' records under their tagged names; what the store
    keys by unit only (artifacts, variant statistics, environments) is recorded for the first seed alone, so the
    report's per-unit sections describe one seed's models consistently. Results and samples carry the seed
    (:meth:`edgebench.store.Store.put_results`) and are written by the pipeline, not here."""

    def __init__(self, store: Any, tag: str, first: bool) -> None:
        self.store, self.tag, self.first = store, tag, first

    def stage(self, run_id: str, name: str) -> dict[str, Any] | None:
        return self.store.stage(run_id, name + self.tag)

    def set_stage(self, run_id: str, name: str, **fields: Any) -> None:
        self.store.set_stage(run_id, name + self.tag, **fields)

    def put_artifact(self, run_id: str, **fields: Any) -> None:
        if self.first:
            self.store.put_artifact(run_id, **fields)

    def put_variant(self, run_id: str, **fields: Any) -> None:
        if self.first:
            self.store.put_variant(run_id, **fields)

    def put_environment(self, run_id: str, **fields: Any) -> None:
        if self.first:
            self.store.put_environment(run_id, **fields)


def _shared(attr: str) -> property:
    """An attribute a seed context reads from, and writes to, the run's own context."""
    return property(lambda self: getattr(self.parent, attr), lambda self, v: setattr(self.parent, attr, v))


class SeedContext:
    """Mixed in before a :class:`~edgebench.runner.pipeline.Pipeline`: the pipeline of one seed of a several-seed
    run (see the module docstring). It owns its plan, its raw-output folder (``<run>/seed<N>/raw``), its view of
    the stage values and its own cache notes; the rest is the run's."""

    cache = _shared("cache")
    data = _shared("data")
    data_entry = _shared("data_entry")
    executor = _shared("executor")
    host_device = _shared("host_device")
    transports = _shared("transports")
    run_id = _shared("run_id")

    def __init__(self, parent: Any, seed: int) -> None:  # no super().__init__: the shared state is the parent's
        self.parent, self.seed, self.tag = parent, seed, seed_tag(seed)
        self.plan = seed_plan(parent.plan, seed)
        self.run_dir = Path(parent.run_dir) / f"seed{seed}"
        self.outcome = Outcome(values=SeedView(parent.outcome.values, self.tag))  # type: ignore[arg-type]
        self._entries = SeedView(parent._entries, self.tag)
        self._gpu_stages: dict[str, bool] = {}
        self._stages: list[Stage] | None = None
        self._seeds: list[Any] = []  # a seed's pipeline has no seeds of its own

    @property
    def store(self) -> SeedStore:
        return SeedStore(self.parent.store, self.tag, self.seed == self.parent.plan.all_seeds[0])


def _tagged(stage: Stage, tag: str) -> Stage:
    return replace(stage, name=stage.name + tag, deps=tuple(d if d in SHARED else d + tag for d in stage.deps))


def seed_stages(children: list[Any]) -> list[Stage]:
    """The stage graph of a several-seed run from its seed contexts: the shared stages once (the first seed's),
    then every other stage of each seed under its tag."""
    out: list[Stage] = []
    for i, child in enumerate(children):
        for stage in child._stage_list():
            if stage.name in SHARED:
                if i == 0:
                    out.append(stage)
            else:
                out.append(_tagged(stage, child.tag))
    return out
