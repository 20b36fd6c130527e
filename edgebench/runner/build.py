"""The host stages that build deployable units: train (or load) a base model, import a ready ONNX file, apply a
variant method (compression or defense), export each to ONNX and OpenVINO IR with a parity check and a card,
and record their statistics.

Each is a function of a :class:`~edgebench.runner.context.RunContext` whose outputs are content-addressed cache
entries (:mod:`edgebench.runner.keys`): computed once, then loaded.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgebench import __version__
from edgebench.agent.protocol import sha256_file
from edgebench.config import CompressSpec, ModelSpec
from edgebench.errors import ArtifactError, ConfigError, DataError
from edgebench.runner.cache import code_fingerprint, content_key
from edgebench.runner.context import RunContext
from edgebench.runner.keys import export_key, model_spec, onnx_import_key, oracle_unit, variant_key, variant_workdir
from edgebench.runner.units import BASE, Built, Unit

ARTIFACT_FILES = {"onnx": "model.onnx", "openvino": "model-ov.xml", "openvino-fp16": "model-ov-fp16.xml",
                  "onnx-fp16": "model-fp16.onnx"}


def build_model(ctx: RunContext, spec: ModelSpec) -> Built:
    """A plan model: imported (a ready ONNX file) or trained (or loaded from its checkpoint) and exported."""
    return import_onnx(ctx, spec) if spec.onnx else torch_model(ctx, spec)


def torch_model(ctx: RunContext, spec: ModelSpec) -> Built:
    import torch

    from edgebench.hostdevice import record
    from edgebench.models.placement import cpu_state
    from edgebench.models.train import TrainConfig, predict_logits, seeded, train
    from edgebench.models.user import load_state_dict

    ds, plan = ctx.ds, ctx.plan
    where = f"{plan.source}: models[{spec.name}]"
    ckpt = Path(spec.checkpoint) if spec.checkpoint else None
    cfg = TrainConfig(seed=plan.seed, **spec.train)
    oracle: Built | None = ctx.value(oracle_unit(spec).stage) if spec.substitute else None
    spec_key = model_spec(plan, spec, ds.fingerprint(), oracle.key if oracle else None)
    key = content_key("model", spec_key)

    entry = ctx.cache.get("model", key)
    seeded(plan.seed)
    model = base_builder(ctx, spec)().to(ctx.torch_device())  # a fresh model: moved in place
    if entry is None:
        check_fits_data(model, ds, where=where)
        with ctx.cache.build("model", key) as tmp:
            if ckpt is not None:
                load_state_dict(model, ckpt, where=where)
                history: list[dict] = []
            else:
                if not len(ds.x_train):
                    raise DataError(f"{where}: the data set has no training samples and no checkpoint was given")
                history = (train(model, ds.x_train, ds.y_train, cfg, desc=f"train {spec.name}") if oracle is None
                           else query_substitute(ctx, spec, model, oracle, cfg, where=where))
            acc = float(np.mean(predict_logits(model, ds.x_test).argmax(1) == ds.y_test))
            torch.save(cpu_state(model.state_dict()), tmp / "model.pt")  # stored from the CPU
            (tmp / "train.json").write_text(json.dumps({"history": history, "host_clean_acc": acc,
                                                        "spec": spec_key, "device": record(ctx.torch_device())},
                                                       indent=1, default=str))
        entry = ctx.cache.path("model", key)
        cached = False
    else:
        cached = True
    load_state_dict(model, entry / "model.pt", where=where)
    model.eval()
    info = json.loads((entry / "train.json").read_text())
    built = export(ctx, Unit(spec.name), model, key, provenance={"arch": spec.arch, "factory": spec.factory})
    built.note = f"host clean acc {info['host_clean_acc']:.4f}{' (cached)' if cached else ''}"
    built.cached = cached
    built.device = info.get("device")
    store_variant(ctx, built, method="jbda substitute" if spec.substitute else "none", params=spec.substitute,
                  info={"train": info.get("history", [])[-1:]})
    return built


def check_fits_data(model: Any, ds: Any, *, where: str) -> None:
    """One test image through the fresh ``model`` (eval mode, no gradient, no random draw): a model that does not
    take the data set's inputs, or returns another number of scores than it has classes, is one line naming the
    entry, before any training."""
    import torch

    from edgebench.models.placement import to_model

    shape = "×".join(str(d) for d in ds.shape)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(to_model(model, ds.x_test[:1]))
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{where}: the model does not take this data set's {shape} inputs ({first}); check its "
                          f"arch, factory or params") from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[1] != ds.num_classes:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(f"{where}: the model returns {got} for one input, not (1, {ds.num_classes}) scores for "
                          f"this data set's {ds.num_classes} classes; check its arch, factory or params")


def query_substitute(ctx: RunContext, spec: ModelSpec, model: Any, oracle: Built, cfg: Any, *,
                     where: str) -> list[dict]:
    """Train the substitute ``model`` by JBDA (:mod:`edgebench.models.substitute`) on the training set's first
    ``holdout`` labelled images, asking the oracle's file through a host session (its boundary as its device jobs
    see it) for top-1 labels; the per-round history, its last entry holding the oracle's file and query count."""
    from edgebench.export.onnx_io import artifact_io
    from edgebench.models.substitute import ORACLE_BACKEND, train_substitute
    from edgebench.runtime import create_backend

    sub, ds = spec.substitute, ctx.ds
    if len(ds.x_train) < sub["holdout"]:
        raise DataError(f"{where}.substitute.holdout: {sub['holdout']} held images asked, the training set has "
                        f"{len(ds.x_train)}; lower holdout or use more training data")
    fmt, artifact = oracle.artifact_for(ORACLE_BACKEND)
    session = create_backend(ORACLE_BACKEND, where=f"{where}.substitute.oracle", io=artifact_io(oracle.cards[fmt]))
    session.load(artifact)
    n = sub["holdout"]
    out = train_substitute(model, session.predict, ds.x_train[:n], ds.y_train[:n], cfg, rounds=sub["rounds"],
                           lmbda=sub["lmbda"], tau=sub["tau"], desc=f"substitute {spec.name}")
    out["history"][-1].update(oracle=oracle.unit.id, oracle_sha256=oracle.cards[fmt]["sha256"],
                              oracle_queries=out["queries"], steps=out["steps"])
    return out["history"]


