"""Tests that need a CUDA device: marked ``gpu``, skipped with the reason where torch sees none."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA device (bench/gpu/run_on_device.sh runs them)")
