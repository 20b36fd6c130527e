"""Test sets read and outputs written in chunks, so a 1 GB board runs a set larger than its memory. Torch-free.

A test set is a ``.npz`` (a member ``x.npy``, stored or deflated) or a plain ``.npy`` file. Only the array
header is parsed up front (shape and dtype, so a wrong sample shape fails before any inference); the samples
then stream ``batch`` rows at a time from the (possibly compressed) member. Object arrays are refused: they
would need pickle (DESIGN.md, "Untrusted files").
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from edgebench.errors import DataError

_fmt = np.lib.format


@contextmanager
def _open_x(path: Path) -> Iterator[IO[bytes]]:
    """The byte stream of array ``x``: the member ``x.npy`` of an ``.npz`` or the ``.npy`` file itself."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if "x.npy" not in z.namelist():
                names = [n[:-4] if n.endswith(".npy") else n for n in z.namelist()]
                raise DataError(f"{path}: no array 'x' in this test set (has {names})")
            with z.open("x.npy") as f:
                yield f
    else:
        with open(path, "rb") as f:
            yield f


def _header(f: IO[bytes], path: Path) -> tuple[tuple[int, ...], np.dtype[Any], bool]:
    try:
        version = _fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = _fmt.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = _fmt.read_array_header_2_0(f)
    except ValueError as exc:
        raise DataError(f"{path}: not a NumPy array file ({exc})") from None
    if dtype.hasobject:
        raise DataError(f"{path}: array 'x' holds Python objects; pickled arrays are refused, save plain numbers")
    if dtype.kind not in "fiub":
        raise DataError(f"{path}: array 'x' has dtype {dtype}; expected numbers (float32 in [0, 1])")
    return tuple(shape), dtype, fortran


def testset_shape(path: str | Path) -> tuple[int, ...]:
    """Shape of the test set's ``x`` from its header alone."""
    path = Path(path)
    with _open_x(path) as f:
        return _header(f, path)[0]


def iter_batches(path: str | Path, batch: int) -> Iterator[np.ndarray]:
    """Yield float32, C-contiguous chunks of at most ``batch`` samples of the test set's ``x``.

    Memory: one chunk (plus the zip reader's buffer), whatever the set's size. Non-finite values are an
    error naming the file and the first bad sample.
    """
    path = Path(path)
    with _open_x(path) as f:
        shape, dtype, fortran = _header(f, path)
        if fortran and len(shape) > 1:
            raise DataError(f"{path}: array 'x' is stored in Fortran order; save it C-contiguous")
        n = shape[0] if shape else 0
        row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        done = 0
        while done < n:
            k = min(batch, n - done)
            raw = np.empty((k, *shape[1:]), dtype=dtype)  # writeable: runtimes may bind it in place
            view, got = memoryview(raw).cast("B"), 0
            while got < len(view):
                step = f.readinto(view[got:])
                if not step:
                    raise DataError(f"{path}: array 'x' is truncated ({done + got // max(row, 1)} of {n} samples); "
                                    "re-send or re-create the file")
                got += step
            x = raw if dtype == np.float32 else raw.astype(np.float32)
            bad = ~np.isfinite(x.reshape(k, -1)).all(axis=1)
            if bad.any():
                raise DataError(f"{path}: sample {done + int(np.argmax(bad))} holds NaN/inf values; fix the data")
            yield x
            done += k


class NpyWriter:
    """Writes a ``(n, *row_shape)`` float32 ``.npy`` file chunk by chunk; published by one rename on
    :meth:`close`, so a killed agent never leaves a half-written output that looks finished."""

    def __init__(self, path: str | Path, n: int) -> None:
        self.path = Path(path)
        self.n = n
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._f: IO[bytes] | None = None
        self._rows = 0

    def write(self, chunk: np.ndarray) -> None:
        chunk = np.ascontiguousarray(chunk, dtype=np.float32)
        if self._f is None:
            self._f = open(self._tmp, "wb")
            _fmt.write_array_header_1_0(self._f, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (self.n, *chunk.shape[1:])})
        self._f.write(chunk.astype("<f4", copy=False).tobytes())
        self._rows += len(chunk)

    def close(self) -> None:
        if self._f is None:  # an empty set: a (0, 0) array
            with open(self._tmp, "wb") as f:
                np.save(f, np.zeros((0, 0), np.float32))
        else:
            self._f.close()
            if self._rows != self.n:
                raise DataError(f"{self.path}: wrote {self._rows} rows, expected {self.n}")
        os.replace(self._tmp, self.path)
