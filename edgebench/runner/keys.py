"""Content keys of the host stages' outputs, one helper per kind, shared by the run and the dry run.

A key is the hash of everything a stage's output depends on (inputs, parameters, seed, and the code that
computes it: :func:`~edgebench.runner.cache.code_fingerprint`), so a changed input or changed code never serves
a stale entry. :func:`cache_status` says, without computing anything, whether a stage's outputs are cached.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from edgebench.agent.protocol import sha256_file
from edgebench.config import AttackSpec, CompressSpec, ModelSpec, Plan
from edgebench.runner.cache import code_fingerprint, content_key
from edgebench.runner.context import RunContext
from edgebench.runner.family import family_key, source_by_id
from edgebench.runner.units import BACKEND_FORMATS, Built, Unit, parse_unit


def model_spec(plan: Plan, spec: ModelSpec, data_fingerprint: str, oracle_key: str | None = None) -> dict[str, Any]:
    """Everything a trained base model depends on (its cache key is the hash of this). A substitute's
    (:mod:`edgebench.models.substitute`) adds its table, the export key ``oracle_key`` of the unit it queries, the
    runtime that answers and the code that trains it; any other model's is what it was before substitutes."""
    from edgebench.models.train import TrainConfig

    ckpt = Path(spec.checkpoint) if spec.checkpoint else None
    out = {"arch": spec.arch, "factory": spec.factory, "params": spec.params,
           "train": vars(TrainConfig(seed=plan.seed, **spec.train)), "data": data_fingerprint,
           "checkpoint": sha256_file(ckpt) if ckpt and ckpt.is_file() else None,
           "code": code_fingerprint("edgebench.models.train", "edgebench.models.zoo",
                                    "edgebench.models.cifar")}
    if spec.substitute:
        from edgebench.models.substitute import ORACLE_BACKEND
        from edgebench.runtime import BACKENDS

        out["substitute"] = {**spec.substitute, "oracle_key": oracle_key, "backend": ORACLE_BACKEND,
                             "runtime": runtime_version(ORACLE_BACKEND),
                             "code": code_fingerprint("edgebench.models.substitute", BACKENDS.get(ORACLE_BACKEND))}
    return out


def model_key(plan: Plan, spec: ModelSpec, data_fingerprint: str, oracle_key: str | None = None) -> str:
    return content_key("model", model_spec(plan, spec, data_fingerprint, oracle_key))


def oracle_unit(spec: ModelSpec) -> Unit | None:
    """The unit a substitute model queries (None for a model trained on labels)."""
    return parse_unit(spec.substitute["oracle"]) if spec.substitute else None


def onnx_import_key(sha256: str, data_fingerprint: str, io: dict[str, Any] | None = None) -> str:
    """An imported ONNX file's entry: the file's hash, the data it was checked against, the model entry's boundary
    keys ``io`` and the code that reads and converts them."""
    return content_key("onnx-import", {"sha256": sha256, "data": data_fingerprint, "io": io or {},
                                       "code": code_fingerprint("edgebench.export.onnx_io",
                                                                "edgebench.runtime.boundary")})


def testset_key(data_fingerprint: str) -> str:
    return content_key("testset", {"data": data_fingerprint})


def export_key(plan: Plan, model_key: str, atol: float) -> str:
    """The artifacts (ONNX, OpenVINO IR) of the model or variant whose own key is ``model_key``."""
    from edgebench.export.onnx import OPSET

    m, ex = plan.measure, plan.export
    return content_key("export", {"model": model_key, "opset": OPSET, "parity_n": m.parity_n, "atol": atol,
                                  "openvino": ex.openvino, "fp16": ex.fp16,
                                  "code": code_fingerprint("edgebench.export.onnx", "edgebench.export.openvino",
                                                          "edgebench.export.fp16", "edgebench.export.qdq")})


def variant_key(plan: Plan, c: CompressSpec, parent_key: str) -> str:
    """The cache key of variant ``c`` applied to the model whose (export) key is ``parent_key``."""
    from edgebench.variants import method_for

    cls = method_for(c.kind, c.method)
    return content_key("variant", {"base": parent_key, "method": c.method, "params": c.params, "seed": plan.seed,
                                   "kind": c.kind,
                                   "code": code_fingerprint(cls)})


def attack_n(attack: AttackSpec, n_test: int) -> int:
    """How many test samples ``attack`` is run on."""
    return min(attack.n or n_test, n_test)


def bpda_on(plan: Plan, unit: Unit) -> bool:
    """Whether attacks crafted on ``unit``'s twin go through BPDA (``bpda = true`` on its variant, or on its model
    for the base)."""
    if unit.variant == "base":
        return any(m.bpda for m in plan.models if m.name == unit.model)
    return any(c.bpda for c in plan.compress if (c.model, c.variant) == (unit.model, unit.variant))


