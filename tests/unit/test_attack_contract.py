"""The contract every registered attack keeps, as one table: a row per attack (small settings, an ε grid), and
each check run over ``ATTACKS.names()``, so a newly registered attack without a row fails here.

On the trained digits CNN (``trained_digits``, 32 test samples): adversarial inputs stay in [0, 1]; the budget
holds in the attack's norm (L∞, L2 or L0, as it declares; a minimal attack's result at a finite ε is its
unbounded result projected onto the ε-ball); success does not fall as ε grows; results are deterministic per
seed (and a seeded attack's seed matters); the model's mode, ``requires_grad`` flags and weights are as before
the call; the passes an attack reports are the passes it made (counted on the model itself) and, where the
attack documents a fixed cost, that cost. Checks specific to one attack (strength against a paper's or ART's
value, the update rule, parameter errors) stay in that attack's test file.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from edgebench.attacks import ATTACKS, create_attack
from edgebench.attacks.base import AttackResult, project
from edgebench.errors import AttackError
from tests.fixtures.models import Counted, assert_unchanged, snapshot

INF = float("inf")
N = 32
LINF = (0.0, 0.05, 0.1, 0.2, 0.3)
L2 = (0.0, 0.5, 1.0, 2.0)
L0 = (0.0, 0.05, 0.1, 0.2)  # fractions of the 64 features of an 8x8 digit
MINIMAL_L2 = (0.0, 0.5, 1.0, INF)

Cost = Callable[[tuple[float, ...]], tuple[int, int]]


def _iterative(steps: int) -> Cost:
    """ε = 0: one forward; each ε > 0: ``steps`` forward+backward and one forward on the last iterate."""
    return lambda eps: (1 + sum(e > 0 for e in eps) * (steps + 1), sum(e > 0 for e in eps) * steps)


def _per_eps(forward: int, backward: int) -> Cost:
    """ε = 0: one forward; each ε > 0: ``forward`` forward and ``backward`` backward passes."""
    return lambda eps: (1 + sum(e > 0 for e in eps) * forward, sum(e > 0 for e in eps) * backward)


def _cw_cost(steps: int, searches: int) -> Cost:
    """Without early abort: the clean prediction, ``searches · steps`` forward+backward, the prediction on the
    result; one forward for ε = 0 and one per finite ε > 0 (the projection's prediction)."""
    return lambda eps: (2 + searches * steps + sum(0 <= e < INF for e in eps), searches * steps)


@dataclass(frozen=True)
class Row:
    """How the contract runs one attack: its parameters, the ε grid, whether it draws random numbers from a
    ``seed`` parameter, and its documented cost in passes on that grid (``None`` where it depends on the data:
    early stops)."""

    params: dict[str, Any]
    eps: tuple[float, ...]
    seeded: bool = False
    cost: Cost | None = None
    needs: tuple[str, ...] = ()  # optional packages the row needs


TABLE: dict[str, Row] = {
    "apgd": Row({"steps": 4, "seed": 0}, LINF, seeded=True, cost=_iterative(4)),
    "art": Row({"attack": "BasicIterativeMethod", "params": {"max_iter": 3}, "eps_relative": {"eps_step": 0.5}},
               LINF, needs=("art",)),
    "bim": Row({"steps": 3}, LINF, cost=_iterative(3)),
    "cw": Row({"steps": 5, "binary_search_steps": 2, "lr": 0.1, "initial_const": 1.0, "abort_early": False},
              MINIMAL_L2, cost=_cw_cost(5, 2)),
    "deepfool": Row({"max_iter": 10}, MINIMAL_L2),
    "fgsm": Row({}, LINF, cost=_per_eps(2, 1)),
    "gaussian-noise": Row({"seed": 0}, LINF, seeded=True, cost=_per_eps(1, 0)),
    "hopskipjump": Row({"max_queries": 400, "max_iter": 3, "seed": 0}, MINIMAL_L2, seeded=True),
    "jsma": Row({}, L0),
    "mim": Row({"steps": 3}, LINF, cost=_iterative(3)),
    "pgd": Row({"steps": 3, "seed": 0}, LINF, seeded=True, cost=_iterative(3)),
    "pgd-l2": Row({"steps": 3, "seed": 0}, L2, seeded=True, cost=_iterative(3)),
    "square": Row({"max_queries": 40, "seed": 0}, LINF, seeded=True),
    "uap": Row({"max_epochs": 2, "inner_steps": 3, "batch_size": 16, "seed": 0}, LINF, seeded=True),
    "uniform-noise": Row({"seed": 0}, LINF, seeded=True, cost=_per_eps(1, 0)),
}

NAMES = ATTACKS.names()
MINIMAL = [n for n in NAMES if ATTACKS.get(n).minimal]  # the class's flag (art's follows its ART attack)


class _NoGrad(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.inner(x)


@dataclass
class _Runs:
    """One attack's calls, made once per module: ``main`` on a counted copy of the model in training mode with
    some parameters frozen (``state_before``/``model`` to compare), ``again`` the same settings on the plain
    model, ``reseeded`` with another seed (seeded attacks only)."""

    row: Row
    main: AttackResult
    again: AttackResult
    reseeded: AttackResult | None
    counted: Counted
    state_before: dict[str, Any]


def _row(name: str) -> Row:
    row = TABLE.get(name)
    assert row is not None, (f"attack {name!r} is registered but has no row in {__name__}.TABLE: add its small "
                             "settings and ε grid so the contract runs on it")
    for package in row.needs:
        pytest.importorskip(package, reason=f"attack {name!r} needs {package}")
    return row


@pytest.fixture(scope="module")
def data(trained_digits) -> tuple[nn.Module, np.ndarray, np.ndarray]:
    model, x, y = trained_digits
    return model, x[:N], y[:N]


@pytest.fixture(scope="module")
def runs(data) -> Callable[[str], _Runs]:
    model, x, y = data
    done: dict[str, _Runs] = {}

    def get(name: str) -> _Runs:
        if name not in done:
            row = _row(name)
            m = copy.deepcopy(model).train()
            next(m.parameters()).requires_grad_(False)  # a mix of frozen and trainable parameters
            before = snapshot(m)
            counted = Counted(m)
            main = create_attack(name, **row.params)(counted, x, y, eps=row.eps)
            again = create_attack(name, **row.params)(model, x, y, eps=row.eps)
            reseeded = None
            if row.seeded:
                reseeded = create_attack(name, **{**row.params, "seed": row.params["seed"] + 1})(model, x, y,
                                                                                                  eps=row.eps)
            done[name] = _Runs(row, main, again, reseeded, counted, before)
        return done[name]

    return get


def _pred(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x))).argmax(1).numpy()


