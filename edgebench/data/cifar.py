"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images"): the
python-batches archives, downloaded with their MD5 checked and read without extracting them.

The archive is looked up in ``root`` when given, else in ``$EDGEBENCH_DATA/<name>`` when that variable is
set, else in :func:`~edgebench.data.base.data_home` ``/<name>`` (the download folder is always searched
too), exactly as for MNIST (:mod:`edgebench.data.idx`, whose checksummed atomic :func:`download` is reused).

The batches inside are Python pickles of dicts holding a uint8 ``data`` array (N, 3072) and lists of labels.
``pickle.load`` calls whatever callables a file names, so a tampered or re-packed archive (a ``mirror``
with its own ``md5``) could run code on load. They are read with :class:`_BatchUnpickler`, which resolves
only the three globals a pickled numpy array needs (``_reconstruct``, ``ndarray``, ``dtype``), plus
``_codecs.encode`` that Python 3 writes for bytes, and refuses anything else. Torch-free.

Decoding the pickles takes seconds (the 60000 images of the real archives); the decoded uint8 arrays are kept
in the decoded-array cache (:mod:`edgebench.data.decoded`, under ``$EDGEBENCH_CACHE/data/decoded``), keyed by
the archive's MD5 and :data:`DECODE_VERSION`, so later loads of the same archive only read them.
"""

from __future__ import annotations

import codecs
import io
import logging
import os
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.data import DATASETS
from edgebench.data.base import Dataset
from edgebench.data.decoded import cached_arrays
from edgebench.data.idx import _md5_of, _sources, _verify, _writable, download
from edgebench.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

__all__ = ["cifar10", "cifar100", "read_batches"]

_MIRROR = "https://www.cs.toronto.edu/~kriz/"
_HEX = set("0123456789abcdefABCDEF")

#: name -> (archive file, its MD5, folder inside the archive, train members, test members, meta member)
_ARCHIVES: dict[str, tuple[str, str, str, tuple[str, ...], tuple[str, ...], str]] = {
    "cifar10": (
        "cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
    ),
    "cifar100": (
        "cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
        "cifar-100-python",
        ("train",),
        ("test",),
        "meta",
    ),
}

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]

#: The only globals a batch may name: what numpy needs to rebuild an array (under numpy 1 and 2 module paths),
#: resolved here rather than imported by name (``numpy.core`` is deprecated under numpy 2).
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # Python 3 writes bytes under pickle protocol 2 as _codecs.encode(str, "latin1"): a pure str -> bytes
    # function, needed by archives re-packed with Python 3 (the official Python 2 batches do not use it)
    ("_codecs", "encode"): codecs.encode,
}


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`_ALLOWED` (what a pickled numpy array needs)."""

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"refused global {module}.{name} (only numpy arrays are allowed)")
        return found


def _unpickle(raw: bytes, where: str) -> dict[str, Any]:
    """One batch as a dict with ``str`` keys (the official files are Python 2 pickles, read as latin-1)."""
    try:
        obj = _BatchUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except Exception as exc:  # a corrupt pickle raises anything from UnpicklingError to IndexError
        raise DataError(f"{where}: not a CIFAR python batch ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{where}: not a CIFAR python batch (a pickled {type(obj).__name__}, not a dict)")
    return obj


