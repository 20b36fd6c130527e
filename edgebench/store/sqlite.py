"""SQLite results store (``reports/<run-id>/results.sqlite``).

Tables: ``meta`` (schema version), ``runs``, ``stages`` (what finished, for resuming), ``artifacts``
(files, sizes, hashes, parity), ``variants`` (each model and compressed variant: method, parameters, the
method's facts and the statistics of :mod:`edgebench.compress.stats`),
``results`` (one flat record per model × variant × attack × ε × backend × target × source: the source is
the model the adversarial examples were crafted on, so white-box and transfer rows live side by side),
``environments``, ``min_eps`` (per-sample minimal-ε distributions) and ``flags`` (what makes a number
untrustworthy: gradient masking, white-box weaker than transfer) and ``samples`` (per-row distributions too
big for a column: the latency histogram of a device run, and the packed per-sample correctness of every
result row, which lets ``edgebench compare`` pair two runs sample by sample). Every write is one
transaction, keyed so that a resumed run replaces a row instead of duplicating it. WAL mode lets a reader
watch a run in progress. ``results`` and ``samples`` carry the training ``seed`` of each row (schema 7; a run
with several ``[plan] seeds`` has one row per seed, :mod:`edgebench.runner.seeds`). A store of schema 2 to 6
is migrated in place on opening (its rows get the seed of their run's plan); a newer one is refused with the
version that reads it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from edgebench.errors import DiskFullError, EdgebenchError, is_disk_full

SCHEMA_VERSION = 7

#: the variant name of an uncompressed model, as plans name it and the store records it
BASE = "base"

RESULT_KEY = ("model", "variant", "attack", "eps", "backend", "target", "source")
RESULT_FIELDS = (
    "n", "clean_acc", "clean_acc_lo", "clean_acc_hi", "robust_acc", "robust_acc_lo", "robust_acc_hi",
    "asr", "asr_lo", "asr_hi", "asr_n", "host_asr", "deployment_gap", "threat",
    "mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms", "first_ms", "runs", "duration_s",
    "throughput_per_s", "mean_linf", "mean_l2",
    "energy_j", "energy_net_j", "power_w", "idle_power_w", "energy_valid", "robust_delta", "robust_delta_p",
    "rounds", "round_cv", "load_rss_mb", "peak_rss_mb",
)
#: the query columns of a query-based attack's rows (issue 17), added to a store of schema 6 written before them
#: on opening (:func:`_add_missing_fields`): mean and median queries on the samples it fooled, and the budget
QUERY_FIELDS = ("queries_mean", "queries_median", "query_budget")
RESULT_FIELDS += QUERY_FIELDS
#: columns added by schema 4: energy per inference (from the target's power sensor) and the paired comparison
#: of each variant's robust accuracy with its base's
_ENERGY_FIELDS = ("energy_j", "energy_net_j", "power_w", "idle_power_w", "energy_valid", "robust_delta",
                  "robust_delta_p")

_TYPES = {"source": "TEXT", "threat": "TEXT", "n": "INTEGER", "asr_n": "INTEGER", "runs": "INTEGER",
          "energy_valid": "INTEGER", "rounds": "INTEGER", "query_budget": "INTEGER"}

_RESULTS_TABLE = f"""results (
    run_id TEXT, {", ".join(f"{k} {'REAL' if k == 'eps' else 'TEXT'}" for k in RESULT_KEY)},
    {", ".join(f"{f} {_TYPES.get(f, 'REAL')}" for f in RESULT_FIELDS)},
    seed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, seed, {", ".join(RESULT_KEY)}))"""
_SAMPLES_TABLE = """samples (
    run_id TEXT, kind TEXT, model TEXT, variant TEXT, backend TEXT, target TEXT, attack TEXT, eps REAL,
    source TEXT, data TEXT, seed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, seed, kind, model, variant, backend, target, attack, eps, source))"""

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, plan_name TEXT, plan_hash TEXT, plan TEXT, edgebench_version TEXT,
    created REAL, finished REAL, status TEXT);
CREATE TABLE IF NOT EXISTS stages (
    run_id TEXT, stage TEXT, key TEXT, status TEXT, started REAL, finished REAL, info TEXT,
    PRIMARY KEY (run_id, stage));
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT, model TEXT, variant TEXT, format TEXT, path TEXT, sha256 TEXT, size_bytes INTEGER,
    parity_max_abs_diff REAL, parity_top1_agreement REAL, parity_ok INTEGER, card TEXT,
    PRIMARY KEY (run_id, model, variant, format));
CREATE TABLE IF NOT EXISTS variants (
    run_id TEXT, model TEXT, variant TEXT, method TEXT, params TEXT, info TEXT, stats TEXT,
    PRIMARY KEY (run_id, model, variant));
CREATE TABLE IF NOT EXISTS {_RESULTS_TABLE};
CREATE TABLE IF NOT EXISTS environments (
    run_id TEXT, target TEXT, backend TEXT, model TEXT, variant TEXT, backend_info TEXT, environment TEXT,
    PRIMARY KEY (run_id, target, backend, model, variant));
CREATE TABLE IF NOT EXISTS min_eps (
    run_id TEXT, model TEXT, variant TEXT, backend TEXT, target TEXT, attack TEXT, source TEXT, threat TEXT,
    n INTEGER, found INTEGER, p50 REAL, data TEXT,
    PRIMARY KEY (run_id, model, variant, backend, target, attack, source));
CREATE TABLE IF NOT EXISTS flags (
    run_id TEXT, kind TEXT, model TEXT, variant TEXT, backend TEXT, target TEXT, attack TEXT, eps REAL,
    source TEXT, message TEXT, detail TEXT,
    PRIMARY KEY (run_id, kind, model, variant, backend, target, attack, eps, source));
CREATE TABLE IF NOT EXISTS {_SAMPLES_TABLE};
"""


