"""DEVICE SIDE: the profiling pass, a per-operator profile of the artifact after the timed latency pass. Torch-free.

It runs in a session of its own with the runtime's profiler on (ONNX Runtime's ``enable_profiling``, OpenVINO's
``PERF_COUNT``), ``profile_runs`` inferences on the latency pass's sample, so the timed numbers are never taken
with a profiler attached (``bench/bench_profile.py`` measures that the pass leaves them alone). The node
records of :mod:`edgebench.runtime.profiling` are grouped by operator type and kernel, with each group's time
per inference and share, and the shares of three classes of kernels:

- ``int8``: kernels that compute on 8-bit integers. ONNX Runtime: ``QLinear*``, ``ConvInteger``,
  ``MatMulInteger``, ``MatMulIntegerToFloat``, ``DynamicQuantizeMatMul``, ``QGemm``, ``QAttention``, and any
  other operator whose first input is ``int8``/``uint8`` (a ``MaxPool`` in the int8 domain); OpenVINO: an exec
  type with ``I8``/``U8`` (``jit_avx2_I8``).
- ``quant``: conversions between float and int8, overhead of a quantized graph. ONNX Runtime:
  ``QuantizeLinear``, ``DequantizeLinear``, ``DynamicQuantizeLinear``; OpenVINO: ``FakeQuantize``, ``Convert``.
- ``float``: everything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["classify", "profile_pass", "summarize"]

#: how many operator groups a profile keeps (the rest is summed into the shares only)
TOP_GROUPS = 25

_ORT_INT8 = frozenset({"ConvInteger", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "QGemm",
                       "QAttention", "DynamicQuantizeLSTM"})
_ORT_QUANT = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"})
_OV_QUANT = frozenset({"FakeQuantize", "Convert"})
CLASSES = ("int8", "quant", "float")


def classify(backend: str, record: dict[str, Any]) -> str:
    """``int8``, ``quant`` or ``float`` for one node record (see the module docstring)."""
    op, kernel, dtype = record["op"], record["kernel"], record.get("dtype", "?")
    if backend == "openvino":
        if op in _OV_QUANT:
            return "quant"
        return "int8" if ("I8" in kernel or "U8" in kernel) else "float"
    if op in _ORT_QUANT:
        return "quant"
    if op.startswith("QLinear") or op in _ORT_INT8 or dtype in ("int8", "uint8"):
        return "int8"
    return "float"


def summarize(backend: str, records: list[dict[str, Any]], runs: int) -> dict[str, Any]:
    """Group ``records`` (per inference, over ``runs`` profiled inferences) by (op, kernel): ``ops`` (largest first: op,
    kernel, class, nodes, ms per inference, share of the kernel time), ``shares`` per class, ``total_ms``
    (kernel time per inference; less than the wall time, which adds the session's own overhead), and
    ``ref_share`` (OpenVINO reference kernels, ``ref_*``: the unoptimized fallback)."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    shares = dict.fromkeys(CLASSES, 0.0)
    ref = 0.0
    total = sum(r["us"] for r in records)
    for r in records:
        cls = classify(backend, r)
        g = groups.setdefault((r["op"], r["kernel"]), {"op": r["op"], "kernel": r["kernel"], "class": cls,
                                                       "nodes": 0, "us": 0.0})
        g["nodes"] += 1
        g["us"] += r["us"]
        shares[cls] += r["us"]
        if backend == "openvino" and r["kernel"].startswith("ref"):
            ref += r["us"]
    ops = sorted(groups.values(), key=lambda g: -g["us"])[:TOP_GROUPS]
    for g in ops:
        us = g.pop("us")
        g["ms"] = us / 1e3
        g["share"] = us / total if total else 0.0
    return {"backend": backend, "runs": runs, "total_ms": total / 1e3, "nodes": len(records), "ops": ops,
            "shares": {k: (v / total if total else 0.0) for k, v in shares.items()},
            "ref_share": ref / total if total else 0.0}


def profile_pass(backend: Any, testset: Path, runs: int) -> dict[str, Any]:
    """Profile ``runs`` inferences of the loaded ``backend`` on the first sample of ``testset`` (the latency
    pass's). ``{"absent": why}`` where the runtime has no profiler or its profile cannot be read."""
    from edgebench.agent.stream import iter_batches

    sample = next(iter_batches(testset, 1))
    try:
        got = backend.profile(sample, runs)
    except Exception as exc:  # a profiler failure must not cost the job its measurements
        return {"absent": f"{backend.name}'s profiler failed: {type(exc).__name__}: {exc}"}
    if got is None:
        return {"absent": f"backend {backend.name!r} has no per-operator profiler"}
    records, counted = got
    if not records:
        return {"absent": f"{backend.name}'s profiler recorded no operator"}
    return summarize(backend.name, records, counted)
