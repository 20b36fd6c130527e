"""Content-addressed artifact cache (``$EDGEBENCH_CACHE``, default ``~/.cache/edgebench``).

Each stage output lives in ``<root>/<kind>/<key>/`` where ``key`` hashes everything the output depends
on (the stage's parameters, the keys of its inputs, the data fingerprint, the code it runs, edgebench's
version). An entry is built in a temporary folder and published with one ``rename``, with a ``manifest.json``
of every file's sha256: an interrupted build leaves nothing behind, and an entry whose files no longer match
their hashes is discarded and rebuilt, never used.

Some entries hold pickles (a compressed twin is a whole pickled module), and loading a pickle runs code. So
the manifest is signed: an HMAC-SHA256 with a secret key kept in the user's configuration folder
(:func:`key_path`, made on first use, mode 600). An entry whose signature is missing or wrong (written by
someone without the key, or by edgebench before entries were signed) is a miss: it is rebuilt, never loaded.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from edgebench import __version__
from edgebench.agent.protocol import sha256_file
from edgebench.errors import ArtifactError, ConfigError, DiskFullError, is_disk_full

log = logging.getLogger(__name__)

#: bump when a stage's output format or semantics change, to invalidate old entries
CACHE_FORMAT = 1


def cache_root() -> Path:
    env = os.environ.get("EDGEBENCH_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "edgebench"


KEY_FILE = "cache.key"
_warned: set[tuple[str, int]] = set()  # entries already reported as unusable (one line each per process)


def key_path() -> Path:
    """Where the cache's signing key lives: ``$EDGEBENCH_CONFIG/cache.key``, else
    ``$XDG_CONFIG_HOME/edgebench/cache.key``, else ``~/.config/edgebench/cache.key``."""
    env = os.environ.get("EDGEBENCH_CONFIG")
    if env:
        return Path(env) / KEY_FILE
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "edgebench" / KEY_FILE


def signing_key(path: Path | None = None) -> bytes:
    """The secret that signs cache entries, made at ``path`` (default :func:`key_path`) on first use: 32 random
    bytes, written to a private temporary file and linked into place, so that a concurrent first use reads the
    winner's key and nobody ever reads half a key. A key file that others may read is refused."""
    path = path or key_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)  # the first writer wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(f"{path}: the cache signing key is open to other users (mode {mode:o}); run "
                          f"chmod 600 {path}")
    secret = path.read_bytes().strip()
    if len(secret) < 32:
        raise ConfigError(f"{path}: the cache signing key is shorter than 32 bytes; delete the file (a new key "
                          "is made, and the cache rebuilt) or copy the key of the machines sharing this cache")
    return secret


PACKAGE = "edgebench"
_HERE = Path(__file__).resolve().parents[1]  # this package's folder: the default root of the import closure


def _module_name(root: str | ModuleType | type | Callable[..., Any]) -> str:
    """The module a root stands for: a module name as given, a module's own name, a class's or function's module."""
    if isinstance(root, str):
        return root
    if isinstance(root, ModuleType):
        return root.__name__
    return root.__module__


def code_fingerprint(*roots: str | ModuleType | type | Callable[..., Any], package: Path | None = None) -> str:
    """Hash of the code a stage runs: the source of the modules ``roots`` (module names, modules, or classes and
    functions standing for their module) and of every edgebench module they import, transitively (imports inside
    functions and relative ones included, with each package's ``__init__``), so that editing a helper the stage
    uses invalidates what it produced, not only a version bump.

    ``package`` is the folder holding the ``edgebench`` package to read (default: this one; a copy can be
    fingerprinted without importing it). Computed once per process per set of roots: the code does not change
    under a running process."""
    return _fingerprint(tuple(sorted({_module_name(r) for r in roots})), (package or _HERE).resolve())


@functools.cache
def _fingerprint(names: tuple[str, ...], package: Path) -> str:
    closure: set[str] = set()
    for name in names:
        closure |= _closure(name, package)
    h = hashlib.sha256()
    for name in sorted(closure):
        path = _source_file(name, package)
        h.update(f"{name}\0{_digest(path) if path else 'absent'}\0".encode())
    return h.hexdigest()[:16]


@functools.cache
def _closure(name: str, package: Path) -> frozenset[str]:
    """``name`` and every edgebench module it imports, transitively, with the packages above each."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        todo.extend(_parents(mod))
        path = _source_file(mod, package)
        if path is not None:
            todo.extend(m for m in _imports(mod, path, package) if m not in seen)
    return frozenset(seen)


def _parents(name: str) -> list[str]:
    """The packages above ``name`` inside edgebench (their ``__init__`` runs on import)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))] if parts[0] == PACKAGE else []


