"""Report figures from plain store rows: which plots a run gets, that they are real, deterministic PNGs, and that
missing data only removes figures."""

from __future__ import annotations

import io
import logging
import math
import re
import subprocess
import sys

import pytest

from edgebench.report.data import RunData, unit_label
from edgebench.report.plots import SECTIONS, Plot, latency, make_plots, robustness, style, transfer, variants
from edgebench.report.plots.style import Styles
from tests.fixtures.synthetic import synthetic_run

PNG = b"\x89PNG\r\n\x1a\n"


def _check_png(p: Plot) -> tuple[int, int]:
    from matplotlib.image import imread

    assert p.png.startswith(PNG)
    img = imread(io.BytesIO(p.png), format="png")
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert float(img[..., :3].std()) > 0.01  # not a blank canvas
    return img.shape[1], img.shape[0]


_EXPECTED = ("accuracy-overview", "latency-local", "asr-vs-eps-liu", "min-eps-liu",
             "transfer-heatmap", "vulnerability-liu", "gradient-amplitude", "tradeoffs-local",
             "delta-w-spectral-liu", "weight-histograms-liu", "host-vs-device-asr", "cumulative-success-liu")


@pytest.fixture(scope="module")
def full() -> list[Plot]:
    return make_plots(synthetic_run())


def test_full_run_gets_every_plot(full: list[Plot], caplog: pytest.LogCaptureFixture) -> None:
    by_name = {p.name: p for p in full}
    assert {n: p.section for n, p in by_name.items()} == {
        "accuracy-overview": "summary", "latency-local": "latency", "asr-vs-eps-liu": "robustness",
        "min-eps-liu": "robustness", "transfer-heatmap": "robustness",
        "vulnerability-liu": "robustness", "gradient-amplitude": "robustness",
        "tradeoffs-local": "tradeoffs", "delta-w-spectral-liu": "variants",
        "weight-histograms-liu": "variants", "host-vs-device-asr": "deployment",
        "cumulative-success-liu": "cumulative"}
    assert list(by_name) == list(_EXPECTED)
    for p in full:
        assert p.section in SECTIONS
        assert p.title and p.caption.endswith(".") and len(p.caption) > 60
        w, h = _check_png(p)
        assert w <= 1800 and h <= 2400
    assert "Fig. 4" in by_name["asr-vs-eps-liu"].caption
    assert "Table III" in by_name["transfer-heatmap"].caption
    assert "local / onnxruntime" in by_name["asr-vs-eps-liu"].title
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_deterministic_bytes(full: list[Plot]) -> None:
    again = make_plots(synthetic_run())
    assert [p.name for p in again] == [p.name for p in full]
    assert all(a.png == b.png for a, b in zip(again, full))


def test_no_attacks_no_robustness_but_tradeoffs() -> None:
    plots = make_plots(synthetic_run(attacks=0, stats=False))
    assert [p.name for p in plots] == ["accuracy-overview", "latency-local", "tradeoffs-local"]
    assert all(p.section not in ("robustness", "deployment") for p in plots)
    for p in plots:
        _check_png(p)


def test_fallbacks_and_missing_pieces() -> None:
    # no latency histograms: the latency figure falls back to the stored percentiles; no transfer rows: no heat
    # map of transfer; no energy: trade-offs against latency and size only
    plots = {p.name: p for p in make_plots(synthetic_run(histograms=False, transfer=False, energy=False,
                                                         stats=False, backends=2))}
    assert "transfer-heatmap" not in plots
    assert "p50–p90 bar" in plots["latency-local"].caption and "histograms" not in plots["latency-local"].caption
    assert "Energy" not in plots["tradeoffs-local"].caption
    assert {"asr-vs-eps-liu", "vulnerability-liu", "min-eps-liu"} <= set(plots)


