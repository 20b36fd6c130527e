"""Energy per inference: integrals, counters, wrap-around, idle baseline and the validity rules of the summary."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgebench.metrics.energy import (
    counter_delta,
    energy_summary,
    idle_power,
    integrate_power,
    samples_in_window,
    unwrap_counter,
    window_energy,
)


def test_integrate_power_constant_and_ramp() -> None:
    t = np.arange(0.0, 12.01, 0.1)
    assert integrate_power(t, np.full_like(t, 4.2), 1.0, 11.0) == pytest.approx(42.0)
    # P = 2 + 0.5 t is linear: the trapezoid with interpolated edges is exact, 2 x 9.9 + 0.25 (10.95² - 1.05²)
    ramp = 2.0 + 0.5 * t
    assert integrate_power(t, ramp, 1.05, 10.95) == pytest.approx(2 * 9.9 + 0.25 * (10.95**2 - 1.05**2))
    # a square pulse of 10 W for 0.5 s in a 1 W background, sampled at 10 Hz
    t = np.arange(0.0, 3.01, 0.1)
    w = np.where((t >= 1.0) & (t < 1.5), 10.0, 1.0)
    assert integrate_power(t, w, 0.0, 3.0) == pytest.approx(3.0 + 9.0 * 0.5)
    assert integrate_power(t, w, 2.0, 2.0) == 0.0


def test_integrate_power_edges_are_interpolated_between_samples() -> None:
    t = np.array([0.0, 1.0, 2.0, 3.0])
    w = np.array([2.0, 4.0, 4.0, 0.0])
    # [0.5, 2.5]: edges at 3 W and 2 W -> (3+4)/2*0.5 + 4*1 + (4+2)/2*0.5
    assert integrate_power(t, w, 0.5, 2.5) == pytest.approx(1.75 + 4.0 + 1.5)
    # a window entirely between two samples
    assert integrate_power(t, w, 0.25, 0.75) == pytest.approx(0.5 * 3.0)


def test_integrate_power_needs_samples_covering_the_window() -> None:
    t = np.array([1.0, 2.0, 3.0])
    w = np.ones(3)
    with pytest.raises(ValueError, match=r"do(es)? not cover the window \[0.5"):
        integrate_power(t, w, 0.5, 2.0)
    with pytest.raises(ValueError, match="does not cover"):
        integrate_power(t, w, 1.5, 3.5)
    with pytest.raises(ValueError, match="not in time order"):
        integrate_power(np.array([1.0, 3.0, 2.0]), w, 1.0, 2.0)
    with pytest.raises(ValueError, match="3 timestamps but 2 values"):
        integrate_power(t, np.ones(2), 1.0, 2.0)
    with pytest.raises(ValueError, match="at least 2"):
        integrate_power(np.array([1.0]), np.array([1.0]), 1.0, 1.0)
    assert integrate_power(t, w, 1.0, 3.0) == pytest.approx(2.0)  # exactly the samples' span is enough


def test_counter_delta_interpolates_the_counter() -> None:
    t = np.array([0.0, 1.0, 2.0, 3.0])
    joules = np.array([100.0, 103.0, 109.0, 110.0])
    assert counter_delta(t, joules, 0.5, 2.5) == pytest.approx(109.5 - 101.5)
    assert window_energy("energy", t, joules, 0.0, 3.0) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="does not cover"):
        counter_delta(t, joules, -1.0, 1.0)


def test_unwrap_counter() -> None:
    max_uj = 262143328850.0
    raw = np.array([max_uj - 2e6, max_uj - 1e6, 0.5e6, 3.5e6, max_uj - 1e5, 2e5])  # wraps twice
    un = unwrap_counter(raw, max_uj)
    np.testing.assert_allclose(np.diff(un), [1e6, 1.5e6, 3e6, max_uj - 1e5 - 3.5e6, 3e5])
    assert np.all(np.diff(un) >= 0)
    np.testing.assert_array_equal(unwrap_counter(np.array([1.0, 2.0]), 10.0), [1.0, 2.0])
    # unwrapped µJ -> J, then the window energy is a plain difference
    t = np.arange(6.0)
    assert counter_delta(t, un / 1e6, 0.0, 3.0) == pytest.approx(5.5)
    with pytest.raises(ValueError, match="max_range must be > 0"):
        unwrap_counter(raw, 0)


def test_window_energy_and_idle_power_dispatch_on_kind() -> None:
    t = np.linspace(0.0, 10.0, 101)
    watts = np.full_like(t, 3.0)
    counter = 50.0 + 3.0 * t
    assert window_energy("power", t, watts, 2.0, 7.0) == pytest.approx(15.0)
    assert window_energy("energy", t, counter, 2.0, 7.0) == pytest.approx(15.0)
    assert idle_power("power", t, watts, 0.0, 10.0) == pytest.approx(3.0)
    assert idle_power("energy", t, counter, 1.0, 9.0) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="unknown sensor kind 'volts'"):
        window_energy("volts", t, watts, 0.0, 1.0)
    with pytest.raises(ValueError, match="no duration"):
        idle_power("power", t, watts, 5.0, 5.0)
    assert samples_in_window(t, 2.0, 7.0) == 51


def _windows(n: int = 5, *, duration: float = 12.0, watts: float = 4.0, inferences: int = 6000,
             samples: int = 120) -> list[dict]:
    return [{"t0": 100.0 + 20 * i, "t1": 100.0 + 20 * i + duration, "inferences": inferences,
             "joules": watts * duration + 0.1 * i, "samples": samples} for i in range(n)]


def test_energy_summary_valid_run() -> None:
    sensor = {"name": "jetson", "kind": "power", "rail": "VDD_IN"}
    s = energy_summary(_windows(), idle_power_w=2.5, min_window_s=10.0, min_samples=10, sensor=sensor)
    assert s["valid"] and s["invalid_reasons"] == []
    assert s["sensor"] == sensor and s["n_windows"] == 5 and s["window_s"] == 12.0
    # joules 48.0 .. 48.4: the median window holds 48.2 J for 6000 inferences
    assert s["energy_per_inference_j"] == pytest.approx(48.2 / 6000)
    assert s["net_energy_per_inference_j"] == pytest.approx((48.2 - 2.5 * 12.0) / 6000)
    assert s["mean_power_w"] == pytest.approx((5 * 48.0 + 1.0) / 60.0)
    assert s["idle_power_w"] == 2.5 and s["sample_rate_hz"] == pytest.approx(10.0)
    w = s["windows"][4]
    assert w["duration_s"] == 12.0 and w["joules"] == pytest.approx(48.4)
    assert w["mean_power_w"] == pytest.approx(48.4 / 12) and w["energy_per_inference_j"] == pytest.approx(48.4 / 6000)
    # no idle baseline: net energy absent, still valid
    s = energy_summary(_windows(), min_window_s=10.0, min_samples=10)
    assert s["valid"] and s["net_energy_per_inference_j"] is None and s["idle_power_w"] is None


def test_energy_summary_median_is_robust_to_one_outlier() -> None:
    ws = _windows()
    ws[2]["joules"] = 480.0  # one window disturbed by a background job
    s = energy_summary(ws, min_window_s=10.0, min_samples=10)
    assert s["energy_per_inference_j"] == pytest.approx(48.3 / 6000)


def test_energy_summary_invalid_runs_keep_numbers_and_say_why() -> None:
    s = energy_summary(_windows(duration=4.0, samples=40), min_window_s=10.0, min_samples=10)
    assert not s["valid"] and s["energy_per_inference_j"] == pytest.approx((16.0 + 0.2) / 6000)
    assert len(s["invalid_reasons"]) == 5
    assert s["invalid_reasons"][0] == ("window 0 lasted 4 s, shorter than the 10 s minimum (MLPerf Tiny: at least "
                                       "10 s per energy window)")

    s = energy_summary(_windows(samples=3), min_window_s=10.0, min_samples=10)
    assert not s["valid"] and "window 0 holds 3 sensor sample(s), fewer than the 10 required" in s["invalid_reasons"]

    s = energy_summary([], min_window_s=10.0, min_samples=10)
    assert not s["valid"] and s["invalid_reasons"] == ["no measurement windows"]
    assert s["energy_per_inference_j"] is None and s["n_windows"] == 0

    ws = _windows()
    ws[1]["joules"] = math.nan
    ws[3]["joules"] = -2.0
    s = energy_summary(ws, min_window_s=10.0, min_samples=10)
    assert not s["valid"]
    assert any(r.startswith("window 1 energy is nan J (not finite)") for r in s["invalid_reasons"])
    assert any(r.startswith("window 3 energy is negative (-2 J)") for r in s["invalid_reasons"])
    assert math.isfinite(s["energy_per_inference_j"])  # the median skips the non-finite window

    # the idle baseline above the loaded power: net energy negative, the baseline is not comparable
    s = energy_summary(_windows(watts=2.0), idle_power_w=2.5, min_window_s=10.0, min_samples=10)
    assert not s["valid"] and s["net_energy_per_inference_j"] < 0
    assert "idle baseline 2.5 W exceeds the window's mean power 2 W" in s["invalid_reasons"][0]

    s = energy_summary(_windows(inferences=0), min_window_s=10.0, min_samples=10)
    assert not s["valid"] and "window 0 ran 0 inferences" in s["invalid_reasons"]
    assert s["energy_per_inference_j"] is None


def test_end_to_end_from_samples_to_summary() -> None:
    """A 10 Hz power trace: 2 W idle, then five 11 s inference windows at 5 W separated by 1 s pauses."""
    t = np.arange(0.0, 75.0, 0.1)
    w = np.full_like(t, 2.0)
    starts = [5.0 + 12.0 * i for i in range(5)]
    for s0 in starts:
        w[(t >= s0) & (t <= s0 + 11.0)] = 5.0
    idle = idle_power("power", t, w, 0.0, 4.5)
    assert idle == pytest.approx(2.0)
    windows = [{"t0": s0, "t1": s0 + 11.0, "epoch_t0": 1.7e9 + s0, "inferences": 11_000,
                "joules": window_energy("power", t, w, s0, s0 + 11.0),
                "samples": samples_in_window(t, s0, s0 + 11.0)} for s0 in starts]
    s = energy_summary(windows, idle_power_w=idle, min_window_s=10.0, min_samples=10, sensor="rapl")
    assert s["valid"], s["invalid_reasons"]
    assert s["energy_per_inference_j"] == pytest.approx(5.0 * 11.0 / 11_000, rel=1e-3)
    assert s["net_energy_per_inference_j"] == pytest.approx(3.0 * 11.0 / 11_000, rel=1e-3)
    assert s["sample_rate_hz"] == pytest.approx(10.0, rel=0.02)
    assert s["windows"][1]["epoch_t0"] == 1.7e9 + 17.0  # the caller's extra keys are kept
