"""A run's training seeds added to a results folder written from another run of the same plan (issue 20,
"training seeds"): ``edgebench report RUN --results docs/results/<plan>/ --add-seeds``.

Each seed of a several-seed plan is the one-seed plan of that seed (:mod:`edgebench.runner.seeds`: the same
stage keys, the same test samples), so ``edgebench run PLAN --seeds 1`` on one machine and ``--seeds 2`` on
another compute exactly what ``--seeds 0,1,2`` would, seed for seed. This module puts such runs' summary tables
together, so that the rebuilt tables give the mean over seeds and its t interval as for one several-seed run:

- the two runs must be of one plan apart from its seeds (same name, same ``plan_hash_seedless``, same size) and
  hold different seeds; adding a run already in the folder replaces its rows (a resumed run written again);
- ``clean``, ``robust`` and ``latency`` hold per-seed rows: they are concatenated, with a ``seed`` column (a
  one-seed run's rows get its seed), in the order a several-seed run's files have;
- ``paper`` (the paper comparison, computed over one run's store), ``sizes``, ``amplitude`` and ``delta_w``
  (one seed's variant statistics, as a several-seed run's store keeps them) stay the folder's first run's;
  ``tables_from`` in ``run.json`` says so and their citation names that run alone;
- ``run.json`` keeps the first run's record at its top level and lists every run in ``runs`` (id, seeds,
  commit, command, dates, machine), with ``seeds`` the union.

What a merge cannot give: paired tests across seeds between variants (``bench/paired_variants.py``) need the
per-sample predictions, which live in the stores, not in the folder; run them on each run's store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError
from edgebench.report.data import RunData
from edgebench.report.rebuild import read_results
from edgebench.report.results_files import TABLES, csv_text, results_tables, run_record, sort_key, write_text
from edgebench.store import Store

__all__ = ["MERGED", "add_seeds"]

#: the tables whose rows are per seed, concatenated by a merge
MERGED = ("clean", "robust", "latency")
#: the columns of those tables that hold measured values (the rest, less ``seed``, are a row's key)
_VALUES = {"n", "clean_acc", "robust_acc", "asr", "asr_n", "p50_ms", "p90_ms", "mean_ms", "runs"}
#: the keys of a folder's run.json that describe the folder, not its first run
_FOLDER_KEYS = ("runs", "tables", "tables_from")


def _seeded(header: list[str], rows: list[list[str]], seed: int | None, where: str) -> list[dict[str, str]]:
    """Rows as dicts, each with its ``seed`` (a one-seed run's rows: ``seed``)."""
    out = [dict(zip(header, r, strict=True)) for r in rows]
    if "seed" not in header:
        if seed is None:
            raise ConfigError(f"{where}: its rows carry no seed and its run record names none; write it again "
                              "with edgebench report RUN --results")
        for r in out:
            r["seed"] = str(seed)
    return out


def _one_seed(record: dict[str, Any] | None) -> int | None:
    seeds = (record or {}).get("seeds") or []
    return int(seeds[0]) if len(seeds) == 1 else None


def _merge_rows(old: list[dict[str, str]], new: list[dict[str, str]], header: list[str]) -> list[list[str]]:
    """``old`` and ``new`` in one table, sorted by their key as a several-seed run's table is
    (:func:`~edgebench.report.results_files.sort_key`, ``seed`` in its place), so that the merged files are the
    files ``--seeds 0,1,...`` would have written."""
    key = [c for c in header if not any(c == v or c.startswith(v + "_") for v in _VALUES)]

    def value(text: str) -> float | str:
        try:
            return float(text)
        except ValueError:
            return text

    rows = sorted((*old, *new), key=lambda r: sort_key([value(r.get(c, "")) for c in key]))
    return [header] + [[r.get(c, "") for c in header] for r in rows]


def _with_seed(header: list[str]) -> list[str]:
    if "seed" in header:
        return header
    at = header.index("variant") + 1 if "variant" in header else 0
    return header[:at] + ["seed"] + header[at:]


def add_seeds(store: Store, run_id: str, folder: Path) -> list[Path]:
    """Add run ``run_id``'s seeds to the results folder ``folder`` (see the module); return the files written.
    A folder of another plan or size, or holding the run's seeds from another run, is one line saying which."""
    folder = Path(folder)
    have = read_results(folder)
    if not have.run:
        raise ConfigError(f"{folder}: no run.json to add seeds to; write the first run with edgebench report RUN "
                          f"--results {folder}")
    d = RunData.load(store, run_id)
    rec = run_record(d, store.provenance(run_id))
    runs = list(have.run.get("runs") or [{k: v for k, v in have.run.items() if k not in _FOLDER_KEYS}])
    for k in ("plan", "plan_hash_seedless", "size"):
        if not runs[0].get(k) or runs[0][k] != rec.get(k):
            why = (f"its run.json has no {k} (written before --add-seeds existed): write it again from its run "
                   "with edgebench report RUN --results" if not runs[0].get(k)
                   else f"its {k} is {runs[0][k]!r}, run {run_id}'s is {rec.get(k)!r}: only runs of one plan "
                        "that differ in --seeds alone add up")
            raise ConfigError(f"{folder / 'run.json'}: cannot add run {run_id}: {why}")
    ids = [r["run_id"] for r in runs]
    others = [r for r in runs if r["run_id"] != run_id]
    if not others:
        raise ConfigError(f"{folder}: run {run_id} is the folder's only run: write it with edgebench report "
                          f"{run_id} --results {folder} (without --add-seeds)")
    taken = {int(s) for r in others for s in r.get("seeds") or []}
    if not rec["seeds"] or taken & set(rec["seeds"]):
        raise ConfigError(f"{folder}: cannot add run {run_id}: its seeds {rec['seeds']} are already in the folder "
                          f"(seeds {sorted(taken)} from {', '.join(r['run_id'] for r in others)}); run the plan "
                          "with other --seeds")
    runs = [rec if r["run_id"] == run_id else r for r in runs] + ([] if run_id in ids else [rec])
    first, new_tables = runs[0], results_tables(d)
    out: dict[str, list[list[str]]] = {}
    for name in TABLES:
        cols, new = have.columns.get(name), new_tables.get(name)
        if name not in MERGED:  # the first run's: as the folder holds it, or anew when that run is the one added
            if first is rec and new is not None:
                out[name] = new
            elif first is not rec and cols is not None:
                out[name] = [cols] + [[r.get(c, "") for c in cols] for r in have.tables[name]]
            continue
        old_rows = [] if cols is None else [
            r for r in _seeded(cols, [[r.get(c, "") for c in cols] for r in have.tables[name]],
                               _one_seed(runs[0] if have.run.get("runs") is None else None), str(folder / name))
            if int(r["seed"]) in taken]
        new_rows = _seeded(new[0], new[1:], _one_seed(rec), f"run {run_id}") if new else []
        if not old_rows and not new_rows:
            continue
        header = _with_seed(new[0] if new else cols)
        if cols is not None and new is not None and set(_with_seed(cols)) != set(header):
            raise ConfigError(f"{folder / (name + '.csv')}: its columns differ from run {run_id}'s; write both with "
                              "one edgebench version (edgebench report RUN --results, then --add-seeds)")
        out[name] = _merge_rows(old_rows, new_rows, header)
    commits = {s.get("commit") for r in runs for s in r.get("starts") or [r]}
    record = {**first, "runs": runs, "seeds": sorted({int(s) for r in runs for s in r["seeds"]}),
              "tables": {k: f"{k}.csv" for k in out}, "tables_from": {k: first["run_id"] for k in out
                                                                        if k not in MERGED},
              "commits_differ": len(commits) > 1,
              "status": "done" if all(r.get("status") == "done" for r in runs) else "partial"}
    written = [folder / "run.json"]
    write_text(written[0], json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    for name, rows in out.items():
        written.append(folder / f"{name}.csv")
        write_text(written[-1], csv_text(rows))
    return written

