"""True stored sizes (seed 002: codebook indices packed to their bit width + codebook + relative sparse index,
DEFLATE'd): exact byte counts, a decoder that gets every weight back, and real variants of a trained model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from edgebench.compress.inq import quantize_pow2
from edgebench.compress.stats import model_stats, stored_size
from edgebench.compress.storage import code_bits, deflate_size, encode_tensor, pack_bits, true_size
from edgebench.data import load_dataset
from edgebench.models import create_model
from edgebench.models.train import TrainConfig, seeded
from edgebench.variants import VariantContext, create_method


def unpack(data: bytes, bits: int, n: int) -> np.ndarray:
    planes = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")[:n * bits].reshape(n, bits)
    return (planes.astype(np.int64) << np.arange(bits)).sum(1)


def decode(data: bytes, info: dict, rows: int) -> np.ndarray:
    """An independent reader of :func:`encode_tensor`'s streams, for every coding and both layouts."""
    n = info["n"]
    if info["layout"] == "dense":
        entries, pos = n, np.arange(n)
    else:
        entries = info["entries"]  # from the header: the last byte's padding would read as entries
        pos = np.cumsum(unpack(data[:info["index_bytes"]], info["index_bits"], entries) + 1) - 1
    body = data[info["index_bytes"]:info["index_bytes"] + info["value_bytes"]]
    book = data[len(data) - info["codebook_bytes"]:]
    row = pos // (n // rows)
    if info["values"] == "fp32":
        vals = np.frombuffer(body, dtype=np.float32)[:entries]
    else:
        codes = unpack(body, info["bits"], entries)
        if info["values"] == "codebook":
            vals = np.frombuffer(book, dtype=np.float32)[codes]
        elif info["values"] == "grid/row":
            lo, step = np.frombuffer(book, dtype=np.float32).reshape(rows, 2).T
            vals = lo[row] + codes * step[row].astype(np.float64)
        else:
            sizes = np.frombuffer(book[:rows], dtype=np.uint8).astype(np.int64) + 1
            flat = np.frombuffer(book[rows:], dtype=np.float32)
            vals = flat[(np.cumsum(sizes) - sizes)[row] + codes]
    out = np.zeros(n, dtype=np.float32)
    out[pos] = vals
    return out


@pytest.mark.parametrize("values", ["fp32", "codebook", "codebook/row", "grid/row"])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.95])
def test_every_encoding_decodes_back(values, sparsity) -> None:
    rng = np.random.default_rng(7)
    rows, cols = 24, 200
    if values == "fp32":
        w = rng.standard_normal((rows, cols))
    elif values == "codebook":
        w = rng.choice([0.3, -1.7, 2.9, 0.011, -0.4], (rows, cols))
    elif values == "codebook/row":  # few irregular values per row, a different set in each row
        w = rng.choice([0.3, -1.7, 2.9, 0.011], (rows, cols)) * rng.uniform(0.5, 2.0, (rows, 1)) ** 2
    else:  # a 6-bit uniform grid with its own scale per row (per-channel k-bit)
        w = rng.integers(-31, 32, (rows, cols)) * rng.uniform(0.001, 0.1, (rows, 1))
    w = np.where(rng.random((rows, cols)) < sparsity, 0.0, w).astype(np.float32)
    data, info = encode_tensor(w, rows=rows)
    assert info["values"] == values, info
    assert info["layout"] == {0.0: "dense", 0.95: "sparse"}.get(sparsity, info["layout"])
    assert info["packed_bytes"] == len(data) == info["index_bytes"] + info["value_bytes"] + info["codebook_bytes"]
    np.testing.assert_allclose(decode(data, info, rows), w.reshape(-1), rtol=0, atol=1e-6 * np.abs(w).max())


def test_pack_bits_by_hand() -> None:
    assert pack_bits(np.array([1, 2, 3]), 2) == bytes([0b111001])
    assert pack_bits(np.array([5, 1]), 3) == bytes([0b001101])
    assert len(pack_bits(np.arange(10) % 8, 3)) == math.ceil(10 * 3 / 8) == 4
    assert [code_bits(k) for k in (1, 2, 3, 4, 5, 16, 17, 256)] == [1, 1, 2, 2, 3, 4, 5, 8]
    with pytest.raises(ValueError, match="3 bits"):
        pack_bits(np.array([8]), 3)


