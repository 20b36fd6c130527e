"""The headless-browser checker (tests/fixtures/browser.py) must be able to fail: a broken image, a console
error, an unreachable external resource are all seen, and a clean page is reported clean."""

from __future__ import annotations

import base64
import socket
import struct
import time
import zlib
from pathlib import Path

import pytest

from tests.fixtures.browser import BrowserError, PageCheck, check_page, find_chromium

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="no chromium on PATH (Debian: apt-get install chromium; or set EDGEBENCH_CHROMIUM)",
)


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    """A valid RGB PNG built by hand (no PIL): a red/blue checker."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\0" + b"".join(b"\xff\0\0" if (x + y) % 2 else b"\0\0\xff" for x in range(width)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def page(body: str, title: str = "t") -> str:
    return f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head><body>{body}</body></html>'


TABLES = (
    '<table id="first"><caption>First table</caption><thead><tr><th>a</th><th>b</th></tr></thead>'
    "<tbody><tr><td>1</td><td>2</td></tr><tr><td>3</td><td>4</td></tr><tr><td>5</td><td>6</td></tr></tbody></table>"
    '<table id="second"><caption> Second\n table </caption><tr><td>x</td></tr></table>'
)


def test_tiny_png_is_a_png() -> None:
    data = tiny_png(3, 2)
    assert data.startswith(PNG_SIGNATURE) and struct.unpack(">II", data[16:24]) == (3, 2)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> PageCheck:
    root = tmp_path_factory.mktemp("browser")
    good = base64.b64encode(tiny_png()).decode()
    html = root / "broken.html"
    html.write_text(
        page(
            f'<h1>Report</h1><h2>Images</h2><img alt="good" src="data:image/png;base64,{good}">'
            '<img alt="bad" src="data:image/png;base64,AAAA">'
            f'<h2>Tables</h2>{TABLES}<script>console.error("boom")</script>',
            title="Broken page",
        )
    )
    return check_page(html, screenshot=root / "shots" / "broken.png")


@needs_chromium
def test_broken_page_is_reported(broken: PageCheck) -> None:
    assert broken.title == "Broken page"
    assert [img["complete"] for img in broken.images] == [True, False]
    good, bad = broken.images
    assert (good["natural_width"], good["natural_height"]) == (3, 2) and good["src"].startswith("data:image/png")
    assert len(good["src"]) == 60 and bad["src"] == "data:image/png;base64,AAAA"
    assert broken.broken_images == [bad]
    assert broken.tables == [
        {"id": "first", "caption": "First table", "rows": 3},
        {"id": "second", "caption": "Second table", "rows": 1},
    ]
    assert broken.headings == ["Report", "Images", "Tables"]
    assert len(broken.console_errors) == 1 and "boom" in broken.console_errors[0], broken.console_errors


@needs_chromium
def test_screenshot_is_a_png(broken: PageCheck) -> None:
    assert broken.screenshot is not None and broken.screenshot.is_file()
    data = broken.screenshot.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1280 and height >= 200


@needs_chromium
def test_clean_page_has_no_errors(tmp_path: Path) -> None:
    good = base64.b64encode(tiny_png(4, 4)).decode()
    html = tmp_path / "clean.html"
    html.write_text(page(f'<h1>Clean</h1><img src="data:image/png;base64,{good}">{TABLES}<script>1 + 1</script>'))
    result = check_page(html, width=800)
    assert result.console_errors == []
    assert result.broken_images == [] and len(result.images) == 1
    assert [t["id"] for t in result.tables] == ["first", "second"]
    assert result.screenshot is None and result.browser


@needs_chromium
def test_uncaught_exception_is_an_error(tmp_path: Path) -> None:
    html = tmp_path / "throws.html"
    html.write_text(page('<script>console.warn("only a warning"); throw new TypeError("kaput")</script>'))
    errors = check_page(html).console_errors
    assert len(errors) == 1 and "kaput" in errors[0], errors


@needs_chromium
def test_external_image_does_not_load(tmp_path: Path) -> None:
    """A report must be self-contained: an http:// image is not fetched here (a bound but never listening
    loopback port refuses at once, so this is quick and touches no network); the failed load is an error."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # held, never listening: connections are refused
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/x.png"
        html = tmp_path / "external.html"
        html.write_text(page(f'<img src="{url}">'))
        start = time.monotonic()
        result = check_page(html, timeout=30)
    assert time.monotonic() - start < 20
    assert [img["complete"] for img in result.images] == [False]
    assert any("x.png" in e or "Failed to load" in e for e in result.console_errors), result.console_errors


def test_unresponsive_browser_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A browser that never answers on the pipe is an error after ``timeout``, not a hung test suite."""
    fake = tmp_path / "fake-chromium"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("EDGEBENCH_CHROMIUM", str(fake))
    html = tmp_path / "x.html"
    html.write_text(page("x"))
    start = time.monotonic()
    with pytest.raises(BrowserError, match="Browser.getVersion"):
        check_page(html, timeout=1.5)
    assert time.monotonic() - start < 5


def test_browser_that_exits_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "fake-chromium"
    fake.write_text("#!/bin/sh\necho 'cannot start: no display' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("EDGEBENCH_CHROMIUM", str(fake))
    html = tmp_path / "x.html"
    html.write_text(page("x"))
    with pytest.raises(BrowserError, match="cannot start: no display"):
        check_page(html, timeout=10)


def test_find_chromium_honours_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEBENCH_CHROMIUM", str(tmp_path / "missing"))
    assert find_chromium() is None
