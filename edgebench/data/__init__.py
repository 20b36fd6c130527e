"""Data sets: a registry of loaders, each returning a :class:`Dataset` of float32 NCHW images in [0, 1].

Built-in loaders (registered when first looked up): ``digits`` (scikit-learn's bundled 8x8 digits),
``mnist`` and ``fashion-mnist`` (IDX files, downloaded on first use), ``cifar10`` and ``cifar100`` (the
python-batches archives, downloaded on first use), ``synthetic`` (tiny learnable data for tests), ``npz`` (the
user's own arrays) and ``imagefolder`` (the user's PNG/JPEG files in class folders). Torch-free.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from edgebench.data.base import Dataset, data_home, validate_arrays
from edgebench.errors import ConfigError
from edgebench.registry import Registry, check_kwargs

logger = logging.getLogger(__name__)

__all__ = ["DATASETS", "Dataset", "data_home", "load_dataset", "validate_arrays"]

DATASETS: Registry[Callable[..., Dataset]] = Registry(
    "dataset",
    modules=(
        "edgebench.data.digits",
        "edgebench.data.idx",
        "edgebench.data.synthetic",
        "edgebench.data.npz",
        "edgebench.data.cifar",
        "edgebench.data.imagefolder",
    ),
)


def load_dataset(name: str, *, where: str = "", **params: Any) -> Dataset:
    """Load the data set registered as ``name``, passing ``params`` to its loader.

    ``where`` says where the name and parameters came from (``"plan.toml: dataset"``) for messages.

    Raises:
        UnknownNameError: no data set is registered as ``name`` (the message suggests close names).
        ConfigError: a parameter the loader does not take, a missing required one, or a bad value.
        DataError: the data is missing, corrupt or invalid.
    """
    loader = DATASETS.get(name, where=where)
    prefix = f"{where}: " if where else ""
    check_kwargs(loader, params, what=f"dataset {name!r}", where=where)
    logger.debug("loading dataset %r with %r", name, params)
    try:
        return loader(**params)
    except ConfigError as exc:
        if prefix and not str(exc).startswith(prefix):
            raise type(exc)(f"{prefix}dataset {name!r}: {exc}") from exc
        raise
