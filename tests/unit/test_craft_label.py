"""Crafting against the predicted label (``label = "predicted"`` of every attack; the plan key ``craft_label``):
seed 002's FGSM (Wijayanto et al. 2018, Sec. VI, after Kurakin et al. 2017's label leaking). On a trained digits
CNN: FGSM's step is the sign of the gradient of the cross-entropy of the model's own top-1, equal to the true-label
step where the model is right and different where it is wrong; success is still judged against the true label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgebench.attacks.bim import BIM
from edgebench.attacks.fgsm import FGSM
from edgebench.config import load_plan
from edgebench.errors import AttackError, ConfigError
from edgebench.runner.keys import adv_key
from tests.unit.test_config import BASE, write

EPS = 0.1


def _manual_fgsm(model, x: np.ndarray, labels: torch.Tensor) -> np.ndarray:
    xt = torch.from_numpy(x).requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(xt), labels, reduction="sum"), xt)
    return torch.clamp(xt.detach() + EPS * g.sign(), 0, 1).numpy()


def test_fgsm_against_the_predicted_label(trained_digits) -> None:
    model, x, y = trained_digits
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(1)
    wrong = pred.numpy() != y
    assert 0 < wrong.sum() < len(y)  # the fixture has both kinds of sample
    r_pred = FGSM()(model, x, y, eps=EPS, label="predicted")
    r_true = FGSM()(model, x, y, eps=EPS)
    np.testing.assert_allclose(r_pred.x_adv[0], _manual_fgsm(model, x, pred), atol=1e-6)
    # right where the model is right; away from its wrong answer where it is wrong
    np.testing.assert_array_equal(r_pred.x_adv[0][~wrong], r_true.x_adv[0][~wrong])
    assert not np.allclose(r_pred.x_adv[0][wrong], r_true.x_adv[0][wrong])
    # judged against the true label either way, and the extra forward pass counted
    np.testing.assert_array_equal(r_pred.success[0], r_pred.pred[0] != y)
    assert r_pred.passes.forward == r_true.passes.forward + 1


def test_bim_predicted_label_runs_from_the_model_prediction(trained_digits) -> None:
    model, x, y = trained_digits
    r = BIM(steps=3)(model, x, y, eps=EPS, label="predicted")
    assert r.success.shape == (1, len(y)) and r.linf.max() <= EPS + 1e-6
    np.testing.assert_array_equal(r.success[0], r.pred[0] != y)


def test_bad_label_and_targeted_predicted_are_errors(trained_digits) -> None:
    model, x, y = trained_digits
    with pytest.raises(AttackError, match=r"attack 'fgsm': label must be one of \['true', 'predicted'\]"):
        FGSM()(model, x[:4], y[:4], eps=EPS, label="guess")
    with pytest.raises(AttackError, match="'predicted' is for untargeted attacks"):
        FGSM()(model, x[:4], y[:4], eps=EPS, target=(y[:4] + 1) % 10, label="predicted")


def _plan(tmp_path: Path, extra: str):
    return load_plan(write(tmp_path, BASE.replace("eps = [0.1]", f"eps = [0.1]\n{extra}")))


def test_plan_key_digest_and_cache_key(tmp_path: Path) -> None:
    default, true, pred = (_plan(tmp_path, e) for e in ("", 'craft_label = "true"', 'craft_label = "predicted"'))
    assert pred.attacks[0].craft_label == "predicted" and default.attacks[0].craft_label == "true"
    assert default.digest() == true.digest() != pred.digest()
    assert "craft_label" not in default.as_dict()["attacks"][0]  # plans without the key hash as before
    keys = [adv_key(p, "src", p.attacks[0], n_test=10, data_fingerprint="d") for p in (default, true, pred)]
    assert keys[0] == keys[1] != keys[2]


@pytest.mark.parametrize("extra,msg", [
    ('craft_label = "guess"', r"craft_label.*'guess'"),
    ('craft_label = "predicted"\ntargeted = "next"', "'predicted' is for untargeted attacks"),
])
def test_plan_refuses_bad_craft_label(tmp_path: Path, extra: str, msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        _plan(tmp_path, extra)
