"""Figures of a run, drawn from its store rows alone (:class:`~edgebench.report.data.RunData`), as PNG bytes.

Each figure reproduces one of the seeds' figures where there is one — ASR against ε (Liu et al. 2018, seed 000,
Fig. 4), the weight (Fig. 6) and input-gradient (Figs. 7/9) histograms of gradient inhibition and hashing,
transferability and vulnerability (Wijayanto et al. 2018, seed 002, Table III and Fig. 2), ‖ΔW‖₂ per layer
(Song et al. 2020, seed 003, Fig. 3) and the compression trade-offs of the pruning poster (seed 004) — and adds
what the deployment needs: latency distributions per backend and the device-versus-host ASR gap.

Rules: a figure whose inputs are absent is simply not produced; the number of figures never grows with
variants × attacks × targets (small multiples inside one figure, capped lines per panel); colours are the
Okabe–Ito palette and every series also differs by marker or line style; matplotlib is imported only when
:func:`make_plots` runs (Agg canvas, no pyplot state) and the PNGs are byte-for-byte deterministic.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgebench.metrics.pareto import finite, pareto_front
from edgebench.report.data import BASE, RunData, unit_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

SECTIONS = ("summary", "latency", "robustness", "tradeoffs", "variants", "deployment")

#: Okabe & Ito (2008), "Color Universal Design": black first (the base), yellow last (weak on white)
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
LINESTYLES = ("-", "--", "-.", ":")
HIGHLIGHT = "#D55E00"  # vermillion: the Pareto front
POINTS = "#0072B2"  # blue: the other points

DPI = 100
MAX_MODELS = 6  # per-model figures
MAX_PANELS = 12  # small multiples per figure
MAX_LINES = 10  # series per panel of line plots
MAX_HIST_LINES = 8  # series per histogram panel
MAX_ROWS = 60  # rows of a forest plot / heat map
MAX_LABELS = 20  # points labelled by name in a scatter
MAX_ANNOTATED = 15  # heat-map cells annotated up to this many rows and columns
MAX_STYLES = 32  # units with one look across all figures
MAX_W, MAX_H, MIN_W = 18.0, 24.0, 5.5  # figure size limits, inches
_EM = 0.62 / 72  # average glyph width of DejaVu Sans per point of font size, inches

_RC = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
       "legend.fontsize": 7, "figure.titlesize": 9, "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.5,
       "axes.spines.top": False, "axes.spines.right": False, "lines.linewidth": 1.3, "lines.markersize": 4,
       "legend.frameon": False, "figure.dpi": DPI, "savefig.dpi": DPI, "image.cmap": "viridis",
       "path.simplify": True, "axes.titley": 1.0}  # a fixed title position: no tight-bbox pass per axes


@dataclass(frozen=True)
class Plot:
    """One figure of the report: ``name`` (unique file stem, ``[a-z0-9-]``), ``title``, ``caption`` (what it
    shows and how to read it), ``section`` (one of :data:`SECTIONS`) and the PNG bytes."""

    name: str
    title: str
    caption: str
    section: str
    png: bytes


def slugify(text: str) -> str:
    """Lower-case ``text`` with every run of characters outside ``[a-z0-9]`` replaced by one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "plot"


def make_plots(data: RunData) -> list[Plot]:
    """Every figure the run's data supports, in report order. A figure whose inputs are missing is skipped; a
    figure that fails on malformed rows is logged (warning) and skipped, never failing the report. Without
    matplotlib installed: no plots, and a warning that says so."""
    try:
        import matplotlib
    except ImportError as exc:
        log.warning("report: no plots (%s); pip install matplotlib", exc)
        return []

    styles = _Styles(data)
    builders: list[Callable[[RunData, _Styles], list[Plot]]] = [
        _accuracy_overview, _latency, _asr_vs_eps, _min_eps, _transfer, _vulnerability, _gradient_amplitude,
        _tradeoffs, _delta_w, _weight_histograms, _host_vs_device]
    out: list[Plot] = []
    names: set[str] = set()
    with matplotlib.rc_context(_RC):
        for build in builders:
            try:
                plots = build(data, styles)
            except Exception:  # a malformed row must not cost the whole report
                log.warning("plot %s skipped: it failed on this run's data", build.__name__.strip("_"),
                            exc_info=True)
                continue
            for p in plots:
                name, k = p.name, 2
                while name in names:
                    name, k = f"{p.name}-{k}", k + 1
                names.add(name)
                out.append(p if name == p.name else Plot(name, p.title, p.caption, p.section, p.png))
    return out


# helpers --------------------------------------------------------------------------------------------------
_num = finite  # a finite float, or None


