"""The worst case over an attack suite, and the gradient-masking check of gradient-free against gradient attacks.

**Suite robust accuracy** (AutoAttack's definition, Croce & Hein, "Reliable evaluation of adversarial robustness
with an ensemble of diverse parameter-free attacks", ICML 2020, Sec. 4): per unit, target, backend and ε, a
sample is robust only if the unit classifies it correctly when clean *and* every attack of the suite fails on it
on the device. The suite at ε is every untargeted attack of the plan whose budget norm is the same and whose grid
holds ε (an attack with ``suite = false`` stays out), from every source the unit was evaluated on (its own
white-box examples and any transferred ones), in plan order, the white-box source first. Two attacks at least make
a suite. The attacks of a plan may run on different numbers of samples (``n``); they all run on the first ``n``
test samples, so the suite is scored on the first ``min n`` of its members: the samples every member evaluated.
Beside the figure: per member, the samples it broke first in suite order, and the samples only it broke.

**Gradient masking** (Athalye, Carlini & Wagner, ICML 2018, Sec. 3; AutoAttack's check that Square, a
gradient-free attack, must not beat the gradient attacks): at each ε, an attack that needs no gradient
(``needs_gradient = False``) that succeeds on more of the same samples than *every* white-box gradient attack of
the same norm at that ε, each difference significant under McNemar's exact test (p < 0.05), is flagged
``gradient-free-above-gradient``: the gradients the white-box attacks followed are not the model's way to its
errors, so their robust accuracy overstates robustness.

Pure numpy over the per-sample outcomes :func:`edgebench.runner.score.score` collects (``per_sample``: per
(attack label, source), one row per ε with the ``hit`` and clean ``ok`` arrays, ``norm`` and ``set``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgebench.specs import AttackSpec

#: the ``attack`` of a suite's result rows (its ``threat`` is ``suite`` and its ``source`` names the norm)
SUITE = "suite"
FLAG_KIND = "gradient-free-above-gradient"

Rows = Mapping[tuple[str, str], list[dict[str, Any]]]


def suite_source(norm: str) -> str:
    """The ``source`` of a suite row: the suite of attacks of budget norm ``norm`` (``suite:linf``)."""
    return f"{SUITE}:{norm}"


def member_name(label: str, source: str, victim: str) -> str:
    """An attack of the suite as the report names it: its label, with the source when it was transferred."""
    return label if source == victim else f"{label} from {source}"


@dataclass
class SuiteScores:
    """What the suite adds to one unit × target × backend: result fields (without the device run's latency,
    energy and memory, which the caller adds), samples, flags and per-sample correctness for the paired tests."""

    records: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)
    correct: dict[tuple[Any, ...], np.ndarray] = field(default_factory=dict)


def groups(per_sample: Rows, attacks: Mapping[str, AttackSpec], victim: str, *,
           suite_only: bool = True) -> dict[tuple[str, float], list[tuple[str, str, dict[str, Any]]]]:
    """(norm, ε) -> [(label, source, row)] of the untargeted attacks at finite ε, in suite order (plan order of the
    attacks, the white-box source first); ``suite_only`` leaves out attacks with ``suite = false``."""
    order = {label: i for i, label in enumerate(attacks)}
    out: dict[tuple[str, float], list[tuple[str, str, dict[str, Any]]]] = {}
    for label, src in sorted(per_sample, key=lambda k: (order.get(k[0], len(order)), k[1] != victim, k[1])):
        spec = attacks.get(label)
        if spec is None or spec.targeted != "none" or (suite_only and not spec.suite):
            continue
        for row in per_sample[(label, src)]:
            if row.get("norm") and math.isfinite(float(row["eps"])):
                out.setdefault((row["norm"], float(row["eps"])), []).append((label, src, row))
    return out


def worst_case(members: list[tuple[str, str, dict[str, Any]]], victim: str) -> dict[str, Any]:
    """The suite's outcome over the first ``n`` samples every member evaluated: ``ok`` (clean-correct), ``robust``
    (clean-correct and no member succeeded), and per member name the samples it broke first (suite order) and the
    samples only it broke (counts)."""
    n = min(len(r["hit"]) for _, _, r in members)
    ok = np.asarray(members[0][2]["ok"][:n], bool)
    names = [member_name(label, src, victim) for label, src, _ in members]
    hits = np.stack([np.asarray(r["hit"][:n], bool) & ok for _, _, r in members])  # successes on clean-correct
    broken = hits.any(0)
    first = np.argmax(hits, axis=0)  # the first member that broke each sample (0 where none did: masked below)
    alone = hits & (hits.sum(0) == 1)
    return {"n": n, "ok": ok, "robust": ok & ~broken, "members": names,
            "first": {m: int(np.sum(broken & (first == i))) for i, m in enumerate(names)},
            "only": {m: int(alone[i].sum()) for i, m in enumerate(names)}}


def suite_scores(where: dict[str, Any], victim: str, per_sample: Rows,
                 attacks: Mapping[str, AttackSpec]) -> SuiteScores:
    """The suite rows and the gradient-masking flags of one unit on one target and backend (``where``: model,
    variant, backend, target)."""
    from edgebench.metrics.robustness import proportion
    from edgebench.metrics.samples import pack_correct

    out = SuiteScores()
    for (norm, eps), members in groups(per_sample, attacks, victim).items():
        if len({label for label, _, _ in members}) < 2:
            continue
        w = worst_case(members, victim)
        ca, ra, asr = proportion(w["ok"]), proportion(w["robust"]), proportion(~w["robust"][w["ok"]])
        source = suite_source(norm)
        out.records.append({
            "attack": SUITE, "eps": eps, "source": source, "threat": SUITE, "n": w["n"],
            "clean_acc": ca["value"], "clean_acc_lo": ca["lo"], "clean_acc_hi": ca["hi"],
            "robust_acc": ra["value"], "robust_acc_lo": ra["lo"], "robust_acc_hi": ra["hi"],
            "asr": asr["value"], "asr_lo": asr["lo"], "asr_hi": asr["hi"], "asr_n": asr["n"]})
        sets = "+".join(str(r.get("set", "")) for _, _, r in members)
        key = {**where, "attack": SUITE, "eps": eps, "source": source}
        out.samples.append({"kind": "correct", **key, "data": pack_correct(
            w["robust"], hashlib.sha256(sets.encode()).hexdigest()[:16])})
        out.samples.append({"kind": SUITE, **key, "data": {
            "norm": norm, "n": w["n"], "clean_correct": int(w["ok"].sum()), "robust": int(w["robust"].sum()),
            "members": w["members"], "attacks": [[label, src] for label, src, _ in members], "first": w["first"],
            "only": w["only"]}})
        out.correct[(where["model"], where["variant"], where["backend"], where["target"], SUITE, eps, source)] = \
            w["robust"]
    out.flags = masking_flags(where, victim, per_sample, attacks)
    return out


def masking_flags(where: dict[str, Any], victim: str, per_sample: Rows,
                  attacks: Mapping[str, AttackSpec]) -> list[dict[str, Any]]:
    """A ``gradient-free-above-gradient`` flag per gradient-free attack and ε where it succeeds on more of the
    same clean-correct samples than every white-box gradient attack of its norm at that ε, each with McNemar's
    p < 0.05 (see the module docstring)."""
    from edgebench.attacks import ATTACKS
    from edgebench.metrics.robustness import mcnemar

    out = []
    for (norm, eps), members in groups(per_sample, attacks, victim, suite_only=False).items():
        gradient = [(label, r) for label, src, r in members
                    if src == victim and ATTACKS.get(attacks[label].name).needs_gradient]
        free = [(label, src, r) for label, src, r in members if not ATTACKS.get(attacks[label].name).needs_gradient]
        for label, src, r in free if gradient else []:
            tests = {}
            for g_label, g in gradient:
                n = min(len(r["hit"]), len(g["hit"]))
                ok = np.asarray(r["ok"][:n], bool)
                mine, theirs = np.asarray(r["hit"][:n], bool)[ok], np.asarray(g["hit"][:n], bool)[ok]
                t = mcnemar(theirs, mine)
                tests[g_label] = {"n": int(ok.sum()), "free_hits": int(mine.sum()), "gradient_hits": int(theirs.sum()),
                                  "p_value": t["p_value"]}
            if all(t["free_hits"] > t["gradient_hits"] and t["p_value"] < 0.05 for t in tests.values()):
                name = member_name(label, src, victim)
                best = max(tests, key=lambda k: tests[k]["gradient_hits"])
                b = tests[best]
                out.append({**where, "kind": FLAG_KIND, "attack": label, "eps": eps, "source": src,
                            "detail": {"norm": norm, "against": tests},
                            "message": (f"{victim} on {where['backend']}/{where['target']}: {name} (no gradient) at "
                                        f"ε={eps:g} breaks {b['free_hits']} of {b['n']} samples, every gradient attack "
                                        f"fewer (best: {best}, {b['gradient_hits']}; McNemar p={b['p_value']:.2g}): "
                                        "suspect gradient masking; try `bpda = true` on the variant")})
    return out
