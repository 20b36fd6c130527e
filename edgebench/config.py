"""Plans: TOML -> the frozen dataclasses of :mod:`edgebench.specs`, validated at the edge.

Unknown keys and bad values raise :class:`~edgebench.errors.ConfigError` naming the file, the key and the
allowed values. Names (datasets, models, attacks, backends, targets) are checked against their registries
so that a typo fails before any work starts.
"""

from __future__ import annotations

import math
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError, EdgebenchError
from edgebench.naming import slug
from edgebench.plan_references import parse_references
from edgebench.plan_seeds import plan_seeds, seeds_error
from edgebench.query_plan import attack_where, check_device_attacks, check_onnx_sources, is_query, query_threat
from edgebench.specs import (
    TARGETINGS,
    THREATS,
    AttackSpec,
    CompressSpec,
    DataSpec,
    ExportSpec,
    GatesSpec,
    HostSpec,
    MeasureSpec,
    ModelSpec,
    Plan,
    TargetSpec,
    victim_matches,
)
from edgebench.toml_table import Table, read_toml


def _eps_list(t: Table, *, allow_inf: bool = False) -> tuple[float, ...]:
    raw = t.get("eps", (int, float, list), [0.0])
    values = raw if isinstance(raw, list) else [raw]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or v < 0 or (
                math.isinf(v) and not allow_inf):
            more = " (inf only for minimal attacks: cw, deepfool)" if not allow_inf else ""
            raise t.fail("eps", f"must be a number or list of numbers >= 0{more}, got {raw!r}")
    return tuple(float(v) for v in values)


def _threats(t: Table) -> tuple[str, ...]:
    raw = t.get("threat", (str, list), ["white-box"])
    values = [raw] if isinstance(raw, str) else raw
    bad = [v for v in values if v not in THREATS]
    if bad or not values:
        raise t.fail("threat", f"{bad or values!r}: choose from {list(THREATS)} (one or a list)")
    return tuple(dict.fromkeys(values))


def _parse_models(raw: list[Any], source: str) -> tuple[ModelSpec, ...]:
    from edgebench.models import MODELS
    from edgebench.models.substitute import read_substitute

    models = []
    for i, item in enumerate(raw):
        t = Table(item, source, f"models[{i}]")
        name = t.get("name", str, required=True)
        arch, factory, onnx = t.get("arch", str), t.get("factory", str), t.get("onnx", str)
        given = [k for k, v in (("arch", arch), ("factory", factory), ("onnx", onnx)) if v]
        if len(given) != 1:
            raise t.fail("arch", f"give exactly one of 'arch' (a zoo model: {MODELS.names()}), 'factory' "
                                  f"('package.module:function') or 'onnx' (a file); got {given or 'none'}")
        if arch:
            MODELS.get(arch, where=f"{source}: {t.path('arch')}")
        if factory and ":" not in factory:
            raise t.fail("factory", f"must be 'package.module:function', got {factory!r}")
        spec = ModelSpec(
            name=name, arch=arch, factory=factory, onnx=onnx, checkpoint=t.get("checkpoint", str),
            params=t.get("params", dict, {}), train=_parse_train(t.table("train")),
            attack_source=t.get("attack_source", str), bpda=t.get("bpda", bool, False),
            io=_io_keys(t, onnx=bool(onnx)), substitute=read_substitute(t.table("substitute")),
        )
        if spec.bpda and onnx:
            raise t.fail("bpda", "an ONNX model has no torch twin to attack through BPDA; drop bpda")
        t.done()
        models.append(spec)
    names = [m.name for m in models]
    for i, m in enumerate(models):
        if names.count(m.name) > 1:
            raise ConfigError(f"{source}: models[{i}].name: {m.name!r} is used twice; names must be unique")
        if m.attack_source is not None and m.attack_source not in names:
            raise ConfigError(f"{source}: models[{i}].attack_source: {m.attack_source!r} is not a model of this "
                              f"plan; allowed: {names}")
    return tuple(models)


