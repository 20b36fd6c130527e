"""A real cross-check against ART 1.20 (adversarial-robustness-toolbox): FGSM, PGD, CW-L2 and DeepFool run by
edgebench and by ART on the same model, inputs and parameters must give the same robust accuracy within 1.5
percentage points, and the ``art`` adapter must reproduce ART (and edgebench's FGSM) exactly.

Model: a 64-64-10 ReLU MLP trained 20 epochs on scikit-learn's 8x8 digits (test accuracy 0.94); it keeps
ART's NumPy attacks (CW's line search, DeepFool's per-class gradients) fast. Inputs: all 360 digits test
images, so that 1.5 points is 5 images.

Robust accuracy at ε: the fraction of the 360 images that the model classifies correctly both clean and
after the attack (images misclassified clean count as broken for both: ART's CW and DeepFool also move those,
sometimes onto the true class, edgebench leaves them as they are). For the minimal attacks (CW-L2, DeepFool)
both attacks' unbounded outputs are projected onto the same L2 balls, ε ∈ {0.25, 0.5, 0.75, 1.0, 1.5}, and
re-classified.

Measured gaps (edgebench − ART, percentage points; ART 1.20.1, torch 2.13 CPU):
  FGSM: 0 (identical outputs). PGD-10 (no random start, step ε/4): 0, 0, −0.28 at ε 0.05, 0.1, 0.2 (edgebench
  keeps the first adversarial iterate, ART the last). CW-L2 (20 steps × 5 binary-search steps, lr 0.1, c0 1,
  every binary-search step restarting from x as in ART and the authors' code): −0.56, 0, −0.83, −1.11, −0.28.
  DeepFool (overshoot 0.02, 10 classes, 50 iterations): 0 at every ε.
  One-sided only: edgebench's default CW (warm start across binary-search steps) is far stronger at the same
  budget: −2.2, −17.2, −21.7, −21.4, −5.8 (robust accuracy at ε = 1: 0.083 vs ART's 0.297; DeepFool: 0.017).
  ART's CW also stops improving with more steps (0.297 at ε = 1 with 50 steps too).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip(
    "art", reason="the cross-check needs the Adversarial Robustness Toolbox: pip install 'edgebench[art]'"
)

from edgebench.attacks import create_attack  # noqa: E402
from edgebench.attacks.base import project_l2  # noqa: E402
from edgebench.errors import ConfigError  # noqa: E402

LINF_EPS = [0.05, 0.1, 0.2]
L2_EPS = [0.25, 0.5, 0.75, 1.0, 1.5]
TOL = 0.015  # 1.5 percentage points


class _MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.fixture(scope="module")
def setup():
    from art.estimators.classification import PyTorchClassifier

    from edgebench.data import load_dataset
    from edgebench.models.train import TrainConfig, seeded, train

    ds = load_dataset("digits")
    seeded(0)
    model = _MLP()
    train(model, ds.x_train, ds.y_train, TrainConfig(epochs=20, seed=0))
    model.eval()
    x, y = ds.x_test, ds.y_test
    assert len(x) >= 300
    classifier = PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, 8, 8),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    clean_ok = _pred(model, x) == y
    assert clean_ok.mean() > 0.9
    return model, classifier, x, y, clean_ok


def _pred(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).argmax(1).numpy()


def _robust(model: nn.Module, x_adv: np.ndarray, y: np.ndarray, clean_ok: np.ndarray) -> float:
    return float(np.mean(clean_ok & (_pred(model, x_adv) == y)))


def _robust_l2(model, x_adv_unbounded, x, y, clean_ok) -> np.ndarray:
    """Robust accuracy at each ε of ``L2_EPS`` after projecting onto the L2 ball (as edgebench's base does)."""
    xa, x0 = torch.from_numpy(np.ascontiguousarray(x_adv_unbounded)), torch.from_numpy(x)
    return np.array([_robust(model, project_l2(xa, x0, e).numpy(), y, clean_ok) for e in L2_EPS])


def _onehot(y: np.ndarray) -> np.ndarray:
    return np.eye(10, dtype=np.float32)[y]


def test_fgsm_matches_art_exactly(setup) -> None:
    from art.attacks.evasion import FastGradientMethod

    model, classifier, x, y, clean_ok = setup
    ours = create_attack("fgsm")(model, x, y, eps=LINF_EPS)
    for k, e in enumerate(LINF_EPS):
        theirs = FastGradientMethod(classifier, norm=np.inf, eps=e, batch_size=len(x)).generate(x=x, y=_onehot(y))
        np.testing.assert_array_equal(ours.x_adv[k], theirs)
        assert _robust(model, ours.x_adv[k], y, clean_ok) == _robust(model, theirs, y, clean_ok)


def test_pgd_matches_art(setup) -> None:
    from art.attacks.evasion import ProjectedGradientDescent

    model, classifier, x, y, clean_ok = setup
    ours = create_attack("pgd", steps=10, random_start=False, rel_stepsize=0.25)(model, x, y, eps=LINF_EPS)
    for k, e in enumerate(LINF_EPS):
        theirs = ProjectedGradientDescent(
            classifier,
            norm=np.inf,
            eps=e,
            eps_step=0.25 * e,
            max_iter=10,
            num_random_init=0,
            batch_size=len(x),
            verbose=False,
        ).generate(x=x, y=_onehot(y))
        ra_ours, ra_art = _robust(model, ours.x_adv[k], y, clean_ok), _robust(model, theirs, y, clean_ok)
        assert abs(ra_ours - ra_art) <= TOL, (e, ra_ours, ra_art)


def test_cw_l2_matches_art(setup) -> None:
    from art.attacks.evasion import CarliniL2Method

    model, classifier, x, y, clean_ok = setup
    settings = dict(binary_search_steps=5, initial_const=1.0)
    theirs = CarliniL2Method(
        classifier, max_iter=20, learning_rate=0.1, batch_size=len(x), verbose=False, **settings
    ).generate(x=x, y=_onehot(y))
    ra_art = _robust_l2(model, theirs, x, y, clean_ok)
    # like ART (and the authors' code), every binary-search step restarts from x
    paper = create_attack("cw", steps=20, lr=0.1, abort_early=False, warm_start=False, **settings)
    ra_paper = _robust_l2(model, paper(model, x, y, eps=float("inf")).x_adv[0], x, y, clean_ok)
    # measured: ART [0.872 0.725 0.486 0.297 0.061], edgebench [0.867 0.725 0.478 0.286 0.058]
    np.testing.assert_allclose(ra_paper, ra_art, atol=TOL)
    assert np.all(np.diff(ra_paper) <= 0)
    # edgebench's default warm start carries the progress over: never weaker than ART, here much stronger
    warm = create_attack("cw", steps=20, lr=0.1, abort_early=False, **settings)
    ra_warm = _robust_l2(model, warm(model, x, y, eps=float("inf")).x_adv[0], x, y, clean_ok)
    assert np.all(ra_warm <= ra_art + TOL), (ra_warm, ra_art)
    assert ra_warm[3] < ra_art[3] - 0.05, (ra_warm, ra_art)


def test_deepfool_matches_art(setup) -> None:
    from art.attacks.evasion import DeepFool

    model, classifier, x, y, clean_ok = setup
    ours = create_attack("deepfool", candidates=10, overshoot=0.02, max_iter=50)(model, x, y, eps=float("inf"))
    theirs = DeepFool(classifier, max_iter=50, epsilon=0.02, nb_grads=10, batch_size=len(x), verbose=False).generate(
        x=x
    )
    ra_ours = _robust_l2(model, ours.x_adv[0], x, y, clean_ok)
    ra_art = _robust_l2(model, theirs, x, y, clean_ok)
    # measured: both [0.831 0.542 0.214 0.017 0.0]
    np.testing.assert_allclose(ra_ours, ra_art, atol=TOL)


# ---------------------------------------------------------------------------------------- the "art" adapter


def test_adapter_fgsm_equals_edgebench_fgsm(setup) -> None:
    model, _, x, y, _ = setup
    eps = [0.0, *LINF_EPS]
    ours = create_attack("fgsm")(model, x, y, eps=eps)
    via_art = create_attack("art", attack="FastGradientMethod")(model, x, y, eps=eps)
    np.testing.assert_array_equal(via_art.x_adv, ours.x_adv)
    np.testing.assert_array_equal(via_art.pred, ours.pred)
    np.testing.assert_array_equal(via_art.success, ours.success)
    assert via_art.norm == "linf" and "FastGradientMethod" in via_art.attack
    # ART's FGSM: one gradient per ε; the adapter adds a forward for the class count and one for the prediction
    assert via_art.passes.backward == len(LINF_EPS)
    assert via_art.passes.forward == 1 + 3 * len(LINF_EPS)


def test_adapter_pgd_equals_art_pgd(setup) -> None:
    from art.attacks.evasion import ProjectedGradientDescent

    model, classifier, x, y, _ = setup
    via_art = create_attack(
        "art",
        attack="ProjectedGradientDescent",
        params={"max_iter": 5, "num_random_init": 0},
        eps_relative={"eps_step": 0.25},
    )(model, x, y, eps=[0.1])
    theirs = ProjectedGradientDescent(
        classifier,
        norm=np.inf,
        eps=0.1,
        eps_step=0.025,
        max_iter=5,
        num_random_init=0,
        batch_size=len(x),
        verbose=False,
    ).generate(x=x, y=_onehot(y))
    np.testing.assert_array_equal(via_art.x_adv[0], theirs)
    assert via_art.passes.backward >= 5  # counted through the hook on the model's output


def test_adapter_runs_attacks_without_eps_once_and_projects(setup) -> None:
    from art.attacks.evasion import DeepFool

    model, classifier, x, y, clean_ok = setup
    eps = [0.5, 1.0, float("inf")]
    via_art = create_attack("art", attack="DeepFool", params={"epsilon": 0.02, "max_iter": 50}, norm="l2")(
        model, x, y, eps=eps
    )
    theirs = DeepFool(classifier, max_iter=50, epsilon=0.02, batch_size=len(x), verbose=False).generate(x=x)
    np.testing.assert_array_equal(via_art.x_adv[-1], theirs)
    for k, e in enumerate(eps[:-1]):
        expected = project_l2(torch.from_numpy(theirs), torch.from_numpy(x), e).numpy()
        np.testing.assert_array_equal(via_art.x_adv[k], expected)
        assert np.all(via_art.l2[k] <= e + 1e-5)
    # ART's DeepFool: one backward per class per iteration, all counted
    assert via_art.passes.backward >= 10 and via_art.passes.forward >= 3


def test_adapter_targeted(setup) -> None:
    model, _, x, y, _ = setup
    target = (y + 1) % 10
    res = create_attack(
        "art",
        attack="ProjectedGradientDescent",
        params={"max_iter": 10, "num_random_init": 0},
        eps_relative={"eps_step": 0.25},
    )(model, x, y, eps=[0.1, 0.3], target=target)
    assert res.targeted
    np.testing.assert_array_equal(res.success, res.pred == target[None, :])
    assert res.success_rate()[-1] > 0.8 and res.success_rate()[-1] > res.success_rate()[0]


def test_adapter_unknown_attack_lists_close_names() -> None:
    with pytest.raises(ConfigError, match="ProjectedGradientDescent"):
        create_attack("art", attack="ProjectedGradientDescnt")
    with pytest.raises(ConfigError, match="Did you mean 'CarliniL2Method'"):
        create_attack("art", attack="cw")
    with pytest.raises(ConfigError, match="has no parameter 'max_iters'.*did you mean 'max_iter'"):
        create_attack("art", attack="ProjectedGradientDescent", params={"max_iters": 3})
    with pytest.raises(ConfigError, match="'eps' is ε"):
        create_attack("art", attack="ProjectedGradientDescent", params={"eps": 0.3})
