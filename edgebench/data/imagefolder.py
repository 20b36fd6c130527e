"""The user's own images: folders of class sub-folders of PNG/JPEG files (torchvision's ``ImageFolder`` layout),
decoded and resized with Pillow, cached as uint8 arrays.

``train/<class>/*.png`` and ``test/<class>/*.jpg``: the classes are the sub-folder names in sorted order,
taken from the train folder (the test folder may lack some, but may not add any); files are found
recursively, hidden files (a leading dot) are skipped. Torch-free.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
from pathlib import Path

import numpy as np

from edgebench.data import DATASETS
from edgebench.data.base import Dataset, data_home
from edgebench.data.decoded import save_atomic
from edgebench.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

__all__ = ["imagefolder"]

EXTENSIONS = (".png", ".jpg", ".jpeg")
#: Bumped whenever decoding changes what a file turns into, so that old cache entries are not reused.
_VERSION = "edgebench.imagefolder.v1"


def _classes(root: Path, param: str) -> list[str]:
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (imagefolder parameter {param!r}: a folder of class sub-folders)")
    names = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not names:
        raise DataError(f"{root}: no class sub-folders; put each class's images in {root}/<class name>/")
    return names


def _files(root: Path, classes: list[str]) -> list[tuple[Path, int]]:
    """(file, label) for every image under ``root/<class>``, in class then path order."""
    out: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue  # a train class the test folder lacks
        files = sorted(
            p for p in folder.rglob("*")
            if p.suffix.lower() in EXTENSIONS and not p.name.startswith(".") and p.is_file()
        )
        if not files:
            raise DataError(
                f"{folder}: empty class folder (no {', '.join(EXTENSIONS)} files); add images or remove it"
            )
        out.extend((p, label) for p in files)
    return out


def _check_size(size: object) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        size = [size, size]
    if (
        not isinstance(size, (list, tuple)) or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise ConfigError(f"size must be [height, width] in pixels (positive integers), got {size!r}")
    return int(size[0]), int(size[1])


def _decode(path: Path, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    """One image as uint8 (H, W, C): converted to ``mode`` and, with ``size``, resized bilinearly."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode == "I" or img.mode.startswith("I;16"):
                # 16-bit grayscale (PNG): Pillow's convert() would clip every value above 255 to white
                wide = np.asarray(img).astype(np.float64)
                img = Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8), "L")
            img = img.convert(mode)
            if size is not None and img.size != (size[1], size[0]):
                # Pillow's BILINEAR resize is a convolution whose support widens when shrinking (antialiased),
                # as torchvision's Resize does on PIL images
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: not a readable PNG/JPEG image ({exc}); replace or remove the file") from exc
    return arr.reshape(arr.shape[0], arr.shape[1], -1)


