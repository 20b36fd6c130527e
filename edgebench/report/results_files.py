"""A run's summary tables as small files to keep in the repository (issue 20, "traceable"):
``edgebench report RUN --results docs/results/<plan>/`` writes, from the run's store alone,

- ``run.json``: run id, plan name and hash, quick or full size, status, dates, the edgebench commit and the
  command line of every start (:mod:`edgebench.provenance`), the machines (host, host compute device, targets),
  the training seeds (a one-seed run's: its plan's seed), and ``plan_hash_seedless``, the plan's hash without
  them (runs of one plan with different ``--seeds`` share it: :mod:`edgebench.report.results_merge` adds one
  such run's seeds to a folder);
- ``clean.csv``: clean accuracy per model × variant (× seed) × target × backend, with n and the 95 % Wilson
  interval;
- ``robust.csv``: robust accuracy and attack success per victim × attack × ε × source (× seed) × target ×
  backend, each with its interval and n;
- ``paper.csv``: the report's "Paper vs edgebench" table (the plan's ``[[reference]]`` rows), as the report
  computes it (:func:`edgebench.report.sections.reference_section`);
- ``sizes.csv``: parameters, non-zeros, the ONNX file and its DEFLATE'd size, and the true stored size (packed
  bit widths, codebook, sparse index, DEFLATE; seed 002) per model × variant;
- ``latency.csv``: batch-1 latency (p50, p90, mean, runs) per model × variant × target × backend;
- ``amplitude.csv``: the report's "Weight range and gradient amplitude per variant" table (Liu et al. 2018,
  Figs. 6, 7, 9; :func:`edgebench.report.amplitude.amplitude_section`): rate, τ, weight range and the clean
  input-gradient bands per variant, of the first training seed (the store keeps one seed's variant statistics
  and gradient checks);
- ``delta_w.csv``: the report's "‖ΔW‖₂ per layer" table (Song et al. 2020, eq. 2 and Fig. 3;
  :func:`edgebench.report.sections.delta_w_section`): the spectral norm of each variant's weight change per
  layer, of the first training seed (as ``amplitude``).

Kilobytes, never artifacts. Deterministic: rows sorted by their key, every float written with a fixed format
(:func:`cell`), JSON with sorted keys, so rewriting the files from the same store changes no byte and a
new run's diff shows exactly what moved. A hand-written ``verdicts.toml`` in the same folder
(:mod:`edgebench.report.verdicts`) is never touched. :mod:`edgebench.report.rebuild` turns the folder back
into Markdown tables without the store.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgebench.report.amplitude import amplitude_section
from edgebench.report.data import BASE, RunData
from edgebench.report.hostdevice import device_label
from edgebench.report.sections import delta_w_section, reference_section
from edgebench.report.tables import Mark, Section, Table, cell_text, csv_key, csv_rows
from edgebench.specs import plan_digest
from edgebench.store import Store

__all__ = ["TABLES", "cell", "csv_text", "results_tables", "run_record", "sort_key", "write_results",
           "write_text"]

#: the tables of a results folder, in the order the rebuild shows them (file ``<name>.csv``)
TABLES = ("clean", "robust", "paper", "sizes", "latency", "amplitude", "delta_w")

_PROPS = ("clean_acc", "robust_acc", "asr")
_PROP_KEYS = {f"{p}{s}" for p in _PROPS for s in ("", "_lo", "_hi")}
_MS = {"p50_ms", "p90_ms", "p99_ms", "mean_ms"}


def cell(key: str, v: Any) -> str:
    """A value as written to a results CSV: proportions with 6 decimals, milliseconds with 4, ε with ``g``
    (as plans write it), integers as they are, other floats with 6 significant digits; missing is empty."""
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if key in _PROP_KEYS:  # 6 decimals: the 3 the tables show come out as the report's (no double rounding)
            return f"{v:.6f}"
        if key in _MS:
            return f"{v:.4f}"
        if key == "eps":
            return f"{v:g}"
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.6g}"
    return str(v)


def _seeded(rows: Iterable[dict[str, Any]]) -> bool:
    """Whether the rows carry a training seed (plans with ``[plan] seeds``); a single-seed store has none."""
    return any(r.get("seed") is not None for r in rows)


def sort_key(values: list[Any]) -> tuple[Any, ...]:
    """Numbers before text, numbers by value: a stable order whatever the types."""
    return tuple((0, v, "") if isinstance(v, int | float) and not isinstance(v, bool) else (1, 0, str(v or ""))
                 for v in values)


def _table(rows: list[dict[str, Any]], key: list[str], fields: list[str]) -> list[list[str]]:
    """Header and rows sorted by ``key``, each value formatted by :func:`cell`."""
    body = sorted(([r.get(k) for k in key + fields] for r in rows), key=lambda vals: sort_key(vals[:len(key)]))
    names = key + fields
    return [names] + [[cell(n, v) for n, v in zip(names, vals, strict=True)] for vals in body]


def _all_seeds(d: RunData) -> list[dict[str, Any]]:
    """Every result row: each seed's, with its ``seed``, in a several-seed run (the report's sections read the
    first seed's alone, :class:`~edgebench.report.data.RunData`), else the run's rows."""
    return d.seed_results or d.results


def _clean(d: RunData) -> list[list[str]]:
    rows = [r for r in _all_seeds(d) if r["attack"] == "none"]
    seed = ["seed"] if _seeded(rows) else []
    return _table(rows, ["model", "variant", *seed, "target", "backend"],
                  ["n", "clean_acc", "clean_acc_lo", "clean_acc_hi"])


def _robust(d: RunData) -> list[list[str]]:
    rows = [r for r in _all_seeds(d) if r["attack"] != "none"]
    seed = ["seed"] if _seeded(rows) else []
    return _table(rows, ["model", "variant", *seed, "attack", "eps", "threat", "source", "target", "backend"],
                  ["n", "robust_acc", "robust_acc_lo", "robust_acc_hi", "asr", "asr_lo", "asr_hi", "asr_n"])


def _latency(d: RunData) -> list[list[str]]:
    rows = [r for r in _all_seeds(d) if r["attack"] == "none" and r.get("p50_ms") is not None]
    seed = ["seed"] if _seeded(rows) else []
    return _table(rows, ["model", "variant", *seed, "target", "backend"], ["p50_ms", "p90_ms", "mean_ms", "runs"])


def _sizes(d: RunData) -> list[list[str]]:
    seed = ["seed"] if _seeded(d.variants) else []
    base_stored = {(v["model"], v.get("seed")): v["stats"].get("stored_bytes") for v in d.variants
                   if v["variant"] == BASE}
    rows = []
    for v in d.variants:
        st = v["stats"] if isinstance(v.get("stats"), dict) else {}
        onnx = (st.get("artifacts") or {}).get("onnx") or {}
        stored, base = st.get("stored_bytes"), base_stored.get((v["model"], v.get("seed")))
        rows.append({"model": v["model"], "variant": v["variant"], "seed": v.get("seed"), "method": v["method"],
                     "params": st.get("params"), "nonzeros": st.get("nonzeros"),
                     "onnx_bytes": onnx.get("size_bytes"), "onnx_deflate_bytes": onnx.get("deflate_bytes"),
                     "stored_bytes": stored, "rate_stored": base / stored if base and stored else None})
    return _table(rows, ["model", "variant", *seed], ["method", "params", "nonzeros", "onnx_bytes",
                                                      "onnx_deflate_bytes", "stored_bytes", "rate_stored"])


def shown_rows(t: Table) -> list[list[str]]:
    """A report table as CSV rows: the raw values (:func:`~edgebench.report.tables.csv_rows`), each number
    written by :func:`cell`, and beside every column that shows a text other than its value (a measured
    proportion with its interval, "not measured") a ``<column>_shown`` column with that text, so that the
    rebuild shows what the report shows."""
    raw = csv_rows(t)
    header, body = raw[0], raw[1:]
    marked = [i for i in range(len(t.columns)) if any(isinstance(r[i], Mark) and r[i].value is not None
                                                      for r in t.rows)]
    names = list(header) + [f"{csv_key(t.columns[i])}_shown" for i in marked]
    out = [names]
    for src, vals in zip(t.rows, body, strict=True):
        out.append([cell(n, v) if not isinstance(v, str) else v for n, v in zip(header, vals, strict=True)]
                   + [cell_text(src[i]).replace("*", "") for i in marked])
    return out


def _section_table(section: Section | None) -> list[list[str]] | None:
    """The first table of a report section as CSV rows (:func:`shown_rows`); None without one."""
    tables = [b for b in section.blocks if isinstance(b, Table)] if section is not None else []
    return shown_rows(tables[0]) if tables else None


def results_tables(d: RunData) -> dict[str, list[list[str]]]:
    """The results folder's tables (header first, every value a string), by name (:data:`TABLES`); a run
    without ``[[reference]]`` rows has no ``paper`` table, one without weight statistics or gradient checks no
    ``amplitude`` table, one without a weight change (no compressed or defended variant) no ``delta_w``."""
    out = {"clean": _clean(d), "robust": _robust(d), "paper": _section_table(reference_section(d)),
           "sizes": _sizes(d), "latency": _latency(d), "amplitude": _section_table(amplitude_section(d)),
           "delta_w": _section_table(delta_w_section(d))}
    return {k: v for k, v in out.items() if v is not None}


def _size(name: str, plan: dict) -> str:
    """``quick`` (the plan's ``[quick]`` size), ``subset`` (a plan of its own that trains or tests on part of the
    data set) or ``full``: read from the stored plan's data sizes, not only from its name."""
    data = plan.get("data") or {}
    if name.endswith("-quick") and plan.get("quick"):
        return "quick"
    return "subset" if data.get("n_train") is not None or data.get("n_test") is not None else "full"