def _migrate_2_to_3(conn: sqlite3.Connection) -> None:
    """Schema 3 adds ``source`` to the results key (transfer rows) and the min_eps and flags tables."""
    fields = [f for f in RESULT_FIELDS if f not in _ENERGY_FIELDS]
    cols = ", ".join(("run_id", *RESULT_KEY, *fields))
    old = ", ".join(("run_id", *(c if c != "source" else "COALESCE(source, model)" for c in RESULT_KEY), *fields))
    conn.execute("ALTER TABLE results RENAME TO results_v2")
    conn.execute(f"CREATE TABLE {_RESULTS_TABLE}")
    conn.execute(f"INSERT INTO results ({cols}) SELECT {old} FROM results_v2")
    conn.execute("DROP TABLE results_v2")
    conn.execute("UPDATE meta SET value='3' WHERE key='schema_version'")


def _migrate_3_to_4(conn: sqlite3.Connection) -> None:
    """Schema 4 adds the energy columns to ``results`` (NULL for rows measured without a sensor)."""
    have = {r[1] for r in conn.execute("PRAGMA table_info(results)")}
    for f in _ENERGY_FIELDS:
        if f not in have:
            conn.execute(f"ALTER TABLE results ADD COLUMN {f} {_TYPES.get(f, 'REAL')}")
    conn.execute("UPDATE meta SET value='4' WHERE key='schema_version'")


def _migrate_4_to_5(conn: sqlite3.Connection) -> None:
    """Schema 5 adds the ``samples`` table (created by the schema script); older runs simply have none, and
    their reports say so where a plot or a paired comparison needs them."""
    conn.execute("UPDATE meta SET value='5' WHERE key='schema_version'")


def _missing_fields(conn: sqlite3.Connection) -> list[str]:
    """The fields of :data:`RESULT_FIELDS` the ``results`` table lacks."""
    have = {r[1] for r in conn.execute("PRAGMA table_info(results)")}
    return [f for f in RESULT_FIELDS if f not in have]


def _add_missing_fields(conn: sqlite3.Connection) -> None:
    for f in _missing_fields(conn):
        conn.execute(f"ALTER TABLE results ADD COLUMN {f} {_TYPES.get(f, 'REAL')}")