def _io_keys(t: Table, *, onnx: bool) -> dict[str, Any]:
    """An ONNX model's boundary keys (``layout``, ``input_range``, ``output``, ``scores``)."""
    from edgebench.export.onnx_io import read_io_keys

    return read_io_keys(t, onnx=onnx)


def _sweepable(cls: Any) -> set[str]:
    """Parameters of a method that take one scalar (a list given for them is a sweep)."""
    import inspect

    return {n for n, p in inspect.signature(cls.__init__).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and "list" not in str(p.annotation)}


def _fmt(v: Any) -> str:
    """A swept value as part of a variant name ("1/8" -> "1_8")."""
    return slug(f"{v:g}" if isinstance(v, float) else str(v))


def _parse_variants(raw: list[Any], source: str, models: tuple[ModelSpec, ...], kind: str) -> list[CompressSpec]:
    """``[[compress]]`` (``kind="compress"``) or ``[[defend]]`` (``kind="defend"``) entries as variants. A
    variant applied ``on`` another variant is named ``<on>+<label>`` (``adv-pgd+kbit-3``)."""
    import itertools

    if not raw:
        return []
    from edgebench.variants import create_method, method_for

    torch_models = [m.name for m in models if not m.onnx]
    specs: list[CompressSpec] = []
    for i, item in enumerate(raw):
        t = Table(item, source, f"{kind}[{i}]")
        method = t.get("method", str, required=True)
        cls = method_for(kind, method, where=f"{source}: {t.path('method')}")
        label = t.get("label", str, method)
        if not label or slug(label, default="") != label:
            raise t.fail("label", f"{label!r}: use letters, digits, '.', '_' and '-' only, not '_' at either end "
                                  "(it names files)")
        model = t.get("model", str)
        if model is not None and model not in [m.name for m in models]:
            raise t.fail("model", f"{model!r} is not a model of this plan; allowed: {[m.name for m in models]}")
        if model is not None and model not in torch_models:
            raise t.fail("model", f"{model!r} is an ONNX file; {kind} needs a torch model ({torch_models})")
        if model is None and not torch_models:
            raise t.fail("model", f"the plan has no torch model to {kind} (ONNX models cannot be changed)")
        on = t.get("on", (str, list), "base")
        ons = on if isinstance(on, list) else [on]
        if not ons or not all(isinstance(o, str) and o for o in ons):
            raise t.fail("on", f"give 'base' or variant names (a string or a list of strings), got {on!r}")
        bpda = t.get("bpda", bool, False)  # how its twin is attacked, not a parameter of the method
        params = t.rest()
        sweep = {k: v for k, v in params.items() if isinstance(v, list) and k in _sweepable(cls)}
        for k, v in sweep.items():
            if not v:
                raise t.fail(k, "an empty list gives no variant; give a value or a non-empty list")
        keys = list(sweep)
        for combo in itertools.product(*(sweep[k] for k in keys)) if keys else [()]:
            values = dict(zip(keys, combo))
            suffix = "-".join(_fmt(v) if len(keys) == 1 else f"{k}{_fmt(v)}" for k, v in values.items())
            name = f"{label}-{suffix}" if suffix else label
            p = {**params, **values}
            try:
                create_method(kind, method, where=f"{source}: {kind}[{i}]", **p)
            except ConfigError as exc:
                raise ConfigError(f"{source}: {kind}[{i}] (variant {name!r}): "
                                  f"{str(exc).removeprefix(f'{source}: {kind}[{i}]').lstrip(':. ')}") from None
            except (TypeError, ValueError) as exc:  # a value of the wrong type that the method did not check
                raise ConfigError(f"{source}: {kind}[{i}] (variant {name!r}): bad parameter value in {p} "
                                  f"({type(exc).__name__}: {exc})") from None
            for parent in ons:
                variant = name if parent == "base" else f"{parent}+{name}"
                for m in [model] if model else torch_models:
                    specs.append(CompressSpec(method=method, variant=variant, model=m, params=p, on=parent,
                                              kind=kind, bpda=bpda))
    return specs


