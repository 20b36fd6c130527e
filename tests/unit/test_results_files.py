"""A run's results folder (issue 20, "traceable"): the writer (:mod:`edgebench.report.results_files`) on a
synthetic store, the rebuild of the Markdown tables from the files alone (:mod:`edgebench.report.rebuild`),
seeds grouped with their t interval, the document markers, and the run's provenance in the store."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import pytest

from edgebench.cli import main
from edgebench.errors import ConfigError
from edgebench.provenance import code_commit, command_line
from edgebench.report.data import RunData
from edgebench.report.rebuild import folder_markdown, read_results, seed_interval, table_markdown, update_doc
from edgebench.report.results_files import _size, cell, results_tables, write_results
from edgebench.report.tables import csv_key
from edgebench.specs import plan_digest
from edgebench.store import Store
from tests.fixtures.synthetic import fill_synthetic

RUN = "syn"
START = {"commit": "abc1234", "command": "edgebench run plans/x.toml --quick", "host": {"cpu": "test"},
         "started": 1_700_000_100.0}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    st = Store.open(tmp_path / "run" / "results.sqlite")
    fill_synthetic(st, RUN, variants=3, attacks=2, eps_grid=2, targets=1, n=200)
    st.add_provenance(RUN, START)
    yield st
    st.close()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_cell_formats_are_fixed() -> None:
    assert cell("clean_acc", 0.96899999) == "0.969000" and cell("clean_acc_hi", 0.0215449) == "0.021545"
    assert cell("asr_lo", 0.0) == "0.000000"
    assert cell("eps", 0.1) == "0.1" and cell("eps", 1 / 255) == "0.00392157"
    assert cell("p50_ms", 0.123456) == "0.1235"
    assert cell("n", 200) == "200" and cell("params", 1234.0) == "1234"
    assert cell("rate_stored", 2 / 3) == "0.666667"
    assert cell("x", None) == "" and cell("x", float("nan")) == ""


def test_writes_the_store_values_sorted_and_byte_stable(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "res"
    paths = write_results(store, RUN, out)
    assert sorted(p.name for p in paths) == ["amplitude.csv", "clean.csv", "delta_w.csv", "latency.csv",
                                             "robust.csv", "run.json", "sizes.csv"]
    d = RunData.load(store, RUN)
    clean = _rows(out / "clean.csv")
    assert len(clean) == len(d.clean) == 3
    for r in d.clean:
        (row,) = [c for c in clean if (c["model"], c["variant"]) == (r["model"], r["variant"])]
        assert row["clean_acc"] == f"{r['clean_acc']:.6f}" and row["n"] == str(r["n"])
        assert row["clean_acc_lo"] == f"{r['clean_acc_lo']:.6f}" and row["clean_acc_hi"] == f"{r['clean_acc_hi']:.6f}"
    robust = _rows(out / "robust.csv")
    assert len(robust) == len([r for r in d.results if r["attack"] != "none"])
    keys = [(r["model"], r["variant"], r["attack"], float(r["eps"]), r["threat"], r["source"]) for r in robust]
    assert keys == sorted(keys)
    some = next(r for r in d.adversarial if r["threat"] == "transfer")
    (row,) = [r for r in robust if (r["variant"], r["attack"], float(r["eps"]), r["threat"]) ==
              (some["variant"], some["attack"], some["eps"], "transfer")]
    assert row["asr"] == f"{some['asr']:.6f}" and row["asr_n"] == str(some["asr_n"])
    sizes = {r["variant"]: r for r in _rows(out / "sizes.csv")}
    assert sizes["base"]["rate_stored"] == "1"
    stored = {v["variant"]: v["stats"]["stored_bytes"] for v in d.variants}
    assert sizes["int8"]["stored_bytes"] == str(stored["int8"])
    assert float(sizes["int8"]["rate_stored"]) == pytest.approx(stored["base"] / stored["int8"], rel=1e-5)
    lat = _rows(out / "latency.csv")
    assert {r["p50_ms"] for r in lat} == {f"{r['p50_ms']:.4f}" for r in d.clean}
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    write_results(store, RUN, out)
    write_results(store, RUN, tmp_path / "again")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert {p.name: p.read_bytes() for p in (tmp_path / "again").iterdir()} == before
    # Liu et al. Figs. 6, 7, 9: the weight range per variant, as the report's section computes it
    amp = {r["variant"]: r for r in _rows(out / "amplitude.csv")}
    assert set(amp) == {v["variant"] for v in d.variants}
    assert amp["base"]["max_w_base"] == "1" and amp["base"]["max_w_base_shown"] == "1.00×"
    w = d.variants[[v["variant"] for v in d.variants].index("int8")]["stats"]["weights"]
    assert float(amp["int8"]["max_w"]) == pytest.approx(max(max(abs(x["min"]), abs(x["max"])) for x in w.values()),
                                                        rel=1e-5)
    # Song et al. eq. 2 / Fig. 3: ||W_variant - W_parent||_2 per layer, one row per variant that changed weights
    delta = {r["variant"]: r for r in _rows(out / "delta_w.csv")}
    changed = {v["variant"]: v["stats"]["delta_w_spectral"] for v in d.variants if v["stats"].get("delta_w_spectral")}
    assert set(delta) == set(changed) and "base" not in delta
    for variant, layers in changed.items():
        shown = {k: delta[variant][csv_key(k)] for k in layers}
        assert {k for k, v in shown.items() if v == ""} == {k for k, v in layers.items() if v is None}  # pruned
        assert {k: float(v) for k, v in shown.items() if v} == pytest.approx(
            {k: v for k, v in layers.items() if v is not None}, rel=1e-5)
    assert sum(len(b) for b in before.values()) < 20_000  # kilobytes, never artifacts


def test_the_size_comes_from_the_stored_data_sizes_not_the_name_alone() -> None:
    quick = {"data": {"n_train": 3000, "n_test": 1000}, "quick": {"n_train": 3000}}
    assert _size("p-quick", quick) == "quick"
    assert _size("p", {"data": {"n_train": None, "n_test": None}}) == "full"
    assert _size("p", {"data": {"n_train": 5000, "n_test": None}}) == "subset"
    assert _size("mine-quick", {"data": {"n_train": None}}) == "full"  # a plan of its own named ...-quick


def test_run_json_carries_provenance(store: Store, tmp_path: Path) -> None:
    write_results(store, RUN, tmp_path / "res")
    rec = json.loads((tmp_path / "res" / "run.json").read_text())
    assert rec["run_id"] == RUN and rec["plan"] == "synthetic" and rec["size"] == "subset"
    assert rec["commit"] == "abc1234" and rec["command"] == START["command"] and not rec["commits_differ"]
    assert rec["starts"] == [{"commit": "abc1234", "command": START["command"], "started": "2023-11-14T22:15:00Z"}]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rec["created"])
    assert rec["machine"]["host"] == {"cpu": "test"}
    assert rec["machine"]["targets"][0]["target"] == "local" and rec["test_samples"] == 200
    # a one-seed run's rows carry no seed: its plan's is recorded, and the plan's hash without it
    plan = RunData.load(store, RUN).plan
    assert rec["seeds"] == [plan["seed"]] and rec["tables"]["clean"] == "clean.csv"
    assert rec["plan_hash_seedless"] == plan_digest({**plan, "seed": plan["seed"] + 1}, seeds=False)
    assert rec["plan_hash_seedless"] != plan_digest(plan)
    store.add_provenance(RUN, START | {"commit": "def5678-dirty", "started": 1_700_000_200.0})
    write_results(store, RUN, tmp_path / "res")
    rec = json.loads((tmp_path / "res" / "run.json").read_text())
    assert rec["commit"] == "def5678-dirty" and rec["commits_differ"] and len(rec["starts"]) == 2
    assert "resumed" in table_markdown(read_results(tmp_path / "res"), "clean")


def test_rebuild_shows_the_files_values_and_cites_the_run(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "res"
    write_results(store, RUN, out)
    md = folder_markdown(out)
    d = RunData.load(store, RUN)
    base = next(r for r in d.clean if r["variant"] == "base")
    assert (f"| liu | {base['clean_acc']:.3f} [{base['clean_acc_lo']:.3f}, {base['clean_acc_hi']:.3f}] | "
            f"{base['n']} |") in md
    cite = f"*Run `{RUN}` (subset size, status done, 2023-11-14), edgebench `abc1234`, `{START['command']}`"
    assert md.count(cite) == 6  # clean, robust, sizes, latency, amplitude, delta_w
    assert "### Spectral norm of the weight change per layer" in md
    assert "| model | variant | init | rate | τ | max \\|w\\| | max \\|w\\| × base |" in md
    assert "on local/onnxruntime" in md  # the constant target and backend leave the columns for the citation
    one = table_markdown(read_results(out), "robust", {"attack": ["pgd"], "eps": ["0.30"], "threat": ["white-box"]})
    lines = [ln for ln in one.splitlines() if ln.startswith("| liu")]
    assert len(lines) == 3 and all("| pgd | 0.3 |" in ln for ln in lines)


def test_seeds_give_the_mean_and_t_interval(tmp_path: Path, store: Store) -> None:
    mean, lo, hi = seed_interval([0.90, 0.92, 0.94])
    assert mean == pytest.approx(0.92)
    half = 4.302652729911275 * 0.02 / 3 ** 0.5  # t(0.975, 2) · s / √k
    assert (lo, hi) == (pytest.approx(0.92 - half), pytest.approx(0.92 + half))
    assert seed_interval([0.5]) == (0.5, None, None)
    # a proportion's interval stops at 1, as the report's does (two seeds: t(0.975, 1) = 12.7)
    mean, lo, hi = seed_interval([0.928, 0.964])
    assert mean == pytest.approx(0.946) and lo == pytest.approx(0.946 - 12.7062047 * 0.018) and hi == 1.0
    # the writer: a seed column appears when the store's rows carry a seed
    d = RunData.load(store, RUN)
    d.results = [r | {"seed": s} for r in d.results for s in (0, 1)]
    clean = results_tables(d)["clean"]
    assert clean[0][:3] == ["model", "variant", "seed"] and [r[2] for r in clean[1:3]] == ["0", "1"]
    # the rebuild: one row per unit, the mean over seeds with its t interval, each seed's value
    folder = tmp_path / "seeded"
    write_results(store, RUN, folder)
    rows = [["model", "variant", "seed", "target", "backend", "n", "clean_acc", "clean_acc_lo", "clean_acc_hi"]]
    rows += [["m", "base", str(s), "local", "onnxruntime", "100", f"{v:.6f}", f"{v - 0.05:.6f}", f"{v + 0.04:.6f}"]
             for s, v in enumerate((0.90, 0.92, 0.94))]
    with (folder / "clean.csv").open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    md = table_markdown(read_results(folder), "clean")
    assert "| unit | seeds | n (per seed) | clean_acc: mean [t 95 %] | clean_acc per seed [95 % CI] |" in md
    assert (f"| m | 3 | 100 | 0.920 [{0.92 - half:.3f}, {0.92 + half:.3f}] | 0: 0.900 [0.850, 0.940]; "
            "1: 0.920 [0.870, 0.960]; 2: 0.940 [0.890, 0.980] |") in md
    # a seed column with one seed: the rows as they are, with their Wilson interval
    with (folder / "clean.csv").open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows[:2])
    assert "| m | 0.900 [0.850, 0.940] | 100 |" in table_markdown(read_results(folder), "clean")


DOC = """# Reproductions

