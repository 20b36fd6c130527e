"""FGSM and PGD on a really trained digits CNN (the ``trained_digits`` fixture): monotonicity in ε, budgets,
pass counts, determinism, targeted mode, model-state restoration and the errors a user can cause."""

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


@pytest.mark.parametrize("which", ["fgsm", "pgd"])
def test_success_grows_with_eps_and_budget_holds(which, trained_digits, fgsm_result, pgd_result) -> None:
    model, x, y = trained_digits
    res = fgsm_result if which == "fgsm" else pgd_result
    k, n = len(EPS), len(x)
    assert res.eps == tuple(EPS)
    assert res.x_adv.shape == (k, *x.shape) and res.success.shape == (k, n) and res.pred.shape == (k, n)
    assert res.linf.shape == (k, n) and res.l2.shape == (k, n)
    assert not res.targeted

    rate = res.success_rate()
    assert np.all(np.diff(rate) >= 0), rate
    assert rate[-1] > rate[0] + 0.3, rate  # the attack really does something on a trained_digits model

    clean = _clean_pred(model, x)
    np.testing.assert_array_equal(res.pred[0], clean)
    np.testing.assert_array_equal(res.success[0], clean != y)
    assert rate[0] == pytest.approx(np.mean(clean != y))
    np.testing.assert_array_equal(res.x_adv[0], x)
    assert np.all(res.linf[0] == 0) and np.all(res.l2[0] == 0)

    assert res.x_adv.min() >= 0.0 and res.x_adv.max() <= 1.0
    for i, e in enumerate(EPS):
        assert np.all(res.linf[i] <= e + 1e-6), (e, res.linf[i].max())
        # linf/l2 are the norms of the stored perturbation
        delta = (res.x_adv[i] - x).reshape(n, -1)
        np.testing.assert_allclose(res.linf[i], np.abs(delta).max(1), atol=1e-7)
        np.testing.assert_allclose(res.l2[i], np.linalg.norm(delta, axis=1), rtol=1e-5, atol=1e-6)
        # pred is the model's top-1 on x_adv; success is misclassification
        np.testing.assert_array_equal(res.pred[i], _clean_pred(model, res.x_adv[i]))
        np.testing.assert_array_equal(res.success[i], res.pred[i] != y)


def test_pgd_at_least_as_strong_as_fgsm(fgsm_result, pgd_result) -> None:
    f, p = fgsm_result.success_rate(), pgd_result.success_rate()
    for i, e in enumerate(EPS):
        if e > 0:
            assert p[i] >= f[i], (e, p[i], f[i])
    assert p[0] == f[0]


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


def test_pass_counts(trained_digits, fgsm_result, pgd_result) -> None:
    # The base's logits check (one forward on x[:8]) is not counted in Passes; ε = 0 costs one forward.
    # FGSM per ε > 0: 1 forward + 1 backward (gradient), 1 forward (prediction on x_adv).
    assert (fgsm_result.passes.forward, fgsm_result.passes.backward) == (1 + 3 * 2, 3)
    # PGD(steps=7) per ε > 0: 7 forward + 7 backward, 1 forward on the last iterate.
    assert (pgd_result.passes.forward, pgd_result.passes.backward) == (1 + 3 * 8, 3 * 7)
    model, x, y = trained_digits
    one = FGSM()(model, x[:16], y[:16], eps=0.1)
    assert (one.passes.forward, one.passes.backward) == (2, 1)
    assert one.x_adv.shape == (1, 16, 1, 8, 8)


def test_pgd_is_deterministic_per_seed(trained_digits) -> None:
    model, x, y = trained_digits
    x, y = x[:64], y[:64]
    a = PGD(steps=3, seed=1)(model, x, y, eps=[0.1])
    b = PGD(steps=3, seed=1)(model, x, y, eps=[0.1])
    c = PGD(steps=3, seed=2)(model, x, y, eps=[0.1])
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    np.testing.assert_array_equal(a.pred, b.pred)
    assert not np.array_equal(a.x_adv, c.x_adv)
    # without a random start the seed does not matter
    d = PGD(steps=3, seed=1, random_start=False)(model, x, y, eps=[0.1])
    e = PGD(steps=3, seed=2, random_start=False)(model, x, y, eps=[0.1])
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


def test_model_state_is_restored(trained_digits) -> None:
    model, x, y = trained_digits
    m = copy.deepcopy(model)
    m.train()
    params = list(m.parameters())
    params[0].requires_grad_(False)  # a mix of frozen and trainable parameters
    flags = [p.requires_grad for p in params]
    before = [p.detach().clone() for p in params]
    for attack in (FGSM(), PGD(steps=2)):
        attack(m, x[:32], y[:32], eps=[0.0, 0.1])
        assert m.training
        assert all(mod.training for mod in m.modules())
        assert [p.requires_grad for p in params] == flags
        assert all(p.grad is None for p in params)
        assert all(torch.equal(p, b) for p, b in zip(params, before))
    m.eval()
    FGSM()(m, x[:8], y[:8], eps=0.1)
    assert not m.training


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


@pytest.mark.parametrize("name", ["fgsm", "pgd"])
def test_negative_eps_is_an_error_naming_the_attack(name, trained_digits) -> None:
    model, x, y = trained_digits
    with pytest.raises(AttackError, match=f"attack '{name}'.*eps"):
        create_attack(name)(model, x[:4], y[:4], eps=[0.1, -0.1])
    with pytest.raises(AttackError, match=f"attack '{name}'"):
        create_attack(name)(model, x[:4], y[:4], eps=float("nan"))


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


class _ConstantOutput(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(x), 10) + x.detach().sum() * 0


class _NoGrad(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.inner(x)


@pytest.mark.parametrize("attack", [FGSM(), PGD(steps=2)], ids=["fgsm", "pgd"])
@pytest.mark.parametrize("kind", ["constant", "no_grad"])
def test_model_without_gradient_is_an_error(attack, kind, trained_digits) -> None:
    model, x, y = trained_digits
    m = _ConstantOutput() if kind == "constant" else _NoGrad(copy.deepcopy(model))
    with pytest.raises(AttackError, match=f"attack '{attack.name}'.*gradient"):
        attack(m, x[:8], y[:8], eps=0.1)
    # at eps 0 no gradient is needed
    assert attack(m, x[:8], y[:8], eps=0.0).success.shape == (1, 8)


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
