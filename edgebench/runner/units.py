"""What a run is made of: the deployable units of a plan, and the values its stages produce.

A :class:`Unit` is one model of the plan and one of its variants; :class:`Built` is a finished unit (torch twin,
artifacts, cards), :class:`AdvSets` the adversarial test sets one attack crafted on one unit, :class:`DeviceRun`
one device job's raw outputs, :class:`RunSummary` what a whole run returns. Stage names are built here too, so
that the graph, the keys, the device jobs and the scoring name a stage the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgebench.config import AttackSpec
from edgebench.errors import ArtifactError
from edgebench.store import BASE

__all__ = ["BACKEND_FORMATS", "BASE", "AdvSets", "Built", "DeviceRun", "RunSummary", "Unit", "craft_stage",
           "device_stage", "latency_stage", "parse_unit", "query_stage", "set_id", "shard_stage"]

# the artifact format each backend runs, in order of preference
BACKEND_FORMATS = {"openvino": ("openvino", "onnx")}


@dataclass(frozen=True)
class Unit:
    """One deployable model: a plan model and one of its variants (``base`` or a compressed one)."""

    model: str
    variant: str = BASE

    @property
    def id(self) -> str:
        return self.model if self.variant == BASE else f"{self.model}/{self.variant}"

    @property
    def stage(self) -> str:
        """The stage that builds it."""
        return f"model/{self.model}" if self.variant == BASE else f"compress/{self.model}/{self.variant}"


def parse_unit(text: str) -> Unit:
    """The unit of an id (``model`` or ``model/variant``)."""
    model, _, variant = text.partition("/")
    return Unit(model, variant or BASE)


def craft_stage(source: Unit | str, label: str) -> str:
    """The stage crafting attack ``label``'s examples on ``source``."""
    return f"craft/{source if isinstance(source, str) else source.id}/{label}"


def query_stage(source: Unit, label: str, backend: str) -> str:
    """The stage crafting query attack ``label`` on ``source``'s artifact for ``backend``, on the host."""
    return f"{craft_stage(source, label)}@{backend}"


def device_stage(target: str, backend: str, unit: Unit) -> str:
    """The device job of ``unit`` on ``backend`` of ``target``."""
    return f"device/{target}/{backend}/{unit.id}"


def latency_stage(target: str, backend: str) -> str:
    """The latency job timing every unit of ``backend`` on ``target`` in interleaved rounds."""
    return f"latency/{target}/{backend}"


def shard_stage(name: str, i: int, k: int) -> str:
    """The stage of shard ``i`` (of ``k``) of fleet device stage ``name``."""
    return f"{name}#{i + 1}of{k}"


def set_id(path: str | Path) -> str:
    """A test set's identity across runs: its content-addressed cache entry and file name (the entry is named
    by the hash of everything the set depends on, so two runs sharing it measured the same samples)."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}"


@dataclass
class Built:
    """A finished model or variant: the torch twin (None for an ONNX-only model), its artifacts
    (``{"onnx": path, "openvino": xml path, ...}``) and their cards."""

    unit: Unit
    key: str
    artifacts: dict[str, Path]
    cards: dict[str, dict[str, Any]]
    torch_model: Any = None
    note: str = ""
    cached: bool = False  #: taken from the cache, not computed (the progress view's ETA leaves it out)
    worker: dict[str, Any] | None = None  #: who computed it, when an executor's worker did (pid, host, node)
    device: dict[str, Any] | None = None  #: the host device that computed it (:func:`edgebench.hostdevice.record`)

    @property
    def onnx(self) -> Path:
        return self.artifacts["onnx"]

    def artifact_for(self, backend: str) -> tuple[str, Path]:
        for fmt in BACKEND_FORMATS.get(backend, ("onnx",)):
            if fmt in self.artifacts:
                return fmt, self.artifacts[fmt]
        raise ArtifactError(f"{self.unit.id}: no artifact that backend {backend!r} can run "
                            f"(have {sorted(self.artifacts)})")


@dataclass
class AdvSets:
    """Adversarial test sets crafted on one source model by one attack, one ``.npz`` per ε."""

    source: str
    attack: AttackSpec
    key: str
    files: list[Path]
    info: dict[str, Any]
    note: str = ""
    cached: bool = False
    worker: dict[str, Any] | None = None
    device: dict[str, Any] | None = None  #: the host device that crafted them (:func:`edgebench.hostdevice.record`)


@dataclass
class DeviceRun:
    """One device job's outcome: ``outputs`` holds ``result.json`` and the raw files it lists; ``testsets`` the
    sets it ran (name, path, attack, ε, source; for adversarial ones the crafting key and ε index ``k``)."""

    name: str
    outputs: Path
    result: dict[str, Any]
    testsets: list[dict[str, Any]]
    note: str = ""
    cached: bool = False  #: measured earlier in this run, not again


@dataclass
class RunSummary:
    """What :func:`edgebench.runner.pipeline.run_plan` returns."""

    run_id: str
    run_dir: Path
    records: list[dict[str, Any]]
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    #: the plan's broken ``[gates]``, one line each (:mod:`edgebench.report.gates`); the CLI exits 3 on any
    violations: list[str] = field(default_factory=list)
