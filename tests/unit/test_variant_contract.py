"""The contract every variant method keeps — every registered compression method and defense, one row each
(a method registered without a row fails here): on a trained tiny model, its variant's twin predicts (right
shape, finite), the model it was given is not changed, the same seed gives the same twin, and its facts are
recorded (a non-empty ``info`` the store can write as JSON)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from edgebench.data import load_dataset
from edgebench.models.train import TrainConfig, predict_logits, seeded
from edgebench.variants import KINDS, Variant, VariantContext, create_method, registry_for

#: (kind, method) -> parameters small enough for a fast test on digits_cnn.
ROWS: dict[tuple[str, str], dict[str, Any]] = {
    ("compress", "dns"): {"sparsity": 0.5, "epochs": 1},
    ("compress", "filter_pruning"): {"ratio": 0.25, "epochs_per_step": 0},
    ("compress", "hashed"): {"rate": 0.25, "epochs": 1},
    ("compress", "inq"): {"bits": 4, "epochs_per_step": 0},
    ("compress", "int8"): {"calibration_size": 64},
    ("compress", "kbit"): {"bits": 4},
    ("compress", "magnitude_pruning"): {"ratio": 0.5, "epochs": 0},
    ("defend", "adversarial_training"): {"epochs": 1, "steps": 2, "eps": 0.1},
    ("defend", "gradient_inhibition"): {"tau": 0.1},
    ("defend", "mu_law"): {"normalize": "max"},
}

REGISTERED = [(kind, name) for kind in KINDS for name in registry_for(kind).names()]


def test_every_registered_method_has_a_row() -> None:
    assert sorted(REGISTERED) == sorted(ROWS), "add a row to ROWS for each new method (and drop removed ones)"


@pytest.fixture(scope="module")
def ctx() -> VariantContext:
    ds = load_dataset("digits")
    return VariantContext(ds.x_train[:256], ds.y_train[:256], ds.shape, ds.num_classes,
                          TrainConfig(epochs=1, batch_size=64, seed=0), seed=0, where="contract")


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _apply(kind: str, name: str, model: nn.Module, ctx: VariantContext) -> Variant:
    method = create_method(kind, name, **ROWS[(kind, name)])
    seeded(ctx.seed)
    variant = method.apply(model, ctx)
    method.attach(variant, model, ctx)
    return variant


@pytest.mark.parametrize(("kind", "name"), REGISTERED, ids=[f"{k}-{n}" for k, n in REGISTERED])
def test_variant_method_contract(kind: str, name: str, trained_digits, ctx: VariantContext) -> None:
    if (kind, name) not in ROWS:
        pytest.fail(f"{kind} method {name!r} has no row in ROWS")
    model, x, _ = trained_digits
    before = _state(model)
    first = _apply(kind, name, model, ctx)

    after = _state(model)
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before), \
        "the model given to apply() was changed"

    logits = predict_logits(first.model, x)
    assert logits.shape == (len(x), 10) and np.isfinite(logits).all()
    assert not first.model.training, "the twin is returned in eval mode"
    if first.deploy is not None:  # what the devices run computes what the twin computes
        np.testing.assert_allclose(predict_logits(first.deploy, x), logits, atol=1e-4)

    second = _apply(kind, name, model, ctx)
    np.testing.assert_array_equal(predict_logits(second.model, x), logits, err_msg="not deterministic per seed")

    assert isinstance(first.info, dict) and first.info, "the method records no facts about its variant"
    json.dumps(first.info, default=str)
    assert first.precision in ("f32", "int8")
