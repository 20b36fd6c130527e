"""BIM, MIM, PGD-L2, the noise baselines and UAP on a really trained digits CNN (the ``trained_digits``
fixture): flags, relative strength (iterative ≥ one-step ≫ noise), the update rules, targeted mode, the noise
draws, the universal perturbation's sharing and its costs, and the parameter errors. The contract every attack
keeps (box, budget, monotonicity, determinism, state, passes) is in ``test_attack_contract.py``."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from torch import nn

from edgebench.attacks import ATTACKS, create_attack
from edgebench.attacks._gradient import iterate, normalize_l2, random_start_l2
from edgebench.attacks.base import Passes, frozen, project_l2
from edgebench.attacks.bim import BIM
from edgebench.attacks.fgsm import FGSM
from edgebench.attacks.gaussian_noise import GaussianNoise
from edgebench.attacks.mim import MIM
from edgebench.attacks.pgd import PGD
from edgebench.attacks.pgd_l2 import PGDL2
from edgebench.attacks.uap import UAP
from edgebench.attacks.uniform_noise import UniformNoise
from edgebench.errors import ConfigError

LINF = [0.0, 0.05, 0.1, 0.2]
L2 = [0.0, 0.5, 1.0, 2.0]
UAP_EPS = [0.0, 0.1, 0.2, 0.3]

# name -> (attack factory, ε grid); every one is run once per module (see ``results``)
SPECS = {
    "fgsm": (lambda: FGSM(), LINF),
    "bim": (lambda: BIM(), LINF),
    "mim": (lambda: MIM(), LINF),
    "pgd-l2": (lambda: PGDL2(steps=10, seed=0), L2),
    "uniform-noise": (lambda: UniformNoise(seed=0), LINF),
    "uniform-noise-r3": (lambda: UniformNoise(seed=0, repeats=3), LINF),
    "gaussian-noise": (lambda: GaussianNoise(seed=0), LINF),
    "uap": (lambda: UAP(seed=0), UAP_EPS),
    "uap-l2": (lambda: UAP(norm_p="l2", seed=0), L2),
}


@pytest.fixture(scope="module")
def results(trained_digits):
    model, x, y = trained_digits
    return {key: factory()(model, x, y, eps=eps) for key, (factory, eps) in SPECS.items()}


def _pred(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x))).argmax(1).numpy()


def test_norms_and_flags() -> None:
    assert {"bim", "mim", "pgd-l2", "uniform-noise", "gaussian-noise", "uap"} <= set(ATTACKS.names())
    assert (BIM.norm, MIM.norm, PGDL2.norm, UniformNoise.norm, GaussianNoise.norm) == (
        "linf",
        "linf",
        "l2",
        "linf",
        "none",
    )
    assert UAP.universal and not BIM.universal
    assert UAP().norm == "linf" and UAP(norm_p="l2").norm == "l2" and UAP.norm == "linf"
    for cls in (UniformNoise, GaussianNoise, UAP):
        assert not cls.targeted_ok
    for cls in (UniformNoise, GaussianNoise):
        assert not cls.needs_gradient
    for cls in (BIM, MIM, PGDL2, UAP):
        assert cls.needs_gradient
    assert BIM().steps == 10 and BIM().rel_stepsize is None
    assert MIM().decay == 1.0 and MIM().steps == 10
    assert PGDL2().steps == 40 and PGDL2().random_start
    u = UAP()
    assert (u.max_epochs, u.target_fooling, u.inner_steps, u.batch_size) == (5, 0.8, 10, 128)


# ------------------------------------------------------------------------------------- strength


def test_gradient_attacks_are_strong(results) -> None:
    bim, mim, pgd2 = (results[k].success_rate() for k in ("bim", "mim", "pgd-l2"))
    assert bim[-1] > 0.85 and mim[-1] > 0.85, (bim, mim)  # at ε = 0.2 (measured ~0.96)
    assert bim[2] > 0.4 and mim[2] > 0.4, (bim, mim)  # at ε = 0.1 (measured ~0.5)
    assert pgd2[-1] > 0.9 and pgd2[2] > 0.8, pgd2  # at ε = 2 and 1 (measured 1.0 and ~0.95)


def test_bim_at_least_as_strong_as_fgsm(results) -> None:
    b, f = results["bim"].success_rate(), results["fgsm"].success_rate()
    assert np.all(b >= f), (b, f)
    assert b.sum() > f.sum(), (b, f)


def test_noise_is_far_weaker_than_attacks(results) -> None:
    uni, bim = results["uniform-noise"].success_rate(), results["bim"].success_rate()
    gauss = results["gaussian-noise"].success_rate()
    i = LINF.index(0.1)
    assert uni[i] < 0.2 and gauss[i] < 0.2, (uni, gauss)  # measured ~0.1: barely above the clean error
    assert bim[i] > 0.4 and bim[i] > uni[i] + 0.25, (bim, uni)
    assert np.all(bim >= uni), (bim, uni)


def test_pgd_l2_beats_gaussian_noise_of_the_same_l2_norm(trained_digits) -> None:
    model, x, y = trained_digits
    noise = GaussianNoise(seed=0)(model, x, y, eps=0.25)
    budget = float(noise.l2[0].min())  # PGD may use no more L2 than the smallest noise draw
    assert budget > 1.0, budget
    pgd = PGDL2(steps=10, seed=0)(model, x, y, eps=budget)
    assert pgd.l2.max() <= budget + 1e-5
    assert pgd.success_rate()[0] > noise.success_rate()[0] + 0.5, (pgd.success_rate(), noise.success_rate())


def test_mim_without_momentum_is_bim(trained_digits, results) -> None:
    model, x, y = trained_digits
    m0 = MIM(decay=0.0)(model, x, y, eps=LINF)
    np.testing.assert_array_equal(m0.x_adv, results["bim"].x_adv)
    assert not np.array_equal(results["mim"].x_adv, results["bim"].x_adv)  # momentum changes the path


@pytest.mark.parametrize("attack", [BIM(steps=5, rel_stepsize=0.5), MIM(steps=5, rel_stepsize=0.5)], ids=["bim", "mim"])
def test_iterates_are_projected_onto_the_ball(attack, trained_digits) -> None:
    # steps that could travel 2.5 ε: only the projection keeps the perturbation inside the ball
    model, x, y = trained_digits
    res = attack(model, x, y, eps=[0.1])
    assert res.linf.max() <= 0.1 + 1e-6
    assert np.mean(np.isclose(res.linf[0], 0.1, atol=1e-6)) > 0.5


def test_mim_follows_the_l1_normalised_momentum(trained_digits) -> None:
    """A reference implementation of Dong et al.'s Algorithm 1 (with the first successful iterate kept)."""
    model, x, y = trained_digits
    x, y = torch.from_numpy(x[:32]), torch.from_numpy(y[:32])
    eps, steps, mu = 0.1, 4, 0.7
    alpha = eps / steps
    xt, g = x.clone(), torch.zeros_like(x)
    kept, hit = x.clone(), torch.zeros(len(x), dtype=torch.bool)
    for _ in range(steps):
        xt.requires_grad_(True)
        logits = model(xt)
        (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, y, reduction="sum"), xt)
        xt = xt.detach()
        new = (logits.argmax(1) != y) & ~hit
        kept[new], hit = xt[new], hit | new
        g = mu * g + grad / grad.abs().sum(dim=(1, 2, 3), keepdim=True)
        xt = torch.clamp(torch.minimum(torch.maximum(xt + alpha * g.sign(), x - eps), x + eps), 0, 1)
    kept[~hit] = xt[~hit]
    res = MIM(steps=steps, decay=mu)(model, x, y, eps=eps)
    np.testing.assert_allclose(res.x_adv[0], kept.numpy(), atol=1e-6)