def _parse_compress(raw: list[Any], source: str, models: tuple[ModelSpec, ...],
                    defend: list[Any] | None = None) -> tuple[CompressSpec, ...]:
    """Every variant of the plan, ``[[compress]]`` and ``[[defend]]``, in an order where each comes after the
    variant it is applied on; names unique per model, ``on`` naming an existing variant, no cycles."""
    specs = _parse_variants(raw, source, models, "compress") + _parse_variants(defend or [], source, models,
                                                                                "defend")
    seen: set[tuple[str, str]] = set()
    for s in specs:
        if (s.model, s.variant) in seen:
            raise ConfigError(f"{source}: {s.kind}: variant {s.variant!r} of model {s.model!r} is defined twice; "
                              "give the entries distinct labels")
        if s.variant == "base":
            raise ConfigError(f"{source}: {s.kind}: 'base' names the uncompressed model; choose another label")
        seen.add((s.model, s.variant))
    for s in specs:
        if s.on != "base" and (s.model, s.on) not in seen:
            known = sorted(v for m, v in seen if m == s.model and v != s.variant)
            raise ConfigError(f"{source}: {s.kind} (variant {s.variant!r}): on = {s.on!r} is not a variant of "
                              f"model {s.model!r}; allowed: 'base' or one of {known}")
    ordered: list[CompressSpec] = []
    placed: set[tuple[str, str]] = set()
    pending = list(specs)
    while pending:
        ready = [s for s in pending if s.on == "base" or (s.model, s.on) in placed]
        if not ready:
            raise ConfigError(f"{source}: variants applied on each other in a cycle: "
                              f"{sorted(s.variant for s in pending)}")
        ordered += ready
        placed |= {(s.model, s.variant) for s in ready}
        pending = [s for s in pending if s not in ready]
    return tuple(ordered)


def _parse_export(t: Table) -> ExportSpec:
    spec = ExportSpec(openvino=t.get("openvino", bool, True), fp16=t.get("fp16", bool, False))
    t.done()
    return spec


def _parse_train(t: Table) -> dict[str, Any]:
    from edgebench.models.train import TrainConfig

    cfg = {
        "epochs": t.number("epochs", 10, lo=0, integer=True),
        "batch_size": t.number("batch_size", 64, lo=1, integer=True),
        "lr": t.number("lr", 1e-3, lo=0, lo_open=True),
        "weight_decay": t.number("weight_decay", 0.0, lo=0),
        "optimizer": t.choice("optimizer", ["adam", "sgd"], "adam"),
    }
    t.done()
    TrainConfig(**cfg)
    return cfg


def _victims(t: Table) -> tuple[str, ...]:
    raw = t.get("victims", (str, list), "*")
    victims = raw if isinstance(raw, list) else [raw]
    if not victims or not all(isinstance(v, str) and v for v in victims):
        raise t.fail("victims", f"give variant names or globs ('base', 'hashed-*', 'orig/base'), got {raw!r}")
    return tuple(victims)


def _family_keys(t: Table) -> dict[str, Any]:
    from edgebench.families import parse_family

    family, holdout = parse_family(t)
    return {"family": family, "holdout": holdout}


def _craft_label(t: Table, name: str, query: bool) -> str:
    """``craft_label``: ``true`` (default) or ``predicted`` (untargeted, gradient attacks, one model at a time)."""
    from edgebench.attacks.base import CRAFT_LABELS

    label = t.choice("craft_label", list(CRAFT_LABELS), "true")
    if label == "predicted":
        if query:
            raise t.fail("craft_label", f"attack {name!r} is query-based; 'predicted' is for host-crafted attacks")
        if t.get("targeted", str, "none") != "none":
            raise t.fail("craft_label", "'predicted' is for untargeted attacks; drop it or set targeted = 'none'")
        if "family" in _threats(t):
            raise t.fail("craft_label", "'predicted' is not defined for threat 'family' (members may disagree)")
    return label


