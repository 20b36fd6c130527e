"""Unit tests of edgebench.data: no network, no shared data (IDX files are written by the tests)."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from edgebench.data import DATASETS, Dataset, data_home, load_dataset
from edgebench.data.base import validate_arrays
from edgebench.data.idx import download, read_idx
from edgebench.errors import ConfigError, DataError, UnknownNameError


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


# --- registry and load_dataset -------------------------------------------------------------------


def test_registered_names() -> None:
    assert DATASETS.names() == ["cifar10", "cifar100", "digits", "fashion-mnist", "imagefolder", "mnist", "npz",
                                "synthetic"]


def test_unknown_name_suggests_close_match() -> None:
    with pytest.raises(UnknownNameError) as err:
        load_dataset("digit", where="plan.toml: dataset.name")
    msg = str(err.value)
    assert msg.startswith("plan.toml: dataset.name: ")
    assert "Did you mean 'digits'" in msg
    assert "fashion-mnist" in msg  # lists every known name


def test_unknown_parameter_is_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        load_dataset("digits", where="plan.toml: dataset", tst_fraction=0.3)
    msg = str(err.value)
    assert "plan.toml: dataset" in msg
    assert "'digits'" in msg
    assert "'tst_fraction'" in msg
    assert "did you mean 'test_fraction'" in msg
    assert "seed, test_fraction" in msg  # the allowed keys


def test_missing_required_parameter_is_config_error() -> None:
    with pytest.raises(ConfigError, match=r"'npz' needs parameter.*'test'"):
        load_dataset("npz")


def test_loader_config_error_gets_where_prefix() -> None:
    with pytest.raises(ConfigError, match=r"^plan.toml: dataset: dataset 'digits': test_fraction must be in"):
        load_dataset("digits", where="plan.toml: dataset", test_fraction=1.5)


def test_data_home_follows_edgebench_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "c"))
    assert data_home() == tmp_path / "c" / "data"
    monkeypatch.delenv("EDGEBENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_home() == tmp_path / "xdg" / "edgebench" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_home() == tmp_path / "home" / ".cache" / "edgebench" / "data"


# --- digits ------------------------------------------------------------------------------------------


def test_digits_shapes_ranges_dtypes(digits: Dataset) -> None:
    assert digits.name == "digits"
    assert digits.x_train.shape == (1437, 1, 8, 8)
    assert digits.x_test.shape == (360, 1, 8, 8)
    assert digits.y_train.shape == (1437,) and digits.y_test.shape == (360,)
    assert digits.x_train.dtype == np.float32 and digits.x_test.dtype == np.float32
    assert digits.y_train.dtype == np.int64 and digits.y_test.dtype == np.int64
    assert digits.shape == (1, 8, 8)
    assert digits.num_classes == 10
    assert digits.classes == tuple("0123456789")
    both = np.concatenate([digits.x_train, digits.x_test])
    assert both.min() == 0.0 and both.max() == 1.0  # 0..16 divided by 16
    assert set(np.unique(both * 16).tolist()) <= set(range(17))
    # stratified: every class in both splits, test counts within one of 20% of the class
    train_counts = np.bincount(digits.y_train, minlength=10)
    test_counts = np.bincount(digits.y_test, minlength=10)
    assert (np.abs(test_counts - 0.2 * (train_counts + test_counts)) <= 1).all()
    assert repr(digits) == "Dataset(name='digits', train=1437, test=360, shape=(1, 8, 8), num_classes=10)"


def test_digits_split_is_deterministic(digits: Dataset) -> None:
    again = load_dataset("digits", seed=0)
    np.testing.assert_array_equal(again.x_train, digits.x_train)
    np.testing.assert_array_equal(again.y_test, digits.y_test)
    assert again.fingerprint() == digits.fingerprint()
    other = load_dataset("digits", seed=1)
    assert other.x_train.shape == digits.x_train.shape
    assert not np.array_equal(other.y_train, digits.y_train)
    assert other.fingerprint() != digits.fingerprint()


def test_digits_test_fraction() -> None:
    half = load_dataset("digits", test_fraction=0.5)
    assert len(half.y_test) == 899 and len(half.y_train) == 898
    for bad in (0, 1, 1.5, -0.1, "0.2"):
        with pytest.raises(ConfigError, match="test_fraction"):
            load_dataset("digits", test_fraction=bad)
    with pytest.raises(ConfigError, match="stratified"):
        load_dataset("digits", test_fraction=0.001)


# --- Dataset.subset / fingerprint --------------------------------------------------------------------


def test_subset_deterministic_stratified_ordered(digits: Dataset) -> None:
    a = digits.subset(n_train=100, n_test=50, seed=3)
    b = digits.subset(n_train=100, n_test=50, seed=3)
    c = digits.subset(n_train=100, n_test=50, seed=4)
    assert len(a.y_train) == 100 and len(a.y_test) == 50
    assert a.x_train.shape == (100, 1, 8, 8)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_train, c.y_train) or not np.array_equal(a.x_train, c.x_train)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    # 50 test samples over 10 nearly balanced classes: 5 per class
    assert np.bincount(a.y_test, minlength=10).tolist() == [5] * 10
    # the chosen rows keep their original order: they form an increasing subsequence of the source
    rows = [int(np.flatnonzero((digits.x_test == x).all(axis=(1, 2, 3)))[0]) for x in a.x_test]
    assert rows == sorted(rows)
    assert a.classes == digits.classes and a.name == digits.name


def test_subset_none_and_full(digits: Dataset) -> None:
    assert digits.subset() is digits
    only_test = digits.subset(n_test=10)
    assert only_test.x_train is digits.x_train and len(only_test.y_test) == 10
    full = digits.subset(n_train=len(digits.y_train))
    assert full.fingerprint() == digits.fingerprint()
    empty = digits.subset(n_train=0)
    assert empty.x_train.shape == (0, 1, 8, 8)


def test_subset_errors(digits: Dataset) -> None:
    with pytest.raises(ConfigError, match=r"n_test=361 .*360 test samples available"):
        digits.subset(n_test=361)
    with pytest.raises(ConfigError, match=r"n_train=5000 .*1437 train samples available"):
        digits.subset(n_train=5000)
    with pytest.raises(ConfigError, match="n_train must be >= 0"):
        digits.subset(n_train=-1)
    with pytest.raises(ConfigError, match="integer"):
        digits.subset(n_test=2.5)  # type: ignore[arg-type]


def test_fingerprint_stable_and_sensitive() -> None:
    ds = load_dataset("synthetic", n_train=32, n_test=16)
    fp = ds.fingerprint()
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert ds.fingerprint() == fp  # cached
    assert load_dataset("synthetic", n_train=32, n_test=16).fingerprint() == fp
    x_test = ds.x_test.copy()
    x_test[0, 0, 0, 0] = 0.5 if x_test[0, 0, 0, 0] != 0.5 else 0.25
    changed = Dataset(ds.name, ds.x_train, ds.y_train, x_test, ds.y_test, ds.classes)
    assert changed.fingerprint() != fp
    y_train = ds.y_train.copy()
    y_train[0] = (y_train[0] + 1) % 10
    assert Dataset(ds.name, ds.x_train, y_train, ds.x_test, ds.y_test, ds.classes).fingerprint() != fp
    renamed = Dataset("other", ds.x_train, ds.y_train, ds.x_test, ds.y_test, ds.classes)
    assert renamed.fingerprint() != fp


def test_dataset_rejects_bad_layout() -> None:
    x = np.zeros((4, 1, 2, 2), np.float32)
    y = np.zeros(4, np.int64)
    with pytest.raises(DataError, match="x_train must be a float32"):
        Dataset("bad", x.astype(np.float64), y, x, y, ("a",))
    with pytest.raises(DataError, match="y_test must be an int64"):
        Dataset("bad", x, y, x, y.astype(np.int32), ("a",))
    with pytest.raises(DataError, match="4 samples but y_train has 3"):
        Dataset("bad", x, y[:3], x, y, ("a",))


# --- synthetic ---------------------------------------------------------------------------------------


def test_synthetic_deterministic_and_learnable() -> None:
    a = load_dataset("synthetic", n_train=200, n_test=100, shape=[3, 6, 5], num_classes=4, seed=7)
    b = load_dataset("synthetic", n_train=200, n_test=100, shape=(3, 6, 5), num_classes=4, seed=7)
    c = load_dataset("synthetic", n_train=200, n_test=100, shape=(3, 6, 5), num_classes=4, seed=8)
    assert a.x_train.shape == (200, 3, 6, 5) and a.x_test.shape == (100, 3, 6, 5)
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int64
    assert a.classes == ("0", "1", "2", "3")
    assert a.x_train.min() >= 0.0 and a.x_train.max() <= 1.0
    assert np.bincount(a.y_train).tolist() == [50, 50, 50, 50]
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_test, c.x_test)
    # the test split does not depend on n_train
    d = load_dataset("synthetic", n_train=10, n_test=100, shape=(3, 6, 5), num_classes=4, seed=7)
    np.testing.assert_array_equal(a.x_test, d.x_test)
    # learnable: nearest class mean of the train split classifies the test split almost perfectly
    means = np.stack([a.x_train[a.y_train == k].mean(axis=0) for k in range(4)])
    dist = ((a.x_test[:, None] - means[None]) ** 2).sum(axis=(2, 3, 4))
    assert (dist.argmin(axis=1) == a.y_test).mean() >= 0.95


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"n_train": -1}, "n_train"),
        ({"n_test": 0}, "n_test"),
        ({"num_classes": 1}, "num_classes"),
        ({"shape": (8, 8)}, "shape"),
        ({"shape": (1, 0, 8)}, "shape"),
        ({"noise": -0.1}, "noise"),
        ({"seed": True}, "seed"),
    ],
)
def test_synthetic_bad_params(params: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_dataset("synthetic", **params)


# --- validate_arrays ---------------------------------------------------------------------------------


def test_validate_arrays_layouts() -> None:
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, size=(6, 10, 12), dtype=np.uint8)
    x, y = validate_arrays(u8, [0, 1, 2, 0, 1, 2], num_classes=3, source="a.npz")
    assert x.shape == (6, 1, 10, 12) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x[:, 0], u8 / 255.0, rtol=1e-6)
    nhwc = rng.random((2, 9, 7, 3))
    x, _ = validate_arrays(nhwc, np.array([1.0, 0.0]), num_classes=None, source="b.npz")
    assert x.shape == (2, 3, 9, 7) and x.flags.c_contiguous
    np.testing.assert_allclose(x[1, 2], nhwc[1, :, :, 2].astype(np.float32))
    nchw = rng.random((2, 3, 9, 7)).astype(np.float32)
    x, _ = validate_arrays(nchw, [0, 0], num_classes=1, source="c.npz")
    np.testing.assert_array_equal(x, nchw)
    full = np.full((1, 5, 5), 255, np.uint8)
    x, _ = validate_arrays(full, [0], num_classes=1, source="d.npz")
    assert x.max() == 1.0


@pytest.mark.parametrize(
    ("x", "y", "pattern"),
    [
        (np.full((3, 5, 5), np.nan), [0, 1, 1], r"holds 75 NaN or infinite"),
        (np.full((3, 5, 5), 2.0), [0, 1, 1], r"\[2, 2\]; inputs must be scaled to \[0, 1\]"),
        (np.zeros((3, 5, 5), np.int32), [0, 1, 1], "dtype int32"),
        (np.zeros((3, 5)), [0, 1, 1], r"x has shape \(3, 5\)"),
        (np.zeros((3, 5, 5)), [0, 1.5, 1], r"non-integer values \[1.5\]"),
        (np.zeros((3, 5, 5)), [[0], [1], [1]], "1-D"),
        (np.zeros((3, 5, 5)), ["a", "b", "c"], "integer class indices"),
        (np.zeros((3, 5, 5)), [0, 1], "x has 3 samples but y has 2"),
        (np.zeros((3, 5, 5)), [0, 5, -1], r"2 label\(s\) outside \[0, 3\): -1, 5"),
    ],
)
def test_validate_arrays_errors(x: np.ndarray, y: object, pattern: str) -> None:
    with pytest.raises(DataError, match=pattern) as err:
        validate_arrays(x, y, num_classes=3, source="/some/file.npz")
    assert str(err.value).startswith("/some/file.npz: ")


# --- npz ---------------------------------------------------------------------------------------------


def _save(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return str(path)


def test_npz_round_trip_uint8_and_nhwc(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    train_x = rng.integers(0, 256, size=(20, 8, 8, 3), dtype=np.uint8)  # NHWC uint8
    train_y = rng.integers(0, 4, size=20)
    test_x = rng.random((10, 8, 8, 3)).astype(np.float32)  # NHWC float
    test_y = np.arange(10, dtype=np.int32) % 4
    train = _save(tmp_path / "train.npz", x=train_x, y=train_y)
    test = _save(tmp_path / "test.npz", x=test_x, y=test_y)
    ds = load_dataset("npz", train=train, test=test, classes=["cat", "dog", "cow", "hen"])
    assert ds.name == "npz:test"
    assert ds.shape == (3, 8, 8)
    assert ds.classes == ("cat", "dog", "cow", "hen")
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    np.testing.assert_allclose(ds.x_train, train_x.transpose(0, 3, 1, 2) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_train, train_y)
    np.testing.assert_array_equal(ds.x_test, test_x.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(ds.y_test, test_y)


def test_npz_without_train_and_inferred_classes(tmp_path: Path) -> None:
    test = _save(tmp_path / "mine.npz", x=np.zeros((4, 6, 6), np.uint8), y=np.array([0, 2, 2, 0]))
    ds = load_dataset("npz", test=test)
    assert ds.x_train.shape == (0, 1, 6, 6) and ds.x_train.dtype == np.float32
    assert ds.y_train.shape == (0,) and ds.y_train.dtype == np.int64
    assert ds.classes == ("0", "1", "2")
    assert ds.subset(n_test=2).y_test.tolist() == [0, 2]


@pytest.mark.parametrize(
    ("x", "y", "pattern"),
    [
        (np.array([[[np.nan, 0.5], [0.5, np.inf]]] * 2), [0, 1], "NaN or infinite"),
        (np.full((2, 2, 2), -0.5), [0, 1], r"values in \[-0.5, -0.5\]; inputs must be scaled to \[0, 1\]"),
        (np.zeros((2, 2, 2)), [0, 7], r"outside \[0, 2\): 7"),
        (np.zeros((3, 2, 2)), [0, 1], "x has 3 samples but y has 2"),
    ],
)
def test_npz_bad_arrays_name_the_file(tmp_path: Path, x: np.ndarray, y: list[int], pattern: str) -> None:
    test = _save(tmp_path / "bad.npz", x=x, y=np.asarray(y))
    with pytest.raises(DataError, match=pattern) as err:
        load_dataset("npz", test=test, classes=["a", "b"])
    assert str(tmp_path / "bad.npz") in str(err.value)


def test_npz_pickled_object_array_refused(tmp_path: Path) -> None:
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = {"a": 1}, [2]
    test = _save(tmp_path / "pickled.npz", x=obj, y=np.array([0, 1]))
    with pytest.raises(DataError, match="pickled") as err:
        load_dataset("npz", test=test)
    assert str(tmp_path / "pickled.npz") in str(err.value)


def test_npz_missing_file(tmp_path: Path) -> None:
    test = _save(tmp_path / "t.npz", x=np.zeros((2, 5, 5)), y=np.array([0, 1]))
    with pytest.raises(DataError, match="file not found") as err:
        load_dataset("npz", test=str(tmp_path / "nope.npz"))
    assert str(tmp_path / "nope.npz") in str(err.value)
    with pytest.raises(DataError, match="'train'") as err:
        load_dataset("npz", test=test, train=str(tmp_path / "missing-train.npz"))
    assert str(tmp_path / "missing-train.npz") in str(err.value)


def test_npz_missing_key(tmp_path: Path) -> None:
    test = _save(tmp_path / "nolabels.npz", x=np.zeros((2, 5, 5)), labels=np.array([0, 1]))
    with pytest.raises(DataError, match=r"missing array 'y' \(arrays found: 'x', 'labels'\)") as err:
        load_dataset("npz", test=test)
    assert str(tmp_path / "nolabels.npz") in str(err.value)


def test_npz_not_an_archive(tmp_path: Path) -> None:
    plain = tmp_path / "plain.npy"
    np.save(plain, np.zeros(3))
    with pytest.raises(DataError, match=r"not an \.npz archive") as err:
        load_dataset("npz", test=str(plain))
    assert str(plain) in str(err.value)


def test_npz_train_test_shape_mismatch(tmp_path: Path) -> None:
    test = _save(tmp_path / "te.npz", x=np.zeros((2, 5, 5)), y=np.array([0, 1]))
    train = _save(tmp_path / "tr.npz", x=np.zeros((2, 6, 6)), y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"shape \(1, 6, 6\) but those of .* have shape \(1, 5, 5\)"):
        load_dataset("npz", test=test, train=train)


def test_npz_bad_classes(tmp_path: Path) -> None:
    test = _save(tmp_path / "t.npz", x=np.zeros((2, 5, 5)), y=np.array([0, 1]))
    with pytest.raises(ConfigError, match="distinct"):
        load_dataset("npz", test=test, classes=["a", "a"])
    with pytest.raises(ConfigError, match="non-empty list"):
        load_dataset("npz", test=test, classes="ab")


# --- IDX reader and download -------------------------------------------------------------------------


def _idx_bytes(arr: np.ndarray, code: int) -> bytes:
    head = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def test_read_idx_raw_and_gzip(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = tmp_path / "images-idx3-ubyte"
    raw.write_bytes(_idx_bytes(images, 0x08))
    got = read_idx(raw)
    assert got.dtype == np.uint8 and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, images)
    gz = tmp_path / "images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(_idx_bytes(images, 0x08)))
    np.testing.assert_array_equal(read_idx(gz), images)


@pytest.mark.parametrize(
    ("dtype", "code"),
    [(np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D), (np.float64, 0x0E)],
)
def test_read_idx_other_types(tmp_path: Path, dtype: type, code: int) -> None:
    arr = (np.arange(12).reshape(3, 4) - 5).astype(dtype) * dtype(3)
    path = tmp_path / "a.idx"
    path.write_bytes(_idx_bytes(arr, code))
    got = read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, arr)


def test_read_idx_truncated_and_corrupt(tmp_path: Path) -> None:
    labels = np.arange(10, dtype=np.uint8)
    data = _idx_bytes(labels, 0x08)
    short = tmp_path / "short-idx1-ubyte"
    short.write_bytes(data[:-3])
    with pytest.raises(
        DataError, match=r"truncated IDX file.*\(10,\) \(10 data bytes\) but the file holds 7"
    ) as e:
        read_idx(short)
    assert str(short) in str(e.value)
    long = tmp_path / "long-idx1-ubyte"
    long.write_bytes(data + b"\0")
    with pytest.raises(DataError, match="corrupt IDX file"):
        read_idx(long)
    cut_gz = tmp_path / "cut.gz"
    cut_gz.write_bytes(gzip.compress(data * 100)[:30])
    with pytest.raises(DataError, match="corrupt or truncated gzip") as e:
        read_idx(cut_gz)
    assert str(cut_gz) in str(e.value)
    bad_gz = tmp_path / "bad.gz"
    bad_gz.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(DataError, match="gzip"):
        read_idx(bad_gz)
    not_idx = tmp_path / "x.txt"
    not_idx.write_bytes(b"hello world")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(not_idx)
    bad_code = tmp_path / "code.idx"
    bad_code.write_bytes(b"\0\0\x0a\x01" + struct.pack(">I", 1) + b"\0")
    with pytest.raises(DataError, match="unknown IDX type code 0x0A"):
        read_idx(bad_code)
    with pytest.raises(DataError, match="file not found"):
        read_idx(tmp_path / "absent")


def test_download_file_url_ok_and_md5_mismatch(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload" * 1000)
    good = hashlib.md5(src.read_bytes()).hexdigest()
    dest = tmp_path / "out" / "f.bin"
    assert download(src.as_uri(), dest, md5=good) == dest
    assert dest.read_bytes() == src.read_bytes()
    dest2 = tmp_path / "out" / "g.bin"
    with pytest.raises(DataError) as err:
        download(src.as_uri(), dest2, md5="0" * 32)
    msg = str(err.value)
    assert src.as_uri() in msg and "0" * 32 in msg and good in msg and "md5" in msg
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f.bin"]  # no temp file left


def test_download_network_error(tmp_path: Path) -> None:
    dest = tmp_path / "dl" / "f.gz"
    url = (tmp_path / "does-not-exist.gz").as_uri()
    with pytest.raises(DataError) as err:
        download(url, dest, md5="0" * 32)
    msg = str(err.value)
    assert url in msg and str(dest.parent) in msg and "by hand" in msg and "root" in msg
    assert list(dest.parent.iterdir()) == []


def test_idx_loader_download_false_names_folder(tmp_path: Path) -> None:
    folder = tmp_path / "nothing-here"
    with pytest.raises(DataError) as err:
        load_dataset("mnist", root=str(folder), download=False)
    msg = str(err.value)
    assert str(folder) in msg and "train-images-idx3-ubyte.gz" in msg and "download" in msg
    assert not folder.exists()


def test_idx_loader_rejects_bad_params() -> None:
    with pytest.raises(ConfigError, match="download must be true or false"):
        load_dataset("mnist", download="no")
    with pytest.raises(ConfigError, match="'fashion-mnist' has no parameter 'path'"):
        load_dataset("fashion-mnist", path="/tmp")
