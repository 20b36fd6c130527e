"""JBDA substitutes (:mod:`edgebench.models.substitute`): the augmentation step, the training loop's bookkeeping
against a real predict function, CleverHans's MLP, the plan's ``substitute`` table and its one-line errors, the
keys, and the stage order an oracle on a variant needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgebench.config import load_plan
from edgebench.errors import ConfigError
from edgebench.models.substitute import augmentation_steps, jacobian_augment, mlp, train_substitute
from edgebench.models.train import TrainConfig
from tests.fixtures.plan_errors import one_line_error

PLAN = """
[plan]
name = "s"
[data]
dataset = "digits"
[[models]]
name = "cnn"
arch = "digits_cnn"
[[compress]]
model = "cnn"
method = "kbit"
bits = [4]
[[models]]
name = "sub"
factory = "edgebench.models.substitute:mlp"
params = {{ inputs = 64 }}
{extra}
"""


def plan_file(tmp_path: Path, extra: str) -> Path:
    p = tmp_path / "plan.toml"
    p.write_text(PLAN.format(extra=extra))
    return p


def test_the_step_is_minus_lambda_for_the_first_tau_augmentations_then_plus() -> None:
    assert augmentation_steps(6, 0.1, 3) == [-0.1, -0.1, -0.1, 0.1, 0.1]  # CleverHans 2.1's schedule
    assert augmentation_steps(3, 0.2, 5) == [-0.2, -0.2]
    assert augmentation_steps(1, 0.1, 3) == []


def test_each_new_point_moves_by_the_sign_of_its_labels_logit_gradient() -> None:
    torch.manual_seed(0)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
    x = np.random.default_rng(0).random((5, 1, 2, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 1, 0])
    new = jacobian_augment(lin, x, y, -0.1, batch_size=2)  # a linear model: the gradient of z_y is row y of W
    w = lin[1].weight.detach().numpy().reshape(3, 1, 2, 3)
    np.testing.assert_allclose(new, x - 0.1 * np.sign(w[y]), rtol=0, atol=1e-7)
    assert new.dtype == np.float32 and not (new.min() >= 0 and new.max() <= 1)  # not clipped, as CleverHans


def test_training_asks_the_oracle_for_every_new_point_and_keeps_the_held_labels() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 4)).astype(np.float32)
    asked: list[np.ndarray] = []

    def oracle(x: np.ndarray) -> np.ndarray:  # a real predict function: a fixed linear classifier's scores
        asked.append(x.copy())
        return x.reshape(len(x), -1) @ w

    x = rng.random((20, 1, 2, 3)).astype(np.float32)
    y = np.full(20, 3)  # the held labels, on purpose not the oracle's
    torch.manual_seed(0)
    sub = mlp(inputs=6, hidden=[16], classes=4)
    out = train_substitute(sub, oracle, x, y, TrainConfig(epochs=2, batch_size=8), rounds=4, lmbda=0.1, tau=1)
    assert [len(a) for a in asked] == [20, 40, 80] and out["queries"] == 140 and out["points"] == 160
    assert [h["points"] for h in out["history"]] == [20, 40, 80, 160]
    assert [h["queries"] for h in out["history"]] == [0, 20, 60, 140]
    assert out["steps"] == [-0.1, 0.1, 0.1]
    # the last round trained on the held labels (all 3) plus the oracle's answers: its accuracy on them is recorded
    assert 0.0 <= out["history"][-1]["train_acc"] <= 1.0 and not sub.training


def test_cleverhans_mlp_shapes_and_he_normal_weights() -> None:
    torch.manual_seed(0)
    m = mlp(inputs=784, hidden=[200, 200], classes=10)
    linears = [layer for layer in m if isinstance(layer, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(784, 200), (200, 200), (200, 10)]
    for lin in linears[:2]:
        assert lin.weight.std().item() == pytest.approx((2 / lin.in_features) ** 0.5, rel=0.05)
        assert not lin.bias.any()
    assert m(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_the_plan_fills_cleverhans_defaults_and_keeps_other_plans_digests(tmp_path: Path) -> None:
    plan = load_plan(plan_file(tmp_path, 'substitute = { oracle = "cnn/kbit-4" }'))
    sub = next(m for m in plan.models if m.name == "sub")
    assert sub.substitute == {"oracle": "cnn/kbit-4", "holdout": 150, "rounds": 6, "lmbda": 0.1, "tau": 3}
    d = plan.as_dict()
    assert [("substitute" in m) for m in d["models"]] == [False, True]  # a model without one hashes as before


@pytest.mark.parametrize(("extra", "needle"), [
    ('substitute = { oracle = "nope" }', "models[1].substitute.oracle: 'nope' is not a model or variant of this "
                                         "plan; choose one of ['cnn', 'cnn/kbit-4', 'sub']"),
    ('substitute = { oracle = "sub" }', "'sub' is 'sub' itself or is trained by querying it"),
    ('substitute = { holdout = 10 }', "models[1].substitute.oracle: is required"),
    ('substitute = { oracle = "cnn", rounds = 0 }', "models[1].substitute.rounds: must be >= 1, got 0"),
    ('substitute = { oracle = "cnn", lmbda = 0 }', "models[1].substitute.lmbda: must be > 0, got 0.0"),
    ('substitute = { oracle = "cnn", lambda = 0.1 }', "models[1].substitute.lambda: unknown key"),
    ('checkpoint = "w.pt"\nsubstitute = { oracle = "cnn" }', "a substitute is trained here, by querying its "
                                                             "oracle; it takes 'arch' or 'factory', not checkpoint"),
])
def test_a_bad_substitute_table_is_one_line(tmp_path: Path, extra: str, needle: str) -> None:
    assert needle in one_line_error(plan_file(tmp_path, extra))


def test_two_substitutes_querying_each_other_is_one_line(tmp_path: Path) -> None:
    extra = ('substitute = { oracle = "sub2" }\n[[models]]\nname = "sub2"\nfactory = "edgebench.models.substitute:mlp"'
             '\nsubstitute = { oracle = "sub" }')
    assert "models[1].substitute.oracle: 'sub2' is 'sub' itself or is trained by querying it" in \
        one_line_error(plan_file(tmp_path, extra))


def test_the_substitutes_key_holds_its_oracle_and_no_other_models_key_changes(tmp_path: Path) -> None:
    from edgebench.runner.keys import model_key, model_spec

    plan = load_plan(plan_file(tmp_path, 'substitute = { oracle = "cnn/kbit-4" }'))
    cnn, sub = plan.models
    assert "substitute" not in model_spec(plan, cnn, "data")
    assert set(model_spec(plan, sub, "data", "k1")["substitute"]) >= {"oracle_key", "runtime", "code", "holdout"}
    assert model_key(plan, sub, "data", "k1") != model_key(plan, sub, "data", "k2")


def test_a_substitutes_stage_comes_after_a_variant_it_queries(tmp_path: Path) -> None:
    from edgebench.runner.pipeline import Pipeline
    from edgebench.runner.stages import Stage, dependencies_first

    plan = load_plan(plan_file(tmp_path, 'substitute = { oracle = "cnn/kbit-4" }'))
    names = [s.name for s in Pipeline(plan, out_dir=tmp_path).stages()]
    assert names.index("compress/cnn/kbit-4") < names.index("model/sub")
    st = [Stage("a", lambda: 0), Stage("b", lambda: 0, ("a",)), Stage("c", lambda: 0, ("x",))]
    assert dependencies_first(st) == st  # already in order (or depending on a stage outside the list): unchanged
    assert [s.name for s in dependencies_first([st[1], st[2], st[0]])] == ["c", "a", "b"]


def test_a_model_that_does_not_fit_the_data_is_one_line_before_training() -> None:
    from edgebench.runner.build import check_fits_data
    from tests.fixtures.models import dataset

    ds = dataset("digits")
    check_fits_data(mlp(inputs=64), ds, where="p.toml: models[sub]")  # fits: no error
    with pytest.raises(ConfigError, match=r"^p\.toml: models\[sub\]: the model does not take this data set's 1×8×8 "
                                          r"inputs \(mat1 and mat2 shapes cannot be multiplied"):
        check_fits_data(mlp(inputs=784), ds, where="p.toml: models[sub]")
    with pytest.raises(ConfigError, match=r"returns \(1, 12\) for one input, not \(1, 10\) scores"):
        check_fits_data(mlp(inputs=64, classes=12), ds, where="p.toml: models[sub]")
