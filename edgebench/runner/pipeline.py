"""The pipeline of DESIGN.md for one plan: data -> models -> export + parity -> clean and adversarial
test sets -> device jobs -> scores -> store -> report.

Host stages are pure functions of their inputs, cached by content hash (:mod:`edgebench.runner.cache`);
device jobs are recorded in the run's store with the hash of everything they ran, so re-running the same
plan (same run id) skips finished work, and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgebench import __version__
from edgebench.agent.job import EnergyProtocol, Job, LatencyProtocol, TestSet, sha256_file
from edgebench.config import AttackSpec, CompressSpec, ModelSpec, Plan, TargetSpec
from edgebench.data import Dataset, load_dataset
from edgebench.errors import ArtifactError, ConfigError, DataError, EdgebenchError
from edgebench.runner.cache import Cache, code_fingerprint, content_key
from edgebench.runner.progress import Progress
from edgebench.runner.stages import Deferred, Needs, Outcome, Stage, execute
from edgebench.store import Store

log = logging.getLogger("edgebench")

BASE = "base"  # the variant name of an uncompressed model

HOST_KINDS = ("model", "compress", "craft")  # the stages a worker computes
MIN_POOL_STAGES = 4  # with --workers auto, fewer host stages to compute than this run in the scheduler's process

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


@dataclass
class DeviceRun:
    name: str
    outputs: Path  # the folder holding result.json and the raw output files it lists
    result: dict[str, Any]
    testsets: list[dict[str, Any]]
    note: str = ""
    cached: bool = False  #: measured earlier in this run, not again


@dataclass
class RunSummary:
    """What :func:`run_plan` returns."""

    run_id: str
    run_dir: Path
    records: list[dict[str, Any]]
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _parse_unit(text: str) -> Unit:
    model, _, variant = text.partition("/")
    return Unit(model, variant or BASE)


def slug(text: str) -> str:
    """A file-name-safe form of a stage or model name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def default_run_id(plan: Plan) -> str:
    return f"{slug(plan.name)}-{plan.digest()[:10]}"


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


