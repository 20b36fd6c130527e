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


MEAN = """
[[compress]]
method = "kbit"
bits = [4, 6]
[[reference]]
figure = "Fig. 10a"
metric = "asr"
variants = ["kbit-4", "kbit-6"]
aggregate = "mean"
attack = "fgsm"
eps = 0.1
value = 0.8799
"""


def test_a_reference_averaged_over_variants_parses_and_keeps_old_plans_as_they_were(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, BASE + MEAN))
    (ref,) = plan.references
    assert (ref.variants, ref.aggregate, ref.variant, ref.value) == (("kbit-4", "kbit-6"), "mean", "", 0.8799)
    assert plan.as_dict()["references"][0]["variants"] == ("kbit-4", "kbit-6")
    # a reference to one variant resolves without the new keys (stored plans and their reports unchanged)
    single = load_plan(write(tmp_path, BASE + REFS)).as_dict()["references"]
    assert all("variants" not in r and "aggregate" not in r for r in single)


@pytest.mark.parametrize(("change", "expected"), [
    (('aggregate = "mean"\n', ""), r"reference\[0\]\.variants: needs `aggregate = \"mean\"`"),
    (('variants = ["kbit-4", "kbit-6"]\n', ""), r"reference\[0\]\.aggregate: needs `variants"),
    (('aggregate = "mean"', 'aggregate = "median"'), r"aggregate: 'median' is not one of \['mean'\]"),
    (('"kbit-6"]', '"kbit-8"]'), r"variants: 'kbit-8' is not one of \['base', 'kbit-4', 'kbit-6', 'm/base'"),
    (('["kbit-4", "kbit-6"]', '["kbit-4"]'), r"variants: give at least two distinct variants"),
    (('["kbit-4", "kbit-6"]', '["kbit-4", "kbit-4"]'), r"variants: give at least two distinct variants"),
    (('["kbit-4", "kbit-6"]', '"kbit-4"'), r"variants: must be list, got 'kbit-4'"),
    (('aggregate = "mean"\n', 'aggregate = "mean"\nvariant = "kbit-4"\n'), r"give either `variant` .* not both"),
])
def test_bad_averaged_references(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_plan(write(tmp_path, BASE + MEAN.replace(*change)))


def test_report_compares_the_mean_over_variants(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, BASE + MEAN + MEAN.split("[[compress]]\nmethod = \"kbit\"\nbits = [4, 6]\n")[1]
                           .replace('"kbit-6"]', '"base"]')))
    row = {"backend": "onnxruntime", "target": "local", "model": "m", "attack": "fgsm", "eps": 0.1,
           "threat": "white-box"}
    with Store.open(tmp_path / "r.sqlite") as store:
        store.begin_run("r", plan_name="t", plan_hash=plan.digest(), plan=plan.as_dict(), version="x")
        store.put_results("r", [
            {**row, "variant": "kbit-4", "source": "m/kbit-4", "asr": 0.90, "asr_lo": 0.85, "asr_hi": 0.94,
             "asr_n": 200},
            {**row, "variant": "kbit-6", "source": "m/kbit-6", "asr": 0.80, "asr_lo": 0.74, "asr_hi": 0.85,
             "asr_n": 190},
        ])
        text = render_markdown(store, "r")
    lines = [ln for ln in text.split("## Paper vs edgebench")[1].split("\n## ")[0].splitlines()
             if ln.startswith("| Fig.")]
    # mean 0.85, interval the mean of the bounds [0.795, 0.895], n the smaller count; 0.8799 lies inside
    assert lines[0] == ("| Fig. 10a | m/mean of 2: kbit-4, kbit-6 | asr, fgsm ε=0.1 | 0.8799 | "
                        "0.850 [0.795, 0.895] (mean, n≥190) | -2.99 | yes |  |")
    assert lines[1].startswith("| Fig. 10a | m/mean of 2: kbit-4, base |") and "**not measured (base)**" in lines[1]


def test_a_mean_over_models_names_each_model(tmp_path: Path) -> None:
    two = BASE.replace('[[attacks]]', '[[models]]\nname = "m2"\narch = "digits_cnn"\n[[attacks]]', 1)
    entry = ('[[reference]]\nfigure = "Fig. 10b"\nmetric = "asr"\nvariants = ["m/base", "m2/base"]\n'
             'aggregate = "mean"\nattack = "fgsm"\neps = 0.1\nvalue = 0.8674\n')
    plan = load_plan(write(tmp_path, two + entry))  # no `model`: every entry names its own
    assert plan.references[0].variants == ("m/base", "m2/base")
    with pytest.raises(ConfigError, match=r"reference\[0\]\.model: is required"):
        load_plan(write(tmp_path, two + entry.replace('"m2/base"]', '"base"]')))
    with pytest.raises(ConfigError, match=r"variants: 'm3/base' is not one of"):
        load_plan(write(tmp_path, two + entry.replace('"m2/base"', '"m3/base"')))
    row = {"backend": "onnxruntime", "target": "local", "variant": "base", "attack": "fgsm", "eps": 0.1,
           "threat": "white-box", "asr_n": 100}
    with Store.open(tmp_path / "r.sqlite") as store:
        store.begin_run("r", plan_name="t", plan_hash=plan.digest(), plan=plan.as_dict(), version="x")
        store.put_results("r", [{**row, "model": "m", "source": "m", "asr": 0.9, "asr_lo": 0.83, "asr_hi": 0.95},
                                {**row, "model": "m2", "source": "m2", "asr": 0.7, "asr_lo": 0.6, "asr_hi": 0.78}])
        text = render_markdown(store, "r")
    assert ("| Fig. 10b | mean of 2: m/base, m2/base | asr, fgsm ε=0.1 | 0.8674 | 0.800 [0.715, 0.865] (mean, n≥100) "
            "| -6.74 | **no** |  |") in text  # 0.8674 lies above the interval


