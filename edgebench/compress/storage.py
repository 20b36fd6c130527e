"""The storage a device would hold for a model's weights, as seed ``002`` (Wijayanto et al., Algorithm 1,
"return DEFLATE(Ŵ, h)") and Deep Compression (Han et al., ICLR 2016, Sec. 2) compute it: codebook indices
packed to their bit width plus the codebook, the positions of pruned weights as relative indices, then
DEFLATE. An fp32 ONNX file stores every weight in 32 bits whatever its number of levels, so DEFLATE of that
file is not the size these papers report (a 90 %-sparse 5-bit layer is several times smaller packed).

Per weight tensor (rows = output channels), the smallest of these encodings before DEFLATE is kept:

- values: ``fp32`` (32 bits each, no codebook); ``codebook`` (one codebook per tensor, ``b = ceil(log2 K)``
  bits per index for K distinct values, the codebook as K fp32 values); ``codebook/row`` (one codebook per
  output channel: ``b`` from the largest row's K, the codebooks as fp32 values plus one byte per row for its
  length); ``grid/row`` (every row on a uniform grid ``lo + k·step``, as k-bit and int8 weights are, per
  channel or per tensor: ``k`` in ``b`` bits, two fp32 numbers per row; decodes to the weights within fp32
  rounding, 1e-6 of the largest |w|);
- layout: ``dense`` (one value per weight) or ``sparse`` (only the non-zeros, each with its distance to the
  previous entry in ``i`` bits; a gap longer than ``2^i − 1`` zeros gets filler entries holding a zero, Han et
  al.'s relative-index encoding; ``i`` in 1..8 chosen per tensor; the codebooks of a sparse tensor hold zero).

Everything else the model needs (biases, BatchNorm statistics, a hashed layer's bucket values) is stored as
fp32. The layers' streams and the rest are concatenated and DEFLATE'd together (:func:`deflate_size`, zlib
level 6). Container headers (shapes, a few bytes per layer) are not
counted: the graph that a device also holds carries them. Pure numpy: a function of arrays."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFLATE_LEVEL = 6  # zlib/gzip default; level 9 took ~10 s per 13 MB of low-bit weights for <1 % smaller files
MAX_CODE_BITS = 8  # codebooks of more than 256 values are not smaller than fp32 for the layers edgebench makes
INDEX_BITS = range(1, 9)


def deflate_size(data: bytes) -> int:
    """Bytes after DEFLATE (zlib, level 6, the gzip default): LZ77 + Huffman, as in seed 002's pipeline."""
    return len(zlib.compress(data, DEFLATE_LEVEL))


