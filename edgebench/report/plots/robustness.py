"""Robustness figures: ASR against ε and the minimal ε per sample (Liu et al. 2018, seed 000, Figs. 4, 7, 9),
vulnerability (Wijayanto et al. 2018, seed 002, Fig. 2)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from edgebench.metrics.pareto import finite
from edgebench.report.data import BASE, RunData, unit_label
from edgebench.report.plots.rows import (
    extremes,
    first_pair,
    hist_median,
    hist_of,
    on_pair,
    ordered,
    pair_text,
    pick,
    shown_note,
    variant_order,
)
from edgebench.report.plots.style import (
    MAX_ANNOTATED,
    MAX_LINES,
    MAX_MODELS,
    MAX_PANELS,
    MAX_ROWS,
    Plot,
    Styles,
    fraction_panel,
    grid,
    heat_margins,
    heatmap,
    log_scale,
    step_line,
    text_width,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def asr_vs_eps(data: RunData, st: Styles) -> list[Plot]:
    """ASR against ε per variant, a panel per attack (Liu et al. 2018, seed 000, Fig. 4)."""
    from matplotlib.collections import PolyCollection

    wb = [r for r in data.adversarial if r.get("threat") == "white-box" and finite(r.get("eps")) is not None
          and finite(r.get("asr")) is not None]
    pair = first_pair(data, wb)
    if pair is None:
        return []
    rows = on_pair(wb, pair)
    out = []
    for model in ordered(r["model"] for r in rows)[:MAX_MODELS]:
        by_attack: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            if r["model"] == model:
                by_attack.setdefault(r["attack"], []).append(r)
        attacks = [a for a, rs in by_attack.items() if len({float(r["eps"]) for r in rs}) >= 2]
        n_attacks = len(attacks)
        attacks = attacks[:MAX_PANELS]
        if not attacks:
            continue
        variants = variant_order(model, (r["variant"] for a in attacks for r in by_attack[a]), data)
        base = {(r["attack"], float(r["eps"])): r["asr"] for a in attacks for r in by_attack[a]
                if r["variant"] == BASE}
        diffs: dict[str, list[float]] = {}
        for a in attacks:
            for r in by_attack[a]:
                b = base.get((a, float(r["eps"])))
                diffs.setdefault(r["variant"], []).append(abs(r["asr"] - b) if b is not None else r["asr"])
        score = {v: sum(d) / len(d) for v, d in diffs.items()}
        shown = pick(variants, score, MAX_LINES, keep=[BASE])
        cv = grid(len(attacks), panel=(2.5, 2.0), wspace=0.2, legend=shown, legend_title="variant", sharey=True)
        handles: dict[str, Any] = {}
        sty = st.of(unit_label(model, v) for v in shown)
        for i, (ax, attack) in enumerate(zip(cv.axes, attacks)):
            bands, colors = [], []
            for v in shown:
                pts = sorted((float(r["eps"]), r["asr"], finite(r.get("asr_lo")), finite(r.get("asr_hi")))
                             for r in by_attack[attack] if r["variant"] == v)
                if not pts:
                    continue
                s = sty[unit_label(model, v)]
                xs, ys = [p[0] for p in pts], [p[1] for p in pts]
                (line,) = ax.plot(xs, ys, **s)
                handles.setdefault(v, line)
                if all(p[2] is not None and p[3] is not None for p in pts):
                    bands.append([(p[0], p[2]) for p in pts] + [(p[0], p[3]) for p in pts[::-1]])
                    colors.append(s["color"])
            if bands:  # all the bands of a panel in one collection: one artist instead of one per variant
                ax.add_collection(PolyCollection(bands, facecolors=colors, alpha=0.12, linewidths=0, zorder=1))
            fraction_panel(ax, i, attack, "ε (attack budget)", "ASR (fraction)")
        cv.legend({v: handles[v] for v in shown if v in handles})
        caption = (f"Attack success rate of white-box attacks on {model} against the budget ε, one line per "
                   f"variant, on {pair_text(pair)}; bands are 95 % Wilson intervals. A curve further right is more "
                   "robust (reproduces Liu et al. 2018, Fig. 4)." +
                   shown_note(len(shown), len(variants), "the base and the variants farthest from it") +
                   ("" if n_attacks <= MAX_PANELS else f" {MAX_PANELS} of {n_attacks} attacks shown."))
        out.append(cv.plot(f"asr-vs-eps-{model}", f"ASR vs ε, white-box — {model} ({pair_text(pair)})", caption,
                           "robustness"))
    return out


def _min_eps_stats(r: dict[str, Any]) -> tuple[dict[str, float] | None, float | None]:
    """Box statistics (10/25/50/75/90th percentiles of the found minimal ε) and the share found."""
    import numpy as np

    values = r.get("values")
    if isinstance(values, list) and values:
        found = [f for f in (finite(v) for v in values) if f is not None]
        share = len(found) / len(values)
        if not found:
            return None, share
        q = [float(x) for x in np.percentile(found, [10, 25, 50, 75, 90])]
    else:  # no per-sample values: the stored quantiles, when all finite
        share = finite(r.get("found_share"))
        qs = [finite(r.get(f"p{p}")) for p in (10, 25, 50, 75, 90)]
        if any(x is None for x in qs):
            return None, share
        q = [float(x) for x in qs if x is not None]
    return {"whislo": q[0], "q1": q[1], "med": q[2], "q3": q[3], "whishi": q[4]}, share


def _horizontal(ax: Axes) -> dict[str, Any]:
    """``bxp``'s keyword for horizontal boxes: ``orientation`` since matplotlib 3.10, ``vert`` before."""
    import inspect

    return {"orientation": "horizontal"} if "orientation" in inspect.signature(ax.bxp).parameters else {"vert": False}


