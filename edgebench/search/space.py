"""A search plan's ``[budget]`` and ``[search]`` tables, validated at the edge (torch-free, no optuna).

A search plan is an ordinary plan (data, models, attacks, targets, measure, and optionally its own grid of
``[[compress]]`` / ``[[defend]]`` variants) plus::

    [budget]                    # hard constraints; a trial that breaks one is kept, as infeasible
    p50_ms = 1.0                # also p99_ms, size_mb (the true stored size), energy_mj, peak_rss_mb, min_clean_acc

    [search]
    trials = 12                 # how many trials (edgebench search --trials overrides)
    sampler = "nsga2"           # nsga2 (default), tpe or random
    objectives = ["robust_acc", "p50_ms", "size_mb"]   # the default; also clean_acc, p99_ms, energy_mj, peak_rss_mb
    order = ["defend-compress", "compress-defend"]     # a string fixes it, a list is searched

    [search.compress]           # at most one compression method per trial, with its parameters' ranges
    optional = true             # a trial may leave the model uncompressed (default true)
    kbit = { bits = [2, 3, 4, 8] }                          # a list: the choices
    magnitude_pruning = { ratio = { low = 0.3, high = 0.9, step = 0.1 } }   # a table: a range
    [search.defend]             # at most one defense per trial, likewise
    adversarial_training = { mode = "mixed", eps = [0.1, 0.2], epochs = 2 }  # a single value: fixed

A parameter's value is one of: a single value (fixed), a list (the choices; a list-valued parameter such as INQ's
``schedule`` is given as a list of lists) or ``{ low, high }`` with optional ``step`` and ``log`` (a range; integer
when ``low`` and ``high`` are integers). Every method and parameter is checked against the method registry here,
each choice and both ends of each range through the method's own checks: a bad entry is one line naming its key.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from edgebench.errors import ConfigError
from edgebench.specs import Plan
from edgebench.toml_table import Table

__all__ = ["BUDGET_GATES", "DIRECTIONS", "ORDERS", "SAMPLERS", "MethodSpace", "Param", "SearchSpec", "parse_search"]

#: ``[budget]`` keys and the ``[gates]`` key that checks each (:mod:`edgebench.report.gates`): one budget checker
BUDGET_GATES = {"p50_ms": "max_p50_ms", "p99_ms": "max_p99_ms", "size_mb": "max_stored_mb",
                "energy_mj": "max_energy_mj", "peak_rss_mb": "max_peak_rss_mb", "min_clean_acc": "min_clean_acc"}
#: the figures a search can optimize, and whether each is maximized
DIRECTIONS = {"robust_acc": "maximize", "clean_acc": "maximize", "p50_ms": "minimize", "p99_ms": "minimize",
              "size_mb": "minimize", "energy_mj": "minimize", "peak_rss_mb": "minimize"}
DEFAULT_OBJECTIVES = ("robust_acc", "p50_ms", "size_mb")
SAMPLERS = ("nsga2", "tpe", "random")
ORDERS = ("defend-compress", "compress-defend")
KINDS = ("compress", "defend")


@dataclass(frozen=True)
class Param:
    """One parameter of a method in the space: ``fixed`` (``value``), ``choice`` (``choices``), or a range
    ``int`` / ``float`` (``low``, ``high``, ``step``, ``log``)."""

    name: str
    kind: str
    value: Any = None
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False


@dataclass(frozen=True)
class MethodSpace:
    kind: str
    method: str
    params: tuple[Param, ...] = ()


@dataclass(frozen=True)
class SearchSpec:
    """The validated ``[search]`` and ``[budget]`` of a plan; ``model``, ``target`` and ``backend`` name the unit
    and the place every trial is measured (default: the plan's first torch model, first target, its first backend);
    ``eps`` the budget robust accuracy is read at (default: the middle of the plan's ε grid)."""

    compress: tuple[MethodSpace, ...] = ()
    defend: tuple[MethodSpace, ...] = ()
    compress_optional: bool = True
    defend_optional: bool = True
    order: tuple[str, ...] = ("defend-compress",)
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    sampler: str = "nsga2"
    population: int = 8
    seed: int = 0
    trials: int = 20
    eps: float = 0.0
    model: str = ""
    target: str = ""
    backend: str = ""
    budget: dict[str, float] = field(default_factory=dict)
    source: str = ""

    def methods(self, kind: str) -> tuple[MethodSpace, ...]:
        return self.compress if kind == "compress" else self.defend

    def optional(self, kind: str) -> bool:
        return self.compress_optional if kind == "compress" else self.defend_optional

    def directions(self) -> list[str]:
        return [DIRECTIONS[o] for o in self.objectives]

    def gates(self) -> dict[str, Any]:
        """The budget as a plan's ``[gates]`` (``units = "all"``: a trial of the empty chain is the base)."""
        return {BUDGET_GATES[k]: v for k, v in self.budget.items()} | {"units": "all"}

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source")
        d.pop("trials")  # how many trials to run is not what a trial is
        return d

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True, default=str).encode()).hexdigest()


