"""The versioned host <-> agent job protocol: what the host sends (a :class:`Job`, a JSON document) and the
helpers both sides use. DEVICE SIDE, torch-free, and the agent's public face to the host: host code imports the
job's types from here, never the agent's passes.

Protocol versions are integers; the agent refuses a job of another version with a message saying which it
speaks. Version 2 streams test sets in chunks of ``batch_size`` samples and is resumable (see
:mod:`edgebench.agent.job`). Version 3 adds latency rounds: the :class:`LatencyProtocol`'s ``rounds``,
``cooldown_s``, ``settle_s``, ``settle_c`` and ``in_rounds``, and the job kind ``latency`` (:attr:`Job.kind`), which
loads several artifacts of one target and times them in interleaved rounds (:mod:`edgebench.agent.rounds`).
Version 4 (this one) adds the model's boundary, :attr:`Job.io` and :attr:`ArtifactRef.io` (layout, input range,
output, scores of a file as users bring it: :mod:`edgebench.runtime.boundary`), and attack requests
(:attr:`Job.attacks`, :class:`AttackRequest`): the agent crafts a query-based attack against the artifact it loaded,
through the runtime it measures (:mod:`edgebench.agent.attack`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError

PROTOCOL_VERSION = 4
#: the oldest Python the device side runs on, tested in virtual environments of it and 3.9 (JetPack 5 ships
#: 3.8, Raspberry Pi OS Bullseye 3.9); the bundle refuses an older one in one line, ``targets check`` says it
MIN_PYTHON = (3, 8)


def python_version_text(version: tuple[int, ...]) -> str:
    """``(3, 8)`` as ``"3.8"``."""
    return ".".join(map(str, version))


@dataclass(frozen=True)
class TestSet:
    """One test set file (``.npz`` holding float32 ``x`` in [0, 1], or a ``.npy``); other arrays are unused
    by the agent."""

    name: str
    path: str


@dataclass(frozen=True)
class LatencyProtocol:
    """Batch-1 latency protocol: warm-up runs, then timed runs until both ``min_runs`` and
    ``min_duration_s`` are reached (or ``max_runs``). The first inference after loading is timed
    separately, before warm-up. These defaults are also a plan's ``[measure]`` defaults
    (:class:`edgebench.config.MeasureSpec`).

    ``rounds`` > 1 (a latency job, :attr:`Job.kind` ``latency``): the timed runs of each artifact are split into
    ``rounds`` segments of ``min_runs / rounds`` runs and ``min_duration_s / rounds`` seconds, measured in
    interleaved rounds (A, B, C, then B, C, A, ...); between rounds the agent pauses ``cooldown_s`` seconds, then
    waits at most ``settle_s`` seconds for the hottest thermal zone to come back within ``settle_c`` °C of its
    reading before the first round, and for the CPU frequency cap to come back to its value then. ``in_rounds``:
    this (per-artifact) job skips its own timed pass, because the target's latency job times the artifact."""

    warmup: int = 20
    min_runs: int = 200
    min_duration_s: float = 1.0
    max_runs: int = 1_000_000
    enabled: bool = True
    rounds: int = 5
    cooldown_s: float = 0.0
    settle_s: float = 30.0
    settle_c: float = 2.0
    in_rounds: bool = False


@dataclass(frozen=True)
class EnergyProtocol:
    """Energy protocol (MLPerf Tiny's energy rules, scaled): an idle baseline of ``idle_s`` seconds, then
    ``windows`` timed windows of at least ``min_window_s`` seconds of back-to-back batch-1 inferences while
    a thread samples the target's power ``sensor`` at ``rate_hz``. A window shorter than ``min_window_s``
    or holding fewer than ``min_samples`` readings is flagged invalid, never reported silently. The defaults
    are also a plan's ``[measure] energy_*`` defaults and a target's ``[power] rate_hz`` default."""

    sensor: str = "none"
    options: dict[str, Any] = field(default_factory=dict)
    rate_hz: float = 10.0
    idle_s: float = 5.0
    min_window_s: float = 10.0
    windows: int = 3
    min_samples: int = 10


