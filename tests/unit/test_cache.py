"""The artifact cache: keys that follow the code a stage runs (its import closure), entries signed with the
user's key and never used when the signature is missing or wrong."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import stat
from pathlib import Path

import pytest

from edgebench.errors import ArtifactError, ConfigError
from edgebench.runner.cache import Cache, code_fingerprint, key_path, signing_key

PACKAGE = Path(__file__).resolve().parents[2] / "edgebench"


def _copy(where: Path) -> Path:
    """A copy of the edgebench package under ``where`` (the folder holding ``edgebench/``): its root."""
    shutil.copytree(PACKAGE, where / "edgebench", ignore=shutil.ignore_patterns("__pycache__"))
    return where / "edgebench"


def _edit(package: Path, module: str) -> None:
    path = package / module
    path.write_text(path.read_text() + "\n\ndef _edited_helper() -> int:\n    return 1\n")


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Pristine copy, and copies with one helper edited each (none imported: fingerprinted from their files)."""
    out = {"pristine": _copy(tmp_path_factory.mktemp("pristine"))}
    for name, module in (("base", "compress/base.py"), ("hashed", "compress/hashed.py"), ("pgd", "attacks/pgd.py"),
                         ("noise", "attacks/_noise.py"), ("train", "models/train.py")):
        out[name] = _copy(tmp_path_factory.mktemp(name))
        _edit(out[name], module)
    return out


def test_fingerprint_hashes_content_not_location(copies: dict[str, Path]) -> None:
    from edgebench.compress import COMPRESSORS

    kbit = COMPRESSORS.get("kbit")
    here = code_fingerprint(kbit)
    assert here == code_fingerprint(kbit, package=copies["pristine"]) == code_fingerprint(kbit.__module__)
    assert here == code_fingerprint("edgebench.compress.kbit", "edgebench.compress.base")  # base is in the closure
    assert len(here) == 16 and here != code_fingerprint("edgebench.attacks.fgsm")


@pytest.mark.parametrize(("edited", "changes", "stays"), [
    # a helper a compression method imports: that method's variant key moves, an attack's and the model's do not
    ("base", ["edgebench.compress.kbit", "edgebench.compress.magnitude_pruning", "edgebench.defenses.mu_law"],
     ["edgebench.attacks.pgd", "edgebench.attacks.gaussian_noise", "edgebench.models.zoo"]),
    # the hashed layers: a defense that reaches into them moves; k-bit (which does not import them) stays
    ("hashed", ["edgebench.defenses.gradient_inhibition", "edgebench.defenses.base"],
     ["edgebench.compress.kbit", "edgebench.attacks.fgsm"]),
    # BIM is PGD with its own defaults: editing pgd.py moves BIM's key; FGSM's stays
    ("pgd", ["edgebench.attacks.bim", "edgebench.attacks.pgd"], ["edgebench.attacks.fgsm", "edgebench.compress.kbit"]),
    # the noise attacks' shared sampler
    ("noise", ["edgebench.attacks.gaussian_noise", "edgebench.attacks.uniform_noise"],
     ["edgebench.attacks.pgd", "edgebench.compress.inq"]),
    # the training loop (imported inside functions by the methods that fine-tune)
    ("train", ["edgebench.compress.inq", "edgebench.defenses.adversarial_training", "edgebench.models.train"],
     ["edgebench.attacks.apgd", "edgebench.models.zoo"]),
])
def test_editing_an_imported_helper_moves_exactly_the_keys_of_its_importers(
        copies: dict[str, Path], edited: str, changes: list[str], stays: list[str]) -> None:
    before, after = copies["pristine"], copies[edited]
    for module in changes:
        assert code_fingerprint(module, package=before) != code_fingerprint(module, package=after), module
    for module in stays:
        assert code_fingerprint(module, package=before) == code_fingerprint(module, package=after), module


def test_closure_follows_relative_and_function_level_imports(tmp_path: Path) -> None:
    root = tmp_path / "edgebench"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("from edgebench.errs import E\n")
    (root / "errs.py").write_text("class E(Exception):\n    pass\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "a.py").write_text("def f():\n    from . import b\n    return b.g()\n")
    (root / "sub" / "b.py").write_text("from ..util import h\n\ndef g():\n    return h()\n")
    (root / "util.py").write_text("import importlib\n\n\ndef h():\n"
                                  "    return importlib.import_module('edgebench.late')\n")
    (root / "late.py").write_text("from edgebench.multi import (  # a list over lines (this comment has a paren)\n"
                                  "    A,\n    B,\n)\nfrom edgebench.odd import (C,  # ) parses only in its file\n"
                                  "    D)\n")
    (root / "multi.py").write_text("A = B = 1\n")
    (root / "odd.py").write_text("C = D = 1\n")
    (root / "unrelated.py").write_text("Y = 2\n")

    def fp() -> str:
        return code_fingerprint("edgebench.sub.a", package=root)

    seen = {"start": fp()}
    for path in ("sub/b.py", "util.py", "late.py", "multi.py", "odd.py", "errs.py", "__init__.py", "sub/__init__.py"):
        (root / path).write_text((root / path).read_text() + "\n# edited\n")
        # a fresh copy of the tree: fingerprints are computed once per process and package folder
        copy = tmp_path / f"c{len(seen)}" / "edgebench"
        shutil.copytree(root, copy)
        seen[path] = code_fingerprint("edgebench.sub.a", package=copy)
    assert len(set(seen.values())) == len(seen), seen  # each edit moved the key
    quiet = tmp_path / "quiet" / "edgebench"
    shutil.copytree(root, quiet)
    (quiet / "unrelated.py").write_text("Y = 3\n")
    assert code_fingerprint("edgebench.sub.a", package=quiet) == seen["sub/__init__.py"]


# -- signed entries ---------------------------------------------------------------------------------------------
def _entry(cache: Cache, kind: str = "variant", key: str = "k1", payload: bytes = b"twin") -> Path:
    with cache.build(kind, key) as tmp:
        (tmp / "twin.pt").write_bytes(payload)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "meta.json").write_text("{}")
    return cache.path(kind, key)


