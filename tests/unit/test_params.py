"""The shared parameter checks (:mod:`edgebench.params`): every integer parameter of every registered attack,
compression method and defense refuses a non-integer in one line, before any work (``steps = 2.5`` used to
pass the plan check and end in a ``TypeError`` traceback inside ``cw`` and ``apgd``)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from edgebench.attacks import ATTACKS, create_attack
from edgebench.config import load_plan
from edgebench.errors import ConfigError
from edgebench.params import check_int, check_integers, check_layers, check_number
from edgebench.variants import create_method, registry_for

#: Parameters a registered entry cannot be created without (a new entry with a required parameter needs a row).
REQUIRED: dict[str, dict[str, object]] = {
    "art": {"attack": "FastGradientMethod"},
    "dns": {"sparsity": 0.5},
    "filter_pruning": {"ratio": 0.5},
    "kbit": {"bits": 4},
    "magnitude_pruning": {"ratio": 0.5},
}


def integer_parameters(cls: type) -> list[str]:
    """The constructor's integer parameters, found apart from the check under test: an integer default or an
    ``int`` annotation."""
    return [k for k, p in inspect.signature(cls.__init__).parameters.items()
            if (isinstance(p.default, int) and not isinstance(p.default, bool))
            or "int" in str(p.annotation).replace(" ", "").split("|")]


def _required(cls: type, name: str) -> dict[str, object]:
    needed = [k for k, p in inspect.signature(cls.__init__).parameters.items()
              if k != "self" and p.kind is p.KEYWORD_ONLY and p.default is inspect.Parameter.empty]
    missing = [k for k in needed if k not in REQUIRED.get(name, {})]
    assert not missing, f"{name!r} needs {missing}: add a row to REQUIRED"
    return dict(REQUIRED.get(name, {}))


def _assert_one_line(exc: pytest.ExceptionInfo[ConfigError], *parts: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg
    for part in parts:
        assert part in msg, (part, msg)


@pytest.mark.parametrize("name", ATTACKS.names())
def test_every_integer_parameter_of_every_attack_refuses_a_fraction(name: str) -> None:
    cls = ATTACKS.get(name)
    base = _required(cls, name)
    create_attack(name, **base)  # the required parameters alone are fine
    for key in integer_parameters(cls):
        with pytest.raises(ConfigError) as info:
            create_attack(name, where="plan.toml: attacks[3]", **{**base, key: 2.5})
        _assert_one_line(info, f"plan.toml: attacks[3].{key}:", f"attack {name!r}", "an integer", "2.5")
        with pytest.raises(ConfigError):
            create_attack(name, **{**base, key: True})  # a bool is not an integer either


@pytest.mark.parametrize(("kind", "name"), [(k, n) for k in ("compress", "defend") for n in registry_for(k).names()])
def test_every_integer_parameter_of_every_variant_method_refuses_a_fraction(kind: str, name: str) -> None:
    cls = registry_for(kind).get(name)
    base = _required(cls, name)
    create_method(kind, name, **base)
    word = {"compress": "compression method", "defend": "defense"}[kind]
    for key in integer_parameters(cls):
        with pytest.raises(ConfigError) as info:
            create_method(kind, name, where=f"plan.toml: {kind}[0]", **{**base, key: 2.5})
        _assert_one_line(info, f"plan.toml: {kind}[0].{key}:", f"{word} {name!r}", "an integer", "2.5")


@pytest.mark.parametrize("name", ["cw", "apgd"])
def test_a_plan_with_fractional_steps_fails_in_one_line_naming_the_key(tmp_path: Path, name: str) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('[data]\ndataset = "digits"\n[[models]]\nname = "m"\narch = "digits_cnn"\n'
                    f'[[attacks]]\nname = "{name}"\neps = [0.1]\nsteps = 2.5\n')
    with pytest.raises(ConfigError) as info:
        load_plan(plan)
    assert str(info.value) == f"{plan}: attacks[0].steps: must be an integer for attack {name!r}, got 2.5"


def test_optional_integers_take_none_and_other_annotated_types() -> None:
    def f(*, a: int | None = None, b: int | str = 1, c: float = 1.0, d: int = 0) -> None: ...

    check_integers(f, {"a": None, "b": "x", "c": 2.5, "d": 3}, what="x")
    with pytest.raises(ConfigError, match=r"^x: b must be an integer or str, got 2.5$"):
        check_integers(f, {"b": 2.5}, what="x")
    with pytest.raises(ConfigError, match=r"^x: a must be an integer, got 1.0$"):
        check_integers(f, {"a": 1.0}, what="x")


def test_value_checks_name_the_owner_and_the_rule() -> None:
    with pytest.raises(ConfigError, match=r"^attack 'x': steps must be an integer >= 1, got 0$"):
        check_int("steps", 0, what="attack 'x'", lo=1)
    with pytest.raises(ConfigError, match=r"^defense 'y': tau must be a number >= 0, got -1$"):
        check_number("tau", -1, what="defense 'y'", lo=0.0)
    with pytest.raises(ConfigError, match=r"omitted for every layer, got 'a'"):
        check_layers("a", what="m", default="every layer")
    assert check_number("p", 3, what="m", lo=0, lo_open=True) == 3.0 and check_layers(("a",), what="m",
                                                                                       default="") == ["a"]
