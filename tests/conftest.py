"""Shared fixtures. Real data is found through one setting, ``EDGEBENCH_DATA`` (default ``../shared/data``
beside the checkout); tests that need it skip with a reason where it is absent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("EDGEBENCH_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_dir()
    if not (root / "mnist").is_dir():
        pytest.skip(f"real MNIST not found under {root} (set EDGEBENCH_DATA to the folder holding mnist/)")
    return root


@pytest.fixture(scope="session", autouse=True)
def _isolated_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One configuration folder for the session (``EDGEBENCH_CONFIG``): the cache's signing key is made there,
    never in the user's ``~/.config``; subprocesses and Ray workers inherit it."""
    folder = tmp_path_factory.mktemp("config")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEBENCH_CONFIG", str(folder))
        yield folder


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own artifact cache, so no test sees another's (or the user's) artifacts."""
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def trained_digits(request: pytest.FixtureRequest) -> Iterator[tuple[nn.Module, np.ndarray, np.ndarray]]:
    """``digits_cnn`` trained for 5 epochs (seed 0) on scikit-learn's 8x8 digits, and the first 200 test
    samples ``(model, x, y)``, inputs in [0, 1]. Trained once per session (``tests.fixtures.models``); each
    module gets its own copy and must leave it as it found it (attacks restore the model's state; anything
    else works on a ``copy.deepcopy``): the module's last test errors at teardown otherwise."""
    import torch

    from tests.fixtures.models import assert_unchanged, dataset, snapshot, trained

    ds = dataset("digits")
    model = trained("digits_cnn", epochs=5, seed=0)
    with torch.no_grad():
        acc = float((model(torch.from_numpy(ds.x_test)).argmax(1).numpy() == ds.y_test).mean())
    assert acc > 0.9, f"the fixture model did not train (test accuracy {acc:.3f})"
    before = snapshot(model)
    yield model, ds.x_test[:200], ds.y_test[:200]
    assert_unchanged(model, before, what=f"{request.module.__name__} (fixture trained_digits)")
