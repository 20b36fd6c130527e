"""The user's own data: ``.npz`` archives holding an image array ``x`` and a label array ``y``.

Save them with ``np.savez(path, x=images, y=labels)``; ``x`` is uint8 (0..255) or float in [0, 1], shaped
(N, H, W), (N, C, H, W) or (N, H, W, C). Pickled (object) arrays are refused.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from edgebench.data import DATASETS
from edgebench.data.base import Dataset, validate_arrays
from edgebench.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"


def _read_npz(path: Path, param: str) -> tuple[np.ndarray, np.ndarray]:
    """The arrays ``x`` and ``y`` of the archive at ``path`` (given as ``param``), or a DataError."""
    if not path.is_file():
        raise DataError(
            f"{path}: file not found (npz parameter {param!r}; "
            "expected an .npz archive with arrays 'x' and 'y')"
        )
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file: {exc}") from exc
    if magic not in (_ZIP_MAGIC, _EMPTY_ZIP_MAGIC):
        raise DataError(
            f"{path}: not an .npz archive; save the arrays with np.savez(path, x=images, y=labels)"
        )
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for key in ("x", "y"):
                if key not in archive.files:
                    found = ", ".join(repr(k) for k in archive.files) or "none"
                    raise DataError(
                        f"{path}: missing array {key!r} (arrays found: {found}); "
                        "save with np.savez(path, x=images, y=labels)"
                    )
                arrays[key] = archive[key]
    except DataError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object arrays" in str(exc).lower():
            raise DataError(
                f"{path}: holds pickled (object) arrays, which are refused for safety; "
                "save plain numeric arrays (uint8 or float images, integer labels)"
            ) from exc
        raise DataError(f"{path}: corrupt .npz archive: {exc}") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: corrupt .npz archive: {exc}") from exc
    return arrays["x"], arrays["y"]


@DATASETS.register("npz")
def npz(*, test: str, train: str | None = None, classes: list[str] | None = None) -> Dataset:
    """A data set from ``.npz`` files with arrays ``x`` (images) and ``y`` (integer labels).

    Args:
        test: path of the test archive (required, non-empty).
        train: path of the train archive; without it the train split is empty.
        classes: class names; their count is the number of classes. Default: ``"0"`` .. ``str(max label)``.

    Raises:
        DataError: a file is missing, is not an .npz archive, lacks ``x`` or ``y``, holds pickled arrays,
            or its arrays fail :func:`~edgebench.data.base.validate_arrays`; train and test shapes differ.
        ConfigError: ``classes`` is not a non-empty list of distinct strings.
    """
    if classes is not None:
        if isinstance(classes, str) or not isinstance(classes, (list, tuple)) or not classes:
            raise ConfigError(f"classes must be a non-empty list of names, got {classes!r}")
        if len(set(map(str, classes))) != len(classes):
            raise ConfigError(f"classes must be distinct, got {list(classes)!r}")
    num_classes = len(classes) if classes is not None else None

    test_path = Path(test).expanduser()
    x_test, y_test = validate_arrays(
        *_read_npz(test_path, "test"), num_classes=num_classes, source=str(test_path)
    )
    if len(y_test) == 0:
        raise DataError(f"{test_path}: the test set is empty")

    if train is not None:
        train_path = Path(train).expanduser()
        x_train, y_train = validate_arrays(
            *_read_npz(train_path, "train"), num_classes=num_classes, source=str(train_path)
        )
        if len(y_train) and x_train.shape[1:] != x_test.shape[1:]:
            raise DataError(
                f"{train_path}: samples have shape {x_train.shape[1:]} but those of {test_path} have shape "
                f"{x_test.shape[1:]}"
            )
    else:
        x_train = np.zeros((0, *x_test.shape[1:]), dtype=np.float32)
        y_train = np.zeros(0, dtype=np.int64)
    if len(y_train) == 0:
        x_train = np.zeros((0, *x_test.shape[1:]), dtype=np.float32)

    if classes is not None:
        names = tuple(str(c) for c in classes)
    else:
        top = int(max(y_test.max(), y_train.max() if len(y_train) else 0))
        names = tuple(str(i) for i in range(top + 1))
    logger.debug("npz: %d train / %d test samples from %s", len(y_train), len(y_test), test_path)
    return Dataset(
        name=f"npz:{test_path.stem}",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        classes=names,
    )