@functools.cache
def _source_file(name: str, package: Path) -> Path | None:
    """The source file of module ``name``: under ``package`` for edgebench's own, else where Python finds it
    (a plugin registered from outside); ``None`` if there is none (a compiled or missing module)."""
    parts = name.split(".")
    if parts[0] == PACKAGE:
        base = package.joinpath(*parts[1:])
        for path in (base / "__init__.py", base.with_suffix(".py")):
            if path.is_file():
                return path
        return None
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = spec.origin if spec else None
    return Path(origin) if origin and origin.endswith(".py") and Path(origin).is_file() else None


@functools.cache
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


_IMPORT_MODULE = re.compile(rb"""import_module\(\s*["']([\w.]+)["']""")  # with a literal name
_IMPORT_LINE = re.compile(rb"^[ \t]*(?:from[ \t]+[\w.]+[ \t]+import\b|import[ \t]+\w)", re.M)


def _import_statements(source: bytes, path: Path) -> list[ast.stmt]:
    """The import statements of ``source``, wherever they are (module level, in functions, under ``if``), each
    parsed with ``ast`` on its own: parsing only them is what keeps a cold fingerprint fast. A line inside a
    string that reads like an import only adds a module to the closure (a key that moves more, never a stale
    one); where a statement does not parse alone, the whole file is parsed instead."""
    found: list[ast.stmt] = []
    for m in _IMPORT_LINE.finditer(source):
        start, end = m.start(), m.end()
        while True:  # to the end of the logical line: a parenthesised list or a backslash continues it
            end = source.find(b"\n", end)
            end = len(source) if end < 0 else end
            text = source[start:end]
            if end == len(source) or (text.count(b"(") <= text.count(b")") and not text.endswith(b"\\")):
                break
            end += 1
        try:
            found.extend(ast.parse(text.strip()).body)
        except SyntaxError:
            tree = ast.parse(source, filename=str(path))
            return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return found


