"""Energy per inference from sampled power or energy counters (DESIGN.md, "Energy"). Pure functions, numpy only,
torch-free: the agent uses them on the device.

Joules per inference = the energy of a timed window / the inferences run in it, where the window's energy is

- for a *power* sensor (watts sampled over time): the trapezoid integral of the samples, with the power
  linearly interpolated at the window's edges (:func:`integrate_power`);
- for an *energy* sensor (a cumulative joule counter: RAPL, NVML): the counter's difference across the window,
  interpolated at the edges (:func:`counter_delta`), after unwrapping (:func:`unwrap_counter`).

The protocol follows MLPerf Tiny's energy run rules (mlcommons/tiny, ``MLPerfTiny_Rules.adoc`` and the runner's
``tests_energy.yaml``): every measured window lasts at least 10 s, the run is repeated (5 times there) and the
**median** over the windows is reported; a run breaking these rules is "not valid". :func:`energy_summary` keeps
the numbers of an invalid run but marks it ``valid: False`` with one line per reason, so nothing is reported
silently. The idle baseline (the device's power while it waits, :func:`idle_power`) gives the *net* energy the
inference itself costs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

MIN_WINDOW_S = 10.0  # MLPerf Tiny: each energy measurement lasts at least 10 s


def _series(t_s: np.ndarray, values: np.ndarray, t0: float, t1: float, what: str) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t_s, dtype=np.float64).reshape(-1)
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if t.shape != v.shape:
        raise ValueError(f"{what}: {t.size} timestamps but {v.size} values")
    if not (math.isfinite(t0) and math.isfinite(t1)) or t1 < t0:
        raise ValueError(f"{what}: the window [{t0}, {t1}] is not an interval")
    if t.size < 2:
        raise ValueError(f"{what}: {t.size} sample(s); at least 2 are needed to cover a window")
    if np.any(np.diff(t) < 0):
        raise ValueError(f"{what}: the sample timestamps are not in time order")
    if t[0] > t0 or t[-1] < t1:
        raise ValueError(f"{what}: the samples span [{t[0]:.6f}, {t[-1]:.6f}] s, which does not cover the window "
                         f"[{t0:.6f}, {t1:.6f}] s; sample from before the window starts until after it ends")
    return t, v


def integrate_power(t_s: np.ndarray, watts: np.ndarray, t0: float, t1: float) -> float:
    """Joules drawn over ``[t0, t1]``: the trapezoid integral of power samples ``watts`` (W) taken at times
    ``t_s`` (s, non-decreasing), with the power linearly interpolated at ``t0`` and ``t1``.

    Raises ValueError when the samples do not cover the window (a sample at or before ``t0`` and one at or after
    ``t1`` are needed).
    """
    t, w = _series(t_s, watts, t0, t1, "integrate_power")
    if t1 == t0:
        return 0.0
    inside = (t > t0) & (t < t1)
    tt = np.concatenate(([t0], t[inside], [t1]))
    ww = np.concatenate(([np.interp(t0, t, w)], w[inside], [np.interp(t1, t, w)]))
    return float(np.sum((ww[1:] + ww[:-1]) * np.diff(tt)) / 2.0)


def counter_delta(t_s: np.ndarray, joules: np.ndarray, t0: float, t1: float) -> float:
    """Joules spent over ``[t0, t1]`` from a cumulative energy counter ``joules`` (J, unwrapped) read at times
    ``t_s`` (s): the counter linearly interpolated at ``t1`` minus at ``t0``. Raises ValueError when the samples
    do not cover the window."""
    t, j = _series(t_s, joules, t0, t1, "counter_delta")
    return float(np.interp(t1, t, j) - np.interp(t0, t, j))


def unwrap_counter(values: np.ndarray, max_range: float) -> np.ndarray:
    """A wrapping counter (0 .. ``max_range``, e.g. RAPL ``energy_uj`` with ``max_energy_range_uj``) made monotone:
    every decrease between consecutive readings is taken as one wrap and ``max_range`` is added from there on.
    Readings must be closer in time than one wrap period. Same unit in as out."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if not max_range > 0:
        raise ValueError(f"unwrap_counter: max_range must be > 0, got {max_range!r}")
    if v.size < 2:
        return v.copy()
    wraps = np.concatenate(([0.0], np.cumsum(np.diff(v) < 0)))
    return v + wraps * float(max_range)


def window_energy(sensor_kind: str, t_s: np.ndarray, values: np.ndarray, t0: float, t1: float) -> float:
    """Joules over ``[t0, t1]`` from samples of a sensor of kind ``"power"`` (W: :func:`integrate_power`) or
    ``"energy"`` (cumulative J: :func:`counter_delta`)."""
    if sensor_kind == "power":
        return integrate_power(t_s, values, t0, t1)
    if sensor_kind == "energy":
        return counter_delta(t_s, values, t0, t1)
    raise ValueError(f"unknown sensor kind {sensor_kind!r}: expected 'power' or 'energy'")


def idle_power(sensor_kind: str, t_s: np.ndarray, values: np.ndarray, t0: float, t1: float) -> float:
    """Mean power in watts over an idle window ``[t0, t1]`` (the time-weighted mean: its energy / its duration)."""
    if not t1 > t0:
        raise ValueError(f"idle_power: the idle window [{t0}, {t1}] has no duration")
    return window_energy(sensor_kind, t_s, values, t0, t1) / (t1 - t0)


