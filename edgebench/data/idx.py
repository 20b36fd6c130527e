"""MNIST and Fashion-MNIST: the IDX file reader, checksummed downloads, and the two registered loaders.

Files are looked up in ``root`` when given, else in ``$EDGEBENCH_DATA/<name>`` when that variable is set,
else in :func:`~edgebench.data.base.data_home` ``/<name>``; the download folder is always searched too.
Missing files are downloaded from a mirror (``download=True``) and every file is checked against its
known MD5. Torch-free.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import logging
import math
import os
import struct
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from edgebench.data import DATASETS
from edgebench.data.base import Dataset, data_home
from edgebench.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

__all__ = ["download", "fashion_mnist", "mnist", "read_idx"]

#: IDX type codes (third magic byte) -> big-endian numpy dtype. 0x0A is not defined by the format.
_IDX_DTYPES: dict[int, str] = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_FILES: tuple[str, str, str, str] = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

_MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

_MIRRORS: dict[str, str] = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}

_CLASSES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(i) for i in range(10)),
    "fashion-mnist": (
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
    ),
}

_CHUNK = 1 << 20

#: (resolved path, size, mtime_ns) -> md5 hex, so that repeated loads in one process hash each file once.
_md5_seen: dict[tuple[str, int, int], str] = {}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) into an array of its shape and (native-order) dtype.

    The header is two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, then one big-endian uint32 per dimension.
    A uint8 result may be a read-only view of the file's bytes.

    Raises:
        DataError: naming the file, when it is missing, not IDX, of an unknown type, a corrupt or
            truncated gzip stream, or holds fewer or more data bytes than its header announces.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file: {exc}") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"{path}: corrupt or truncated gzip file ({exc}); delete it and download it again"
            ) from exc
    else:
        data = raw
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise DataError(f"{path}: not an IDX file (the first two bytes must be zero, got {data[:2]!r})")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise DataError(f"{path}: unknown IDX type code 0x{code:02X} (known: 0x08, 0x09, 0x0B..0x0E)")
    if ndim == 0:
        raise DataError(f"{path}: corrupt IDX header (zero dimensions)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{path}: truncated IDX file ({len(data)} bytes, shorter than its {header}-byte header)"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[code])
    count = math.prod(dims)
    expected = count * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        kind = "truncated" if actual < expected else "corrupt"
        raise DataError(
            f"{path}: {kind} IDX file: the header announces shape {tuple(dims)} ({expected} data bytes) "
            f"but the file holds {actual}; delete it and download it again"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(dims)
    if dtype.itemsize > 1:
        arr = arr.astype(dtype.newbyteorder("="))
    return arr


def _hint(dest: Path) -> str:
    return f"download {dest.name} by hand into {dest.parent}, or pass `root` = a folder that holds the files"


def download(url: str, dest: Path, *, md5: str, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` and check its MD5; ``dest`` appears only once complete and verified.

    The body streams to a temporary file in ``dest``'s folder (created if needed), which is renamed onto
    ``dest`` with :func:`os.replace` after the checksum matches.

    Raises:
        DataError: naming the URL, on a network or HTTP error (telling the user to download the file by
            hand into the folder, or to set ``root``), on an MD5 mismatch (with the expected and actual
            digests; nothing is left behind), or when the folder is not writable.
    """
    dest = Path(dest)
    folder = dest.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise DataError(
            f"cannot write to {folder} to download {url}: {exc}; pass `root` = a writable folder, "
            "or one that already holds the files"
        ) from exc
    tmp = Path(tmp_name)
    logger.info("downloading %s -> %s", url, dest)
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                resp = urllib.request.urlopen(url, timeout=timeout)
            except urllib.error.HTTPError as exc:
                exc.close()  # it holds the open response
                raise DataError(f"could not download {url}: {exc}; {_hint(dest)}") from exc
            except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise DataError(f"could not download {url}: {reason}; {_hint(dest)}") from exc
            with resp:
                while True:
                    try:
                        chunk = resp.read(_CHUNK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise DataError(
                            f"download of {url} failed after {size} bytes: {exc!r}; {_hint(dest)}"
                        ) from exc
                    if not chunk:
                        break
                    digest.update(chunk)
                    size += len(chunk)
                    try:
                        out.write(chunk)
                    except OSError as exc:
                        raise DataError(f"cannot write {tmp} while downloading {url}: {exc}") from exc
        actual = digest.hexdigest()
        if actual != md5.lower():
            raise DataError(
                f"md5 mismatch for {url}: expected {md5.lower()}, got {actual} ({size} bytes); the mirror "
                f"served a corrupt or different file. Try another mirror, or {_hint(dest)}"
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _remember_md5(dest, actual)
    logger.info("downloaded %s (%d bytes, md5 %s)", dest, size, actual)
    return dest


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _remember_md5(path: Path, md5: str) -> None:
    with contextlib.suppress(OSError):
        _md5_seen[_stat_key(path)] = md5


def _md5_of(path: Path) -> str:
    """MD5 hex digest of a file, cached per (path, size, mtime) for the life of the process."""
    try:
        key = _stat_key(path)
        cached = _md5_seen.get(key)
        if cached is not None:
            return cached
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file: {exc}") from exc
    _md5_seen[key] = digest.hexdigest()
    return _md5_seen[key]


def _writable(folder: Path) -> bool:
    """Whether ``folder`` exists as a writable folder or could be created (its nearest ancestor is)."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def _folders(name: str, root: str | os.PathLike[str] | None) -> tuple[Path, Path]:
    """(the folder to look in first, the download folder data_home()/<name>)."""
    home = data_home() / name
    if root is not None:
        return Path(root).expanduser(), home
    env = os.environ.get("EDGEBENCH_DATA")
    if env:
        return Path(env).expanduser() / name, home
    return home, home


def _sources(
    name: str, root: str | os.PathLike[str] | None, allow_download: bool, mirror: str | None, default_mirror: str
) -> tuple[Path, Path, list[Path]]:
    """Check the ``root``, ``download`` and ``mirror`` parameters; (the first folder, the download folder
    data_home()/<name>, the folders to search in order)."""
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise ConfigError(f"root must be a folder path, got {root!r}")
    if not isinstance(allow_download, bool):
        raise ConfigError(f"download must be true or false, got {allow_download!r}")
    if mirror is not None and (not isinstance(mirror, str) or not mirror.strip()):
        raise ConfigError(f"mirror must be a base URL such as {default_mirror!r}, got {mirror!r}")
    first, home = _folders(name, root)
    return first, home, [first] if first.resolve() == home.resolve() else [first, home]


def _verify(path: Path, md5: str, name: str) -> None:
    """Check a file found on disk against its expected MD5 (a DataError naming it, when it differs)."""
    actual = _md5_of(path)
    if actual != md5:
        raise DataError(
            f"{path}: md5 {actual} does not match the expected {md5} for {name}; "
            "the file is corrupt or of another version: delete it and load again to download it afresh"
        )


def _load_idx_dataset(
    name: str, root: str | os.PathLike[str] | None, allow_download: bool, mirror: str | None
) -> Dataset:
    """Find (downloading what is missing), verify and parse the four IDX files of ``name``."""
    first, home, search = _sources(name, root, allow_download, mirror, _MIRRORS[name])
    md5s = _MD5[name]
    paths: dict[str, Path] = {}
    for fname in _FILES:
        for folder in search:
            if (folder / fname).is_file():
                paths[fname] = folder / fname
                break
    missing = [f for f in _FILES if f not in paths]
    fresh: set[str] = set()

    if missing:
        base = (mirror or _MIRRORS[name]).strip()
        base = base if base.endswith("/") else base + "/"
        where = " or ".join(str(f) for f in search)
        if not allow_download:
            raise DataError(
                f"{name}: missing {', '.join(missing)} in {where}; download them from {base} into "
                f"{first}, or set download = true"
            )
        # The download folder is `root` when it is writable; otherwise (a read-only `root`, or the
        # shared `$EDGEBENCH_DATA` store) it is the per-user cache data_home()/<name>.
        target = first if root is not None and _writable(first) else home
        logger.info("%s: downloading %d missing file(s) from %s into %s", name, len(missing), base, target)
        for fname in missing:
            paths[fname] = download(base + fname, target / fname, md5=md5s[fname])
            fresh.add(fname)

    for fname in _FILES:
        if fname in fresh:
            continue
        _verify(paths[fname], md5s[fname], name)

    x_train, y_train = _parse_pair(paths[_FILES[0]], paths[_FILES[1]], len(_CLASSES[name]))
    x_test, y_test = _parse_pair(paths[_FILES[2]], paths[_FILES[3]], len(_CLASSES[name]))
    logger.debug("%s: %d train / %d test samples", name, len(y_train), len(y_test))
    return Dataset(
        name=name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, classes=_CLASSES[name]
    )


def _parse_pair(images_path: Path, labels_path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse one images/labels pair into float32 (N, 1, H, W) in [0, 1] and int64 (N,)."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{images_path}: expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: expected labels of shape (N,), got {labels.shape}")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    y = labels.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"{labels_path}: labels must be in [0, {num_classes}), found {y.min()}..{y.max()}")
    x = images.astype(np.float32)
    x /= np.float32(255.0)
    return x[:, None, :, :], y


@DATASETS.register("mnist")
def mnist(*, root: str | None = None, download: bool = True, mirror: str | None = None) -> Dataset:
    """MNIST handwritten digits: 60000 train / 10000 test images as (N, 1, 28, 28) float32 in [0, 1].

    Args:
        root: folder holding the four ``*-ubyte.gz`` files (looked in first; downloaded into when writable).
        download: fetch missing files from ``mirror``; when false, missing files are an error.
        mirror: base URL of the files, default ``https://ossci-datasets.s3.amazonaws.com/mnist/``.

    Raises:
        DataError: files missing (with ``download`` false), unreachable, corrupt or failing their MD5.
    """
    return _load_idx_dataset("mnist", root, download, mirror)


@DATASETS.register("fashion-mnist")
def fashion_mnist(*, root: str | None = None, download: bool = True, mirror: str | None = None) -> Dataset:
    """Fashion-MNIST (Zalando): 60000 train / 10000 test 28x28 images of ten kinds of clothing.

    Same arguments and errors as :func:`mnist`; the default mirror is
    ``http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/``.
    """
    return _load_idx_dataset("fashion-mnist", root, download, mirror)