@functools.cache
def _imports(name: str, path: Path, package: Path) -> tuple[str, ...]:
    """The edgebench modules the source of ``name`` imports anywhere in it (``from pkg import sub`` counts ``sub``
    where it is a module; ``importlib.import_module("edgebench...")`` with a literal name counts too)."""
    source = path.read_bytes()
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]  # what a relative import starts from
    found = [m.decode() for m in _IMPORT_MODULE.findall(source)]
    for node in _import_statements(source, path):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = here.split(".")[: max(0, len(here.split(".")) - node.level + 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            found.append(base)
            if base == PACKAGE or base.startswith(PACKAGE + "."):
                found.extend(f"{base}.{alias.name}" for alias in node.names
                             if _source_file(f"{base}.{alias.name}", package) is not None)
    return tuple(m for m in found if m == PACKAGE or m.startswith(PACKAGE + "."))


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
    """The artifact cache under ``root``, its entries signed with the key at ``key`` (default :func:`key_path`,
    read on first use)."""

    def __init__(self, root: Path | None = None, *, key: Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_root()
        self.key_file = key
        self._secret: bytes | None = None
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

    def _sign(self, kind: str, key: str, files: dict[str, str]) -> str:
        """The HMAC-SHA256 of an entry's address and file hashes (what its manifest says)."""
        if self._secret is None:
            self._secret = signing_key(self.key_file)
        blob = json.dumps({"kind": kind, "key": key, "files": files}, sort_keys=True, separators=(",", ":"))
        return hmac.new(self._secret, blob.encode(), hashlib.sha256).hexdigest()

    def _manifest(self, entry: Path, kind: str, key: str) -> tuple[dict[str, str] | None, bool]:
        """The file hashes the entry's manifest lists (``None``: no readable manifest), and whether the manifest is
        signed with this cache's key for this very address (``kind/key``). Reads the manifest only (JSON)."""
        try:
            manifest = json.loads((entry / "manifest.json").read_text())
            files, signature = manifest["files"], manifest.get("signature")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None, False
        if not isinstance(files, dict):
            return None, False
        return files, isinstance(signature, str) and hmac.compare_digest(signature, self._sign(kind, key, files))

    def signed(self, kind: str, key: str) -> bool:
        """Whether the entry exists with a manifest signed by this cache's key (its files are not hashed: a
        cheap check for planning; :meth:`get` hashes them before use)."""
        return self._manifest(self.path(kind, key), kind, key)[1]

    def _fault(self, entry: Path, kind: str, key: str) -> str | None:
        """Why the entry must not be used (``unsigned``, ``damaged``), or ``None`` when it may be: its manifest is
        signed, and the entry holds exactly the files it lists, each with its hash."""
        files, signed = self._manifest(entry, kind, key)
        if files is None:
            return "damaged"
        if not signed:
            return "unsigned"
        try:
            present = {p.relative_to(entry).as_posix() for p in entry.rglob("*") if not p.is_dir()}
            if present != {*files, "manifest.json"}:
                return "damaged"
            return None if all(sha256_file(entry / n) == digest for n, digest in files.items()) else "damaged"
        except OSError:
            return "damaged"

    def _usable(self, kind: str, key: str) -> bool:
        """Whether the entry exists and may be used; one that may not is discarded (one warning per entry)."""
        entry = self.path(kind, key)
        if not (entry / "manifest.json").is_file():
            return False
        fault = self._fault(entry, kind, key)
        if fault is None:
            return True
        try:  # one line per entry: per state of its manifest, so that an entry planted again is reported again
            seen = (str(entry), (entry / "manifest.json").stat().st_mtime_ns)
        except OSError:
            seen = (str(entry), 0)
        if seen not in _warned:
            _warned.add(seen)
            if fault == "unsigned":
                log.warning("cache: %s is not signed with this machine's cache key (%s); rebuilding it, never "
                            "loading it", entry, self.key_file or key_path())
            else:
                log.warning("cache: %s does not match its manifest; discarding it and rebuilding", entry)
        shutil.rmtree(entry, ignore_errors=True)
        return False

    def pack(self, kind: str, key: str) -> bytes:
        """The entry ``kind/key`` as one uncompressed tar (its manifest included), checked first: an entry this
        cache would not use is not shipped either (:class:`ArtifactError`)."""
        import io
        import tarfile

        if not self._usable(kind, key):
            raise ArtifactError(f"cache entry {self.path(kind, key)} is missing, damaged or not signed with this "
                                "machine's cache key, so it is not shipped; run the same command again (it is "
                                "rebuilt)")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(self.path(kind, key), arcname=".")
        return buf.getvalue()

    def unpack(self, kind: str, key: str, blob: bytes) -> Path:
        """Publish an entry made by :meth:`pack` on another machine, unless this cache already holds it intact.
        Its files must match the manifest it came with (else :class:`ArtifactError`: nothing is published); it is
        then signed with this cache's key. Its signature is not checked (the sender's key is not this one): the
        blob must come from a trusted sender, the run's scheduler or its workers through Ray's object store,
        never from a folder others can write."""
        import io
        import tarfile

        entry = self.get(kind, key)
        if entry is not None:
            return entry
        with self.build(kind, key) as tmp:
            with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
                tar.extractall(tmp, filter="data")  # no absolute paths, no "..", no links out of tmp
            shipped = tmp / "manifest.json"
            manifest = json.loads(shipped.read_text()) if shipped.is_file() else {}
            shipped.unlink(missing_ok=True)
            have = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
            if (manifest.get("files"), manifest.get("kind"), manifest.get("key")) != (have, kind, key):
                raise ArtifactError(f"cache entry {kind}/{key} arrived damaged (its files do not match its manifest); "
                                    "run the same command again")
        return self.path(kind, key)

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / key

    def get(self, kind: str, key: str) -> Path | None:
        """The entry's folder if it exists, its manifest is signed with this cache's key and every file matches
        the manifest; else ``None`` (an entry that exists but fails is removed, to be rebuilt)."""
        if not self._usable(kind, key):
            return None
        self._note(kind, key, False)
        return self.path(kind, key)

    def _publish(self, tmp: Path, final: Path) -> None:
        """Rename ``tmp`` to ``final``. An intact entry already there was built from the same inputs by another
        process (two workers, two runs): it is kept and ``tmp`` dropped, so nobody reading it sees it vanish."""
        kind, key = final.parent.name, final.name
        for _ in range(3):
            if final.exists():
                if self._fault(final, kind, key) is None:
                    return
                shutil.rmtree(final, ignore_errors=True)  # a damaged, unsigned or half-removed entry
            try:
                os.rename(tmp, final)
                return
            except OSError:
                if not final.exists():
                    raise
        raise OSError(f"cache: could not publish {kind}/{key}")

    @contextmanager
    def build(self, kind: str, key: str) -> Iterator[Path]:
        """Yield a temporary folder to write the entry into; publish it atomically on success, with its signed
        manifest."""
        final = self.path(kind, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        _sweep_stale(final.parent)
        tmp = final.parent / f".{key}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            yield tmp
            files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
            (tmp / "manifest.json").write_text(json.dumps({"kind": kind, "key": key, "files": files,
                                                           "signature": self._sign(kind, key, files)}, indent=1))
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
