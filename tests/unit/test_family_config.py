"""The ``family`` threat model's plan keys: their one-line errors, which variants form each model's family, the
stage graph (one craft stage per model and attack, evaluated on members and holdout) and the set's cache key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from edgebench.config import parse_plan
from edgebench.errors import ConfigError
from edgebench.families import check_families, members
from edgebench.runner.family import FamilySource, family_key, family_sources
from edgebench.runner.graph import crafting_sources, sources_for
from edgebench.runner.pipeline import Pipeline
from edgebench.runner.units import Unit, craft_stage
from edgebench.specs import AttackSpec, CompressSpec, ModelSpec

PLAN = """
[plan]
name = "t"
[[models]]
name = "m"
arch = "digits_cnn"
[[compress]]
method = "kbit"
bits = [2, 4, 8]
[[attacks]]
name = "{attack}"
eps = [0.1]
{keys}
"""


def plan(keys: str, attack: str = "pgd"):
    return parse_plan(tomllib.loads(PLAN.format(attack=attack, keys=keys)), "p.toml")


FAMILY = 'threat = "family"\n'

#: plan keys of the attack -> the error after "p.toml: attacks[0]." (a regular expression)
ERRORS = {
    'threat = "family"': r"family: threat 'family' needs family = \[variant names\]",
    'family = ["base", "kbit-2"]': r"family: used by threat 'family'",
    FAMILY + 'family = ["base", "kbit-3"]': r"family: 'kbit-3' is not a variant of this plan; variants are \['base'",
    FAMILY + 'family = ["base", "kbit-2"]\nholdout = ["kbit-9"]': r"holdout: 'kbit-9' is not a variant",
    FAMILY + 'family = ["base", "kbit-2"]\nholdout = ["kbit-2"]': r"holdout: \['kbit-2'\] also in family",
    FAMILY + 'family = ["kbit-2"]': r"family: \['kbit-2'\] has fewer than 2",
    FAMILY + 'family = ["base", "base"]': r"family: \['base'\] listed more",
    FAMILY + 'family = "some"': r"family: 'some': give a list",
    FAMILY + 'family = "all"\nholdout = ["base", "kbit-2", "kbit-4"]': r"family: no model of this plan has two or more",
}


@pytest.mark.parametrize("keys", list(ERRORS))
def test_config_errors_are_one_line_naming_the_key(keys) -> None:
    with pytest.raises(ConfigError, match=r"^p\.toml: attacks\[0\]\." + ERRORS[keys]) as exc:
        plan(keys)
    assert "\n" not in str(exc.value)


def test_an_attack_that_cannot_take_a_family_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^p\.toml: attacks\[0\]\.threat: attack 'cw' cannot craft on a family; "
                                          r"threat 'family' takes \[.*'apgd'.*'fgsm'.*'mim'.*'pgd'.*\]$"):
        plan(FAMILY + 'family = ["base", "kbit-2"]', "cw")


def test_a_member_without_a_torch_twin_is_an_error() -> None:
    """An ONNX model has no torch twin: a family over its variants cannot be crafted."""
    a = AttackSpec("pgd", "pgd", (0.1,), threat=("family",), family=("base", "q"))
    models = (ModelSpec("vendor", onnx="v.onnx"),)
    with pytest.raises(ConfigError, match=r"^p\.toml: attacks\[0\]\.family: model 'vendor' is an ONNX file; its "
                                          r"members have no torch twin"):
        check_families((a,), models, (CompressSpec("int8", "q", "vendor"),), "p.toml", {"pgd": type("P", (), {
            "family_ok": True})})


def test_members_in_plan_order_and_all_excludes_the_holdout() -> None:
    p = plan('threat = ["family", "transfer"]\nfamily = ["kbit-4", "base"]\nholdout = ["kbit-8"]')
    assert members(p.attacks[0], "m", p.compress) == (("base", "kbit-4"), ("kbit-8",))
    p = plan('threat = "family"\nfamily = "all"\nholdout = ["kbit-8"]')
    assert members(p.attacks[0], "m", p.compress) == (("base", "kbit-2", "kbit-4"), ("kbit-8",))
    assert p.attacks[0].family == "all"


def test_one_craft_stage_per_model_evaluated_on_members_and_holdout_only() -> None:
    p = plan('threat = ["family", "transfer"]\nfamily = ["base", "kbit-4"]\nholdout = ["kbit-8"]\nvictims = ["base"]')
    fam = FamilySource("m", ("base", "kbit-4"), ("kbit-8",))
    assert fam.id == "m/family[base,kbit-4]" and fam.deps == ("model/m", "compress/m/kbit-4")
    a = p.attacks[0]
    # victims restricts the transfer threat, not the family's own victims
    assert sources_for(p, Unit("m"), a) == [Unit("m"), fam]
    assert sources_for(p, Unit("m", "kbit-8"), a) == [fam]
    assert sources_for(p, Unit("m", "kbit-2"), a) == []
    assert fam.threat(Unit("m", "kbit-4")) == "family" and fam.threat(Unit("m", "kbit-8")) == "family-holdout"
    assert family_sources(p, Unit("m", "kbit-2"), a) == []
    assert crafting_sources(p) == {Unit("m"), Unit("m", "kbit-4")}  # the members' twins get gradient checks
    crafts = [s for s in Pipeline(p, out_dir=Path("unused")).stages() if s.name == craft_stage(fam, "pgd")]
    assert len(crafts) == 1 and set(crafts[0].deps) == {"model/m", "compress/m/kbit-4"}


def test_family_key_normalizes_member_order_and_depends_on_every_member() -> None:
    assert family_key(["a", "b"]) == family_key(["b", "a"])
    assert family_key(["a", "b"]) != family_key(["a", "c"]) != family_key(["a", "b", "c"])


def test_a_plan_without_family_hashes_as_before() -> None:
    """The new attack keys leave an attack without a family out of the plan's digest (run ids do not move)."""
    p = plan("")
    assert "family" not in p.as_dict()["attacks"][0] and "holdout" not in p.as_dict()["attacks"][0]
    assert "family" in plan('threat = "family"\nfamily = "all"').as_dict()["attacks"][0]