def test_pgd_l2_is_pgds_loop_with_the_l2_step(trained_digits) -> None:
    """PGDL2 is PGD with the L2 start, step and projection: its result equals the update rule of its docstring
    written out with the shared helpers, bit for bit (targeted too), and it takes PGD's parameters."""
    model, x, y = trained_digits
    xt, yt = torch.from_numpy(x[:64]), torch.from_numpy(y[:64])
    eps, steps, seed = 1.0, 6, 5
    alpha = 2.5 / steps * eps
    for target in (None, (yt + 1) % 10):
        start = random_start_l2(xt, eps, torch.Generator().manual_seed(seed))
        with frozen(model):
            want, pred = iterate(model, xt, yt, target, Passes(), attack="pgd-l2", start=start, steps=steps,
                                 update=lambda x_t, g: project_l2(x_t + alpha * normalize_l2(g), xt, eps))
        got = PGDL2(steps=steps, seed=seed)(model, xt, yt, eps=eps, target=target)
        np.testing.assert_array_equal(got.x_adv[0], want.numpy())
        np.testing.assert_array_equal(got.pred[0], pred.numpy())
    assert inspect.signature(PGDL2).parameters == inspect.signature(PGD).parameters


# ------------------------------------------------------------------------------------- pass counts


def test_noise_repeats_pass_counts(results) -> None:
    # `repeats` forwards per ε > 0, never a backward; ε = 0 costs one forward (one draw: the contract table)
    assert (results["uniform-noise-r3"].passes.forward, results["uniform-noise-r3"].passes.backward) == (1 + 9, 0)


