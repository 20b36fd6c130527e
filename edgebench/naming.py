"""Names made safe for where they go: file and folder names, plot file stems, HTML anchors, CSV headers.

One rule, :func:`slug`, parametrised by what a place allows. Pure Python (``re`` only): any module may use it.
"""

from __future__ import annotations

import re


def slug(text: str, *, sep: str = "_", keep: str = "._-", lower: bool = False, default: str = "x") -> str:
    """``text`` with every run of characters other than ASCII letters, digits and ``keep`` replaced by one ``sep``,
    ``sep`` trimmed from both ends, lower-cased first with ``lower``; ``default`` when nothing is left.

    The defaults give a file or folder name (``"pi 4/onnx"`` → ``"pi_4_onnx"``); ``sep="-", keep="",
    lower=True`` gives a URL-style slug (``"tradeoffs-pi 4 (arm64)"`` → ``"tradeoffs-pi-4-arm64"``)."""
    if lower:
        text = text.lower()
    return re.sub(f"[^A-Za-z0-9{re.escape(keep)}]+", sep, text).strip(sep) or default