def _iso(t: float | None) -> str | None:
    return None if t is None else _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_record(d: RunData, starts: list[dict[str, Any]]) -> dict[str, Any]:
    """``run.json``: who made the numbers, with what, where and when (``starts``: the store's provenance)."""
    run, last = d.run, (starts[-1] if starts else {})
    name = str(run.get("plan_name") or d.plan.get("name") or "")
    seeds = sorted({r["seed"] for r in (*d.results, *d.variants) if r.get("seed") is not None})
    if not seeds:  # a one-seed run's rows carry no seed: its plan's
        seeds = list(d.plan.get("seeds") or ([d.plan["seed"]] if d.plan.get("seed") is not None else []))
    host_devices = sorted({device_label(s["info"]["device"]) for s in d.stages
                           if isinstance(s.get("info"), dict) and isinstance(s["info"].get("device"), dict)})
    targets = {}
    for e in d.environments:
        before, info = (e.get("environment") or {}).get("before") or {}, e.get("backend_info") or {}
        targets[(e["target"], e["backend"])] = {
            "target": e["target"], "backend": e["backend"], "cpu": before.get("cpu_model"),
            "cpus": before.get("cpu_count"), "os": before.get("os"), "python": before.get("python"),
            "runtime": f"{info.get('backend')} {info.get('runtime_version')}"}
    commits = list(dict.fromkeys(s.get("commit") for s in starts))
    return {
        "run_id": d.run_id, "plan": name, "plan_hash": run.get("plan_hash"),
        "plan_hash_seedless": plan_digest(d.plan, seeds=False) if d.plan else None,
        "size": _size(name, d.plan), "status": run.get("status"),
        "edgebench_version": run.get("edgebench_version"),
        "commit": last.get("commit"), "command": last.get("command"),
        "commits_differ": len(commits) > 1,
        "starts": [{"commit": s.get("commit"), "command": s.get("command"), "started": _iso(s.get("started"))}
                   for s in starts],
        "created": _iso(run.get("created")), "finished": _iso(run.get("finished")),
        "machine": {"host": last.get("host"), "host_devices": host_devices,
                    "targets": [targets[k] for k in sorted(targets)]},
        "seeds": seeds,
        "test_samples": max((int(r["n"]) for r in d.clean if r.get("n")), default=None),
    }


def csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically; an unchanged file is left as it is (its time too)."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return  # unchanged: keep the file's time too
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_results(store: Store, run_id: str, folder: Path) -> list[Path]:
    """Write the run's results files into ``folder`` (created); remove a table file an earlier writing left
    that this run has not (its ``paper.csv`` when the plan lost its references); return the files written."""
    d = RunData.load(store, run_id)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tables = results_tables(d)
    record = run_record(d, store.provenance(run_id)) | {"tables": {k: f"{k}.csv" for k in tables}}
    written = [folder / "run.json"]
    write_text(written[0], json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    for name, rows in tables.items():
        written.append(folder / f"{name}.csv")
        write_text(written[-1], csv_text(rows))
    for name in TABLES:
        if name not in tables and (folder / f"{name}.csv").is_file():
            (folder / f"{name}.csv").unlink()
    return written