def base_builder(ctx: RunContext, spec: ModelSpec) -> Any:
    """A function building a fresh, untrained instance of the model ``spec`` (normalization included)."""
    from edgebench.models import create_model
    from edgebench.models.user import build_from_factory

    ds = ctx.ds
    where = f"{ctx.plan.source}: models[{spec.name}]"

    def build() -> Any:
        if spec.arch:
            x = ds.x_train
            mean = tuple(float(v) for v in x.mean(axis=(0, 2, 3))) if len(x) else (0.0,)
            std = tuple(max(float(v), 1e-3) for v in x.std(axis=(0, 2, 3))) if len(x) else (1.0,)
            return create_model(spec.arch, input_shape=ds.shape, num_classes=ds.num_classes, mean=mean,
                                std=std, where=where, **spec.params)
        return build_from_factory(spec.factory or "", spec.params, where=where)

    return build


def export(ctx: RunContext, unit: Unit, model: Any, model_key: str, *, provenance: dict[str, Any],
           compressed: Any = None) -> Built:
    """ONNX (always) and OpenVINO IR (fp32, and fp16 if asked) of the twin ``model`` — or the method's own
    artifacts (int8 QDQ) — each checked against the twin and described by a card."""
    from edgebench.compress.stats import file_stats
    from edgebench.export.card import ModelCard, artifact_files
    from edgebench.export.onnx import export_onnx, onnx_parity
    from edgebench.models.placement import cpu_copy

    ds, m, ex, plan = ctx.ds, ctx.plan.measure, ctx.plan.export, ctx.plan
    atol = compressed.parity_atol if compressed is not None and compressed.parity_atol is not None \
        else m.parity_atol
    precision = compressed.precision if compressed is not None else "f32"
    deploy = compressed.deploy if compressed is not None and compressed.deploy is not None else model
    deploy = cpu_copy(deploy)  # exported from the CPU: the same files whichever device computed the twin
    key = export_key(plan, model_key, atol)
    formats = ["onnx"] + (["openvino"] if ex.openvino else []) + (["openvino-fp16"] if ex.openvino and ex.fp16
                                                                   else [])
    formats += ["onnx-fp16"] if ex.fp16 and precision == "f32" else []  # fp16 of a float graph only (not int8)
    entry = ctx.cache.get("export", key)
    if entry is None:
        x_par = ds.x_test[:m.parity_n]
        with ctx.cache.build("export", key) as tmp:
            for fmt in formats:
                path = tmp / ARTIFACT_FILES[fmt]
                if fmt == "onnx":
                    custom = compressed.export_onnx if compressed is not None else None
                    (custom or (lambda p: export_onnx(deploy, ds.shape, p)))(path)
                    parity = onnx_parity(model, path, x_par, atol=atol)
                    prec = precision
                elif fmt == "onnx-fp16":
                    from edgebench.export.fp16 import FP16_ATOL, to_fp16

                    to_fp16(tmp / ARTIFACT_FILES["onnx"], path)
                    parity, prec = onnx_parity(model, path, x_par, atol=max(atol, FP16_ATOL)), "f16"
                else:
                    from edgebench.export.fp16 import FP16_ATOL
                    from edgebench.export.openvino import export_openvino, openvino_parity

                    custom = compressed.export_openvino if compressed is not None else None
                    fp16 = fmt == "openvino-fp16"
                    (custom or (lambda p, fp16=fp16: export_openvino(deploy, ds.shape, p, fp16=fp16)))(path)
                    parity = openvino_parity(model, path, x_par, atol=max(atol, FP16_ATOL) if fp16 else atol)
                    prec = "f16 weights" if fp16 else precision
                sizes = file_stats(artifact_files(path))
                card = ModelCard(
                    name=unit.id, format=fmt, input_shape=ds.shape, num_classes=ds.num_classes,
                    classes=ds.classes, sha256=sha256_file(path), size_bytes=sizes["size_bytes"],
                    deflate_bytes=sizes["deflate_bytes"],
                    provenance={**provenance, "model": unit.model, "variant": unit.variant, "precision": prec,
                                "model_key": model_key, "dataset": ds.name, "data_fingerprint": ds.fingerprint(),
                                "plan": plan.name, "edgebench": __version__,
                                "torch": __import__("torch").__version__},
                    parity=parity)
                card.save(path)
        entry = ctx.cache.path("export", key)
    return register_artifacts(ctx, unit, {f: entry / ARTIFACT_FILES[f] for f in formats}, key, model)