def _cache_key(items: list[tuple[Path, int]], size: tuple[int, int] | None, mode: str) -> str:
    """SHA-256 over the decoder version, Pillow's version, size, mode and every file's path, size and mtime."""
    import PIL

    h = hashlib.sha256(f"{_VERSION}\0{PIL.__version__}\0{size}\0{mode}\0".encode())
    for path, label in items:
        st = path.stat()
        h.update(f"{path.resolve()}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


def _load_split(items: list[tuple[Path, int]], size: tuple[int, int] | None, mode: str,
                cache: bool) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, C, H, W) images and int64 labels of ``items``, from the cache when it holds them."""
    y = np.array([label for _, label in items], dtype=np.int64)
    entry = data_home() / "imagefolder" / f"{_cache_key(items, size, mode)}.npy" if cache else None
    if entry is not None and entry.is_file():
        try:
            x = np.load(entry, allow_pickle=False)
            if x.dtype == np.uint8 and x.ndim == 4 and len(x) == len(y):
                logger.debug("imagefolder: %d images from the cache %s", len(y), entry)
                return x, y
        except (OSError, ValueError) as exc:
            logger.warning("imagefolder: ignoring the unreadable cache entry %s (%s)", entry, exc)
    first = None
    x = np.zeros(0, dtype=np.uint8)
    for i, (path, _) in enumerate(items):
        img = _decode(path, mode, size)
        if first is None:
            first = path
            x = np.empty((len(items), *img.shape), dtype=np.uint8)
        elif img.shape != x.shape[1:]:
            raise DataError(f"{path}: {img.shape[1]}x{img.shape[0]} pixels but {first} is {x.shape[2]}x"
                            f"{x.shape[1]}; set size = [height, width] to resize every image")
        x[i] = img
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    if entry is not None:
        _save(entry, x)
    return x, y


def _save(entry: Path, x: np.ndarray) -> None:
    """Write the cache entry atomically; a cache that cannot be written is only logged."""
    exc = save_atomic(entry, lambda fh: np.save(fh, x, allow_pickle=False))
    if exc is not None:
        logger.warning("imagefolder: cannot write the cache entry %s (%s)", entry, exc)


def _floats(x: np.ndarray) -> np.ndarray:
    out = x.astype(np.float32)
    out /= np.float32(255.0)
    return out


@DATASETS.register("imagefolder")
def imagefolder(
    *,
    test: str,
    train: str | None = None,
    size: list[int] | None = None,
    channels: int = 3,
    cache: bool = True,
) -> Dataset:
    """A data set from folders of class sub-folders of PNG/JPEG images, as float32 (N, C, H, W) in [0, 1].

    Args:
        test: the test folder (``test/<class>/<image>``).
        train: the train folder; without it the train split is empty. Its sorted sub-folder names are the
            classes (the test folder's when there is no train folder).
        size: ``[height, width]`` every image is resized to with Pillow's bilinear filter (antialiased when
            shrinking); without it every image must already have one size.
        channels: 1 (Pillow mode ``L``, luma) or 3 (mode ``RGB``; an alpha channel is dropped).
        cache: keep the decoded images as uint8 ``.npy`` under ``$EDGEBENCH_CACHE/data/imagefolder/``, keyed
            by every file's path, size and mtime (not its content), ``size``, ``channels`` and the Pillow and
            decoder versions; a changed, added or removed file decodes the split again.

    Raises:
        DataError: a folder is missing or has no class sub-folders, a class folder holds no image, a test
            class is not a train class, a file is not a readable image, or images differ in size without
            ``size``.
        ConfigError: a bad ``size`` or ``channels``.
    """
    shape = _check_size(size)
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ConfigError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    if not isinstance(cache, bool):
        raise ConfigError(f"cache must be true or false, got {cache!r}")
    mode = "L" if channels == 1 else "RGB"
    test_root = Path(test).expanduser()
    test_classes = _classes(test_root, "test")
    if train is not None:
        train_root = Path(train).expanduser()
        classes = _classes(train_root, "train")
        extra = [c for c in test_classes if c not in classes]
        if extra:
            raise DataError(f"{test_root}: class folder(s) {', '.join(extra)} are not in the train folder "
                            f"{train_root}; the classes are the train folder's")
    else:
        classes = test_classes
    x_test, y_test = _load_split(_files(test_root, classes), shape, mode, cache)
    if train is not None:
        x_train, y_train = _load_split(_files(train_root, classes), shape, mode, cache)
        if x_train.shape[1:] != x_test.shape[1:]:
            raise DataError(f"{train_root}: images are {x_train.shape[3]}x{x_train.shape[2]} but those of "
                            f"{test_root} are {x_test.shape[3]}x{x_test.shape[2]}; set size = [height, width]")
    else:
        x_train, y_train = np.zeros((0, *x_test.shape[1:]), dtype=np.uint8), np.zeros(0, dtype=np.int64)
    logger.debug("imagefolder: %d train / %d test images of %d classes", len(y_train), len(y_test), len(classes))
    return Dataset(name=f"imagefolder:{test_root.name}", x_train=_floats(x_train), y_train=y_train,
                   x_test=_floats(x_test), y_test=y_test, classes=tuple(classes))