@pytest.mark.parametrize("data", [
    RunData(run_id="x", run={}, plan={}, results=[], variants=[], artifacts=[], environments=[], min_eps=[],
            flags=[], stages=[]),
    synthetic_run(variants=1, attacks=1, eps_grid=1, stats=False, histograms=False),
], ids=["empty", "single-variant-single-eps"])
def test_sparse_runs(data: RunData, caplog: pytest.LogCaptureFixture) -> None:
    plots = make_plots(data)
    names = [p.name for p in plots]
    if not data.results:
        assert names == []
    else:
        # one variant: no trade-off to draw, one ε: no ASR curve; the summary, latency and heat map remain
        assert names == ["accuracy-overview", "latency-local", "vulnerability-liu",
                         "host-vs-device-asr"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_none_and_nan_values_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    data = synthetic_run(variants=3, histograms=False, transfer=False)
    for i, r in enumerate(data.results):
        if i % 3 == 0:
            r.update(asr=None, p50_ms=math.nan, robust_acc=None, energy_j=math.nan, host_asr=math.nan)
        if i % 5 == 0:
            r.update(asr_lo=None, clean_acc=math.nan, min_ms=None)
    layers = list(data.variants[1]["stats"]["delta_w_spectral"])
    data.variants[1]["stats"]["delta_w_spectral"] = {layers[0]: None, layers[2]: math.nan}
    data.variants[2]["stats"]["weights"][layers[0]]["counts"] = []
    gradients = [f for f in data.flags if f["kind"].startswith("gradient-")]
    gradients[0]["detail"] = {}
    gradients[1]["detail"]["abs_grad_hist"] = {"edges": [], "counts": [], "zeros": 200}  # all gradients zero
    data.min_eps[0]["values"] = [None, None]
    plots = make_plots(data)
    assert {"tradeoffs-local", "asr-vs-eps-liu", "weight-histograms-liu",
            "gradient-amplitude"} <= {p.name for p in plots}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_figure_count_does_not_grow_with_variants_and_attacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(style, "png", lambda fig: PNG)  # figures built, not rasterised: this is about counts
    for family in (latency, robustness, transfer, variants):  # small caps, so that a small run exceeds them
        for cap, value in (("MAX_LINES", 3), ("MAX_PANELS", 2)):
            if hasattr(family, cap):
                monkeypatch.setattr(family, cap, value)
    large = make_plots(synthetic_run(variants=5, attacks=3, targets=2))
    # one more target: one more latency and trade-off figure, nothing else
    expected = list(_EXPECTED)
    expected.insert(expected.index("latency-local") + 1, "latency-raspberry-pi-4")
    expected.insert(expected.index("tradeoffs-local") + 1, "tradeoffs-raspberry-pi-4")
    expected.append("range-amplitude-liu")  # the 5 variants include a HashNet: range against rate has 2 points
    assert [p.name for p in large] == expected
    captions = {p.name: p.caption for p in large}
    assert "3 of 5 shown (the base and the variants farthest from it)" in captions["asr-vs-eps-liu"]
    assert "2 of 3 attacks shown" in captions["asr-vs-eps-liu"]
    assert "2 of 3 attacks shown" in captions["transfer-heatmap"]


def test_broken_rows_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    data = synthetic_run(attacks=0)
    data.variants[0]["stats"] = "not a dict"  # malformed store rows
    data.results[0]["model"] = None
    data.results[1]["p50_ms"] = "fast"
    with caplog.at_level(logging.WARNING, logger="edgebench.report.plots"):
        plots = make_plots(data)
    assert plots and all(p.png.startswith(PNG) for p in plots)
    assert {"latency-local", "tradeoffs-local"} <= {p.name for p in plots}


def test_plot_names_are_slugs_and_unique() -> None:
    runs = [synthetic_run(names=(m,), variants=1, attacks=1, eps_grid=1, stats=False, histograms=False)
            for m in ("a_b", "a-b")]
    data = runs[0]
    data.results += runs[1].results
    data.variants += runs[1].variants
    names = [p.name for p in make_plots(data)]
    assert len(names) == len(set(names))
    assert "vulnerability-a-b" in names and "vulnerability-a-b-2" in names
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", n) for n in names)


def test_import_does_not_load_matplotlib() -> None:
    code = "import sys, edgebench.report.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_without_matplotlib_no_plots(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)  # import matplotlib(.anything) -> ImportError
    # a library imported by earlier tests may have silenced loggers: make sure this one is heard
    monkeypatch.setattr(logging.getLogger("edgebench.report.plots"), "disabled", False)
    previous = logging.root.manager.disable
    logging.disable(logging.NOTSET)
    try:
        with caplog.at_level(logging.WARNING, logger="edgebench.report.plots"):
            assert make_plots(synthetic_run(variants=2)) == []
    finally:
        logging.disable(previous)
    assert "pip install matplotlib" in caplog.text


def test_series_never_look_alike() -> None:
    # few units: one look per unit across figures, the base black; many: looks by position within the figure
    few = synthetic_run(variants=5, attacks=0, stats=False, histograms=False)
    looks = Styles(few).of(unit_label("liu", v) for v in ["base", "prune-l2-10", "kbit-4"])
    assert looks["liu"] == {"color": "#000000", "marker": "o", "linestyle": "-"}
    assert looks["liu/kbit-4"]["color"] != looks["liu/prune-l2-10"]["color"]
    many = synthetic_run(variants=40, attacks=0, stats=False, histograms=False)
    labels = [unit_label("liu", v) for v in ["base"] + [v["variant"] for v in many.variants][-10:]]
    looks = Styles(many).of(labels)
    assert len({tuple(s.values()) for s in looks.values()}) == len(labels)
    assert len({(s["color"], s["marker"]) for s in looks.values()}) == len(labels)
