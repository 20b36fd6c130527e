"""A cache of decoded data-set arrays, content-addressed, so that a second load skips the decoding.

An archive that must be decoded on every load (CIFAR's pickled batches: ~10 s for the 60000 images) is
decoded once; its arrays are stored as an uncompressed ``.npz`` under
:func:`~edgebench.data.base.data_home` ``/decoded``, named by the archive's MD5, what was decoded from it and
the decoder's version. A changed archive has another MD5, a changed decoder another version: neither can be
served a stale entry. Entries are written to a temporary file and renamed into place (:func:`os.replace`), so
a reader never sees a partial one; an unreadable entry is decoded again and replaced. Where the folder is not
writable, the arrays are decoded and returned without caching. Torch-free.
"""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from edgebench.data.base import data_home

logger = logging.getLogger(__name__)

__all__ = ["cached_arrays", "entry_path", "save_atomic"]

Arrays = dict[str, np.ndarray]


def entry_path(name: str, md5: str, variant: str, version: int) -> Path:
    """Where the decoded arrays of archive ``md5`` (data set ``name``, decoded as ``variant``) are stored."""
    return data_home() / "decoded" / f"{name}-{md5}-{variant}-v{version}.npz"


def _read(path: Path) -> Arrays | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        logger.warning("%s: unreadable decoded-array cache entry (%s); decoding again", path, exc)
        return None


def save_atomic(path: Path, write: Callable[[BinaryIO], None]) -> OSError | None:
    """Write ``path`` through ``write(file)`` into a temporary file beside it, renamed into place, so a reader
    never sees a partial file; the error where the folder or the file cannot be written (nothing is left)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        return exc
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            return exc
        raise
    return None


def _write(path: Path, arrays: Arrays) -> None:
    exc = save_atomic(path, lambda fh: np.savez(fh, **arrays))
    if exc is not None:
        logger.debug("%s: not cached (%s)", path, exc)


def cached_arrays(name: str, md5: str, variant: str, version: int, decode: Callable[[], Arrays]) -> Arrays:
    """The arrays ``decode()`` returns for the archive whose MD5 is ``md5``: from the cache when an entry for
    this (``name``, ``md5``, ``variant``, ``version``) exists, else decoded now and stored.

    ``version`` is the decoder's: bump it whenever what ``decode`` returns for the same archive changes.
    Arrays must be plain (no object dtype).
    """
    path = entry_path(name, md5.lower(), variant, version)
    if path.is_file():
        arrays = _read(path)
        if arrays is not None:
            logger.debug("%s: decoded arrays from %s", name, path)
            return arrays
    arrays = decode()
    _write(path, arrays)
    return arrays
