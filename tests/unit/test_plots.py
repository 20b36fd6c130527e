"""Report figures from plain store rows: which plots a run gets, that they are real, deterministic PNGs, and that
missing data only removes figures."""

from __future__ import annotations

import io
import logging
import math
import re
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from edgebench.report.data import RunData, unit_label
from edgebench.report.plots import SECTIONS, Plot, latency, make_plots, robustness, style, transfer, variants
from edgebench.report.plots.style import Styles

PNG = b"\x89PNG\r\n\x1a\n"


def synthetic_run(*, model: str = "liu2018_mnist", variants: int = 3, attacks: int = 2, targets: int = 1,
                  backends: int = 1, eps: tuple[float, ...] = (0.05, 0.1, 0.2), adversarial: bool = True,
                  transfer: bool = True, energy: bool = True, histograms: bool = True, stats: bool = True,
                  seed: int = 0) -> RunData:
    """A RunData of plain dicts shaped like :class:`edgebench.store.Store` rows (numbers are made up but
    plausible: compressed variants are smaller, faster and a little less accurate)."""
    rng = np.random.default_rng(seed)
    names = ["base"] + [f"prune{i * 10}" for i in range(1, variants)]
    units = [unit_label(model, v) for v in names]
    layers = ["conv1", "conv2", "fc1", "fc2"]
    results: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    min_eps: list[dict[str, Any]] = []
    var_rows, arts, flags = [], [], []
    for k, v in enumerate(names):
        size = 1_700_000 / (1 + k)
        st: dict[str, Any] = {"params": int(431_000 / (1 + k)), "artifacts": {"onnx": {"size_bytes": int(size)}}}
        if stats:
            st["weights"] = {}
            for layer in layers:
                lim = 0.2 + 0.05 * k
                counts, edges = np.histogram(rng.normal(0, lim / 3, 2000), bins=32, range=(-lim, lim))
                st["weights"][layer] = {"min": -lim, "max": lim, "std": lim / 3, "zeros": 0.1 * k, "distinct": 100,
                                        "edges": edges.tolist(), "counts": counts.tolist()}
            if v != "base":
                st["delta_w_spectral"] = {layer: (None if layer == "conv1" and k == 1 else 0.3 * k + 0.2 * j)
                                          for j, layer in enumerate(layers)}
        var_rows.append({"run_id": "r", "model": model, "variant": v, "method": "none" if v == "base" else "prune",
                         "params": {}, "info": {}, "stats": st})
        if k % 2 == 0:  # half the variants: size from the artifact table instead of the stats
            arts.append({"run_id": "r", "model": model, "variant": v, "format": "onnx", "path": f"{v}.onnx",
                         "sha256": "0" * 64, "size_bytes": int(size), "parity_max_abs_diff": 1e-6,
                         "parity_top1_agreement": 1.0, "parity_ok": 1, "card": "{}"})
        if stats:
            edges = np.geomspace(1e-6, 1e-1, 25)
            counts = np.histogram(rng.lognormal(math.log(1e-3 / (1 + 5 * k)), 1.0, 500), bins=edges)[0]
            flags.append({"run_id": "r", "kind": "gradient-masking" if k == 2 else "gradient-check", "model": model,
                          "variant": v, "backend": "", "target": "", "attack": "", "eps": 0.0,
                          "source": units[k], "message": "...",
                          "detail": {"n": 500, "zero_share": 0.0, "abs_grad_hist": {
                              "edges": edges.tolist(), "counts": counts.tolist(), "zeros": 40 if k == 2 else 0}}})
    for t in range(targets):
        for b in range(backends):
            target, backend = f"board{t}", ["onnxruntime", "openvino", "tflite"][b]
            for k, (v, u) in enumerate(zip(names, units)):
                acc = 0.99 - 0.01 * k
                p50 = (2.0 + t) / (1 + 0.3 * k) * (1 + 0.2 * b)
                key = {"model": model, "variant": v, "backend": backend, "target": target}
                results.append({**key, "attack": "none", "eps": 0.0, "source": u, "threat": "clean", "n": 1000,
                                "clean_acc": acc, "clean_acc_lo": acc - 0.01, "clean_acc_hi": min(1.0, acc + 0.005),
                                "mean_ms": p50 * 1.1, "std_ms": 0.1, "min_ms": p50 * 0.8, "p50_ms": p50,
                                "p90_ms": p50 * 1.3, "p99_ms": p50 * 1.8, "max_ms": p50 * 3, "first_ms": p50 * 10,
                                "runs": 200, "energy_j": 0.004 / (1 + k) if energy else None,
                                "energy_valid": int(energy and k != 1) if energy else None})
                if histograms:
                    lat = rng.lognormal(math.log(p50), 0.15, 300) * 1e6
                    edges = np.geomspace(lat.min() / 1e6, lat.max() / 1e6, 49)
                    samples.append({**key, "kind": "latency", "attack": "none", "eps": 0.0, "source": u,
                                    "data": {"n": 300, "edges_ms": edges.tolist(),
                                             "counts": np.histogram(lat / 1e6, bins=edges)[0].tolist()}})
                if not adversarial:
                    continue
                for a in range(attacks):
                    attack = ["fgsm", "pgd", "bim", "mim", "cw", "deepfool", "apgd", "jsma", "uap", "pgd_l2"][a % 10]
                    attack += "" if a < 10 else str(a)
                    grid = (*eps, math.inf) if attack == "cw" else eps
                    sources = [u] + ([units[0]] if transfer and v != "base" else [])
                    for src in sources:
                        for e in grid:
                            asr = 1.0 if math.isinf(e) else min(1.0, (e / max(eps)) * (0.5 + 0.1 * k + 0.1 * a))
                            asr *= 1.0 if src == u else 0.6
                            ra = acc * (1 - asr)
                            results.append({**key, "attack": attack, "eps": e, "source": src,
                                            "threat": "white-box" if src == u else "transfer", "n": 1000,
                                            "clean_acc": acc, "robust_acc": ra, "robust_acc_lo": max(0, ra - 0.03),
                                            "robust_acc_hi": min(1, ra + 0.03), "asr": asr,
                                            "asr_lo": max(0.0, asr - 0.03), "asr_hi": min(1.0, asr + 0.03),
                                            "asr_n": 980, "host_asr": max(0.0, asr - 0.02 * b),
                                            "deployment_gap": 0.02 * b})
                        if src == u:
                            vals = [float(x) if x < max(eps) else None for x in rng.choice(eps, 200) * (1 + k)]
                            min_eps.append({**key, "attack": attack, "source": src, "threat": "white-box",
                                            "n": 200, "found": sum(x is not None for x in vals), "p50": 0.1,
                                            "eps_grid": list(eps), "values": vals})
    return RunData(run_id="r", run={"run_id": "r", "status": "finished"}, plan={}, results=results,
                   variants=var_rows, artifacts=arts, environments=[], min_eps=min_eps, flags=flags, stages=[],
                   samples=samples)