def test_uap_pass_counts(trained_digits) -> None:
    model, x, y = trained_digits
    # unreachable fooling target, tiny ε: every epoch runs every step of every batch.
    # 200 samples / 64 = 4 batches; per epoch 1 forward (fooling check) + 4 x 3 forward+backward; 1 final forward
    res = UAP(max_epochs=2, inner_steps=3, batch_size=64, target_fooling=1.0)(model, x, y, eps=[0.0, 0.02])
    assert (res.passes.forward, res.passes.backward) == (1 + 2 * (1 + 4 * 3) + 1, 2 * 4 * 3)
    # a target the clean error already meets stops at the first check: δ = 0, one forward, no gradient
    clean_error = float(np.mean(_pred(model, x) != y))
    assert clean_error > 0.02
    res = UAP(target_fooling=0.02)(model, x, y, eps=[0.0, 0.3])
    assert (res.passes.forward, res.passes.backward) == (2, 0)
    np.testing.assert_array_equal(res.x_adv[1], x)


def test_uap_inner_loop_stops_once_the_batch_is_fooled(trained_digits) -> None:
    model, x, y = trained_digits
    ok = _pred(model, x) == y
    xs, ys = x[ok][:4], y[ok][:4]  # one batch of 4 correctly classified samples, a large budget
    res = UAP(max_epochs=3, inner_steps=10, batch_size=4, target_fooling=1.0)(model, xs, ys, eps=0.5)
    assert res.success_rate()[0] == 1.0
    # epoch 1: a check, then k < 10 inner steps (the k-th finds all fooled and ends the loop);
    # epoch 2: the check meets the target and stops the run (its forward gives the result)
    k = res.passes.backward
    assert 1 <= k < 10, res.passes
    assert res.passes.forward == 1 + k + 1, res.passes


# ------------------------------------------------------------------------------------- targeted


@pytest.mark.parametrize(
    ("make", "eps", "floor"),
    [
        (lambda: BIM(), [0.0, 0.1, 0.3], 0.6),
        (lambda: MIM(), [0.0, 0.1, 0.3], 0.6),
        (lambda: PGDL2(steps=10, seed=0), [0.0, 1.0, 2.0], 0.8),
    ],
    ids=["bim", "mim", "pgd-l2"],
)
def test_targeted_reaches_the_target_more_often_at_larger_eps(make, eps, floor, trained_digits) -> None:
    model, x, y = trained_digits
    target = (y + 1) % 10
    res = make()(model, x, y, eps=eps, target=target)
    assert res.targeted
    np.testing.assert_array_equal(res.success, res.pred == target[None, :])
    rate = res.success_rate()
    assert rate[0] == pytest.approx(np.mean(_pred(model, x) == target))
    assert rate[0] < rate[1] < rate[2], rate
    assert rate[2] > floor, rate
    norms = res.linf if res.norm == "linf" else res.l2
    assert np.all(norms <= np.asarray(eps)[:, None] + 1e-5)


# ------------------------------------------------------------------------------------- noise baselines