def seed_default(attack: AttackSpec) -> Any:
    """The default of ``attack``'s ``seed`` parameter where its plan entry leaves it out (the plan's seed fills
    it); None where the class takes no seed or the entry gives one."""
    import inspect

    from edgebench.attacks import ATTACKS

    param = inspect.signature(ATTACKS.get(attack.name).__init__).parameters.get("seed")
    return None if param is None or "seed" in attack.params else param.default


def seeded_params(plan: Plan, attack: AttackSpec) -> dict[str, Any]:
    """The attack's parameters, with the plan's seed where the attack takes a ``seed`` the plan entry left out: a
    training seed reaches the attack's own generator (random starts, noise, queries)."""
    return {**attack.params, "seed": plan.seed} if seed_default(attack) is not None else dict(attack.params)


def adv_key(plan: Plan, source_key: str, attack: AttackSpec, *, n_test: int, data_fingerprint: str,
            bpda: bool = False) -> str:
    """The cache key of ``attack``'s examples crafted on the model whose (export) key is ``source_key`` (``bpda``:
    through :func:`edgebench.attacks.bpda.bpda`, whose code then joins the key)."""
    from edgebench.attacks import ATTACKS

    cls = ATTACKS.get(attack.name)
    code = code_fingerprint(cls)
    spec = {"model": source_key, "attack": attack.name, "params": attack.params,
            "eps": attack.eps, "n": attack_n(attack, n_test), "data": data_fingerprint,
            "code": code, "targeted": attack.targeted, "round_8bit": attack.round_8bit,
            "seed": plan.seed}
    if bpda:  # only then: the keys of every other set stay as they were
        spec["bpda"] = code_fingerprint("edgebench.attacks.bpda")
    if seed_default(attack) not in (None, plan.seed):  # the attack's generator takes the plan's seed (seeded_params);
        spec["attack_seed"] = plan.seed  # at the attack's default seed, the set and its key are the ones of before
    if attack.craft_label != "true":  # likewise
        spec["craft_label"] = attack.craft_label
    return content_key("adv", spec)


def query_adv_key(plan: Plan, source_key: str, sha256: str, backend: str, attack: AttackSpec, *, n_test: int,
                  data_fingerprint: str) -> str:
    """The cache key of query attack ``attack``'s examples crafted on the host through a ``backend`` session of the
    artifact with SHA-256 ``sha256`` (of the unit whose key is ``source_key``): the attack's code, the
    runtime's code and version, and the pass both sides share (:mod:`edgebench.agent.attack`)."""
    from edgebench.attacks import ATTACKS
    from edgebench.blackbox import QUERY_ATTACKS
    from edgebench.runtime import BACKENDS

    code = code_fingerprint(ATTACKS.get(attack.name), QUERY_ATTACKS.get(attack.name), BACKENDS.get(backend),
                            "edgebench.agent.attack")
    return content_key("adv", {"model": source_key, "artifact": sha256, "backend": backend,
                               "runtime": runtime_version(backend), "attack": attack.name,
                               "params": attack.params, "eps": attack.eps, "n": attack_n(attack, n_test),
                               "data": data_fingerprint, "code": code, "targeted": attack.targeted,
                               "round_8bit": attack.round_8bit, "seed": plan.seed})


@functools.cache
def runtime_version(backend: str) -> str:
    """The version of the runtime behind ``backend`` on this host (its scores, and so a query attack's path,
    may change with it)."""
    from edgebench.runtime import create_backend

    return str(create_backend(backend).info().get("runtime_version", ""))


def query_key(ctx: RunContext, built: Built, backend: str, attack: AttackSpec) -> str:
    """:func:`query_adv_key` of the artifact that ``backend`` runs of the built unit ``built``."""
    fmt, _ = built.artifact_for(backend)
    return query_adv_key(ctx.plan, built.key, built.cards[fmt]["sha256"], backend, attack,
                         n_test=len(ctx.ds.x_test), data_fingerprint=ctx.ds.fingerprint())


def _stored_sha256(ctx: RunContext, unit: Unit, key: str, backend: str) -> str | None:
    """The SHA-256 of the artifact ``backend`` runs of ``unit`` (built under ``key``), from the cards in its cache
    entry (the dry run has no :class:`Built`); None when the entry is not there."""
    entry = ctx.cache.path("onnx" if ctx.spec(unit.model).onnx else "export", key)
    cards = {}
    for p in entry.glob("*.card.json"):
        card = json.loads(p.read_text())
        cards[card.get("format")] = card
    fmt = next((f for f in BACKEND_FORMATS.get(backend, ("onnx",)) if f in cards), None)
    return None if fmt is None else cards[fmt].get("sha256")


