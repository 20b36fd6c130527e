"""FGSM and PGD on a really trained digits CNN (the ``trained_digits`` fixture): strength, FGSM's exact step,
the seed without a random start, targeted mode, the state restored after an error and the errors a user can
cause. The contract every attack keeps (box, budget, monotonicity, determinism, state, passes) is in
``test_attack_contract.py``."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from edgebench.attacks import create_attack
from edgebench.attacks.fgsm import FGSM
from edgebench.attacks.pgd import PGD
from edgebench.errors import AttackError, ConfigError, UnknownNameError

EPS = [0.0, 0.05, 0.1, 0.2]


@pytest.fixture(scope="module")
def fgsm_result(trained_digits):
    model, x, y = trained_digits
    return FGSM()(model, x, y, eps=EPS)


@pytest.fixture(scope="module")
def pgd_result(trained_digits):
    model, x, y = trained_digits
    return PGD(steps=7, seed=0)(model, x, y, eps=EPS)


def _clean_pred(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).argmax(1).numpy()


def test_pgd_at_least_as_strong_as_fgsm(fgsm_result, pgd_result) -> None:
    f, p = fgsm_result.success_rate(), pgd_result.success_rate()
    for i, e in enumerate(EPS):
        if e > 0:
            assert p[i] >= f[i], (e, p[i], f[i])
    assert p[0] == f[0]
    assert f[-1] > f[0] + 0.3, f  # the attacks really do something on a trained model


def test_fgsm_perturbation_is_exactly_eps_where_clipping_does_not_bind(trained_digits, fgsm_result) -> None:
    _, x, _ = trained_digits
    for i, e in enumerate(EPS[1:], start=1):
        assert fgsm_result.linf[i].max() == pytest.approx(e, abs=1e-6)
        delta = fgsm_result.x_adv[i] - x
        # every pixel moved by exactly ±eps, 0 (zero gradient) or up to the box edge (clipped)
        inside = (x + e <= 1.0) & (x - e >= 0.0)
        moved = np.abs(delta[inside])
        assert np.all((np.abs(moved - e) <= 1e-6) | (moved == 0))
        assert np.mean(np.abs(moved - e) <= 1e-6) > 0.5


@pytest.mark.parametrize("name", ["pgd", "pgd-l2", "apgd"])
def test_without_random_start_the_seed_does_not_matter(name, trained_digits) -> None:
    model, x, y = trained_digits
    d, e = (create_attack(name, steps=3, seed=s, random_start=False)(model, x[:64], y[:64], eps=[0.5])
            for s in (1, 2))
    np.testing.assert_array_equal(d.x_adv, e.x_adv)


def test_targeted_pgd_reaches_the_target(trained_digits) -> None:
    model, x, y = trained_digits
    target = (y + 1) % 10
    eps = [0.0, 0.05, 0.1, 0.2, 0.3]
    res = PGD(steps=7, seed=0)(model, x, y, eps=eps, target=target)
    assert res.targeted
    np.testing.assert_array_equal(res.success, res.pred == target[None, :])
    rate = res.success_rate()
    assert np.all(np.diff(rate) >= 0), rate
    assert rate[-1] > rate[1], rate
    assert rate[-1] > 0.5, rate
    assert rate[0] == pytest.approx(np.mean(_clean_pred(model, x) == target))
    assert np.all(res.linf <= np.asarray(eps)[:, None] + 1e-6)
    # targeted FGSM moves towards the target too
    f = FGSM()(model, x, y, eps=[0.0, 0.3], target=target).success_rate()
    assert f[1] > f[0]


def test_model_state_is_restored_after_an_error(trained_digits) -> None:
    model, x, y = trained_digits
    m = copy.deepcopy(model)
    m.train()

    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = m
            self.calls = 0

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            if self.calls > 1:
                raise RuntimeError("boom")
            return self.inner(t)

    b = Broken()
    b.train()
    with pytest.raises(RuntimeError, match="boom"):
        FGSM()(b, x[:8], y[:8], eps=0.1)
    assert b.training and m.training
    assert all(p.requires_grad for p in b.parameters())


# ------------------------------------------------------------------------------------------------ bad input


def test_inputs_outside_unit_box_are_an_error(trained_digits) -> None:
    model, x, y = trained_digits
    with pytest.raises(AttackError, match=r"\[0, 1\]"):
        FGSM()(model, x[:4] * 2.0 + 0.1, y[:4], eps=0.1)
    with pytest.raises(AttackError, match=r"\[0, 1\]"):
        FGSM()(model, x[:4] - 0.5, y[:4], eps=0.1)


def test_labels_of_wrong_length_are_an_error(trained_digits) -> None:
    model, x, y = trained_digits
    with pytest.raises(AttackError, match=r"labels must have shape \(4,\)"):
        PGD(steps=1)(model, x[:4], y[:3], eps=0.1)
    with pytest.raises(AttackError, match="labels"):
        PGD(steps=1)(model, x[:4], y[:4, None], eps=0.1)


def test_softmax_model_warns_about_probabilities(trained_digits) -> None:
    model, x, y = trained_digits
    probs = nn.Sequential(copy.deepcopy(model), nn.Softmax(dim=1))
    with pytest.warns(UserWarning, match="probabilities"):
        FGSM()(probs, x[:8], y[:8], eps=0.1)


def test_logits_model_does_not_warn(trained_digits) -> None:
    import warnings

    model, x, y = trained_digits
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FGSM()(model, x[:8], y[:8], eps=0.1)


def test_create_attack_rejects_unknown_parameter_and_name() -> None:
    with pytest.raises(ConfigError, match="stepz") as info:
        create_attack("pgd", stepz=3)
    assert "pgd" in str(info.value)
    with pytest.raises(UnknownNameError, match="Did you mean 'pgd'"):
        create_attack("pgdd")
    with pytest.raises(ConfigError, match="steps"):
        PGD(steps=0)
    with pytest.raises(ConfigError, match="steps"):
        create_attack("pgd", steps=0)
    with pytest.raises(ConfigError, match="rel_stepsize must be a finite number > 0"):
        PGD(rel_stepsize=-1.0)
    pgd = create_attack("pgd", steps=5, seed=3)
    assert isinstance(pgd, PGD) and pgd.steps == 5 and pgd.seed == 3
