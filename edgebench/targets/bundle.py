"""The agent as one self-contained file (a zip application, PEP 441) that the host ships to a device. HOST SIDE:
it builds the bundle and is not part of it.

The device then needs only Python (:data:`~edgebench.agent.protocol.MIN_PYTHON` or later), numpy and one
runtime: no edgebench install, no torch, and no version skew, since the host runs exactly the code it ships.
The bundle holds the device-side modules only (every module of :data:`DEVICE_FOLDERS` and the few torch-free
:data:`SHARED_MODULES`) and is content-addressed: ``agent-<sha256[:16]>.pyz``, byte-for-byte reproducible
(sorted members, fixed timestamps), so a transport copies it once per version.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

from edgebench.agent.protocol import MIN_PYTHON, python_version_text

#: the device side's packages (every .py inside ships), relative to the edgebench package: device code only
DEVICE_FOLDERS = ("runtime", "agent", "sensors", "blackbox")
#: torch-free modules of the host's folders that the device side imports too (the package root, errors, the
#: registry, and the pure latency and energy statistics the agent summarises its passes with)
SHARED_MODULES = ("__init__.py", "errors.py", "registry.py", "metrics/__init__.py", "metrics/latency.py",
                  "metrics/energy.py")

#: the entry point, in syntax every Python parses (2.7 included), so that one older than the device side needs
#: says so in one line (exit 3) instead of failing on the first annotation or f-string
_TOO_OLD = (f"edgebench-agent: Python %d.%d.%d (%s) is too old: the agent needs Python >= "
            f"{python_version_text(MIN_PYTHON)}; set 'python' in the target file to a newer one")
_MAIN = (f"import sys\nif sys.version_info < {MIN_PYTHON!r}:\n"
         f"    sys.stderr.write({_TOO_OLD + chr(10)!r} % (tuple(sys.version_info[:3]) + (sys.executable,)))\n"
         "    sys.exit(3)\nfrom edgebench.agent.__main__ import main\nsys.exit(main())\n").encode()
_EPOCH = (2020, 1, 1, 0, 0, 0)


def _members() -> list[tuple[str, bytes]]:
    root = Path(__file__).resolve().parents[1]
    files: list[Path] = []
    for entry in DEVICE_FOLDERS + SHARED_MODULES:
        p = root / entry
        files.extend(sorted(p.rglob("*.py")) if p.is_dir() else [p])
    out = [(f"edgebench/{f.relative_to(root).as_posix()}", f.read_bytes()) for f in files if f.is_file()]
    return sorted(out) + [("__main__.py", _MAIN)]


def bundle_bytes() -> bytes:
    """The bundle's bytes (deterministic for the same sources)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in _members():
            info = zipfile.ZipInfo(name, _EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return buf.getvalue()


def build_bundle(folder: Path) -> Path:
    """Write the bundle into ``folder`` (once per content) and return its path."""
    data = bundle_bytes()
    path = Path(folder) / f"agent-{hashlib.sha256(data).hexdigest()[:16]}.pyz"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path