class Pipeline:
    """Expands a plan into stages and runs them."""

    def __init__(self, plan: Plan, *, out_dir: Path, run_id: str | None = None, cache: Cache | None = None,
                 executor: Any = None) -> None:
        self.plan = plan
        self.executor = executor  # who computes host stages (None: this process, one at a time)
        self._entries: dict[str, list[tuple[str, str, bool]]] = {}  # cache entries each host stage used or made
        self._data_key: str | None = None
        self.run_id = run_id or default_run_id(plan)
        if slug(self.run_id) != self.run_id:
            raise ConfigError(f"run id {self.run_id!r}: use letters, digits, '.', '_' and '-' only")
        self.run_dir = Path(out_dir) / self.run_id
        self.cache = cache or Cache()
        self.data: Dataset | None = None
        self.outcome = Outcome()
        self._transports: dict[str, Any] = {}

    # ---------------------------------------------------------------------------------------------
    def units(self) -> list[Unit]:
        """Every deployable model of the plan: each model's base, then its compressed variants."""
        out = [Unit(m.name) for m in self.plan.models]
        return out + [Unit(c.model, c.variant) for c in self.plan.compress]

    def source_of(self, unit: Unit) -> Unit:
        """Whose adversarial examples ``unit`` is evaluated on: a variant's own twin (white-box,
        compression-aware), a base model's ``attack_source`` (itself unless a surrogate is named)."""
        if unit.variant != BASE:
            return unit
        return Unit(self._spec(unit.model).source)

    def _spec(self, model: str) -> ModelSpec:
        return next(m for m in self.plan.models if m.name == model)

    def torch_units(self) -> list[Unit]:
        """The units with a torch twin: the ones that can craft white-box examples."""
        return [u for u in self.units() if not self._spec(u.model).onnx]

    def sources_for(self, unit: Unit, attack: AttackSpec) -> list[Unit]:
        """The models whose ``attack`` examples ``unit`` is evaluated on, per the attack's threat models:
        white-box (:meth:`source_of`), transfer (the surrogate, by default the victim's base or its
        ``attack_source``) and matrix (every torch unit). The first is the white-box one when asked. None
        when ``unit`` is not among the attack's ``victims``."""
        out: list[Unit] = []
        if not attack.attacks_variant(unit.variant):
            return out
        if "white-box" in attack.threat or "matrix" in attack.threat:
            out.append(self.source_of(unit))
        if "transfer" in attack.threat:
            out.append(_parse_unit(attack.surrogate) if attack.surrogate else self.source_of(Unit(unit.model)))
        if "matrix" in attack.threat:
            out.extend(self.torch_units())
        return list(dict.fromkeys(out))

    def stages(self) -> list[Stage]:
        """The plan's stage graph, dependencies first (see :mod:`edgebench.runner.stages` for the kinds)."""
        plan = self.plan
        st: list[Stage] = [Stage("data", self._data, describe=f"load {plan.data.dataset}")]
        for m in plan.models:
            st.append(self._host_stage(f"model/{m.name}", lambda m=m: self._model(m), ("data",)))
        for c in plan.compress:
            st.append(self._host_stage(Unit(c.model, c.variant).stage, lambda c=c: self._compress(c),
                                       (Unit(c.model, c.on).stage,)))
        st.append(Stage("testset/clean", self._clean_set, ("data",)))
        units = self.units()
        for a in plan.attacks:
            for src in dict.fromkeys(s for u in units for s in self.sources_for(u, a)):
                st.append(self._host_stage(f"craft/{src.id}/{a.label}", lambda s=src, a=a: self._craft(s, a),
                                           (src.stage,)))
        for t in plan.targets:
            devices = [self._device_of(m) for m in t.fleet or (t.target,)]
            for b in t.backends:
                for u in units:
                    crafts = (f"craft/{s.id}/{a.label}" for a in plan.attacks for s in self.sources_for(u, a))
                    deps = (u.stage, "testset/clean", *dict.fromkeys(crafts))
                    name = f"device/{t.target}/{b}/{u.id}"
                    if not t.fleet:
                        (device, exclusive), = devices
                        st.append(Stage(name, lambda t=t, b=b, u=u: self._device(t, b, u), deps, kind="device",
                                        device=device, exclusive=exclusive))
                        continue
                    # a fleet: one shard of every test set per member device, then the shards' outputs merged
                    k = len(t.fleet)
                    for i, (member, (device, exclusive)) in enumerate(zip(t.fleet, devices)):
                        shard = (i, k, member)
                        st.append(Stage(_shard_stage(name, i, k),
                                        lambda t=t, b=b, u=u, shard=shard: self._device(t, b, u, shard=shard),
                                        deps, kind="device", device=device, exclusive=exclusive))
                    st.append(Stage(name, lambda t=t, b=b, u=u: self._merge_fleet(t, b, u),
                                    tuple(_shard_stage(name, i, k) for i in range(k))))
        return st

    def _host_stage(self, name: str, fn: Any, deps: tuple[str, ...]) -> Stage:
        """A host stage: ``fn`` computes (or loads) it here, noting the cache entries it used and made; ``task``
        is what a worker computes instead; ``cached`` tells whether ``fn`` would only load."""
        def run() -> Any:
            with self.cache.recording() as used:
                value = fn()
            self._entries[name] = used
            return value

        return Stage(name, run, deps, kind="host", task=lambda: self._task(name),
                     cached=lambda: self._cache_status(name, self._known_keys())[0] == "cached")

    def _device_of(self, target: str) -> tuple[str, bool]:
        """The physical device of target ``target`` and whether it is this host (its jobs never overlap host
        work). A target that does not load fails its own stages later, with the reason."""
        from edgebench.errors import EdgebenchError
        from edgebench.targets import load_target

        try:
            t = load_target(target)
        except EdgebenchError:
            return f"unknown:{target}", False
        return t.device, t.transport == "local"

    def _task(self, name: str) -> tuple[Any, Needs]:
        """The worker's task for host stage ``name``: the plan, the stage, and the cache entries the stages it
        depends on used or made (for workers that do not share this cache)."""
        from edgebench.runner.worker import HostTask

        index = {s.name: s for s in self._stage_list()}
        closure: list[str] = []
        todo = list(index[name].deps)
        while todo:
            d = todo.pop()
            if d not in closure:
                closure.append(d)
                todo.extend(index[d].deps)
        data = self._data_entry()
        inputs = tuple(dict.fromkeys([("dataset", data, None)] + [(kind, key, None) for d in closure
                                                                  for kind, key, _ in self._entries.get(d, ())]))
        return (HostTask(plan=self.plan, stage=name, cache_root=str(self.cache.root), inputs=inputs, data=data),
                self.needs())

    def _data_entry(self) -> str:
        """The loaded data set (after its subset) as a cache entry of ``.npy`` arrays, made once per run, that
        workers map instead of loading the source again: no scikit-learn import, no IDX parsing, no data files
        needed on a Ray node, and the pages of one machine's workers are shared."""
        if self._data_key is None:
            ds = self.ds
            key = content_key("dataset", {"fingerprint": ds.fingerprint()})
            if not (self.cache.path("dataset", key) / "manifest.json").is_file():
                with self.cache.build("dataset", key) as tmp:
                    for part in ("x_train", "y_train", "x_test", "y_test"):
                        np.save(tmp / f"{part}.npy", np.ascontiguousarray(getattr(ds, part)))
                    (tmp / "dataset.json").write_text(json.dumps({"name": ds.name, "classes": list(ds.classes),
                                                                  "fingerprint": ds.fingerprint()}))
            self._data_key = key
        return self._data_key

    def use_data_entry(self, key: str) -> bool:
        """Take the data set from cache entry ``key`` (see :meth:`_data_entry`), mapped copy-on-write; False when
        this cache does not hold it intact (the data stage then loads the source)."""
        if self.data is not None:
            return True
        entry = self.cache.get("dataset", key)
        if entry is None:
            return False
        meta = json.loads((entry / "dataset.json").read_text())
        arrays = {part: np.load(entry / f"{part}.npy", mmap_mode="c", allow_pickle=False)
                  for part in ("x_train", "y_train", "x_test", "y_test")}
        self.data = Dataset(name=meta["name"], classes=tuple(meta["classes"]), **arrays)
        if self.data.fingerprint() != meta["fingerprint"]:  # the arrays are hashed again: a key needs them anyway
            self.data = None
            return False
        return True

    def needs(self) -> Needs:
        """What one host stage asks of a worker: a core, and an estimate of its memory (a worker's base, plus the
        data set a few times over: training copies and batches it)."""
        from edgebench.runner.executors.local import BASE_MB

        data = (self.ds.x_train.nbytes + self.ds.x_test.nbytes) if self.data is not None else 0
        return Needs(cpus=1.0, gpus=0.0, memory_mb=BASE_MB + int(6 * data / 2**20))

    def _stage_list(self) -> list[Stage]:
        if getattr(self, "_stages", None) is None:
            self._stages = self.stages()
        return self._stages

    def compute(self, name: str) -> Any:
        """The value of stage ``name``, computing (from the cache where it can) the stages it needs first, in
        this process: what a worker does for one host stage."""
        index = {s.name: s for s in self._stage_list()}

        def ensure(n: str) -> Any:
            if n not in self.outcome.values:
                stage = index[n]
                for d in stage.deps:
                    ensure(d)
                self.outcome.values[n] = stage.fn()
            return self.outcome.values[n]

        return ensure(name)

    def _known_keys(self) -> dict[Unit, str | None]:
        """The export key of every unit built so far."""
        return {v.unit: v.key for v in self.outcome.values.values() if isinstance(v, Built)}

    def dry_run(self) -> list[dict[str, Any]]:
        """What :meth:`run` would do, stage by stage, without doing it (``edgebench run --dry-run``): each stage
        with its dependencies and ``status``: ``cached`` (its outputs are in the content-addressed cache),
        ``measured`` (a device job this run already finished), ``run`` (to compute), ``unknown`` (its key depends
        on an output that must be computed first: it may still turn out cached) or ``always`` (loading the
        data). Loads the data set (the keys hash it) and reads cache manifests, nothing else; files are not
        re-hashed here (a run does, and rebuilds a corrupted entry)."""
        if self.data is None:
            self._data()
        done: dict[str, str] = {}
        db = self.run_dir / "results.sqlite"
        if db.is_file():
            with Store.open(db, create=False) as store:
                done = {s["stage"]: s["status"] for s in store.stages(self.run_id)}
        keys: dict[Unit, str | None] = {}  # each unit's Built.key (its export key), where it can be known
        rows = []
        for stage in self._stage_list():
            kind = stage.name.partition("/")[0]
            if kind == "device":
                status, key = ("measured" if done.get(stage.name) == "done" else "run"), None
            else:
                status, key = self._cache_status(stage.name, keys)
            rows.append({"stage": stage.name, "kind": kind, "deps": list(stage.deps), "status": status, "key": key})
        return rows

    def _cache_status(self, name: str, keys: dict[Unit, str | None]) -> tuple[str, str | None]:
        """Whether host stage ``name``'s outputs are all in the cache (``cached``), not (``run``), or cannot be
        known before an input is computed (``unknown``), given the export keys of the units built before it;
        and its key. A model or variant stage adds its unit's export key to ``keys`` where it can be known."""
        def cached(kind: str, key: str) -> bool:
            return (self.cache.path(kind, key) / "manifest.json").is_file()

        kind, _, rest = name.partition("/")
        if kind == "data":
            return "always", None
        if name == "testset/clean":
            key = content_key("testset", {"data": self.ds.fingerprint()})
            return ("cached" if cached("testset", key) else "run"), key
        if kind == "model":
            spec = self._spec(rest)
            if spec.onnx:
                src = Path(spec.onnx)
                key = content_key("onnx-import", {"sha256": sha256_file(src), "data": self.ds.fingerprint()}) \
                    if src.is_file() else None
                keys[Unit(rest)] = key
                return ("cached" if key and cached("onnx", key) else "run"), key
            mkey = content_key("model", self._model_spec(spec))
            key = keys[Unit(rest)] = self._export_key(mkey, self.plan.measure.parity_atol)
            return ("cached" if cached("model", mkey) and cached("export", key) else "run"), key
        if kind == "compress":
            unit = Unit(*rest.split("/", 1))
            c = next(c for c in self.plan.compress if Unit(c.model, c.variant) == unit)
            parent = keys.get(Unit(c.model, c.on))
            keys[unit] = None
            if parent is None:
                return "unknown", None
            vkey = self._variant_key(c, parent)
            meta = self.cache.path("variant", vkey) / "variant.json"
            if not (cached("variant", vkey) and meta.is_file()):
                return "run", None
            atol = json.loads(meta.read_text()).get("parity_atol")
            key = keys[unit] = self._export_key(vkey, self.plan.measure.parity_atol if atol is None else atol)
            return ("cached" if cached("export", key) else "run"), key
        if kind == "craft":
            src_id, _, label = rest.rpartition("/")
            source_key = keys.get(_parse_unit(src_id))
            if source_key is None:
                return "unknown", None
            key = self._adv_key(source_key, next(a for a in self.plan.attacks if a.label == label))
            return ("cached" if cached("adv", key) else "run"), key
        return "run", None

    def run(self) -> RunSummary:
        t0 = time.perf_counter()
        if self.plan.export.openvino or self.plan.compress:  # before NNCF or the converter send anything
            from edgebench.export.openvino import disable_openvino_telemetry

            disable_openvino_telemetry()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "plan.json").write_text(json.dumps(self.plan.as_dict(), indent=1, default=str))
        with Store.open(self.run_dir / "results.sqlite") as store:
            self.store = store
            store.begin_run(self.run_id, plan_name=self.plan.name, plan_hash=self.plan.digest(),
                            plan=self.plan.as_dict(), version=__version__)
            status = "interrupted"
            try:
                self._fit_executor()
                if self.executor is not None:
                    log.info("executor: %s", self.executor.describe())
                try:
                    execute(self._stage_list(), on_status=self._record_stage, outcome=self.outcome,
                            progress=Progress(), executor=self.executor)
                finally:
                    if self.executor is not None:
                        self.executor.shutdown()
                records, min_eps, flags, samples = self._score()
                store.put_results(self.run_id, records)
                store.put_samples(self.run_id, samples)
                store.put_min_eps(self.run_id, min_eps)
                store.put_flags(self.run_id, flags)
                status = "failed" if self.outcome.failed else "done"
            finally:
                store.finish_run(self.run_id, status)
                for transport in self._transports.values():
                    transport.close()
            from edgebench.report.render import write_report

            write_report(store, self.run_id, self.run_dir)
        return RunSummary(self.run_id, self.run_dir, records, dict(self.outcome.failed), dict(self.outcome.skipped),
                          time.perf_counter() - t0)

    def _fit_executor(self) -> None:
        """With ``--workers auto`` on the local executor, compute in this process when there is too little to
        compute for a pool's start-up (a few seconds per worker: importing torch) to pay off."""
        if not getattr(self.executor, "auto", False):
            return
        from edgebench.runner.executors import InlineExecutor

        try:
            todo = sum(r["status"] in ("run", "unknown") for r in self.dry_run() if r["kind"] in HOST_KINDS)
        except EdgebenchError:  # the data does not load: its stage fails with that line, and is recorded
            return
        if todo < MIN_POOL_STAGES:
            log.info("executor: %d host stage(s) to compute; computing them in this process (fewer than %d: a "
                     "worker pool's start-up would cost more than it saves)", todo, MIN_POOL_STAGES)
            self.executor = InlineExecutor()

    def _record_stage(self, name: str, status: str, note: str, seconds: float) -> None:
        if name.startswith("device/") and status == "done":
            return  # recorded with its key by the stage itself
        prev = self.store.stage(self.run_id, name)
        key = prev["key"] if prev else ""
        info: dict[str, Any] = {"note": note, "seconds": seconds}
        worker = getattr(self.outcome.values.get(name), "worker", None)
        if worker:
            info["worker"] = worker
        self.store.set_stage(self.run_id, name, key=key, status=status, info=info)

    # stages ---------------------------------------------------------------------------------------
    def _data(self) -> Dataset:
        if self.data is not None:  # loaded already (by a dry run deciding how to run)
            return self.data
        d = self.plan.data
        ds = load_dataset(d.dataset, where=f"{self.plan.source}: data", **d.params)
        if d.n_train is not None or d.n_test is not None:
            ds = ds.subset(n_train=d.n_train, n_test=d.n_test, seed=d.seed)
        self.data = ds
        return ds

    @property
    def ds(self) -> Dataset:
        assert self.data is not None
        return self.data

    def _model(self, spec: ModelSpec) -> Built:
        return self._import_onnx(spec) if spec.onnx else self._torch_model(spec)

    def _torch_model(self, spec: ModelSpec) -> Built:
        import torch

        from edgebench.models.train import TrainConfig, predict_logits, seeded, train
        from edgebench.models.user import load_state_dict

        ds = self.ds
        where = f"{self.plan.source}: models[{spec.name}]"
        ckpt = Path(spec.checkpoint) if spec.checkpoint else None
        cfg = TrainConfig(seed=self.plan.seed, **spec.train)
        spec_key = self._model_spec(spec)
        key = content_key("model", spec_key)

        entry = self.cache.get("model", key)
        seeded(self.plan.seed)
        model = self._base_builder(spec)()
        if entry is None:
            with self.cache.build("model", key) as tmp:
                if ckpt is not None:
                    load_state_dict(model, ckpt, where=where)
                    history: list[dict] = []
                else:
                    if not len(ds.x_train):
                        raise DataError(f"{where}: the data set has no training samples and no checkpoint was given")
                    history = train(model, ds.x_train, ds.y_train, cfg, desc=f"train {spec.name}")
                acc = float(np.mean(predict_logits(model, ds.x_test).argmax(1) == ds.y_test))
                torch.save(model.state_dict(), tmp / "model.pt")
                (tmp / "train.json").write_text(json.dumps({"history": history, "host_clean_acc": acc,
                                                            "spec": spec_key}, indent=1, default=str))
            entry = self.cache.path("model", key)
            cached = False
        else:
            cached = True
        load_state_dict(model, entry / "model.pt", where=where)
        model.eval()
        info = json.loads((entry / "train.json").read_text())
        built = self._export(Unit(spec.name), model, key, provenance={"arch": spec.arch, "factory": spec.factory})
        built.note = f"host clean acc {info['host_clean_acc']:.4f}{' (cached)' if cached else ''}"
        built.cached = cached
        self._store_variant(built, method="none", params={}, info={"train": info.get("history", [])[-1:]})
        return built

    def _model_spec(self, spec: ModelSpec) -> dict[str, Any]:
        """Everything a trained base model depends on (its cache key is the hash of this)."""
        from edgebench.models.train import TrainConfig

        ckpt = Path(spec.checkpoint) if spec.checkpoint else None
        return {"arch": spec.arch, "factory": spec.factory, "params": spec.params,
                "train": vars(TrainConfig(seed=self.plan.seed, **spec.train)), "data": self.ds.fingerprint(),
                "checkpoint": sha256_file(ckpt) if ckpt and ckpt.is_file() else None,
                "code": code_fingerprint("edgebench.models.train", "edgebench.models.zoo")}

    def _export_key(self, model_key: str, atol: float) -> str:
        from edgebench.export.onnx import OPSET

        m, ex = self.plan.measure, self.plan.export
        return content_key("export", {"model": model_key, "opset": OPSET, "parity_n": m.parity_n, "atol": atol,
                                      "openvino": ex.openvino, "fp16": ex.fp16,
                                      "code": code_fingerprint("edgebench.export.onnx", "edgebench.export.openvino")})

    def _variant_key(self, c: CompressSpec, parent_key: str) -> str:
        """The cache key of variant ``c`` applied to the model whose (export) key is ``parent_key``."""
        from edgebench.variants import method_for

        return content_key("variant", {"base": parent_key, "method": c.method, "params": c.params,
                                       "seed": self.plan.seed, "kind": c.kind,
                                       "code": code_fingerprint(method_for(c.kind, c.method).__module__,
                                                                "edgebench.compress.base", "edgebench.variants")})

    def _adv_key(self, source_key: str, attack: AttackSpec) -> str:
        """The cache key of ``attack``'s examples crafted on the model whose (export) key is ``source_key``."""
        from edgebench.attacks import ATTACKS

        cls = ATTACKS.get(attack.name)
        code = code_fingerprint(cls.__module__, "edgebench.attacks.base", "edgebench.attacks._gradient")
        return content_key("adv", {"model": source_key, "attack": attack.name, "params": attack.params,
                                   "eps": attack.eps, "n": self._attack_n(attack), "data": self.ds.fingerprint(),
                                   "code": code, "targeted": attack.targeted, "round_8bit": attack.round_8bit,
                                   "seed": self.plan.seed})

    def _base_builder(self, spec: ModelSpec) -> Any:
        """A function building a fresh, untrained instance of the model ``spec`` (normalization included)."""
        from edgebench.models import create_model
        from edgebench.models.user import build_from_factory

        ds = self.ds
        where = f"{self.plan.source}: models[{spec.name}]"

        def build() -> Any:
            if spec.arch:
                x = ds.x_train
                mean = tuple(float(v) for v in x.mean(axis=(0, 2, 3))) if len(x) else (0.0,)
                std = tuple(max(float(v), 1e-3) for v in x.std(axis=(0, 2, 3))) if len(x) else (1.0,)
                return create_model(spec.arch, input_shape=ds.shape, num_classes=ds.num_classes, mean=mean,
                                    std=std, where=where, **spec.params)
            return build_from_factory(spec.factory or "", spec.params, where=where)

        return build

    def _export(self, unit: Unit, model: Any, model_key: str, *, provenance: dict[str, Any],
                compressed: Any = None) -> Built:
        """ONNX (always) and OpenVINO IR (fp32, and fp16 if asked) of the twin ``model`` — or the method's
        own artifacts (int8 QDQ) — each checked against the twin and described by a card."""
        from edgebench.compress.stats import file_stats
        from edgebench.export.card import ModelCard, artifact_files
        from edgebench.export.onnx import export_onnx, onnx_parity

        ds, m, ex = self.ds, self.plan.measure, self.plan.export
        atol = compressed.parity_atol if compressed is not None and compressed.parity_atol is not None \
            else m.parity_atol
        precision = compressed.precision if compressed is not None else "f32"
        deploy = compressed.deploy if compressed is not None and compressed.deploy is not None else model
        key = self._export_key(model_key, atol)
        formats = ["onnx"] + (["openvino"] if ex.openvino else []) + (["openvino-fp16"] if ex.openvino and ex.fp16
                                                                       else [])
        files = {"onnx": "model.onnx", "openvino": "model-ov.xml", "openvino-fp16": "model-ov-fp16.xml"}
        entry = self.cache.get("export", key)
        if entry is None:
            x_par = ds.x_test[:m.parity_n]
            with self.cache.build("export", key) as tmp:
                for fmt in formats:
                    path = tmp / files[fmt]
                    if fmt == "onnx":
                        custom = compressed.export_onnx if compressed is not None else None
                        (custom or (lambda p: export_onnx(deploy, ds.shape, p)))(path)
                        parity = onnx_parity(model, path, x_par, atol=atol)
                        prec = precision
                    else:
                        from edgebench.export.openvino import export_openvino, openvino_parity

                        custom = compressed.export_openvino if compressed is not None else None
                        fp16 = fmt == "openvino-fp16"
                        (custom or (lambda p, fp16=fp16: export_openvino(deploy, ds.shape, p, fp16=fp16)))(path)
                        parity = openvino_parity(model, path, x_par, atol=max(atol, 1e-2) if fp16 else atol)
                        prec = "f16 weights" if fp16 else precision
                    sizes = file_stats(artifact_files(path))
                    card = ModelCard(
                        name=unit.id, format=fmt, input_shape=ds.shape, num_classes=ds.num_classes,
                        classes=ds.classes, sha256=sha256_file(path), size_bytes=sizes["size_bytes"],
                        deflate_bytes=sizes["deflate_bytes"],
                        provenance={**provenance, "model": unit.model, "variant": unit.variant, "precision": prec,
                                    "model_key": model_key, "dataset": ds.name, "data_fingerprint": ds.fingerprint(),
                                    "plan": self.plan.name, "edgebench": __version__,
                                    "torch": __import__("torch").__version__},
                        parity=parity)
                    card.save(path)
            entry = self.cache.path("export", key)
        return self._register_artifacts(unit, {f: entry / files[f] for f in formats}, key, model)

    def _register_artifacts(self, unit: Unit, paths: dict[str, Path], key: str, model: Any) -> Built:
        from edgebench.export.card import card_path

        cards = {}
        for fmt, path in paths.items():
            card = json.loads(card_path(path).read_text())
            self.store.put_artifact(self.run_id, model=unit.model, variant=unit.variant, format=fmt, path=str(path),
                                    sha256=card["sha256"], size_bytes=card["size_bytes"], parity=card["parity"],
                                    card=card)
            cards[fmt] = card
        return Built(unit, key, dict(paths), cards, model)

    def _store_variant(self, built: Built, *, method: str, params: dict[str, Any], info: dict[str, Any],
                       parent: Unit | None = None) -> None:
        """Parameters, MACs, sizes, DEFLATE, ΔW and weight histograms of a built unit, into the store. ΔW is
        taken against ``parent``, the model the method was applied to (the base unless the variant is chained:
        for ``adv+q``, what quantizing the adversarially trained model changed, as in seed 003's Fig. 3)."""
        if built.torch_model is None:
            stats: dict[str, Any] = {}
        else:
            from edgebench.compress.stats import model_stats

            base: Built | None = None
            if built.unit.variant != BASE:
                base = self.outcome.values[(parent or Unit(built.unit.model)).stage]
            # a function of the two twins: cached beside them, so a resumed run does not redo the SVDs
            key = content_key("stats", {"unit": built.key, "parent": base.key if base else None,
                                        "shape": list(self.ds.shape),
                                        "code": code_fingerprint("edgebench.compress.stats")})
            entry = self.cache.get("stats", key)
            if entry is None:
                computed = model_stats(built.torch_model, self.ds.shape, base=base.torch_model if base else None)
                with self.cache.build("stats", key) as tmp:
                    (tmp / "stats.json").write_text(json.dumps(computed, default=float))
                entry = self.cache.path("stats", key)
            stats = json.loads((entry / "stats.json").read_text())
        stats["artifacts"] = {fmt: {"size_bytes": c["size_bytes"], "deflate_bytes": c.get("deflate_bytes"),
                                    "precision": c.get("provenance", {}).get("precision")}
                              for fmt, c in built.cards.items()}
        self.store.put_variant(self.run_id, model=built.unit.model, variant=built.unit.variant, method=method,
                               params=params, info=info, stats=stats)

    def _compress(self, c: CompressSpec) -> Built:
        """Apply a compression method or a defense (``c.kind``) to a trained model or to the variant it is
        applied ``on``; cache the twin; export and check it."""

        from edgebench.models.train import TrainConfig, predict_logits, seeded
        from edgebench.variants import Variant, VariantContext, create_method

        unit = Unit(c.model, c.variant)
        base: Built = self.outcome.values[Unit(c.model, c.on).stage]  # the model the method is applied to
        spec = self._spec(c.model)
        ds = self.ds
        on = "" if c.on == BASE else f" applied on {c.on!r}"
        where = f"{self.plan.source}: {c.kind} (variant {c.variant!r} of model {c.model!r}{on})"
        method = create_method(c.kind, c.method, where=where, **c.params)
        key = self._variant_key(c, base.key)
        ctx = VariantContext(x_train=ds.x_train, y_train=ds.y_train, input_shape=ds.shape,
                             num_classes=ds.num_classes, train=TrainConfig(seed=self.plan.seed, **spec.train),
                             seed=self.plan.seed, where=where, build_base=self._base_builder(spec),
                             workdir=self.cache.root / "work" / key)
        entry = self.cache.get("variant", key)
        cached = entry is not None
        if entry is None:
            seeded(self.plan.seed)
            t0 = time.perf_counter()
            result = method.apply(base.torch_model, ctx)
            seconds = time.perf_counter() - t0
            result.model.eval()
            acc = float(np.mean(predict_logits(result.model, ds.x_test).argmax(1) == ds.y_test))
            with self.cache.build("variant", key) as tmp:
                method.save_twin(result.model, tmp / "twin.pt")
                (tmp / "variant.json").write_text(json.dumps(
                    {"info": result.info, "history": result.history, "host_clean_acc": acc, "seconds": seconds,
                     "parity_atol": result.parity_atol, "precision": result.precision}, indent=1, default=str))
            entry = self.cache.path("variant", key)
            if ctx.workdir is not None:  # the checkpoints of an interrupted build are no longer needed
                import shutil

                shutil.rmtree(ctx.workdir, ignore_errors=True)
        meta = json.loads((entry / "variant.json").read_text())
        if cached:
            twin = method.load_twin(entry / "twin.pt", base.torch_model)
            result = Variant(model=twin, info=meta["info"], parity_atol=meta["parity_atol"],
                             precision=meta["precision"])
        method.attach(result, base.torch_model, ctx)
        built = self._export(unit, result.model, key, compressed=result,
                             provenance={"method": c.method, "params": c.params, "base_key": base.key,
                                         "kind": c.kind, "on": c.on})
        self._store_variant(built, method=c.method if c.on == BASE else f"{c.on} → {c.method}", params=c.params,
                            parent=Unit(c.model, c.on),
                            info={**meta["info"], "seconds": meta["seconds"], "host_clean_acc": meta["host_clean_acc"],
                                  "history": meta["history"]})
        built.note = f"host clean acc {meta['host_clean_acc']:.4f}{' (cached)' if cached else ''}"
        built.cached = cached
        return built

    def _import_onnx(self, spec: ModelSpec) -> Built:
        """A ready ONNX file: checked by loading it in ONNX Runtime, copied into the cache with a card.
        It has no torch twin, so it is evaluated on adversarial examples of its ``attack_source``."""
        from edgebench.compress.stats import file_stats
        from edgebench.export.card import ModelCard
        from edgebench.runtime import create_backend

        ds = self.ds
        src = Path(spec.onnx or "")
        where = f"{self.plan.source}: models[{spec.name}].onnx"
        if not src.is_file():
            raise ArtifactError(f"{where}: {src} not found")
        digest = sha256_file(src)
        key = content_key("onnx-import", {"sha256": digest, "data": ds.fingerprint()})
        entry = self.cache.get("onnx", key)
        if entry is None:
            from edgebench.export.onnx_import import check_external_data

            check_external_data(src, where=where)  # before any runtime follows its paths
            backend = create_backend("onnxruntime")
            try:
                backend.load(src)
            except ArtifactError as exc:
                raise ArtifactError(f"{where}: {exc}") from None
            want = tuple(backend.input_shape[1:])
            if len(want) != len(ds.shape) or any(w is not None and w != s for w, s in zip(want, ds.shape)):
                raise DataError(f"{where}: the model takes inputs of shape {want}, the test set has {ds.shape}")
            out = backend.predict(ds.x_test[:2])
            if out.ndim != 2 or out.shape[1] != ds.num_classes:
                raise DataError(f"{where}: the model outputs shape {tuple(out.shape)}, expected (N, {ds.num_classes})")
            with self.cache.build("onnx", key) as tmp:
                shutil.copyfile(src, tmp / "model.onnx")
                ModelCard(name=spec.name, format="onnx", input_shape=ds.shape, num_classes=ds.num_classes,
                          classes=ds.classes, sha256=digest, **file_stats([src]),
                          provenance={"imported_from": str(src.resolve())},
                          parity={"note": "no torch twin: imported ONNX model"}).save(tmp / "model.onnx")
            entry = self.cache.path("onnx", key)
        built = self._register_artifacts(Unit(spec.name), {"onnx": entry / "model.onnx"}, key, None)
        self._store_variant(built, method="none", params={}, info={"imported_from": str(src)})
        return built

    def _clean_set(self) -> Path:
        ds = self.ds
        key = content_key("testset", {"data": ds.fingerprint()})
        entry = self.cache.get("testset", key)
        if entry is None:
            with self.cache.build("testset", key) as tmp:
                _save_npz(tmp / "clean.npz", x=ds.x_test.astype(np.float32), y=ds.y_test)
            entry = self.cache.path("testset", key)
        return entry / "clean.npz"

    def _attack_n(self, attack: AttackSpec) -> int:
        return min(attack.n or len(self.ds.x_test), len(self.ds.x_test))

    def _targets(self, attack: AttackSpec, y: np.ndarray) -> np.ndarray | None:
        """The target class per sample for a targeted attack: the same for every source (so transfer
        compares like with like), never the true label."""
        c = self.ds.num_classes
        if attack.targeted == "next":
            return (y + 1) % c
        if attack.targeted == "random":
            rng = np.random.default_rng([self.plan.seed, len(y), *attack.label.encode()])
            return (y + rng.integers(1, c, size=len(y))) % c
        return None

    def _craft(self, source: Unit, attack: AttackSpec) -> AdvSets:
        """Adversarial test sets of ``attack`` crafted on ``source``'s torch twin: one float32 ``.npz`` per ε
        (``x``, ``y``, the twin's ``host_pred``, per-sample ``success`` and norms, ``target`` if targeted)."""
        import torch

        from edgebench.attacks import ATTACKS, create_attack
        from edgebench.models.train import predict_logits

        built: Built = self.outcome.values[source.stage]
        ds = self.ds
        n = self._attack_n(attack)
        cls = ATTACKS.get(attack.name)
        key = self._adv_key(built.key, attack)
        entry = self.cache.get("adv", key)
        cached = entry is not None
        if entry is None:
            atk = create_attack(attack.name, where=f"{self.plan.source}: attacks[{attack.label}]", **attack.params)
            x, y = ds.x_test[:n], ds.y_test[:n]
            target = self._targets(attack, y)
            step = n if cls.universal else attack.batch_size  # one perturbation for the whole set
            parts = []
            t0 = time.perf_counter()
            torch.manual_seed(self.plan.seed)
            for i in range(0, n, step):
                parts.append(atk(built.torch_model, x[i:i + step], y[i:i + step], eps=list(attack.eps),
                                 target=None if target is None else target[i:i + step]))
            seconds = time.perf_counter() - t0
            cat = {f: np.concatenate([getattr(p, f) for p in parts], axis=1)
                   for f in ("x_adv", "pred", "success", "linf", "l2", "l0")}
            if attack.round_8bit:  # what an 8-bit image pipeline would deliver: re-predict, re-measure
                cat["x_adv"] = np.round(cat["x_adv"] * 255.0).astype(np.float32) / 255.0
                cat["pred"] = np.stack([predict_logits(built.torch_model, xa).argmax(1) for xa in cat["x_adv"]])
                cat["success"] = (cat["pred"] != y) if target is None else (cat["pred"] == target)
                delta = np.abs(cat["x_adv"] - x[None]).reshape(len(attack.eps), n, -1)
                cat["linf"], cat["l2"] = delta.max(2), np.sqrt((delta ** 2).sum(2))
                cat["l0"] = (delta > 1e-6).sum(2)
            info = {"attack": parts[0].attack if parts else repr(atk), "source": source.id, "eps": list(attack.eps),
                    "n": n, "seconds": seconds, "norm": atk.norm, "targeted": attack.targeted,
                    "round_8bit": attack.round_8bit,
                    "forward_passes": sum(p.passes.forward for p in parts),
                    "backward_passes": sum(p.passes.backward for p in parts),
                    "host_success_rate": cat["success"].mean(axis=1).tolist(),
                    "mean_linf": cat["linf"].mean(axis=1).tolist(), "mean_l2": cat["l2"].mean(axis=1).tolist(),
                    "mean_l0": cat["l0"].mean(axis=1).tolist()}
            with self.cache.build("adv", key) as tmp:
                for k in range(len(attack.eps)):
                    extra = {} if target is None else {"target": target}
                    _save_npz(tmp / f"eps{k}.npz", x=cat["x_adv"][k].astype(np.float32), y=y,
                              host_pred=cat["pred"][k], success=cat["success"][k], linf=cat["linf"][k],
                              l2=cat["l2"][k], l0=cat["l0"][k], **extra)
                (tmp / "attack.json").write_text(json.dumps(info, indent=1))
            entry = self.cache.path("adv", key)
        info = json.loads((entry / "attack.json").read_text())
        rates = ", ".join(f"ε={e:g}: {r:.3f}" for e, r in zip(attack.eps, info["host_success_rate"]))
        took = " (cached)" if cached else f" in {info['seconds']:.1f} s"
        note = f"host success {rates}{took}"
        return AdvSets(source.id, attack, key, [entry / f"eps{k}.npz" for k in range(len(attack.eps))], info, note,
                       cached=cached)

    def _transport(self, name: str) -> Any:
        """One transport (one connection, one remote work folder) per target for the whole run."""
        from edgebench.targets import load_target, open_transport

        if name not in self._transports:
            self._transports[name] = open_transport(load_target(name))
        return self._transports[name]

    def _device(self, tspec: TargetSpec, backend: str, unit: Unit,
                shard: tuple[int, int, str] | None = None) -> DeviceRun | Deferred:
        """The device job of ``unit`` on ``backend`` of target ``tspec``: prepared here, shipped and waited for by
        the returned :class:`Deferred` (on a thread of its own), recorded by :meth:`_device_finish`. ``shard``
        ``(i, k, member)``: the ``i``-th of ``k`` shards of every test set, on fleet member ``member``."""
        transport = self._transport(shard[2] if shard else tspec.target)
        target = transport.target
        built: Built = self.outcome.values[unit.stage]
        fmt, artifact = built.artifact_for(backend)
        card = built.cards[fmt]
        clean: Path = self.outcome.values["testset/clean"]
        name = f"device/{tspec.target}/{backend}/{unit.id}"
        if shard:
            name = _shard_stage(name, shard[0], shard[1])
        sets = [{"name": "clean", "path": clean, "attack": "none", "eps": 0.0, "source": unit.id}]
        for a in self.plan.attacks:
            for src in self.sources_for(unit, a):
                adv: AdvSets = self.outcome.values[f"craft/{src.id}/{a.label}"]
                for k, e in enumerate(a.eps):
                    sets.append({"name": f"{a.label}@{e:g} from {src.id}", "path": adv.files[k], "attack": a.label,
                                 "eps": e, "source": src.id, "adv_key": adv.key, "k": k})
        m = self.plan.measure
        proto = LatencyProtocol(warmup=m.warmup, min_runs=m.min_runs, min_duration_s=m.min_duration_s,
                                max_runs=m.max_runs)
        power = target.power or {}
        energy = EnergyProtocol(sensor=power.get("sensor", "none"), options=power.get("options", {}),
                                rate_hz=power.get("rate_hz", 10.0), idle_s=m.energy_idle_s,
                                min_window_s=m.energy_min_window_s, windows=m.energy_windows,
                                min_samples=m.energy_min_samples)
        options = target.backends.get(backend, {})
        paths = [Path(s["path"]) for s in sets]
        if shard:
            paths = [self._shard_file(path, shard[0], shard[1]) for path in paths]
        key = content_key("device", {"artifact": card["sha256"], "sets": [str(p) for p in paths],
                                     "backend": backend, "options": options, "protocol": vars(proto),
                                     "energy": vars(energy), "batch": m.batch_size, "target": target.name,
                                     "transport": target.transport})
        out_dir = self.run_dir / "raw" / slug(name.removeprefix("device/"))
        prev = self.store.stage(self.run_id, name)
        if prev and prev["status"] == "done" and prev["key"] == key and (out_dir / "result.json").is_file():
            result = json.loads((out_dir / "result.json").read_text())
            if all((out_dir / f).is_file() for f in result.get("files", ())):
                return DeviceRun(name, out_dir, result, sets, note="already measured in this run", cached=True)
        job = Job(job_id=key, artifact=str(artifact), backend=backend, output_dir=str(out_dir),
                  testsets=tuple(TestSet(s["name"], str(p)) for s, p in zip(sets, paths)), backend_options=options,
                  batch_size=m.batch_size, latency=proto, energy=energy, artifact_sha256=card["sha256"])
        started = time.time()
        dispatch = getattr(self.executor, "device_job", None) if target.ray_resource else None
        if dispatch is not None:  # from a node of the cluster that reaches the device
            def work() -> tuple[dict[str, Any], Path]:
                return dispatch(target, job, out_dir, cache_root=str(self.cache.root))
        else:
            def work() -> tuple[dict[str, Any], Path]:
                return transport.run_job(job, out_dir)
        return Deferred(work=work, finish=lambda done: self._device_finish(name, key, started, target, backend, unit,
                                                                          fmt, sets, done))

    def _device_finish(self, name: str, key: str, started: float, target: Any, backend: str, unit: Unit, fmt: str,
                       sets: list[dict[str, Any]], done: tuple[dict[str, Any], Path]) -> DeviceRun:
        """Record a finished device job (on the scheduler's thread: every store write happens there)."""
        result, outputs = done
        self.store.put_environment(self.run_id, target=target.name, backend=backend, model=unit.model,
                                   variant=unit.variant, backend_info={**result["backend"], "format": fmt},
                                   environment={**result["environment"], "energy": result.get("energy"),
                                                "resumed": result.get("resumed", [])})
        lat = result.get("latency") or {}
        note = f"p50 {lat.get('p50_ms', float('nan')):.3f} ms over {lat.get('runs', 0)} runs ({fmt})"
        if result.get("resumed"):
            note += f"; resumed {', '.join(result['resumed'])}"
        info: dict[str, Any] = {"note": note, "seconds": time.time() - started}
        if result.get("dispatched_from"):
            info["worker"] = result["dispatched_from"]
        self.store.set_stage(self.run_id, name, key=key, status="done", started=started, info=info)
        return DeviceRun(name, outputs, result, sets, note=note)

    def _shard_file(self, path: Path, i: int, k: int) -> Path:
        """Rows ``[i·n/k, (i+1)·n/k)`` of test set ``path`` (every array of n rows cut alike): a cache entry named
        by the set's own content-addressed id, so that every member of a fleet gets a fixed, disjoint share and
        a resumed run ships the same files."""
        key = content_key("shard", {"set": _set_id(path), "i": i, "k": k})
        entry = self.cache.get("shard", key)
        if entry is None:
            with np.load(path, allow_pickle=False) as f:
                n = len(f["x"])
                lo, hi = i * n // k, (i + 1) * n // k
                arrays = {a: (f[a][lo:hi] if f[a].ndim and len(f[a]) == n else f[a]) for a in f.files}
            with self.cache.build("shard", key) as tmp:
                _save_npz(tmp / path.name, **arrays)
            entry = self.cache.path("shard", key)
        return entry / path.name

    def _merge_fleet(self, tspec: TargetSpec, backend: str, unit: Unit) -> DeviceRun:
        """One device run out of a fleet's shards: each test set's logits concatenated in shard order (the rows
        of the whole set, as one device would have written them), the latency samples of every member pooled
        into one distribution, energy averaged over the members, and each member's own latency, energy,
        backend and environment kept under ``fleet``."""
        from edgebench.metrics.latency import latency_summary

        name = f"device/{tspec.target}/{backend}/{unit.id}"
        k = len(tspec.fleet)
        parts: list[DeviceRun] = [self.outcome.values[_shard_stage(name, i, k)] for i in range(k)]
        out_dir = self.run_dir / "raw" / slug(name.removeprefix("device/"))
        out_dir.mkdir(parents=True, exist_ok=True)
        first = parts[0].result
        sets = []
        for j, ts in enumerate(first["testsets"]):
            logits = np.concatenate([np.load(p.outputs / p.result["testsets"][j]["file"], allow_pickle=False)
                                     for p in parts])
            np.save(out_dir / f"set-{j}.npy", logits)
            sets.append({"name": ts["name"], "n": len(logits), "file": f"set-{j}.npy",
                         "seconds": sum(p.result["testsets"][j].get("seconds", 0.0) for p in parts)})
        files = [s["file"] for s in sets]
        latency = None
        samples = [np.load(p.outputs / "latency_ns.npy", allow_pickle=False) for p in parts
                   if (p.outputs / "latency_ns.npy").is_file()]
        if samples and all(p.result.get("latency") for p in parts):
            pooled = np.concatenate(samples)
            np.save(out_dir / "latency_ns.npy", pooled)
            files.append("latency_ns.npy")
            lats = [p.result["latency"] for p in parts]
            firsts = [x["first_ms"] for x in lats if x.get("first_ms") is not None]
            latency = {**latency_summary(pooled, first_ns=int(np.median(firsts) * 1e6) if firsts else None,
                                         duration_s=sum(x["duration_s"] for x in lats)),
                       "protocol": lats[0].get("protocol"), "file": "latency_ns.npy", "members": len(lats)}
        members = [{"target": m, "n": p.result["testsets"][0]["n"] if p.result["testsets"] else 0,
                    "latency": p.result.get("latency"), "energy": p.result.get("energy"),
                    "backend": p.result.get("backend"), "environment": p.result.get("environment")}
                   for m, p in zip(tspec.fleet, parts)]
        result = {**first, "testsets": sets, "latency": latency, "files": files, "resumed": [], "fleet": members,
                  "energy": _merge_energy([m["energy"] for m in members])}
        (out_dir / "result.json").write_text(json.dumps(result, indent=1, default=str))
        self.store.put_environment(self.run_id, target=tspec.target, backend=backend, model=unit.model,
                                   variant=unit.variant, backend_info={**first["backend"], "fleet": list(tspec.fleet)},
                                   environment={**first["environment"], "energy": result["energy"],
                                                "fleet": {m["target"]: m["environment"] for m in members}})
        shard_keys = [(self.store.stage(self.run_id, _shard_stage(name, i, k)) or {}).get("key", "") for i in range(k)]
        note = (f"{k} devices, {sets[0]['n'] if sets else 0} samples per set merged"
                + (f"; p50 {latency['p50_ms']:.3f} ms over {latency['runs']} runs" if latency else ""))
        self.store.set_stage(self.run_id, name, key=content_key("fleet", {"shards": shard_keys}), status="done",
                             info={"note": note, "seconds": 0.0})
        return DeviceRun(name, out_dir, result, parts[0].testsets, note=note,
                         cached=all(p.cached for p in parts))

    # scoring --------------------------------------------------------------------------------------
    def _score(self) -> tuple[list[dict[str, Any]], ...]:
        """Metrics from the raw device outputs (and host predictions for the deployment gap): result records,
        minimal-ε distributions (attacks with ``min_eps``), trust flags, and the per-row samples (latency
        histograms, packed per-sample correctness for paired comparisons)."""
        from edgebench.metrics.energy import energy_fields
        from edgebench.metrics.robustness import (
            attack_success_rate,
            clean_accuracy,
            robust_accuracy,
            whitebox_below_transfer,
        )
        from edgebench.metrics.samples import latency_histogram, pack_correct
        from edgebench.models.train import predict_logits

        records: list[dict[str, Any]] = []
        min_eps: list[dict[str, Any]] = []
        flags: list[dict[str, Any]] = []
        samples: list[dict[str, Any]] = []
        host_clean: dict[Unit, np.ndarray] = {}
        host_transfer: dict[tuple[Unit, Path], np.ndarray] = {}  # the twin's predictions on others' examples
        correct: dict[tuple[Any, ...], np.ndarray] = {}  # per-sample robust correctness, for the paired tests
        attacks = {a.label: a for a in self.plan.attacks}
        for t in self.plan.targets:
            for b in t.backends:
                for unit in self.units():
                    run: DeviceRun | None = self.outcome.values.get(f"device/{t.target}/{b}/{unit.id}")
                    if run is None:
                        continue
                    built: Built = self.outcome.values[unit.stage]
                    y = self.ds.y_test
                    lat = {k: v for k, v in (run.result.get("latency") or {}).items()
                           if k in ("mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms",
                                    "first_ms", "runs", "duration_s", "throughput_per_s")}
                    logits = {ts["name"]: np.load(run.outputs / ts["file"], allow_pickle=False)
                              for ts in run.result["testsets"]}
                    clean_pred = logits["clean"].argmax(1)
                    ca = clean_accuracy(clean_pred, y)
                    tname = self._transports[t.target].target.name if t.target in self._transports else t.target
                    base = {"model": unit.model, "variant": unit.variant, "backend": b, "target": tname, **lat,
                            **energy_fields(run.result.get("energy"))}
                    records.append({**base, "attack": "none", "eps": 0.0, "n": ca["n"], "clean_acc": ca["value"],
                                    "clean_acc_lo": ca["lo"], "clean_acc_hi": ca["hi"], "source": unit.id,
                                    "threat": "clean"})
                    row_key = {k: base[k] for k in ("model", "variant", "backend", "target")}
                    samples.append({"kind": "correct", **row_key, "attack": "none", "eps": 0.0, "source": unit.id,
                                    "data": pack_correct(clean_pred == y, _set_id(run.testsets[0]["path"]))})
                    if (run.outputs / "latency_ns.npy").is_file():
                        samples.append({"kind": "latency", **row_key, "attack": "none", "eps": 0.0,
                                        "source": unit.id, "data": latency_histogram(
                                            np.load(run.outputs / "latency_ns.npy", allow_pickle=False))})
                    if built.torch_model is not None and unit not in host_clean:
                        host_clean[unit] = predict_logits(built.torch_model, self.ds.x_test).argmax(1)
                    per_sample: dict[tuple[str, str], list[dict[str, Any]]] = {}
                    for s in run.testsets[1:]:
                        adv: AdvSets = self.outcome.values[f"craft/{s['source']}/{s['attack']}"]
                        norm = adv.info["norm"] if adv.info["norm"] in ("l2", "l0") else "linf"
                        with np.load(s["path"], allow_pickle=False) as f:
                            target = f["target"] if "target" in f.files else None
                            norms = f[norm]
                            host_adv = None
                            if built.torch_model is not None:
                                if s["source"] == unit.id:
                                    host_adv = f["host_pred"]
                                else:  # the same on every backend and target: predict once
                                    if (unit, s["path"]) not in host_transfer:
                                        host_transfer[(unit, s["path"])] = predict_logits(
                                            built.torch_model, f["x"]).argmax(1)
                                    host_adv = host_transfer[(unit, s["path"])]
                        adv_pred = logits[s["name"]].argmax(1)
                        n = len(adv_pred)
                        yy, cp = y[:n], clean_pred[:n]
                        ca_n, ra = clean_accuracy(cp, yy), robust_accuracy(adv_pred, yy)
                        asr = attack_success_rate(cp, adv_pred, yy, target)
                        host_asr = None if host_adv is None else \
                            attack_success_rate(host_clean[unit][:n], host_adv, yy, target)["value"]
                        threat = "white-box" if s["source"] == unit.id else "transfer"
                        records.append({
                            **base, "attack": s["attack"], "eps": s["eps"], "n": n,
                            "clean_acc": ca_n["value"], "clean_acc_lo": ca_n["lo"], "clean_acc_hi": ca_n["hi"],
                            "robust_acc": ra["value"], "robust_acc_lo": ra["lo"], "robust_acc_hi": ra["hi"],
                            "asr": asr["value"], "asr_lo": asr["lo"], "asr_hi": asr["hi"], "asr_n": asr["n"],
                            "host_asr": host_asr,
                            "deployment_gap": None if host_asr is None else asr["value"] - host_asr,
                            "source": s["source"], "threat": threat,
                            "mean_linf": adv.info["mean_linf"][s["k"]], "mean_l2": adv.info["mean_l2"][s["k"]],
                        })
                        correct[(unit.model, unit.variant, b, t.target, s["attack"], float(s["eps"]),
                                 s["source"])] = adv_pred == yy
                        samples.append({"kind": "correct", **row_key, "attack": s["attack"], "eps": s["eps"],
                                        "source": s["source"],
                                        "data": pack_correct(adv_pred == yy, _set_id(s["path"]))})
                        hit = (adv_pred != yy) if target is None else (adv_pred == target)
                        host_hit = None if host_adv is None else \
                            ((host_adv != yy) if target is None else (host_adv == target))
                        per_sample.setdefault((s["attack"], s["source"]), []).append(
                            {"eps": s["eps"], "ok": cp == yy, "hit": hit, "norms": norms, "threat": threat,
                             "host_ok": None if host_adv is None else host_clean[unit][:n] == yy, "host_hit": host_hit})
                    where = {k: base[k] for k in ("model", "variant", "backend", "target")}
                    for (label, src), rows in per_sample.items():
                        if attacks[label].min_eps:
                            min_eps.append({**where, "attack": label, "source": src, "threat": rows[0]["threat"],
                                            **_min_eps_record(rows)})
                    flags.extend(whitebox_below_transfer(where, unit.id, per_sample))
                    for part in run.result.get("fleet") or [run.result]:  # each member of a fleet
                        flags.extend(_device_flags(where, part))
        flags.extend(self._gradient_flags())
        _deltas_vs_base(records, correct)
        return records, min_eps, flags, samples

    def _gradient_flags(self) -> list[dict[str, Any]]:
        """Gradient health of every torch twin that crafted white-box examples."""
        from edgebench.attacks.checks import MASKING_SHARE, gradient_health, masked

        if not self.plan.attacks:
            return []
        out = []
        n = min(len(self.ds.x_test), 1000)
        crafted = {src for u in self.units() for a in self.plan.attacks for src in self.sources_for(u, a)}
        for unit in self.torch_units():
            built: Built | None = self.outcome.values.get(unit.stage)
            if built is None or built.torch_model is None or unit not in crafted:
                continue
            health = gradient_health(built.torch_model, self.ds.x_test[:n], self.ds.y_test[:n])
            flagged = masked(health)
            out.append({"kind": "gradient-masking" if flagged else "gradient-check", "model": unit.model,
                        "variant": unit.variant, "backend": "", "target": "", "attack": "", "eps": 0.0,
                        "source": unit.id, "detail": health,
                        "message": (f"{unit.id}: {health['zero_share']:.1%} of input gradients are zero and "
                                    f"{health['nonfinite_share']:.1%} non-finite (flag above {MASKING_SHARE:.0%}); "
                                    "white-box results may overstate robustness — compare transfer and "
                                    "margin-loss (cw, apgd dlr) attacks") if flagged else
                                   f"{unit.id}: input gradients healthy ({health['zero_share']:.1%} zero, "
                                   f"{health['nonfinite_share']:.1%} non-finite)"})
        return out

