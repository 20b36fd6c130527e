"""scikit-learn's bundled 8x8 handwritten digits (1797 samples, no download): a tiny real data set."""

from __future__ import annotations

import logging

import numpy as np

from edgebench.data import DATASETS
from edgebench.data.base import Dataset
from edgebench.errors import ConfigError

logger = logging.getLogger(__name__)


@DATASETS.register("digits")
def digits(*, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """The 8x8 digits as (N, 1, 8, 8) float32 in [0, 1], split stratified by class.

    Args:
        test_fraction: share of the samples held out for testing, strictly between 0 and 1.
        seed: ``random_state`` of the split; the same seed gives the same split.

    Raises:
        ConfigError: ``test_fraction`` is not in (0, 1) or leaves a split too small to stratify.
    """
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)):
        raise ConfigError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"seed must be an integer, got {seed!r}")

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / np.float32(16.0)
    x = np.ascontiguousarray(images[:, None, :, :], dtype=np.float32)
    y = np.asarray(bunch.target, dtype=np.int64)
    try:
        train_idx, test_idx = train_test_split(
            np.arange(len(y)), test_size=float(test_fraction), stratify=y, random_state=int(seed)
        )
    except ValueError as exc:
        raise ConfigError(
            f"test_fraction={test_fraction!r} cannot be used for a stratified split: {exc}"
        ) from exc
    logger.debug("digits: %d train / %d test samples (seed %d)", len(train_idx), len(test_idx), seed)
    return Dataset(
        name="digits",
        x_train=np.ascontiguousarray(x[train_idx]),
        y_train=np.ascontiguousarray(y[train_idx]),
        x_test=np.ascontiguousarray(x[test_idx]),
        y_test=np.ascontiguousarray(y[test_idx]),
        classes=tuple(str(i) for i in range(10)),
    )
