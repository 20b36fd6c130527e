"""A plan as frozen dataclasses: what :func:`edgebench.config.load_plan` returns and the runner reads.
Torch-free; the checks that build them are in :mod:`edgebench.config`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from edgebench.agent.protocol import EnergyProtocol, Job, LatencyProtocol

__all__ = ["TARGETINGS", "THREATS", "AttackSpec", "CompressSpec", "DataSpec", "ExportSpec", "MeasureSpec",
           "BLACK_BOX", "WHERES", "GatesSpec", "HostSpec", "ModelSpec", "Plan", "ReferenceSpec", "TargetSpec",
           "plan_digest"]


@dataclass(frozen=True)
class DataSpec:
    """``[data]``: the dataset, its loader parameters and the deterministic subset sizes."""

    dataset: str = "digits"
    params: dict[str, Any] = field(default_factory=dict)
    n_train: int | None = None
    n_test: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class ModelSpec:
    """``[[models]]``: a zoo architecture, a user torch factory (``package.module:factory``) or a ready
    ONNX file. ``attack_source`` names the model whose adversarial examples this one is evaluated on
    (default: itself, white-box); an ONNX model has no gradients and must name one."""

    name: str
    arch: str | None = None
    factory: str | None = None
    onnx: str | None = None
    checkpoint: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    attack_source: str | None = None
    #: white-box attacks on its twin take the identity as the backward pass of non-differentiable steps (BPDA,
    #: :mod:`edgebench.attacks.bpda`)
    bpda: bool = False
    #: an ONNX file's boundary as the entry gives it (``layout``, ``input_range``, ``output``, ``scores``;
    #: :mod:`edgebench.export.onnx_io`): how it differs from [0, 1] NCHW in, logits out
    io: dict[str, Any] = field(default_factory=dict)
    #: trained by querying a unit of the plan (Papernot et al.'s JBDA, :mod:`edgebench.models.substitute`):
    #: ``oracle``, ``holdout``, ``rounds``, ``lmbda``, ``tau``; empty for a model trained on the labelled data
    substitute: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return self.attack_source or self.name


THREATS = ("white-box", "transfer", "matrix", "family")
TARGETINGS = ("none", "next", "random")
#: the threat of a query-based attack (issue 17): crafted on each victim's own deployed artifact through its
#: runtime, by queries alone; and where it is crafted (``where``): a host session of the very file the device
#: gets, or inside the agent on the target
BLACK_BOX = "black-box"
WHERES = ("host", "device")


@dataclass(frozen=True)
class AttackSpec:
    """``[[attacks]]``: registry name, ε list, the number of test samples attacked, and parameters.

    ``threat``: where the examples are crafted — ``white-box`` (on each victim's own torch twin: the
    compression-aware attack), ``transfer`` (on ``surrogate``, by default each victim's uncompressed base,
    evaluated on every variant), ``matrix`` (every torch model and variant of the plan crafts, every one
    is evaluated: the transferability table) and ``family`` (one set crafted on several variants at once by
    expectation over transformation, evaluated on them and on ``holdout``: :mod:`edgebench.families`).
    ``min_eps``: per sample, the smallest ε of the grid at which
    the attack succeeds (Algorithm 1 of Liu et al. 2018). ``targeted``: ``none``, ``next`` (label + 1 mod
    classes) or ``random`` (seeded, never the label). ``round_8bit``: store the adversarial sets rounded to
    k/255 (default float32, unrounded). ``suite = false``: leave it out of the worst case over the suite. A
    query-based attack (Square, HopSkipJump) has the threat :data:`BLACK_BOX` and is crafted ``where`` =
    ``host`` (a runtime session of the artifact) or ``device`` (inside the agent)."""

    name: str
    label: str
    eps: tuple[float, ...]
    n: int | None = None
    batch_size: int = 256
    params: dict[str, Any] = field(default_factory=dict)
    threat: tuple[str, ...] = ("white-box",)
    surrogate: str | None = None
    min_eps: bool = False
    targeted: str = "none"
    round_8bit: bool = False
    victims: tuple[str, ...] = ("*",)
    #: whether it counts in the worst case over the suite of its norm (:mod:`edgebench.runner.suite`)
    suite: bool = True
    #: threat ``family``: the variants one set is crafted on at once (EOT), or ``"all"``; ``holdout``: variants it
    #: is also evaluated on (:mod:`edgebench.families`)
    family: str | tuple[str, ...] = ()
    holdout: tuple[str, ...] = ()
    where: str = "host"
    #: an untargeted attack is crafted against the ``true`` labels or the source model's ``predicted`` top-1 (seed
    #: 002's FGSM; :data:`edgebench.attacks.base.CRAFT_LABELS`); success is judged against the true labels
    craft_label: str = "true"

    def attacks_unit(self, model: str, variant: str) -> bool:
        """Whether this attack is evaluated on ``model``'s ``variant``. ``victims`` holds variant names or shell
        globs, with ``base`` for the uncompressed model, each matching that variant of every model, or qualified
        by the model (``orig/base``, ``orig/*``) to match that model's alone; by default every variant."""
        return any(victim_matches(v, model, variant) for v in self.victims)


def victim_matches(pattern: str, model: str, variant: str) -> bool:
    """Whether one ``victims`` entry names ``model``'s ``variant``: a variant name or glob, or one qualified by
    the model (``orig/base``, ``orig/*``)."""
    import fnmatch

    return fnmatch.fnmatchcase(f"{model}/{variant}" if "/" in pattern else variant, pattern)


@dataclass(frozen=True)
class CompressSpec:
    """One variant of ``[[compress]]`` or ``[[defend]]``: the method, the variant's name, the model, the
    variant it is applied to (``on``: ``"base"`` or another variant of the same model, so a model can be
    adversarially trained then quantized, or compressed then defended) and the method's parameters (a list
    given for a scalar parameter expands into one variant per value). ``kind`` says which registry the
    method comes from: ``compress`` (:mod:`edgebench.compress`) or ``defend`` (:mod:`edgebench.defenses`)."""

    method: str
    variant: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    on: str = "base"
    kind: str = "compress"
    #: attacks crafted on this variant's twin go through BPDA (:mod:`edgebench.attacks.bpda`)
    bpda: bool = False


@dataclass(frozen=True)
class ExportSpec:
    """``[export]``: OpenVINO IR beside every ONNX artifact, and with ``fp16`` an fp16-compressed IR and an fp16
    ONNX file (float16 weights and compute, float32 inputs and outputs) as well, each checked for parity."""

    openvino: bool = True
    fp16: bool = False


@dataclass(frozen=True)
class TargetSpec:
    """``[[targets]]``: a target (name in ``targets/`` or a path to a target file) and its backends."""

    target: str
    backends: tuple[str, ...] = ()
    #: a fleet: identical devices (target names or files) that share each test set, one shard each; ``target``
    #: is then the fleet's name in the results
    fleet: tuple[str, ...] = ()


@dataclass(frozen=True)
class MeasureSpec:
    """``[measure]``: the accuracy-pass batch size, the latency protocol, the parity tolerance and the energy
    protocol (used on targets with a power sensor: idle baseline, then ``energy_windows`` windows of at least
    ``energy_min_window_s`` seconds; MLPerf Tiny uses >= 10 s windows and the median of 5). The latency and
    energy defaults are the agent's protocols' (:class:`~edgebench.agent.protocol.LatencyProtocol`,
    :class:`~edgebench.agent.protocol.EnergyProtocol`): one source of truth. ``rounds`` > 1: every variant of a
    (non-fleet) target is timed in one latency job, in interleaved rounds with ``cooldown_s`` and a settle wait of
    at most ``settle_s`` for the temperature to come back within ``settle_c`` °C (:mod:`edgebench.agent.rounds`)."""

    batch_size: int = 128
    warmup: int = LatencyProtocol.warmup
    min_runs: int = LatencyProtocol.min_runs
    min_duration_s: float = LatencyProtocol.min_duration_s
    max_runs: int = LatencyProtocol.max_runs
    rounds: int = LatencyProtocol.rounds
    cooldown_s: float = LatencyProtocol.cooldown_s
    settle_s: float = LatencyProtocol.settle_s
    settle_c: float = LatencyProtocol.settle_c
    parity_atol: float = 1e-4
    parity_n: int = 256
    energy_idle_s: float = EnergyProtocol.idle_s
    energy_min_window_s: float = EnergyProtocol.min_window_s
    energy_windows: int = EnergyProtocol.windows
    energy_min_samples: int = EnergyProtocol.min_samples
    profile_runs: int = Job.profile_runs


@dataclass(frozen=True)
class ReferenceSpec:
    """``[[reference]]``: a number from a paper that the plan reproduces, put beside edgebench's own in the
    report (figure by figure). ``metric`` is ``clean_acc``, ``robust_acc`` or ``asr`` (a fraction in [0, 1]),
    read from the result row of ``model``/``variant`` under ``attack`` at ``eps`` (``source``: the crafting
    model, default the white-box one). ``note`` says how the paper's setting differs, where it does.
    ``variants`` with ``aggregate = "mean"``: the paper's number is an average over several variants (seed 000,
    Fig. 10a: the mean HFGSM success over the HashNets); ``variant`` is then empty."""

    figure: str
    metric: str
    value: float
    model: str
    variant: str = "base"
    attack: str = "none"
    eps: float = 0.0
    source: str = ""
    note: str = ""
    variants: tuple[str, ...] = ()
    aggregate: str = ""


@dataclass(frozen=True)
class GatesSpec:
    """``[gates]``: limits a CI job holds each variant to (checked by :mod:`edgebench.report.gates`; ``edgebench
    run`` exits 3 after writing the report when one is broken). Every limit is optional:

    - ``max_clean_drop``: base clean accuracy minus the variant's, on the same target and backend (a fraction);
    - ``min_clean_acc``; ``min_robust_acc``: per attack label, the least robust accuracy at the middle ε of that
      attack's grid (the report's headline budget), or ``{ eps = E, acc = A }`` for an ε of the grid;
    - ``max_p50_ms``, ``max_p99_ms``, ``max_energy_mj`` (per inference, valid windows only), ``max_peak_rss_mb``
      (peak resident memory of the agent over its baseline) on every target and backend;
    - ``max_size_mb``: the ONNX artifact's size in MB (10⁶ bytes); ``max_stored_mb``: the true stored size (packed
      codebook indices, codebook and sparse index, DEFLATE'd: :mod:`edgebench.compress.storage`).

    ``units``: ``variants`` (default: the compressed and defended variants, the base is what they are measured
    against) or ``all`` (the base too). A gate whose figure was not measured fails with *not measured*: a CI
    gate never passes by default."""

    max_clean_drop: float | None = None
    min_clean_acc: float | None = None
    min_robust_acc: dict[str, dict[str, float]] = field(default_factory=dict)
    max_p50_ms: float | None = None
    max_p99_ms: float | None = None
    max_energy_mj: float | None = None
    max_peak_rss_mb: float | None = None
    max_size_mb: float | None = None
    max_stored_mb: float | None = None
    units: str = "variants"

    def any(self) -> bool:
        return any(v not in (None, {}) for k, v in asdict(self).items() if k != "units")


@dataclass(frozen=True)
class HostSpec:
    """``[host]``: the compute device of the host stages (``auto``, ``cpu``, ``cuda``, ``cuda:N``;
    :mod:`edgebench.hostdevice`) and how many GPU stages the local pool runs at once per GPU. ``origin`` names
    where ``device`` came from (the plan key, or ``--device``) for the one-line refusal. None of it changes a
    result: it is out of the plan's digest and of every cache key."""

    device: str = "auto"
    gpu_workers: int = 1
    origin: str = ""


@dataclass(frozen=True)
class Plan:
    """A whole experiment: data × models × attacks × targets, plus the measurement protocol."""

    name: str
    source: str
    seed: int = 0
    data: DataSpec = DataSpec()
    models: tuple[ModelSpec, ...] = ()
    compress: tuple[CompressSpec, ...] = ()
    export: ExportSpec = ExportSpec()
    attacks: tuple[AttackSpec, ...] = ()
    targets: tuple[TargetSpec, ...] = ()
    measure: MeasureSpec = MeasureSpec()
    quick: dict[str, Any] = field(default_factory=dict)
    references: tuple[ReferenceSpec, ...] = ()
    gates: GatesSpec = GatesSpec()
    host: HostSpec = HostSpec()
    #: the training seeds where there are several (``[plan] seeds``; the first is ``seed``); ``()``: ``seed`` alone
    seeds: tuple[int, ...] = ()

    @property
    def all_seeds(self) -> tuple[int, ...]:
        """Every training seed of the plan (``(seed,)`` for a one-seed plan)."""
        return self.seeds or (self.seed,)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source")
        if not d["seeds"]:  # a one-seed plan resolves (and hashes, and resumes) as before ``seeds`` existed
            d.pop("seeds")
        for t in d["targets"]:  # a plan without fleets resolves (and hashes, and resumes) as before fleets existed
            if not t["fleet"]:
                t.pop("fleet")
        for a in d["attacks"]:  # keys added later resolve (and hash) as before where left at their default
            if a["suite"]:
                a.pop("suite")
            for k in ("family", "holdout"):  # likewise an attack without a family
                if not a[k]:
                    a.pop(k)
        for entry in (*d["models"], *d["compress"]):
            if not entry["bpda"]:
                entry.pop("bpda")
            if not entry.get("io", True):  # a model entry without an ONNX boundary
                entry.pop("io")
            if not entry.get("substitute", True):  # likewise a model trained on labels, not as a substitute
                entry.pop("substitute")
        for r in d["references"]:  # likewise a reference to one variant, as every reference was before ``variants``
            if not r["variants"]:
                r.pop("variants")
                r.pop("aggregate")
        d["host"].pop("origin")
        if d["host"] == {"device": "auto", "gpu_workers": 1}:  # likewise a plan at [host]'s defaults
            d.pop("host")
        for a in d["attacks"]:  # likewise an attack crafted on the host, as every attack was before ``where``
            if a["where"] == "host":
                a.pop("where")
            if a["craft_label"] == "true":  # likewise an attack crafted against the true labels
                a.pop("craft_label")
        return d

    def digest(self) -> str:
        """Content hash of the resolved plan (not of the file's text: formatting does not matter; nor of the
        paper numbers it is compared with, nor of the gates, which change no measurement, nor of ``[host]``)."""
        return plan_digest(self.as_dict())


def plan_digest(resolved: dict[str, Any], *, seeds: bool = True) -> str:
    """:meth:`Plan.digest` of a resolved plan (:meth:`Plan.as_dict`, or the copy a run's store keeps): without the
    paper numbers, the gates and ``[host]`` (any host device computes the same results); with ``seeds=False`` the
    training seeds are left out too, so runs of one plan with different ``--seeds`` share it
    (:mod:`edgebench.report.results_merge`)."""
    d = dict(resolved)
    for key in ("references", "gates", "host") + (() if seeds else ("seed", "seeds")):
        d.pop(key, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()