@dataclass(frozen=True)
class ArtifactRef:
    """One artifact of a latency job: its name in the report (a unit id), its path and its SHA-256."""

    name: str
    path: str
    sha256: str = ""
    #: the artifact's boundary (:class:`~edgebench.runtime.boundary.ModelIO` as a dict; ``{}``: edgebench's own)
    io: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AttackRequest:
    """A query-based attack the agent crafts on the job's artifact (:mod:`edgebench.agent.attack`): attack
    ``name`` of :data:`edgebench.blackbox.QUERY_ATTACKS` with ``params`` (its seed among them) on the first
    ``len(y)`` samples of test set ``testset`` (an index into :attr:`Job.testsets`) with labels ``y``, at every ε of
    ``eps``; ``target``: the target class per sample of a targeted attack. Queries go to the runtime in batches
    of ``batch_size``. ``names``: the name of the adversarial set at each ε in the result; ``round_8bit``: the
    sets rounded to k/255 and predicted again."""

    name: str
    params: dict[str, Any]
    eps: tuple[float, ...]
    y: tuple[int, ...]
    names: tuple[str, ...]
    testset: int = 0
    target: tuple[int, ...] | None = None
    batch_size: int = 256
    round_8bit: bool = False

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AttackRequest:
        target = raw.get("target")
        return cls(**{**raw, "eps": tuple(raw["eps"]), "y": tuple(raw["y"]), "names": tuple(raw["names"]),
                      "target": None if target is None else tuple(target)})


@dataclass(frozen=True)
class Job:
    """What the host asks of a target. ``kind`` ``measure`` (the default): accuracy, latency and energy of
    ``artifact``; ``latency``: interleaved latency rounds of every artifact in ``artifacts`` on the first
    sample of ``testsets[0]`` (``artifact`` is unused). ``code``: the host's fingerprint of the agent code that
    measures, part of :meth:`digest`, so a changed agent never resumes passes an older one finished."""

    job_id: str
    artifact: str
    backend: str
    output_dir: str
    testsets: tuple[TestSet, ...] = ()
    backend_options: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 128
    latency: LatencyProtocol = LatencyProtocol()
    energy: EnergyProtocol = EnergyProtocol()
    artifact_sha256: str = ""
    protocol: int = PROTOCOL_VERSION
    kind: str = "measure"
    artifacts: tuple[ArtifactRef, ...] = ()
    code: str = ""
    #: inferences of the per-operator profiling pass after the latency pass, in a session of its own with the
    #: runtime's profiler on (:mod:`edgebench.agent.profile`); 0: no profile. Also ``[measure] profile_runs``.
    profile_runs: int = 50
    #: the artifact's boundary (:class:`~edgebench.runtime.boundary.ModelIO` as a dict): how it takes [0, 1] NCHW
    #: inputs and gives logits; ``{}``: it does already. The agent also runs a file with a fixed batch through it.
    io: dict[str, Any] = field(default_factory=dict)
    #: query-based attacks to craft on the artifact after its latency, energy and profiling passes, before the
    #: accuracy passes (protocol 4)
    attacks: tuple[AttackRequest, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    def digest(self) -> str:
        """What the job asks, whatever folder it runs in: finished passes are reused only for the same digest."""
        raw = asdict(self)
        raw.pop("output_dir")
        return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_json(cls, text: str, *, source: str = "job") -> Job:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}: not valid JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: a job is a JSON object")
        if raw.get("protocol") != PROTOCOL_VERSION:
            raise ConfigError(
                f"{source}: job protocol {raw.get('protocol')!r}, this agent speaks {PROTOCOL_VERSION}; "
                "install the same edgebench version on the host and the device"
            )
        try:
            raw["testsets"] = tuple(TestSet(**t) for t in raw.get("testsets", ()))
            raw["artifacts"] = tuple(ArtifactRef(**a) for a in raw.get("artifacts", ()))
            raw["latency"] = LatencyProtocol(**raw.get("latency", {}))
            raw["energy"] = EnergyProtocol(**raw.get("energy", {}))
            raw["attacks"] = tuple(AttackRequest.from_dict(a) for a in raw.get("attacks", ()))
            job = cls(**raw)
        except TypeError as exc:
            raise ConfigError(f"{source}: malformed job ({exc})") from None
        if job.kind not in ("measure", "latency"):
            raise ConfigError(f"{source}: job kind {job.kind!r}; this agent runs 'measure' and 'latency' jobs")
        return job


def interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C (or the host's SIGTERM, :class:`KeyboardInterrupt` too) that ``exc`` stands for, else None. A
    SIGINT that lands while a C extension initialises comes out of the import as ``ImportError('initialization
    failed')`` caused by the KeyboardInterrupt (measured: 2 of 60 SIGINTs sent during ``import numpy,
    onnxruntime``), and the code around it may turn that into a clear line of its own. Both sides end such a
    command as interrupted, never as a failure of the job or the stage."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def raise_interrupt_behind(exc: BaseException) -> None:
    """Raise the Ctrl-C behind ``exc`` (:func:`interrupt_behind`), if there is one: how the host's CLI and
    scheduler stop on it instead of reporting ``exc``."""
    interrupt = interrupt_behind(exc)
    if interrupt is not None:
        raise interrupt from None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The file's SHA-256 (hex), read in chunks: how the host names an artifact and the agent checks its copy."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
