"""The report's cost sections: where each variant's inference time goes (the agent's per-operator profile,
:mod:`edgebench.agent.profile`), its share of int8 kernels, why a compressed variant is not faster than its base,
and the memory cells of the latency table (:mod:`edgebench.agent.memory`)."""

from __future__ import annotations

from typing import Any

from edgebench.report.data import RunData
from edgebench.report.tables import Cell, Num, Para, Section, Table, fmt_num

#: operators that do a layer's arithmetic (matrix products, convolutions), by runtime spelling
_COMPUTE = ("Conv", "MatMul", "Gemm", "FusedConv", "FusedGemm", "FusedMatMul", "Convolution", "FullyConnected",
            "GroupConvolution")
#: columns the latency table gains (:func:`memory_cells`)
MEMORY_COLUMNS = ["load MB", "peak MB"]
#: shares of the kernel time above which the profile names a cause
_QUANT_CAUSE, _REF_CAUSE, _INT8_MOSTLY = 0.15, 0.10, 0.5


def memory_cells(r: dict[str, Any]) -> list[Cell]:
    """Resident memory the model's loading added, and the peak during the latency pass, both over the agent's
    baseline, in MiB (None where the device could not say)."""
    return [Num(r.get("load_rss_mb"), 1), Num(r.get("peak_rss_mb"), 1)]


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _op_ms(profile: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for g in profile["ops"]:
        out[g["op"]] = out.get(g["op"], 0.0) + g["ms"]
    return out


def why_not_faster(profile: dict[str, Any], base: dict[str, Any] | None, macs: tuple[Any, Any] = (None, None)) -> str:
    """One line, from the profiles, on why a compressed variant is not faster than its base. ``macs``: the
    variant's and the base's MACs per inference, where known."""
    shares, ops = profile["shares"], profile["ops"]
    quant = [g for g in ops if g["class"] == "quant"]
    heavy = next((g for g in ops if g["class"] == "float" and g["op"] in _COMPUTE), None)
    float_compute = sum(g["share"] for g in ops if g["class"] == "float" and g["op"] in _COMPUTE)
    if quant and heavy and (float_compute > shares["int8"] or shares["quant"] >= _QUANT_CAUSE):
        return (f"{_pct(heavy['share'])} of time in float {heavy['op']} ({heavy['kernel']}) and "
                f"{_pct(shares['quant'])} in {', '.join(dict.fromkeys(g['op'] for g in quant))}, "
                f"{_pct(shares['int8'])} in int8 kernels: the int8 pattern was not fused, so those layers run in "
                "float plus conversions")
    if shares["quant"] >= _QUANT_CAUSE and shares["int8"] < _INT8_MOSTLY:  # else the int8 kernels hold most time
        return (f"{_pct(shares['quant'])} of time converting between float and int8 "
                f"({', '.join(dict.fromkeys(g['op'] for g in quant))}) against {_pct(shares['int8'])} in int8 kernels: "
                "the conversions cost more than the int8 arithmetic saves")
    if shares["int8"] >= _INT8_MOSTLY:
        top = next(g for g in ops if g["class"] == "int8")
        versus = "" if base is None else \
            f"; kernel time {fmt_num(profile['total_ms'])} ms against {fmt_num(base['total_ms'])} ms in the base"
        return (f"{_pct(shares['int8'])} of time in int8 kernels (most in {top['op']}, {top['kernel']}) and "
                f"{_pct(shares['quant'])} in conversions{versus}: the int8 kernels are not faster than the float "
                "ones here (no int8 dot-product instructions such as VNNI on this CPU, or layers too small to gain)")
    if profile.get("ref_share", 0.0) >= _REF_CAUSE:
        ref = next(g for g in ops if g["kernel"].startswith("ref"))
        return (f"{_pct(profile['ref_share'])} of time in reference (unoptimized) kernels, such as {ref['op']} "
                f"({ref['kernel']}): the runtime has no fast kernel for this layer")
    fewer = macs[0] is not None and macs[1] is not None and macs[0] < macs[1]
    lead = f"fewer MACs ({fmt_num(macs[0])} vs {fmt_num(macs[1])}) but " if fewer else ""
    if base is not None:
        mine, theirs = _op_ms(profile), _op_ms(base)
        op, grew = max(((o, ms - theirs.get(o, 0.0)) for o, ms in mine.items()), key=lambda t: t[1])
        if grew > 0:
            share = mine[op] / profile["total_ms"] if profile["total_ms"] else 0.0
            if op not in theirs:
                return f"{lead}{_pct(share)} of time in {op} ({fmt_num(mine[op])} ms), which the base does not run"
            return (f"{lead}{_pct(share)} of time in {op}, {fmt_num(mine[op])} ms against {fmt_num(theirs[op])} ms "
                    "in the base: that operator's kernel is slower here")
        return (f"{lead}kernel time {fmt_num(profile['total_ms'])} ms against {fmt_num(base['total_ms'])} ms in the "
                "base: the operators are not slower, the difference is the runtime's per-inference overhead or noise")
    top = ops[0]
    return f"{lead}{_pct(top['share'])} of time in {top['op']} ({top['kernel']}); no profile of the base to compare"


def _top(profile: dict[str, Any], k: int = 3) -> str:
    return ", ".join(f"{g['op']} ({g['kernel']}) {_pct(g['share'])}" for g in profile["ops"][:k])


def cost_sections(d: RunData) -> list[Section]:
    """``Where the time goes``: per target and backend, each variant's profiled kernel time, int8 and
    conversion shares and top operators, then one line per compressed variant not faster than its base."""
    profiles = {(s["target"], s["backend"], s["model"], s["variant"]): s["data"] for s in d.samples
                if s["kind"] == "profile"}
    if not profiles:
        return []
    rows = {(r["target"], r["backend"], r["model"], r["variant"]): r for r in d.clean}
    blocks: list[Any] = [Para(
        "A profiling pass after the timed latency pass (a session of its own with the runtime's profiler on, "
        "`[measure] profile_runs` inferences; the timed numbers are taken without it): kernel time per inference "
        "(under the profiler, so above the p50 on small models), the share in int8 kernels and in float↔int8 "
        "conversions (QuantizeLinear/DequantizeLinear, FakeQuantize/Convert), and the three operators that take "
        "most of the time, with the kernel that ran them (ONNX Runtime: provider/input type; OpenVINO: exec type, "
        "`ref` being the unoptimized fallback). Why a compressed variant is not faster than its base, from these "
        "profiles: under \"Cost and speed\".")]
    for target, backend in dict.fromkeys((t, b) for t, b, _, _ in profiles):
        table: list[list[Cell]] = []
        for (t, b, model, variant), p in profiles.items():
            if (t, b) != (target, backend):
                continue
            r = rows.get((t, b, model, variant), {})
            quantized = p["shares"]["int8"] > 0 or p["shares"]["quant"] > 0
            table.append([model, variant, Num(r.get("p50_ms")), Num(p["total_ms"]),
                          Num(100 * p["shares"]["int8"], 0, " %") if quantized else None,
                          Num(100 * p["shares"]["quant"], 0, " %") if quantized else None, _top(p)])
        blocks.append(Table(f"profile_{target}_{backend}", f"{target} / {backend}",
                            ["model", "variant", "p50 ms", "kernel ms", "int8", "conversions", "top operators"],
                            table))
    return [Section("costs", "Where the time goes", blocks)]


__all__ = ["MEMORY_COLUMNS", "cost_sections", "memory_cells", "why_not_faster"]