def read_batches(path: Path, folder: str, wanted: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The unpickled members ``folder/<name>`` of the tar.gz at ``path``, for each name in ``wanted``.

    Nothing is extracted to disk (member names are only compared, never used as paths).

    Raises:
        DataError: naming the file, when it is not a gzip tar archive, is truncated, lacks a member or a
            member is not a pickled dict of plain data.
    """
    found: dict[str, dict[str, Any]] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                top, _, name = member.name.partition("/")
                if top != folder or name not in wanted or not member.isfile():
                    continue
                fh = tar.extractfile(member)
                assert fh is not None  # a regular file
                found[name] = _unpickle(fh.read(), f"{path}: {member.name}")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated archive ({exc}); delete it and load again") from exc
    missing = [n for n in wanted if n not in found]
    if missing:
        raise DataError(f"{path}: the archive lacks {', '.join(f'{folder}/{n}' for n in missing)}")
    return found


def _arrays(
    batches: list[tuple[str, dict[str, Any]]], label_key: str, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate batches into uint8 (N, 3, 32, 32) images and int64 labels, checking each."""
    xs, ys = [], []
    for where, batch in batches:
        data, labels = batch.get("data"), batch.get(label_key)
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
            raise DataError(f"{where}: 'data' must be a uint8 array of shape (N, 3072), got {got}")
        y = np.asarray(labels if labels is not None else [], dtype=np.int64)
        if y.shape != (len(data),):
            raise DataError(f"{where}: {len(data)} images but {y.size} '{label_key}'")
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise DataError(f"{where}: '{label_key}' must be in [0, {num_classes}), found {y.min()}..{y.max()}")
        xs.append(data.reshape(-1, 3, 32, 32))  # each row is the red, green then blue 32x32 plane
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def _unit(x: np.ndarray) -> np.ndarray:
    """uint8 images as float32 in [0, 1]."""
    out = x.astype(np.float32)
    out /= np.float32(255.0)
    return out


def _archive(
    name: str, root: str | os.PathLike[str] | None, allow_download: bool, mirror: str | None, md5: str | None
) -> Path:
    """The verified archive of ``name``: found in the search folders, else downloaded."""
    first, home, search = _sources(name, root, allow_download, mirror, _MIRROR)
    fname, official, *_ = _ARCHIVES[name]
    if md5 is not None and (not isinstance(md5, str) or len(md5) != 32 or not set(md5) <= _HEX):
        raise ConfigError(f"md5 must be the 32 hex digits of the archive's MD5, got {md5!r}")
    expected = (md5 or official).lower()
    for folder in search:
        if (folder / fname).is_file():
            _verify(folder / fname, expected, name)
            return folder / fname
    base = (mirror or _MIRROR).strip()
    base = base if base.endswith("/") else base + "/"
    if not allow_download:
        where = " or ".join(str(f) for f in search)
        raise DataError(f"{name}: {fname} is not in {where}; download it from {base} into {first}, "
                        "or set download = true")
    target = first if root is not None and _writable(first) else home
    logger.info("%s: downloading %s from %s into %s", name, fname, base, target)
    return download(base + fname, target / fname, md5=expected, timeout=60.0)


#: The version of what :func:`_load` decodes from an archive; bump it when that changes (the decoded-array
#: cache, :mod:`edgebench.data.decoded`, is keyed by it and by the archive's MD5).
DECODE_VERSION = 1


def _load(name: str, archive: Path, label_key: str, names_key: str, num_classes: int) -> Dataset:
    _, _, folder, train, test, meta = _ARCHIVES[name]

    def decode() -> dict[str, np.ndarray]:
        batches = read_batches(archive, folder, (*train, *test, meta))
        classes = batches[meta].get(names_key)
        if not isinstance(classes, list) or len(classes) != num_classes:
            raise DataError(f"{archive}: {folder}/{meta} must list {num_classes} '{names_key}'")
        x_train, y_train = _arrays([(f"{archive}: {n}", batches[n]) for n in train], label_key, num_classes)
        x_test, y_test = _arrays([(f"{archive}: {n}", batches[n]) for n in test], label_key, num_classes)
        return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test,
                "classes": np.array([str(c) for c in classes])}

    arrays = cached_arrays(name, _md5_of(archive), label_key, DECODE_VERSION, decode)
    logger.debug("%s: %d train / %d test samples from %s", name, len(arrays["y_train"]), len(arrays["y_test"]),
                 archive)
    return Dataset(name=name, x_train=_unit(arrays["x_train"]), y_train=arrays["y_train"],
                   x_test=_unit(arrays["x_test"]), y_test=arrays["y_test"],
                   classes=tuple(str(c) for c in arrays["classes"]))


@DATASETS.register("cifar10")
def cifar10(
    *, root: str | None = None, download: bool = True, mirror: str | None = None, md5: str | None = None
) -> Dataset:
    """CIFAR-10: 50000 train / 10000 test colour images of ten classes, as (N, 3, 32, 32) float32 in [0, 1].

    Args:
        root: folder holding ``cifar-10-python.tar.gz`` (looked in first; downloaded into when writable).
        download: fetch a missing archive from ``mirror``; when false, a missing archive is an error.
        mirror: base URL of the archive, default ``https://www.cs.toronto.edu/~kriz/``.
        md5: the archive's expected MD5, default the official ``c58f30108f718f92721af3b95e74349a``
            (set it only for a re-packed archive you trust).

    Raises:
        DataError: the archive is missing (with ``download`` false), unreachable, fails its MD5, is corrupt
            or holds something other than CIFAR batches.
    """
    return _load("cifar10", _archive("cifar10", root, download, mirror, md5), "labels", "label_names", 10)


@DATASETS.register("cifar100")
def cifar100(
    *,
    root: str | None = None,
    download: bool = True,
    mirror: str | None = None,
    md5: str | None = None,
    label: str = "fine",
) -> Dataset:
    """CIFAR-100: 50000 train / 10000 test 32x32 colour images of 100 classes (or their 20 superclasses).

    Args:
        label: ``"fine"`` (100 classes, the default) or ``"coarse"`` (20 superclasses).
        root, download, mirror, md5: as for :func:`cifar10`; the archive is ``cifar-100-python.tar.gz``
            with MD5 ``eb9058c3a382ffc7106e4002c42a8d85``.

    Raises:
        ConfigError: ``label`` is neither ``"fine"`` nor ``"coarse"``.
        DataError: as for :func:`cifar10`.
    """
    if label not in ("fine", "coarse"):
        raise ConfigError(f'label must be "fine" or "coarse", got {label!r}')
    archive = _archive("cifar100", root, download, mirror, md5)
    ds = _load("cifar100", archive, f"{label}_labels", f"{label}_label_names", 100 if label == "fine" else 20)
    if label == "coarse":  # a distinct name, so that fingerprints and reports tell the two apart
        ds = Dataset("cifar100-coarse", ds.x_train, ds.y_train, ds.x_test, ds.y_test, ds.classes)
    return ds
