"""DEVICE SIDE: the runtimes' own per-operator profilers, read into one record shape. Torch-free, numpy-free.

A record is one node of the executed graph summed over the profiled inferences: ``node`` (its name), ``op``
(its operator type as the runtime ran it: ONNX Runtime's fused ``QLinearConv``, OpenVINO's ``Convolution``),
``kernel`` (what executed it: ONNX Runtime's execution provider and input element type, ``CPU/uint8``;
OpenVINO's exec type, ``jit_avx2_I8``, ``brgconv_avx512_f32``, ``ref_any``), ``dtype`` (the element type it
ran on) and ``us`` (kernel microseconds per inference). The agent aggregates them (:mod:`edgebench.agent.profile`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_KERNEL_SUFFIX = "_kernel_time"


def ort_records(trace: Any, skip_runs: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The node records of an ONNX Runtime profile (the JSON its ``end_profiling`` wrote, parsed) and the number
    of inferences they cover. The node events of the first ``skip_runs`` inferences (``model_run`` events) are
    left out (first-run allocations); a node's time is the median of its events times their number per
    inference, so an inference stalled by another process does not weigh on one node."""
    events = trace.get("traceEvents", []) if isinstance(trace, dict) else list(trace)
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e.get("ts", 0))
    after = runs[skip_runs - 1]["ts"] + runs[skip_runs - 1].get("dur", 0) if 0 < skip_runs <= len(runs) else -1
    counted = max(len(runs) - max(skip_runs, 0), 1)
    durations: dict[str, list[float]] = {}
    records: dict[str, dict[str, Any]] = {}
    for e in events:
        name = str(e.get("name", ""))
        if e.get("cat") != "Node" or not name.endswith(_KERNEL_SUFFIX) or e.get("ts", 0) <= after:
            continue
        node = name[: -len(_KERNEL_SUFFIX)]
        durations.setdefault(node, []).append(float(e.get("dur", 0)))
        if node not in records:
            args = e.get("args") or {}
            inputs = args.get("input_type_shape") or [{}]
            dtype = next(iter(inputs[0]), "?") if isinstance(inputs[0], dict) else "?"
            provider = str(args.get("provider", "?")).replace("ExecutionProvider", "")
            records[node] = {"node": node, "op": str(args.get("op_name", "?")), "kernel": f"{provider}/{dtype}",
                             "dtype": dtype}
    for node, rec in records.items():
        d = sorted(durations[node])
        rec["us"] = d[len(d) // 2] * len(d) / counted
    return list(records.values()), counted


def ov_dtype(exec_type: str) -> str:
    """The element type an OpenVINO exec type names in its suffix (``jit_avx2_I8`` -> ``i8``)."""
    tail = exec_type.rsplit("_", 1)[-1]
    return tail.lower() if tail.lower() in ("i8", "u8", "f32", "bf16", "f16", "i32", "i64", "u1") else "?"


def ov_records(before: Iterable[Any], after: Iterable[Any], k0: int, k1: int) -> list[dict[str, Any]]:
    """The node records of the inferences ``k0 + 1 .. k1`` of one OpenVINO compiled model, from its profiling
    info (``InferRequest.get_profiling_info()``) read after inference ``k0`` (``before``) and after ``k1``
    (``after``). The CPU plugin reports each node's running mean over every inference of the compiled model
    (measured on 2026.4), so the mean of the later ones is ``(m1 k1 - m0 k0) / (k1 - k0)``; nodes that did not
    execute (fused into a neighbour) are left out."""
    def us(p: Any) -> float:
        return float(p.real_time.total_seconds() * 1e6)

    first = {str(p.node_name): us(p) for p in before}
    out = []
    for p in after:
        if getattr(getattr(p, "status", None), "name", "EXECUTED") != "EXECUTED":
            continue
        exec_type, name = str(p.exec_type), str(p.node_name)
        mean = (us(p) * k1 - first.get(name, 0.0) * k0) / max(k1 - k0, 1)
        out.append({"node": name, "op": str(p.node_type), "kernel": exec_type, "dtype": ov_dtype(exec_type),
                    "us": max(mean, 0.0)})
    return out
