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
from edgebench.agent.protocol import sha256_file
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
        self._recorders: list[list[tuple[str, str, bool]]] = []

    @contextmanager
    def recording(self) -> Iterator[list[tuple[str, str, bool]]]:
        """Collect ``(kind, key, built)`` of every entry read (``built`` False) or published (True) inside the
        block: what a stage used and made, so that an executor whose workers do not share this folder can ship
        a stage's inputs to them and its outputs back (:meth:`pack`, :meth:`unpack`)."""
        seen: list[tuple[str, str, bool]] = []
        self._recorders.append(seen)
        try:
            yield seen
        finally:  # by identity: two recordings may hold equal lists
            self._recorders[:] = [r for r in self._recorders if r is not seen]

    def _note(self, kind: str, key: str, built: bool) -> None:
        for seen in self._recorders:
            if (kind, key, built) not in seen:
                seen.append((kind, key, built))

    def pack(self, kind: str, key: str) -> bytes:
        """The entry ``kind/key`` as one uncompressed tar (its manifest included)."""
        import io
        import tarfile

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(self.path(kind, key), arcname=".")
        return buf.getvalue()

    def unpack(self, kind: str, key: str, blob: bytes) -> Path:
        """Publish an entry made by :meth:`pack` on another machine, unless this cache already holds it intact.
        Its files must match the manifest it came with (else :class:`ArtifactError`: nothing is published)."""
        import io
        import tarfile

        from edgebench.errors import ArtifactError

        entry = self.get(kind, key)
        if entry is not None:
            return entry
        with self.build(kind, key) as tmp:
            with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
                tar.extractall(tmp, filter="data")  # no absolute paths, no "..", no links out of tmp
            shipped = tmp / "manifest.json"
            want = json.loads(shipped.read_text())["files"] if shipped.is_file() else None
            shipped.unlink(missing_ok=True)
            have = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
            if want != have:
                raise ArtifactError(f"cache entry {kind}/{key} arrived damaged (its files do not match its manifest); "
                                    "run the same command again")
        return self.path(kind, key)

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / key

    def get(self, kind: str, key: str) -> Path | None:
        """The entry's folder if it exists and every file matches its manifest; else ``None``."""
        entry = self.path(kind, key)
        manifest = entry / "manifest.json"
        if not manifest.is_file():
            return None
        if not self._intact(entry):
            log.warning("cache: %s does not match its manifest; discarding it and rebuilding", entry)
            shutil.rmtree(entry, ignore_errors=True)
            return None
        self._note(kind, key, False)
        return entry

    def _publish(self, tmp: Path, final: Path) -> None:
        """Rename ``tmp`` to ``final``. An intact entry already there was built from the same inputs by another
        process (two workers, two runs): it is kept and ``tmp`` dropped, so nobody reading it sees it vanish."""
        kind, key = final.parent.name, final.name
        for _ in range(3):
            if final.exists():
                if self._intact(final):
                    return
                shutil.rmtree(final, ignore_errors=True)  # a damaged or half-removed entry
            try:
                os.rename(tmp, final)
                return
            except OSError:
                if not final.exists():
                    raise
        raise OSError(f"cache: could not publish {kind}/{key}")

    @staticmethod
    def _intact(entry: Path) -> bool:
        try:
            files = json.loads((entry / "manifest.json").read_text())["files"]
            return all((entry / name).is_file() and sha256_file(entry / name) == digest
                       for name, digest in files.items())
        except (OSError, ValueError, KeyError, TypeError):
            return False

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
            self._publish(tmp, final)
            self._note(kind, key, True)
        except (OSError, RuntimeError) as exc:
            if is_disk_full(exc) or _nearly_full(self.root):
                raise DiskFullError(f"cache {self.root}: the disk is full while writing {kind}/{key} ({exc}); free "
                                    "space, or point EDGEBENCH_CACHE elsewhere, and run the same command again "
                                    "(nothing half-written is kept)") from None
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
