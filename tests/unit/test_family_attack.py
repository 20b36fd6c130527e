"""Attacks on a model family (EOT across compressed variants, Athalye et al. 2018) on real data (digits): the
family gradient is the mean of the members' gradients, members are differentiated one at a time, passes are
counted per member, success means every member fooled, and an EOT-PGD set fools the family's least-fooled member
more often than a set crafted on either member alone."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import torch
from torch import nn

from edgebench.attacks import create_attack
from edgebench.attacks._family import ModelFamily
from edgebench.attacks._gradient import cross_entropy, dlr, family_gradient, objective_gradient
from edgebench.attacks.base import Passes
from edgebench.data import load_dataset
from edgebench.errors import AttackError
from edgebench.models.train import TrainConfig, predict_logits
from edgebench.variants import VariantContext, create_method
from tests.fixtures.models import trained


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def members(digits) -> dict[str, nn.Module]:
    """Two different compressed variants of one trained CNN: 2-bit weights and 70 % magnitude pruning."""
    base = trained("digits_cnn", epochs=8)
    ctx = VariantContext(digits.x_train, digits.y_train, digits.shape, 10, TrainConfig(epochs=8), seed=0,
                         where="test")
    return {"kbit-2": create_method("compress", "kbit", bits=2).apply(base, ctx).model.eval(),
            "pruned": create_method("compress", "magnitude_pruning", ratio=0.7, epochs=0).apply(base, ctx).model.eval()}


def family(members: dict[str, nn.Module]) -> ModelFamily:
    return ModelFamily(list(members.values()), list(members))


def fooled(model: nn.Module, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return predict_logits(model, x).argmax(1) != y


@pytest.mark.parametrize("objective", [cross_entropy, dlr])
def test_family_gradient_is_the_mean_of_the_members_gradients(members, digits, objective) -> None:
    x = torch.as_tensor(digits.x_test[:64])
    y = torch.as_tensor(digits.y_test[:64], dtype=torch.int64)
    fam = family(members)
    grad, _, loss = family_gradient(fam, x, y, None, Passes(), attack="t", objective=objective)
    per = [objective_gradient(m, x, y, None, Passes(), attack="t", objective=objective) for m in members.values()]
    assert torch.equal(grad, (per[0][0] + per[1][0]) / 2)  # the same sum, the same rounding: exact
    assert torch.equal(loss, (per[0][2] + per[1][2]) / 2)
    # and it is the gradient of the family objective, differentiated through both graphs at once by autograd
    xr = x.clone().requires_grad_(True)
    ref = torch.stack([objective(m(xr), y, None) for m in members.values()]).mean(0).sum()
    (ref_grad,) = torch.autograd.grad(ref, xr)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-7)
    assert grad.abs().sum() > 0


def test_members_are_differentiated_one_at_a_time(members, digits) -> None:
    """When a member's forward starts, the previous member's graph (its output with a grad_fn) is already freed."""
    live: list[weakref.ref] = []
    held: list[int] = []

    class Watched(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            held.append(sum(r() is not None for r in live))
            out = self.inner(x)
            if out.grad_fn is not None:
                live.append(weakref.ref(out))
            return out

    fam = ModelFamily([Watched(m) for m in members.values()], list(members))
    create_attack("pgd", steps=3)(fam, digits.x_test[:32], digits.y_test[:32], eps=0.1)
    assert len(live) == 2 * 3 and max(held) == 0


def test_passes_are_counted_per_member_and_in_total(members, digits) -> None:
    fam = family(members)
    res = create_attack("pgd", steps=5)(fam, digits.x_test[:40], digits.y_test[:40], eps=[0.05, 0.1])
    # per ε: 5 forward+backward per member and one forward per member on the last iterate
    assert (res.passes.forward, res.passes.backward) == (2 * 2 * 6, 2 * 2 * 5)
    assert fam.cost() == {"members": ["kbit-2", "pruned"], "forward": 24, "backward": 20,
                          "per_member": {"kbit-2": {"forward": 12, "backward": 10},
                                         "pruned": {"forward": 12, "backward": 10}}}


@pytest.mark.parametrize(("name", "params", "eps"), [
    ("fgsm", {}, 0.15), ("pgd", {"steps": 5}, 0.15), ("mim", {"steps": 5}, 0.15), ("apgd", {"steps": 5}, 0.15),
    ("apgd", {"steps": 5, "loss": "dlr"}, 0.15), ("bim", {"steps": 5}, 0.15), ("pgd-l2", {"steps": 5}, 2.0)])
def test_success_means_every_member_fooled(members, digits, name, params, eps) -> None:
    x, y = digits.x_test[:120], digits.y_test[:120]
    res = create_attack(name, **params)(family(members), x, y, eps=[0.0, eps])
    both = np.stack([np.all([fooled(m, xa, y) for m in members.values()], axis=0) for xa in res.x_adv])
    np.testing.assert_array_equal(res.success, both)
    assert res.success[1].mean() > 0.3 and res.success[1].mean() > res.success[0].mean()


def test_targeted_family_success_means_every_member_on_the_target(members, digits) -> None:
    x, y = digits.x_test[:60], digits.y_test[:60]
    target = (y + 1) % 10
    res = create_attack("pgd", steps=6)(family(members), x, y, eps=0.2, target=target)
    on_target = np.all([predict_logits(m, res.x_adv[0]).argmax(1) == target for m in members.values()], axis=0)
    np.testing.assert_array_equal(res.success[0], on_target)
    assert on_target.mean() > 0.2


def test_eot_set_fools_the_least_fooled_member_more_than_single_member_sets(members, digits) -> None:
    """Measured (240 digits test samples, PGD 10 steps, ε = 0.15): the share of samples (kbit-2, pruned)
    misclassify on a set crafted on kbit-2 alone is (0.81, 0.53), on pruned alone (0.37, 0.78), on the EOT family
    (0.78, 0.72): the worst case over the family rises from 0.53 to 0.72."""
    x, y = digits.x_test[:240], digits.y_test[:240]
    atk = create_attack("pgd", steps=10)

    def worst(model: nn.Module) -> float:
        xa = atk(model, x, y, eps=0.15).x_adv[0]
        return min(float(fooled(m, xa, y).mean()) for m in members.values())

    singles = [worst(m) for m in members.values()]
    assert worst(family(members)) > max(singles) + 0.1, singles


def test_a_family_refuses_autograd_through_its_forward_and_needs_two_members(members, digits) -> None:
    fam = family(members)
    with pytest.raises(AttackError, match="member by member"):
        fam(torch.as_tensor(digits.x_test[:4]).requires_grad_(True))
    with torch.no_grad():
        assert fam(torch.as_tensor(digits.x_test[:4])).shape == (4, 10)
    with pytest.raises(AttackError, match="two or more members"):
        ModelFamily([members["pruned"]], ["pruned"])


@pytest.mark.parametrize("targeted", [False, True])
def test_the_runners_decision_from_member_predictions_matches_the_family(members, digits, targeted) -> None:
    """:func:`edgebench.runner.family.twin_pred` (used for sets rounded to 8 bits) decides as the family does."""
    from edgebench.runner.family import twin_pred

    x, y = digits.x_test[:100], digits.y_test[:100]
    target = (y + 1) % 10 if targeted else None
    fam = family(members)
    xa = create_attack("fgsm")(fam, x, y, eps=0.15, target=target).x_adv[0]
    t = None if target is None else torch.as_tensor(target)
    expected = fam.predict(torch.as_tensor(xa), torch.as_tensor(y, dtype=torch.int64), t, Passes()).numpy()
    got = twin_pred(fam, xa, y, target)
    np.testing.assert_array_equal(got, expected)
    assert 0 < np.mean(got != y) < 1
