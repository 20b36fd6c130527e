"""CIFAR-10 / CIFAR-100 from archives the test builds in the official layout (tar.gz of pickled batches) and
serves on 127.0.0.1: download, MD5 checks, the restricted unpickler, labels and stratified subsets. Nothing is
downloaded from the internet."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from edgebench.data import load_dataset
from edgebench.errors import ConfigError, DataError
from tests.integration.test_mnist_download import serve  # noqa: F401  (the local mirror fixture)

C10 = "cifar-10-python.tar.gz"
C100 = "cifar-100-python.tar.gz"


def _batch(rng: np.random.Generator, n: int, labels: dict[str, np.ndarray]) -> dict[str, object]:
    return {"batch_label": "testing batch", "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "filenames": [f"img_{i}.png" for i in range(n)], **{k: v.tolist() for k, v in labels.items()}}


class Py2Pickler(pickle._Pickler):  # the pure-Python pickler, whose dispatch table can be extended
    """Pickles as Python 2 wrote the official batches: str and bytes as Python 2 ``str`` opcodes
    (SHORT_BINSTRING / BINSTRING), numpy's ``_reconstruct`` under ``numpy.core.multiarray``."""

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    def save_str(self, obj: str) -> None:
        self.save_bytes(obj.encode("latin1"))

    dispatch = {**pickle._Pickler.dispatch, bytes: save_bytes, str: save_str}


def py2_pickle(obj: object) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def _add(tar: tarfile.TarFile, name: str, obj: object, *, py2: bool = False) -> None:
    raw = py2_pickle(obj) if py2 else pickle.dumps(obj, protocol=2)  # Python 3's protocol 2: a re-packed archive
    info = tarfile.TarInfo(name)
    info.size = len(raw)
    tar.addfile(info, io.BytesIO(raw))