def _min_eps_record(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-sample minimal ε over an attack's grid, on the device and on the host twin, among the samples the
    victim classifies correctly when clean (the others need no attack)."""
    from edgebench.metrics.robustness import minimal_eps, summarize_min_eps

    eps = np.array([r["eps"] for r in rows])
    inf = [i for i, e in enumerate(eps) if np.isinf(e)]
    norms = rows[inf[0]]["norms"] if inf else None
    ok = rows[0]["ok"]
    values = minimal_eps(eps, np.stack([r["hit"] for r in rows]), norms)[ok]
    out: dict[str, Any] = {"eps_grid": eps.tolist(), **summarize_min_eps(values),
                           "values": [float(v) if np.isfinite(v) else None for v in values]}
    if rows[0]["host_hit"] is not None:
        host = minimal_eps(eps, np.stack([r["host_hit"] for r in rows]), norms)[rows[0]["host_ok"]]
        out["host"] = {**summarize_min_eps(host), "values": [float(v) if np.isfinite(v) else None for v in host]}
    return out


def _set_id(path: str | Path) -> str:
    """A test set's identity across runs: its content-addressed cache entry and file name (the entry is named
    by the hash of everything the set depends on, so two runs sharing it measured the same samples)."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}"


def _deltas_vs_base(records: list[dict[str, Any]], correct: dict[tuple[Any, ...], np.ndarray]) -> None:
    """Each variant's robust accuracy against its base's under the same attack, ε and source, with McNemar's
    paired test on the same samples (the poster's "max δ" column, with the significance it lacked): adds
    ``robust_delta`` (variant − base, in accuracy) and ``robust_delta_p`` to the adversarial records."""
    from edgebench.metrics.robustness import mcnemar

    for r in records:
        if r["attack"] == "none" or r["variant"] == BASE:
            continue
        key = (r["model"], r["variant"], r["backend"], r["target"], r["attack"], float(r["eps"]), r["source"])
        base_source = r["model"] if r["source"] == f"{r['model']}/{r['variant']}" else r["source"]
        base_key = (r["model"], BASE, *key[2:6], base_source)
        mine, theirs = correct.get(key), correct.get(base_key)
        if mine is None or theirs is None or len(mine) != len(theirs):
            continue
        r["robust_delta"] = float(np.mean(mine) - np.mean(theirs))
        r["robust_delta_p"] = mcnemar(theirs, mine)["p_value"]