def _check_png(p: Plot) -> tuple[int, int]:
    from matplotlib.image import imread

    assert p.png.startswith(PNG)
    img = imread(io.BytesIO(p.png), format="png")
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert float(img[..., :3].std()) > 0.01  # not a blank canvas
    return img.shape[1], img.shape[0]


_EXPECTED = ("accuracy-overview", "latency-board0", "asr-vs-eps-liu2018-mnist", "min-eps-liu2018-mnist",
             "transfer-heatmap", "vulnerability-liu2018-mnist", "gradient-amplitude", "tradeoffs-board0",
             "delta-w-spectral-liu2018-mnist", "weight-histograms-liu2018-mnist", "host-vs-device-asr")


@pytest.fixture(scope="module")
def full() -> list[Plot]:
    return make_plots(synthetic_run())


def test_full_run_gets_every_plot(full: list[Plot], caplog: pytest.LogCaptureFixture) -> None:
    by_name = {p.name: p for p in full}
    assert {n: p.section for n, p in by_name.items()} == {
        "accuracy-overview": "summary", "latency-board0": "latency", "asr-vs-eps-liu2018-mnist": "robustness",
        "min-eps-liu2018-mnist": "robustness", "transfer-heatmap": "robustness",
        "vulnerability-liu2018-mnist": "robustness", "gradient-amplitude": "robustness",
        "tradeoffs-board0": "tradeoffs", "delta-w-spectral-liu2018-mnist": "variants",
        "weight-histograms-liu2018-mnist": "variants", "host-vs-device-asr": "deployment"}
    assert list(by_name) == list(_EXPECTED)
    for p in full:
        assert p.section in SECTIONS
        assert p.title and p.caption.endswith(".") and len(p.caption) > 60
        w, h = _check_png(p)
        assert w <= 1800 and h <= 2400
    assert "Fig. 4" in by_name["asr-vs-eps-liu2018-mnist"].caption
    assert "Table III" in by_name["transfer-heatmap"].caption
    assert "board0 / onnxruntime" in by_name["asr-vs-eps-liu2018-mnist"].title
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_deterministic_bytes(full: list[Plot]) -> None:
    again = make_plots(synthetic_run())
    assert [p.name for p in again] == [p.name for p in full]
    assert all(a.png == b.png for a, b in zip(again, full))


def test_no_attacks_no_robustness_but_tradeoffs() -> None:
    plots = make_plots(synthetic_run(adversarial=False, stats=False))
    assert [p.name for p in plots] == ["accuracy-overview", "latency-board0", "tradeoffs-board0"]
    assert all(p.section not in ("robustness", "deployment") for p in plots)
    for p in plots:
        _check_png(p)