def _plain(v: Any) -> bool:
    """A TOML value a parameter can take: a finite number, a string, a boolean, or a list of those."""
    if isinstance(v, bool | str):
        return True
    if isinstance(v, int | float):
        return math.isfinite(v) and abs(v) < 2**53
    if isinstance(v, list):
        return all(_plain(x) and not isinstance(x, list) for x in v)
    return False


def _param(t: Table, name: str) -> Param:
    raw = t.raw[name]
    t.used.add(name)
    if isinstance(raw, dict):
        r = Table(raw, t.source, t.path(name))
        low = r.number("low", None, required=True)
        high = r.number("high", None, required=True)
        step = r.number("step", None, lo=0, lo_open=True)
        log = r.get("log", bool, False)
        r.done()
        integer = all(isinstance(v, int) and not isinstance(v, bool) for v in (raw["low"], raw["high"])) and (
            step is None or float(step).is_integer())
        if integer:
            low, high = int(low), int(high)
        if not low < high:
            raise r.fail("high", f"a range needs low < high, got low = {low!r}, high = {high!r}")
        if log and (low <= 0 or step is not None):
            raise r.fail("log", "a log range needs low > 0 and no step")
        if max(abs(low), abs(high)) >= 2**53:
            raise r.fail("high", f"out of range: {high!r}")
        return Param(name, "int" if integer else "float", low=low, high=high,
                     step=None if step is None else (int(step) if integer else float(step)), log=log)
    if isinstance(raw, list):
        if not raw:
            raise t.fail(name, "an empty list gives no choice; give a value, a list of choices or {low, high}")
        if not all(_plain(v) for v in raw):
            raise t.fail(name, f"choices must be numbers, strings, booleans or lists of those, got {raw!r}")
        keys = [json.dumps(v, sort_keys=True) for v in raw]
        if len(set(keys)) != len(keys):
            raise t.fail(name, f"a choice is listed twice in {raw!r}")
        return Param(name, "choice", choices=tuple(raw))
    if not _plain(raw):
        raise t.fail(name, f"give a value, a list of choices or {{ low = .., high = .. }}, got {raw!r}")
    return Param(name, "fixed", value=raw)


def corners(params: tuple[Param, ...]) -> list[tuple[str | None, dict[str, Any]]]:
    """Parameter sets that, between them, hold every choice and both ends of every range once, the others at
    their first value: what the method's own checks are run on; each with the parameter it varies (None: all at
    their first value)."""
    first = {p.name: (p.value if p.kind == "fixed" else p.choices[0] if p.kind == "choice" else
                      p.low) for p in params}
    out: list[tuple[str | None, dict[str, Any]]] = [(None, dict(first))]
    for p in params:
        values = p.choices[1:] if p.kind == "choice" else (p.high,) if p.kind in ("int", "float") else ()
        out += [(p.name, first | {p.name: v}) for v in values]
    return out


def _methods(t: Table, kind: str) -> tuple[tuple[MethodSpace, ...], bool]:
    from edgebench.variants import create_method, method_for

    optional = t.get("optional", bool, True)
    out = []
    for method in [k for k in t.raw if k != "optional"]:
        where = t.path(method)
        if not isinstance(t.raw[method], dict):
            raise t.fail(method, f"give the method's parameter space as a table ({{ }} for its defaults), got "
                                 f"{t.raw[method]!r}")
        method_for(kind, method, where=f"{t.source}: {where}")
        m = Table(t.raw[method], t.source, where)
        params = tuple(_param(m, name) for name in list(m.raw))
        for varied, combo in corners(params):
            try:
                create_method(kind, method, where=f"{t.source}: {where}", **combo)
            except ConfigError as exc:
                raise ConfigError(_name_key(str(exc), t.source, where, combo, params, varied)) from None
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{t.source}: {where}: bad parameter value in {combo} ({exc})") from None
        out.append(MethodSpace(kind, method, params))
    if not out and not optional:
        raise t.fail("optional", f"false needs at least one {kind} method in the table")
    return tuple(out), optional


