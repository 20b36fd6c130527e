"""Compact per-sample data kept in the store beside each result row (schema 5, table ``samples``).

- ``correct``: which samples a result row got right, as ``numpy.packbits`` in base64 (10,000 samples take
  1,668 characters), with the sha256 of the test set it was measured on. Two rows measured on the same set
  can then be compared sample by sample with McNemar's test, even across runs (``edgebench compare``).
- ``latency``: a histogram of the timed inferences on log-spaced bins, so the report can draw the latency
  distribution per backend without the raw samples.

Pure numpy, torch-free.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

LATENCY_BINS = 48


def pack_correct(mask: np.ndarray, set_sha256: str = "") -> dict[str, Any]:
    """``{"n", "k", "bits", "set_sha256"}`` for a boolean per-sample mask."""
    m = np.asarray(mask, dtype=bool).ravel()
    return {"n": int(m.size), "k": int(m.sum()), "bits": base64.b64encode(np.packbits(m).tobytes()).decode("ascii"),
            "set_sha256": set_sha256}


def unpack_correct(data: dict[str, Any]) -> np.ndarray:
    """The boolean mask :func:`pack_correct` packed."""
    raw = np.frombuffer(base64.b64decode(data["bits"]), dtype=np.uint8)
    return np.unpackbits(raw, count=int(data["n"])).astype(bool)


def latency_histogram(samples_ns: np.ndarray, *, bins: int = LATENCY_BINS) -> dict[str, Any]:
    """Histogram of per-inference wall times (ns in, ms out) on ``bins`` log-spaced bins from min to max."""
    ms = np.asarray(samples_ns, dtype=np.float64).ravel() / 1e6
    if ms.size == 0:
        return {"n": 0, "edges_ms": [], "counts": []}
    lo, hi = float(ms.min()), float(ms.max())
    if hi <= lo:
        hi = lo * 1.001 + 1e-9
    edges = np.geomspace(max(lo, 1e-9), hi, bins + 1)
    counts, _ = np.histogram(ms, bins=edges)
    return {"n": int(ms.size), "edges_ms": [float(e) for e in edges], "counts": [int(c) for c in counts]}
