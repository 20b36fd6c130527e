"""What every stage of one run shares: the plan, the cache, where records go, the values of finished stages,
and the loaded data set.

The stage modules (:mod:`~edgebench.runner.build`, :mod:`~edgebench.runner.craft`,
:mod:`~edgebench.runner.device`, :mod:`~edgebench.runner.fleet`) are functions of a :class:`RunContext`; the
:class:`~edgebench.runner.pipeline.Pipeline` is the context that also schedules and records them. A worker's
replica is a context whose records go nowhere (:class:`DiscardStore`): the scheduler records what the worker
built when it loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edgebench.config import ModelSpec, Plan
from edgebench.data import Dataset
from edgebench.errors import DataError
from edgebench.runner.cache import Cache
from edgebench.runner.graph import spec_of
from edgebench.runner.stages import Outcome


class Recorder(Protocol):
    """Where host stages describe what they built: the run's :class:`~edgebench.store.Store`, or nothing."""

    def put_artifact(self, run_id: str, **fields: Any) -> None: ...

    def put_variant(self, run_id: str, **fields: Any) -> None: ...


class DiscardStore:
    """The records of a worker's replica: host stages describe what they built (artifacts, variant statistics)
    here, and nothing is kept; the scheduler records the same when it loads the stage's outputs."""

    def put_artifact(self, run_id: str, **fields: Any) -> None:
        pass

    def put_variant(self, run_id: str, **fields: Any) -> None:
        pass


@dataclass
class RunContext:
    plan: Plan
    cache: Cache
    run_id: str
    run_dir: Path
    store: Any = field(default_factory=DiscardStore)  #: a :class:`Recorder`; the run's Store while it runs
    outcome: Outcome = field(default_factory=Outcome)
    data: Dataset | None = None  #: the loaded data set (after its subset), once the data stage ran
    executor: Any = None  #: who computes host stages (None: this process); device jobs may be dispatched by it
    transports: dict[str, Any] = field(default_factory=dict)  #: one open transport per target, for the run
    data_entry: str | None = None  #: the cache entry of the loaded data set, once made (see runner.dataset)
    host_device: Any = None  #: the host stages' ``torch.device``, once resolved (:meth:`torch_device`)

    @property
    def ds(self) -> Dataset:
        """The loaded data set; an error naming the data stage when it did not load."""
        if self.data is None:
            raise DataError(f"{self.plan.source}: data: the data set is not loaded (its stage did not finish)")
        return self.data

    def torch_device(self) -> Any:
        """The host stages' ``torch.device`` (the plan's ``[host] device``, probed once:
        :func:`edgebench.hostdevice.resolve`)."""
        if self.host_device is None:
            from edgebench.hostdevice import resolve

            host = self.plan.host
            self.host_device = resolve(host.device, host.origin or f"{self.plan.source}: [host] device")
        return self.host_device

    def stage_device(self, obj: Any, what: str) -> tuple[Any, dict[str, Any]]:
        """The device a stage of ``obj`` (a method, defense or attack) runs on, and its record
        (:func:`edgebench.hostdevice.stage_device`)."""
        from edgebench.hostdevice import record, stage_device

        device, note = stage_device(self.torch_device(), obj, what)
        return device, record(device, note)

    def spec(self, model: str) -> ModelSpec:
        return spec_of(self.plan, model)

    def value(self, stage: str) -> Any:
        """The value of finished stage ``stage``."""
        return self.outcome.values[stage]
