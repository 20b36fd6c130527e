"""The ``imagefolder`` data set on real PNG and JPEG files the test writes with Pillow: shapes, labels, range,
resizing, channels, the decoded-array cache, and bad input as one line naming the file or folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgebench.data import data_home, load_dataset
from edgebench.errors import ConfigError, DataError


def _image(path: Path, size: tuple[int, int], mode: str, seed: int) -> None:
    """A random ``mode`` image of ``size`` (width, height) at ``path`` (its format from the suffix)."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)


def make_folder(root: Path, counts: dict[str, int], *, seed: int = 0) -> Path:
    """``root/<class>/`` with ``counts[class]`` images each, alternating a 40x30 RGB PNG and a 24x24 gray JPEG."""
    for c, (name, n) in enumerate(sorted(counts.items())):
        for i in range(n):
            if i % 2:
                _image(root / name / f"{i:03d}.jpg", (24, 24), "L", seed + 100 * c + i)
            else:
                _image(root / name / f"{i:03d}.png", (40, 30), "RGB", seed + 100 * c + i)
    return root


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    train = make_folder(tmp_path / "train", {"cat": 6, "dog": 4, "emu": 2})
    test = make_folder(tmp_path / "test", {"cat": 3, "emu": 2}, seed=1000)
    (train / "cat" / ".DS_Store").write_bytes(b"\0\1")  # hidden files and other suffixes are skipped
    (train / "dog" / "notes.txt").write_text("not an image")
    return train, test


def test_loads_resized_with_sorted_classes(folders: tuple[Path, Path]) -> None:
    train, test = folders
    ds = load_dataset("imagefolder", train=str(train), test=str(test), size=[16, 20], channels=3)
    assert ds.classes == ("cat", "dog", "emu")
    assert ds.x_train.shape == (12, 3, 16, 20) and ds.x_test.shape == (5, 3, 16, 20)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.y_train.tolist() == [0] * 6 + [1] * 4 + [2] * 2
    assert ds.y_test.tolist() == [0, 0, 0, 2, 2]  # the test folder lacks "dog": labels keep the train order
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0 and ds.x_train.std() > 0.05
    # a gray JPEG converted to RGB has three equal planes; an RGB PNG does not
    assert np.array_equal(ds.x_train[1, 0], ds.x_train[1, 2]) and not np.array_equal(ds.x_train[0, 0], ds.x_train[0, 2])
    # the first train image is cat/000.png resized bilinearly by Pillow
    with Image.open(train / "cat" / "000.png") as img:
        want = np.asarray(img.convert("RGB").resize((20, 16), Image.Resampling.BILINEAR)).transpose(2, 0, 1)
    assert np.array_equal(ds.x_train[0], want.astype(np.float32) / np.float32(255))

    gray = load_dataset("imagefolder", train=str(train), test=str(test), size=8, channels=1)
    assert gray.x_train.shape == (12, 1, 8, 8) and gray.shape == (1, 8, 8)
    assert gray.fingerprint() != ds.fingerprint()

    sub = ds.subset(n_train=6, n_test=3, seed=0)
    assert np.bincount(sub.y_train).tolist() == [3, 2, 1]


def test_cache_is_used_and_follows_the_files(folders: tuple[Path, Path]) -> None:
    train, test = folders
    first = load_dataset("imagefolder", train=str(train), test=str(test), size=[12, 12])
    entries = sorted((data_home() / "imagefolder").glob("*.npy"))
    assert len(entries) == 2  # one per split
    again = load_dataset("imagefolder", train=str(train), test=str(test), size=[12, 12])
    assert again.fingerprint() == first.fingerprint()
    # rewriting a file (new size/mtime) decodes that split again
    target = test / "cat" / "000.png"
    _image(target, (40, 30), "RGB", seed=7)
    os.utime(target, ns=(1, 1))
    changed = load_dataset("imagefolder", train=str(train), test=str(test), size=[12, 12])
    assert not np.array_equal(changed.x_test[0], first.x_test[0])
    assert np.array_equal(changed.x_train, first.x_train)
    assert len(list((data_home() / "imagefolder").glob("*.npy"))) == 3
    nocache = load_dataset("imagefolder", train=str(train), test=str(test), size=[12, 12], cache=False)
    assert nocache.fingerprint() == changed.fingerprint()


@pytest.mark.parametrize("damage", ["not-an-image", "truncated"])
def test_bad_file_is_one_line_naming_it(folders: tuple[Path, Path], damage: str) -> None:
    train, test = folders
    bad = train / "dog" / "001.jpg"
    bad.write_bytes(b"hello, not a jpeg" if damage == "not-an-image" else bad.read_bytes()[:200])
    with pytest.raises(DataError) as err:
        load_dataset("imagefolder", train=str(train), test=str(test), size=[8, 8])
    msg = str(err.value)
    assert msg.startswith(f"{bad}: not a readable PNG/JPEG image") and "\n" not in msg


def test_bad_folders_are_one_line(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    train, test = folders
    (train / "fox").mkdir()
    with pytest.raises(DataError, match=f"^{train / 'fox'}: empty class folder"):
        load_dataset("imagefolder", train=str(train), test=str(test), size=[8, 8])
    (train / "fox").rmdir()
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match=f"^{tmp_path / 'none'}: no class sub-folders"):
        load_dataset("imagefolder", test=str(tmp_path / "none"))
    with pytest.raises(DataError, match=f"^{tmp_path / 'missing'}: not a folder"):
        load_dataset("imagefolder", test=str(tmp_path / "missing"))
    make_folder(test / "yak", {"": 1})
    with pytest.raises(DataError, match="class folder.s. yak are not in the train folder"):
        load_dataset("imagefolder", train=str(train), test=str(test), size=[8, 8])
    with pytest.raises(DataError, match="pixels but .* set size"):  # a 40x30 PNG and a 24x24 JPEG
        load_dataset("imagefolder", test=str(train))
    with pytest.raises(ConfigError, match=r"size must be \[height, width\]"):
        load_dataset("imagefolder", test=str(train), size=[8, 0])
    with pytest.raises(ConfigError, match="channels must be 1"):
        load_dataset("imagefolder", test=str(train), size=[8, 8], channels=2)


def test_test_folder_alone(tmp_path: Path) -> None:
    test = make_folder(tmp_path / "t", {"a": 2, "b": 2})
    ds = load_dataset("imagefolder", test=str(test), size=[10, 10], channels=1)
    assert ds.classes == ("a", "b") and len(ds.y_train) == 0 and ds.x_train.shape == (0, 1, 10, 10)
    assert ds.name == "imagefolder:t"


def test_16_bit_grayscale_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    wide = (np.arange(16, dtype=np.uint16) * 4369).reshape(4, 4)  # 0 .. 65535
    (tmp_path / "t" / "a").mkdir(parents=True)
    Image.fromarray(wide).save(tmp_path / "t" / "a" / "deep.png")
    ds = load_dataset("imagefolder", test=str(tmp_path / "t"), channels=1)
    assert ds.x_test.shape == (1, 1, 4, 4)
    assert np.allclose(ds.x_test[0, 0], wide / 65535.0, atol=0.5 / 255)