def _parse_attacks(raw: list[Any], source: str) -> tuple[AttackSpec, ...]:
    from edgebench.attacks import ATTACKS
    from edgebench.attacks.base import check_params

    attacks = []
    for i, item in enumerate(raw):
        t = Table(item, source, f"attacks[{i}]")
        name = t.get("name", str, required=True)
        cls = ATTACKS.get(name, where=f"{source}: {t.path('name')}")
        query = is_query(cls)
        spec = AttackSpec(
            name=name, label=t.get("label", str, name), eps=_eps_list(t, allow_inf=cls.minimal),
            n=t.number("n", None, lo=1, integer=True), batch_size=t.number("batch_size", 256, lo=1, integer=True),
            threat=query_threat(t, name) if query else _threats(t), surrogate=t.get("surrogate", str),
            min_eps=t.get("min_eps", bool, False),
            targeted=t.choice("targeted", list(TARGETINGS), "none"), round_8bit=t.get("round_8bit", bool, False),
            victims=_victims(t), suite=t.get("suite", bool, True), **_family_keys(t),
            where=attack_where(t, name, query), craft_label=_craft_label(t, name, query), params=t.rest(),
        )
        if spec.targeted != "none" and not cls.targeted_ok:
            raise ConfigError(f"{source}: {t.path('targeted')}: attack {name!r} has no targeted mode")
        if spec.surrogate is not None and "transfer" not in spec.threat:
            raise ConfigError(f"{source}: {t.path('surrogate')}: a surrogate is used by threat 'transfer'; add it "
                              "to threat or drop surrogate")
        check_params(cls, spec.params, where=f"{source}: attacks[{i}]")
        try:
            cls(**spec.params)
        except EdgebenchError as exc:
            raise ConfigError(f"{source}: attacks[{i}]: {exc}") from None
        except TypeError as exc:
            raise ConfigError(f"{source}: attacks[{i}]: bad parameter ({exc})") from None
        attacks.append(spec)
    labels = [a.label for a in attacks]
    if "suite" in labels:  # the worst case over the suite has its own rows (edgebench.runner.suite)
        raise ConfigError(f"{source}: attacks[{labels.index('suite')}].label: 'suite' names the worst case over the "
                          "attack suite in the results; choose another label")
    for i, a in enumerate(attacks):
        if labels.count(a.label) > 1:
            raise ConfigError(f"{source}: attacks[{i}].label: {a.label!r} is used twice; give each a distinct label")
    return tuple(attacks)


def _check_surrogates(attacks: tuple[AttackSpec, ...], models: tuple[ModelSpec, ...],
                      compress: tuple[CompressSpec, ...], source: str) -> None:
    """A surrogate names a torch model or variant of the plan: ``model`` or ``model/variant``."""
    torch_models = {m.name for m in models if not m.onnx}
    units = sorted(torch_models | {f"{c.model}/{c.variant}" for c in compress if c.model in torch_models})
    variants = ["base", *dict.fromkeys(c.variant for c in compress)]
    pairs = [(m.name, v) for m in models for v in ["base", *(c.variant for c in compress if c.model == m.name)]]
    qualified = [f"{m}/{v}" for m, v in pairs]
    for i, a in enumerate(attacks):
        if a.surrogate is not None and a.surrogate not in units:
            raise ConfigError(f"{source}: attacks[{i}].surrogate: {a.surrogate!r} is not a torch model or variant "
                              f"of this plan; choose one of {units}")
        for v in a.victims:
            if not any(victim_matches(v, m, var) for m, var in pairs):
                raise ConfigError(f"{source}: attacks[{i}].victims: {v!r} matches no "
                                  f"{'model/variant' if '/' in v else 'variant'} of this plan; variants are "
                                  f"{variants}, and model/variant names such as {qualified[:3]}")


def _check_families(attacks: tuple[AttackSpec, ...], models: tuple[ModelSpec, ...],
                    compress: tuple[CompressSpec, ...], source: str) -> None:
    from edgebench.attacks import ATTACKS
    from edgebench.families import check_families

    if any("family" in a.threat or a.family or a.holdout for a in attacks):
        check_families(attacks, models, compress, source, {n: ATTACKS.get(n) for n in ATTACKS.names()})


