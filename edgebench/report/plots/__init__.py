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

One module per figure family — :mod:`.summary`, :mod:`.latency`, :mod:`.robustness`, :mod:`.transfer` (with the
deployment gap), :mod:`.tradeoffs`, :mod:`.variants` (compression statistics) — on the shared look in :mod:`.style`
and the row selection in :mod:`.rows`. Each builder takes ``(RunData, Styles)`` and returns its plots.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from edgebench.report.data import RunData
from edgebench.report.plots import (
    amplitude,
    cumulative,
    latency,
    robustness,
    search,
    summary,
    tradeoffs,
    transfer,
    variants,
)
from edgebench.report.plots.style import RC, SECTIONS, Plot, Styles

__all__ = ["SECTIONS", "Plot", "make_plots"]

log = logging.getLogger(__name__)


def make_plots(data: RunData) -> list[Plot]:
    """Every figure the run's data supports, in report order. A figure whose inputs are missing is skipped; a
    figure that fails on malformed rows is logged (warning) and skipped, never failing the report. Without
    matplotlib installed: no plots, and a warning that says so."""
    try:
        import matplotlib
    except ImportError as exc:
        log.warning("report: no plots (%s); pip install matplotlib", exc)
        return []

    styles = Styles(data)
    builders: list[Callable[[RunData, Styles], list[Plot]]] = [
        summary.accuracy_overview, latency.latency, robustness.asr_vs_eps, robustness.min_eps, transfer.transfer,
        robustness.vulnerability, robustness.gradient_amplitude, tradeoffs.tradeoffs, variants.delta_w,
        variants.weight_histograms, transfer.host_vs_device, search.search_front, cumulative.cumulative_success,
        amplitude.range_and_amplitude]
    out: list[Plot] = []
    names: set[str] = set()
    with matplotlib.rc_context(RC):
        for build in builders:
            try:
                plots = build(data, styles)
            except Exception:  # a malformed row must not cost the whole report
                log.warning("plot %s skipped: it failed on this run's data", build.__name__,
                            exc_info=True)
                continue
            for p in plots:
                name, k = p.name, 2
                while name in names:
                    name, k = f"{p.name}-{k}", k + 1
                names.add(name)
                out.append(p if name == p.name else Plot(name, p.title, p.caption, p.section, p.png))
    return out