def pack_bits(codes: np.ndarray, bits: int) -> bytes:
    """``codes`` (non-negative integers < 2^bits) as a little-endian bit stream of ``ceil(n·bits/8)`` bytes."""
    codes = np.asarray(codes, dtype=np.uint64).reshape(-1)
    if bits == 0 or codes.size == 0:
        return b""
    if int(codes.max()) >> bits:
        raise ValueError(f"pack_bits: a code does not fit in {bits} bits")
    planes = ((codes[:, None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    return np.packbits(planes.reshape(-1), bitorder="little").tobytes()


def code_bits(k: int) -> int:
    """Bits of an index into a codebook of ``k`` values (at least 1)."""
    return max(1, math.ceil(math.log2(k))) if k > 1 else 1


@dataclass(frozen=True)
class _Coding:
    """Codes of every weight into a codebook (``bits`` = 32 and no codebook for raw fp32)."""

    name: str
    bits: int
    codes: np.ndarray | None  # None for fp32
    codebook: bytes


def _codings(v: np.ndarray, rows: int, with_zero: bool) -> list[_Coding]:
    out = [_Coding("fp32", 32, None, b"")]
    if np.unique(v[:4096]).size <= 2 ** MAX_CODE_BITS:  # a sample settles it for fp32 weights, without sorting all
        book, codes = np.unique(np.append(v, 0.0) if with_zero else v, return_inverse=True)
        if book.size <= 2 ** MAX_CODE_BITS:
            out.append(_Coding("codebook", code_bits(book.size), codes[:v.size], book.astype(np.float32).tobytes()))
    per_row = v.reshape(rows, -1)
    grid = _row_grid(per_row, with_zero) if per_row.shape[1] > 0 else None
    if grid is not None:
        out.append(grid)
    if rows > 1 and per_row.shape[1] > 0:
        books, row_codes = [], []
        for r in per_row:
            b, c = np.unique(np.append(r, 0.0) if with_zero else r, return_inverse=True)
            if b.size > 2 ** MAX_CODE_BITS:
                break
            books.append(b)
            row_codes.append(c[:r.size])
        else:
            bits = code_bits(max(b.size for b in books))
            head = np.array([b.size - 1 for b in books], dtype=np.uint8).tobytes()
            out.append(_Coding("codebook/row", bits, np.concatenate(row_codes),
                               head + np.concatenate(books).astype(np.float32).tobytes()))
    return out


def _grid_step(u: np.ndarray, tol: float) -> float | None:
    """The step of a uniform grid holding the sorted distinct values ``u`` (at most 2^8 steps wide): the smallest
    gap divided by 1..8 (a sparse row may skip levels), refined over the whole span; None if there is none."""
    d = np.diff(u)
    if d.size == 0:
        return 1.0
    span = float(u[-1]) - float(u[0])
    for div in range(1, 9):
        step = span / max(1.0, round(span * div / float(d.min())))
        k = np.rint((u - u[0]) / step)
        if k[-1] < 2 ** MAX_CODE_BITS and np.abs(u[0] + k * step - u).max() <= tol:
            return step
    return None


def _row_grid(per_row: np.ndarray, with_zero: bool) -> _Coding | None:
    """Rows whose values all lie on a uniform grid ``lo + k·step`` (k-bit and int8 grids, per channel or per
    tensor): the codes are ``k``, the codebook two fp32 numbers per row. None if a row is off its grid."""
    rows = np.concatenate([per_row, np.zeros((len(per_row), 1), np.float32)], 1) if with_zero else per_row
    tol = 1e-6 * max(float(np.abs(rows).max()), 1e-30)
    steps = np.ones((len(rows), 1))
    for i, r in enumerate(rows):
        u = np.unique(r).astype(np.float64)
        step = _grid_step(u, tol) if u.size <= 2 ** MAX_CODE_BITS else None
        if step is None:
            return None
        steps[i] = step
    lo = rows.min(1, keepdims=True).astype(np.float64)
    k = np.rint((rows - lo) / steps)
    book = np.concatenate([lo, steps], 1).astype(np.float32).tobytes()
    return _Coding("grid/row", code_bits(int(k.max()) + 1), k[:, :per_row.shape[1]].astype(np.int64).reshape(-1), book)


def _entries(nonzero: np.ndarray, index_bits: int) -> int:
    """Entries of the sparse layout: the non-zeros plus one filler per ``2^i`` skipped zeros."""
    gaps = np.diff(nonzero, prepend=-1) - 1
    return int(nonzero.size + (gaps >> index_bits).sum())


def _sparse_streams(nonzero: np.ndarray, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(relative index of each entry, its position in the flat tensor), fillers included."""
    span = 1 << index_bits
    gaps = np.diff(nonzero, prepend=-1) - 1
    fill = gaps >> index_bits
    rel = np.full(int(nonzero.size + fill.sum()), span - 1, dtype=np.int64)
    last = np.cumsum(fill + 1) - 1  # each non-zero comes after its fillers
    rel[last] = gaps - fill * span
    return rel, np.cumsum(rel + 1) - 1


def encode_tensor(values: np.ndarray, *, rows: int = 1) -> tuple[bytes, dict[str, Any]]:
    """The packed bytes of one weight tensor (flattened row-major, ``rows`` output channels) in its smallest
    encoding, and what it is: ``{values, layout, bits, index_bits, index_bytes, value_bytes, codebook_bytes,
    packed_bytes, n, entries, nonzeros}`` (``index_bytes`` is the sparse layout's relative-index stream, else 0;
    ``entries``, the values stored, fillers included, is header data a reader needs, not counted)."""
    v = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    n = v.size
    rows = rows if rows >= 1 and n % rows == 0 else 1
    nonzero = np.flatnonzero(v)
    best: tuple[int, str, _Coding, int] | None = None
    for layout in ("dense", "sparse") if nonzero.size < n else ("dense",):
        for coding in _codings(v, rows, with_zero=layout == "sparse"):
            for ib in INDEX_BITS if layout == "sparse" else (0,):
                entries = _entries(nonzero, ib) if ib else n
                size = math.ceil(entries * ib / 8) + math.ceil(entries * coding.bits / 8) + len(coding.codebook)
                if best is None or size < best[0]:
                    best = (size, layout, coding, ib)
    assert best is not None
    _, layout, coding, ib = best
    if layout == "sparse":
        rel, pos = _sparse_streams(nonzero, ib)
        index = pack_bits(rel, ib)
    else:
        index, pos = b"", np.arange(n)
    value = v[pos].tobytes() if coding.codes is None else pack_bits(coding.codes[pos], coding.bits)
    info = {"values": coding.name, "layout": layout, "bits": coding.bits, "index_bits": ib or None,
            "index_bytes": len(index), "value_bytes": len(value), "codebook_bytes": len(coding.codebook),
            "packed_bytes": len(index) + len(value) + len(coding.codebook), "n": int(n), "entries": int(pos.size),
            "nonzeros": int(nonzero.size)}
    return index + value + coding.codebook, info


def true_size(weights: dict[str, tuple[np.ndarray, int]], rest: list[np.ndarray]) -> dict[str, Any]:
    """The stored size of a model: ``weights`` = ``{layer: (tensor, rows)}`` encoded by :func:`encode_tensor`,
    ``rest`` (biases, normalization statistics…) as fp32; all DEFLATE'd together. Returns ``{stored_bytes,
    stored_packed_bytes, stored_rest_bytes, stored_layers: {layer: encoding}}``."""
    parts, layers = [], {}
    for name, (w, rows) in weights.items():
        data, info = encode_tensor(w, rows=rows)
        parts.append(data)
        layers[name] = info
    other = b"".join(np.ascontiguousarray(t, dtype=np.float32).tobytes() for t in rest)
    blob = b"".join(parts) + other
    return {"stored_bytes": deflate_size(blob), "stored_packed_bytes": len(blob),
            "stored_rest_bytes": len(other), "stored_layers": layers}