Intro kept as it is.

<!-- results:syn:clean -->
stale text
<!-- /results -->

Between the tables.

<!-- results:syn:robust attack=fgsm eps=0.05 -->
<!-- /results -->
Tail.
"""


def test_the_real_page_has_no_stray_marker() -> None:
    """docs/reproductions.md mentions the markers in its text; only real markers (a plan name) are rewritten."""
    page = Path(__file__).resolve().parents[2] / "docs" / "reproductions.md"
    before = page.read_text()
    blocks, changed = update_doc(page, check=True)
    assert not changed and page.read_text() == before
    assert blocks == before.count("<!-- /results -->") - 1  # the paragraph's own mention of the end marker


def test_update_doc_replaces_only_between_markers(store: Store, tmp_path: Path) -> None:
    write_results(store, RUN, tmp_path / "docs" / "results" / "syn")
    doc = tmp_path / "docs" / "reproductions.md"
    doc.write_text(DOC)
    assert update_doc(doc, check=True) == (2, True) and doc.read_text() == DOC  # --check writes nothing
    assert update_doc(doc) == (2, True)
    text = doc.read_text()
    assert "stale text" not in text and "Intro kept as it is." in text and "Between the tables." in text
    assert text.endswith("<!-- /results -->\nTail.\n")
    robust = text.split("<!-- results:syn:robust attack=fgsm eps=0.05 -->")[1]
    assert robust.count("| fgsm | 0.05 |") == 5 and "| pgd |" not in robust
    assert "; [results/syn/robust.csv](results/syn/robust.csv).*" in robust  # a link from the document
    assert update_doc(doc) == (2, False)  # idempotent
    assert main(["report", "--update-doc", str(doc), "--check"]) == 0


@pytest.mark.parametrize(("doc", "message"), [
    ("<!-- results:syn:clean -->\nno end\n", "doc.md:1: marker <!-- results:syn:clean --> has no <!-- /results -->"),
    ("x\n<!-- results:syn:cleen -->\n<!-- /results -->\n", "doc.md:2: no table 'cleen'; tables: clean, robust"),
    ("<!-- results:syn:robust atack=fgsm -->\n<!-- /results -->\n", "doc.md:1: no column 'atack' to select rows"),
    ("<!-- results:syn:robust attack=cw -->\n<!-- /results -->\n", "doc.md:1: no row of robust.csv matches"),
    ("<!-- results:syn:robust attack -->\n<!-- /results -->\n", "doc.md:1: 'attack' is not COLUMN=VALUE"),
    ("<!-- results:nope:clean -->\n<!-- /results -->\n", "results/nope: no run.json here"),
    ("<!-- results:syn:paper -->\n<!-- /results -->\n", "has no paper.csv (the run has no such table: no [[ref"),
    ("<!-- results:syn:verdicts -->\n<!-- /results -->\n", "verdicts.toml: verdicts file not found"),
])
def test_update_doc_errors_are_one_line(store: Store, tmp_path: Path, doc: str, message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    write_results(store, RUN, tmp_path / "results" / "syn")
    (tmp_path / "doc.md").write_text(doc)
    with pytest.raises(ConfigError, match=re.escape(message)):
        update_doc(tmp_path / "doc.md")
    assert (tmp_path / "doc.md").read_text() == doc
    assert main(["report", "--update-doc", str(tmp_path / "doc.md")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_cli_writes_and_rebuilds(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = Path(store.path).parent
    assert main(["report", str(run_dir), "--results", str(tmp_path / "res")]) == 0
    assert (tmp_path / "res" / "run.json").is_file() and not (run_dir / "report.md").exists()
    capsys.readouterr()
    assert main(["report", "--from-results", str(tmp_path / "res")]) == 0
    assert capsys.readouterr().out == folder_markdown(tmp_path / "res")
    assert main(["report"]) == 2
    assert "which run?" in capsys.readouterr().err
    assert main(["report", str(run_dir), "--from-results", str(tmp_path / "res")]) == 2
    assert main(["report", "--from-results", str(tmp_path / "nothing")]) == 2
    assert "no run.json here" in capsys.readouterr().err


def test_provenance_is_recorded_per_start(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    want = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert code_commit() == want and re.fullmatch(r"[0-9a-f]{7,}(-dirty)?|.+-g[0-9a-f]{7,}(-dirty)?", want)
    assert command_line(["run", "plans/a b.toml", "--quick"]) == "edgebench run 'plans/a b.toml' --quick"
    with Store.open(tmp_path / "r.sqlite") as st:
        assert st.provenance("x") == []
        st.add_provenance("x", {"commit": "a", "command": "c1"})
        st.add_provenance("x", {"commit": "b", "command": "c2"})
        st.add_provenance("y", {"commit": "c"})
        assert [s["commit"] for s in st.provenance("x")] == ["a", "b"]
        assert st.provenance("y") == [{"commit": "c"}]


def test_a_folder_with_verdicts_alone_gives_its_verdicts_and_no_other_table(tmp_path: Path) -> None:
    """A paper whose plan has not run at its current settings: its verdicts render, any other table is one line."""
    real = Path(__file__).resolve().parents[2] / "docs" / "results" / "song2020-quantized" / "verdicts.toml"
    folder = tmp_path / "results" / "poster"
    folder.mkdir(parents=True)
    (folder / "verdicts.toml").write_text(real.read_text())
    doc = tmp_path / "page.md"
    doc.write_text("<!-- results:poster:verdicts -->\n<!-- /results -->\n")
    assert update_doc(doc) == (1, True)
    assert "| *untested* |" in doc.read_text() and "*Verdicts: [results/poster/verdicts.toml]" in doc.read_text()
    doc.write_text("<!-- results:poster:clean -->\n<!-- /results -->\n")
    with pytest.raises(ConfigError, match=r"page\.md:1: .*has no clean\.csv"):
        update_doc(doc)