def register_artifacts(ctx: RunContext, unit: Unit, paths: dict[str, Path], key: str, model: Any) -> Built:
    """Record a unit's artifacts (with their cards) and return it built."""
    from edgebench.export.card import card_path

    cards = {}
    for fmt, path in paths.items():
        card = json.loads(card_path(path).read_text())
        ctx.store.put_artifact(ctx.run_id, model=unit.model, variant=unit.variant, format=fmt, path=str(path),
                               sha256=card["sha256"], size_bytes=card["size_bytes"], parity=card["parity"],
                               card=card)
        cards[fmt] = card
    return Built(unit, key, dict(paths), cards, model)


def store_variant(ctx: RunContext, built: Built, *, method: str, params: dict[str, Any], info: dict[str, Any],
                  parent: Unit | None = None) -> None:
    """Parameters, MACs, sizes, DEFLATE, ΔW and weight histograms of a built unit, into the store. ΔW is taken
    against ``parent``, the model the method was applied to (the base unless the variant is chained: for
    ``adv+q``, what quantizing the adversarially trained model changed, as in seed 003's Fig. 3)."""
    if built.torch_model is None:
        stats: dict[str, Any] = {}
    else:
        from edgebench.compress.stats import model_stats

        base: Built | None = None
        if built.unit.variant != BASE:
            base = ctx.value((parent or Unit(built.unit.model)).stage)
        # a function of the two twins: cached beside them, so a resumed run does not redo the SVDs
        key = content_key("stats", {"unit": built.key, "parent": base.key if base else None,
                                    "shape": list(ctx.ds.shape),
                                    "code": code_fingerprint("edgebench.compress.stats")})
        entry = ctx.cache.get("stats", key)
        if entry is None:  # weight statistics and MACs: on CPU copies, whichever device holds the twins
            from edgebench.models.placement import cpu_copy

            computed = model_stats(cpu_copy(built.torch_model), ctx.ds.shape,
                                   base=cpu_copy(base.torch_model) if base else None)
            with ctx.cache.build("stats", key) as tmp:
                (tmp / "stats.json").write_text(json.dumps(computed, default=float))
            entry = ctx.cache.path("stats", key)
        stats = json.loads((entry / "stats.json").read_text())
    stats["artifacts"] = {fmt: {"size_bytes": c["size_bytes"], "deflate_bytes": c.get("deflate_bytes"),
                                "precision": c.get("provenance", {}).get("precision")}
                          for fmt, c in built.cards.items()}
    ctx.store.put_variant(ctx.run_id, model=built.unit.model, variant=built.unit.variant, method=method,
                          params=params, info=info, stats=stats)


