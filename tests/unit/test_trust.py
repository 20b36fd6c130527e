"""Trust checks: gradient health (zero / non-finite input gradients), the white-box-below-transfer flag,
the minimal-ε computation of Algorithm 1, and the migration of a schema-2 store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgebench.attacks.checks import gradient_health, masked
from edgebench.metrics.robustness import minimal_eps, summarize_min_eps, whitebox_below_transfer
from edgebench.store import SCHEMA_VERSION, Store


class _Rounded(nn.Module):
    """A classifier that rounds its input to 1 bit first: no gradient reaches the input (masking)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.round(x).flatten(1))


def test_gradient_health_flags_a_rounding_model_and_passes_a_plain_one() -> None:
    torch.manual_seed(0)
    x = np.random.default_rng(0).random((64, 1, 4, 4), dtype=np.float32)
    y = np.arange(64) % 4
    bad = gradient_health(_Rounded(), x, y, batch_size=16)
    assert bad["n"] == 64 and bad["zero_share"] == 1.0 and bad["nonfinite_share"] == 0.0 and masked(bad)
    plain = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    good = gradient_health(plain, x, y)
    assert good["zero_share"] == 0.0 and good["median_grad_l1"] > 0 and not masked(good)

    class _Nan(nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return plain(t) * torch.sqrt(t.flatten(1)[:, :1] - 2.0)  # sqrt of a negative: NaN

    nan = gradient_health(_Nan(), x, y)
    assert nan["nonfinite_share"] == 1.0 and masked(nan)


def test_minimal_eps_is_the_first_success_on_the_grid() -> None:
    eps = np.array([0.3, 0.1, 0.2])  # unsorted on purpose
    success = np.array([[1, 1, 0, 0],   # at 0.3
                        [0, 1, 0, 0],   # at 0.1
                        [1, 0, 0, 0]],  # at 0.2
                       dtype=bool)
    np.testing.assert_array_equal(minimal_eps(eps, success), [0.2, 0.1, np.inf, np.inf])
    # an unbounded minimal attack (eps = inf) contributes the norm it found where it succeeded
    eps_inf = np.array([0.1, np.inf])
    s2 = np.array([[1, 0, 0], [1, 1, 0]], dtype=bool)
    np.testing.assert_allclose(minimal_eps(eps_inf, s2, norms_at_inf=np.array([0.05, 0.7, 0.2])), [0.05, 0.7, np.inf])
    summary = summarize_min_eps(np.array([0.1, 0.2, np.inf, 0.1]))
    assert summary["n"] == 4 and summary["found"] == 3 and summary["found_share"] == 0.75
    assert summary["p50"] == 0.1 and summary["p90"] == 0.2 and summary["mean_found"] == pytest.approx(0.4 / 3)


def test_whitebox_below_transfer_is_flagged_only_when_significant() -> None:
    n = 200
    ok = np.ones(n, bool)
    weak = np.zeros(n, bool)
    weak[:20] = True      # white-box fools 10 %
    strong = np.zeros(n, bool)
    strong[:120] = True   # transfer fools 60 % of the same samples
    where = {"model": "m", "variant": "v", "backend": "onnxruntime", "target": "local"}

    def rows(hit: np.ndarray) -> list[dict]:
        return [{"eps": 0.1, "ok": ok, "hit": hit}]

    flags = whitebox_below_transfer(where, "m/v", {("fgsm", "m/v"): rows(weak), ("fgsm", "m"): rows(strong)})
    assert len(flags) == 1 and flags[0]["kind"] == "whitebox-below-transfer" and flags[0]["source"] == "m"
    assert flags[0]["detail"]["p_value"] < 1e-6 and "gradient masking" in flags[0]["message"]
    close = strong.copy()
    close[20:] = False
    close[20:23] = True  # 11.5 % vs 10 %: inside the noise
    assert whitebox_below_transfer(where, "m/v", {("fgsm", "m/v"): rows(weak), ("fgsm", "m"): rows(close)}) == []
    # white-box stronger than transfer: nothing to flag
    assert whitebox_below_transfer(where, "m/v", {("fgsm", "m/v"): rows(strong), ("fgsm", "m"): rows(weak)}) == []


def test_schema_2_store_is_migrated_with_source_in_the_key(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    # the results table exactly as schema 2 wrote it: source a plain column, not part of the key
    from edgebench.store.sqlite import RESULT_FIELDS

    fields = ", ".join(f"{f} {'TEXT' if f == 'threat' else 'REAL'}" for f in RESULT_FIELDS)
    conn.executescript(f"""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '2');
        CREATE TABLE results (run_id TEXT, model TEXT, variant TEXT, attack TEXT, eps REAL, backend TEXT,
            target TEXT, {fields}, source TEXT,
            PRIMARY KEY (run_id, model, variant, attack, eps, backend, target));
        INSERT INTO results (run_id, model, variant, attack, eps, backend, target, n, clean_acc, asr, source, threat)
            VALUES ('r', 'cnn', 'base', 'fgsm', 0.1, 'onnxruntime', 'local', 100, 0.9, 0.5, NULL, 'white-box');
    """)
    conn.commit()
    conn.close()
    with pytest.raises(sqlite3.IntegrityError):  # schema 2: a second source for the same cell collides
        with sqlite3.connect(path) as c:
            c.execute("INSERT INTO results (run_id, model, variant, attack, eps, backend, target, source) VALUES "
                      "('r', 'cnn', 'base', 'fgsm', 0.1, 'onnxruntime', 'local', 'other')")
    with Store.open(path) as store:
        rows = store.results("r")
        assert len(rows) == 1 and rows[0]["source"] == "cnn" and rows[0]["asr"] == 0.5
        # a transfer row for the same cell no longer replaces the white-box one
        store.put_results("r", [{**rows[0], "source": "cnn/kbit", "threat": "transfer", "asr": 0.3}])
        assert sorted(r["source"] for r in store.results("r")) == ["cnn", "cnn/kbit"]
    assert sqlite3.connect(path).execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION)
    with Store.open(path) as store:  # schema 4 added the energy columns, empty for these rows; 5 the samples
        assert store.results("r")[0]["energy_j"] is None and store.samples("r") == []


def test_schema_6_store_without_a_later_column_gains_it(tmp_path: Path) -> None:
    """A store of this schema written before a column was appended to RESULT_FIELDS (the memory columns)."""
    path = tmp_path / "six.sqlite"
    with Store.open(path) as store:
        store.put_results("r", [{"model": "cnn", "variant": "base", "attack": "none", "eps": 0.0,
                                 "backend": "onnxruntime", "target": "local", "source": "cnn", "p50_ms": 0.3}])
        store.conn.execute("ALTER TABLE results DROP COLUMN peak_rss_mb")
        store.conn.commit()
    with Store.open(path) as store:
        row = store.results("r")[0]
        assert row["p50_ms"] == 0.3 and row["peak_rss_mb"] is None
        store.put_results("r", [{**row, "peak_rss_mb": 21.5}])
        assert store.results("r")[0]["peak_rss_mb"] == 21.5


def test_minimal_eps_search_matches_the_full_grid_and_costs_less(trained_digits) -> None:
    from edgebench.attacks.fgsm import FGSM
    from edgebench.attacks.search import minimal_eps_search

    model, x, y = trained_digits
    grid = [0.05, 0.1, 0.2, 0.3, 0.5]
    found = minimal_eps_search(FGSM(), model, x, y, eps=grid)
    full = FGSM()(model, x, y, eps=grid)
    # FGSM at each ε is deterministic, so the search equals the first success read off the full grid
    np.testing.assert_array_equal(found.eps_min, minimal_eps(np.array(grid), full.success))
    assert np.isfinite(found.eps_min).mean() > 0.9 and (found.eps_min == 0.05).any()
    for k, e in enumerate(grid):
        at = found.eps_min == e
        np.testing.assert_array_equal(found.x_adv[at], full.x_adv[k][at])
    assert np.all(np.abs(found.x_adv - x).reshape(len(x), -1).max(1) <= np.where(np.isinf(found.eps_min), 0,
                                                                                  found.eps_min) + 1e-6)
    # only unbroken samples are attacked again
    assert found.attacked == sum(int((found.eps_min >= e).sum()) for e in grid) < len(x) * len(grid) / 2
    with pytest.raises(Exception, match="grid must hold values > 0"):
        minimal_eps_search(FGSM(), model, x, y, eps=[0.0, 0.1])
