"""Issue 20, "training seeds" over several runs: ``--seeds 0`` and ``--seeds 1`` run apart, the second run's seeds
added to the first's results folder (``edgebench report RUN --results DIR --add-seeds``), give the same clean,
robust and size tables as one ``--seeds 0,1`` run, and the rebuilt tables cite both runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgebench.cli import main
from tests.integration.test_results_rebuild import PLAN


def _run(plan: Path, out: Path, seeds: str) -> str:
    before = {p.parent.name for p in out.glob("*/results.sqlite")}
    assert main(["run", str(plan), "--out", str(out), "--workers", "0", "--seeds", seeds]) == 0
    (run_id,) = {p.parent.name for p in out.glob("*/results.sqlite")} - before
    return run_id


@pytest.mark.slow
def test_two_one_seed_runs_add_up_to_the_two_seed_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan, out = tmp_path / "traced.toml", tmp_path / "reports"
    plan.write_text(PLAN)
    one, two, both = _run(plan, out, "0"), _run(plan, out, "1"), _run(plan, out, "0,1")
    merged, together = tmp_path / "results" / "traced", tmp_path / "together"
    assert main(["report", one, "--out", str(out), "--results", str(merged)]) == 0
    first = (merged / "paper.csv").read_text()
    assert main(["report", two, "--out", str(out), "--results", str(merged), "--add-seeds"]) == 0
    assert main(["report", both, "--out", str(out), "--results", str(together)]) == 0

    # seed for seed what --seeds 0,1 computes (the same stage keys: the two-seed run took them from the cache)
    for name in ("clean", "robust", "sizes"):
        assert (merged / f"{name}.csv").read_text() == (together / f"{name}.csv").read_text(), name
    clean = (merged / "clean.csv").read_text().splitlines()
    assert clean[0].startswith("model,variant,seed,") and [r.split(",")[2] for r in clean[1:]] == ["0", "1"]
    assert clean[1] != clean[2]  # two trainings, two accuracies
    lat = [r.split(",")[:5] for r in (merged / "latency.csv").read_text().splitlines()]
    assert lat == [r.split(",")[:5] for r in (together / "latency.csv").read_text().splitlines()]
    assert (merged / "paper.csv").read_text() == first  # one run's comparison, kept as it was

    run = json.loads((merged / "run.json").read_text())
    assert run["seeds"] == [0, 1] and [r["run_id"] for r in run["runs"]] == [one, two]
    assert [r["seeds"] for r in run["runs"]] == [[0], [1]] and run["run_id"] == one
    assert run["tables_from"] == {"paper": one, "sizes": one, "amplitude": one} and run["status"] == "done"
    assert run["plan_hash_seedless"] == json.loads((together / "run.json").read_text())["plan_hash_seedless"]

    # the rebuilt tables: the mean over the two seeds with its t interval, citing both runs
    capsys.readouterr()
    assert main(["report", "--from-results", str(merged)]) == 0
    text = capsys.readouterr().out
    accs = [float(r.split(",")[6]) for r in clean[1:]]
    assert f"| {sum(accs) / 2:.3f} [" in text
    assert f"*Runs `{one}` (seed 0, " in text and f"`{two}` (seed 1, " in text and "seeds 0, 1, status done" in text
    assert f"*Run `{one}` (full size, seed 0 alone, status done" in text  # the paper table's

    # written again: nothing moves; a run whose seeds the folder holds, or of another plan, is one line
    files = {p.name: p.read_text() for p in merged.iterdir()}
    for again in (two, one):  # the first run too: its own tables (paper, sizes, amplitude) written anew
        assert main(["report", again, "--out", str(out), "--results", str(merged), "--add-seeds"]) == 0
        assert {p.name: p.read_text() for p in merged.iterdir()} == files, again
    capsys.readouterr()
    assert main(["report", both, "--out", str(out), "--results", str(merged), "--add-seeds"]) == 2
    err = capsys.readouterr().err
    assert f"cannot add run {both}: its seeds [0, 1] are already in the folder" in err and "Traceback" not in err
    plan.write_text(PLAN.replace("epochs = 2", "epochs = 1"))
    other = _run(plan, out, "2")
    capsys.readouterr()
    assert main(["report", other, "--out", str(out), "--results", str(merged), "--add-seeds"]) == 2
    err = capsys.readouterr().err
    assert "its plan_hash_seedless is" in err and "only runs of one plan that differ in --seeds alone add up" in err
    assert main(["report", one, "--out", str(out), "--add-seeds"]) == 2
    assert "--add-seeds adds the run's seeds to a results folder: give --results DIR" in capsys.readouterr().err
    assert {p.name: p.read_text() for p in merged.iterdir()} == files