def _shard_stage(name: str, i: int, k: int) -> str:
    """The stage of shard ``i`` (of ``k``) of fleet device stage ``name``."""
    return f"{name}#{i + 1}of{k}"


def _merge_energy(parts: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """A fleet's energy: each numeric reading averaged over the members that measured it (identical devices,
    each drawing its own power); valid only if every member's is; absent when no member has a sensor."""
    measured = [p for p in parts if p and not p.get("absent")]
    if not measured:
        return next((p for p in parts if p), None)
    out: dict[str, Any] = {"valid": all(bool(p.get("valid")) for p in measured) and len(measured) == len(parts),
                           "members": len(measured),
                           "invalid_reasons": [r for p in measured for r in p.get("invalid_reasons", [])]}
    if len(measured) < len(parts):
        out["invalid_reasons"].append(f"{len(parts) - len(measured)} member(s) without a readable sensor")
    for field_ in ("energy_per_inference_j", "net_energy_per_inference_j", "mean_power_w", "idle_power_w"):
        values = [p[field_] for p in measured if isinstance(p.get(field_), (int, float))]
        out[field_] = float(np.mean(values)) if values else None
    return out


def _device_flags(where: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
    """What makes a device measurement untrustworthy: an invalid energy window, throttling during the run."""
    from edgebench.agent.envinfo import throttling_during

    label = f"{where['model']}/{where['variant']} on {where['backend']}/{where['target']}"
    out = []
    energy = result.get("energy") or {}
    if energy and not energy.get("absent") and not energy.get("valid", False):
        reasons = "; ".join(energy.get("invalid_reasons", [])) or "invalid window"
        out.append({**where, "kind": "energy-invalid", "detail": energy,
                    "message": f"{label}: energy not trustworthy ({reasons})"})
    env = result.get("environment") or {}
    why = throttling_during(env.get("before") or {}, env.get("after") or {})
    if why:
        out.append({**where, "kind": "throttling", "detail": {"reasons": why},
                    "message": f"{label}: the device throttled during the run ({'; '.join(why)}); latency and "
                               "energy are not steady-state"})
    return out


def run_plan(plan: Plan, *, out_dir: Path = Path("reports"), run_id: str | None = None,
             executor: Any = None) -> RunSummary:
    """Run ``plan``; results land in ``out_dir/<run-id>/``. Re-running resumes. ``executor`` computes the host
    stages (:func:`edgebench.runner.executors.create_executor`; None: in this process, one at a time)."""
    return Pipeline(plan, out_dir=out_dir, run_id=run_id, executor=executor).run()