def _migrate_5_to_6(conn: sqlite3.Connection) -> None:
    """Schema 6 adds the device-cost columns of issue 16 to ``results`` (NULL for rows written before):
    every field of :data:`RESULT_FIELDS` the table lacks is added, so a later column needs no new step (a
    schema-6 store written before a column existed gets it on opening, too)."""
    _add_missing_fields(conn)
    conn.execute("UPDATE meta SET value='6' WHERE key='schema_version'")


def _migrate_6_to_7(conn: sqlite3.Connection) -> None:
    """Schema 7 adds the training ``seed`` to the key of ``results`` and ``samples``: each table is rebuilt, its
    rows taking the ``seed`` of their run's plan (0 where the plan has none)."""
    _add_missing_fields(conn)
    # the plan's seed read by Python's json, not SQLite's json_extract: a plan may hold an unbounded ε, which
    # Python writes as Infinity and SQLite's JSON parser refuses ("malformed JSON")
    conn.create_function("plan_seed", 1, _plan_seed, deterministic=True)
    seed = "COALESCE((SELECT plan_seed(runs.plan) FROM runs WHERE runs.run_id = old.run_id), 0)"
    for table, create in (("results", _RESULTS_TABLE), ("samples", _SAMPLES_TABLE)):
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        if "seed" in cols:  # made by this schema's script (a store older than the table)
            continue
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_v6")
        conn.execute(f"CREATE TABLE {create}")
        conn.execute(f"INSERT INTO {table} ({', '.join(cols)}, seed) SELECT {', '.join(f'old.{c}' for c in cols)}, "
                     f"{seed} FROM {table}_v6 AS old")
        conn.execute(f"DROP TABLE {table}_v6")
    conn.execute("UPDATE meta SET value='7' WHERE key='schema_version'")


def _plan_seed(text: str | None) -> int | None:
    """``[plan] seed`` of a stored plan's JSON (None where there is none)."""
    try:
        seed = json.loads(text).get("seed") if text else None
    except (ValueError, AttributeError):
        return None
    return seed if isinstance(seed, int) else None


