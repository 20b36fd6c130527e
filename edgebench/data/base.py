"""The :class:`Dataset` container, the checks applied to user-supplied arrays, and the download folder.

Torch-free (numpy and the standard library only): the device side may import it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgebench.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

__all__ = ["Dataset", "data_home", "validate_arrays"]


def data_home() -> Path:
    """The folder that downloaded data sets go to: ``$EDGEBENCH_CACHE/data``.

    ``EDGEBENCH_CACHE`` defaults to ``$XDG_CACHE_HOME/edgebench``, or ``~/.cache/edgebench`` when
    ``XDG_CACHE_HOME`` is unset. The folder is not created here.
    """
    cache = os.environ.get("EDGEBENCH_CACHE")
    if cache:
        base = Path(cache).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "edgebench"
    return base / "data"


@dataclass(frozen=True, repr=False, eq=False)
class Dataset:
    """A labelled image classification set, split into train and test.

    ``x_*`` are float32 arrays of shape (N, C, H, W) with values in [0, 1]; ``y_*`` are int64 arrays of
    shape (N,) with labels in ``[0, len(classes))``. The train split may be empty (N = 0).
    The arrays are shared, not copied: treat them as read-only, since :meth:`fingerprint` is cached.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if not isinstance(x, np.ndarray) or x.ndim != 4 or x.dtype != np.float32:
                raise DataError(
                    f"dataset {self.name!r}: x_{split} must be a float32 array of shape (N, C, H, W), "
                    f"got {_describe(x)}"
                )
            if not isinstance(y, np.ndarray) or y.ndim != 1 or y.dtype != np.int64:
                raise DataError(
                    f"dataset {self.name!r}: y_{split} must be an int64 array of shape (N,), "
                    f"got {_describe(y)}"
                )
            if len(x) != len(y):
                raise DataError(
                    f"dataset {self.name!r}: x_{split} has {len(x)} samples but y_{split} has {len(y)}"
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(
                f"dataset {self.name!r}: train samples have shape {self.x_train.shape[1:]} but test samples "
                f"have shape {self.x_test.shape[1:]}"
            )
        if not self.classes:
            raise DataError(f"dataset {self.name!r} has no classes")

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
            f"shape={self.shape}, num_classes={self.num_classes})"
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        """The shape (C, H, W) of one sample."""
        c, h, w = self.x_test.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.classes)

    def subset(self, *, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> Dataset:
        """A deterministic, class-stratified sample of ``n_train`` train and ``n_test`` test samples.

        Each class gets a share of the sample proportional to its frequency (largest remainders get
        the leftover places); within a class the samples are drawn by a permutation seeded with
        ``seed``. The chosen samples keep their original order. ``None`` keeps a split whole.

        Raises:
            ConfigError: ``n_train`` / ``n_test`` is negative, not an integer or larger than the split.
        """
        if n_train is None and n_test is None:
            return self
        x_train, y_train = _pick(self.x_train, self.y_train, n_train, seed, 0, "n_train", "train")
        x_test, y_test = _pick(self.x_test, self.y_test, n_test, seed, 1, "n_test", "test")
        return Dataset(self.name, x_train, y_train, x_test, y_test, self.classes)

    def fingerprint(self) -> str:
        """SHA-256 hex digest over the name, classes, shapes, dtypes and raw bytes of the four arrays.

        Computed once and cached on the instance; used in cache keys.
        """
        cached = self.__dict__.get("_fingerprint")
        if cached is not None:
            return cached
        h = hashlib.sha256()
        h.update(b"edgebench.dataset.v1\0")
        h.update(self.name.encode() + b"\0")
        h.update("\0".join(self.classes).encode() + b"\0")
        for arr in (self.x_train, self.y_train, self.x_test, self.y_test):
            h.update(f"{arr.dtype.str}{arr.shape}\0".encode())
            h.update(np.ascontiguousarray(arr).view(np.uint8).reshape(-1).data)
        digest = h.hexdigest()
        object.__setattr__(self, "_fingerprint", digest)
        return digest


def _describe(a: object) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype} array of shape {a.shape}"
    return type(a).__name__


