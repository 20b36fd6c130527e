"""Training seeds: ``[plan] seeds`` parsing, the one-seed plan unchanged, the schema-7 store migration, and the
report's seeds section and paper table from a hand-made three-seed store (values worked out by hand)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from edgebench.config import load_plan
from edgebench.errors import ConfigError
from edgebench.metrics.robustness import wilson
from edgebench.report.render import render_markdown
from edgebench.store import SCHEMA_VERSION, Store
from tests.fixtures.seeds import seeds_plan


def _plan(tmp_path: Path, seed_line: str, name: str = "p.toml") -> Path:
    return seeds_plan(tmp_path, seed_line, name, clean_refs=(("F1", 0.93), ("F2", 0.99)))


@pytest.mark.parametrize("line, expected", [
    ("seed = 1\nseeds = [0, 1]", r"p\.toml: plan\.seeds: give either seed or seeds, not both"),
    ("seeds = []", r"plan\.seeds: must be a non-empty list of distinct non-negative integers, got \[\]"),
    ("seeds = [0, -1]", r"plan\.seeds: must be a non-empty list .* got \[0, -1\]"),
    ("seeds = [0, 0]", r"plan\.seeds: must be a non-empty list of distinct"),
    ('seeds = [0, "1"]', r"plan\.seeds: must be"),
    ("seeds = [true]", r"plan\.seeds: must be"),
    ("seeds = 3", r"plan\.seeds: must be list"),
])
def test_bad_seeds_are_one_line_naming_the_key(tmp_path: Path, line: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_plan(_plan(tmp_path, line))


def test_one_seed_plans_resolve_as_before_seeds_existed(tmp_path: Path) -> None:
    bare = load_plan(_plan(tmp_path, "", "bare.toml"))
    listed = load_plan(_plan(tmp_path, "seeds = [0]", "listed.toml"))
    named = load_plan(_plan(tmp_path, "seed = 0", "named.toml"))
    assert "seeds" not in bare.as_dict() and bare.seeds == () and bare.all_seeds == (0,)
    assert bare.digest() == listed.digest() == named.digest()
    two = load_plan(_plan(tmp_path, "seeds = [3, 1]", "two.toml"))
    assert two.seed == 3 and two.all_seeds == (3, 1) and two.data.seed == 3  # the test subset: the first seed's
    assert list(two.as_dict()["seeds"]) == [3, 1] and two.digest() != bare.digest()


def test_schema_6_store_gains_the_seed_of_its_runs_plan(tmp_path: Path) -> None:
    from edgebench.store.sqlite import RESULT_FIELDS, RESULT_KEY

    inf = float("inf")  # a plan with an unbounded ε is written with Infinity, which SQLite's JSON functions refuse
    path = tmp_path / "six.sqlite"
    conn = sqlite3.connect(path)
    keys = ", ".join(f"{k} {'REAL' if k == 'eps' else 'TEXT'}" for k in RESULT_KEY)
    fields = ", ".join(f"{f} REAL" for f in RESULT_FIELDS)
    conn.executescript(f"""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '6');
        CREATE TABLE runs (run_id TEXT PRIMARY KEY, plan_name TEXT, plan_hash TEXT, plan TEXT,
            edgebench_version TEXT, created REAL, finished REAL, status TEXT);
        INSERT INTO runs (run_id, plan) VALUES ('r', '{json.dumps({"seed": 3, "attacks": [{"eps": [inf]}]})}'),
            ('q', '{{}}');
        CREATE TABLE results (run_id TEXT, {keys}, {fields}, PRIMARY KEY (run_id, {", ".join(RESULT_KEY)}));
        INSERT INTO results (run_id, model, variant, attack, eps, backend, target, source, n, clean_acc)
            VALUES ('r', 'm', 'base', 'none', 0.0, 'onnxruntime', 'local', 'm', 100, 0.9),
                   ('q', 'm', 'base', 'none', 0.0, 'onnxruntime', 'local', 'm', 100, 0.8);
        CREATE TABLE samples (run_id TEXT, kind TEXT, model TEXT, variant TEXT, backend TEXT, target TEXT,
            attack TEXT, eps REAL, source TEXT, data TEXT,
            PRIMARY KEY (run_id, kind, model, variant, backend, target, attack, eps, source));
        INSERT INTO samples VALUES ('r', 'correct', 'm', 'base', 'onnxruntime', 'local', 'none', 0.0, 'm', '{{}}');
    """)
    conn.commit()
    conn.close()
    with Store.open(path) as store:
        (row,) = store.results("r")
        assert row["seed"] == 3 and row["clean_acc"] == 0.9 and store.samples("r")[0]["seed"] == 3
        assert store.results("q")[0]["seed"] == 0  # a plan without a seed: 0
        store.put_results("r", [{**row, "clean_acc": 0.95}], seed=4)  # another seed's row beside it
        assert sorted((r["seed"], r["clean_acc"]) for r in store.results("r")) == [(3, 0.9), (4, 0.95)]
    assert sqlite3.connect(path).execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION) == "7"


def _store(tmp_path: Path, seed_line: str, extra: str = "") -> Store:
    path = _plan(tmp_path, seed_line)
    path.write_text(path.read_text() + extra)
    plan = load_plan(path)
    store = Store.open(tmp_path / "r.sqlite")
    store.begin_run("r", plan_name="t", plan_hash=plan.digest(), plan=plan.as_dict(), version="x")
    where = {"backend": "onnxruntime", "target": "local", "model": "cnn", "n": 400}
    for seed, clean, delta, p in ((0, 0.90, -0.05, 0.01), (1, 0.92, -0.03, 0.2), (2, 0.94, -0.04, 0.03)):
        store.put_results("r", [
            {**where, "variant": "base", "attack": "none", "eps": 0.0, "source": "cnn", "threat": "clean",
             "clean_acc": clean, "clean_acc_lo": 0.0, "clean_acc_hi": 1.0},
            {**where, "variant": "base", "attack": "fgsm", "eps": 0.1, "source": "cnn", "threat": "white-box",
             "robust_acc": 0.5},
            {**where, "variant": "kbit", "attack": "fgsm", "eps": 0.1, "source": "cnn/kbit", "threat": "white-box",
             "robust_acc": 0.5 + delta, "robust_delta": delta, "robust_delta_p": p},
        ], seed=seed)
    return store


def test_report_gives_the_mean_over_seeds_and_its_t_interval(tmp_path: Path) -> None:
    with _store(tmp_path, "seeds = [0, 1, 2]") as store:
        text = render_markdown(store, "r")
    seeds = text.split("## Training seeds")[1].split("\n## ")[0]
    # clean: 0.90, 0.92, 0.94 -> mean 0.92, sd 0.02, half-width t(0.975, 2) * 0.02 / sqrt(3) = 0.0497
    lo, hi = wilson(368, 400)
    assert (f"| cnn | local/onnxruntime | none | 0 |  | clean_acc | 0.900 / 0.920 / 0.940 | 0.920 [0.870, 0.970] | "
            f"0.920 [{lo:.3f}, {hi:.3f}] |") in seeds
    # kbit against the base: -5, -3, -4 points -> mean -4.0, sd 1.0, half-width 2.48; McNemar per seed
    assert ("| cnn/kbit | local/onnxruntime | fgsm | 0.1 | cnn/kbit | robust_acc | -5.0 / -3.0 / -4.0 | "
            "-4.0 [-6.5, -1.5] | 0.01 / 0.2 / 0.03 | 2 of 3 |") in seeds
    paper = text.split("## Paper vs edgebench")[1].split("\n## ")[0]
    assert ("| F1 | cnn | clean_acc | 0.9300 | 0.920 [0.870, 0.970] (mean of 3 seeds, t interval; n=400 each) | "
            "-1.00 | yes |") in paper
    assert "| F2 | cnn | clean_acc | 0.9900 | 0.920 [0.870, 0.970] (mean of 3 seeds" in paper and "| **no** |" in paper
    # every other section reads the first seed alone
    assert "0.900" in text.split("## Clean accuracy and latency")[1] and "0.940" not in \
        text.split("## Clean accuracy and latency")[1].split("\n## ")[0]


def test_a_one_seed_run_has_no_seeds_section(tmp_path: Path) -> None:
    with _store(tmp_path, "seed = 0") as store:
        text = render_markdown(store, "r")
    assert "## Training seeds" not in text and "(mean of" not in text


def test_cli_seeds_override_the_plans_and_keep_its_test_subset(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from edgebench.cli import main
    from edgebench.runner.seeds import with_seeds

    one = load_plan(_plan(tmp_path, "seed = 2", "one.toml"))
    three = with_seeds(one, "2,0,1")
    assert three.seed == 2 and three.seeds == (2, 0, 1) and three.data == one.data
    assert three.digest() == load_plan(_plan(tmp_path, "seeds = [2, 0, 1]", "three.toml")).digest()
    assert with_seeds(three, "2").digest() == one.digest()
    for bad in ("0,x", "0,0", "-1"):
        assert main(["run", str(tmp_path / "one.toml"), "--seeds", bad, "--dry-run"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"edgebench: --seeds {bad!r}: must be") and "\n" not in err


def test_the_seed_reaches_an_attacks_own_generator_and_its_key(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from edgebench.runner import keys
    from edgebench.specs import AttackSpec

    plan = load_plan(_plan(tmp_path, "seeds = [0, 1]"))
    pgd, fgsm = AttackSpec(name="pgd", label="pgd", eps=(0.1,)), AttackSpec(name="fgsm", label="fgsm", eps=(0.1,))
    zero, one = replace(plan, seed=0, seeds=()), replace(plan, seed=1, seeds=())
    assert keys.seeded_params(one, pgd) == {"seed": 1} and keys.seeded_params(zero, pgd) == {"seed": 0}
    assert keys.seeded_params(one, fgsm) == {}  # no generator of its own
    assert keys.seeded_params(one, replace(pgd, params={"seed": 7})) == {"seed": 7}  # the entry's own seed wins

    def key(p: object) -> str:
        return keys.adv_key(p, "m", pgd, n_test=10, data_fingerprint="d")  # type: ignore[arg-type]

    now = {0: key(zero), 1: key(one)}
    monkeypatch.setattr(keys, "seed_default", lambda attack: None)  # as before the seed reached the attack
    before = {0: key(zero), 1: key(one)}
    assert now[0] == before[0]  # at the attack's default seed: the same set, the same key as before
    assert now[1] != before[1]  # at seed 1 the set changed, so its key did: no stale set is served


def test_the_quick_size_may_run_fewer_seeds(tmp_path: Path) -> None:
    path = _plan(tmp_path, "seeds = [2, 0, 1]")
    path.write_text(path.read_text() + "\n[quick]\nn_train = 300\nseeds = [2]\n")
    full, quick = load_plan(path), load_plan(path, quick=True)
    assert full.all_seeds == (2, 0, 1) and quick.all_seeds == (2,) and quick.seeds == ()
    assert quick.data.seed == full.data.seed == 2  # the same test subset at both sizes
    path.write_text(path.read_text().replace("seeds = [2]\n", "seeds = [-1]\n"))
    with pytest.raises(ConfigError, match=r"quick\.seeds: must be a non-empty list .* got \[-1\]"):
        load_plan(path)


def test_a_reference_averaged_over_variants_takes_the_between_seed_interval(tmp_path: Path) -> None:
    ref = ('[[reference]]\nfigure = "F3"\nmetric = "robust_acc"\nattack = "fgsm"\neps = 0.1\n'
           'variants = ["base", "kbit"]\naggregate = "mean"\nvalue = 0.6\n')
    with _store(tmp_path, "seeds = [0, 1, 2]", ref) as store:
        paper = render_markdown(store, "r").split("## Paper vs edgebench")[1].split("\n## ")[0]
    # per seed, the mean of base (0.5) and kbit (0.45 / 0.47 / 0.46): 0.475 / 0.485 / 0.480 -> mean 0.480,
    # sd 0.005, half-width t(0.975, 2) * 0.005 / sqrt(3) = 0.0124
    assert "| F3 | cnn/mean of 2: base, kbit | robust_acc, fgsm ε=0.1 | 0.6000 | 0.480 [0.468, 0.492] (mean over " \
           "variants and 3 seeds, t interval; n≥400 each) | -12.00 | **no** |" in paper, paper
