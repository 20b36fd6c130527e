"""The package's public face: ``edgebench.load_plan``, ``run_plan`` and ``open_run``, imported lazily so that
``import edgebench`` stays light (torch is not imported until a function that needs it runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import edgebench
from edgebench.store import Store
from tests.fixtures.synthetic import fill_synthetic


def test_import_and_lookup_do_not_import_torch() -> None:
    code = ("import sys, edgebench; edgebench.load_plan; edgebench.open_run; edgebench.run_plan\n"
            "print(sorted(m for m in ('torch', 'onnx', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_names() -> None:
    from edgebench.config import load_plan
    from edgebench.report.runs import open_run

    assert edgebench.load_plan is load_plan and edgebench.open_run is open_run
    assert edgebench.run_plan.__module__ == "edgebench.runner.pipeline"
    assert {"load_plan", "run_plan", "open_run", "EdgebenchError"} <= set(edgebench.__all__) & set(dir(edgebench))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        edgebench.nope  # noqa: B018


def test_load_plan_default_and_quick() -> None:
    plan = edgebench.load_plan()
    assert plan.name == "default" and plan.data.dataset == "digits"
    assert [m.name for m in plan.models] == ["digits_cnn"] and [a.name for a in plan.attacks] == ["fgsm", "pgd"]
    assert edgebench.load_plan(quick=True).name == "default-quick"


def test_open_run_by_id_folder_and_store(tmp_path: Path) -> None:
    with Store.open(tmp_path / "syn" / "results.sqlite") as store:
        fill_synthetic(store, "syn", variants=2, attacks=1, eps_grid=2, targets=1, n=50)
        n_results = len(store.results("syn"))
    for run in ("syn", tmp_path / "syn", tmp_path / "syn" / "results.sqlite"):
        data = edgebench.open_run(run, out=tmp_path)
        assert data.run_id == "syn" and data.run["status"] == "done"
        assert len(data.results) == n_results > 0 and len(data.variants) == 2
        assert {r["attack"] for r in data.results} >= {"none"}
    with pytest.raises(edgebench.EdgebenchError, match="run 'other' not found .* runs there: syn"):
        edgebench.open_run("other", out=tmp_path)
