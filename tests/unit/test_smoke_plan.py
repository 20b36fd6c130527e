"""``bench/smoke_plan.py``: a seed plan shrunk to minutes keeps its stage graph (the same models, variants and
attacks) and caps every size, so that a CPU run checks the plan before a GPU's time is spent on it."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest

from edgebench.config import parse_plan

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("smoke_plan", REPO / "bench" / "smoke_plan.py")
smoke_plan = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(smoke_plan)


@pytest.mark.parametrize("name", ["song2020-quantized", "liu2018-hashnet", "poster-pruning",
                                  "wijayanto2018-compressed"])
def test_the_smoke_plan_keeps_the_graph_and_caps_the_sizes(name: str) -> None:
    path = REPO / "plans" / f"{name}.toml"
    full = parse_plan(tomllib.loads(path.read_text()), str(path))
    text = smoke_plan.toml_text(smoke_plan.smoke(tomllib.loads(path.read_text())))
    small = parse_plan(tomllib.loads(text), "smoke")
    assert small.name == f"{name}-smoke" and small.data.n_train == 600 and small.data.n_test == 200
    assert [(c.model, c.variant) for c in small.compress] == [(c.model, c.variant) for c in full.compress]
    assert [(a.label, a.eps) for a in small.attacks] == [(a.label, a.eps) for a in full.attacks]
    assert all(m.train["epochs"] == 1 for m in small.models)
    assert all(a.n <= 20 for a in small.attacks)
    for c in small.compress:
        assert c.params.get("epochs", 0) <= 1 and c.params.get("eps_ramp_epochs", 0) <= 1
        assert c.params.get("steps", 0) <= 3 or c.kind == "compress"
