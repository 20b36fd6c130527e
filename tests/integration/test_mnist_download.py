"""MNIST / Fashion-MNIST end to end on the real files: downloads from a local HTTP mirror, MD5 checks,
and reading a read-only folder in place. Skips where the shared data is absent."""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from edgebench.data import data_home, load_dataset
from edgebench.errors import DataError

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _md5sums(shared: Path, name: str) -> dict[str, str]:
    """The expected MD5 of each file of ``name``, from the shared MD5SUMS."""
    sums = {}
    for line in (shared / "MD5SUMS").read_text().splitlines():
        digest, path = line.split()
        folder, _, fname = path.partition("/")
        if folder == name:
            sums[fname] = digest
    return sums


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


class Mirror:
    """A local HTTP server over one folder that records the paths it was asked for."""

    def __init__(self, directory: Path) -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                super().do_GET()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(directory))
        )
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve() -> Iterator[object]:
    """``serve(folder) -> Mirror``; every mirror started is shut down after the test."""
    mirrors: list[Mirror] = []

    def start(directory: Path) -> Mirror:
        mirror = Mirror(directory)
        mirrors.append(mirror)
        return mirror

    try:
        yield start
    finally:
        for mirror in mirrors:
            mirror.close()


def test_mnist_download_from_mirror(shared_data: Path, serve, tmp_path: Path) -> None:
    mirror = serve(shared_data / "mnist")
    root = tmp_path / "mnist"
    ds = load_dataset("mnist", root=str(root), mirror=mirror.url)

    assert ds.name == "mnist"
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    assert ds.shape == (1, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert ds.y_test[:5].tolist() == [7, 2, 1, 0, 4]
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert ds.x_test.min() == 0.0 and ds.x_test.max() == 1.0
    assert ds.classes == tuple("0123456789")
    assert np.bincount(ds.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

    assert sorted(mirror.requests) == sorted(f"/{f}" for f in FILES)
    expected = _md5sums(shared_data, "mnist")
    assert sorted(p.name for p in root.iterdir()) == sorted(FILES)  # no temp files left
    for fname in FILES:
        assert _md5(root / fname) == expected[fname]

    again = load_dataset("mnist", root=str(root), mirror=mirror.url)
    assert len(mirror.requests) == 4  # the second load did not hit the server
    assert again.fingerprint() == ds.fingerprint()


def test_mnist_download_into_cache_by_default(shared_data: Path, serve, monkeypatch) -> None:
    monkeypatch.delenv("EDGEBENCH_DATA", raising=False)
    serve_dir = shared_data / "mnist"
    mirror = serve(serve_dir)
    ds = load_dataset("mnist", mirror=mirror.url.rstrip("/"))  # base URL without the trailing slash
    assert len(ds.y_train) == 60000
    assert sorted(p.name for p in (data_home() / "mnist").iterdir()) == sorted(FILES)


def test_unwritable_root_downloads_into_cache(shared_data: Path, serve, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    root = blocker / "mnist"  # can never be created
    mirror = serve(shared_data / "mnist")
    ds = load_dataset("mnist", root=str(root), mirror=mirror.url)
    assert len(ds.y_test) == 10000
    assert sorted(p.name for p in (data_home() / "mnist").iterdir()) == sorted(FILES)
    load_dataset("mnist", root=str(root), mirror=mirror.url)  # found in the cache the second time
    assert len(mirror.requests) == 4


def test_corrupt_mirror_fails_md5_and_leaves_nothing(shared_data: Path, serve, tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    for fname in FILES[:3]:  # links, not copies, to the real files
        (served / fname).symlink_to(shared_data / "mnist" / fname)
    (served / FILES[3]).write_bytes(b"\x1f\x8b" + b"not the labels" * 100)
    mirror = serve(served)
    root = tmp_path / "mnist"

    with pytest.raises(DataError) as err:
        load_dataset("mnist", root=str(root), mirror=mirror.url)
    msg = str(err.value)
    assert "md5" in msg and f"{mirror.url}{FILES[3]}" in msg
    assert _md5sums(shared_data, "mnist")[FILES[3]] in msg
    assert not (root / FILES[3]).exists()
    assert not [p for p in root.iterdir() if p.name.endswith(".part")]
    assert sorted(p.name for p in root.iterdir()) == sorted(FILES[:3])  # the good files were kept


def test_corrupt_local_file_is_reported(shared_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "mnist"
    root.mkdir()
    for fname in FILES:
        (root / fname).symlink_to(shared_data / "mnist" / fname)
    (root / FILES[1]).unlink()
    (root / FILES[1]).write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"md5 .* does not match the expected") as err:
        load_dataset("mnist", root=str(root), download=False)
    assert str(root / FILES[1]) in str(err.value)


def test_unreachable_mirror(tmp_path: Path, serve) -> None:
    mirror = serve(tmp_path)  # an empty folder: every file is a 404
    root = tmp_path / "mnist"
    with pytest.raises(DataError) as err:
        load_dataset("mnist", root=str(root), mirror=mirror.url)
    msg = str(err.value)
    assert f"{mirror.url}{FILES[0]}" in msg and "by hand" in msg and str(root) in msg


def test_download_false_with_missing_files(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(DataError) as err:
        load_dataset("mnist", root=str(root), download=False)
    msg = str(err.value)
    assert str(root) in msg
    for fname in FILES:
        assert fname in msg


def test_mnist_read_only_folder_in_place(shared_data: Path) -> None:
    root = shared_data / "mnist"
    before = sorted(p.name for p in root.iterdir())
    ds = load_dataset("mnist", root=str(root), download=False)
    assert len(ds.y_train) == 60000 and len(ds.y_test) == 10000
    assert ds.y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert sorted(p.name for p in root.iterdir()) == before  # nothing written


def test_edgebench_data_env(shared_data: Path, monkeypatch) -> None:
    monkeypatch.setenv("EDGEBENCH_DATA", str(shared_data))
    ds = load_dataset("mnist", download=False)
    assert ds.x_test.shape == (10000, 1, 28, 28)


def test_fashion_mnist(shared_data: Path) -> None:
    if not (shared_data / "fashion-mnist").is_dir():
        pytest.skip(f"Fashion-MNIST not found under {shared_data}")
    ds = load_dataset("fashion-mnist", root=str(shared_data / "fashion-mnist"), download=False)
    assert ds.name == "fashion-mnist"
    assert len(ds.y_train) == 60000 and len(ds.y_test) == 10000
    assert ds.shape == (1, 28, 28)
    assert ds.classes == (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
    assert ds.y_train[:5].tolist() == [9, 0, 0, 3, 0]
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert ds.x_train.min() >= 0.0 and ds.x_train.max() == 1.0
