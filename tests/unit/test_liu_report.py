"""Seed 000's report sections (Liu et al. 2018): Algorithm 1's cumulative success against ε (from the stored
per-sample minimal ε) and the weight range / gradient amplitude per variant (Figs. 6, 7, 9), rendered from a
store holding what a run stores: real weight statistics, real gradient-health histograms, minimal-ε records."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from edgebench.attacks.checks import _log_histogram
from edgebench.compress.stats import weight_histograms
from edgebench.metrics.cumulative import cumulative_success
from edgebench.metrics.robustness import minimal_eps, wilson
from edgebench.report.data import RunData
from edgebench.report.render import render_markdown
from edgebench.store import Store


def test_cumulative_success_is_algorithm_1s_rate_at_each_bound() -> None:
    # 5 samples: fooled first at 0.1, 0.3, 0.3, never, 0.5 (FGSM success per eps, rows = eps 0.1 / 0.3 / 0.5);
    # sample 1 is fooled at 0.3 but not at 0.5: Algorithm 1 counts it at 0.5, the attack at exactly 0.5 does not
    success = np.array([[1, 0, 0, 0, 0], [1, 1, 1, 0, 0], [0, 0, 1, 0, 1]], dtype=bool)
    values = [None if math.isinf(v) else float(v) for v in minimal_eps(np.array([0.1, 0.3, 0.5]), success)]
    assert values == [0.1, 0.3, 0.3, None, 0.5]
    out = cumulative_success(values, [0.5, 0.1, 0.3, math.inf])
    assert [(c["eps"], c["k"], c["n"]) for c in out] == [(0.1, 1, 5), (0.3, 3, 5), (0.5, 4, 5)]
    assert out[2]["value"] == 0.8 > success[2].mean()  # at least the success of the attack run at exactly 0.5
    assert (out[1]["lo"], out[1]["hi"]) == wilson(3, 5)
    assert cumulative_success([], [0.1])[0]["n"] == 0 and math.isnan(cumulative_success([], [0.1])[0]["value"])


@pytest.fixture()
def store_with_liu_run(tmp_path: Path):
    gen = torch.Generator().manual_seed(0)
    base_w = {"fc1": torch.rand(64, 16, generator=gen) * 0.2 - 0.1,
              "fc2": torch.rand(10, 64, generator=gen) * 0.2 - 0.1}
    wide_w = {k: v * 4 for k, v in base_w.items()}  # a HashNet whose weights span 4x the base's range
    rng = np.random.default_rng(0)
    healthy = _log_histogram(10.0 ** rng.uniform(-8, -2, 1000))  # every sample in the "large" band
    mixed = _log_histogram(np.concatenate([10.0 ** rng.uniform(-8, -2, 300), 10.0 ** rng.uniform(-22, -17, 500),
                                           np.zeros(200)]))
    variants = [("base", "", {}, base_w), ("hashed-1_8", "hashed", {"rate": "1/8", "init": "scratch"}, wide_w),
                ("hashed-1_8+gi-0.1", "hashed-1_8 → gradient_inhibition", {"tau": 0.1}, wide_w)]
    store = Store.open(tmp_path / "r.sqlite")
    store.begin_run("r", plan_name="liu", plan_hash="h", plan={}, version="x")
    for name, method, params, w in variants:
        store.put_variant("r", model="m", variant=name, method=method, params=params, info={},
                          stats={"weights": weight_histograms(w)})
    store.put_flags("r", [
        {"kind": "gradient-check", "model": "m", "variant": "base", "source": "m", "message": "ok",
         "detail": {"n": 1000, "zero_share": 0.0, "abs_grad_hist": healthy}},
        {"kind": "gradient-masking", "model": "m", "variant": "hashed-1_8+gi-0.1", "source": "m/hashed-1_8+gi-0.1",
         "message": "masked", "detail": {"n": 1000, "zero_share": 0.2, "abs_grad_hist": mixed}}])
    row = {"backend": "onnxruntime", "target": "local", "attack": "fgsm", "threat": "white-box",
           "eps_grid": [0.1, 0.3, 0.5]}
    store.put_min_eps("r", [
        {**row, "model": "m", "variant": "base", "source": "m", "n": 4, "found": 4, "p50": 0.1,
         "values": [0.1, 0.1, 0.3, 0.5]},
        {**row, "model": "m", "variant": "hashed-1_8", "source": "m/hashed-1_8", "n": 4, "found": 1, "p50": math.inf,
         "values": [0.5, None, None, None]}])
    yield store
    store.close()


def test_report_gives_the_cumulative_curve_and_the_range_and_amplitude_table(store_with_liu_run: Store) -> None:
    text = render_markdown(store_with_liu_run, "r")
    cum = text.split("## Algorithm 1: cumulative success against ε")[1].split("\n## ")[0]
    assert "| variant | n | ε ≤ 0.1 | ε ≤ 0.3 | ε ≤ 0.5 |" in cum
    lo, hi = wilson(2, 4)
    assert f"| base | 4 | 0.500 [{lo:.3f}, {hi:.3f}] | 0.750" in cum
    assert "| hashed-1_8 | 4 | 0.000 [0.000, " in cum and "| 0.250 [" in cum
    amp = text.split("## Weight range and gradient amplitude per variant")[1].split("\n## ")[0]
    lines = {ln.split(" | ")[1]: ln.split(" | ") for ln in amp.splitlines() if ln.startswith("| m |")}
    assert set(lines) == {"base", "hashed-1_8", "hashed-1_8+gi-0.1"}
    assert lines["hashed-1_8"][2:5] == ["scratch", "1/8", "0"] and lines["hashed-1_8"][6] == "4.00×"
    assert lines["hashed-1_8+gi-0.1"][2:5] == ["scratch", "1/8", "0.1"]  # rate and init through the chain
    # base: no zero gradient, every sample "large"; the inhibited one: 20 % zero, 30 % large, 50 % small
    assert lines["base"][9:12] == ["0.000", "1.000", "0.000"]
    assert lines["hashed-1_8+gi-0.1"][9:12] == ["0.200", "0.300", "0.500"]
    median = float(lines["hashed-1_8+gi-0.1"][8])
    assert 1e-22 <= median <= 1e-17  # the middle sample lies among the small gradients
    assert lines["hashed-1_8"][8] == "–"  # no gradient check stored for it


def test_plots_of_both_sections_are_drawn(store_with_liu_run: Store) -> None:
    pytest.importorskip("matplotlib")
    from edgebench.report.plots import make_plots

    plots = {p.name: p for p in make_plots(RunData.load(store_with_liu_run, "r"))}
    assert plots["cumulative-success-m"].section == "cumulative"
    assert plots["range-amplitude-m"].section == "amplitude"
    assert all(p.png.startswith(b"\x89PNG") for p in plots.values())
