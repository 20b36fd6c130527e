"""The HTML report in a real headless browser (Debian's chromium): every image loads, every table of the
report is in the page, no console errors; the screenshot is kept beside the report (and copied to
$EDGEBENCH_SCREENSHOTS when set, for a person to look at)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from edgebench.report.data import RunData
from edgebench.report.render import build_sections, plots_by_name, tables_of, write_report
from edgebench.store import Store
from tests.fixtures.browser import check_page, find_chromium
from tests.fixtures.synthetic import fill_synthetic

pytestmark = pytest.mark.skipif(find_chromium() is None,
                                reason="no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)")


@pytest.mark.parametrize("size", [
    {"variants": 4, "attacks": 3, "eps_grid": 3, "targets": 3, "n": 300},  # everything: plots of every kind
    {"variants": 1, "attacks": 0, "targets": 1, "n": 100},  # a base alone, no attack: the sparse report
], ids=["full", "sparse"])
def test_html_report_in_a_real_browser(tmp_path: Path, size: dict[str, int]) -> None:
    with Store.open(tmp_path / "results.sqlite") as store:
        fill_synthetic(store, "browser", **size)
        write_report(store, "browser", tmp_path, formats=("html",))
        d = RunData.load(store, "browser")
    plots = plots_by_name(d)
    expected_tables = tables_of(build_sections(d, plots))
    shot = tmp_path / "report.png"
    page = check_page(tmp_path / "report.html", screenshot=shot)
    assert page.title == "edgebench report: browser"
    assert page.console_errors == []
    assert len(page.images) == len(plots) > 0 and page.broken_images == []
    assert all(img["natural_width"] >= 300 for img in page.images)
    assert len(page.tables) == len(expected_tables)
    assert [t["rows"] for t in page.tables] == [len(t.rows) for t in expected_tables]
    assert "Summary" in page.headings and "Environment" in page.headings
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("EDGEBENCH_SCREENSHOTS"):
        dest = Path(os.environ["EDGEBENCH_SCREENSHOTS"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, dest / f"report-{'-'.join(f'{k}{v}' for k, v in size.items())}.png")