def samples_in_window(t_s: np.ndarray, t0: float, t1: float) -> int:
    """How many samples have timestamps within ``[t0, t1]`` (the ``samples`` of a window record)."""
    t = np.asarray(t_s, dtype=np.float64)
    return int(np.count_nonzero((t >= t0) & (t <= t1)))


def _median(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None and math.isfinite(x)]
    return float(np.median(vals)) if vals else None


def energy_summary(windows: Sequence[dict[str, Any]], *, idle_power_w: float | None = None,
                   min_window_s: float = MIN_WINDOW_S, min_samples: int = 10,
                   sensor: dict[str, Any] | str | None = None) -> dict[str, Any]:
    """Energy per inference over measured windows, following MLPerf Tiny's energy rules (each window
    >= ``min_window_s``, default 10 s; the median over the windows is reported, MLPerf Tiny takes 5).

    Args:
        windows: one dict per timed window: ``t0``, ``t1`` (s), ``inferences`` (int), ``joules`` (the window's
            energy, :func:`window_energy`) and ``samples`` (sensor readings inside the window); other keys are
            kept in the per-window records.
        idle_power_w: the device's idle power in W (:func:`idle_power`), or ``None`` without a baseline.
        min_window_s: the shortest valid window, in seconds.
        min_samples: the fewest sensor readings a valid window holds.
        sensor: what measured (the sensor's ``describe()`` or its name), recorded as is.

    Returns:
        ``sensor``; ``energy_per_inference_j`` (median over windows of joules / inferences);
        ``net_energy_per_inference_j`` (median of (joules - idle_power_w * duration) / inferences, ``None``
        without a baseline); ``mean_power_w`` (all windows' joules / their total duration); ``idle_power_w``;
        ``windows`` (the per-window figures); ``n_windows``; ``window_s`` (median duration);
        ``sample_rate_hz`` (median over windows of samples / duration); ``valid`` and ``invalid_reasons`` (one
        line each; the numbers are kept when invalid).
    """
    reasons: list[str] = []
    rows: list[dict[str, Any]] = []
    if idle_power_w is not None and not (math.isfinite(idle_power_w) and idle_power_w >= 0):
        reasons.append(f"the idle baseline {idle_power_w!r} W is not a finite non-negative power")
    for i, w in enumerate(windows):
        t0, t1 = float(w["t0"]), float(w["t1"])
        n, joules, samples = int(w["inferences"]), float(w["joules"]), int(w["samples"])
        duration = t1 - t0
        per = joules / n if n > 0 else None
        net = None
        if idle_power_w is not None and n > 0:
            net = (joules - idle_power_w * duration) / n
        rows.append({**w, "t0": t0, "t1": t1, "duration_s": duration, "inferences": n, "joules": joules,
                     "samples": samples, "energy_per_inference_j": per, "net_energy_per_inference_j": net,
                     "mean_power_w": joules / duration if duration > 0 else None,
                     "sample_rate_hz": samples / duration if duration > 0 else None})
        if duration < min_window_s:
            reasons.append(f"window {i} lasted {duration:.3g} s, shorter than the {min_window_s:g} s minimum "
                           "(MLPerf Tiny: at least 10 s per energy window)")
        if samples < min_samples:
            reasons.append(f"window {i} holds {samples} sensor sample(s), fewer than the {min_samples} required")
        if n <= 0:
            reasons.append(f"window {i} ran {n} inferences")
        if not math.isfinite(joules):
            reasons.append(f"window {i} energy is {joules} J (not finite): the samples did not cover the window or "
                           "the sensor returned bad readings")
        elif joules < 0:
            reasons.append(f"window {i} energy is negative ({joules:.4g} J): a counter went backwards or wrapped "
                           "without being unwrapped")
        elif net is not None and net * n < -1e-9 * max(joules, 1e-12):  # below the idle floor, beyond rounding
            reasons.append(f"window {i} net energy is negative ({net:.4g} J per inference): the idle baseline "
                           f"{idle_power_w:.4g} W exceeds the window's mean power {joules / duration:.4g} W, so "
                           "the baseline is not comparable (measure it in the same conditions)")
    if not rows:
        reasons.append("no measurement windows")
    durations = [r["duration_s"] for r in rows]
    total_s = float(sum(d for d in durations if d > 0))
    total_j = float(sum(r["joules"] for r in rows if math.isfinite(r["joules"])))
    return {
        "sensor": sensor,
        "energy_per_inference_j": _median([r["energy_per_inference_j"] for r in rows]),
        "net_energy_per_inference_j": (_median([r["net_energy_per_inference_j"] for r in rows])
                                       if idle_power_w is not None else None),
        "mean_power_w": total_j / total_s if total_s > 0 else None,
        "idle_power_w": idle_power_w,
        "windows": rows,
        "n_windows": len(rows),
        "window_s": float(np.median(durations)) if durations else None,
        "sample_rate_hz": _median([r["sample_rate_hz"] for r in rows]),
        "valid": not reasons,
        "invalid_reasons": reasons,
    }


def energy_fields(energy: dict[str, Any] | None) -> dict[str, Any]:
    """The energy columns of a result row from an agent's ``energy`` result; empty when the target has no
    readable sensor (energy is then absent, never estimated)."""
    if not energy or energy.get("absent"):
        return {}
    return {"energy_j": energy.get("energy_per_inference_j"), "energy_net_j": energy.get("net_energy_per_inference_j"),
            "power_w": energy.get("mean_power_w"), "idle_power_w": energy.get("idle_power_w"),
            "energy_valid": int(bool(energy.get("valid")))}