def test_uniform_noise_fills_the_ball(trained_digits, results) -> None:
    _, x, _ = trained_digits
    res = results["uniform-noise"]
    for i, e in enumerate(LINF[1:], start=1):
        delta = res.x_adv[i] - x
        inside = (x - e >= 0.0) & (x + e <= 1.0)  # where clipping cannot bind
        assert np.abs(delta[inside]).max() > 0.95 * e
        assert np.abs(delta[inside]).mean() == pytest.approx(e / 2, rel=0.05)  # E|U(-e, e)| = e / 2
        assert abs(delta[inside].mean()) < 0.02 * e


def test_gaussian_noise_has_std_eps_and_one_direction_per_draw(trained_digits, results) -> None:
    _, x, _ = trained_digits
    res = results["gaussian-noise"]
    assert res.norm == "none"
    for i, e in enumerate(LINF[1:], start=1):
        delta = res.x_adv[i] - x
        mid = (x >= 0.4) & (x <= 0.6)  # clipping binds only beyond 4σ at σ = 0.1 (and rarely at 0.2)
        assert mid.sum() > 500
        if e <= 0.1:
            assert delta[mid].std() == pytest.approx(e, rel=0.1)
    # the same seeded draw at every ε, only scaled: where nothing is clipped, δ(0.1) = 2 δ(0.05)
    d1, d2 = res.x_adv[1] - x, res.x_adv[2] - x
    free = (res.x_adv[2] > 0) & (res.x_adv[2] < 1)
    np.testing.assert_allclose(d2[free], 2 * d1[free], atol=1e-5)
    assert res.linf[3].max() > 0.2  # not an L∞ budget


def test_repeats_count_a_sample_fooled_by_any_draw(results) -> None:
    one, three = results["uniform-noise"], results["uniform-noise-r3"]
    # draw 1 of repeats=3 is the single draw of repeats=1: its successes are a subset
    assert np.all(three.success[one.success]), "a sample fooled by the first draw must stay fooled"
    np.testing.assert_array_equal(three.x_adv[one.success], one.x_adv[one.success])  # the first fooling draw kept
    assert three.success_rate()[-1] > one.success_rate()[-1]


# ------------------------------------------------------------------------------------- UAP


@pytest.mark.parametrize("key", ["uap", "uap-l2"])
def test_uap_is_one_perturbation_for_all_samples(key, trained_digits, results) -> None:
    _, x, _ = trained_digits
    res = results[key]
    eps = SPECS[key][1]
    assert res.norm == ("l2" if key == "uap-l2" else "linf")
    n = len(x)
    for i, e in enumerate(eps[1:], start=1):
        delta = (res.x_adv[i] - x).reshape(n, -1)
        adv = res.x_adv[i].reshape(n, -1)
        free = (adv > 0.0) & (adv < 1.0)  # entries where clipping did not bind
        # recover δ feature by feature from the unclipped entries; they must all agree. (A few border pixels
        # of the digits are 0 in every image, and δ < 0 there is clipped everywhere: δ is unknown there.)
        known = free.any(0)
        assert known.mean() > 0.75, known.mean()
        masked = np.where(free, delta, np.nan)[:, known]
        shared = np.nanmedian(masked, axis=0)
        spread = np.nanmax(masked, axis=0) - np.nanmin(masked, axis=0)
        assert spread.max() < 1e-6, spread.max()
        # clipped entries moved towards the box edge by no more than δ
        clipped = ~free[:, known]
        bound = np.broadcast_to(np.abs(shared), clipped.shape)
        assert np.all(np.abs(delta[:, known][clipped]) <= bound[clipped] + 1e-6)
        assert np.abs(shared).max() > 0
        if key == "uap":
            assert np.abs(shared).max() <= e + 1e-6
            assert np.abs(shared).max() == pytest.approx(e, abs=1e-6)  # the budget is used
        else:
            assert np.linalg.norm(shared) <= e + 1e-5


def test_uap_fools_far_more_than_noise_and_less_than_per_sample_attacks(trained_digits, results) -> None:
    model, x, y = trained_digits
    uap = results["uap"].success_rate()
    i = UAP_EPS.index(0.3)
    noise = UniformNoise(seed=0)(model, x, y, eps=0.3).success_rate()[0]
    assert uap[i] > 0.5 and uap[i] > noise + 0.35, (uap, noise)  # measured ~0.7 vs ~0.14
    bim = results["bim"].success_rate()
    assert uap[UAP_EPS.index(0.2)] < bim[LINF.index(0.2)] - 0.2  # one δ for all is much weaker than one each
    assert results["uap-l2"].success_rate()[-1] > 0.5


