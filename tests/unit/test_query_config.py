"""Plans with query attacks (issue 17): an ONNX model needs no surrogate for them or for no attacks at all; a
gradient attack on it still does; ``where`` and ``threat`` are checked in one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebench.config import load_plan
from tests.fixtures.plan_errors import one_line_error

PLAN = """
[plan]
name = "q"
[data]
dataset = "digits"
[[models]]
name = "vendor"
onnx = "vendor.onnx"
{attacks}
[[targets]]
{target}
"""

SQUARE = """
[[attacks]]
name = "square"
eps = [0.05]
max_queries = 100
"""


def plan_file(tmp_path: Path, attacks: str, target: str = 'target = "local"') -> Path:
    p = tmp_path / "plan.toml"
    p.write_text(PLAN.format(attacks=attacks, target=target))
    return p


def test_an_onnx_model_takes_query_attacks_and_no_attacks_without_a_surrogate(tmp_path: Path) -> None:
    plan = load_plan(plan_file(tmp_path, SQUARE))
    (a,) = plan.attacks
    assert a.threat == ("black-box",) and a.where == "host" and a.params == {"max_queries": 100}
    assert plan.models[0].attack_source is None
    # an attack crafted on the host hashes as every attack did before `where` existed; on the device it differs
    assert "where" not in plan.as_dict()["attacks"][0]
    on_device = load_plan(plan_file(tmp_path, SQUARE + 'where = "device"\n'))
    assert on_device.attacks[0].where == "device" and on_device.digest() != plan.digest()
    assert load_plan(plan_file(tmp_path, "")).attacks == ()
    hsj = load_plan(plan_file(tmp_path, SQUARE.replace('"square"', '"hopskipjump"').replace("0.05", "0.5")))
    assert hsj.attacks[0].threat == ("black-box",) and hsj.attacks[0].name == "hopskipjump"


def test_a_gradient_attack_on_an_onnx_model_still_needs_a_surrogate(tmp_path: Path) -> None:
    msg = one_line_error(plan_file(tmp_path, SQUARE + '[[attacks]]\nname = "pgd"\neps = [0.1]\n'))
    assert "models[0]: 'vendor' is an ONNX file and cannot craft white-box attacks; set attack_source" in msg
    assert "'pgd'" in msg


@pytest.mark.parametrize(("extra", "expected"), [
    ('where = "board"', "attacks[0].where: 'board' is not one of ['host', 'device']"),
    ('threat = "transfer"', "attacks[0].threat: 'transfer': query attack 'square' is crafted on each victim's own"),
])
def test_bad_where_and_threat_of_a_query_attack(tmp_path: Path, extra: str, expected: str) -> None:
    assert expected in one_line_error(plan_file(tmp_path, SQUARE + extra + "\n"))


def test_where_device_is_for_query_attacks_on_one_device(tmp_path: Path) -> None:
    torch_plan = PLAN.replace('onnx = "vendor.onnx"', 'arch = "digits_cnn"')
    p = tmp_path / "fgsm.toml"
    p.write_text(torch_plan.format(attacks='[[attacks]]\nname = "fgsm"\neps = [0.1]\nwhere = "device"\n',
                                   target='target = "local"'))
    assert "attacks[0].where: 'device' runs query attacks" in one_line_error(p)
    for name in ("a", "b"):
        (tmp_path / f"{name}.toml").write_text(f'[target]\nname = "{name}"\ntransport = "local"\n'
                                               "[backends.onnxruntime]\n")
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    members = f'target = "fleet"\nfleet = ["{a}", "{b}"]'
    fleet = plan_file(tmp_path, SQUARE + 'where = "device"\n', target=members)
    assert "attacks[0].where: 'device' is not supported on a fleet ('fleet')" in one_line_error(fleet)