def _name_key(msg: str, source: str, where: str, combo: dict[str, Any], params: tuple[Param, ...],
              varied: str | None) -> str:
    """A method's own message about its parameters, prefixed with the space's key of the one at fault: the one
    varied, else the one the message names first."""
    msg = msg.removeprefix(f"{source}: ").removeprefix(f"{where}: ").removeprefix(f"{where}.")
    if varied is None:
        named = [(msg.find(p.name), p.name) for p in params if p.name in msg]
        varied = min(named)[1] if named else None
    if varied is None:
        return f"{source}: {where}: {msg}"
    return f"{source}: {where}.{varied}: {msg} (values {combo})"


def _objectives(s: Table) -> tuple[str, ...]:
    raw = s.get("objectives", list, list(DEFAULT_OBJECTIVES))
    if not raw or not all(isinstance(o, str) for o in raw) or len(set(raw)) != len(raw):
        raise s.fail("objectives", f"give distinct names from {list(DIRECTIONS)}, got {raw!r}")
    bad = [o for o in raw if o not in DIRECTIONS]
    if bad:
        raise s.fail("objectives", f"{bad[0]!r} is not one of {list(DIRECTIONS)}")
    return tuple(raw)


def _order(s: Table) -> tuple[str, ...]:
    raw = s.get("order", (str, list), ORDERS[0])
    values = [raw] if isinstance(raw, str) else raw
    if not values or not all(isinstance(v, str) and v in ORDERS for v in values) or len(set(values)) != len(values):
        raise s.fail("order", f"give one of {list(ORDERS)} or a list of them (searched), got {raw!r}")
    return tuple(values)


def _grid(plan: Plan) -> list[float]:
    return sorted({e for a in plan.attacks if not a.min_eps for e in a.eps if math.isfinite(e)})


def parse_search(raw: dict[str, Any], plan: Plan) -> SearchSpec | None:
    """The ``[search]`` and ``[budget]`` of the plan document ``raw`` (already parsed as ``plan``), or None where it
    has neither. Every error is one line naming the file and the key."""
    if "search" not in raw and "budget" not in raw:
        return None
    source = plan.source
    top = Table({k: raw[k] for k in ("search", "budget") if k in raw}, source, "")
    b = top.table("budget")
    budget: dict[str, float] = {}
    for key in list(b.raw):
        if key not in BUDGET_GATES:
            raise b.fail(key, f"unknown key; allowed keys here: {sorted(BUDGET_GATES)}")
        if key == "min_clean_acc":
            budget[key] = float(b.number(key, None, lo=0.0, hi=1.0))
        else:
            budget[key] = float(b.number(key, None, lo=0.0, lo_open=True))
    s = top.table("search")
    if "search" not in raw:
        raise ConfigError(f"{source}: search: a [budget] needs a [search] table (the space to search); add one")
    torch_models = [m.name for m in plan.models if not m.onnx]
    if not torch_models:
        raise s.fail("model", "the plan has no torch model to compress or defend (ONNX models cannot be changed)")
    model = s.choice("model", torch_models, torch_models[0])
    if not plan.targets:
        raise ConfigError(f"{source}: targets: a search measures every trial on a target; add a [[targets]] entry")
    target = s.choice("target", [t.target for t in plan.targets], plan.targets[0].target)
    tspec = next(t for t in plan.targets if t.target == target)
    backend = s.choice("backend", list(tspec.backends), tspec.backends[0] if tspec.backends else None,
                       required=not tspec.backends)
    grid = _grid(plan)
    if not grid:
        raise ConfigError(f"{source}: attacks: a search reads robust accuracy at an ε of the attacks' grid; add an "
                          "[[attacks]] entry with eps > 0")
    eps = s.number("eps", grid[(len(grid) - 1) // 2], lo=0.0)
    if not any(math.isclose(eps, e, rel_tol=1e-9, abs_tol=1e-12) for e in grid):
        raise s.fail("eps", f"{eps!r} is not in the attacks' ε grid {grid}")
    spec = SearchSpec(
        objectives=_objectives(s), sampler=s.choice("sampler", list(SAMPLERS), "nsga2"),
        population=s.number("population", 8, lo=2, integer=True), seed=s.number("seed", plan.seed, lo=0, integer=True),
        trials=s.number("trials", 20, lo=1, integer=True), eps=float(eps), order=_order(s), model=model, target=target,
        backend=backend, budget=budget, source=source,
        **_kinds(s))
    if spec.seed >= 2**32 or spec.trials > 100_000 or spec.population > 100_000:
        raise s.fail("seed" if spec.seed >= 2**32 else "trials" if spec.trials > 100_000 else "population",
                     "out of range")
    s.done()
    if not spec.compress and not spec.defend:
        raise s.fail("compress", "the space is empty: give [search.compress] or [search.defend] methods")
    return spec


def _kinds(s: Table) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in KINDS:
        methods, optional = _methods(s.table(kind), kind)
        out[kind] = methods
        out[f"{kind}_optional"] = optional
    return out
