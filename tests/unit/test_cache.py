"""The artifact cache: keys that follow the code a stage runs (its import closure)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgebench.runner.cache import code_fingerprint

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
