"""Fixtures shared by the unit tests."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn


@pytest.fixture(scope="session")
def trained_digits() -> tuple[nn.Module, np.ndarray, np.ndarray]:
    """``digits_cnn`` trained for 5 epochs (seed 0) on scikit-learn's 8x8 digits, and the first 200 test
    samples ``(model, x, y)``, inputs in [0, 1]. Shared by the whole session: do not modify the model (attacks
    restore its state; anything else should work on a ``copy.deepcopy``)."""
    from edgebench.data import load_dataset
    from edgebench.models import create_model
    from edgebench.models.train import TrainConfig, predict_logits, seeded, train

    ds = load_dataset("digits")
    seeded(0)
    model = create_model("digits_cnn", input_shape=(1, 8, 8), num_classes=10)
    train(model, ds.x_train, ds.y_train, TrainConfig(epochs=5, seed=0))
    model.eval()
    acc = float(np.mean(predict_logits(model, ds.x_test).argmax(1) == ds.y_test))
    assert acc > 0.9, f"the fixture model did not train (test accuracy {acc:.3f})"
    return model, ds.x_test[:200], ds.y_test[:200]