def _parse_targets(raw: list[Any], source: str) -> tuple[TargetSpec, ...]:
    from edgebench.runtime import BACKENDS
    from edgebench.targets import load_target

    targets = []
    for i, item in enumerate(raw):
        t = Table(item, source, f"targets[{i}]")
        name = t.get("target", str, required=True)
        fleet = t.get("fleet", list, [])
        if fleet and (not all(isinstance(m, str) and m for m in fleet) or len(set(fleet)) != len(fleet)
                      or len(fleet) < 2):
            raise t.fail("fleet", f"list two or more different target names (identical devices), got {fleet!r}")
        if fleet and not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise t.fail("target", f"a fleet's name {name!r}: use letters, digits, '.', '_' and '-' only")
        members = []
        for m in fleet or [name]:
            try:
                members.append(load_target(m, where=f"{source}: {t.path('fleet' if fleet else 'target')}"))
            except (OSError, UnicodeDecodeError) as exc:  # a target file that is not readable text
                raise t.fail("fleet" if fleet else "target", f"cannot read target file {m!r} ({exc})") from None
        target = members[0]
        for other in members[1:]:  # identical devices: the same backends, settings and power sensor
            for what, a, b in (("backends", target.backends, other.backends), ("power", target.power, other.power)):
                if a != b:
                    raise t.fail("fleet", f"members must be identical devices, but {other.name!r} ({other.source}) "
                                           f"has other {what} than {target.name!r} ({target.source}): {b!r} vs {a!r}")
        backends = t.get("backends", list, list(target.backends))
        if not all(isinstance(b, str) for b in backends):
            raise t.fail("backends", f"give backend names (strings), got {backends!r}")
        for b in backends:
            BACKENDS.get(b, where=f"{source}: {t.path('backends')}")
            if b not in target.backends:
                raise t.fail("backends", f"target {target.name!r} has no backend {b!r}; it has "
                                          f"{list(target.backends)} (add it to {target.source})")
        t.done()
        targets.append(TargetSpec(target=name, backends=tuple(backends), fleet=tuple(fleet)))
    names = [x.target for x in targets]
    for dup in {n for n in names if names.count(n) > 1}:
        raise ConfigError(f"{source}: targets: {dup!r} is listed twice; list each target or fleet once")
    return tuple(targets)


def _parse_measure(t: Table) -> MeasureSpec:
    d = MeasureSpec()
    spec = MeasureSpec(
        batch_size=t.number("batch_size", d.batch_size, lo=1, integer=True),
        warmup=t.number("warmup", d.warmup, lo=0, integer=True),
        min_runs=t.number("min_runs", d.min_runs, lo=1, integer=True),
        min_duration_s=t.number("min_duration_s", d.min_duration_s, lo=0),
        max_runs=t.number("max_runs", d.max_runs, lo=1, integer=True),
        rounds=t.number("rounds", d.rounds, lo=1, integer=True),
        cooldown_s=t.number("cooldown_s", d.cooldown_s, lo=0),
        settle_s=t.number("settle_s", d.settle_s, lo=0),
        settle_c=t.number("settle_c", d.settle_c, lo=0, lo_open=True),
        parity_atol=t.number("parity_atol", d.parity_atol, lo=0),
        parity_n=t.number("parity_n", d.parity_n, lo=1, integer=True),
        energy_idle_s=t.number("energy_idle_s", d.energy_idle_s, lo=0),
        energy_min_window_s=t.number("energy_min_window_s", d.energy_min_window_s, lo=0, lo_open=True),
        energy_windows=t.number("energy_windows", d.energy_windows, lo=1, integer=True),
        energy_min_samples=t.number("energy_min_samples", d.energy_min_samples, lo=1, integer=True),
        profile_runs=t.number("profile_runs", d.profile_runs, lo=0, integer=True),
    )
    t.done()
    if spec.rounds > spec.min_runs:
        raise t.fail("rounds", f"{spec.rounds} rounds need at least one timed run each, but min_runs is "
                               f"{spec.min_runs}; lower rounds or raise min_runs")
    return spec