def apply_method(ctx: RunContext, c: CompressSpec) -> Built:
    """Apply a variant method (a compression method or a defense, ``c.kind``) to a trained model or to the
    variant it is applied ``on``; cache the twin; export and check it."""
    from edgebench.hostdevice import place
    from edgebench.models.train import TrainConfig, predict_logits, seeded
    from edgebench.variants import Variant, VariantContext, create_method

    plan = ctx.plan
    unit = Unit(c.model, c.variant)
    base: Built = ctx.value(Unit(c.model, c.on).stage)  # the model the method is applied to
    spec = ctx.spec(c.model)
    ds = ctx.ds
    on = "" if c.on == BASE else f" applied on {c.on!r}"
    where = f"{plan.source}: {c.kind} (variant {c.variant!r} of model {c.model!r}{on})"
    method = create_method(c.kind, c.method, where=where, **c.params)
    key = variant_key(plan, c, base.key)
    dev, device = ctx.stage_device(method, f"{c.kind} {c.method!r}")  # the CPU where the method declares cpu_only
    base_model = place(base.torch_model, dev)
    mctx = VariantContext(x_train=ds.x_train, y_train=ds.y_train, input_shape=ds.shape,
                          num_classes=ds.num_classes, train=TrainConfig(seed=plan.seed, **spec.train),
                          seed=plan.seed, where=where, build_base=base_builder(ctx, spec),
                          workdir=variant_workdir(ctx, key))
    entry = ctx.cache.get("variant", key)
    cached = entry is not None
    if entry is None:
        seeded(plan.seed)
        t0 = time.perf_counter()
        result = method.apply(base_model, mctx)
        seconds = time.perf_counter() - t0
        result.model.eval()
        acc = float(np.mean(predict_logits(result.model, ds.x_test).argmax(1) == ds.y_test))
        with ctx.cache.build("variant", key) as tmp:
            method.save_twin(result.model, tmp / "twin.pt")  # save_twin stores from the CPU
            (tmp / "variant.json").write_text(json.dumps(
                {"info": result.info, "history": result.history, "host_clean_acc": acc, "seconds": seconds,
                 "parity_atol": result.parity_atol, "precision": result.precision, "device": device},
                indent=1, default=str))
        entry = ctx.cache.path("variant", key)
        if mctx.workdir is not None:  # the checkpoints of an interrupted build are no longer needed
            shutil.rmtree(mctx.workdir, ignore_errors=True)
    meta = json.loads((entry / "variant.json").read_text())
    if cached:
        twin = place(method.load_twin(entry / "twin.pt", base_model), dev)
        result = Variant(model=twin, info=meta["info"], parity_atol=meta["parity_atol"],
                         precision=meta["precision"])
    method.attach(result, base_model, mctx)
    built = export(ctx, unit, result.model, key, compressed=result,
                   provenance={"method": c.method, "params": c.params, "base_key": base.key, "kind": c.kind,
                               "on": c.on})
    store_variant(ctx, built, method=c.method if c.on == BASE else f"{c.on} → {c.method}", params=c.params,
                  parent=Unit(c.model, c.on),
                  info={**meta["info"], "seconds": meta["seconds"], "host_clean_acc": meta["host_clean_acc"],
                        "history": meta["history"]})
    built.note = f"host clean acc {meta['host_clean_acc']:.4f}{' (cached)' if cached else ''}"
    built.cached = cached
    built.device = meta.get("device")
    if built.device and built.device.get("note"):  # a cpu_only method on a GPU run: said, never silent
        built.note += f"; {built.device['note']}"
    return built


