"""The report's "Weight range and gradient amplitude per variant" section (Liu et al. 2018, seed ``000``, Figs. 6,
7 and 9): for each variant, its compression rate and inhibition coefficient τ (from its parameters, through the
chain ``a+b``), the range of its effective weights (all layers and the last one, against the base's: Fig. 6,
"~2× and ~4× in HashNet(1/16) and HashNet(1/64)"), and the amplitude of its input gradients on clean test
samples (Figs. 7 and 9): the median of the per-sample mean |∂J/∂x|, the share of samples whose gradient is exactly
zero, and the shares in the paper's two bands, "large" (10⁻¹⁰ … 1) and "small" (10⁻²⁵ … 10⁻¹⁵).

Ours is per sample (the mean |∂J/∂x| over the input's features, :func:`edgebench.attacks.checks.gradient_health`,
stored with the gradient-check flags), read from a log-spaced histogram, so the band shares count whole bins
(by their geometric centre); the paper does not say over what it takes its "mean gradient"."""

from __future__ import annotations

import math
from typing import Any

from edgebench.report.data import BASE, RunData, unit_label
from edgebench.report.tables import Cell, Mark, Num, Para, Section, Table

#: the bands of seed 000, Fig. 7: "large gradients (10^-10 ~ 1)" and "small gradients (10^-25 ~ 10^-15)"
LARGE = (1e-10, 1.0)
SMALL = (1e-25, 1e-15)


#: the methods whose parameters place a variant on seed 000's axes (compression rate, τ)
AXES_METHODS = ("hashed", "gradient_inhibition")


def chain_params(d: RunData, model: str, variant: str) -> dict[str, Any] | None:
    """The parameters of ``variant`` and of every variant it was applied on (``a+b``: those of ``a``, then ``b``);
    ``{}`` for the base; None when a method of the chain is not one of :data:`AXES_METHODS`."""
    by_name = {v["variant"]: v for v in d.variants if v["model"] == model}
    if variant == BASE:
        return {}
    parts = variant.split("+")
    out: dict[str, Any] = {}
    for i in range(len(parts)):
        v = by_name.get("+".join(parts[:i + 1])) or {}
        if str(v.get("method", "")).rsplit("→", 1)[-1].strip() not in AXES_METHODS:
            return None
        out.update(v.get("params") or {})
    return out


def weight_range(stats: dict[str, Any]) -> tuple[float | None, float | None]:
    """max |w| over every layer and over the last weighted layer, from the stored per-layer weight statistics."""
    layers = [w for w in (stats.get("weights") or {}).values() if isinstance(w, dict)]
    if not layers:
        return None, None

    def absmax(w: dict[str, Any]) -> float:
        return max(abs(float(w["min"])), abs(float(w["max"])))

    return max(absmax(w) for w in layers), absmax(layers[-1])


def gradient_amplitude(detail: dict[str, Any]) -> dict[str, float] | None:
    """``median`` per-sample mean |∂J/∂x| (zeros included), ``zero`` share, ``large`` and ``small`` band shares, ``n``
    from a gradient-health record; None without a histogram."""
    h = detail.get("abs_grad_hist")
    if not isinstance(h, dict):
        return None
    edges, counts, zeros = h.get("edges") or [], h.get("counts") or [], int(h.get("zeros") or 0)
    total = zeros + sum(counts)
    if total <= 0:
        return None
    centres = [math.sqrt(a * b) for a, b in zip(edges[:-1], edges[1:])]

    def band(lo: float, hi: float) -> float:
        return sum(c for m, c in zip(centres, counts) if lo <= m <= hi) / total

    median, seen = 0.0, zeros
    for m, c in zip(centres, counts):
        if seen >= total / 2:  # half the samples or more have an exactly zero gradient: the median is 0
            break
        seen += c
        median = m  # the bin holding the middle sample, by its geometric centre
    return {"median": median, "zero": zeros / total, "large": band(*LARGE), "small": band(*SMALL), "n": total}


def amplitude_section(d: RunData) -> Section | None:
    grads = {}
    for f in d.flags:
        if f.get("kind") in ("gradient-check", "gradient-masking"):
            amp = gradient_amplitude(f.get("detail") or {})
            if amp is not None:
                grads.setdefault(f.get("source") or unit_label(f["model"], f["variant"]), amp)
    units = [v for v in d.variants if weight_range(v.get("stats") or {})[0] is not None
             or unit_label(v["model"], v["variant"]) in grads]
    if not units:
        return None
    base_range = {v["model"]: weight_range(v.get("stats") or {})[0] for v in d.variants if v["variant"] == BASE}
    rows: list[list[Cell]] = []
    for v in units:
        p = chain_params(d, v["model"], v["variant"])
        all_w, last_w = weight_range(v.get("stats") or {})
        b = base_range.get(v["model"])
        g = grads.get(unit_label(v["model"], v["variant"]))
        init, rate, tau = ("–", "–", None) if p is None else (str(p.get("init", "–")), str(p.get("rate", 1)),
                                                               p.get("tau", 0.0))
        rows.append([v["model"], v["variant"], init, rate, Num(tau, None), Num(all_w, 4),
                     Mark(f"{all_w / b:.2f}×", "plain", all_w / b) if all_w and b else None, Num(last_w, 4),
                     Num(g["median"], None) if g else None, *(Num(g[k], 3) if g else None
                                                              for k in ("zero", "large", "small")),
                     g["n"] if g else None])
    return Section("amplitude", "Weight range and gradient amplitude per variant", [
        Para("Liu et al. 2018 (seed 000) explain the HashNets' robustness by larger weights (Fig. 6: the range "
             "grows ~2× at 1/16 and ~4× at 1/64) that saturate the softmax and shrink the input gradient (Fig. 7: "
             "the share of \"large\" gradients, 10⁻¹⁰ … 1, falls from ~68 % to ~19 % at 1/64, the \"small\" ones, "
             "10⁻²⁵ … 10⁻¹⁵, rise from ~1 % to ~32 %), and gradient inhibition by the same effect, stronger "
             "(Fig. 9). Per variant: `rate` (real weights per virtual weight; 1 = uncompressed) and `init` of a "
             "HashNet, τ of gradient inhibition (– for a variant made by another method), max |w| over all "
             "layers and its ratio to the base's, max |w| of the last weighted layer, then, on up to 1,000 clean "
             "test samples, the median per-sample mean |∂J/∂x| and the shares of samples whose gradient is "
             "exactly zero, \"large\" and \"small\" (band shares from the stored log-spaced histogram, whole bins "
             "by their centre)."),
        Table("weight_range_gradient_amplitude", "Weight range and gradient amplitude per variant",
              ["model", "variant", "init", "rate", "τ", "max |w|", "max |w| × base", "max |w| (last layer)",
               "median |∂J/∂x|", "zero share", "large (1e-10…1)", "small (1e-25…1e-15)", "n"], rows)])