def parse_plan(raw: dict[str, Any], source: str, *, quick: bool = False) -> Plan:
    """Validate a plan document. With ``quick``, the plan's ``[quick]`` table overrides its sizes:
    ``n_train``, ``n_test``, ``epochs``, ``attack_n``, ``compress_epochs``, ``seeds`` (the plan's declared quick
    size; ``seeds``: the training seeds at that size, e.g. ``[0]`` for a plan whose full size runs three)."""
    top = Table(raw, source, "")
    head = top.table("plan")
    name = head.get("name", str, Path(source).stem)
    seed, seeds = plan_seeds(head)
    head.done()
    d = top.table("data")
    from edgebench.data import DATASETS

    dataset = d.get("dataset", str, "digits")
    from edgebench.registry import check_kwargs

    loader = DATASETS.get(dataset, where=f"{source}: data.dataset")
    # n_train, n_test and seed are the deterministic subset's (every dataset has them); they also go to the
    # loader only where it takes them itself (synthetic's sizes, digits' split seed)
    import inspect

    takes = inspect.signature(loader).parameters
    params = {k: v for k, v in d.rest().items() if k not in ("n_train", "n_test", "seed") or k in takes}
    check_kwargs(loader, params, what=f"dataset {dataset!r}", where=f"{source}: data")
    data = DataSpec(dataset=dataset, n_train=d.number("n_train", None, lo=1, integer=True),
                    n_test=d.number("n_test", None, lo=1, integer=True),
                    seed=d.number("seed", seed, lo=0, integer=True), params=params)
    q = top.table("quick")
    quick_cfg = {
        "n_train": q.number("n_train", None, lo=1, integer=True),
        "n_test": q.number("n_test", None, lo=1, integer=True),
        "epochs": q.number("epochs", None, lo=0, integer=True),
        "attack_n": q.number("attack_n", None, lo=1, integer=True),
        "compress_epochs": q.number("compress_epochs", None, lo=0, integer=True),
        "seeds": q.get("seeds", list, None),
    }
    if quick_cfg["seeds"] is not None and (why := seeds_error(quick_cfg["seeds"])) is not None:
        raise q.fail("seeds", why)
    q.done()
    models = _parse_models(top.get("models", list, []), source)
    compress = _parse_compress(top.get("compress", list, []), source, models, top.get("defend", list, []))
    export = _parse_export(top.table("export"))
    attacks = _parse_attacks(top.get("attacks", list, []), source)
    targets = _parse_targets(top.get("targets", list, []), source)
    measure = _parse_measure(top.table("measure"))
    top_references = top.get("reference", list, [])
    gates = _parse_gates(top.table("gates"), attacks)
    host = _parse_host(top.table("host"), source)
    top.done(allowed_extra=("budget", "search"))  # a search plan's: checked below (edgebench.search.space)
    if not models:
        raise ConfigError(f"{source}: models: the plan has no [[models]] entry; add at least one")
    _check_surrogates(attacks, models, compress, source)
    from edgebench.models.substitute import check_oracles

    check_oracles(models, [m.name for m in models] + [f"{c.model}/{c.variant}" for c in compress], source)
    _check_families(attacks, models, compress, source)
    check_onnx_sources(models, attacks, source)
    check_device_attacks(attacks, targets, source)
    references = parse_references(top_references, source, models, compress, attacks)
    plan = Plan(name=name, source=source, seed=seed, data=data, models=models, compress=compress, export=export,
                seeds=seeds, attacks=attacks, targets=targets,
                measure=measure, quick={k: v for k, v in quick_cfg.items() if v is not None},
                references=references, gates=gates, host=host)
    if "budget" in raw or "search" in raw:  # `edgebench run` on a search plan runs its base and grid
        from edgebench.search.space import parse_search

        parse_search(raw, plan)
    return apply_quick(plan) if quick else plan


def _parse_host(t: Table, source: str) -> HostSpec:
    """``[host]`` (:class:`~edgebench.specs.HostSpec`): the device spec is checked here (its CUDA probe is at run
    start, :func:`edgebench.hostdevice.resolve`)."""
    from edgebench.hostdevice import DEFAULT, check_spec

    where = f"{source}: [host] device"
    spec = HostSpec(device=check_spec(t.get("device", str, DEFAULT), where),
                    gpu_workers=t.number("gpu_workers", 1, lo=1, integer=True), origin=where)
    t.done()
    return spec