# ------------------------------------------------------------------------------------------------- the table


def test_every_registered_attack_has_a_row() -> None:
    assert sorted(TABLE) == sorted(NAMES), "TABLE must have exactly one row per registered attack"


@pytest.mark.parametrize("name", NAMES)
def test_row_matches_the_attack(name) -> None:
    row = _row(name)
    attack = create_attack(name, **row.params)
    assert row.seeded == ("seed" in inspect.signature(type(attack)).parameters), "seeded: the attack takes a seed"
    assert attack.minimal == (INF in row.eps), "minimal attacks run to ε = inf, budgeted ones cannot"
    assert row.eps[0] == 0.0 and list(row.eps) == sorted(row.eps)


# ------------------------------------------------------------------------------------------------- results


@pytest.mark.parametrize("name", NAMES)
def test_result_is_consistent_and_inputs_stay_in_the_box(name, data, runs) -> None:
    model, x, y = data
    res = runs(name).main
    k = len(res.eps)
    assert res.eps == runs(name).row.eps and not res.targeted
    assert res.x_adv.shape == (k, *x.shape) and res.success.shape == (k, N) and res.pred.shape == (k, N)
    assert res.x_adv.min() >= 0.0 and res.x_adv.max() <= 1.0
    np.testing.assert_array_equal(res.x_adv[0], x)  # ε = 0 leaves x as it is
    delta = (res.x_adv - x[None]).reshape(k, N, -1)
    np.testing.assert_allclose(res.linf, np.abs(delta).max(2), atol=1e-7)
    np.testing.assert_allclose(res.l2, np.linalg.norm(delta, axis=2), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(res.l0, (np.abs(delta) > 1e-6).sum(2))
    for i in range(k):
        np.testing.assert_array_equal(res.pred[i], _pred(model, res.x_adv[i]))
        np.testing.assert_array_equal(res.success[i], res.pred[i] != y)


@pytest.mark.parametrize("name", NAMES)
def test_budget_holds_in_the_attacks_norm(name, data, runs) -> None:
    _, x, _ = data
    res = runs(name).main
    assert res.norm in ("linf", "l2", "l0", "none")
    for i, e in enumerate(res.eps):
        if e == INF or res.norm == "none":  # unbounded, or ε is a noise scale, not a budget
            continue
        if res.norm == "linf":
            assert res.linf[i].max() <= e + 1e-6, (e, res.linf[i].max())
        elif res.norm == "l2":
            assert res.l2[i].max() <= e + 1e-5, (e, res.l2[i].max())
        else:  # ε is the fraction of the features that may change
            assert res.l0[i].max() <= math.floor(e * x[0].size + 1e-6), (e, res.l0[i].max())


@pytest.mark.parametrize("name", MINIMAL)
def test_minimal_attack_result_at_finite_eps_is_the_projection(name, data, runs) -> None:
    """What a minimal attack promises at a finite ε: its unbounded perturbation projected onto the ε-ball, and
    where that perturbation is already inside the ball, the same success as unbounded."""
    _, x, _ = data
    res = runs(name).main
    assert create_attack(name, **runs(name).row.params).minimal and res.eps[-1] == INF
    unbounded = torch.from_numpy(res.x_adv[-1])
    # a query-based attack projects in numpy (device side): the same up to float32 rounding of the L2 norm
    atol = 1e-6 if create_attack(name, **runs(name).row.params).query_based else 0.0
    for i, e in enumerate(res.eps[1:-1], start=1):
        np.testing.assert_allclose(res.x_adv[i], project(unbounded, torch.from_numpy(x), e, res.norm).numpy(),
                                   rtol=0, atol=atol)
        inside = res.norms()[-1] <= e
        np.testing.assert_array_equal(res.success[i][inside], res.success[-1][inside])


@pytest.mark.parametrize("name", NAMES)
def test_success_does_not_fall_as_eps_grows(name, data, runs) -> None:
    model, x, y = data
    res = runs(name).main
    rate = res.success_rate()
    assert rate[0] == pytest.approx(np.mean(_pred(model, x) != y))
    assert np.all(np.diff(rate) >= 0), rate
    if create_attack(name, **runs(name).row.params).needs_gradient:
        assert rate[-1] > rate[0], rate  # a gradient attack does something on a trained model


@pytest.mark.parametrize("name", NAMES)
def test_results_are_deterministic_per_seed(name, runs) -> None:
    r = runs(name)
    np.testing.assert_array_equal(r.main.x_adv, r.again.x_adv)
    np.testing.assert_array_equal(r.main.pred, r.again.pred)
    if r.reseeded is not None:
        assert not np.array_equal(r.main.x_adv, r.reseeded.x_adv), "another seed must give other random draws"


@pytest.mark.parametrize("name", NAMES)
def test_model_state_is_restored(name, runs) -> None:
    r = runs(name)
    model = r.counted.inner
    assert_unchanged(model, r.state_before, what=f"attack {name!r}")
    assert all(mod.training for mod in model.modules())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_reported_passes_are_the_passes_made(name, runs) -> None:
    r = runs(name)
    passes = (r.main.passes.forward, r.main.passes.backward)
    # the base's check of the model's outputs (one forward on x[:8]) is not an attack pass
    assert passes == (r.counted.forwards - 1, r.counted.backwards)
    if r.row.cost is not None:
        assert passes == r.row.cost(r.row.eps), "the cost the attack's docstring states"


# ------------------------------------------------------------------------------------------------- targets


@pytest.mark.parametrize("name", NAMES)
def test_target_is_reached_or_refused(name, data) -> None:
    model, x, y = data
    row = _row(name)
    attack = create_attack(name, **row.params)
    target = (y + 1) % 10
    eps = (0.0, max(e for e in row.eps if e < INF)) if not attack.minimal else (0.0, INF)
    if not attack.targeted_ok:
        with pytest.raises(AttackError, match=f"attack '{name}'.*no targeted mode"):
            attack(model, x[:8], y[:8], eps=eps, target=target[:8])
        return
    res = attack(model, x, y, eps=eps, target=target)
    assert res.targeted and res.x_adv.min() >= 0.0 and res.x_adv.max() <= 1.0
    np.testing.assert_array_equal(res.success, res.pred == target[None, :])
    np.testing.assert_array_equal(res.pred[1], _pred(model, res.x_adv[1]))
    assert res.success_rate()[1] > res.success_rate()[0]


# ------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", NAMES)
def test_bad_eps_is_an_error_naming_the_attack(name, data) -> None:
    model, x, y = data
    attack = create_attack(name, **_row(name).params)
    for bad in ([0.1, -0.1], float("nan")):
        with pytest.raises(AttackError, match=f"attack '{name}'.*eps"):
            attack(model, x[:4], y[:4], eps=bad)
    if attack.minimal:
        assert attack(model, x[:4], y[:4], eps=INF).eps == (INF,)
    else:
        with pytest.raises(AttackError, match=f"attack '{name}'.*inf"):
            attack(model, x[:4], y[:4], eps=INF)


@pytest.mark.parametrize("name", NAMES)
def test_model_without_gradient(name, data) -> None:
    """A gradient attack on a model without input gradients is an error naming the attack (and the model's
    state is restored); at ε = 0 no gradient is needed. A gradient-free attack just runs."""
    model, x, y = data
    attack = create_attack(name, **_row(name).params)
    m = copy.deepcopy(model).train()
    eps = 0.5 if attack.minimal else _row(name).eps[1]
    if attack.needs_gradient:
        with pytest.raises(AttackError, match=f"attack '{name}'.*gradient"):
            attack(_NoGrad(m), x[:8], y[:8], eps=eps)
        assert m.training and all(p.requires_grad and p.grad is None for p in m.parameters())
        assert attack(_NoGrad(m), x[:8], y[:8], eps=0.0).success.shape == (1, 8)
    else:
        assert attack(_NoGrad(m), x[:8], y[:8], eps=eps).success.shape == (1, 8)