def _pick(
    x: np.ndarray, y: np.ndarray, n: int | None, seed: int, stream: int, what: str, split: str
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified seeded choice of ``n`` rows of (x, y), in their original order."""
    if n is None:
        return x, y
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ConfigError(f"{what} must be an integer, got {n!r}")
    n = int(n)
    available = len(y)
    if n < 0:
        raise ConfigError(f"{what} must be >= 0, got {n}")
    if n > available:
        raise ConfigError(f"{what}={n} is larger than the {available} {split} samples available")
    if n == available:
        return x, y
    rng = np.random.default_rng([int(seed), stream])
    labels, counts = np.unique(y, return_counts=True)
    quota = counts * (n / available)
    take = np.floor(quota).astype(np.int64)
    left = n - int(take.sum())
    if left:
        # Largest remainders first; ties go to the lower label (stable sort).
        order = np.argsort(-(quota - take), kind="stable")
        take[order[:left]] += 1
    chosen = []
    for label, k in zip(labels, take, strict=True):
        if k:
            members = np.flatnonzero(y == label)
            chosen.append(members[rng.permutation(len(members))[:k]])
    idx = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    return np.ascontiguousarray(x[idx]), np.ascontiguousarray(y[idx])


def validate_arrays(
    x: object, y: object, *, num_classes: int | None, source: str
) -> tuple[np.ndarray, np.ndarray]:
    """Convert user arrays to the :class:`Dataset` layout and check them.

    ``x`` may be uint8 (scaled by 1/255) or floating point with values in [0, 1]; (N, H, W) gains a
    channel axis, and (N, H, W, C) with C in (1, 3) and H, W > 4 is transposed to (N, C, H, W).
    ``y`` must be 1-D and integer-valued (integer dtype, or floats holding whole numbers).

    Returns:
        ``(x, y)`` as a C-contiguous float32 (N, C, H, W) array and an int64 (N,) array.

    Raises:
        DataError: naming ``source`` for a bad dtype or shape, NaN/inf or out-of-range values, labels that
            are not integers or not in ``[0, num_classes)``, or a length mismatch between x and y.
    """
    xa = np.asarray(x)
    ya = np.asarray(y)

    if xa.dtype == np.uint8:
        xf = xa.astype(np.float32)
        xf /= np.float32(255.0)
    elif np.issubdtype(xa.dtype, np.floating):
        xf = xa
    else:
        raise DataError(
            f"{source}: x has dtype {xa.dtype}; expected uint8 (0..255) or floating point values in [0, 1]"
        )

    if xf.ndim == 3:
        xf = xf[:, None, :, :]
    elif xf.ndim == 4:
        if xf.shape[3] in (1, 3) and xf.shape[1] > 4 and xf.shape[2] > 4:
            xf = xf.transpose(0, 3, 1, 2)
    else:
        raise DataError(f"{source}: x has shape {xa.shape}; expected (N, H, W), (N, C, H, W) or (N, H, W, C)")

    if xa.dtype != np.uint8 and xf.size:
        finite = np.isfinite(xf)
        if not finite.all():
            bad = int(xf.size - np.count_nonzero(finite))
            raise DataError(f"{source}: x holds {bad} NaN or infinite value(s) out of {xf.size}")
        lo, hi = float(xf.min()), float(xf.max())
        if lo < 0.0 or hi > 1.0:
            raise DataError(
                f"{source}: x has values in [{lo:g}, {hi:g}]; inputs must be scaled to [0, 1] "
                "(or given as uint8 0..255)"
            )
    xf = np.ascontiguousarray(xf, dtype=np.float32)

    if ya.ndim != 1:
        raise DataError(f"{source}: y has shape {ya.shape}; labels must be a 1-D array of class indices")
    if np.issubdtype(ya.dtype, np.integer):
        yi = ya.astype(np.int64, copy=False)
    elif np.issubdtype(ya.dtype, np.floating):
        whole = np.isfinite(ya) & (ya == np.round(ya))
        if not whole.all():
            examples = np.unique(ya[~whole])[:5].tolist()
            raise DataError(
                f"{source}: y must hold integer class labels, found non-integer values {examples}"
            )
        yi = ya.astype(np.int64)
    else:
        raise DataError(f"{source}: y has dtype {ya.dtype}; labels must be integer class indices")

    if len(xf) != len(yi):
        raise DataError(f"{source}: x has {len(xf)} samples but y has {len(yi)} labels")

    if yi.size:
        upper = num_classes
        bad_mask = yi < 0 if upper is None else (yi < 0) | (yi >= upper)
        if bad_mask.any():
            bad = np.unique(yi[bad_mask])
            shown = ", ".join(str(v) for v in bad[:10]) + (", ..." if len(bad) > 10 else "")
            allowed = f"[0, {upper})" if upper is not None else "non-negative integers"
            raise DataError(f"{source}: {int(bad_mask.sum())} label(s) outside {allowed}: {shown}")
    return xf, np.ascontiguousarray(yi)
