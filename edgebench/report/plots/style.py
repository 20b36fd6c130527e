"""The look shared by every figure: the Okabe–Ito palette with markers and line styles, caps on what a figure
holds, fixed-margin canvases (:class:`Canvas`), log scales, step histograms, heat maps, and deterministic PNG bytes.
matplotlib is imported inside the functions that draw."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgebench.naming import slug
from edgebench.report.data import RunData, unit_label
from edgebench.report.plots.rows import ordered

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


SECTIONS = ("summary", "latency", "robustness", "tradeoffs", "variants", "deployment", "cumulative", "amplitude")

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

RC = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
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


class Styles:
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
        labels = ordered(labels)
        for u in labels:
            self.index.setdefault(u, len(self.index))
        if len(self.index) <= MAX_STYLES:
            return {u: self.style(self.index[u]) for u in labels}
        return {u: self.style(i) for i, u in enumerate(labels)}


def text_width(labels: Iterable[Any], size: float = 7.0) -> float:
    """Estimated width in inches of the longest of ``labels`` (one line each) at ``size`` points."""
    return max((len(line) for s in labels for line in str(s).split("\n")), default=0) * size * _EM


def fraction_axis(ax: Axes, axis: str) -> None:
    """An axis of fractions: [0, 1] with a little room and ticks at quarters."""
    if axis == "x":
        ax.set_xlim(-0.02, 1.02)
        ax.set_xticks([0.0, 0.25, 0.5, 0.75, 1.0])
    else:
        ax.set_ylim(-0.02, 1.02)
        ax.set_yticks([0.0, 0.25, 0.5, 0.75, 1.0])


def _fmt(v: float, _pos: Any = None) -> str:
    return f"{v:g}"


def fraction_panel(ax: Axes, i: int, title: str, xlabel: str, ylabel: str) -> None:
    """Title and x label of panel ``i`` of a grid, a fraction y axis, and the y label on the first of each row."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    fraction_axis(ax, "y")
    if i % 4 == 0:
        ax.set_ylabel(ylabel)


def log_scale(ax: Axes, axis: str, values: Iterable[float | None], *, ratio: float = 10.0, force: bool = False) -> None:
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
class Canvas:
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
        return Plot(slug(name, sep="-", keep="", lower=True, default="plot"), title, caption, section, png(self.fig))


def grid(n: int, *, panel: tuple[float, float] = (3.0, 2.4), max_cols: int = 4, left: float = 0.65,
          right: float = 0.25, bottom: float = 0.5, top: float = 0.6, wspace: float = 0.6, hspace: float = 0.85,
          legend: Sequence[str] = (), legend_title: str | None = None, colorbar: bool = False,
          sharex: bool | str = False, sharey: bool | str = False) -> Canvas:
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
        text = 0.92 * max(text_width(legend), text_width([legend_title or ""]) - 0.3)  # legend glyphs run narrower
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
    return Canvas(fig, axes[:n], width, height, left, right, bottom, top, cols, legend_title)


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (Agg canvas, no timestamp or software metadata: identical input, identical bytes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def step_line(ax: Axes, edges: Sequence[float], values: Sequence[float], style: dict[str, Any], label: str) -> Any:
    """A step histogram as one line with a few markers (so the legend shows marker and line style)."""
    import numpy as np

    y = np.append(np.asarray(values, dtype=float), float(values[-1]) if len(values) else math.nan)
    (line,) = ax.plot(np.asarray(edges, dtype=float), y, drawstyle="steps-post", label=label,
                      markevery=max(1, len(edges) // 6), markersize=3.5, **style)
    return line


def heatmap(ax: Axes, matrix: list[list[float | None]], rows: Sequence[str], cols: Sequence[str], *,
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


def heat_margins(rows: Sequence[str], cols: Sequence[str]) -> tuple[float, float]:
    """(left, bottom) margins in inches for a heat map with these row and column labels."""
    fs = 7 if len(rows) <= MAX_ANNOTATED and len(cols) <= MAX_ANNOTATED else 5
    lines = max((c.count("\n") + 1 for c in cols), default=1)
    bottom = 0.45 + (0.9 * text_width(cols, fs) if _rotate(cols) else lines * fs * 1.3 / 72)
    return 0.4 + 0.9 * text_width(rows, fs), bottom
