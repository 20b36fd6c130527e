"""The query attacks on the oldest device Python: the agent bundle's ``edgebench.blackbox`` imported from the zip in a
Python 3.8 virtual environment holding only numpy and onnxruntime (JetPack 5's Python; the pins of
test_device_pythons.py), attacking an ONNX Runtime session of an exported model, gives this host's result for the
same seed: Square exactly (numpy's ``default_rng`` draws the same on both; the predict calls are the same runtime
on the same file), and no torch is imported. Skipped with a reason where that Python or the registry is absent."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgebench.blackbox import run_query_attack
from edgebench.targets.bundle import build_bundle
from tests.fixtures.devices import device_venv
from tests.integration.test_device_pythons import ORT, PINS

SQUARE = {"norm": "linf", "max_queries": 60, "seed": 0}
HSJ = {"norm": "l2", "max_queries": 300, "max_iter": 2, "seed": 0}

_DEVICE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from edgebench.blackbox import run_query_attack
from edgebench.runtime import create_backend
backend = create_backend("onnxruntime", intra_op_num_threads=1, inter_op_num_threads=1)
backend.load(sys.argv[2])
data = np.load(sys.argv[3])
out = {}
for name, params, eps in json.loads(sys.argv[4]):
    r = run_query_attack(name, params, backend.predict, data["x"], data["y"], eps)
    out[name] = {"success": r.success.tolist(), "queries": r.queries.tolist(), "x_adv": r.x_adv.tolist()}
assert "torch" not in sys.modules
print(json.dumps({"python": sys.version.split()[0], "results": out}))
"""


@pytest.mark.slow
def test_query_attacks_run_on_the_oldest_device_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgebench.export.onnx import export_onnx
    from edgebench.runtime import create_backend
    from tests.fixtures.models import dataset, trained
    from tests.unit.test_blackbox import _mlp

    version = min(PINS)
    python = device_venv(version, PINS[version])
    monkeypatch.delenv("PYTHONPATH", raising=False)
    model = export_onnx(trained("mlp64", epochs=20, factory=_mlp), (1, 8, 8), tmp_path / "mlp.onnx")
    ds = dataset("digits")
    np.savez(tmp_path / "set.npz", x=ds.x_test[:30], y=ds.y_test[:30])
    bundle = build_bundle(tmp_path / "bundle")
    runs = [("square", SQUARE, [0.1]), ("hopskipjump", HSJ, [1.0])]
    proc = subprocess.run([str(python), "-c", _DEVICE, str(bundle), str(model), str(tmp_path / "set.npz"),
                           json.dumps(runs)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    device = json.loads(proc.stdout)
    assert device["python"].startswith("3.8.")
    host = create_backend("onnxruntime", **ORT)
    host.load(model)
    for name, params, eps in runs:
        ours = run_query_attack(name, params, host.predict, ds.x_test[:30], ds.y_test[:30], eps)
        got = device["results"][name]
        if name == "square":  # random search on scores: the same draws and the same kernels give the same run
            np.testing.assert_array_equal(np.array(got["queries"]), ours.queries)
            np.testing.assert_allclose(np.array(got["x_adv"], dtype=np.float32), ours.x_adv, atol=1e-6)
        assert abs(np.mean(got["success"]) - ours.success.mean()) <= 0.1, name
        assert np.max(got["queries"]) <= params["max_queries"]