class _Styles:
    """The look of each unit (``model`` or ``model/variant``): Okabe–Ito colour, marker and line style, so that
    colour is never the only difference. Up to :data:`MAX_STYLES` units in the run, one look per unit across all
    figures; beyond, looks are assigned by position within each figure (its lines are capped), so that no two
    series of one figure look alike."""

    def __init__(self, data: RunData) -> None:
        order = [str(unit_label(v.get("model"), v.get("variant"))) for v in data.variants]
        order += [str(unit_label(r.get("model"), r.get("variant"))) for r in data.results]
        bases = [u for u in order if "/" not in u]
        self.index = {u: i for i, u in enumerate(dict.fromkeys(bases + order))}

    @staticmethod
    def style(i: int) -> dict[str, Any]:
        """Look number ``i``: (colour, line style) repeat after 32, (colour, marker) after 40."""
        return {"color": OKABE_ITO[i % len(OKABE_ITO)], "marker": MARKERS[i % len(MARKERS)],
                "linestyle": LINESTYLES[(i + i // len(OKABE_ITO)) % len(LINESTYLES)]}

    def of(self, labels: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Looks for the series ``labels`` of one figure (the base first gets black)."""
        labels = _ordered(labels)
        for u in labels:
            self.index.setdefault(u, len(self.index))
        if len(self.index) <= MAX_STYLES:
            return {u: self.style(self.index[u]) for u in labels}
        return {u: self.style(i) for i, u in enumerate(labels)}


def _text_w(labels: Iterable[Any], size: float = 7.0) -> float:
    """Estimated width in inches of the longest of ``labels`` (one line each) at ``size`` points."""
    return max((len(line) for s in labels for line in str(s).split("\n")), default=0) * size * _EM


def _fraction(ax: Axes, axis: str) -> None:
    """An axis of fractions: [0, 1] with a little room and ticks at quarters."""
    if axis == "x":
        ax.set_xlim(-0.02, 1.02)
        ax.set_xticks([0.0, 0.25, 0.5, 0.75, 1.0])
    else:
        ax.set_ylim(-0.02, 1.02)
        ax.set_yticks([0.0, 0.25, 0.5, 0.75, 1.0])


def _fmt(v: float, _pos: Any = None) -> str:
    return f"{v:g}"


def _scale(ax: Axes, axis: str, values: Iterable[float | None], *, ratio: float = 10.0, force: bool = False) -> None:
    """A log scale on ``axis`` when the positive ``values`` span ``ratio`` or more (always with ``force``), with
    plain-number labels at 1-2-5 steps and no minor ticks (they cost more than they help)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    vals = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if not vals or (not force and max(vals) / min(vals) < ratio):
        return
    decades = math.log10(max(vals) / min(vals))
    subs = ((1.0,) if decades > 3 else (1.0, 2.0, 5.0) if decades > 1 else (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
            if decades > 0.4 else (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0))
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    a = ax.xaxis if axis == "x" else ax.yaxis
    a.set_major_locator(LogLocator(base=10.0, subs=subs, numticks=12))
    a.set_minor_locator(NullLocator())
    a.set_major_formatter(FuncFormatter(_fmt))


@dataclass
class _Canvas:
    """A figure with a fixed layout (margins in inches, computed from the labels: much faster than constrained
    layout, which draws every figure twice) and its axes."""

    fig: Figure
    axes: list[Axes]
    width: float
    height: float
    left: float
    right: float
    bottom: float
    top: float
    legend_cols: int = 1
    legend_title: str | None = None

    def legend(self, handles: dict[str, Any]) -> None:
        """One figure-level legend in the right margin."""
        if handles:
            self.fig.legend(list(handles.values()), list(handles), loc="upper left", ncol=self.legend_cols,
                            bbox_to_anchor=(1 - (self.right - 0.15) / self.width, 1 - self.top / self.height),
                            borderaxespad=0.0, title=self.legend_title, title_fontsize=7, alignment="left")

    def colorbar(self, im: Any, label: str) -> None:
        """A colour bar in the right margin, as tall as the panels."""
        h = 1 - (self.top + self.bottom) / self.height
        cax = self.fig.add_axes((1 - (self.right - 0.15) / self.width, self.bottom / self.height + 0.1 * h,
                                 0.14 / self.width, 0.8 * h))
        self.fig.colorbar(im, cax=cax, label=label)

    def plot(self, name: str, title: str, caption: str, section: str) -> Plot:
        self.fig.suptitle(title, y=1 - 0.08 / self.height, va="top")
        return Plot(slugify(name), title, caption, section, _png(self.fig))


def _grid(n: int, *, panel: tuple[float, float] = (3.0, 2.4), max_cols: int = 4, left: float = 0.65,
          right: float = 0.25, bottom: float = 0.5, top: float = 0.6, wspace: float = 0.6, hspace: float = 0.85,
          legend: Sequence[str] = (), legend_title: str | None = None, colorbar: bool = False,
          sharex: bool | str = False, sharey: bool | str = False) -> _Canvas:
    """``n`` panels of ``panel`` inches in rows of at most ``max_cols``, with fixed margins (inches) and room on
    the right for a legend of ``legend`` labels or a colour bar; panels shrink to keep the figure within
    18 x 24 in."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    ncols = max(1, min(n, max_cols))
    nrows = max(1, math.ceil(n / ncols))
    pw, ph = panel
    ph = max(0.8, min(ph, (MAX_H - top - bottom - (nrows - 1) * hspace) / nrows))
    height = top + nrows * ph + (nrows - 1) * hspace + bottom
    cols = 1
    if legend:
        fits = max(1, int((height - top - 0.3) / 0.17))
        cols = min(3, math.ceil(len(legend) / fits))
        text = 0.92 * max(_text_w(legend), _text_w([legend_title or ""]) - 0.3)  # legend glyphs run narrower
        right += 0.1 + cols * (0.4 + text) + (cols - 1) * 0.15
    if colorbar:
        right += 0.85
    pw = max(0.9, min(pw, (MAX_W - left - right - (ncols - 1) * wspace) / ncols))
    width = max(MIN_W, left + ncols * pw + (ncols - 1) * wspace + right)
    pw = (width - left - right - (ncols - 1) * wspace) / ncols
    fig = Figure(figsize=(width, height), dpi=DPI)
    gs = fig.add_gridspec(nrows, ncols, left=left / width, right=1 - right / width, bottom=bottom / height,
                          top=1 - top / height, wspace=wspace / pw, hspace=hspace / ph)
    axes = list(gs.subplots(sharex=sharex, sharey=sharey, squeeze=False).ravel())
    for ax in axes[n:]:
        fig.delaxes(ax)
    for ax in axes[:n]:  # few ticks: readable on small panels, and every tick costs milliseconds to draw
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5 if pw > 3.5 else 4, steps=[1, 2, 2.5, 5, 10]))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5 if ph > 3.0 else 4, steps=[1, 2, 2.5, 5, 10]))
    return _Canvas(fig, axes[:n], width, height, left, right, bottom, top, cols, legend_title)


def _png(fig: Figure) -> bytes:
    """The figure as PNG bytes (Agg canvas, no timestamp or software metadata: identical input, identical bytes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _first_pair(data: RunData, rows: Iterable[dict[str, Any]]) -> tuple[str, str] | None:
    """The first (target, backend) pair, in stored order, that any of ``rows`` was measured on."""
    have = {(r.get("target"), r.get("backend")) for r in rows}
    for p in data.pairs:
        if p in have:
            return p
    return next(iter(sorted(have, key=str)), None)


def _at(rows: Iterable[dict[str, Any]], pair: tuple[str, str]) -> list[dict[str, Any]]:
    return [r for r in rows if (r.get("target"), r.get("backend")) == pair]


def _ordered(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _variants(model: str, present: Iterable[str], data: RunData) -> list[str]:
    """``present`` variants of ``model``: the base first, then the store's variant order, then the rest."""
    present = _ordered(present)
    known = [v.get("variant") for v in data.variants if v.get("model") == model]
    order = {v: i for i, v in enumerate(_ordered([BASE, *known, *present]))}
    return sorted(present, key=order.__getitem__)


def _pick(labels: Sequence[str], score: dict[str, float], cap: int, *, keep: Iterable[str] = ()) -> list[str]:
    """At most ``cap`` of ``labels`` (order kept): those in ``keep`` (the base), then the highest ``score``."""
    if len(labels) <= cap:
        return list(labels)
    keep = set(keep)
    chosen = [x for x in labels if x in keep][:cap]
    rest = sorted((x for x in labels if x not in chosen), key=lambda x: -score.get(x, -math.inf))
    chosen += rest[:cap - len(chosen)]
    return [x for x in labels if x in chosen]


def _extremes(labels: Sequence[str], value: dict[str, float], cap: int, *, keep: Iterable[str] = ()) -> list[str]:
    """At most ``cap`` of ``labels``: ``keep``, then alternately the lowest and highest ``value``."""
    if len(labels) <= cap:
        return list(labels)
    keep = set(keep)
    chosen = [x for x in labels if x in keep][:cap]
    rest = sorted((x for x in labels if x not in chosen and x in value), key=value.__getitem__)
    lo, hi = 0, len(rest) - 1
    while len(chosen) < cap and lo <= hi:
        chosen.append(rest[lo])
        lo += 1
        if len(chosen) < cap and lo <= hi:
            chosen.append(rest[hi])
            hi -= 1
    return [x for x in labels if x in chosen]


def _shown(n_shown: int, n_all: int, how: str) -> str:
    return "" if n_shown >= n_all else f" {n_shown} of {n_all} shown ({how})."


def _steps(ax: Axes, edges: Sequence[float], values: Sequence[float], style: dict[str, Any], label: str) -> Any:
    """A step histogram as one line with a few markers (so the legend shows marker and line style)."""
    import numpy as np

    y = np.append(np.asarray(values, dtype=float), float(values[-1]) if len(values) else math.nan)
    (line,) = ax.plot(np.asarray(edges, dtype=float), y, drawstyle="steps-post", label=label,
                      markevery=max(1, len(edges) // 6), markersize=3.5, **style)
    return line


def _hist(h: Any) -> tuple[list[float], list[float]] | None:
    """``(edges, counts)`` of a stored histogram dict (``edges`` or ``edges_ms``) when well formed and not empty."""
    if not isinstance(h, dict):
        return None
    edges = h.get("edges", h.get("edges_ms"))
    counts = h.get("counts")
    if not isinstance(edges, list) or not isinstance(counts, list) or not counts or len(edges) != len(counts) + 1:
        return None
    e = [_num(x) for x in edges]
    c = [_num(x) or 0.0 for x in counts]
    if any(x is None for x in e) or sum(c) <= 0:
        return None
    return [float(x) for x in e if x is not None], c


def _hist_median(edges: Sequence[float], counts: Sequence[float]) -> float:
    total, acc = sum(counts), 0.0
    for i, c in enumerate(counts):
        acc += c
        if acc >= total / 2:
            return math.sqrt(edges[i] * edges[i + 1]) if edges[i] > 0 else (edges[i] + edges[i + 1]) / 2
    return edges[-1]


def _worst_robust(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (model, variant): its white-box row of lowest robust accuracy at a finite ε."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        if r.get("threat") != "white-box" or _num(r.get("eps")) is None or _num(r.get("robust_acc")) is None:
            continue
        k = (r["model"], r["variant"])
        if k not in out or r["robust_acc"] < out[k]["robust_acc"]:
            out[k] = r
    return out


def _mean_robust(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """Per (model, variant): its mean robust accuracy over every attack × ε × source run against it (white-box
    and transfer): smoother than the worst case, which strong attacks at a large ε drive to 0 for all."""
    acc: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if _num(r.get("robust_acc")) is not None:
            acc.setdefault((r["model"], r["variant"]), []).append(float(r["robust_acc"]))
    return {k: sum(v) / len(v) for k, v in acc.items()}


def _largest_eps(rows: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Per attack: the largest finite ε among ``rows``."""
    out: dict[str, float] = {}
    for r in rows:
        e = _num(r.get("eps"))
        if e is not None and (r["attack"] not in out or e > out[r["attack"]]):
            out[r["attack"]] = e
    return out


def _or(v: float | None, default: float) -> float:
    return default if v is None else v


def _on(pair: tuple[str, str]) -> str:
    return f"{pair[0]} / {pair[1]}"


# summary --------------------------------------------------------------------------------------------------
def _accuracy_overview(data: RunData, st: _Styles) -> list[Plot]:
    """Forest plot: clean accuracy with its 95 % Wilson interval per unit, and its worst white-box robust
    accuracy (first target and backend)."""
    clean = [r for r in data.clean if _num(r.get("clean_acc")) is not None]
    pair = _first_pair(data, clean)
    if pair is None:
        return []
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in _at(clean, pair):
        rows.setdefault((r["model"], r["variant"]), r)
    worst = _worst_robust(_at(data.adversarial, pair))
    units = [(m, v) for m in _ordered(k[0] for k in rows)
             for v in _variants(m, (k[1] for k in rows if k[0] == m), data)]
    base_acc = {m: rows[(m, BASE)]["clean_acc"] for m, v in units if v == BASE}
    drop = {unit_label(m, v): abs(base_acc.get(m, 1.0) - rows[(m, v)]["clean_acc"]) for m, v in units}
    labels = _pick([unit_label(m, v) for m, v in units], drop, MAX_ROWS, keep=[m for m, v in units if v == BASE])
    units = [(m, v) for m, v in units if unit_label(m, v) in labels]
    series = [("clean_acc", 0.15, "o", OKABE_ITO[0], "clean accuracy"),
              ("robust_acc", -0.15, "s", HIGHLIGHT, "worst white-box robust accuracy")]
    if not worst:
        series = series[:1]
    cv = _grid(1, panel=(4.2, 0.3 + 0.22 * len(units)), left=0.35 + _text_w(labels), top=0.4,
               legend=[s[4] for s in series])
    ax = cv.axes[0]
    ys = list(range(len(units)))[::-1]
    handles: dict[str, Any] = {}
    for key, off, marker, color, what in series:
        pts = [(y + off, (worst.get((m, v)) if key == "robust_acc" else rows[(m, v)])) for y, (m, v) in zip(ys, units)]
        pts = [(y, r, _num(r.get(key))) for y, r in pts if r is not None and _num(r.get(key)) is not None]
        if not pts:
            continue
        lo = [max(0.0, val - _or(_num(r.get(key + "_lo")), val)) for _, r, val in pts]
        hi = [max(0.0, _or(_num(r.get(key + "_hi")), val) - val) for _, r, val in pts]
        handles[what] = ax.errorbar([p[2] for p in pts], [p[0] for p in pts], xerr=[lo, hi], fmt=marker,
                                    color=color, ecolor=color, capsize=2, markersize=4, elinewidth=1)
    ax.set_yticks(ys, [unit_label(m, v) for m, v in units])
    ax.set_xlabel("accuracy (fraction, 95 % Wilson interval)")
    _fraction(ax, "x")
    ax.set_ylim(-0.7, len(units) - 0.3)
    ax.grid(axis="y", visible=False)
    cv.legend(handles)
    n_all = len(rows)
    caption = ("Clean accuracy (circles) of each model and variant on " + _on(pair) +
               (" and its lowest white-box robust accuracy over the attacks at a finite ε (squares)" if worst else "")
               + ", with 95 % Wilson intervals: a variant whose interval overlaps the base's is not measurably "
               "worse." + _shown(len(units), n_all, "the bases and the largest changes from the base"))
    return [cv.plot("accuracy-overview", f"Accuracy per variant ({_on(pair)})", caption, "summary")]


# latency --------------------------------------------------------------------------------------------------
def _latency(data: RunData, st: _Styles) -> list[Plot]:
    """Per target: the batch-1 latency distribution of each variant, one panel per backend."""
    hists: dict[tuple[str, str], dict[str, tuple[list[float], list[float]]]] = {}
    for s in data.latency_histograms():
        h = _hist(s.get("data"))
        if h is not None and min(h[0]) > 0:
            hists.setdefault((s["target"], s["backend"]), {})[unit_label(s["model"], s["variant"])] = h
    clean: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in data.clean:
        if _num(r.get("p50_ms")) is not None:
            clean.setdefault((r["target"], r["backend"]), {}).setdefault(unit_label(r["model"], r["variant"]), r)
    pairs = [p for p in _ordered([*data.pairs, *hists, *clean]) if p in hists or p in clean]
    out = []
    for target in _ordered(p[0] for p in pairs):
        backends = [p for p in pairs if p[0] == target][:MAX_PANELS]
        shown: dict[tuple[str, str], list[str]] = {}
        for p in backends:
            if p in hists:
                med = {u: _hist_median(*h) for u, h in hists[p].items()}
                shown[p] = _extremes(list(hists[p]), med, MAX_LINES + 2, keep=[u for u in hists[p] if "/" not in u])
            else:
                p50 = {u: r["p50_ms"] for u, r in clean[p].items()}
                shown[p] = _extremes(list(clean[p]), p50, MAX_ROWS // 2, keep=[u for u in clean[p] if "/" not in u])
        ranged = [p for p in backends if p not in hists]
        labels = _ordered(u for p in backends if p in hists for u in shown[p])
        side = 0.35 + _text_w(u for p in ranged for u in shown[p]) if ranged else 0.0
        rows = max((len(shown[p]) for p in ranged), default=0)
        cv = _grid(len(backends), panel=(3.8, max(2.6, 0.3 + 0.2 * rows)), max_cols=2, left=max(0.65, side),
                   wspace=max(0.6, side), legend=labels)
        handles: dict[str, Any] = {}
        sty = st.of(labels)
        for ax, pair in zip(cv.axes, backends):
            if pair in hists:
                for u in shown[pair]:
                    edges, counts = hists[pair][u]
                    total = sum(counts)
                    handles[u] = _steps(ax, edges, [c / total for c in counts], sty[u], u)
                _scale(ax, "x", [e for u in shown[pair] for e in hists[pair][u][0]], force=True)
                ax.set_xlabel("latency per inference (ms, log scale)")
                ax.set_ylabel("share of runs per bin")
            else:
                _latency_ranges(ax, clean[pair], shown[pair], st)
            ax.set_title(pair[1])
        cv.legend(handles)
        notes = "".join(_shown(len(shown[p]), len(hists[p] if p in hists else clean[p]),
                               f"{p[1]}: the bases, the fastest and the slowest") for p in backends)
        kinds = ("histograms of the timed batch-1 inferences on log-spaced bins (share of runs per bin)"
                 if labels else "")
        ranges = "min–max line, p50–p90 bar, p99 cross, from the stored percentiles" if ranged else ""
        caption = (f"Latency of one batch-1 inference on {target}, per backend: "
                   + "; ".join(x for x in (kinds, ranges) if x)
                   + ". Further left is faster; a long right tail means jitter." + notes)
        out.append(cv.plot(f"latency-{target}", f"Latency distribution on {target}", caption, "latency"))
    return out


def _latency_ranges(ax: Axes, rows: dict[str, dict[str, Any]], shown: list[str], st: _Styles) -> None:
    """Box-like latency summary per unit from the clean rows' min/p50/p90/p99/max (no histograms stored)."""
    ys = list(range(len(shown)))[::-1]
    vals: list[float | None] = []
    sty = st.of(shown)
    for y, u in zip(ys, shown):
        r, s = rows[u], sty[u]
        lo, hi, p90, p99 = (_num(r.get(k)) for k in ("min_ms", "max_ms", "p90_ms", "p99_ms"))
        if lo is not None and hi is not None:
            ax.hlines(y, lo, hi, color=s["color"], linewidth=1)
        ax.hlines(y, r["p50_ms"], p90 if p90 is not None else r["p50_ms"], color=s["color"], linewidth=5)
        ax.plot([r["p50_ms"]], [y], marker="|", color="white", markersize=6, linestyle="none")
        if p99 is not None:
            ax.plot([p99], [y], marker="x", color=s["color"], linestyle="none")
        vals += [lo, r["p50_ms"], hi]
    ax.set_yticks(ys, shown)
    ax.set_ylim(-0.7, len(shown) - 0.3)
    _scale(ax, "x", vals)
    ax.set_xlabel("latency per inference (ms)")
    ax.grid(axis="y", visible=False)


# robustness -----------------------------------------------------------------------------------------------
def _asr_vs_eps(data: RunData, st: _Styles) -> list[Plot]:
    """ASR against ε per variant, a panel per attack (Liu et al. 2018, seed 000, Fig. 4)."""
    from matplotlib.collections import PolyCollection

    wb = [r for r in data.adversarial if r.get("threat") == "white-box" and _num(r.get("eps")) is not None
          and _num(r.get("asr")) is not None]
    pair = _first_pair(data, wb)
    if pair is None:
        return []
    rows = _at(wb, pair)
    out = []
    for model in _ordered(r["model"] for r in rows)[:MAX_MODELS]:
        by_attack: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            if r["model"] == model:
                by_attack.setdefault(r["attack"], []).append(r)
        attacks = [a for a, rs in by_attack.items() if len({float(r["eps"]) for r in rs}) >= 2]
        n_attacks = len(attacks)
        attacks = attacks[:MAX_PANELS]
        if not attacks:
            continue
        variants = _variants(model, (r["variant"] for a in attacks for r in by_attack[a]), data)
        base = {(r["attack"], float(r["eps"])): r["asr"] for a in attacks for r in by_attack[a]
                if r["variant"] == BASE}
        diffs: dict[str, list[float]] = {}
        for a in attacks:
            for r in by_attack[a]:
                b = base.get((a, float(r["eps"])))
                diffs.setdefault(r["variant"], []).append(abs(r["asr"] - b) if b is not None else r["asr"])
        score = {v: sum(d) / len(d) for v, d in diffs.items()}
        shown = _pick(variants, score, MAX_LINES, keep=[BASE])
        cv = _grid(len(attacks), panel=(2.5, 2.0), wspace=0.2, legend=shown, legend_title="variant", sharey=True)
        handles: dict[str, Any] = {}
        sty = st.of(unit_label(model, v) for v in shown)
        for i, (ax, attack) in enumerate(zip(cv.axes, attacks)):
            bands, colors = [], []
            for v in shown:
                pts = sorted((float(r["eps"]), r["asr"], _num(r.get("asr_lo")), _num(r.get("asr_hi")))
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
            ax.set_title(attack)
            ax.set_xlabel("ε (attack budget)")
            _fraction(ax, "y")
            if i % 4 == 0:
                ax.set_ylabel("ASR (fraction)")
        cv.legend({v: handles[v] for v in shown if v in handles})
        caption = (f"Attack success rate of white-box attacks on {model} against the budget ε, one line per "
                   f"variant, on {_on(pair)}; bands are 95 % Wilson intervals. A curve further right is more "
                   "robust (reproduces Liu et al. 2018, Fig. 4)." +
                   _shown(len(shown), len(variants), "the base and the variants farthest from it") +
                   ("" if n_attacks <= MAX_PANELS else f" {MAX_PANELS} of {n_attacks} attacks shown."))
        out.append(cv.plot(f"asr-vs-eps-{model}", f"ASR vs ε, white-box — {model} ({_on(pair)})", caption,
                           "robustness"))
    return out


def _min_eps_stats(r: dict[str, Any]) -> tuple[dict[str, float] | None, float | None]:
    """Box statistics (10/25/50/75/90th percentiles of the found minimal ε) and the share found."""
    import numpy as np

    values = r.get("values")
    if isinstance(values, list) and values:
        found = [f for f in (_num(v) for v in values) if f is not None]
        share = len(found) / len(values)
        if not found:
            return None, share
        q = [float(x) for x in np.percentile(found, [10, 25, 50, 75, 90])]
    else:  # no per-sample values: the stored quantiles, when all finite
        share = _num(r.get("found_share"))
        qs = [_num(r.get(f"p{p}")) for p in (10, 25, 50, 75, 90)]
        if any(x is None for x in qs):
            return None, share
        q = [float(x) for x in qs if x is not None]
    return {"whislo": q[0], "q1": q[1], "med": q[2], "q3": q[3], "whishi": q[4]}, share


def _horizontal(ax: Axes) -> dict[str, Any]:
    """``bxp``'s keyword for horizontal boxes: ``orientation`` since matplotlib 3.10, ``vert`` before."""
    import inspect

    return {"orientation": "horizontal"} if "orientation" in inspect.signature(ax.bxp).parameters else {"vert": False}


def _min_eps(data: RunData, st: _Styles) -> list[Plot]:
    """Distribution of the per-sample minimal ε per variant and attack (seed 000, Algorithm 1)."""
    rows = [r for r in data.min_eps
            if r.get("threat") == "white-box" or r.get("source") == unit_label(r["model"], r["variant"])]
    pair = _first_pair(data, rows)
    if pair is None:
        return []
    rows = _at(rows, pair)
    out = []
    for model in _ordered(r["model"] for r in rows)[:MAX_MODELS]:
        cells: dict[tuple[str, str], tuple[dict[str, float] | None, float | None]] = {}
        for r in rows:
            if r["model"] == model:
                cells.setdefault((r["attack"], r["variant"]), _min_eps_stats(r))
        attacks = [a for a in _ordered(a for a, _ in cells) if any(cells[k][0] for k in cells if k[0] == a)]
        n_attacks = len(attacks)
        attacks = attacks[:MAX_PANELS]
        if not attacks:
            continue
        variants = _variants(model, (v for a, v in cells if a in attacks), data)
        med: dict[str, float] = {}
        for (a, v), (s, _) in cells.items():
            if s is not None and a in attacks:
                med[v] = med.get(v, 0.0) + s["med"]
        base_med = med.get(BASE, 0.0)
        shown = _pick(variants, {v: abs(m - base_med) for v, m in med.items()}, MAX_ROWS // 4, keep=[BASE])
        cv = _grid(len(attacks), panel=(2.2, 0.3 + 0.2 * len(shown)), left=0.35 + _text_w(shown), wspace=0.4,
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
                   f"({_on(pair)}; Algorithm 1 of Liu et al. 2018), among samples classified correctly when clean: "
                   "boxes span the quartiles of the samples where it succeeded, whiskers the 10th–90th percentile; "
                   "the percentage at the right is the share of samples reached within the grid. Further right is "
                   "more robust." + _shown(len(shown), len(variants), "the base and the medians farthest from it")
                   + ("" if n_attacks <= MAX_PANELS else f" {MAX_PANELS} of {n_attacks} attacks shown."))
        out.append(cv.plot(f"min-eps-{model}", f"Minimal ε per sample — {model} ({_on(pair)})", caption,
                           "robustness"))
    return out


def _heatmap(ax: Axes, matrix: list[list[float | None]], rows: Sequence[str], cols: Sequence[str], *,
             cmap: str, vmin: float = 0.0, vmax: float = 1.0, xlabels: bool = True, ylabels: bool = True) -> Any:
    """``matrix`` (None = not measured, drawn light grey) as an image, annotated when small; tick labels only
    where asked (inner panels of a grid go without: each tick costs milliseconds to draw)."""
    import matplotlib
    import numpy as np

    a = np.array([[math.nan if v is None else v for v in row] for row in matrix], dtype=float)
    cm = matplotlib.colormaps[cmap].with_extremes(bad="#e8e8e8")
    im = ax.imshow(np.ma.masked_invalid(a), cmap=cm, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    small = len(rows) <= MAX_ANNOTATED and len(cols) <= MAX_ANNOTATED
    fs = 7 if small else 5
    if xlabels:
        ax.set_xticks(range(len(cols)), cols, rotation=90 if _rotate(cols) else 0, fontsize=fs)
    else:
        ax.set_xticks([])
    if ylabels:
        ax.set_yticks(range(len(rows)), rows, fontsize=fs)
    else:
        ax.set_yticks([])
    ax.grid(False)
    if small:
        for i in range(len(rows)):
            for j in range(len(cols)):
                v = a[i, j]
                if np.isfinite(v):
                    dark = (min(max(v, vmin), vmax) - vmin) / ((vmax - vmin) or 1) < 0.55
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if dark else "black")
    return im


def _rotate(cols: Sequence[str]) -> bool:
    """Column labels drawn vertically: when any line is longer than a narrow cell holds."""
    return max((len(line) for c in cols for line in c.split("\n")), default=0) > 5


def _heat_margins(rows: Sequence[str], cols: Sequence[str]) -> tuple[float, float]:
    """(left, bottom) margins in inches for a heat map with these row and column labels."""
    fs = 7 if len(rows) <= MAX_ANNOTATED and len(cols) <= MAX_ANNOTATED else 5
    lines = max((c.count("\n") + 1 for c in cols), default=1)
    bottom = 0.45 + (0.9 * _text_w(cols, fs) if _rotate(cols) else lines * fs * 1.3 / 72)
    return 0.4 + 0.9 * _text_w(rows, fs), bottom


def _transfer(data: RunData, st: _Styles) -> list[Plot]:
    """ASR on each victim of the examples crafted on each source (Wijayanto et al. 2018, seed 002, Table III)."""
    adv = [r for r in data.adversarial if _num(r.get("asr")) is not None and _num(r.get("eps")) is not None
           and r.get("source")]
    per_pair: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    crossed: set[tuple[str, str, str]] = set()
    for r in adv:
        per_pair.setdefault((r["target"], r["backend"]), {}).setdefault(r["attack"], []).append(r)
        if r["source"] != unit_label(r["model"], r["variant"]):
            crossed.add((r["target"], r["backend"], r["attack"]))
    pair = next((p for p in _ordered([*data.pairs, *per_pair]) if p in per_pair
                 and any((*p, a) in crossed for a in per_pair[p])), None)
    if pair is None:
        return []
    panels = []
    for attack, rs in per_pair[pair].items():
        if (*pair, attack) in crossed:
            eps = max(float(r["eps"]) for r in rs)
            panels.append((attack, eps, {(r["source"], unit_label(r["model"], r["variant"])): r["asr"]
                                         for r in rs if float(r["eps"]) == eps}))
    # one set of rows and columns for all panels, so that only the outer panels need tick labels
    victims = _ordered(v for _, _, c in panels for _, v in c)
    sources = _ordered(s for _, _, c in panels for s, _ in c)
    sources = [v for v in victims if v in sources] + [s for s in sources if s not in victims]
    n_sources = len(sources)
    if n_sources > MAX_ANNOTATED:  # many units: the rows that only attacked themselves add nothing here
        crossing = {s for _, _, c in panels for s, v in c if s != v}
        sources = [s for s in sources if s in crossing]
    sources, victims = sources[:MAX_ROWS], victims[:MAX_ROWS]
    big = max(len(sources), len(victims)) > MAX_ANNOTATED
    n_panels = len(panels)
    panels = panels[:4 if big else MAX_PANELS]
    cell = 0.12 if big else 0.36
    left, bottom = _heat_margins(sources, victims)
    pw, ph = max(1.2, cell * len(victims)), max(1.0, cell * len(sources))
    ncols = max(1, min(2 if big else 4, int(14 // pw)))
    cv = _grid(len(panels), panel=(pw, ph), max_cols=ncols, left=left + 0.1, wspace=0.15, bottom=bottom,
               hspace=0.35, colorbar=True)
    im = None
    rows_of = math.ceil(len(panels) / ncols)
    for i, (ax, (attack, eps, cells)) in enumerate(zip(cv.axes, panels)):
        outer_x = i // ncols == rows_of - 1 or i + ncols >= len(panels)
        im = _heatmap(ax, [[cells.get((s, v)) for v in victims] for s in sources], sources, victims, cmap="viridis",
                      xlabels=outer_x, ylabels=i % ncols == 0)
        ax.set_title(f"{attack}, ε = {eps:g}")
        if outer_x:
            ax.set_xlabel("victim")
        if i % ncols == 0:
            ax.set_ylabel("source (crafted on)")
    cv.colorbar(im, "ASR on the victim (fraction)")
    caption = (f"Attack success rate on each victim (column) of the adversarial examples crafted on each source "
               f"(row), per attack at its largest ε, on {_on(pair)}; the diagonal is white-box, grey cells were "
               "not measured. Bright off-diagonal cells mean the examples transfer (reproduces Wijayanto et al. "
               "2018, Table III)." +
               ("" if n_panels == len(panels) else f" {len(panels)} of {n_panels} attacks shown.") +
               ("" if len(sources) == n_sources else f" {len(sources)} of {n_sources} sources shown (those whose "
                "examples were tried on another model; the white-box rest is in the ASR figures)."))
    return [cv.plot("transfer-heatmap", f"Transferability ({_on(pair)})", caption, "robustness")]


def _vulnerability(data: RunData, st: _Styles) -> list[Plot]:
    """(clean_acc − robust_acc) / clean_acc per variant and attack (Wijayanto et al. 2018, seed 002, Fig. 2)."""
    wb = [r for r in data.adversarial if r.get("threat") == "white-box" and _num(r.get("eps")) is not None
          and _num(r.get("clean_acc")) and _num(r.get("robust_acc")) is not None]
    pair = _first_pair(data, wb)
    if pair is None:
        return []
    rows = _at(wb, pair)
    out = []
    for model in _ordered(r["model"] for r in rows)[:MAX_MODELS]:
        mrows = [r for r in rows if r["model"] == model]
        top = _largest_eps(mrows)
        attacks = list(top)[:MAX_ROWS]
        cells = {(r["variant"], r["attack"]): (r["clean_acc"] - r["robust_acc"]) / r["clean_acc"]
                 for r in mrows if r["attack"] in attacks and float(r["eps"]) == top[r["attack"]]}
        variants = _variants(model, (v for v, _ in cells), data)
        mean = {v: sum(x for (vv, _), x in cells.items() if vv == v) for v in variants}
        shown = _extremes(variants, mean, MAX_ROWS, keep=[BASE])
        cols = [f"{a}\nε={top[a]:g}" for a in attacks]
        small = len(cols) <= MAX_ANNOTATED and len(shown) <= MAX_ANNOTATED
        left, bottom = _heat_margins(shown, cols)
        cv = _grid(1, panel=(max(2.0, (0.5 if small else 0.2) * len(cols)), max(1.6, (0.3 if small else 0.14) *
                                                                              len(shown))),
                   left=left + 0.1, bottom=bottom, top=0.4, colorbar=True)
        ax = cv.axes[0]
        im = _heatmap(ax, [[cells.get((v, a)) for a in attacks] for v in shown], shown, cols, cmap="cividis")
        ax.set_xlabel("attack (white-box, at its largest ε)")
        ax.set_ylabel("variant")
        cv.colorbar(im, "vulnerability (fraction of clean accuracy lost)")
        caption = (f"Vulnerability of each variant of {model} (row) to each white-box attack at its largest ε "
                   f"(column), on {_on(pair)}: the share of its clean accuracy the attack removes (0 = unaffected, "
                   "1 = nothing left; colour clipped to [0, 1], grey = not measured). Reproduces Wijayanto et al. "
                   "2018, Fig. 2." + _shown(len(shown), len(variants), "the base, the least and the most vulnerable"))
        out.append(cv.plot(f"vulnerability-{model}", f"Vulnerability — {model} ({_on(pair)})", caption,
                           "robustness"))
    return out


def _gradient_amplitude(data: RunData, st: _Styles) -> list[Plot]:
    """Histograms of the per-sample mean |∂J/∂x| (Liu et al. 2018, seed 000, Figs. 7 and 9). Exact zeros cannot
    sit on a log axis: their share is given in the legend (a model whose gradients are all zero has no curve,
    only its legend entry)."""
    series: dict[str, tuple[tuple[list[float], list[float]] | None, float]] = {}
    masked = set()
    for f in data.flags:
        if f.get("kind") not in ("gradient-check", "gradient-masking"):
            continue
        raw = (f.get("detail") or {}).get("abs_grad_hist")
        h = _hist(raw)
        zeros = (_num(raw.get("zeros")) or 0.0) if isinstance(raw, dict) else 0.0
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
    med = {u: _hist_median(*h) if h else 0.0 for u, (h, _) in series.items()}
    shown = _extremes(labels, med, MAX_LINES + 2, keep=[u for u in labels if "/" not in u or u in masked])
    names = {}
    for u in shown:
        h, zeros = series[u]
        zero_share = zeros / (zeros + (sum(h[1]) if h else 0.0))
        zero = f"{zero_share:.0%} zero" if zero_share >= 0.005 else "<1% zero" if zero_share > 0 else ""
        notes = (["masking flagged"] if u in masked else []) + ([zero] if zero else [])
        names[u] = u + (f" ({', '.join(notes)})" if notes else "")
    cv = _grid(1, panel=(4.6, 3.0), top=0.4, legend=list(names.values()), legend_title="crafted on")
    ax = cv.axes[0]
    handles = {}
    sty = st.of(shown)
    for u in shown:
        h, zeros = series[u]
        if h is None:
            (handles[names[u]],) = ax.plot([], [], **sty[u])
            continue
        total = sum(h[1]) + zeros
        handles[names[u]] = _steps(ax, h[0], [c / total for c in h[1]], sty[u], names[u])
    _scale(ax, "x", [e for u in shown if series[u][0] for e in series[u][0][0]], force=True)  # type: ignore[index]
    ax.set_xlabel("per-sample mean |∂J/∂x| (log scale)")
    ax.set_ylabel("share of samples per bin")
    cv.legend(handles)
    caption = ("Distribution of the input-gradient amplitude of the cross-entropy over test samples for each "
               "model that crafted white-box examples (the share of exactly zero gradients in the legend); a curve "
               "shifted far left, a large zero share or a flagged model means vanishing gradients, under which "
               "white-box attacks overstate robustness (reproduces Liu et al. 2018, Figs. 7 and 9)." +
               _shown(len(shown), len(labels), "the bases, flagged models and extremes"))
    return [cv.plot("gradient-amplitude", "Input-gradient amplitude", caption, "robustness")]


# trade-offs -----------------------------------------------------------------------------------------------
_TRADEOFF_LEGEND = ("variant", "Pareto-optimal", "Pareto front", "base (uncompressed)")


def _tradeoffs(data: RunData, st: _Styles) -> list[Plot]:
    """Accuracy against latency, energy and size with the Pareto front (the pruning poster, seed 004)."""
    sizes = data.onnx_sizes()
    out = []
    for target in _ordered(p[0] for p in data.pairs):
        pair = next(p for p in data.pairs if p[0] == target)
        clean: dict[tuple[str, str], dict[str, Any]] = {}
        for r in _at(data.clean, pair):
            clean.setdefault((r["model"], r["variant"]), r)
        robust = _mean_robust(_at(data.adversarial, pair))
        units = list(clean)
        energy = {u: _num(clean[u].get("energy_j")) if clean[u].get("energy_valid") else None for u in units}
        xs = {"latency": {u: _num(clean[u].get("p50_ms")) for u in units},
              "energy": {u: None if e is None else e * 1e3 for u, e in energy.items()},
              "size": {u: sizes.get(u) for u in units}}
        xlabel = {"latency": "p50 latency per inference (ms)", "energy": "energy per inference (mJ)",
                  "size": "ONNX artifact size (bytes)"}
        ys = {"clean": {u: _num(clean[u].get("clean_acc")) for u in units},
              "robust": {u: robust.get(u) for u in units}}
        ylabel = {"clean": "clean accuracy", "robust": "mean robust accuracy\n(all attacks)"}
        count = {(xk, yk): sum(1 for u in units if xs[xk][u] is not None and ys[yk][u] is not None)
                 for xk in xs for yk in ys}
        cols = [k for k in xs if count[(k, "clean")] >= 2 or count[(k, "robust")] >= 2]
        rws = [k for k in ys if any(count[(c, k)] >= 2 for c in cols)]
        if not cols or not rws:
            continue
        cv = _grid(len(cols) * len(rws), panel=(2.9, 2.4), max_cols=len(cols), left=0.8, top=0.4, wspace=0.25,
                   hspace=0.6, legend=_TRADEOFF_LEGEND, sharey="row")
        handles: dict[str, Any] = {}
        one_model = len({m for m, _ in units}) == 1
        for i, yk in enumerate(rws):
            for j, xk in enumerate(cols):
                ax = cv.axes[i * len(cols) + j]
                pts = [(u, x, y) for u in units if (x := xs[xk][u]) is not None and (y := ys[yk][u]) is not None]
                _pareto_panel(ax, pts, handles, one_model)
                if xk == "size":
                    from matplotlib.ticker import EngFormatter

                    ax.xaxis.set_major_formatter(EngFormatter(unit="B", sep=" "))
                ax.set_xlabel(xlabel[xk])
                if j == 0:
                    ax.set_ylabel(ylabel[yk])
        cv.legend({k: handles[k] for k in _TRADEOFF_LEGEND if k in handles})
        caption = (f"Each point is a model or variant on {_on(pair)}: accuracy (higher is better) against cost "
                   "(lower is better). Diamonds joined by the dashed step line are Pareto-optimal: no other variant "
                   "is both cheaper and more accurate; the star is the uncompressed base (poster 004's trade-off)." +
                   (" Robust accuracy is the mean over every attack, ε and source run against the unit (white-box "
                    "and transfer)." if "robust" in rws
                    else "") + (" Energy only where the sensor's window was valid." if "energy" in cols else ""))
        out.append(cv.plot(f"tradeoffs-{target}", f"Accuracy vs cost on {_on(pair)}", caption, "tradeoffs"))
    return out


def _pareto_panel(ax: Axes, pts: list[tuple[tuple[str, str], float, float]], handles: dict[str, Any],
                  one_model: bool) -> None:
    front = pareto_front([p[1] for p in pts], [p[2] for p in pts])
    on_front = set(front)
    others = [p for i, p in enumerate(pts) if i not in on_front and p[0][1] != BASE]
    if others:
        handles.setdefault("variant", ax.scatter([p[1] for p in others], [p[2] for p in others], s=16, marker="o",
                                                 color=POINTS, alpha=0.7, linewidths=0))
    if front:
        fx, fy = [pts[i][1] for i in front], [pts[i][2] for i in front]
        (line,) = ax.step(fx, fy, where="post", color=HIGHLIGHT, linestyle="--", linewidth=1)
        handles.setdefault("Pareto front", line)
        handles.setdefault("Pareto-optimal", ax.scatter(fx, fy, s=34, marker="D", color=HIGHLIGHT,
                                                        edgecolors="black", linewidths=0.5, zorder=3))
    bases = [p for p in pts if p[0][1] == BASE]
    if bases:
        handles.setdefault("base (uncompressed)", ax.scatter([p[1] for p in bases], [p[2] for p in bases], s=70,
                                                             marker="*", color=OKABE_ITO[0], zorder=4))
    if len(pts) <= MAX_LABELS:
        for (m, v), x, y in pts:
            ax.annotate(v if one_model else unit_label(m, v), (x, y), xytext=(3, 3), textcoords="offset points",
                        fontsize=6)
    _scale(ax, "x", [p[1] for p in pts])


# variants -------------------------------------------------------------------------------------------------
def _stats(v: dict[str, Any], key: str) -> Any:
    stats = v.get("stats")
    return stats.get(key) if isinstance(stats, dict) else None


def _delta_w(data: RunData, st: _Styles) -> list[Plot]:
    """‖W_variant − W_parent‖₂ per layer (Song et al. 2020, seed 003, Fig. 3)."""
    import numpy as np

    out = []
    with_d = [v for v in data.variants if isinstance(_stats(v, "delta_w_spectral"), dict)
              and any(_num(x) is not None for x in v["stats"]["delta_w_spectral"].values())]
    for model in _ordered(v["model"] for v in with_d)[:MAX_MODELS]:
        vs = {v["variant"]: v["stats"]["delta_w_spectral"] for v in with_d if v["model"] == model}
        layers = _ordered(k for d in vs.values() for k in d)[:60]
        names = _variants(model, vs, data)
        peak = {n: max((_num(x) or 0.0) for x in vs[n].values()) for n in names}
        shown = _pick(names, peak, MAX_LINES, keep=[])
        vals = [_num(vs[n].get(k)) for n in shown for k in layers]
        rotate = _text_w(layers) > 0.45
        cv = _grid(1, panel=(max(4.0, 0.45 * len(layers)), 2.8), top=0.4,
                   bottom=0.45 + (0.5 * _text_w(layers) + 0.1 if rotate else 0.15),
                   legend=[*shown, "‖ΔW‖₂ = 1"], legend_title="variant")
        ax = cv.axes[0]
        handles: dict[str, Any] = {}
        x = np.arange(len(layers))
        bars = len(shown) <= 6
        hatches = ("", "//", "..", "xx", "\\\\", "oo")
        sty = st.of(unit_label(model, n) for n in shown)
        for i, n in enumerate(shown):
            s = sty[unit_label(model, n)]
            y = [math.nan if (f := _num(vs[n].get(k))) is None else f for k in layers]
            if bars:
                w = 0.8 / len(shown)
                handles[n] = ax.bar(x - 0.4 + w * (i + 0.5), y, width=w, color=s["color"], hatch=hatches[i],
                                    edgecolor="black", linewidth=0.4)
            else:
                (handles[n],) = ax.plot(x, y, **s)
        handles["‖ΔW‖₂ = 1"] = ax.axhline(1.0, color="black", linestyle=":", linewidth=1)
        _scale(ax, "y", vals, ratio=50.0)
        ax.set_xticks(x, layers, rotation=30 if rotate else 0, ha="right" if rotate else "center",
                      rotation_mode="anchor")
        ax.set_xlabel("layer")
        ax.set_ylabel("‖ΔW‖₂ (largest singular value)")
        ax.grid(axis="x", visible=False)
        cv.legend(handles)
        caption = (f"Largest singular value of each layer's weight change W_variant − W_parent in {model} (missing "
                   "bars: shapes differ, e.g. pruned channels). Layers above the dotted line at 1 may amplify the "
                   "compression error of their input (the Lipschitz criterion of Song et al. 2020, Fig. 3)." +
                   _shown(len(shown), len(names), "the largest peaks"))
        out.append(cv.plot(f"delta-w-spectral-{model}", f"‖ΔW‖₂ per layer — {model}", caption, "variants"))
    return out


def _weight_histograms(data: RunData, st: _Styles) -> list[Plot]:
    """Histograms of the first and last weighted layer per variant (Liu et al. 2018, seed 000, Fig. 6)."""
    out = []
    with_w = [v for v in data.variants if isinstance(_stats(v, "weights"), dict) and v["stats"]["weights"]]
    for model in _ordered(v["model"] for v in with_w)[:MAX_MODELS]:
        ws = {v["variant"]: v["stats"]["weights"] for v in with_w if v["model"] == model}
        names = _variants(model, ws, data)
        layer_order = _ordered(k for n in names for k in ws[n])
        layers = _ordered([layer_order[0], layer_order[-1]])
        hists = {(n, k): _hist(ws[n].get(k)) for n in names for k in layers}
        layers = [k for k in layers if any(hists[(n, k)] for n in names)]
        if not layers:
            continue
        width = {n: max((max(abs(h[0][0]), abs(h[0][-1])) for k in layers if (h := hists[(n, k)])), default=0.0)
                 for n in names}
        shown = _pick(names, width, MAX_HIST_LINES, keep=[BASE])
        cv = _grid(len(layers), panel=(3.2, 2.5), max_cols=2, legend=shown, legend_title="variant")
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
                handles.setdefault(n, _steps(ax, h[0], counts, sty[unit_label(model, n)], n))
            _scale(ax, "y", [*counts_all, 1.0], force=True)
            ax.set_title(f"{k} ({'first' if k == layer_order[0] else 'last'} weighted layer)")
            ax.set_xlabel("weight value")
            ax.set_ylabel("count (log scale)")
        cv.legend({n: handles[n] for n in shown if n in handles})
        caption = (f"Histogram of the effective weights of the first and last weighted layers of {model}, one step "
                   "line per variant: a wider range or heavier tails (hashing, gradient inhibition) and spikes "
                   "(quantization levels, pruned zeros) show at a glance (reproduces Liu et al. 2018, Fig. 6)." +
                   _shown(len(shown), len(names), "the base and the widest ranges"))
        out.append(cv.plot(f"weight-histograms-{model}", f"Weight distributions — {model}", caption, "variants"))
    return out


# deployment -----------------------------------------------------------------------------------------------
def _host_vs_device(data: RunData, st: _Styles) -> list[Plot]:
    """Device ASR against the host torch twin's ASR on the same examples (the deployment gap, DESIGN.md)."""
    rows = [r for r in data.adversarial if _num(r.get("host_asr")) is not None and _num(r.get("asr")) is not None]
    if not rows:
        return []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["target"], r["backend"]), []).append(r)
    order = [p for p in _ordered([*data.pairs, *groups]) if p in groups][:len(MARKERS)]
    labels = {}
    for p in order:
        gap = sum(r["asr"] - r["host_asr"] for r in groups[p]) / len(groups[p])
        labels[p] = f"{_on(p)}\n(n={len(groups[p])}, mean gap {gap:+.3f})"
    cv = _grid(1, panel=(3.4, 3.4), top=0.4, legend=["y = x (no gap)", *labels.values()])
    ax = cv.axes[0]
    handles = {"y = x (no gap)": ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)[0]}
    for i, p in enumerate(order):
        rs = groups[p]
        handles[labels[p]] = ax.scatter([r["host_asr"] for r in rs], [r["asr"] for r in rs], s=16, alpha=0.7,
                                        marker=MARKERS[i], color=OKABE_ITO[(i + 1) % len(OKABE_ITO)], linewidths=0)
    _fraction(ax, "x")
    _fraction(ax, "y")
    ax.set_xlabel("ASR on the host torch twin (fraction)")
    ax.set_ylabel("ASR on the device artifact (fraction)")
    cv.legend(handles)
    caption = ("Each point is one adversarial result (variant × attack × ε × source): the attack success rate of "
               "the same examples on the deployed artifact against the host torch twin. Points above the diagonal "
               "mean deployment (export, runtime, precision) made the model more vulnerable; the legend gives the "
               "mean deployment gap per target and backend.")
    return [cv.plot("host-vs-device-asr", "Deployment gap: device vs host ASR", caption, "deployment")]