def test_kbit_layer_packs_to_its_bit_width_plus_the_codebook() -> None:
    """A real 4-bit per-tensor k-bit layer of digits_cnn (16 levels, no zero): ceil(n·4/8) index bytes + 16 fp32
    values."""
    ds = load_dataset("digits")
    seeded(0)
    base = create_model("digits_cnn", input_shape=ds.shape, num_classes=10)  # quantizing needs no training
    ctx = VariantContext(ds.x_train, ds.y_train, ds.shape, 10, TrainConfig(epochs=1), seed=0, where="test")
    kbit = create_method("compress", "kbit", bits=4, grid="nozero", granularity="tensor", scale="max")
    q = kbit.apply(base, ctx).model
    w = next(m.weight for m in q.modules() if isinstance(m, nn.Linear)).detach().numpy()
    data, info = encode_tensor(w, rows=w.shape[0])
    assert np.unique(w).size == 16
    assert (info["values"], info["layout"], info["bits"]) == ("codebook", "dense", 4)
    assert info["value_bytes"] == math.ceil(w.size * 4 / 8) and info["codebook_bytes"] == 16 * 4
    assert info["packed_bytes"] == len(data) == math.ceil(w.size * 4 / 8) + 16 * 4
    np.testing.assert_array_equal(decode(data, info, w.shape[0]), w.reshape(-1))
    # per channel, each row has its own 16 levels on a uniform grid: 4-bit codes, (lowest level, step) per row
    qc = create_method("compress", "kbit", bits=4, grid="nozero", scale="max").apply(base, ctx).model
    wc = next(m.weight for m in qc.modules() if isinstance(m, nn.Linear)).detach().numpy()
    data, ic = encode_tensor(wc, rows=wc.shape[0])
    assert (ic["values"], ic["layout"], ic["bits"]) == ("grid/row", "dense", 4)
    assert ic["codebook_bytes"] == wc.shape[0] * 2 * 4 and ic["value_bytes"] == math.ceil(wc.size / 2)
    book = np.frombuffer(data[-ic["codebook_bytes"]:], dtype=np.float32).reshape(-1, 2)
    k = unpack(data[:ic["value_bytes"]], 4, wc.size).reshape(wc.shape)
    np.testing.assert_allclose(book[:, :1] + k * book[:, 1:], wc, rtol=0, atol=1e-6 * np.abs(wc).max())
    st = model_stats(q, ds.shape)
    assert st["stored_packed_bytes"] == sum(i["packed_bytes"] for i in st["stored_layers"].values()) + \
        st["stored_rest_bytes"]
    assert {i["bits"] for i in st["stored_layers"].values()} == {4}
    # without a uniform grid (INQ's powers of two), rows get their own codebooks
    rows = np.array([[0.5, 0.25, -1.0, 2.0] * 30, [0.125, 4.0, -0.5, 8.0] * 30], dtype=np.float32)
    data, info = encode_tensor(rows, rows=2)
    assert (info["values"], info["bits"], info["codebook_bytes"]) == ("codebook/row", 2, 2 * (1 + 4 * 4))
    # DEFLATE finds the 16 levels in the fp32 bytes too (5×), but packing does better
    assert st["stored_bytes"] < 0.7 * st["weight_deflate_bytes"]


def test_sparse_5bit_layer_is_far_below_deflate_of_fp32() -> None:
    """Issue 16's example: a 90 %-sparse layer on INQ's 5-bit powers of two. Relative indices + 5-bit codes
    are about half of what DEFLATE makes of the fp32 bytes, and decode back exactly."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(256, 1024, generator=g) * 0.05
    w[torch.rand(w.shape, generator=g) < 0.9] = 0
    w = quantize_pow2(w, -3, -17)  # 15 magnitudes × 2 signs + 0: 31 levels, 5 bits
    a = w.numpy()
    assert np.unique(a).size <= 31 and 0.89 < float((a == 0).mean()) < 0.91
    data, info = encode_tensor(a, rows=256)
    assert (info["values"], info["layout"], info["bits"]) == ("codebook", "sparse", 5)
    assert 3 <= info["index_bits"] <= 6
    np.testing.assert_array_equal(decode(data, info, 256), a.reshape(-1))
    fp32 = deflate_size(a.tobytes())
    true = true_size({"layer": (a, 256)}, [])["stored_bytes"]
    assert true < 0.6 * fp32, (true, fp32)
    assert true < a.size * 5 / 8 * 0.3  # and well under the dense 5-bit packing


def test_pruned_fp32_layer_uses_relative_indices_and_dense_layer_stays_fp32() -> None:
    rng = np.random.default_rng(1)
    dense = rng.standard_normal((64, 300)).astype(np.float32)
    data, info = encode_tensor(dense, rows=64)
    assert (info["values"], info["layout"]) == ("fp32", "dense") and len(data) == dense.nbytes
    sparse = np.where(rng.random(dense.shape) < 0.8, 0, dense).astype(np.float32)
    data, info = encode_tensor(sparse, rows=64)
    assert (info["values"], info["layout"]) == ("fp32", "sparse") and len(data) < 0.3 * dense.nbytes
    np.testing.assert_array_equal(decode(data, info, 64), sparse.reshape(-1))
    # a gap longer than 2^index_bits gets fillers, and still decodes
    one = np.zeros(5000, dtype=np.float32)
    one[[3, 4999]] = 1.5
    data, info = encode_tensor(one)
    np.testing.assert_array_equal(decode(data, info, 1), one)


def test_hashed_layer_stores_its_buckets_not_its_virtual_weights() -> None:
    from edgebench.compress.hashed import HashedLinear

    model = nn.Sequential(HashedLinear(400, 300, buckets=1000, seed=3), nn.ReLU(), nn.Linear(300, 10))
    st = stored_size(model)
    assert st["stored_layers"]["0"]["n"] == 1000 and st["stored_layers"]["2"]["n"] == 3000
    assert st["stored_rest_bytes"] == (300 + 10) * 4  # the two biases
    assert st["stored_packed_bytes"] == (1000 + 3000 + 310) * 4
