"""A plan's ``[[reference]]`` entries (the paper's numbers) are validated against the plan and rendered beside
edgebench's measurements, with the interval test; they do not change the plan's digest (nothing measured
depends on them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebench.config import load_plan
from edgebench.errors import ConfigError
from edgebench.report.render import render_markdown
from edgebench.store import Store
from tests.unit.test_config import BASE, write

REFS = """
[[compress]]
method = "kbit"
bits = 4
[[reference]]
figure = "Fig. 3"
metric = "clean_acc"
value = 0.9929
note = "paper: 60k training images, ours: digits"
[[reference]]
figure = "Fig. 4"
metric = "asr"
variant = "kbit"
attack = "fgsm"
eps = 0.1
value = 0.40
[[reference]]
figure = "Fig. 4"
metric = "asr"
variant = "kbit"
attack = "fgsm"
eps = 0.1
source = "m"
value = 0.30
"""


def test_references_parse_and_leave_the_digest_alone(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, BASE + REFS))
    assert [(r.figure, r.metric, r.variant, r.attack, r.eps, r.value) for r in plan.references] == [
        ("Fig. 3", "clean_acc", "base", "none", 0.0, 0.9929), ("Fig. 4", "asr", "kbit", "fgsm", 0.1, 0.40),
        ("Fig. 4", "asr", "kbit", "fgsm", 0.1, 0.30)]
    without = load_plan(write(tmp_path, BASE + REFS.split("[[reference]]")[0]))
    assert plan.digest() == without.digest() and plan.as_dict()["references"]


@pytest.mark.parametrize(("entry", "expected"), [
    ('figure = "F"\nmetric = "auc"\nvalue = 0.5', r"reference\[0\]\.metric: 'auc' is not one of"),
    ('figure = "F"\nmetric = "asr"\nvalue = 0.5', r"reference\[0\]\.metric: 'asr' needs an attack"),
    ('figure = "F"\nmetric = "asr"\nattack = "fgsm"\neps = 0.2\nvalue = 0.5', r"eps: 0.2 is not one of"),
    ('figure = "F"\nmetric = "clean_acc"\nvalue = 99.3', r"value: must be <= 1"),
    ('figure = "F"\nmetric = "clean_acc"\nvariant = "hashed"\nvalue = 0.9', r"variant: 'hashed' is not one of"),
    ('metric = "clean_acc"\nvalue = 0.9', r"reference\[0\]\.figure: is required"),
])
def test_bad_references(tmp_path: Path, entry: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_plan(write(tmp_path, BASE + "[[reference]]\n" + entry + "\n"))


def test_report_puts_paper_and_measurement_side_by_side(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, BASE + REFS))
    row = {"backend": "onnxruntime", "target": "local", "model": "m", "n": 400}
    with Store.open(tmp_path / "r.sqlite") as store:
        store.begin_run("r", plan_name="t", plan_hash=plan.digest(), plan=plan.as_dict(), version="x")
        store.put_results("r", [
            {**row, "variant": "base", "attack": "none", "eps": 0.0, "source": "m", "threat": "clean",
             "clean_acc": 0.99, "clean_acc_lo": 0.974, "clean_acc_hi": 0.996},
            {**row, "variant": "kbit", "attack": "fgsm", "eps": 0.1, "source": "m/kbit", "threat": "white-box",
             "asr": 0.25, "asr_lo": 0.21, "asr_hi": 0.29, "asr_n": 390},
        ])
        text = render_markdown(store, "r")
    section = text.split("## Paper vs edgebench")[1].split("\n## ")[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("| Fig.")]
    assert lines[0] == ("| Fig. 3 | m | clean_acc | 0.9929 | 0.990 [0.974, 0.996] (n=400) | -0.29 | yes | "
                        "paper: 60k training images, ours: digits |")
    assert lines[1] == ("| Fig. 4 | m/kbit | asr, fgsm ε=0.1 | 0.4000 | 0.250 [0.210, 0.290] (n=390) | -15.00 | "
                        "**no** |  |")
    assert "**not measured**" in lines[2]  # no transfer row from m was stored