@pytest.mark.parametrize("norm_p", ["linf", "l2"])
def test_uap_more_epochs_never_fool_fewer(norm_p, trained_digits) -> None:
    # the same seed replays the same δ trajectory, and the best δ measured is kept: one more epoch only adds
    # candidates (without keeping the best, the L2 rate drops from 0.78 to 0.70 between epochs 1 and 4)
    model, x, y = trained_digits
    eps = 2.0 if norm_p == "l2" else 0.3
    rates = [
        UAP(norm_p=norm_p, max_epochs=e, target_fooling=1.0)(model, x, y, eps=eps).success_rate()[0]
        for e in range(1, 6)
    ]
    assert np.all(np.diff(rates) >= 0), rates


# ------------------------------------------------------------------------------------- bad parameters


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("bim", {"steps": 0}, "attack 'bim': steps must be >= 1, got 0"),
        ("bim", {"rel_stepsize": -1.0}, "attack 'bim': rel_stepsize must be a finite number > 0, got -1.0"),
        ("bim", {"abs_stepsize": 0.0}, "attack 'bim': abs_stepsize must be"),
        ("bim", {"abs_stepsize": float("nan")}, "attack 'bim': abs_stepsize must be"),
        ("mim", {"steps": 0}, "attack 'mim': steps must be >= 1, got 0"),
        ("mim", {"decay": -0.5}, "attack 'mim': decay must be a finite number >= 0, got -0.5"),
        ("mim", {"rel_stepsize": 0}, "attack 'mim': rel_stepsize must be"),
        ("pgd-l2", {"steps": 0}, "attack 'pgd-l2': steps must be >= 1, got 0"),
        ("pgd-l2", {"abs_stepsize": -0.1}, "attack 'pgd-l2': abs_stepsize must be"),
        ("uniform-noise", {"repeats": 0}, "attack 'uniform-noise': repeats must be >= 1, got 0"),
        ("gaussian-noise", {"repeats": 0}, "attack 'gaussian-noise': repeats must be >= 1, got 0"),
        ("gaussian-noise", {"seed": 1.5}, "attack 'gaussian-noise': seed must be an integer"),
        ("uap", {"max_epochs": 0}, "attack 'uap': max_epochs must be >= 1, got 0"),
        ("uap", {"inner_steps": 0}, "attack 'uap': inner_steps must be >= 1, got 0"),
        ("uap", {"batch_size": 0}, "attack 'uap': batch_size must be >= 1, got 0"),
        ("uap", {"target_fooling": 0.0}, "attack 'uap': target_fooling must be in (0, 1], got 0.0"),
        ("uap", {"target_fooling": 1.5}, "attack 'uap': target_fooling must be in (0, 1], got 1.5"),
        ("uap", {"norm_p": "l1"}, "attack 'uap': norm_p must be 'linf' or 'l2', got 'l1'"),
    ],
)
def test_invalid_parameters_name_attack_and_parameter(name, params, message) -> None:
    with pytest.raises(ConfigError) as info:
        create_attack(name, **params)
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("bim", "stepz"),
        ("mim", "momentum"),
        ("pgd-l2", "norm"),
        ("uniform-noise", "sigma"),
        ("gaussian-noise", "std"),
        ("uap", "inner"),
    ],
)
def test_unknown_parameter_names_attack_and_parameter(name, bad) -> None:
    with pytest.raises(ConfigError, match=f"attack '{name}' has no parameter '{bad}'"):
        create_attack(name, **{bad: 1})


def test_create_attack_passes_parameters() -> None:
    a = create_attack("mim", steps=4, decay=0.5)
    assert isinstance(a, MIM) and (a.steps, a.decay) == (4, 0.5)
    u = create_attack("uap", norm_p="l2", target_fooling=1)
    assert isinstance(u, UAP) and u.norm == "l2" and u.target_fooling == 1.0
    g = create_attack("gaussian-noise", repeats=4, seed=7)
    assert isinstance(g, GaussianNoise) and (g.repeats, g.seed) == (4, 7)
