"""Accuracy and robustness metrics from raw predictions (DESIGN.md, "Definitions"), with 95 % Wilson
intervals and McNemar's exact test for paired comparisons. Pure numpy, torch-free."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``k/n`` (Wilson 1927); ``(nan, nan)`` when ``n == 0``."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # at k = 0 and k = n the bound is exactly 0 or 1; rounding must not leave the interval excluding k/n
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (lo, hi)


def proportion(mask: np.ndarray) -> dict[str, float | int]:
    """A proportion with its sample count and 95 % Wilson interval."""
    n, k = int(mask.size), int(np.count_nonzero(mask))
    lo, hi = wilson(k, n)
    return {"value": k / n if n else math.nan, "k": k, "n": n, "lo": lo, "hi": hi}


def clean_accuracy(pred: np.ndarray, y: np.ndarray) -> dict[str, float | int]:
    """``clean_acc``: fraction of test samples classified correctly."""
    return proportion(np.asarray(pred) == np.asarray(y))


def robust_accuracy(adv_pred: np.ndarray, y: np.ndarray) -> dict[str, float | int]:
    """``robust_acc``: fraction of adversarial samples classified correctly (against the true label)."""
    return proportion(np.asarray(adv_pred) == np.asarray(y))


def attack_success_rate(clean_pred: np.ndarray, adv_pred: np.ndarray, y: np.ndarray,
                        target: np.ndarray | None = None) -> dict[str, float | int]:
    """``asr``: among samples classified correctly when clean, the fraction misclassified once perturbed
    (untargeted), or the fraction that reach ``target`` (targeted)."""
    ok = np.asarray(clean_pred) == np.asarray(y)
    hit = (np.asarray(adv_pred) != y) if target is None else (np.asarray(adv_pred) == target)
    return proportion(hit[ok])


def vulnerability(clean_acc: float, robust_acc: float) -> float:
    """``(clean_acc − robust_acc) / clean_acc``."""
    return (clean_acc - robust_acc) / clean_acc if clean_acc > 0 else math.nan


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float | int]:
    """McNemar's exact test on paired per-sample correctness of two models on the same samples.

    ``b`` = samples A gets right and B wrong, ``c`` = the reverse; under H0 they are Binomial(b + c, 1/2).
    Returns b, c and the two-sided exact p-value.
    """
    a, b_ = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    b = int(np.count_nonzero(a & ~b_))
    c = int(np.count_nonzero(~a & b_))
    n = b + c
    if n == 0:
        return {"b": 0, "c": 0, "p_value": 1.0}
    k = min(b, c)
    # exact integers, one true division: 2.0**n overflows a float past n = 1,023 discordant pairs (a 10,000-image
    # clean comparison reaches that), and int / int is correctly rounded at any size (it underflows to 0.0 only
    # below 5e-324). Each term from the last: a math.comb per term is ~400x slower at n = 10,000.
    term = total = 1
    for i in range(k):
        term = term * (n - i) // (i + 1)
        total += term
    tail = total / (1 << n)
    return {"b": b, "c": c, "p_value": min(1.0, 2 * tail)}


def minimal_eps(eps: np.ndarray, success: np.ndarray, norms_at_inf: np.ndarray | None = None) -> np.ndarray:
    """Per sample, the smallest ε of the grid at which the attack succeeded (Algorithm 1 of Liu et al. 2018:
    raise ε until the attack succeeds or the upper bound — the largest ε — is reached); ``inf`` where it never
    did. ``eps`` has shape ``(K,)`` and ``success`` ``(K, N)``. An ``inf`` entry of the grid is an unbounded
    minimal-perturbation attack (CW, DeepFool): where it succeeded, the sample's value is the norm of the
    perturbation it found (``norms_at_inf``, shape ``(N,)``) if that is smaller."""
    eps = np.asarray(eps, dtype=float)
    success = np.asarray(success, dtype=bool)
    out = np.full(success.shape[1], np.inf)
    for k in np.argsort(eps, kind="stable"):
        e = eps[k]
        if np.isinf(e):
            if norms_at_inf is not None:
                out = np.where(success[k], np.minimum(out, norms_at_inf), out)
            continue
        out = np.where(success[k] & (out > e), e, out)
    return out


def summarize_min_eps(values: np.ndarray) -> dict[str, float | int]:
    """Distribution of per-sample minimal ε: ``n``, ``found`` (finite) and its share, quantiles over all
    samples (``inf`` where the bound was never reached, so a quantile can be ``inf``), mean over found."""
    v = np.asarray(values, dtype=float)
    n, found = int(v.size), int(np.isfinite(v).sum())
    q = {f"p{p}": float(np.quantile(v, p / 100, method="lower")) if n else math.nan for p in (10, 25, 50, 75, 90)}
    return {"n": n, "found": found, "found_share": found / n if n else math.nan, **q,
            "mean_found": float(v[np.isfinite(v)].mean()) if found else math.nan}


def two_proportion_test(k1: int, n1: int, k2: int, n2: int) -> dict[str, float]:
    """Two-sided z-test of ``k1/n1`` against ``k2/n2`` with the pooled proportion, for two proportions measured
    on different samples (when the same samples are at hand, :func:`mcnemar` is the right, stronger test)."""
    if n1 == 0 or n2 == 0:
        return {"z": math.nan, "p_value": math.nan}
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return {"z": 0.0, "p_value": 1.0}
    z = (k1 / n1 - k2 / n2) / se
    return {"z": z, "p_value": math.erfc(abs(z) / math.sqrt(2))}


def whitebox_below_transfer(where: dict[str, Any], victim: str,
                            per_sample: dict[tuple[str, str], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Flag an ε where examples transferred from another model fool the victim significantly more often
    (McNemar, p < 0.05, on the same samples) than its own white-box examples: the white-box attack is not
    finding the gradient's way, a classic sign of gradient masking (AutoAttack flags the same for Square)."""
    out = []
    for (label, src), rows in per_sample.items():
        own = per_sample.get((label, victim))
        if src == victim or own is None:
            continue
        for wb, tr in zip(own, rows):
            ok = wb["ok"]
            a, b = proportion(wb["hit"][ok]), proportion(tr["hit"][ok])
            test = mcnemar(wb["hit"][ok], tr["hit"][ok])
            if a["value"] < b["value"] and test["p_value"] < 0.05:
                out.append({**where, "kind": "whitebox-below-transfer", "attack": label, "eps": wb["eps"],
                            "source": src, "detail": {"whitebox_asr": a["value"], "transfer_asr": b["value"],
                                                      "n": a["n"], **test},
                            "message": (f"{victim} on {where['backend']}/{where['target']}: {label} at ε={wb['eps']:g} "
                                        f"transferred from {src} succeeds {b['value']:.1%} vs {a['value']:.1%} "
                                        f"white-box (McNemar p={test['p_value']:.2g}): suspect gradient masking")})
    return out
