"""The craft stage: adversarial test sets of one attack on one source unit's torch twin, one float32 ``.npz``
per ε, cached by content key (:func:`edgebench.runner.keys.adv_key`)."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from edgebench.config import AttackSpec, Plan
from edgebench.runner.context import RunContext
from edgebench.runner.dataset import save_npz
from edgebench.runner.family import FamilySource, family_info, family_note, family_twin, twin_pred
from edgebench.runner.keys import adv_key, attack_n, bpda_on, seeded_params
from edgebench.runner.units import AdvSets, Built, Unit


def attack_targets(plan: Plan, attack: AttackSpec, y: np.ndarray, num_classes: int) -> np.ndarray | None:
    """The target class per sample for a targeted attack: the same for every source (so transfer compares like
    with like), never the true label; None for an untargeted attack."""
    if attack.targeted == "next":
        return (y + 1) % num_classes
    if attack.targeted == "random":
        rng = np.random.default_rng([plan.seed, len(y), *attack.label.encode()])
        return (y + rng.integers(1, num_classes, size=len(y))) % num_classes
    return None


def craft(ctx: RunContext, source: Unit | FamilySource, attack: AttackSpec) -> AdvSets:
    """Adversarial test sets of ``attack`` crafted on ``source``'s torch twin (a family's: EOT across its members'
    twins, :mod:`edgebench.runner.family`): one float32 ``.npz`` per ε (``x``, ``y``, the twin's ``host_pred``,
    per-sample ``success`` and norms, ``target`` if targeted)."""
    import torch

    from edgebench.attacks import ATTACKS, create_attack

    plan = ctx.plan
    if isinstance(source, FamilySource):
        model, source_key = family_twin({u: ctx.value(u.stage) for u in source.units}, source)
    else:
        built: Built = ctx.value(source.stage)
        model, source_key = built.torch_model, built.key
    ds = ctx.ds
    n = attack_n(attack, len(ds.x_test))
    cls = ATTACKS.get(attack.name)
    through = any(bpda_on(plan, u) for u in source.units) if isinstance(source, FamilySource) else \
        bpda_on(plan, source)  # BPDA: the identity as the backward pass of non-differentiable steps
    key = adv_key(plan, source_key, attack, n_test=len(ds.x_test), data_fingerprint=ds.fingerprint(), bpda=through)
    entry = ctx.cache.get("adv", key)
    cached = entry is not None
    if entry is None:
        from edgebench.hostdevice import place

        atk = create_attack(attack.name, where=f"{plan.source}: attacks[{attack.label}]", **seeded_params(plan, attack))
        dev, device = ctx.stage_device(atk, f"attack {attack.name!r}")  # the CPU where it declares cpu_only
        model = place(model, dev)
        if through:
            model = _through_bpda(plan, source, model)
        x, y = ds.x_test[:n], ds.y_test[:n]
        target = attack_targets(plan, attack, y, ds.num_classes)
        step = n if cls.universal else attack.batch_size  # one perturbation for the whole set
        parts = []
        t0 = time.perf_counter()
        torch.manual_seed(plan.seed)
        for i in range(0, n, step):
            parts.append(atk(model, x[i:i + step], y[i:i + step], eps=list(attack.eps),
                             target=None if target is None else target[i:i + step], label=attack.craft_label))
        seconds = time.perf_counter() - t0
        cat = {f: np.concatenate([getattr(p, f) for p in parts], axis=1)
               for f in ("x_adv", "pred", "success", "linf", "l2", "l0")}
        if attack.round_8bit:  # what an 8-bit image pipeline would deliver: re-predict, re-measure
            cat["x_adv"] = np.round(cat["x_adv"] * 255.0).astype(np.float32) / 255.0
            cat["pred"] = np.stack([twin_pred(model, xa, y, target) for xa in cat["x_adv"]])
            cat["success"] = (cat["pred"] != y) if target is None else (cat["pred"] == target)
            delta = np.abs(cat["x_adv"] - x[None]).reshape(len(attack.eps), n, -1)
            cat["linf"], cat["l2"] = delta.max(2), np.sqrt((delta ** 2).sum(2))
            cat["l0"] = (delta > 1e-6).sum(2)
        info = {"attack": parts[0].attack if parts else repr(atk), "source": source.id, "eps": list(attack.eps),
                "n": n, "seconds": seconds, "norm": atk.norm, "targeted": attack.targeted,
                "round_8bit": attack.round_8bit, "bpda": through, "craft_label": attack.craft_label,
                "forward_passes": sum(p.passes.forward for p in parts),
                "backward_passes": sum(p.passes.backward for p in parts),
                "host_success_rate": cat["success"].mean(axis=1).tolist(),
                "mean_linf": cat["linf"].mean(axis=1).tolist(), "mean_l2": cat["l2"].mean(axis=1).tolist(),
                "mean_l0": cat["l0"].mean(axis=1).tolist(), "device": device}
        if isinstance(source, FamilySource):
            info.update(family_info(model, source, cat["x_adv"], y, target))
        with ctx.cache.build("adv", key) as tmp:
            for k in range(len(attack.eps)):
                extra = {} if target is None else {"target": target}
                save_npz(tmp / f"eps{k}.npz", x=cat["x_adv"][k].astype(np.float32), y=y,
                         host_pred=cat["pred"][k], success=cat["success"][k], linf=cat["linf"][k],
                         l2=cat["l2"][k], l0=cat["l0"][k], **extra)
            (tmp / "attack.json").write_text(json.dumps(info, indent=1))
        entry = ctx.cache.path("adv", key)
    info = json.loads((entry / "attack.json").read_text())
    rates = ", ".join(f"ε={e:g}: {r:.3f}" for e, r in zip(attack.eps, info["host_success_rate"]))
    took = " (cached)" if cached else f" in {info['seconds']:.1f} s"
    took += f"; {info['device']['note']}" if (info.get("device") or {}).get("note") else ""  # cpu_only: said
    return AdvSets(source.id, attack, key, [entry / f"eps{k}.npz" for k in range(len(attack.eps))], info,
                   f"host success {rates}{took}{family_note(info)}", cached=cached, device=info.get("device"))


def _through_bpda(plan: Plan, source: Unit | FamilySource, model: Any) -> Any:
    """``model`` wrapped for BPDA; for a family, each member whose variant has ``bpda = true``."""
    from edgebench.attacks._family import ModelFamily
    from edgebench.attacks.bpda import bpda

    if not isinstance(model, ModelFamily):
        return bpda(model)
    assert isinstance(source, FamilySource)
    on = {u.variant for u in source.units if bpda_on(plan, u)}
    for i, name in enumerate(model.names):
        if name in on:
            model.members[i] = bpda(model.members[i])
    return model