def import_onnx(ctx: RunContext, spec: ModelSpec) -> Built:
    """A ready ONNX file, taken as it is: its graph checked against the data and the entry's boundary keys
    (:func:`~edgebench.export.onnx_io.inspect_onnx`), run through ONNX Runtime at its own batch and boundary on a
    few test samples, and copied unchanged into the cache with a card holding the boundary. It has no torch twin,
    so it is evaluated on adversarial examples of its ``attack_source``."""
    from edgebench.compress.stats import file_stats
    from edgebench.export.card import ModelCard
    from edgebench.export.onnx_io import check_scores, inspect_onnx
    from edgebench.runtime import create_backend

    ds = ctx.ds
    src = Path(spec.onnx or "")
    where = f"{ctx.plan.source}: models[{spec.name}].onnx"
    if not src.is_file():
        raise ArtifactError(f"{where}: {src} not found")
    digest = sha256_file(src)
    key = onnx_import_key(digest, ds.fingerprint(), spec.io)
    entry = ctx.cache.get("onnx", key)
    if entry is None:
        from edgebench.export.onnx_import import check_external_data

        check_external_data(src, where=where)  # before any runtime follows its paths
        backend = create_backend("onnxruntime", io={})
        try:
            backend.load(src)  # the runtime's own word on a file that is not ONNX, before the graph is read
            boundary = inspect_onnx(src, spec.io, ds.shape, where=where)
            if boundary["io"]:
                backend = create_backend("onnxruntime", io=boundary["io"])
                backend.load(src)
        except ArtifactError as exc:
            raise ArtifactError(exc if str(exc).startswith(where) else f"{where}: {exc}") from None
        check_scores(backend, boundary, ds.x_test, ds.num_classes, where=where, path=src)
        with ctx.cache.build("onnx", key) as tmp:
            shutil.copyfile(src, tmp / "model.onnx")
            ModelCard(name=spec.name, format="onnx", input_shape=ds.shape, num_classes=ds.num_classes,
                      classes=ds.classes, sha256=digest, **file_stats([src]),
                      provenance={"imported_from": str(src.resolve()), "boundary": boundary},
                      parity={"note": "no torch twin: imported ONNX model"}).save(tmp / "model.onnx")
        entry = ctx.cache.path("onnx", key)
    built = register_artifacts(ctx, Unit(spec.name), {"onnx": entry / "model.onnx"}, key, None)
    store_variant(ctx, built, method="none", params={}, info={"imported_from": str(src)})
    return built