def cache_status(ctx: RunContext, name: str, keys: dict[Unit, str | None]) -> tuple[str, str | None]:
    """Whether host stage ``name``'s outputs are all in the cache (``cached``), not (``run``), or cannot be known
    before an input is computed (``unknown``), given the export keys of the units built before it; and its key.
    A model or variant stage adds its unit's export key to ``keys`` where it can be known. Reads manifests only:
    files are not re-hashed here (a run does, and rebuilds a corrupted entry)."""
    plan, cache = ctx.plan, ctx.cache

    def cached(kind: str, key: str) -> bool:
        return cache.signed(kind, key)

    kind, _, rest = name.partition("/")
    if kind == "data":
        return "always", None
    fingerprint = ctx.ds.fingerprint()
    if name == "testset/clean":
        key = testset_key(fingerprint)
        return ("cached" if cached("testset", key) else "run"), key
    if kind == "model":
        spec = ctx.spec(rest)
        if spec.onnx:
            src = Path(spec.onnx)
            key = onnx_import_key(sha256_file(src), fingerprint, spec.io) if src.is_file() else None
            keys[Unit(rest)] = key
            return ("cached" if key and cached("onnx", key) else "run"), key
        oracle = oracle_unit(spec)
        oracle_key = None if oracle is None else keys.get(oracle)
        if oracle is not None and oracle_key is None:
            keys[Unit(rest)] = None
            return "unknown", None
        mkey = model_key(plan, spec, fingerprint, oracle_key)
        key = keys[Unit(rest)] = export_key(plan, mkey, plan.measure.parity_atol)
        return ("cached" if cached("model", mkey) and cached("export", key) else "run"), key
    if kind == "compress":
        unit = Unit(*rest.split("/", 1))
        vkey = _known_variant_key(ctx, unit, keys)
        keys[unit] = None
        if vkey is None:
            return "unknown", None
        meta = cache.path("variant", vkey) / "variant.json"
        if not (cached("variant", vkey) and meta.is_file()):
            return "run", None
        atol = json.loads(meta.read_text()).get("parity_atol")
        key = keys[unit] = export_key(plan, vkey, plan.measure.parity_atol if atol is None else atol)
        return ("cached" if cached("export", key) else "run"), key
    if kind == "craft":
        src_id, _, label = rest.rpartition("/")
        if label not in {a.label for a in plan.attacks}:  # a query attack's, for one backend (units.query_stage)
            label, _, backend = label.rpartition("@")
            source_key = keys.get(parse_unit(src_id))
            sha = None if source_key is None else _stored_sha256(ctx, parse_unit(src_id), source_key, backend)
            if sha is None:  # its key needs the file's hash
                return "unknown", None
            key = query_adv_key(plan, source_key, sha, backend, next(a for a in plan.attacks if a.label == label),
                                n_test=len(ctx.ds.x_test), data_fingerprint=fingerprint)
            return ("cached" if cached("adv", key) else "run"), key
        attack = next(a for a in plan.attacks if a.label == label)
        fam = source_by_id(plan, attack, src_id)
        member_keys = [keys.get(u) for u in fam.units] if fam else []
        source_key = (family_key(member_keys) if None not in member_keys else None) if fam else \
            keys.get(parse_unit(src_id))
        if source_key is None:
            return "unknown", None
        units = fam.units if fam else (parse_unit(src_id),)
        key = adv_key(plan, source_key, attack, n_test=len(ctx.ds.x_test), data_fingerprint=fingerprint,
                      bpda=any(bpda_on(plan, u) for u in units))
        return ("cached" if cached("adv", key) else "run"), key
    return "run", None


def _known_variant_key(ctx: RunContext, unit: Unit, keys: dict[Unit, str | None]) -> str | None:
    """The cache key of variant ``unit``, or None while the key of the model it is applied on is not known."""
    c = next(c for c in ctx.plan.compress if Unit(c.model, c.variant) == unit)
    parent = keys.get(Unit(c.model, c.on))
    return None if parent is None else variant_key(ctx.plan, c, parent)


def variant_workdir(ctx: RunContext, vkey: str) -> Path:
    """Where the build of variant ``vkey`` keeps what survives an interruption (per-epoch checkpoints)."""
    return ctx.cache.root / "work" / vkey


def resume_point(ctx: RunContext, name: str, keys: dict[Unit, str | None]) -> str | None:
    """Where variant stage ``name``, if it must run, resumes: the newest checkpoint an interrupted build left in its
    :func:`variant_workdir` (adversarial training writes one per epoch), as ``folder/file``; None when it starts
    afresh or its key is not known yet. The key holds the method's code, so only a build by the same code is found.
    ``keys``: the export keys known so far, as :func:`cache_status` keeps them."""
    kind, _, rest = name.partition("/")
    vkey = _known_variant_key(ctx, Unit(*rest.split("/", 1)), keys) if kind == "compress" else None
    if vkey is None:
        return None
    files = sorted(p for p in variant_workdir(ctx, vkey).glob("*/*") if p.is_file() and p.suffix != ".tmp")
    return f"{files[-1].parent.name}/{files[-1].name}" if files else None
