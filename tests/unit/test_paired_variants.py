"""``bench/paired_variants.py``: two variants of one run paired per seed on the same stored samples."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from edgebench.store import Store
from tests.fixtures.synthetic import fill_synthetic

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("paired_variants", REPO / "bench" / "paired_variants.py")
paired = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(paired)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    st = Store.open(tmp_path / "run" / "results.sqlite")
    fill_synthetic(st, "syn", variants=3, attacks=2, eps_grid=2, targets=1, n=200)
    yield st
    st.close()


def test_a_unit_against_itself_differs_by_nothing_and_two_units_pair_on_the_same_samples(store: Store) -> None:
    units = sorted({(s["model"], s["variant"]) for s in store.samples("syn", "correct")})
    (model, base), (_, other) = units[0], next(u for u in units if u[1] != units[0][1])
    a, b = model if base == "base" else f"{model}/{base}", f"{model}/{other}"
    backend = store.samples("syn", "correct")[0]["backend"]
    same = paired.compare(store, "syn", a, a, backend=backend, target="local")
    assert same and all(r["diff"].mean == 0 and all(p == 1.0 for *_, p, _n in r["per_seed"]) for r in same)
    rows = paired.compare(store, "syn", a, b, backend=backend, target="local")
    assert rows[0]["attack"] == "none" and len(rows) >= 2
    assert any(r["diff"].mean != 0 for r in rows)
    assert all(0 <= p <= 1 and n == 200 for r in rows for *_, p, n in r["per_seed"])