def test_a_reference_to_a_transfer_only_attack_compares_with_its_surrogates_row(tmp_path: Path) -> None:
    """Seed 003's Table 2: "bb-fgsm" runs only as a transfer from a substitute; its references named no
    ``source`` and read *not measured* beside a stored row. They now compare with the row crafted on the
    attack's surrogate; an attack that also runs white-box keeps the white-box default."""
    two = BASE.replace('[[attacks]]', '[[models]]\nname = "sub"\narch = "digits_cnn"\n[[attacks]]', 1)
    plan_text = two + ('[[attacks]]\nname = "fgsm"\nlabel = "bb"\neps = [0.1]\nthreat = "transfer"\n'
                       'surrogate = "sub"\n'
                       '[[reference]]\nfigure = "Table 2"\nmetric = "robust_acc"\nmodel = "m"\nattack = "bb"\n'
                       'eps = 0.1\nvalue = 0.933\n'
                       '[[reference]]\nfigure = "Table 1"\nmetric = "robust_acc"\nmodel = "m"\nattack = "fgsm"\n'
                       'eps = 0.1\nvalue = 0.0767\n')
    plan = load_plan(write(tmp_path, plan_text))
    row = {"backend": "onnxruntime", "target": "local", "model": "m", "variant": "base", "eps": 0.1, "n": 200}
    with Store.open(tmp_path / "r.sqlite") as store:
        store.begin_run("r", plan_name="t", plan_hash=plan.digest(), plan=plan.as_dict(), version="x")
        store.put_results("r", [
            {**row, "attack": "bb", "source": "sub", "threat": "transfer", "robust_acc": 0.83,
             "robust_acc_lo": 0.772, "robust_acc_hi": 0.876},
            {**row, "attack": "fgsm", "source": "sub", "threat": "transfer", "robust_acc": 0.5,
             "robust_acc_lo": 0.43, "robust_acc_hi": 0.57},
            {**row, "attack": "fgsm", "source": "m", "threat": "white-box", "robust_acc": 0.05,
             "robust_acc_lo": 0.027, "robust_acc_hi": 0.09},
        ])
        text = render_markdown(store, "r")
    lines = [ln for ln in text.split("## Paper vs edgebench")[1].split("\n## ")[0].splitlines()
             if ln.startswith("| Table")]
    assert lines == [
        "| Table 2 | m | robust_acc, bb ε=0.1 | 0.9330 | 0.830 [0.772, 0.876] (n=200) | -10.30 | **no** |  |",
        "| Table 1 | m | robust_acc, fgsm ε=0.1 | 0.0767 | 0.050 [0.027, 0.090] (n=200) | -2.67 | yes |  |"]


def test_a_reference_to_a_transfer_only_attack_without_a_surrogate_compares_with_the_victims_base(
        tmp_path: Path) -> None:
    """A transfer-only attack with no ``surrogate`` crafts each victim's examples on its base model
    (``sources_for``): a reference to a variant compares with the row crafted on the base, not *not measured*."""
    plan_text = BASE + ('[[compress]]\nmethod = "kbit"\nlabel = "q"\nbits = 4\n'
                        '[[attacks]]\nname = "fgsm"\nlabel = "tr"\neps = [0.1]\nthreat = "transfer"\n'
                        '[[reference]]\nfigure = "Fig. 5"\nmetric = "robust_acc"\nmodel = "m"\nvariant = "q"\n'
                        'attack = "tr"\neps = 0.1\nvalue = 0.6\n')
    plan = load_plan(write(tmp_path, plan_text))
    row = {"backend": "onnxruntime", "target": "local", "model": "m", "eps": 0.1, "n": 200, "attack": "tr",
           "threat": "transfer"}
    with Store.open(tmp_path / "r.sqlite") as store:
        store.begin_run("r", plan_name="t", plan_hash=plan.digest(), plan=plan.as_dict(), version="x")
        store.put_results("r", [
            {**row, "variant": "q", "source": "other", "robust_acc": 0.1, "robust_acc_lo": 0.07,
             "robust_acc_hi": 0.15},
            {**row, "variant": "q", "source": "m", "robust_acc": 0.7, "robust_acc_lo": 0.633,
             "robust_acc_hi": 0.759},
        ])
        text = render_markdown(store, "r")
    lines = [ln for ln in text.split("## Paper vs edgebench")[1].split("\n## ")[0].splitlines()
             if ln.startswith("| Fig. 5")]
    assert lines == [
        "| Fig. 5 | m/q | robust_acc, tr ε=0.1 | 0.6000 | 0.700 [0.633, 0.759] (n=200) | +10.00 | **no** |  |"]
