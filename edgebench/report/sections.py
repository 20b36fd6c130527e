"""The sections of a run's report, built from :class:`RunData` alone (no format, no live objects).

Order: summary (best variant per target and what makes a number untrustworthy), what did not finish, the
paper's numbers beside ours, latency per target and backend, robustness (:mod:`edgebench.report.robustness`),
trade-offs, variants (size, DEFLATE, ΔW, weights), artifacts and parity, environment (devices, runtimes,
temperatures, the plan).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from edgebench.metrics.pareto import pareto_front
from edgebench.report.costs import MEMORY_COLUMNS, memory_cells
from edgebench.report.data import BASE, HEADLINE_ROBUST, RunData, by_pair, headline_robust, row_unit, unit_label
from edgebench.report.references import mean_reference_row, reference_hit
from edgebench.report.seeds import seed_stat
from edgebench.report.tables import Bullets, Cell, Code, Mark, Num, Para, Prop, Section, Table, fmt_num, fmt_prop

#: a proportion whose 95 % interval is wider than this is flagged "too few samples" in the summary
WIDE_INTERVAL = 0.10

FLAG_TITLES = {
    "parity": "parity failure (the artifact does not compute what its torch twin does)",
    "gradient-masking": "suspected gradient masking",
    "whitebox-below-transfer": "white-box weaker than transfer (suspect gradient masking)",
    "gradient-free-above-gradient": "an attack without gradients beats every gradient attack (suspect gradient "
                                    "masking)",
    "energy-invalid": "invalid energy window",
    "throttling": "thermal throttling during the run",
    "too-few-samples": "too few samples (95 % interval wider than 10 points)",
    "missing": "planned measurement missing",
}


def human_bytes(n: float | None) -> str:
    if n is None:
        return "–"
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000
    return str(n)


# -- summary ----------------------------------------------------------------------------------------------
def trust_issues(d: RunData) -> dict[str, list[str]]:
    """Everything that makes a number untrustworthy, by kind (the keys of :data:`FLAG_TITLES`)."""
    out: dict[str, list[str]] = {}
    for a in d.artifacts:
        if a["parity_ok"] == 0:
            out.setdefault("parity", []).append(
                f"{unit_label(a['model'], a['variant'])} ({a['format']}): max |Δlogit| "
                f"{fmt_num(a['parity_max_abs_diff'], 4)}, top-1 agreement {fmt_num(a['parity_top1_agreement'])}")
    for f in d.flags:
        if f["kind"] != "gradient-check":
            out.setdefault(f["kind"], []).append(f["message"])
    wide = []
    for r in d.results:
        key = "clean_acc" if r["attack"] == "none" else "asr"
        lo, hi = r.get(key + "_lo"), r.get(key + "_hi")
        if lo is not None and hi is not None and hi - lo > WIDE_INTERVAL:
            wide.append(r)
    if wide:
        smallest = min(wide, key=lambda r: r.get("asr_n") or r.get("n") or 0)
        out["too-few-samples"] = [
            f"{len(wide)} of {len(d.results)} rows have a 95 % interval wider than {WIDE_INTERVAL * 100:.0f} points "
            f"(smallest: {row_unit(smallest)}, {smallest['attack']}, n={smallest.get('asr_n') or smallest.get('n')}); "
            "raise the attack's `n` or the test set size"]
    gaps = missing_measurements(d)
    if gaps:
        out["missing"] = [f"{u} on {t}/{b}: {why}" for u, t, b, why in gaps]
    return out


def missing_measurements(d: RunData) -> list[tuple[str, str, str, str]]:
    """(unit, target, backend, why) for every unit × target × backend the run planned but has no result for."""
    units = [(v["model"], v["variant"]) for v in d.variants]
    have = {(r["model"], r["variant"], r["target"], r["backend"]) for r in d.clean}
    planned = [(t["target"], b) for t in d.plan.get("targets", []) for b in t.get("backends", [])]
    names = {t: t for t, _ in planned}  # results carry the target's own name, plans the file name
    for r in d.clean:
        for t, _ in planned:
            if r["target"] == t or r["target"] == t.removesuffix(".toml").rsplit("/", 1)[-1]:
                names[t] = r["target"]
    out = []
    for t, b in planned:
        for m, v in units:
            if (m, v, names[t], b) in have:
                continue
            st = d.stage(f"device/{t}/{b}/{unit_label(m, v)}")
            why = "not run" if st is None else f"{st['status']}: {st['info'].get('note', '')}".rstrip(": ")
            out.append((unit_label(m, v), names[t], b, why))
    return out


def _best(rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], float | None],
          text: Callable[[dict[str, Any]], str], low: bool) -> str:
    """``unit on backend: text`` of the row with the lowest (``low``) or highest ``key``."""
    scored = [(key(r), r) for r in rows if key(r) is not None]
    if not scored:
        return "–"
    _, r = (min if low else max)(scored, key=lambda pair: pair[0])
    return f"{row_unit(r)} on {r['backend']}: {text(r)}"


def summary_section(d: RunData) -> Section:
    """The best variant per target for accuracy, robustness, latency, energy and size, the Pareto-optimal
    variants, and the flags that make a number untrustworthy."""
    blocks: list[Any] = []
    status = d.run.get("status")
    if status != "done":
        why = " — still running, or stopped before it finished" if status == "running" else ""
        blocks.append(Para(f"**This run is incomplete (status `{status}`{why}).** What exists is shown; what is "
                           "missing is marked and listed under \"What did not finish\". Run the same command again "
                           "to resume."))
    sizes = d.onnx_sizes()
    headline = headline_robust(d.adversarial)
    rows: list[list[Cell]] = []
    fronts: list[str] = []
    for target in dict.fromkeys(r["target"] for r in d.clean):
        clean = [r for r in d.clean if r["target"] == target]
        best = _best
        robust = [(w, c) for (m, v, t, b), (w, c) in headline.items() if t == target]
        rob_text = "–"
        if robust:
            w, c = max(robust, key=lambda t: t[0]["robust_acc"])
            rob_text = (f"{row_unit(w)} on {w['backend']}: {w['robust_acc']:.3f} against the strongest of {c} "
                        f"attacks at mid ε ({w['attack']} ε={w['eps']:g})")
        seen_units = {(r["model"], r["variant"]): r for r in clean}
        size_rows = [(sizes[k], r) for k, r in seen_units.items() if k in sizes]
        size_text = "–"
        if size_rows:
            s, r = min(size_rows, key=lambda t: t[0])
            size_text = f"{row_unit(r)}: {human_bytes(s)} (ONNX)"
        rows.append([target,
                     best(clean, lambda r: r.get("clean_acc"), lambda r: f"{r['clean_acc']:.3f} (n={r['n']})", False),
                     rob_text,
                     best(clean, lambda r: r.get("p50_ms"), lambda r: f"p50 {r['p50_ms']:.3g} ms", True),
                     best(clean, lambda r: r["energy_j"] if r.get("energy_j") is not None and r.get("energy_valid")
                          else None, lambda r: f"{r['energy_j'] * 1e3:.3g} mJ", True),
                     size_text])
        for (t, b), pr in by_pair(clean).items():
            pts = [r for r in pr if r.get("clean_acc") is not None and r.get("p50_ms") is not None]
            if len(pts) > 1:
                front = pareto_front([r["p50_ms"] for r in pts], [r["clean_acc"] for r in pts])
                fronts.append(f"{t}/{b}: " + ", ".join(f"`{row_unit(pts[i])}`" for i in front))
    if rows:
        blocks.append(Table("summary", "Best variant per target", ["target", "most accurate", "most robust",
                                                                    "fastest", "least energy", "smallest"], rows,
                            f"Most robust: the highest {HEADLINE_ROBUST} (the largest ε leaves every variant near 0, "
                            "so it would not separate them); least energy counts valid windows only."))
    if fronts:
        blocks.append(Para("Pareto-optimal variants, clean accuracy against p50 latency (no other variant is both "
                           "faster and more accurate): " + "; ".join(fronts) + "."))
    issues = trust_issues(d)
    if issues:
        blocks.append(Para("**Before trusting these numbers:**"))
        blocks.append(Bullets([f"**{len(v)} × {FLAG_TITLES.get(k, k)}** — {v[0]}" + (
            f" (and {len(v) - 1} more, below)" if len(v) > 1 else "") for k, v in issues.items()]))
    else:
        blocks.append(Para("No trust flags: parity held, gradients looked healthy, energy windows were valid, no "
                           "throttling, every interval is narrower than 10 points."))
    return Section("summary", "Summary", blocks)


def incomplete_section(d: RunData) -> Section | None:
    problems = [s for s in d.stages if s["status"] not in ("done", "cached")]
    gaps = missing_measurements(d)
    if not problems and not gaps:
        return None
    blocks: list[Any] = []
    if problems:
        blocks.append(Bullets([f"`{s['stage']}`: {s['status']} — {s['info'].get('note', '')}" for s in problems]))
    if gaps:
        blocks.append(Para("Planned device measurements with no result (marked *not measured* in the tables):"))
        blocks.append(Bullets([f"{u} on {t}/{b}: {why}" for u, t, b, why in gaps]))
    return Section("incomplete", "What did not finish", blocks)


def flags_section(d: RunData) -> Section | None:
    """Every flag, one row each (the summary counts them by kind); healthy gradient checks in one line."""
    if not d.flags:
        return None
    bad = [f for f in d.flags if f["kind"] != "gradient-check"]
    ok = [f for f in d.flags if f["kind"] == "gradient-check"]
    blocks: list[Any] = []
    if bad:
        blocks.append(Table("flags", "Trust flags", ["kind", "unit", "target", "backend", "attack", "ε", "message"],
                            [[Mark(f["kind"]), unit_label(f["model"], f["variant"]) if f["model"] else "",
                              f["target"], f["backend"], f["attack"], Num(f["eps"], None) if f["attack"] else None,
                              f["message"]] for f in bad]))
    else:
        blocks.append(Para("No suspected gradient masking."))
    if ok:
        blocks.append(Para(f"Input gradients checked and healthy on: {', '.join(f['source'] for f in ok)}."))
    return Section("flags", "Trust flags", blocks)


# -- paper vs edgebench --------------------------------------------------------------------------------------
def reference_section(d: RunData) -> Section | None:
    """The paper's numbers beside edgebench's, one row per ``[[reference]]`` of the plan: the measured value
    with its 95 % interval on the first target and backend, the difference, and whether the paper's value
    lies inside the interval (a difference outside it is a real one, not sampling noise)."""
    refs = d.plan.get("references") or []
    if not refs:
        return None
    rows: list[list[Cell]] = []
    for ref in refs:
        if ref.get("variants"):  # a paper number averaged over several variants
            rows.append(mean_reference_row(d, ref))
            continue
        hit = reference_hit(d, ref, ref["variant"])
        what = ref["metric"] + ("" if ref["attack"] == "none" else f", {ref['attack']} ε={ref['eps']:g}")
        unit = unit_label(ref["model"], ref["variant"])
        if hit is None or hit.get(ref["metric"]) is None:
            rows.append([ref["figure"], unit, what, Num(ref["value"], 4), Mark("not measured"), None, None,
                         ref.get("note", "")])
            continue
        v, lo, hi = hit[ref["metric"]], hit.get(ref["metric"] + "_lo"), hit.get(ref["metric"] + "_hi")
        p = Prop.of(hit, ref["metric"])
        measured = f"{fmt_prop(p)} (n={p.n})"
        if (over := seed_stat(d, hit, ref["metric"])) is not None and over.lo is not None:  # several seeds
            v, lo, hi = over.mean, over.lo, over.hi
            measured = f"{fmt_prop(Prop(v, lo, hi))} (mean of {over.k} seeds, t interval; n={p.n} each)"
        inside: Cell = None if lo is None else ("yes" if lo <= ref["value"] <= hi else Mark("no"))
        delta = (v - ref["value"]) * 100
        rows.append([ref["figure"], unit, what, Num(ref["value"], 4), Mark(measured, "plain", v),
                     Mark(f"{delta:+.2f}", "plain", delta), inside, ref.get("note", "")])
    return Section("paper", "Paper vs edgebench", [
        Para("Each number the plan reproduces, beside edgebench's on the first target and backend: `Δ` in "
             "percentage points; `inside` says whether the paper's value lies in edgebench's 95 % interval"
             + (" (the mean over the training seeds and its between-seed t interval)." if len(d.seeds) > 1 else ".")),
        Table("paper_vs_edgebench", "Paper vs edgebench",
              ["figure", "model", "quantity", "paper", "edgebench [95 % CI]", "Δ (points)", "inside", "note"],
              rows)])


# -- latency ------------------------------------------------------------------------------------------------
def energy_cell(r: dict[str, Any]) -> Cell:
    """Energy per inference in mJ; an invalid window is shown struck through, never as a plain number."""
    if r.get("energy_j") is None:
        return None
    text = f"{r['energy_j'] * 1e3:.3g}"
    return Num(r["energy_j"] * 1e3, None) if r.get("energy_valid") else Mark(f"{text} (invalid)", "struck",
                                                                              r["energy_j"] * 1e3)


def latency_section(d: RunData) -> Section:
    """One table per target and backend (the poster's inference-time table, extended): clean accuracy with its
    interval, mean ± std, p50/p90/p99, first inference, runs, throughput and energy per inference."""
    blocks: list[Any] = [Para("Accuracy with its sample count and 95 % Wilson interval; latency is the batch-1 wall "
                              "time of one inference on the target, in ms (first: the first inference, before "
                              "warm-up); energy per inference in mJ where the target has a power sensor; memory in "
                              "MiB over the agent's baseline: what loading the model added, and the peak during the "
                              "latency pass.")]
    gaps = missing_measurements(d)
    for (target, backend), rows in by_pair(d.clean).items():
        table_rows: list[list[Cell]] = [
            [r["model"], r["variant"], r["n"], Prop.of(r, "clean_acc"),
             Mark(f"{fmt_num(r['mean_ms'])} ± {fmt_num(r['std_ms'])}", "plain", r["mean_ms"]), Num(r["p50_ms"]),
             Num(r["p90_ms"]), Num(r["p99_ms"]), Num(r["first_ms"]), Num(r["runs"] and int(r["runs"])),
             Num(r["throughput_per_s"], 0), energy_cell(r), *memory_cells(r)] for r in rows]
        for u, t, b, why in gaps:
            if (t, b) == (target, backend):
                m, _, v = u.partition("/")
                table_rows.append([m, v or BASE, None, Mark("not measured", "missing"), Mark(why, "missing"),
                                   *([None] * (7 + len(MEMORY_COLUMNS)))])
        blocks.append(Table(f"latency_{target}_{backend}", f"{target} / {backend}",
                            ["model", "variant", "n", "clean_acc [95 % CI]", "mean ± std", "p50", "p90", "p99", "first",
                             "runs", "throughput/s", "mJ/inference", *MEMORY_COLUMNS], table_rows))
    return Section("latency", "Clean accuracy and latency", blocks)


# -- variants, artifacts, environment -----------------------------------------------------------------------
def variants_sections(d: RunData) -> list[Section]:
    """Size, sparsity, MACs and DEFLATE per variant (seed 002, Table IV), ΔW per layer (seed 003, eq. 2) and
    the weight range per layer (seed 000, Fig. 6)."""
    if not d.variants:
        return []
    bases = {v["model"]: v for v in d.variants if v["variant"] == BASE}
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for r in d.clean:
        acc.setdefault((r["model"], r["variant"]), r)

    def ratio(num: float | None, den: float | None) -> Cell:
        return Mark(f"{num / den:.2f}×", "plain", num / den) if num and den else None

    rows: list[list[Cell]] = []
    for v in d.variants:
        st, onnx = v["stats"], v["stats"].get("artifacts", {}).get("onnx", {})
        b = bases.get(v["model"], {}).get("stats", {})
        engine = {"engine": v["info"].get("engine")} if v["method"].endswith("int8") else {}  # who made the ONNX
        params = ", ".join(f"{k}={val}" for k, val in {**engine, **v["params"]}.items()) or "–"
        rows.append([v["model"], v["variant"], v["method"], params, Num(st.get("params")), Num(st.get("nonzeros")),
                     Num(st.get("macs")), Num(onnx.get("size_bytes")), Num(onnx.get("deflate_bytes")),
                     Num(st.get("stored_bytes")), ratio(b.get("params"), st.get("params")),
                     ratio(b.get("artifacts", {}).get("onnx", {}).get("deflate_bytes"), onnx.get("deflate_bytes")),
                     ratio(b.get("weight_deflate_bytes"), st.get("weight_deflate_bytes")),
                     ratio(b.get("stored_bytes"), st.get("stored_bytes")),
                     Num(v["info"].get("host_clean_acc"), 4),
                     Prop.of(acc.get((v["model"], v["variant"])), "clean_acc")])
    blocks: list[Any] = [
        Para("Parameters and non-zeros of the torch twin, MACs of one inference, the ONNX artifact's size and its "
             "DEFLATE'd size (zlib level 6; seed 002, Table IV); `rate` = base ÷ variant: for the stored parameters "
             "(hashed layers store only their real weights but deploy dense virtual weights), for the ONNX file "
             "after DEFLATE and for the layer weights alone after DEFLATE. `stored (true)`: what a device would hold, "
             "as seed 002 counts it: codebook indices packed to their bit width, the codebook, relative indices of "
             "pruned weights, then DEFLATE (docs/reports.md). Clean accuracy on the host twin and on the first "
             "target."),
        Table("variants", "Variants: size and compression",
              ["model", "variant", "method", "parameters", "params", "non-zeros", "MACs", "ONNX bytes",
               "DEFLATE bytes", "stored (true)", "rate (params)", "rate (ONNX)", "rate (weights)", "rate (stored)",
               "host acc", "device acc [95 % CI]"],
              rows)]
    out = [Section("variants", "Variants: size and compression", blocks)]
    delta = delta_w_section(d)
    if delta is not None:
        out.append(delta)
    with_w = [v for v in d.variants if v["stats"].get("weights")]
    if with_w:
        out.append(Section("weights", "Weights per layer", [
            Para("Range, standard deviation and number of distinct values of each layer's effective weights (seed "
                 "000, Fig. 6: hashing widens the range); the full histograms are in the store (`variants.stats`)."),
            Table("weights", "Weights per layer", ["model", "variant", "layer", "min", "max", "std", "zeros",
                                                   "distinct"],
                  [[v["model"], v["variant"], n, Num(w["min"], 4), Num(w["max"], 4), Num(w["std"], 4),
                    Num(w["zeros"]), w["distinct"]] for v in with_w for n, w in v["stats"]["weights"].items()])],
            level=3))
    return out


def delta_w_section(d: RunData) -> Section | None:
    """The spectral norm of each variant's weight change per layer (seed 003, eq. 2 and Fig. 3); None when no
    variant has it. One column per layer of any variant, in the order the variants list them."""
    deltas = [v for v in d.variants if v["stats"].get("delta_w_spectral")]
    if not deltas:
        return None
    layers = list(dict.fromkeys(n for v in deltas for n in v["stats"]["delta_w_spectral"]))
    return Section("delta_w", "‖ΔW‖₂ per layer", [
        Para("Largest singular value of W_variant − W_parent, the parent being the model the method was applied "
             "to (the base; for a chained variant `a+b`, variant `a`) (seed 003, eq. 2; > 1 marks a layer that "
             "may amplify the quantization error); – where the shapes differ (pruned channels)."),
        Table("delta_w", "‖ΔW‖₂ per layer", ["model", "variant", *layers],
              [[v["model"], v["variant"], *(Num(v["stats"]["delta_w_spectral"].get(n), 4) for n in layers)]
               for v in deltas])], level=3)


def tradeoff_section(has_plots: bool) -> Section | None:
    if not has_plots:
        return None
    return Section("tradeoffs", "Trade-offs", [
        Para("Accuracy and robustness against latency, energy and size; the Pareto front (no other variant is "
             "better on both axes) is marked.")])


def artifacts_section(d: RunData) -> Section | None:
    if not d.artifacts:
        return None
    rows: list[list[Cell]] = []
    for a in d.artifacts:
        ok = {1: "yes", 0: Mark("NO")}.get(a["parity_ok"])
        diff = a["parity_max_abs_diff"]
        rows.append([a["model"], a["variant"], a["format"],
                     str(json.loads(a["card"]).get("provenance", {}).get("precision", "–")), a["size_bytes"],
                     a["sha256"][:12], Num(diff, 8), Num(a["parity_top1_agreement"]), ok])
    return Section("artifacts", "Artifacts and parity", [
        Para("Parity: max |Δlogit| between the artifact's runtime (ONNX Runtime for ONNX, OpenVINO at f32 for IR) "
             "and the torch twin on real test inputs; precision is what the artifact computes in."),
        Table("artifacts", "Artifacts and parity", ["model", "variant", "format", "precision", "size (bytes)",
                                                    "sha256", "max abs Δ", "top-1 agreement", "ok"], rows),
        *imported_boundaries(d.artifacts)])


def imported_boundaries(artifacts: list[dict[str, Any]]) -> list[Para]:
    """One sentence per imported ONNX file on how edgebench runs it (:func:`edgebench.export.onnx_io.describe`)."""
    from edgebench.export.onnx_io import describe

    cards = [(a["model"], json.loads(a["card"]).get("provenance", {})) for a in artifacts]
    return [Para(describe(model, prov["boundary"])) for model, prov in cards if prov.get("boundary")]


def _device_desc(info: dict[str, Any]) -> str:
    if "providers" in info:
        return f"providers {info.get('providers')}, threads {info.get('intra_op_num_threads')}"
    return (f"device {info.get('device')} {info.get('device_name') or ''}".rstrip()
            + f", hint {info.get('performance_hint')}, streams {info.get('num_streams')}, "
              f"threads {info.get('inference_num_threads')}")


def energy_sentence(energy: dict[str, Any] | None) -> str:
    if not energy:
        return "Energy: not measured (the latency pass was off)."
    if energy.get("absent"):
        return f"Energy: not measured ({energy['absent']})."
    sensor = energy.get("sensor") or {}
    name = sensor.get("name", "?") if isinstance(sensor, dict) else sensor
    valid = "valid" if energy.get("valid") else f"**invalid**: {'; '.join(energy.get('invalid_reasons', []))}"
    return (f"Energy: sensor {name}, {energy.get('n_windows')} windows of {fmt_num(energy.get('window_s'), 1)} s "
            f"at {fmt_num(energy.get('sample_rate_hz'), 1)} Hz, idle {fmt_num(energy.get('idle_power_w'), 2)} W "
            f"({valid}).")


def _temperatures(*envs: dict[str, Any]) -> str:
    """The hottest thermal zone (``temperatures_c``, °C) over environment snapshots."""
    temps = [v for env in envs for v in (env.get("temperatures_c") or {}).values() if isinstance(v, int | float)]
    return f"{max(temps):.0f} °C" if temps else "–"


def environment_section(d: RunData) -> Section | None:
    """Devices, runtimes and versions, precision, threads, temperatures before and after, throttling, energy
    protocol, and the plan as resolved."""
    from edgebench.agent.envinfo import throttling_during

    blocks: list[Any] = []
    rows: list[list[Cell]] = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in d.environments:
        groups.setdefault((e["target"], e["backend"]), []).append(e)
    for group in groups.values():
        e = group[0]
        env = e["environment"]
        before, info = env.get("before", {}), e["backend_info"]
        afters = [g["environment"].get("after") or {} for g in group]
        throttled = [f"{unit_label(g['model'], g['variant'])}: {why}"
                     for g in group for why in throttling_during(g["environment"].get("before") or {},
                                                                 g["environment"].get("after") or {})]
        rows.append([e["target"], e["backend"], f"{before.get('cpu_model')} ({before.get('cpu_count')} cpus)",
                     str(before.get("os")), str(before.get("python")),
                     f"{info.get('backend')} {info.get('runtime_version')}", _device_desc(info),
                     str(info.get("precision")), str(before.get("governor")),
                     f"{_temperatures(before)} → {_temperatures(*afters)} ({len(group)} jobs)",
                     Mark("; ".join(throttled)) if throttled else "no", energy_sentence(env.get("energy"))])
    if rows:
        blocks.append(Table("environment", "Devices and runtimes",
                            ["target", "backend", "cpu", "os", "python", "runtime", "device / threads", "precision",
                             "governor", "hottest zone: before → after (max over jobs)", "throttling", "energy"], rows))
    from edgebench.report.hostdevice import host_device_blocks

    blocks += host_device_blocks(d)  # the host's compute device, and which stage ran where when they differ
    if d.plan:
        blocks.append(Code(json.dumps(d.plan, indent=1, sort_keys=True, default=str), "json",
                           "The plan as resolved"))
    run = d.run
    blocks.insert(0, Para(f"Plan `{run.get('plan_name')}` (hash `{(run.get('plan_hash') or '')[:12]}`), edgebench "
                          f"{run.get('edgebench_version')}."))
    return Section("environment", "Environment", blocks)
