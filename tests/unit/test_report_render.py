"""The report renderers on a synthetic store: golden files for Markdown and CSV (run with
EDGEBENCH_UPDATE_GOLDEN=1 to rewrite them after a deliberate change, then read the diff), the summary's
picks, the trust flags, an incomplete run, and the statistics of ``edgebench compare``."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from edgebench.errors import ConfigError, EdgebenchError
from edgebench.metrics.samples import unpack_correct
from edgebench.report.compare import compare_sections
from edgebench.report.data import RunData, unit_label
from edgebench.report.render import build_sections, tables_of, write_report
from edgebench.report.tables import Mark, Table
from edgebench.store import Store
from edgebench.store.sqlite import SCHEMA_VERSION
from tests.fixtures.synthetic import fill_synthetic

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "report"
SIZE = {"variants": 3, "attacks": 2, "eps_grid": 2, "targets": 3, "n": 200}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synthetic") / "results.sqlite"
    with Store.open(path) as store:
        fill_synthetic(store, "golden", **SIZE)
    return path


def _load(path: Path, run_id: str = "golden") -> RunData:
    with Store.open(path, create=False) as store:
        return RunData.load(store, run_id)


def _compare_or_update(produced: Path, golden: Path) -> None:
    if os.environ.get("EDGEBENCH_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(produced.read_text(encoding="utf-8"), encoding="utf-8")
    assert golden.is_file(), f"{golden} missing: run with EDGEBENCH_UPDATE_GOLDEN=1 to create it"
    got, want = produced.read_text(encoding="utf-8").splitlines(), golden.read_text(encoding="utf-8").splitlines()
    first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    assert got == want, (f"{produced.name} differs from {golden} at line {first + 1}:\n"
                         f"  got:  {got[first] if first < len(got) else '<end>'}\n"
                         f"  want: {want[first] if first < len(want) else '<end>'}")


def test_markdown_and_csv_match_the_golden_files(synthetic: Path, tmp_path: Path) -> None:
    with Store.open(synthetic, create=False) as store:
        written = write_report(store, "golden", tmp_path, formats=("md", "csv"))
    assert tmp_path / "report.md" in written
    _compare_or_update(tmp_path / "report.md", GOLDEN / "report.md")
    produced = sorted(p.name for p in (tmp_path / "csv").glob("*.csv"))
    if not os.environ.get("EDGEBENCH_UPDATE_GOLDEN"):
        assert produced == sorted(p.name for p in (GOLDEN / "csv").glob("*.csv"))
    for name in produced:
        _compare_or_update(tmp_path / "csv" / name, GOLDEN / "csv" / name)
    # every plot the Markdown references was written beside it
    refs = [ln.split("](")[1].rstrip(")") for ln in (tmp_path / "report.md").read_text().splitlines()
            if ln.startswith("![")]
    assert refs and all((tmp_path / r).is_file() for r in refs)


def test_csv_holds_raw_numbers_and_intervals(synthetic: Path, tmp_path: Path) -> None:
    d = _load(synthetic)
    with Store.open(synthetic, create=False) as store:
        write_report(store, "golden", tmp_path, formats=("csv",))
    target = d.pairs[0]
    with open(tmp_path / "csv" / f"robustness_{target[0]}_{target[1]}.csv") as f:
        rows = list(csv.DictReader(f))
    stored = {(r["variant"], r["attack"], r["eps"], r["source"]): r for r in d.adversarial
              if (r["target"], r["backend"]) == target}
    assert len(rows) == len(stored)
    for row in rows:
        r = stored[(row["variant"], row["attack"], float(row["eps"]), row["source"])]
        assert float(row["robust_acc"]) == r["robust_acc"] and float(row["robust_acc_lo"]) == r["robust_acc_lo"]
        assert int(row["asr_n"]) == r["asr_n"] and float(row["asr_hi"]) == r["asr_hi"]


def test_summary_picks_the_best_variant_per_target(synthetic: Path) -> None:
    d = _load(synthetic)
    summary = next(b for b in build_sections(d, {})[0].blocks if isinstance(b, Table))
    assert [r[0] for r in summary.rows] == list(dict.fromkeys(r["target"] for r in d.clean))
    for row in summary.rows:
        clean = [r for r in d.clean if r["target"] == row[0]]
        fastest = min(clean, key=lambda r: r["p50_ms"])
        accurate = max(clean, key=lambda r: r["clean_acc"])
        assert row[3].startswith(f"{unit_label(fastest['model'], fastest['variant'])} on")
        assert f"{accurate['clean_acc']:.3f}" in row[1]


def test_every_flag_kind_reaches_the_summary(synthetic: Path) -> None:
    d = _load(synthetic)
    text = "\n".join(i for s in build_sections(d, {}) for b in s.blocks if hasattr(b, "items") for i in b.items)
    for kind in ("parity failure", "suspected gradient masking", "invalid energy window", "thermal throttling"):
        assert kind in text, kind


def test_incomplete_run_marks_what_is_missing(synthetic: Path, tmp_path: Path) -> None:
    d = _load(synthetic)
    target, backend = d.pairs[-1]
    gone = next(r for r in d.clean if r["variant"] != "base")
    with Store.open(tmp_path / "results.sqlite") as store:
        fill_synthetic(store, "golden", **SIZE)
        store.conn.execute("DELETE FROM results WHERE variant=? AND target=? AND backend=?",
                           (gone["variant"], target, backend))
        store.conn.execute("UPDATE runs SET status='interrupted'")
        store.conn.commit()
        text = (write_report(store, "golden", tmp_path, formats=("md",)) and (tmp_path / "report.md").read_text())
    assert "**This run is incomplete (status `interrupted`).**" in text
    missing = text.split("## What did not finish")[1].split("\n## ")[0]
    assert f"{gone['model']}/{gone['variant']} on {target}/{backend}" in missing
    latency = text.split("## Clean accuracy and latency")[1].split("\n## ")[0]
    table = latency.split(f"**{target} / {backend}**")[1].split("\n\n")[1]
    assert f"| {gone['model']} | {gone['variant']} | – | *not measured* |" in table


def test_bad_format_and_newer_schema_are_clear_errors(synthetic: Path, tmp_path: Path) -> None:
    with Store.open(synthetic, create=False) as store, pytest.raises(ConfigError, match="'pdf' is not one of"):
        write_report(store, "golden", tmp_path, formats=("pdf",))
    import shutil
    import sqlite3

    newer = tmp_path / "newer.sqlite"
    shutil.copy(synthetic, newer)
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(EdgebenchError, match=f"schema 99, this edgebench reads {SCHEMA_VERSION}"):
        Store.open(newer, create=False)


def test_compare_pairs_the_same_samples_with_mcnemar(synthetic: Path, tmp_path: Path) -> None:
    """Run B = run A with 30 of one row's robust-correct samples turned wrong: the paired test finds it, the
    rest is identical (p = 1)."""
    a = _load(synthetic)
    with Store.open(tmp_path / "b.sqlite") as store:
        fill_synthetic(store, "golden", **SIZE)
        row = next(s for s in store.samples("golden", "correct") if s["attack"] != "none")
        mask = unpack_correct(row["data"])
        mask[mask.nonzero()[0][:30]] = False
        from edgebench.metrics.samples import pack_correct

        store.put_samples("golden", [{**row, "data": pack_correct(mask, row["data"]["set_sha256"])}])
        store.conn.execute("UPDATE results SET robust_acc=? WHERE model=? AND variant=? AND attack=? AND eps=? AND "
                           "backend=? AND target=? AND source=?", (float(mask.mean()), row["model"], row["variant"],
                                                                   row["attack"], row["eps"], row["backend"],
                                                                   row["target"], row["source"]))
        store.conn.commit()
        b = RunData.load(store, "golden")
    sections = compare_sections(a, b)
    acc = next(t for t in tables_of(sections) if t.name == "compare_accuracy")
    significant = [r for r in acc.rows if isinstance(r[-1], Mark) and r[-1].kind == "plain"]
    assert len(significant) == 1 and significant[0][5] == "robust_acc" and significant[0][9] == "McNemar"
    assert all(r[-1].text == "1 n.s." for r in acc.rows if r[5] != "asr" and r not in significant)
    lat = next(t for t in tables_of(sections) if t.name == "compare_latency")
    assert all(r[4].text == "1.000×" for r in lat.rows)


def test_cli_names_the_runs_that_exist(synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from edgebench.cli import main

    (tmp_path / "golden").mkdir()
    shutil.copy(synthetic, tmp_path / "golden" / "results.sqlite")
    assert main(["report", "nope", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run 'nope' not found" in err[0] and "runs there: golden" in err[0]
    assert main(["runs", "--out", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "golden" in listing and "synthetic" in listing and " done " in listing
    assert main(["report", "golden", "--out", str(tmp_path), "--format", "csv", "--format", "json"]) == 0
    assert (tmp_path / "golden" / "results.json").is_file() and not (tmp_path / "golden" / "report.md").exists()
