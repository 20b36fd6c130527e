"""The decoded-array cache of the CIFAR loaders: real archives the tests build, real cache files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgebench.data import cifar, load_dataset
from edgebench.data.base import data_home
from edgebench.data.decoded import entry_path
from tests.integration.test_cifar import make_cifar10, md5


def _load(archive: Path):
    return load_dataset("cifar10", root=str(archive.parent), download=False, md5=md5(archive))


def test_second_load_reads_the_cache(tmp_path: Path) -> None:
    archive, written = make_cifar10(tmp_path / "c", per_batch=20, n_test=30)
    first = _load(archive)
    entry = entry_path("cifar10", md5(archive), "labels", cifar.DECODE_VERSION)
    assert entry.is_file() and entry.parent == data_home() / "decoded"
    with np.load(entry) as npz:
        cached = {k: npz[k] for k in npz.files}
    assert cached["x_train"].dtype == np.uint8 and cached["x_train"].shape == (100, 3, 32, 32)
    np.testing.assert_array_equal(cached["x_test"].reshape(30, 3072), written["test_batch"]["data"])
    # mark the entry: a load that decoded the archive again could not show the mark
    cached["x_test"][0, 0, 0, 0] = 255 - written["test_batch"]["data"][0, 0]
    np.savez(entry, **cached)
    second = _load(archive)
    assert second.x_test[0, 0, 0, 0] == np.float32(cached["x_test"][0, 0, 0, 0] / np.float32(255.0))
    np.testing.assert_array_equal(second.x_train, first.x_train)
    np.testing.assert_array_equal(second.y_test, first.y_test)
    assert second.classes == first.classes == tuple(f"class{i}" for i in range(10))


def test_a_changed_archive_is_never_served_stale(tmp_path: Path) -> None:
    archive, _ = make_cifar10(tmp_path / "c", per_batch=20, n_test=30, seed=0)
    old = _load(archive)
    archive, written = make_cifar10(tmp_path / "c", per_batch=20, n_test=30, seed=1)  # same path, new content
    new = _load(archive)
    assert not np.array_equal(new.x_test, old.x_test)
    np.testing.assert_array_equal((new.x_test * 255).round().astype(np.uint8).reshape(30, 3072),
                                  written["test_batch"]["data"])
    assert len(list(entry_path("cifar10", "0" * 32, "labels", 1).parent.glob("cifar10-*.npz"))) == 2


def test_a_new_decoder_version_decodes_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive, _ = make_cifar10(tmp_path / "c", per_batch=20, n_test=30)
    _load(archive)
    monkeypatch.setattr(cifar, "DECODE_VERSION", cifar.DECODE_VERSION + 1)
    _load(archive)
    assert entry_path("cifar10", md5(archive), "labels", cifar.DECODE_VERSION).is_file()


def test_an_unreadable_entry_is_decoded_again_and_replaced(tmp_path: Path) -> None:
    archive, written = make_cifar10(tmp_path / "c", per_batch=20, n_test=30)
    _load(archive)
    entry = entry_path("cifar10", md5(archive), "labels", cifar.DECODE_VERSION)
    entry.write_bytes(b"PK\x03\x04 truncated")
    ds = _load(archive)
    np.testing.assert_array_equal((ds.x_test * 255).round().astype(np.uint8).reshape(30, 3072),
                                  written["test_batch"]["data"])
    with np.load(entry) as npz:
        assert npz["x_test"].shape == (30, 3, 32, 32)
    assert not list(entry.parent.glob("*.part"))
