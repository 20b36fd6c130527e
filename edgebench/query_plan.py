"""The plan checks of query-based (black-box) attacks (issue 17), called by :mod:`edgebench.config`.

A query attack (an entry of :data:`edgebench.attacks.ATTACKS` with ``query_based = True``: Square, HopSkipJump)
needs only a predict function, so it is crafted on each victim's own deployed artifact (threat
:data:`~edgebench.specs.BLACK_BOX`), on the host or on the target (``where``). That is also what lets an ONNX
model with no torch twin and no surrogate be attacked; a plan with no attacks simply benchmarks it.
"""

from __future__ import annotations

from typing import Any

from edgebench.errors import ConfigError
from edgebench.specs import BLACK_BOX, WHERES, AttackSpec, ModelSpec, TargetSpec
from edgebench.toml_table import Table


def is_query(cls: Any) -> bool:
    """Whether the attack class ``cls`` crafts by queries to a predict function alone."""
    return bool(getattr(cls, "query_based", False))


def query_threat(t: Table, name: str) -> tuple[str, ...]:
    """A query attack's threat: :data:`BLACK_BOX` (each victim's own artifact), the only one it has."""
    raw = t.get("threat", (str, list), BLACK_BOX)
    if raw not in (BLACK_BOX, [BLACK_BOX]):
        raise t.fail("threat", f"{raw!r}: query attack {name!r} is crafted on each victim's own deployed artifact "
                               f"(threat {BLACK_BOX!r}); drop threat")
    return (BLACK_BOX,)


def attack_where(t: Table, name: str, query: bool) -> str:
    """``where`` an attack is crafted: ``host`` (default) or ``device`` (query attacks only)."""
    where = t.choice("where", list(WHERES), "host")
    if where == "device" and not query:
        raise t.fail("where", f"'device' runs query attacks (square, hopskipjump) inside the agent; {name!r} needs "
                              "the gradients of a torch twin, so it is crafted on the host: drop where")
    return where


def check_onnx_sources(models: tuple[ModelSpec, ...], attacks: tuple[AttackSpec, ...], source: str) -> None:
    """An ONNX model (no torch twin) whose examples would be crafted on an ONNX file by a gradient attack
    (white-box or matrix on itself, transfer without a surrogate) needs a torch ``attack_source``; query attacks
    and a plan with no attacks need none."""
    for i, m in enumerate(models):
        src = next(s for s in models if s.name == m.source)
        if not src.onnx:
            continue
        for a in attacks:
            on_twin = bool({"white-box", "matrix"} & set(a.threat)) or ("transfer" in a.threat and not a.surrogate)
            if BLACK_BOX not in a.threat and on_twin and a.attacks_unit(m.name, "base"):
                raise ConfigError(f"{source}: models[{i}]: {src.name!r} is an ONNX file and cannot craft white-box "
                                  f"attacks; set attack_source to a torch model of the plan (a surrogate) for "
                                  f"{a.label!r}, or use query attacks (square, hopskipjump)")


def check_device_attacks(attacks: tuple[AttackSpec, ...], targets: tuple[TargetSpec, ...], source: str) -> None:
    """An attack crafted on the target runs in each device job; a fleet splits the test sets across members, so
    it is refused there."""
    on_device = [i for i, a in enumerate(attacks) if a.where == "device"]
    fleets = [t.target for t in targets if t.fleet]
    if on_device and fleets:
        raise ConfigError(f"{source}: attacks[{on_device[0]}].where: 'device' is not supported on a fleet "
                          f"({fleets[0]!r}); craft it on the host (where = \"host\") or target one device")