def make_cifar10(folder: Path, *, per_batch: int = 60, n_test: int = 100, seed: int = 0) -> tuple[Path, dict]:
    """A CIFAR-10 archive: five train batches of ``per_batch`` images, one test batch, the meta file and a
    readme, pickled as Python 2 did, as ``folder/cifar-10-python.tar.gz``; returns it and the batches written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    path = folder / C10
    with tarfile.open(path, "w:gz") as tar:
        for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
            written[name] = _batch(rng, n, {"labels": rng.integers(0, 10, n)})
            _add(tar, f"cifar-10-batches-py/{name}", written[name], py2=True)
        written["batches.meta"] = {"num_cases_per_batch": per_batch, "num_vis": 3072,
                                   "label_names": [f"class{i}" for i in range(10)]}
        _add(tar, "cifar-10-batches-py/batches.meta", written["batches.meta"], py2=True)
        readme = b"<html>test archive</html>"
        info = tarfile.TarInfo("cifar-10-batches-py/readme.html")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))
    return path, written


def make_cifar100(folder: Path, *, n_train: int = 400, n_test: int = 200, seed: int = 0) -> tuple[Path, dict]:
    """A CIFAR-100 archive, its batches pickled by Python 3 (protocol 2), as a re-packed archive would be."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    path = folder / C100
    with tarfile.open(path, "w:gz") as tar:
        for name, n in (("train", n_train), ("test", n_test)):
            fine = rng.integers(0, 100, n)
            written[name] = _batch(rng, n, {"fine_labels": fine, "coarse_labels": fine // 5})
            _add(tar, f"cifar-100-python/{name}", written[name])
        written["meta"] = {"fine_label_names": [f"fine{i}" for i in range(100)],
                           "coarse_label_names": [f"coarse{i}" for i in range(20)]}
        _add(tar, "cifar-100-python/meta", written["meta"])
    return path, written


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_cifar10_download_from_local_mirror(serve, tmp_path: Path) -> None:  # noqa: F811
    archive, written = make_cifar10(tmp_path / "served")
    mirror = serve(archive.parent)
    root = tmp_path / "root"
    ds = load_dataset("cifar10", root=str(root), mirror=mirror.url, md5=md5(archive))

    assert mirror.requests == [f"/{C10}"]
    assert sorted(p.name for p in root.iterdir()) == [C10]  # no temp file left
    assert md5(root / C10) == md5(archive)
    assert ds.name == "cifar10" and ds.classes == tuple(f"class{i}" for i in range(10))
    assert ds.x_train.shape == (300, 3, 32, 32) and ds.x_test.shape == (100, 3, 32, 32)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    labels = np.concatenate([written[f"data_batch_{i}"]["labels"] for i in range(1, 6)])
    assert ds.y_train.tolist() == labels.tolist()
    assert ds.y_test.tolist() == written["test_batch"]["labels"]
    # the row layout is 1024 red, 1024 green, then 1024 blue values, each a row-major 32x32 plane
    first = written["data_batch_1"]["data"][0]
    assert ds.x_train[0, 1, 2, 3] == np.float32(first[1024 + 2 * 32 + 3]) / np.float32(255)
    assert ds.x_test[-1, 2, 31, 31] == np.float32(written["test_batch"]["data"][-1][3071]) / np.float32(255)

    again = load_dataset("cifar10", root=str(root), mirror=mirror.url, md5=md5(archive))
    assert len(mirror.requests) == 1  # found in root, not downloaded again
    assert again.fingerprint() == ds.fingerprint()


def test_wrong_md5_is_one_line_and_leaves_nothing(serve, tmp_path: Path) -> None:  # noqa: F811
    archive, _ = make_cifar10(tmp_path / "served")
    mirror = serve(archive.parent)
    root = tmp_path / "root"
    with pytest.raises(DataError) as err:  # the official MD5 cannot match the test's archive
        load_dataset("cifar10", root=str(root), mirror=mirror.url)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"md5 mismatch for {mirror.url}{C10}: expected c58f30108f718f92721af3b95e74349a, got {md5(archive)}" in msg
    assert list(root.iterdir()) == []  # no partial or temporary file

    # a file already in root is checked too
    (root / C10).write_bytes(archive.read_bytes()[:-10])
    with pytest.raises(DataError, match=f"{root / C10}: md5 [0-9a-f]{{32}} does not match the expected"):
        load_dataset("cifar10", root=str(root), md5=md5(archive))


def test_read_from_folder_without_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive, _ = make_cifar10(tmp_path / "data" / "cifar10", per_batch=20, n_test=30)
    monkeypatch.setenv("EDGEBENCH_DATA", str(tmp_path / "data"))  # the same setting MNIST uses
    ds = load_dataset("cifar10", download=False, md5=md5(archive))
    assert len(ds.y_train) == 100 and len(ds.y_test) == 30
    with pytest.raises(DataError, match=r"cifar10: cifar-10-python.tar.gz is not in .*set download = true"):
        load_dataset("cifar10", root=str(tmp_path / "empty"), download=False)
    with pytest.raises(ConfigError, match="md5 must be the 32 hex digits"):
        load_dataset("cifar10", root=str(tmp_path), md5="abc")
    with pytest.raises(ConfigError, match="md5 must be the 32 hex digits"):
        load_dataset("cifar10", root=str(tmp_path), md5="0x" + "a_" * 15)


def test_cifar100_fine_and_coarse(serve, tmp_path: Path) -> None:  # noqa: F811
    archive, written = make_cifar100(tmp_path / "served")
    mirror = serve(archive.parent)
    root = tmp_path / "root"
    fine = load_dataset("cifar100", root=str(root), mirror=mirror.url, md5=md5(archive))
    assert fine.name == "cifar100" and fine.num_classes == 100 and fine.classes[7] == "fine7"
    assert fine.x_train.shape == (400, 3, 32, 32) and fine.x_test.shape == (200, 3, 32, 32)
    assert fine.y_train.tolist() == written["train"]["fine_labels"]
    coarse = load_dataset("cifar100", root=str(root), md5=md5(archive), label="coarse")
    assert coarse.name == "cifar100-coarse" and coarse.num_classes == 20
    assert coarse.y_test.tolist() == written["test"]["coarse_labels"]
    assert np.array_equal(coarse.x_test, fine.x_test)
    assert coarse.fingerprint() != fine.fingerprint()
    assert len(mirror.requests) == 1
    with pytest.raises(ConfigError, match='label must be "fine" or "coarse"'):
        load_dataset("cifar100", root=str(root), md5=md5(archive), label="super")


def test_subsets_are_stratified_and_deterministic(tmp_path: Path) -> None:
    archive, _ = make_cifar10(tmp_path / "c10", per_batch=200, n_test=300)
    ds = load_dataset("cifar10", root=str(archive.parent), md5=md5(archive))
    a = ds.subset(n_train=100, n_test=50, seed=3)
    b = load_dataset("cifar10", root=str(archive.parent), md5=md5(archive)).subset(n_train=100, n_test=50, seed=3)
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != ds.subset(n_train=100, n_test=50, seed=4).fingerprint()
    # each class's share of the subset is its share of the whole, to within one sample
    for sub, full in ((a.y_train, ds.y_train), (a.y_test, ds.y_test)):
        want = np.bincount(full, minlength=10) * len(sub) / len(full)
        assert np.all(np.abs(np.bincount(sub, minlength=10) - want) < 1)


def test_pickles_naming_other_globals_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil" / C10
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:
        for name in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"):
            _add(tar, f"cifar-10-batches-py/{name}", {"data": Evil()})
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", root=str(path.parent), md5=md5(path))
    msg = str(err.value)
    assert "\n" not in msg and "not a CIFAR python batch" in msg and "refused global" in msg
    assert not marker.exists()


def test_corrupt_archive_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad" / C10
    path.parent.mkdir()
    path.write_bytes(b"\x1f\x8b\x08\x00not really a gzip stream" * 10)
    with pytest.raises(DataError, match=f"{path}: corrupt or truncated archive"):
        load_dataset("cifar10", root=str(path.parent), md5=md5(path))
