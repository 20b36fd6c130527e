"""Content-addressed artifact cache (``$EDGEBENCH_CACHE``, default ``~/.cache/edgebench``).

Each stage output lives in ``<root>/<kind>/<key>/`` where ``key`` hashes everything the output depends
on (the stage's parameters, the keys of its inputs, the data fingerprint, edgebench's version). An entry
is built in a temporary folder and published with one ``rename``, with a ``manifest.json`` of every
file's sha256: an interrupted build leaves nothing behind, and an entry whose files no longer match their
hashes is discarded and rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgebench import __version__
from edgebench.agent.job import sha256_file
from edgebench.errors import DiskFullError, is_disk_full

log = logging.getLogger(__name__)

#: bump when a stage's output format or semantics change, to invalidate old entries
CACHE_FORMAT = 1


def cache_root() -> Path:
    env = os.environ.get("EDGEBENCH_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "edgebench"


def code_fingerprint(*modules: str) -> str:
    """Hash of the source files of ``modules``: a stage's key includes the code that computes it, so that
    changing an attack or the training loop invalidates what it produced (not only a version bump)."""
    import importlib
    import inspect

    h = hashlib.sha256()
    for name in modules:
        h.update(inspect.getsource(importlib.import_module(name)).encode())
    return h.hexdigest()[:16]


def content_key(kind: str, spec: dict[str, Any]) -> str:
    """Hash of a stage's full specification (JSON with sorted keys)."""
    blob = json.dumps({"kind": kind, "spec": spec, "edgebench": __version__, "format": CACHE_FORMAT},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _sweep_stale(folder: Path) -> None:
    """Remove the temporary build folders (``.<key>.tmp-<pid>``) of builds whose process is gone (killed
    mid-build): nothing reads them, and they would hold the disk forever."""
    for tmp in folder.glob(".*.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass  # alive (another user's process) or not ours to judge


def _nearly_full(root: Path, margin: int = 1 << 20) -> bool:
    """Less than ``margin`` bytes free where the cache lives: a library that wrapped ENOSPC in its own error
    (torch's checkpoint writer does) failed for lack of space."""
    try:
        return shutil.disk_usage(root).free < margin
    except OSError:
        return False


class Cache:
    """The artifact cache under ``root``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_root()

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / key

    def get(self, kind: str, key: str) -> Path | None:
        """The entry's folder if it exists and every file matches its manifest; else ``None``."""
        entry = self.path(kind, key)
        manifest = entry / "manifest.json"
        if not manifest.is_file():
            return None
        try:
            files = json.loads(manifest.read_text())["files"]
            intact = all((entry / name).is_file() and sha256_file(entry / name) == digest
                         for name, digest in files.items())
        except (OSError, ValueError, KeyError, TypeError):
            intact = False
        if not intact:
            log.warning("cache: %s does not match its manifest; discarding it and rebuilding", entry)
            shutil.rmtree(entry, ignore_errors=True)
            return None
        return entry

    @contextmanager
    def build(self, kind: str, key: str) -> Iterator[Path]:
        """Yield a temporary folder to write the entry into; publish it atomically on success."""
        final = self.path(kind, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        _sweep_stale(final.parent)
        tmp = final.parent / f".{key}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            yield tmp
            files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
            (tmp / "manifest.json").write_text(json.dumps({"kind": kind, "key": key, "files": files}, indent=1))
            if final.exists():  # built concurrently by another run, or a discarded entry
                shutil.rmtree(final, ignore_errors=True)
            os.rename(tmp, final)
        except (OSError, RuntimeError) as exc:
            if is_disk_full(exc) or _nearly_full(self.root):
                raise DiskFullError(f"cache {self.root}: the disk is full while writing {kind}/{key} ({exc}); free "
                                    "space, or point EDGEBENCH_CACHE elsewhere, and run the same command again "
                                    "(nothing half-written is kept)") from None
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