def _version(conn: sqlite3.Connection) -> int | None:
    """The store's schema version; ``None`` for a new file (no ``meta`` table yet)."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    except sqlite3.OperationalError:
        return None
    return int(row[0]) if row else None


def _wal(conn: sqlite3.Connection, tries: int = 50) -> None:
    """Switch to WAL, waiting while another process holds the brand-new file (SQLite answers "locked" at once
    there instead of waiting out the busy timeout)."""
    for i in range(tries):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or i == tries - 1:
                raise
            time.sleep(0.05 * (1 + i % 5))


_MIGRATIONS = {2: _migrate_2_to_3, 3: _migrate_3_to_4, 4: _migrate_4_to_5, 5: _migrate_5_to_6, 6: _migrate_6_to_7}


class Store:
    """One run's results. Open with :meth:`open`; use as a context manager to close it."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Store:
        path = Path(path)
        if not create and not path.is_file():
            raise EdgebenchError(f"{path}: no results store here")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, timeout=30.0)
            conn.row_factory = sqlite3.Row
            _wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            if _version(conn) == SCHEMA_VERSION and not _missing_fields(conn):  # the common case: no write
                return cls(path, conn)
            with conn:
                conn.execute("BEGIN IMMEDIATE")  # one process at a time creates or migrates the schema
                for statement in filter(str.strip, _SCHEMA.split(";")):  # executescript would commit first
                    conn.execute(statement)
                row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                if row is None:
                    conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                elif int(row[0]) == SCHEMA_VERSION:  # written before a later column of RESULT_FIELDS
                    _add_missing_fields(conn)
                elif int(row[0]) in _MIGRATIONS:
                    for version in range(int(row[0]), SCHEMA_VERSION):
                        _MIGRATIONS[version](conn)
                elif int(row[0]) != SCHEMA_VERSION:
                    raise EdgebenchError(f"{path}: results store of schema {row[0]}, this edgebench reads "
                                         f"{SCHEMA_VERSION}; use the edgebench version that wrote it")
        except sqlite3.DatabaseError as exc:
            if is_disk_full(exc):
                raise DiskFullError(f"{path}: the disk is full ({exc}); free space and run the same command "
                                    "again (finished stages are kept)") from None
            raise EdgebenchError(f"{path}: not a readable results store ({exc}); move it away and re-run") from None
        return cls(path, conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # runs -----------------------------------------------------------------------------------------
    def begin_run(self, run_id: str, *, plan_name: str, plan_hash: str, plan: dict[str, Any], version: str) -> None:
        """Record a run starting, or resuming: a resumed run (same plan hash) keeps its creation time and takes the
        plan's latest references and gates, which the hash leaves out."""
        with self.conn:
            self.conn.execute(
                "INSERT INTO runs (run_id, plan_name, plan_hash, plan, edgebench_version, created, status) "
                "VALUES (?, ?, ?, ?, ?, ?, 'running') "
                "ON CONFLICT(run_id) DO UPDATE SET status='running', plan=excluded.plan",
                (run_id, plan_name, plan_hash, json.dumps(plan, default=str), version, time.time()))

    def finish_run(self, run_id: str, status: str) -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET finished=?, status=? WHERE run_id=?", (time.time(), status, run_id))

    def run(self, run_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return dict(row) if row else None

    def add_provenance(self, run_id: str, start: dict[str, Any]) -> None:
        """Append one start of the run (:func:`edgebench.provenance.record`: commit, command, host, time). Kept
        in ``meta`` under ``provenance:<run id>``, so stores of every schema hold it without a migration."""
        with self.conn:
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES (?, '[]')", (f"provenance:{run_id}",))
            self.conn.execute("UPDATE meta SET value=json_insert(value, '$[#]', json(?)) WHERE key=?",
                              (json.dumps(start, default=str), f"provenance:{run_id}"))

    def provenance(self, run_id: str) -> list[dict[str, Any]]:
        """Every start of the run, oldest first (empty for a run recorded before starts were)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (f"provenance:{run_id}",)).fetchone()
        return json.loads(row[0]) if row else []

    # stages ---------------------------------------------------------------------------------------
    def stage(self, run_id: str, stage: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM stages WHERE run_id=? AND stage=?", (run_id, stage)).fetchone()
        if row is None:
            return None
        d = dict(row)
        d["info"] = json.loads(d["info"]) if d["info"] else {}
        return d

    def set_stage(self, run_id: str, stage: str, *, key: str, status: str, info: dict[str, Any] | None = None,
                  started: float | None = None) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO stages VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, stage) DO UPDATE SET "
                "key=excluded.key, status=excluded.status, started=excluded.started, finished=excluded.finished, "
                "info=excluded.info",
                (run_id, stage, key, status, started or time.time(), time.time(), json.dumps(info or {}, default=str)))

    def stages(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM stages WHERE run_id=? ORDER BY started", (run_id,)).fetchall()
        return [dict(r) | {"info": json.loads(r["info"]) if r["info"] else {}} for r in rows]

    # artifacts, environments, results --------------------------------------------------------------
    def put_artifact(self, run_id: str, *, model: str, variant: str, format: str, path: str, sha256: str,
                     size_bytes: int, parity: dict[str, Any], card: dict[str, Any]) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, model, variant, format, path, sha256, size_bytes, parity.get("max_abs_diff"),
                 parity.get("top1_agreement"), None if "ok" not in parity else int(bool(parity["ok"])),
                 json.dumps(card, default=str)))

    def artifacts(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM artifacts WHERE run_id=? ORDER BY model, variant, format",
                                 (run_id,)).fetchall()
        return [dict(r) for r in rows]

    def put_variant(self, run_id: str, *, model: str, variant: str, method: str, params: dict[str, Any],
                    info: dict[str, Any], stats: dict[str, Any]) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO variants VALUES (?, ?, ?, ?, ?, ?, ?)",
                              (run_id, model, variant, method, json.dumps(params, default=str),
                               json.dumps(info, default=str), json.dumps(stats, default=str)))

    def variants(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM variants WHERE run_id=? ORDER BY model, variant != 'base', variant",
                                 (run_id,)).fetchall()
        return [dict(r) | {k: json.loads(r[k]) for k in ("params", "info", "stats")} for r in rows]

    def put_environment(self, run_id: str, *, target: str, backend: str, model: str, variant: str,
                        backend_info: dict[str, Any], environment: dict[str, Any]) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO environments VALUES (?, ?, ?, ?, ?, ?, ?)",
                              (run_id, target, backend, model, variant, json.dumps(backend_info),
                               json.dumps(environment)))

    def environments(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM environments WHERE run_id=? ORDER BY target, backend, model",
                                 (run_id,)).fetchall()
        return [dict(r) | {"backend_info": json.loads(r["backend_info"]), "environment": json.loads(r["environment"])}
                for r in rows]

    def put_results(self, run_id: str, records: list[dict[str, Any]], *, seed: int = 0) -> None:
        """Insert or replace flat result records of training seed ``seed`` (one transaction)."""
        cols = ("run_id", "seed", *RESULT_KEY, *RESULT_FIELDS)
        sql = f"INSERT OR REPLACE INTO results ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        with self.conn:
            self.conn.executemany(sql, [(run_id, seed, *(r.get(c) for c in cols[2:])) for r in records])

    def results(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT * FROM results WHERE run_id=? ORDER BY seed, model, variant, target, backend, attack, source, eps",
            (run_id,)).fetchall()
        return [dict(r) for r in rows]

    def put_min_eps(self, run_id: str, records: list[dict[str, Any]]) -> None:
        """Minimal-ε distributions: key columns, the summary's n, found and median, the rest as JSON."""
        key = ("model", "variant", "backend", "target", "attack", "source")
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO min_eps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *(r[k] for k in key), r.get("threat"), r["n"], r["found"], r["p50"],
                  json.dumps({k: v for k, v in r.items() if k not in key})) for r in records])

    def min_eps(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM min_eps WHERE run_id=? ORDER BY model, variant, target, backend, "
                                 "attack, source", (run_id,)).fetchall()
        return [{k: r[k] for k in r.keys() if k != "data"} | json.loads(r["data"]) for r in rows]

    def put_flags(self, run_id: str, flags: list[dict[str, Any]]) -> None:
        """Trust flags (gradient masking, white-box below transfer, healthy-gradient notes)."""
        key = ("kind", "model", "variant", "backend", "target", "attack", "eps", "source")
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO flags VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *(f.get(k, "") for k in key), f["message"], json.dumps(f.get("detail", {}), default=str))
                 for f in flags])

    def flags(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM flags WHERE run_id=? ORDER BY kind, model, variant, backend, target,"
                                 " attack, eps", (run_id,)).fetchall()
        return [dict(r) | {"detail": json.loads(r["detail"])} for r in rows]

    def put_samples(self, run_id: str, records: list[dict[str, Any]], *, seed: int = 0) -> None:
        """Per-row distributions: ``kind`` (``latency``: a histogram of the timed inferences; ``correct``: the
        packed per-sample correctness of a result row; ``rounds``: the per-round medians and thermal state of
        interleaved latency rounds; ``profile``: the device run's per-operator profile,
        :func:`edgebench.agent.profile.summarize`; ``suite``: which attacks of a suite broke which samples,
        :mod:`edgebench.runner.suite`; ``bpda``: the steps BPDA replaced in a twin, :mod:`edgebench.attacks.bpda`;
        ``queries``: a query attack's queries per sample and which samples it fooled,
        :func:`edgebench.runner.query.query_sample`), the result key, the training ``seed`` and ``data`` (JSON)."""
        key = ("kind", "model", "variant", "backend", "target", "attack", "eps", "source")
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *(r.get(k, "") for k in key), json.dumps(r["data"], default=str), seed) for r in records])

    def samples(self, run_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM samples WHERE run_id=?" + ("" if kind is None else " AND kind=?")
        rows = self.conn.execute(sql + " ORDER BY seed, kind, model, variant, target, backend, attack, source, eps",
                                 (run_id,) if kind is None else (run_id, kind)).fetchall()
        return [dict(r) | {"data": json.loads(r["data"])} for r in rows]

    @staticmethod
    def run_ids(path: Path) -> list[str]:
        """The run ids a store file holds, without migrating it (for listing)."""
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
        try:
            return [r[0] for r in conn.execute("SELECT run_id FROM runs ORDER BY created")]
        finally:
            conn.close()
