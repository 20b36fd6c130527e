"""Weight range and input-gradient amplitude against the compression rate (Liu et al. 2018, seed 000, Figs. 6, 7
and 9 summarised): one line per HashNet arm (``init``) and inhibition coefficient τ; the numbers are the report's
"Weight range and gradient amplitude" table (:mod:`edgebench.report.amplitude`)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from edgebench.report.amplitude import chain_params, gradient_amplitude, weight_range
from edgebench.report.data import BASE, RunData, unit_label
from edgebench.report.plots.rows import ordered
from edgebench.report.plots.style import MAX_LINES, MAX_MODELS, Plot, Styles, fraction_axis, grid


def _factor(rate: Any) -> float | None:
    """Virtual weights per real weight (8 for rate "1/8"); None when the rate does not parse."""
    try:
        f = Fraction(str(rate).replace(" ", ""))
    except (ValueError, ZeroDivisionError):
        return None
    return float(1 / f) if f > 0 else None


def range_and_amplitude(data: RunData, st: Styles) -> list[Plot]:
    grads = {f.get("source"): gradient_amplitude(f.get("detail") or {}) for f in data.flags
             if f.get("kind") in ("gradient-check", "gradient-masking")}
    out = []
    for model in ordered(v["model"] for v in data.variants)[:MAX_MODELS]:
        units = [v for v in data.variants if v["model"] == model]
        base = next((weight_range(v.get("stats") or {})[0] for v in units if v["variant"] == BASE), None)
        series: dict[str, list[tuple[float, float | None, float | None]]] = {}
        for v in units:
            p = chain_params(data, model, v["variant"])
            if p is None:
                continue  # another method in the chain: not on these axes
            x = _factor(p["rate"]) if "rate" in p else 1.0
            if x is None:
                continue
            w = weight_range(v.get("stats") or {})[0]
            g = grads.get(unit_label(model, v["variant"]))
            arms = [str(p["init"])] if "rate" in p else ["scratch", "distill"]  # the base starts every arm
            for arm in arms:
                name = f"{arm}, τ={float(p.get('tau', 0.0)):g}"
                series.setdefault(name, []).append((x, w / base if w and base else None, g["large"] if g else None))
        series = {k: sorted(s) for k, s in series.items() if len({x for x, _, _ in s}) >= 2}
        if not series:
            continue
        names = sorted(series)[:MAX_LINES]
        cv = grid(2, panel=(3.0, 2.2), wspace=0.7, legend=names, legend_title="arm, τ")
        sty = st.of(f"{model}/{n}" for n in names)
        handles: dict[str, Any] = {}
        for ax, (i, label) in zip(cv.axes, ((1, "max |w| ÷ base's"), (2, "share of \"large\" |∂J/∂x| (1e-10…1)"))):
            for n in names:
                pts = sorted({(pt[0], pt[i]) for pt in series[n] if pt[i] is not None})
                if pts:
                    (line,) = ax.plot([x for x, _ in pts], [y for _, y in pts], **sty[f"{model}/{n}"])
                    handles.setdefault(n, line)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("virtual weights per real weight (1 = uncompressed)")
            ax.set_ylabel(label)
            if i == 2:
                fraction_axis(ax, "y")
        cv.legend({n: handles[n] for n in names if n in handles})
        caption = (f"{model}: the range of the effective weights (max |w| over all layers, against the base's; Liu "
                   "et al. 2018, Fig. 6) and the share of clean samples whose mean input gradient is \"large\" "
                   "(10⁻¹⁰ … 1; Figs. 7, 9) against the compression rate, one line per HashNet arm and inhibition "
                   "coefficient τ (the uncompressed model starts every arm).")
        out.append(cv.plot(f"range-amplitude-{model}", f"Weight range and gradient amplitude — {model}", caption,
                           "amplitude"))
    return out