def test_fallbacks_and_missing_pieces() -> None:
    # no latency histograms: the latency figure falls back to the stored percentiles; no transfer rows: no heat
    # map of transfer; no energy: trade-offs against latency and size only
    plots = {p.name: p for p in make_plots(synthetic_run(histograms=False, transfer=False, energy=False,
                                                         stats=False, backends=2))}
    assert "transfer-heatmap" not in plots
    assert "p50–p90 bar" in plots["latency-board0"].caption and "histograms" not in plots["latency-board0"].caption
    assert "Energy" not in plots["tradeoffs-board0"].caption
    assert {"asr-vs-eps-liu2018-mnist", "vulnerability-liu2018-mnist", "min-eps-liu2018-mnist"} <= set(plots)


@pytest.mark.parametrize("data", [
    RunData(run_id="x", run={}, plan={}, results=[], variants=[], artifacts=[], environments=[], min_eps=[],
            flags=[], stages=[]),
    synthetic_run(variants=1, attacks=1, eps=(0.1,), stats=False, histograms=False),
], ids=["empty", "single-variant-single-eps"])
def test_sparse_runs(data: RunData, caplog: pytest.LogCaptureFixture) -> None:
    plots = make_plots(data)
    names = [p.name for p in plots]
    if not data.results:
        assert names == []
    else:
        # one variant: no trade-off to draw, one ε: no ASR curve; the summary, latency and heat map remain
        assert names == ["accuracy-overview", "latency-board0", "vulnerability-liu2018-mnist",
                         "host-vs-device-asr"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_none_and_nan_values_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    data = synthetic_run(variants=3, histograms=False, transfer=False)
    for i, r in enumerate(data.results):
        if i % 3 == 0:
            r.update(asr=None, p50_ms=math.nan, robust_acc=None, energy_j=math.nan, host_asr=math.nan)
        if i % 5 == 0:
            r.update(asr_lo=None, clean_acc=math.nan, min_ms=None)
    data.variants[1]["stats"]["delta_w_spectral"] = {"conv1": None, "fc1": math.nan}
    data.variants[2]["stats"]["weights"]["conv1"]["counts"] = []
    data.flags[0]["detail"] = {}
    data.flags[1]["detail"]["abs_grad_hist"] = {"edges": [], "counts": [], "zeros": 500}  # all gradients zero
    data.min_eps[0]["values"] = [None, None]
    plots = make_plots(data)
    assert {"tradeoffs-board0", "asr-vs-eps-liu2018-mnist", "weight-histograms-liu2018-mnist",
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
    expected.insert(expected.index("latency-board0") + 1, "latency-board1")
    expected.insert(expected.index("tradeoffs-board0") + 1, "tradeoffs-board1")
    assert [p.name for p in large] == expected
    captions = {p.name: p.caption for p in large}
    assert "3 of 5 shown (the base and the variants farthest from it)" in captions["asr-vs-eps-liu2018-mnist"]
    assert "2 of 3 attacks shown" in captions["asr-vs-eps-liu2018-mnist"]
    assert "2 of 3 attacks shown" in captions["transfer-heatmap"]


def test_broken_rows_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    data = synthetic_run(adversarial=False)
    data.variants[0]["stats"] = "not a dict"  # malformed store rows
    data.results[0]["model"] = None
    data.results[1]["p50_ms"] = "fast"
    with caplog.at_level(logging.WARNING, logger="edgebench.report.plots"):
        plots = make_plots(data)
    assert plots and all(p.png.startswith(PNG) for p in plots)
    assert {"latency-board0", "tradeoffs-board0"} <= {p.name for p in plots}


def test_plot_names_are_slugs_and_unique() -> None:
    runs = [synthetic_run(model=m, variants=1, attacks=1, eps=(0.1,), stats=False, histograms=False)
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
    few = synthetic_run(variants=5, adversarial=False, stats=False, histograms=False)
    looks = Styles(few).of(unit_label("liu2018_mnist", v) for v in ["base", "prune10", "prune40"])
    assert looks["liu2018_mnist"] == {"color": "#000000", "marker": "o", "linestyle": "-"}
    assert looks["liu2018_mnist/prune40"]["color"] != looks["liu2018_mnist/prune10"]["color"]
    many = synthetic_run(variants=40, adversarial=False, stats=False, histograms=False)
    labels = [unit_label("liu2018_mnist", v) for v in ["base"] + [f"prune{i * 10}" for i in range(30, 40)]]
    looks = Styles(many).of(labels)
    assert len({tuple(s.values()) for s in looks.values()}) == len(labels)
    assert len({(s["color"], s["marker"]) for s in looks.values()}) == len(labels)