def min_eps(data: RunData, st: Styles) -> list[Plot]:
    """Distribution of the per-sample minimal ε per variant and attack (seed 000, Algorithm 1)."""
    rows = [r for r in data.min_eps
            if r.get("threat") == "white-box" or r.get("source") == unit_label(r["model"], r["variant"])]
    pair = first_pair(data, rows)
    if pair is None:
        return []
    rows = on_pair(rows, pair)
    out = []
    for model in ordered(r["model"] for r in rows)[:MAX_MODELS]:
        cells: dict[tuple[str, str], tuple[dict[str, float] | None, float | None]] = {}
        for r in rows:
            if r["model"] == model:
                cells.setdefault((r["attack"], r["variant"]), _min_eps_stats(r))
        attacks = [a for a in ordered(a for a, _ in cells) if any(cells[k][0] for k in cells if k[0] == a)]
        n_attacks = len(attacks)
        attacks = attacks[:MAX_PANELS]
        if not attacks:
            continue
        variants = variant_order(model, (v for a, v in cells if a in attacks), data)
        med: dict[str, float] = {}
        for (a, v), (s, _) in cells.items():
            if s is not None and a in attacks:
                med[v] = med.get(v, 0.0) + s["med"]
        base_med = med.get(BASE, 0.0)
        shown = pick(variants, {v: abs(m - base_med) for v, m in med.items()}, MAX_ROWS // 4, keep=[BASE])
        cv = grid(len(attacks), panel=(2.2, 0.3 + 0.2 * len(shown)), left=0.35 + text_width(shown), wspace=0.4,
                   right=0.4)
        ys = list(range(len(shown)))[::-1]
        sty = st.of(unit_label(model, v) for v in shown)
        for ax, attack in zip(cv.axes, attacks):
            stats, pos, colors = [], [], []
            for y, v in zip(ys, shown):
                s, share = cells.get((attack, v), (None, None))
                if s is not None:
                    stats.append(s)
                    pos.append(y)
                    colors.append(sty[unit_label(model, v)]["color"])
                if share is not None:
                    ax.text(1.02, y, f"{share:.0%}", transform=ax.get_yaxis_transform(), ha="left", va="center",
                            fontsize=6)
            if stats:
                art = ax.bxp(stats, positions=pos, showfliers=False, patch_artist=True, widths=0.6,
                             medianprops={"color": "black"}, **_horizontal(ax))
                for box, c in zip(art["boxes"], colors):
                    box.set_facecolor(c)
                    box.set_alpha(0.55)
            ax.set_title(attack)
            ax.set_xlabel("minimal ε")
            ax.set_ylim(-0.7, len(shown) - 0.3)
            ax.grid(axis="y", visible=False)
            ax.set_yticks([])  # variant names on the first panel of each row only (ticks are costly to draw)
        for i, ax in enumerate(cv.axes):
            if i % 4 == 0:
                ax.set_yticks(ys, shown)
        caption = (f"Per sample, the smallest ε of the grid at which the white-box attack succeeds on {model} "
                   f"({pair_text(pair)}; Algorithm 1 of Liu et al. 2018), among samples classified correctly when "
                   "clean: boxes span the quartiles of the samples where it succeeded, whiskers the 10th–90th "
                   "percentile; the percentage at the right is the share of samples reached within the grid. Further "
                   "right is more robust." +
                   shown_note(len(shown), len(variants), "the base and the medians farthest from it")
                   + ("" if n_attacks <= MAX_PANELS else f" {MAX_PANELS} of {n_attacks} attacks shown."))
        out.append(cv.plot(f"min-eps-{model}", f"Minimal ε per sample — {model} ({pair_text(pair)})", caption,
                           "robustness"))
    return out


def _largest_eps(rows: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Per attack: the largest finite ε among ``rows``."""
    out: dict[str, float] = {}
    for r in rows:
        e = finite(r.get("eps"))
        if e is not None and (r["attack"] not in out or e > out[r["attack"]]):
            out[r["attack"]] = e
    return out


def vulnerability(data: RunData, st: Styles) -> list[Plot]:
    """(clean_acc − robust_acc) / clean_acc per variant and attack (Wijayanto et al. 2018, seed 002, Fig. 2)."""
    wb = [r for r in data.adversarial if r.get("threat") == "white-box" and finite(r.get("eps")) is not None
          and finite(r.get("clean_acc")) and finite(r.get("robust_acc")) is not None]
    pair = first_pair(data, wb)
    if pair is None:
        return []
    rows = on_pair(wb, pair)
    out = []
    for model in ordered(r["model"] for r in rows)[:MAX_MODELS]:
        mrows = [r for r in rows if r["model"] == model]
        top = _largest_eps(mrows)
        attacks = list(top)[:MAX_ROWS]
        cells = {(r["variant"], r["attack"]): (r["clean_acc"] - r["robust_acc"]) / r["clean_acc"]
                 for r in mrows if r["attack"] in attacks and float(r["eps"]) == top[r["attack"]]}
        variants = variant_order(model, (v for v, _ in cells), data)
        mean = {v: sum(x for (vv, _), x in cells.items() if vv == v) for v in variants}
        shown = extremes(variants, mean, MAX_ROWS, keep=[BASE])
        cols = [f"{a}\nε={top[a]:g}" for a in attacks]
        small = len(cols) <= MAX_ANNOTATED and len(shown) <= MAX_ANNOTATED
        left, bottom = heat_margins(shown, cols)
        cv = grid(1, panel=(max(2.0, (0.5 if small else 0.2) * len(cols)), max(1.6, (0.3 if small else 0.14) *
                                                                              len(shown))),
                   left=left + 0.1, bottom=bottom, top=0.4, colorbar=True)
        ax = cv.axes[0]
        im = heatmap(ax, [[cells.get((v, a)) for a in attacks] for v in shown], shown, cols, cmap="cividis")
        ax.set_xlabel("attack (white-box, at its largest ε)")
        ax.set_ylabel("variant")
        cv.colorbar(im, "vulnerability (fraction of clean accuracy lost)")
        caption = (f"Vulnerability of each variant of {model} (row) to each white-box attack at its largest ε "
                   f"(column), on {pair_text(pair)}: the share of its clean accuracy the attack removes "
                   "(0 = unaffected, 1 = nothing left; colour clipped to [0, 1], grey = not measured). Reproduces "
                   "Wijayanto et al. 2018, Fig. 2." +
                   shown_note(len(shown), len(variants), "the base, the least and the most vulnerable"))
        out.append(cv.plot(f"vulnerability-{model}", f"Vulnerability — {model} ({pair_text(pair)})", caption,
                           "robustness"))
    return out


def gradient_amplitude(data: RunData, st: Styles) -> list[Plot]:
    """Histograms of the per-sample mean |∂J/∂x| (Liu et al. 2018, seed 000, Figs. 7 and 9). Exact zeros cannot
    sit on a log axis: their share is given in the legend (a model whose gradients are all zero has no curve,
    only its legend entry)."""
    series: dict[str, tuple[tuple[list[float], list[float]] | None, float]] = {}
    masked = set()
    for f in data.flags:
        if f.get("kind") not in ("gradient-check", "gradient-masking"):
            continue
        raw = (f.get("detail") or {}).get("abs_grad_hist")
        h = hist_of(raw)
        zeros = (finite(raw.get("zeros")) or 0.0) if isinstance(raw, dict) else 0.0
        label = f.get("source") or unit_label(str(f.get("model")), str(f.get("variant") or BASE))
        if h is not None and min(h[0]) <= 0:
            h = None
        if (h is None and zeros <= 0) or label in series:
            continue
        series[label] = (h, zeros)
        if f["kind"] == "gradient-masking":
            masked.add(label)
    if not series:
        return []
    labels = list(series)
    med = {u: hist_median(*h) if h else 0.0 for u, (h, _) in series.items()}
    shown = extremes(labels, med, MAX_LINES + 2, keep=[u for u in labels if "/" not in u or u in masked])
    names = {}
    for u in shown:
        h, zeros = series[u]
        zero_share = zeros / (zeros + (sum(h[1]) if h else 0.0))
        zero = f"{zero_share:.0%} zero" if zero_share >= 0.005 else "<1% zero" if zero_share > 0 else ""
        notes = (["masking flagged"] if u in masked else []) + ([zero] if zero else [])
        names[u] = u + (f" ({', '.join(notes)})" if notes else "")
    cv = grid(1, panel=(4.6, 3.0), top=0.4, legend=list(names.values()), legend_title="crafted on")
    ax = cv.axes[0]
    handles = {}
    sty = st.of(shown)
    for u in shown:
        h, zeros = series[u]
        if h is None:
            (handles[names[u]],) = ax.plot([], [], **sty[u])
            continue
        total = sum(h[1]) + zeros
        handles[names[u]] = step_line(ax, h[0], [c / total for c in h[1]], sty[u], names[u])
    log_scale(ax, "x", [e for u in shown if series[u][0] for e in series[u][0][0]], force=True)  # type: ignore[index]
    ax.set_xlabel("per-sample mean |∂J/∂x| (log scale)")
    ax.set_ylabel("share of samples per bin")
    cv.legend(handles)
    caption = ("Distribution of the input-gradient amplitude of the cross-entropy over test samples for each "
               "model that crafted white-box examples (the share of exactly zero gradients in the legend); a curve "
               "shifted far left, a large zero share or a flagged model means vanishing gradients, under which "
               "white-box attacks overstate robustness (reproduces Liu et al. 2018, Figs. 7 and 9)." +
               shown_note(len(shown), len(labels), "the bases, flagged models and extremes"))
    return [cv.plot("gradient-amplitude", "Input-gradient amplitude", caption, "robustness")]
