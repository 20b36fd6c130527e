"""Compression-statistics figures: ‖ΔW‖₂ per layer (Song et al. 2020, seed 003, Fig. 3) and the weight
histograms of the first and last layers (Liu et al. 2018, seed 000, Fig. 6)."""

from __future__ import annotations

import math
from typing import Any

from edgebench.metrics.pareto import finite
from edgebench.report.data import BASE, RunData, unit_label
from edgebench.report.plots.rows import (
    hist_of,
    ordered,
    pick,
    shown_note,
    variant_order,
)
from edgebench.report.plots.style import (
    MAX_HIST_LINES,
    MAX_LINES,
    MAX_MODELS,
    Plot,
    Styles,
    grid,
    log_scale,
    step_line,
    text_width,
)


def _stats(v: dict[str, Any], key: str) -> Any:
    stats = v.get("stats")
    return stats.get(key) if isinstance(stats, dict) else None


def delta_w(data: RunData, st: Styles) -> list[Plot]:
    """‖W_variant − W_parent‖₂ per layer (Song et al. 2020, seed 003, Fig. 3)."""
    import numpy as np

    out = []
    with_d = [v for v in data.variants if isinstance(_stats(v, "delta_w_spectral"), dict)
              and any(finite(x) is not None for x in v["stats"]["delta_w_spectral"].values())]
    for model in ordered(v["model"] for v in with_d)[:MAX_MODELS]:
        vs = {v["variant"]: v["stats"]["delta_w_spectral"] for v in with_d if v["model"] == model}
        layers = ordered(k for d in vs.values() for k in d)[:60]
        names = variant_order(model, vs, data)
        peak = {n: max((finite(x) or 0.0) for x in vs[n].values()) for n in names}
        shown = pick(names, peak, MAX_LINES, keep=[])
        vals = [finite(vs[n].get(k)) for n in shown for k in layers]
        rotate = text_width(layers) > 0.45
        cv = grid(1, panel=(max(4.0, 0.45 * len(layers)), 2.8), top=0.4,
                   bottom=0.45 + (0.5 * text_width(layers) + 0.1 if rotate else 0.15),
                   legend=[*shown, "‖ΔW‖₂ = 1"], legend_title="variant")
        ax = cv.axes[0]
        handles: dict[str, Any] = {}
        x = np.arange(len(layers))
        bars = len(shown) <= 6
        hatches = ("", "//", "..", "xx", "\\\\", "oo")
        sty = st.of(unit_label(model, n) for n in shown)
        for i, n in enumerate(shown):
            s = sty[unit_label(model, n)]
            y = [math.nan if (f := finite(vs[n].get(k))) is None else f for k in layers]
            if bars:
                w = 0.8 / len(shown)
                handles[n] = ax.bar(x - 0.4 + w * (i + 0.5), y, width=w, color=s["color"], hatch=hatches[i],
                                    edgecolor="black", linewidth=0.4)
            else:
                (handles[n],) = ax.plot(x, y, **s)
        handles["‖ΔW‖₂ = 1"] = ax.axhline(1.0, color="black", linestyle=":", linewidth=1)
        log_scale(ax, "y", vals, ratio=50.0)
        ax.set_xticks(x, layers, rotation=30 if rotate else 0, ha="right" if rotate else "center",
                      rotation_mode="anchor")
        ax.set_xlabel("layer")
        ax.set_ylabel("‖ΔW‖₂ (largest singular value)")
        ax.grid(axis="x", visible=False)
        cv.legend(handles)
        caption = (f"Largest singular value of each layer's weight change W_variant − W_parent in {model} (missing "
                   "bars: shapes differ, e.g. pruned channels). Layers above the dotted line at 1 may amplify the "
                   "compression error of their input (the Lipschitz criterion of Song et al. 2020, Fig. 3)." +
                   shown_note(len(shown), len(names), "the largest peaks"))
        out.append(cv.plot(f"delta-w-spectral-{model}", f"‖ΔW‖₂ per layer — {model}", caption, "variants"))
    return out


def weight_histograms(data: RunData, st: Styles) -> list[Plot]:
    """Histograms of the first and last weighted layer per variant (Liu et al. 2018, seed 000, Fig. 6)."""
    out = []
    with_w = [v for v in data.variants if isinstance(_stats(v, "weights"), dict) and v["stats"]["weights"]]
    for model in ordered(v["model"] for v in with_w)[:MAX_MODELS]:
        ws = {v["variant"]: v["stats"]["weights"] for v in with_w if v["model"] == model}
        names = variant_order(model, ws, data)
        layer_order = ordered(k for n in names for k in ws[n])
        layers = ordered([layer_order[0], layer_order[-1]])
        hists = {(n, k): hist_of(ws[n].get(k)) for n in names for k in layers}
        layers = [k for k in layers if any(hists[(n, k)] for n in names)]
        if not layers:
            continue
        width = {n: max((max(abs(h[0][0]), abs(h[0][-1])) for k in layers if (h := hists[(n, k)])), default=0.0)
                 for n in names}
        shown = pick(names, width, MAX_HIST_LINES, keep=[BASE])
        cv = grid(len(layers), panel=(3.2, 2.5), max_cols=2, legend=shown, legend_title="variant")
        handles: dict[str, Any] = {}
        sty = st.of(unit_label(model, n) for n in shown)
        for ax, k in zip(cv.axes, layers):
            counts_all = []
            for n in shown:
                h = hists[(n, k)]
                if h is None:
                    continue
                counts = [c if c > 0 else math.nan for c in h[1]]
                counts_all += h[1]
                handles.setdefault(n, step_line(ax, h[0], counts, sty[unit_label(model, n)], n))
            log_scale(ax, "y", [*counts_all, 1.0], force=True)
            ax.set_title(f"{k} ({'first' if k == layer_order[0] else 'last'} weighted layer)")
            ax.set_xlabel("weight value")
            ax.set_ylabel("count (log scale)")
        cv.legend({n: handles[n] for n in shown if n in handles})
        caption = (f"Histogram of the effective weights of the first and last weighted layers of {model}, one step "
                   "line per variant: a wider range or heavier tails (hashing, gradient inhibition) and spikes "
                   "(quantization levels, pruned zeros) show at a glance (reproduces Liu et al. 2018, Fig. 6)." +
                   shown_note(len(shown), len(names), "the base and the widest ranges"))
        out.append(cv.plot(f"weight-histograms-{model}", f"Weight distributions — {model}", caption, "variants"))
    return out