def _rewrite(entry: Path, **changes: object) -> None:
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest.update(changes)
    manifest = {k: v for k, v in manifest.items() if v is not None}
    (entry / "manifest.json").write_text(json.dumps(manifest))


def test_key_is_made_once_private_and_signs_every_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEBENCH_CONFIG", str(tmp_path / "conf"))
    assert key_path() == tmp_path / "conf" / "cache.key"
    entry = _entry(Cache(tmp_path / "c"))
    key = key_path()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes().strip()) == 64
    assert signing_key() == signing_key() == key.read_bytes().strip()
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["files"] == {"twin.pt": hashlib.sha256(b"twin").hexdigest(),
                                 "sub/meta.json": hashlib.sha256(b"{}").hexdigest()}
    blob = json.dumps({"kind": "variant", "key": "k1", "files": manifest["files"]}, sort_keys=True,
                      separators=(",", ":"))
    assert manifest["signature"] == hmac.new(key.read_bytes().strip(), blob.encode(), hashlib.sha256).hexdigest()
    assert Cache(tmp_path / "c").get("variant", "k1") == entry  # a second process (same key) uses it


def test_key_location_follows_xdg_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGEBENCH_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert key_path() == tmp_path / "xdg" / "edgebench" / "cache.key"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert key_path() == tmp_path / "home" / ".config" / "edgebench" / "cache.key"


def test_a_key_others_can_read_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "cache.key"
    signing_key(path)
    path.chmod(0o644)
    with pytest.raises(ConfigError) as err:
        _entry(Cache(tmp_path / "c", key=path))
    assert str(err.value) == f"{path}: the cache signing key is open to other users (mode 644); run chmod 600 {path}"
    path.chmod(0o600)
    assert Cache(tmp_path / "c", key=path).get("variant", "k1") is None
    _entry(Cache(tmp_path / "c", key=path))


@pytest.mark.parametrize("forgery", ["no signature", "wrong signature", "other key", "other address", "extra file"])
def test_an_entry_that_fails_its_signature_is_a_miss_and_removed(tmp_path: Path, forgery: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    cache = Cache(tmp_path / "c")
    entry = _entry(cache)
    if forgery == "no signature":
        _rewrite(entry, signature=None)
    elif forgery == "wrong signature":
        _rewrite(entry, signature="0" * 64)
    elif forgery == "other key":  # a valid entry of someone else's cache
        entry = _entry(Cache(tmp_path / "c", key=tmp_path / "other.key"), key="k2")
    elif forgery == "other address":  # a signed entry moved under another key
        entry = entry.rename(entry.parent / "k2")
    else:
        (entry / "sitecustomize.py").write_text("import os\n")
    reason = "does not match its manifest" if forgery == "extra file" else "is not signed with this machine's"
    with caplog.at_level("WARNING", logger="edgebench.runner.cache"):
        assert cache.get("variant", "k2" if forgery in ("other key", "other address") else "k1") is None
        assert cache.get("variant", entry.name) is None  # gone now: no second line
    assert not entry.exists()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith(f"cache: {entry} ") and reason in lines[0], lines
    rebuilt = _entry(cache, key=entry.name)
    assert cache.get("variant", entry.name) == rebuilt


def test_shipped_entry_is_checked_then_signed_by_the_receiver(tmp_path: Path) -> None:
    """Ray without a shared folder: an entry packed by the scheduler (its key) is published on a node with
    another key, after its files are checked against the manifest it came with, and is usable there."""
    sender, receiver = Cache(tmp_path / "a", key=tmp_path / "a.key"), Cache(tmp_path / "b", key=tmp_path / "b.key")
    _entry(sender)
    blob = sender.pack("variant", "k1")
    assert receiver.unpack("variant", "k1", blob) == receiver.path("variant", "k1")
    assert receiver.get("variant", "k1") is not None and receiver.signed("variant", "k1")
    assert (receiver.path("variant", "k1") / "twin.pt").read_bytes() == b"twin"
    assert json.loads((receiver.path("variant", "k1") / "manifest.json").read_text())["signature"] != \
        json.loads((sender.path("variant", "k1") / "manifest.json").read_text())["signature"]
    # a blob whose files differ from its manifest is refused, and an unsigned entry is never shipped
    _rewrite(sender.path("variant", "k1"), files={"twin.pt": "0" * 64, "sub/meta.json": "0" * 64})
    with pytest.raises(ArtifactError, match="not signed"):
        sender.pack("variant", "k1")
    import io
    import tarfile

    (_entry(sender, key="k3") / "twin.pt").write_bytes(b"evil")  # changed after it was signed
    tampered = io.BytesIO()
    with tarfile.open(fileobj=tampered, mode="w") as tar:
        tar.add(sender.path("variant", "k3"), arcname=".")
    with pytest.raises(ArtifactError, match="arrived damaged"):
        receiver.unpack("variant", "k3", tampered.getvalue())
    assert receiver.get("variant", "k3") is None