def _parse_gates(t: Table, attacks: tuple[AttackSpec, ...]) -> GatesSpec:
    """``[gates]`` (:class:`~edgebench.specs.GatesSpec`): limits in their units, ``min_robust_acc`` per attack label of
    the plan (a number: at the middle ε of the attack's grid; or ``{ eps = E, acc = A }`` for an ε of the grid)."""
    frac = {"lo": 0.0, "hi": 1.0}
    positive = {"lo": 0.0, "lo_open": True}
    robust: dict[str, dict[str, float | None]] = {}
    rt = t.table("min_robust_acc")
    grids = {a.label: a.eps for a in attacks}
    for label in list(rt.raw):
        if label not in grids:
            raise rt.fail(label, f"no attack of the plan is labelled {label!r}; gate one of {sorted(grids)}")
        value = rt.get(label, (int, float, dict))
        if isinstance(value, dict):
            one = Table(value, t.source, rt.path(label))
            eps = one.number("eps", None, lo=0, required=True)
            if not any(abs(eps - e) <= 1e-9 * max(1.0, abs(e)) for e in grids[label]):
                raise one.fail("eps", f"{eps!r} is not in the ε grid of {label!r} {list(grids[label])}")
            robust[label] = {"eps": float(eps), "acc": one.number("acc", None, required=True, **frac)}
            one.done()
        else:
            robust[label] = {"eps": None, "acc": rt.number(label, None, **frac)}
    gates = GatesSpec(
        max_clean_drop=t.number("max_clean_drop", None, **frac), min_clean_acc=t.number("min_clean_acc", None, **frac),
        min_robust_acc=robust, max_p50_ms=t.number("max_p50_ms", None, **positive),
        max_p99_ms=t.number("max_p99_ms", None, **positive), max_energy_mj=t.number("max_energy_mj", None, **positive),
        max_peak_rss_mb=t.number("max_peak_rss_mb", None, **positive),
        max_size_mb=t.number("max_size_mb", None, **positive),
        max_stored_mb=t.number("max_stored_mb", None, **positive),
        units=t.choice("units", ["variants", "all"], "variants"))
    t.done()
    return gates


def apply_quick(plan: Plan) -> Plan:
    """The plan at its declared quick size (smaller subsets, fewer epochs); named ``<name>-quick``."""
    from dataclasses import replace

    q = plan.quick
    data = replace(plan.data, n_train=q.get("n_train", plan.data.n_train), n_test=q.get("n_test", plan.data.n_test))
    models = tuple(replace(m, train={**m.train, "epochs": q.get("epochs", m.train.get("epochs"))}) for m in plan.models)
    attacks = tuple(replace(a, n=min(a.n or q["attack_n"], q["attack_n"]) if "attack_n" in q else a.n)
                    for a in plan.attacks)
    cap = q.get("compress_epochs")
    compress = tuple(replace(c, params={k: min(v, cap) if k in _EPOCH_KEYS and isinstance(v, int) else v
                                        for k, v in c.params.items()}) if cap is not None else c
                     for c in plan.compress)
    seeds = q.get("seeds")  # the test subset stays the plan's ([data] seed), as with edgebench run --seeds
    seeding = {} if seeds is None else {"seed": seeds[0], "seeds": tuple(seeds) if len(seeds) > 1 else ()}
    return replace(plan, name=f"{plan.name}-quick", data=data, models=models, attacks=attacks, compress=compress,
                   **seeding)


_EPOCH_KEYS = ("epochs", "epochs_per_step")


def default_plan_text() -> str:
    """The embedded default plan (digits, zero downloads)."""
    return resources.files("edgebench.plans").joinpath("default.toml").read_text()


def load_plan(path: str | Path | None = None, *, quick: bool = False) -> Plan:
    """Load and validate a plan file; ``None`` loads the embedded default plan."""
    if path is None:
        return parse_plan(tomllib.loads(default_plan_text()), "default plan", quick=quick)
    p = Path(path)
    return parse_plan(read_toml(p, "plan"), str(p), quick=quick)
