"""A tiny, learnable, fully deterministic data set for unit tests (no files, no download)."""

from __future__ import annotations

import logging

import numpy as np

from edgebench.data import DATASETS
from edgebench.data.base import Dataset
from edgebench.errors import ConfigError

logger = logging.getLogger(__name__)


def _int(value: object, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ConfigError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@DATASETS.register("synthetic")
def synthetic(
    *,
    n_train: int = 512,
    n_test: int = 128,
    shape: tuple[int, ...] | list[int] = (1, 8, 8),
    num_classes: int = 10,
    noise: float = 0.15,
    seed: int = 0,
) -> Dataset:
    """Noisy copies of one fixed random prototype image per class, clipped to [0, 1].

    Labels are balanced (every class appears ``n // num_classes`` or one more times) and shuffled.
    The prototypes, the train split and the test split each come from their own child of
    ``SeedSequence(seed)``, so the test split does not depend on ``n_train``.

    Args:
        n_train: train samples (may be 0).
        n_test: test samples (at least 1).
        shape: (C, H, W) of one sample.
        num_classes: number of classes (at least 2).
        noise: standard deviation of the Gaussian noise added to the prototypes.
        seed: the same seed gives identical arrays.

    Raises:
        ConfigError: a parameter is out of range or of the wrong type.
    """
    n_train = _int(n_train, "n_train", 0)
    n_test = _int(n_test, "n_test", 1)
    num_classes = _int(num_classes, "num_classes", 2)
    seed = _int(seed, "seed", 0)
    if not isinstance(shape, (tuple, list)) or len(shape) != 3:
        raise ConfigError(f"shape must be a list of three positive integers [C, H, W], got {shape!r}")
    dims = tuple(_int(d, "every entry of shape", 1) for d in shape)
    if (
        isinstance(noise, bool)
        or not isinstance(noise, (int, float))
        or not 0.0 <= float(noise) < float("inf")
    ):
        raise ConfigError(f"noise must be a finite number >= 0, got {noise!r}")

    proto_seq, train_seq, test_seq = np.random.SeedSequence(seed).spawn(3)
    prototypes = np.random.default_rng(proto_seq).random((num_classes, *dims), dtype=np.float32)

    def draw(seq: np.random.SeedSequence, n: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seq)
        y = rng.permutation(np.arange(n, dtype=np.int64) % num_classes)
        x = prototypes[y] + np.float32(noise) * rng.standard_normal((n, *dims), dtype=np.float32)
        np.clip(x, 0.0, 1.0, out=x)
        return np.ascontiguousarray(x, dtype=np.float32), y

    x_train, y_train = draw(train_seq, n_train)
    x_test, y_test = draw(test_seq, n_test)
    logger.debug("synthetic: %d train / %d test samples of shape %s", n_train, n_test, dims)
    return Dataset(
        name="synthetic",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        classes=tuple(str(i) for i in range(num_classes)),
    )
