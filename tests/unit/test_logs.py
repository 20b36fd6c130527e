"""Third-party log output goes through ``logging`` at WARNING unless ``-v``: NNCF, which gives its logger its own
stdout handler at INFO when imported, included — whether it is imported before or after the CLI sets up logging.
Each case runs in a fresh process (logging and import hooks are process-wide)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nncf")

CODE = """
import logging, sys
if {before}:
    import nncf
from edgebench.cli import main
assert main({argv} + ["runs", "--out", {out!r}]) == 0
import nncf
from nncf.common.logging import nncf_logger
print("nncf level", logging.getLogger("nncf").level, "handlers", len(nncf_logger.handlers))
nncf_logger.info("INFO:nncf:Compiling and loading torch extension")
nncf_logger.warning("nncf warning")
logging.getLogger("edgebench.runner").info("edgebench info")
logging.getLogger("edgebench.runner").debug("edgebench debug")
"""


@pytest.mark.parametrize(("verbose", "before"), [(False, False), (True, True)],
                         ids=["default, nncf imported after setup", "-v, nncf imported before setup"])
def test_cli_logging_levels(tmp_path: Path, verbose: bool, before: bool) -> None:
    code = CODE.format(before=before, argv=["-v"] if verbose else [], out=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"nncf level {10 if verbose else 30} handlers 0" in out.stdout  # adopted: no handler of its own
    assert "Compiling and loading" not in out.stdout  # never NNCF's own stdout handler
    assert ("Compiling and loading" in out.stderr) is verbose  # through logging's stderr handler with -v only
    assert "nncf warning" in out.stderr and "edgebench info" in out.stderr
    assert ("edgebench debug" in out.stderr) is verbose
