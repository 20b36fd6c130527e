"""Markdown and JSON rendering of a run, from its store alone."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from edgebench.store import Store


def _f(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _ci(rec: dict[str, Any], key: str) -> str:
    v = rec.get(key)
    if v is None:
        return "–"
    return f"{v:.3f} [{rec.get(key + '_lo', math.nan):.3f}, {rec.get(key + '_hi', math.nan):.3f}]"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(store: Store, run_id: str) -> str:
    run = store.run(run_id) or {}
    results = store.results(run_id)
    clean = [r for r in results if r["attack"] == "none"]
    adv = [r for r in results if r["attack"] != "none"]
    out = [f"# edgebench report: {run_id}", "",
           f"Plan `{run.get('plan_name')}` (hash `{(run.get('plan_hash') or '')[:12]}`), edgebench "
           f"{run.get('edgebench_version')}, status **{run.get('status')}**.", ""]
    problems = [s for s in store.stages(run_id) if s["status"] in ("failed", "skipped")]
    if problems:
        out += ["## What did not finish", ""]
        out += [f"- `{s['stage']}`: {s['status']} — {s['info'].get('note', '')}" for s in problems]
        out.append("")
    out += _flags_section(store.flags(run_id))
    plan = json.loads(run["plan"]) if run.get("plan") else {}
    out += _reference_section(plan.get("references") or [], results)
    out += ["## Clean accuracy and latency", "",
            "Accuracy with its sample count and 95 % Wilson interval; latency is batch-1 wall time of one "
            "inference on the target, in ms.", "",
            _table(["model", "variant", "target", "backend", "n", "clean_acc [95 % CI]", "mean ± std", "p50",
                    "p90", "p99", "first", "runs", "throughput/s", "mJ/inference"],
                   [[r["model"], r["variant"], r["target"], r["backend"], str(int(r["n"])), _ci(r, "clean_acc"),
                     f"{_f(r['mean_ms'])} ± {_f(r['std_ms'])}", _f(r["p50_ms"]), _f(r["p90_ms"]), _f(r["p99_ms"]),
                     _f(r["first_ms"]), _f(r["runs"] and int(r["runs"])), _f(r["throughput_per_s"], 0),
                     _energy_cell(r)] for r in clean]), ""]
    if adv:
        out += ["## Robustness", "",
                "`asr`: among samples classified correctly when clean, the fraction misclassified once perturbed. "
                "`host asr`: the same examples on the host torch twin; `gap` = device asr − host asr.", "",
                _table(["model", "variant", "target", "backend", "attack", "threat", "source", "ε", "n",
                        "robust_acc [95 % CI]", "asr [95 % CI]", "host asr", "gap", "mean L∞", "mean L2"],
                       [[r["model"], r["variant"], r["target"], r["backend"], r["attack"], r["threat"] or "",
                         r["source"] or "", f"{r['eps']:g}",
                         str(int(r["n"])), _ci(r, "robust_acc"), _ci(r, "asr"), _f(r["host_asr"]),
                         _f(r["deployment_gap"]), _f(r["mean_linf"]), _f(r["mean_l2"])] for r in adv]), ""]
        out += _transfer_section(adv)
        out += _delta_section(adv)
    out += _min_eps_section(store.min_eps(run_id))
    out += _variants_section(store.variants(run_id), clean)
    arts = store.artifacts(run_id)
    if arts:
        out += ["## Artifacts and parity", "",
                "Parity: max |Δlogit| between the artifact's runtime (ONNX Runtime for ONNX, OpenVINO at f32 for IR) "
                "and the torch twin on real test inputs; precision is what the artifact computes in.", "",
                _table(["model", "variant", "format", "precision", "size (bytes)", "sha256", "max abs Δ",
                        "top-1 agreement", "ok"],
                       [[a["model"], a["variant"], a["format"],
                         str(json.loads(a["card"]).get("provenance", {}).get("precision", "–")), str(a["size_bytes"]),
                         a["sha256"][:12],
                         _f(a["parity_max_abs_diff"], 2 if a["parity_max_abs_diff"] is None else 8),
                         _f(a["parity_top1_agreement"]),
                         {1: "yes", 0: "**NO**"}.get(a["parity_ok"], "–")] for a in arts]), ""]
    envs = store.environments(run_id)
    if envs:
        out += ["## Environment", ""]
        seen = set()
        for e in envs:
            k = (e["target"], e["backend"])
            if k in seen:
                continue
            seen.add(k)
            env, info = e["environment"].get("before", {}), e["backend_info"]
            out.append(f"- **{e['target']} / {e['backend']}**: {env.get('cpu_model')} ({env.get('cpu_count')} cpus), "
                       f"{env.get('os')}, Python {env.get('python')}, {info.get('backend')} "
                       f"{info.get('runtime_version')}, {_device_desc(info)}, precision {info.get('precision')}, "
                       f"governor {env.get('governor')}. {_energy_sentence(e['environment'].get('energy'))}")
        out.append("")
    return "\n".join(out)


def _reference_section(refs: list[dict[str, Any]], results: list[dict[str, Any]]) -> list[str]:
    """The paper's numbers beside edgebench's, one row per ``[[reference]]`` of the plan: the measured value
    with its 95 % interval on the first target and backend, the difference, and whether the paper's value
    lies inside the interval (a difference outside it is a real one, not sampling noise)."""
    if not refs:
        return []
    pairs = list(dict.fromkeys((r["target"], r["backend"]) for r in results))
    rows = []
    for ref in refs:
        def match(r: dict[str, Any], ref: dict[str, Any] = ref) -> bool:
            if (r["model"], r["variant"], r["attack"]) != (ref["model"], ref["variant"], ref["attack"]):
                return False
            if ref["attack"] != "none" and not math.isclose(r["eps"], ref["eps"]):
                return False
            return r["source"] == ref["source"] if ref["source"] else r["threat"] in ("white-box", "clean")
        hits = [r for r in results if match(r)]
        hit = next((r for p in pairs for r in hits if (r["target"], r["backend"]) == p), None)
        what = ref["metric"] + ("" if ref["attack"] == "none" else f", {ref['attack']} ε={ref['eps']:g}")
        unit = ref["model"] if ref["variant"] == "base" else f"{ref['model']}/{ref['variant']}"
        if hit is None or hit.get(ref["metric"]) is None:
            rows.append([ref["figure"], unit, what, f"{ref['value']:.4f}", "**not measured**", "–", "–",
                         ref.get("note", "")])
            continue
        v, lo, hi = hit[ref["metric"]], hit.get(ref["metric"] + "_lo"), hit.get(ref["metric"] + "_hi")
        n = hit.get("asr_n") if ref["metric"] == "asr" else hit.get("n")
        inside = "–" if lo is None else ("yes" if lo <= ref["value"] <= hi else "**no**")
        rows.append([ref["figure"], unit, what, f"{ref['value']:.4f}", f"{_ci(hit, ref['metric'])} (n={n})",
                     f"{(v - ref['value']) * 100:+.2f}", inside, ref.get("note", "")])
    return ["## Paper vs edgebench", "",
            "Each number the plan reproduces, beside edgebench's on the first target and backend: `Δ` in "
            "percentage points; `inside` says whether the paper's value lies in edgebench's 95 % interval.", "",
            _table(["figure", "model", "quantity", "paper", "edgebench [95 % CI]", "Δ (points)", "inside",
                    "note"], rows), ""]


def _delta_section(adv: list[dict[str, Any]]) -> list[str]:
    """Robust accuracy of every variant beside its base's, per attack, ε and threat (poster 004's table), with
    "max δ": the variant whose robust accuracy moved most from the base's, and McNemar's paired p on the same
    samples (a δ with p ≥ 0.05 is inside the noise and shown as such). First target and backend only."""
    with_delta = [r for r in adv if r.get("robust_delta") is not None]
    if not with_delta:
        return []
    pair = (with_delta[0]["target"], with_delta[0]["backend"])
    rows_in = [r for r in adv if (r["target"], r["backend"]) == pair]
    base_rows = {(r["model"], r["attack"], r["eps"], r["source"]): r for r in rows_in if r["variant"] == "base"}
    groups: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in rows_in:
        if r["variant"] == "base" or r.get("robust_delta") is None:
            continue
        own = r["threat"] == "white-box"
        examples = "each its own (white-box)" if own else f"crafted on {r['source']}"
        cells = groups.setdefault((r["model"], r["attack"], r["eps"], examples), {})
        cells[r["variant"]] = r
        base = base_rows.get((r["model"], r["attack"], r["eps"], r["model"] if own else r["source"]))
        if base is not None:
            cells.setdefault("base", base)
    variants = list(dict.fromkeys(r["variant"] for g in groups.values() for r in g.values()))
    variants = ["base"] + [v for v in variants if v != "base"]
    table = []
    for (model, attack, eps, threat), cells in groups.items():
        deltas = [c for v, c in cells.items() if v != "base" and c.get("robust_delta") is not None]
        if not deltas:
            continue
        top = max(deltas, key=lambda c: abs(c["robust_delta"]))
        sig = "" if top["robust_delta_p"] < 0.05 else " (n.s.)"
        table.append([model, attack, f"{eps:g}", threat,
                      *(_f(cells[v]["robust_acc"]) if v in cells else "–" for v in variants),
                      f"{top['robust_delta'] * 100:+.1f} ({top['variant']}, p={top['robust_delta_p']:.2g}){sig}"])
    if not table:
        return []
    return ["## Robustness against the base", "",
            f"Robust accuracy per variant on {pair[0]}/{pair[1]}; `max δ`: the largest change from the base in "
            "points, with McNemar's paired p on the same samples — `(n.s.)` marks a change inside the noise "
            "(poster 004's table, with the significance test it lacked).", "",
            _table(["model", "attack", "ε", "examples", *variants, "max δ"], table), ""]


def _energy_cell(r: dict[str, Any]) -> str:
    """Energy per inference in mJ; an invalid window is shown struck through, never as a plain number."""
    if r.get("energy_j") is None:
        return "–"
    text = f"{r['energy_j'] * 1e3:.3g}"
    return text if r.get("energy_valid") else f"~~{text}~~ (invalid)"


def _energy_sentence(energy: dict[str, Any] | None) -> str:
    if not energy:
        return "Energy: not measured (the latency pass was off)."
    if energy.get("absent"):
        return f"Energy: not measured ({energy['absent']})."
    sensor = energy.get("sensor") or {}
    name = sensor.get("name", "?") if isinstance(sensor, dict) else sensor
    valid = "valid" if energy.get("valid") else f"**invalid**: {'; '.join(energy.get('invalid_reasons', []))}"
    return (f"Energy: sensor {name}, {energy.get('n_windows')} windows of {_f(energy.get('window_s'), 1)} s at "
            f"{_f(energy.get('sample_rate_hz'), 1)} Hz, idle {_f(energy.get('idle_power_w'), 2)} W ({valid}).")


def _flags_section(flags: list[dict[str, Any]]) -> list[str]:
    """What makes a number untrustworthy, first; healthy gradient checks in one line."""
    bad = [f for f in flags if f["kind"] != "gradient-check"]
    ok = [f for f in flags if f["kind"] == "gradient-check"]
    if not flags:
        return []
    out = ["## Trust flags", ""]
    out += [f"- **{f['kind']}**: {f['message']}" for f in bad] or ["- no suspected gradient masking."]
    if ok:
        out.append(f"- input gradients checked and healthy on: {', '.join(f['source'] for f in ok)}.")
    return out + [""]


def _transfer_section(adv: list[dict[str, Any]]) -> list[str]:
    """Transferability tables (seed 002, Table III): asr on each victim (column) of the examples crafted on
    each source (row), per attack and ε, for the first target and backend that ran them."""
    groups: dict[tuple[str, str, str, float], dict[tuple[str, str], float]] = {}
    for r in adv:
        victim = r["model"] if r["variant"] == "base" else f"{r['model']}/{r['variant']}"
        groups.setdefault((r["target"], r["backend"], r["attack"], r["eps"]), {})[(r["source"], victim)] = r["asr"]
    out: list[str] = []
    for (target, backend, attack, eps), cells in groups.items():
        sources = sorted({s for s, _ in cells})
        if len(sources) < 2:
            continue
        victims = sorted({v for _, v in cells})
        if not out:
            out = ["## Transferability", "",
                   "asr on the victim (column) of the examples crafted on the source (row); the diagonal is "
                   "white-box.", ""]
        out += [f"**{attack} at ε={eps:g}** ({target} / {backend})", "",
                _table(["source \\ victim", *victims],
                       [[s, *(_f(cells.get((s, v))) for v in victims)] for s in sources]), ""]
    return out


def _min_eps_section(rows: list[dict[str, Any]]) -> list[str]:
    """Distribution of the per-sample minimal ε (seed 000, Algorithm 1) among clean-correct samples."""
    if not rows:
        return []
    def q(v: Any) -> str:
        return "–" if v is None else ("> max" if isinstance(v, float) and math.isinf(v) else _f(v))
    return ["## Minimal ε", "",
            "Per sample, the smallest ε of the grid at which the attack succeeds on the device (Algorithm 1 of "
            "Liu et al. 2018), among samples classified correctly when clean; `> max`: not reached within the grid.",
            "", _table(["model", "variant", "target", "backend", "attack", "source", "n", "found", "p10", "p25",
                        "median", "p75", "p90", "host median"],
                       [[r["model"], r["variant"], r["target"], r["backend"], r["attack"], r["source"], str(r["n"]),
                         f"{r['found']} ({_f(r.get('found_share'))})", q(r.get("p10")), q(r.get("p25")),
                         q(r.get("p50")), q(r.get("p75")), q(r.get("p90")), q((r.get("host") or {}).get("p50"))]
                        for r in rows]), ""]


def _device_desc(info: dict[str, Any]) -> str:
    if "providers" in info:
        return f"providers {info.get('providers')}, threads {info.get('intra_op_num_threads')}"
    return (f"device {info.get('device')} {info.get('device_name') or ''}".rstrip()
            + f", hint {info.get('performance_hint')}, streams {info.get('num_streams')}, "
              f"threads {info.get('inference_num_threads')}")


def _variants_section(variants: list[dict[str, Any]], clean: list[dict[str, Any]]) -> list[str]:
    """Size, sparsity, MACs and DEFLATE per variant (seed 002, Table IV), ΔW per layer (seed 003, eq. 2) and
    the weight range per layer (seed 000, Fig. 6)."""
    if not variants:
        return []
    bases = {v["model"]: v for v in variants if v["variant"] == "base"}
    acc = {}
    for r in clean:
        acc.setdefault((r["model"], r["variant"]), r)

    def rate(v: dict[str, Any], key: str) -> str:
        b = bases.get(v["model"])
        num = (b or {}).get("stats", {}).get(key) if b else None
        den = v["stats"].get(key)
        return f"{num / den:.2f}×" if num and den else "–"

    def onnx_rate(v: dict[str, Any]) -> str:
        b = bases.get(v["model"])
        num = (b or {}).get("stats", {}).get("artifacts", {}).get("onnx", {}).get("deflate_bytes")
        den = v["stats"].get("artifacts", {}).get("onnx", {}).get("deflate_bytes")
        return f"{num / den:.2f}×" if num and den else "–"

    rows = []
    for v in variants:
        st, onnx = v["stats"], v["stats"].get("artifacts", {}).get("onnx", {})
        params = ", ".join(f"{k}={val}" for k, val in v["params"].items()) or "–"
        dev = acc.get((v["model"], v["variant"]))
        rows.append([v["model"], v["variant"], v["method"], params, _f(st.get("params")), _f(st.get("nonzeros")),
                     _f(st.get("macs")), _f(onnx.get("size_bytes")), _f(onnx.get("deflate_bytes")), rate(v, "params"),
                     onnx_rate(v), rate(v, "weight_deflate_bytes"), _f(v["info"].get("host_clean_acc"), 4),
                     _ci(dev, "clean_acc") if dev else "–"])
    out = ["## Variants: size and compression", "",
           "Parameters and non-zeros of the torch twin, MACs of one inference, the ONNX artifact's size and its "
           "DEFLATE'd size (zlib level 6; seed 002, Table IV); `rate` = base ÷ variant: for the stored parameters "
           "(hashed layers store only their real weights but deploy dense virtual weights), for the ONNX file "
           "after DEFLATE and for the layer weights alone after DEFLATE. Clean accuracy on the host twin and on the "
           "first target.", "",
           _table(["model", "variant", "method", "parameters", "params", "non-zeros", "MACs", "ONNX bytes",
                   "DEFLATE bytes", "rate (params)", "rate (ONNX)",
                   "rate (weights)", "host acc", "device acc [95 % CI]"], rows), ""]
    deltas = [v for v in variants if v["stats"].get("delta_w_spectral")]
    if deltas:
        layers = list(deltas[0]["stats"]["delta_w_spectral"])
        out += ["### ‖ΔW‖₂ per layer", "",
                "Largest singular value of W_variant − W_parent, the parent being the model the method was applied to "
                "(the base; for a chained variant `a+b`, variant `a`) (seed 003, eq. 2; > 1 marks a layer that may "
                "amplify the quantization error); – where the shapes differ (pruned channels).", "",
                _table(["model", "variant", *layers],
                       [[v["model"], v["variant"], *(_f(v["stats"]["delta_w_spectral"].get(n), 4) for n in layers)]
                        for v in deltas]), ""]
    with_w = [v for v in variants if v["stats"].get("weights")]
    if with_w:
        out += ["### Weights per layer", "",
                "Range, standard deviation and number of distinct values of each layer's effective weights (seed "
                "000, Fig. 6: hashing widens the range); the full histograms are in the store (`variants.stats`).", "",
                _table(["model", "variant", "layer", "min", "max", "std", "zeros", "distinct"],
                       [[v["model"], v["variant"], n, _f(w["min"], 4), _f(w["max"], 4), _f(w["std"], 4),
                         _f(w["zeros"]), str(w["distinct"])]
                        for v in with_w for n, w in v["stats"]["weights"].items()]), ""]
    return out


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_report(store: Store, run_id: str, run_dir: Path) -> list[Path]:
    """Write ``results.json`` (flat records) and ``report.md`` into ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    records = [{k: v for k, v in r.items() if k != "run_id"} | {"run_id": run_id} for r in store.results(run_id)]
    _write(run_dir / "results.json", json.dumps(records, indent=1))
    _write(run_dir / "report.md", render_markdown(store, run_id))
    return [run_dir / "results.json", run_dir / "report.md"]
