"""What runs where: the agent bundle holds exactly the device side (its folders and a few torch-free shared
modules) and nothing else, it is self-contained and torch-free, and host code reaches the device side only
through public names."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import edgebench
from edgebench.agent.protocol import MIN_PYTHON
from edgebench.targets.bundle import bundle_bytes

PACKAGE = Path(edgebench.__file__).resolve().parent
REPO = PACKAGE.parent
#: DESIGN.md's device side: these folders hold device code only, and all of it ships
DEVICE_FOLDERS = ("runtime", "agent", "sensors", "blackbox")
#: modules of host folders that the device may import: torch-free, pure, listed here on purpose
SHARED = ("__init__.py", "errors.py", "registry.py", "metrics/__init__.py", "metrics/latency.py", "metrics/energy.py")


def _device_files() -> set[str]:
    found = {f"edgebench/{p.relative_to(PACKAGE).as_posix()}" for folder in DEVICE_FOLDERS
             for p in (PACKAGE / folder).rglob("*.py")}
    return found | {f"edgebench/{m}" for m in SHARED}


def _bundle() -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle_bytes())) as z:
        return {n: z.read(n) for n in z.namelist()}


def _module_name(member: str) -> str:
    return member[:-3].replace("/", ".").removesuffix(".__init__")


def _imports(tree: ast.AST) -> list[tuple[str, list[str], int]]:
    """Every absolute import of the tree, inside functions too: ``(module, names imported from it, line)``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.module, [a.name for a in node.names], node.lineno))
    return out


def test_the_bundle_holds_exactly_the_device_modules() -> None:
    members = _bundle()
    assert members.pop("__main__.py").startswith(b"import sys")
    assert set(members) == _device_files()
    assert not any(m.startswith(("edgebench/targets/", "edgebench/runner/")) for m in members)
    assert {"edgebench/sensors/rapl.py", "edgebench/agent/protocol.py", "edgebench/runtime/onnxruntime.py"} <= set(
        members)


def _is_module(dotted: str) -> bool:
    path = REPO / dotted.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_the_bundle_is_self_contained() -> None:
    """Every edgebench module a bundled module imports (inside functions too) is in the bundle."""
    members = _bundle()
    modules = {_module_name(m) for m in members if m.endswith(".py") and m.startswith("edgebench/")}
    missing = []
    for member, src in members.items():
        for module, names, line in _imports(ast.parse(src, member)):
            if module.split(".")[0] != "edgebench":
                continue
            wanted = [module] + [f"{module}.{n}" for n in names if _is_module(f"{module}.{n}")]
            missing += [f"{member}:{line} imports {w}" for w in wanted if w not in modules]
    assert not missing, missing


def test_every_bundled_module_imports_from_the_bundle_alone_without_torch(tmp_path: Path) -> None:
    """In a fresh interpreter whose path starts with the bundle: every module loads from the zip (none falls
    back to the installed package) and torch is never imported, though this interpreter has it."""
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(bundle_bytes())
    names = sorted(_module_name(m) for m in _bundle() if m.startswith("edgebench/"))
    code = (f"import importlib, sys\nsys.path.insert(0, {str(pyz)!r})\nnames = {names!r}\n"
            "for name in names:\n    importlib.import_module(name)\n"
            "from edgebench.sensors import SENSORS\nfrom edgebench.runtime import BACKENDS\n"
            "assert len(SENSORS.names()) == 6 and 'onnxruntime' in BACKENDS.names()\n"
            f"outside = [m for m, mod in sys.modules.items() if m.startswith('edgebench') and {str(pyz)!r} not in "
            "(getattr(mod, '__file__', None) or '')]\n"
            "assert not outside, outside\nassert 'torch' not in sys.modules\nprint(len(names))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) == len(names) > 20


def test_every_bundled_module_parses_as_the_oldest_device_python() -> None:
    """Syntax newer than :data:`MIN_PYTHON` (``match``, parenthesised context managers, ...) fails here, on any
    host; tests/integration/test_device_pythons.py runs the bundle on real 3.8 and 3.9 interpreters."""
    bad = []
    for member, src in _bundle().items():
        try:
            ast.parse(src, member, feature_version=MIN_PYTHON)
        except SyntaxError as exc:
            bad.append(f"{member}:{exc.lineno}: {exc.msg}")
    assert not bad, bad
    with pytest.raises(SyntaxError):
        ast.parse("match x:\n    case 1:\n        pass\n", feature_version=MIN_PYTHON)


def _host_files() -> list[Path]:
    device = {PACKAGE / f for f in DEVICE_FOLDERS}
    host = [p for p in PACKAGE.rglob("*.py") if not any(d in p.parents for d in device)]
    return sorted(host + list((REPO / "bench").glob("*.py")))


def _private(dotted: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in dotted.split("."))


def _is_device(module: str) -> bool:
    parts = module.split(".")
    return len(parts) > 1 and parts[0] == "edgebench" and parts[1] in DEVICE_FOLDERS


def private_device_imports(path: Path) -> list[str]:
    """Where ``path`` reaches a private (underscore) name of the device side: a private module, a private name
    imported from a device module, or a private attribute of a device module bound to a name."""
    tree = ast.parse(path.read_text(), str(path))
    found, bound = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if _is_device(a.name):
                    # ``import a.b.c`` binds ``a`` (the package); ``import a.b.c as n`` binds the module
                    bound[a.asname or "edgebench"] = a.name if a.asname else "edgebench"
                    if _private(a.name):
                        found.append(f"{path.name}:{node.lineno} imports {a.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level and _is_device(node.module):
            for a in node.names:
                if _private(f"{node.module}.{a.name}"):
                    found.append(f"{path.name}:{node.lineno} imports {a.name} from {node.module}")
                bound[a.asname or a.name] = f"{node.module}.{a.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain, base = [node.attr], node.value
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in bound:
                full = ".".join([bound[base.id], *reversed(chain)])
                if _is_device(full) and _private(".".join(reversed(chain))):
                    found.append(f"{path.name}:{node.lineno} uses {'.'.join([base.id, *reversed(chain)])}")
    return sorted(set(found))


def test_no_host_module_imports_a_private_device_helper() -> None:
    files = _host_files()
    assert len(files) > 50 and PACKAGE / "targets" / "bundle.py" in files and PACKAGE / "runner" / "cache.py" in files
    assert not [hit for f in files for hit in private_device_imports(f)]


def test_the_private_import_scan_finds_each_kind(tmp_path: Path) -> None:
    """The scan above is not vacuous: each way of reaching a private helper is caught, public names are not."""
    src = tmp_path / "host.py"
    src.write_text(
        "from edgebench.agent.job import latency_pass, _energy_pass\n"
        "import edgebench.agent.job as job, edgebench.runtime\n"
        "from edgebench.sensors import sampler, base\n"
        "from edgebench.agent.protocol import sha256_file\n"
        "from edgebench.attacks.base import _private_is_fine_outside_the_device_side\n"
        "def f():\n"
        "    import edgebench.sensors._hidden\n"
        "    return job._locked, sampler.PowerSampler, base.PowerSensor._unavailable, sha256_file\n"
        "y = edgebench.runtime.BACKENDS\n"
        "x = edgebench.runtime._x, edgebench.attacks._gradient\n"
    )
    assert set(private_device_imports(src)) == {
        "host.py:1 imports _energy_pass from edgebench.agent.job",
        "host.py:7 imports edgebench.sensors._hidden",
        "host.py:8 uses base.PowerSensor._unavailable",
        "host.py:8 uses job._locked",
        "host.py:10 uses edgebench.runtime._x",
    }
