"""Finding stored runs: ``reports/<run-id>/results.sqlite``, one store per run folder."""

from __future__ import annotations

import datetime as _dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from edgebench.errors import EdgebenchError
from edgebench.report.data import RunData
from edgebench.store import Store


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    folder: Path
    plan_name: str | None
    plan_hash: str | None
    status: str | None
    created: float | None
    finished: float | None
    version: str | None
    results: int
    pairs: list[str]
    problem: str | None = None  #: why the store could not be read (the listing still shows the folder)

    @property
    def when(self) -> str:
        if self.created is None:
            return "–"
        return _dt.datetime.fromtimestamp(self.created, _dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _read(db: Path) -> RunInfo:
    """A run's summary, read-only and without migrating its store (listing must never change a store)."""
    folder = db.parent
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
        try:
            row = conn.execute("SELECT run_id, plan_name, plan_hash, status, created, finished, edgebench_version "
                               "FROM runs ORDER BY created DESC LIMIT 1").fetchone()
            version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            n = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            pairs = [f"{t}/{b}" for t, b in conn.execute("SELECT DISTINCT target, backend FROM results")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return RunInfo(folder.name, folder, None, None, None, None, None, None, 0, [], f"unreadable store ({exc})")
    if row is None:
        return RunInfo(folder.name, folder, None, None, "empty", None, None, None, 0, [], "no run recorded")
    problem = None if version is None else (None if version[0].isdigit() else f"schema {version[0]}")
    return RunInfo(row[0], folder, row[1], row[2], row[3], row[4], row[5], row[6], int(n), pairs, problem)


def list_runs(out: Path) -> list[RunInfo]:
    """Every run folder under ``out`` (newest first)."""
    infos = [_read(db) for db in sorted(Path(out).glob("*/results.sqlite"))]
    return sorted(infos, key=lambda r: r.created or 0.0, reverse=True)


def resolve_run(name: str | Path, out: Path) -> Path:
    """The store of a run given by its id (a folder under ``out``), its folder or its ``results.sqlite``; a clear
    error naming the runs that exist otherwise."""
    if Path(name).is_file():
        return Path(name)
    run_dir = Path(name)
    if not (run_dir / "results.sqlite").is_file():
        run_dir = Path(out) / str(name)
    db = run_dir / "results.sqlite"
    if not db.is_file():
        existing = sorted(p.parent.name for p in Path(out).glob("*/results.sqlite"))
        raise EdgebenchError(f"run {str(name)!r} not found under {out}; runs there: "
                             f"{', '.join(existing) if existing else 'none'} (edgebench runs lists them; --out DIR "
                             "looks elsewhere)")
    return db


def open_run(run: str | Path, out: str | Path = "reports") -> RunData:
    """A stored run's records (:class:`~edgebench.report.data.RunData`: results, variants, artifacts,
    environments, minimal ε, flags, stages, samples, the plan), read from its store alone. ``run`` is a run id (a
    folder under ``out``), a run folder or its ``results.sqlite``."""
    db = resolve_run(run, Path(out))
    with Store.open(db, create=False) as store:
        run_ids = [r["run_id"] for r in store.conn.execute("SELECT run_id FROM runs")]
        return RunData.load(store, db.parent.name if db.parent.name in run_ids or not run_ids else run_ids[-1])
