"""Shared fixtures. Real data is found through one setting, ``EDGEBENCH_DATA`` (default ``../shared/data``
beside the checkout); tests that need it skip with a reason where it is absent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

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
