"""End to end through the CLI: ONNX files as users bring them (issue 17 §2), exported in the test from one trained
digits_cnn, imported as ``[[models]] onnx = ...`` entries beside the same network exported the normal way (the
``ref`` entry, its checkpoint), and measured on the local target with both backends. Every file's clean and
(transfer) robust accuracy equals ``ref``'s; a file with a fixed batch of 4 is timed per batch of 4; a file
edgebench cannot use ends its stage in one line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import torch

from edgebench.agent.protocol import sha256_file
from edgebench.cli import main
from tests.fixtures.userfiles import CASES, export_case

PLAN = """
[plan]
name = "files"
[data]
dataset = "digits"
[[models]]
name = "ref"
arch = "digits_cnn"
checkpoint = "{ckpt}"
{models}
[measure]
warmup = 2
min_runs = 10
min_duration_s = 0.02
rounds = 2
profile_runs = 0
[export]
openvino = false             # ref's ONNX file on both backends, as the imported files
[[attacks]]
name = "fgsm"
eps = [0.1]
n = 60
[[targets]]
target = "local"
backends = ["onnxruntime", "openvino"]
"""


def _plan(tmp_path: Path, ckpt: Path, entries: dict[str, tuple[Path, dict]]) -> Path:
    models = ""
    for name, (path, keys) in entries.items():
        models += f'[[models]]\nname = "{name}"\nonnx = "{path}"\nattack_source = "ref"\n'
        models += "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(ckpt=ckpt, models=models))
    return plan


@pytest.mark.slow
def test_every_file_measures_like_the_model_exported_the_normal_way(tmp_path: Path) -> None:
    from tests.fixtures.models import trained

    model = trained("digits_cnn", epochs=5, seed=0)
    ckpt = tmp_path / "ref.pt"
    torch.save(model.state_dict(), ckpt)
    entries = {case.replace("_", "-"): export_case(model, case, tmp_path, (1, 8, 8)) for case in CASES}
    out = tmp_path / "reports"
    assert main(["run", str(_plan(tmp_path, ckpt, entries)), "--out", str(out)]) == 0
    (run_dir,) = [p.parent for p in out.glob("*/results.sqlite")]
    records = json.loads((run_dir / "results.json").read_text())
    with sqlite3.connect(run_dir / "results.sqlite") as db:  # every file measured is the user's, byte for byte
        stored = dict(db.execute("SELECT model, sha256 FROM artifacts WHERE model != 'ref'").fetchall())
    assert stored == {name: sha256_file(path) for name, (path, _) in entries.items()}
    for backend in ("onnxruntime", "openvino"):
        ref = {r["attack"]: r for r in records if r["model"] == "ref" and r["backend"] == backend}
        assert ref["none"]["clean_acc"] > 0.9 and ref["fgsm"]["robust_acc"] < ref["none"]["clean_acc"]
        for name in entries:
            mine = {r["attack"]: r for r in records if r["model"] == name and r["backend"] == backend}
            assert mine["none"]["clean_acc"] == ref["none"]["clean_acc"], (name, backend)
            assert mine["fgsm"]["robust_acc"] == ref["fgsm"]["robust_acc"], (name, backend)
            assert mine["fgsm"]["threat"] == "transfer" and mine["none"]["p50_ms"] > 0
    # the fixed batch of 4: chunks of 4 in the agent, timed per batch of 4, said in the report
    for backend in ("onnxruntime", "openvino"):
        device = json.loads((run_dir / "raw" / f"local_{backend}_batch4" / "result.json").read_text())
        assert device["fixed_batch"] == 4 and device["backend"]["fixed_batch"] == 4
        rounds = json.loads((run_dir / "raw" / f"latency_local_{backend}" / "result.json").read_text())
        batch = {v["name"]: v["latency"]["batch"] for v in rounds["variants"]}
        assert batch["batch4"] == 4 and batch["ref"] == batch["nhwc"] == batch["batch1"] == 1
        nhwc = json.loads((run_dir / "raw" / f"local_{backend}_nhwc" / "result.json").read_text())
        assert nhwc["backend"]["io"] == {"layout": "nhwc"} and nhwc["fixed_batch"] == 1
    report = (run_dir / "report.md").read_text()
    assert ("batch4: imported ONNX file, input 'image' 4×1×8×8 (NCHW); fixed batch 4: the accuracy pass runs in "
            "chunks of exactly 4, the last padded and the padding's outputs dropped; latency and energy are per "
            "call, i.e. per batch of 4.") in report
    assert "nhwc: imported ONNX file, input 'image' 1×8×8×1 (NHWC); fixed batch 1" in report
    assert "softmax: imported ONNX file" in report and "read as log-probabilities" in report


def test_a_file_it_cannot_use_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgebench.models import create_model

    model = create_model("digits_cnn", input_shape=(1, 8, 8), num_classes=10)
    ckpt = tmp_path / "ref.pt"
    torch.save(model.state_dict(), ckpt)
    path, _ = export_case(model, "nhwc", tmp_path, (1, 8, 8))  # an NHWC file, the entry says nothing
    plan = _plan(tmp_path, ckpt, {"vendor": (path, {})})
    capsys.readouterr()
    assert main(["run", str(plan), "--out", str(tmp_path / "reports")]) != 0
    err = capsys.readouterr().err
    line = (f"{plan}: models[vendor].onnx: {path}: input 'image' has shape 1×8×8×1, which is NHWC for the data's "
            "1×8×8 samples: set layout = \"nhwc\"")
    assert line in err and "Traceback" not in err
    assert [ln for ln in err.splitlines() if "nhwc" in ln.lower()] == [next(ln for ln in err.splitlines()
                                                                             if line in ln)]


@pytest.mark.slow
def test_the_boundary_in_the_shipped_agent_on_python_3_8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file with every difference at once (fixed batch 4, NHWC, [0, 255], a softmax ending) measured by the agent
    bundle under JetPack 5's Python 3.8 (numpy 1.24, no torch): the host's logits through the same boundary."""
    import numpy as np

    from edgebench.agent.protocol import Job, LatencyProtocol, sha256_file
    from edgebench.agent.protocol import TestSet as TS  # not collected by pytest
    from edgebench.export.onnx_io import inspect_onnx
    from edgebench.models import create_model
    from edgebench.runtime import create_backend
    from edgebench.targets import load_target, open_transport
    from tests.fixtures.devices import device_venv
    from tests.fixtures.userfiles import NHWC, Ranged, Softmaxed, export
    from tests.integration.test_device_pythons import ORT, PINS

    python = device_venv((3, 8), PINS[(3, 8)])
    torch.manual_seed(0)
    model = Softmaxed(NHWC(Ranged(create_model("digits_cnn", input_shape=(1, 8, 8), num_classes=10), 0, 255)))
    path = export(model, tmp_path / "vendor.onnx", (4, 8, 8, 1))
    io = inspect_onnx(path, {"layout": "nhwc", "input_range": [0, 255]}, (1, 8, 8), where="t")["io"]
    assert io == {"layout": "nhwc", "input_range": [0.0, 255.0], "scores": "probabilities"}
    x = np.random.default_rng(0).random((30, 1, 8, 8), dtype=np.float32)
    np.savez(tmp_path / "set.npz", x=x, y=np.zeros(30, dtype=np.int64))
    host = create_backend("onnxruntime", io=io, **ORT)
    host.load(path)
    target_file = tmp_path / "board.toml"
    target_file.write_text(f'[target]\nname = "board"\ntransport = "local"\npython = "{python}"\ntimeout_s = 300\n'
                           "[backends.onnxruntime]\n")
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the device sees the bundle only
    job = Job(job_id="py38", artifact=str(path), backend="onnxruntime", output_dir="unused", io=io,
              testsets=(TS("set", str(tmp_path / "set.npz")),), backend_options=dict(ORT), batch_size=8,
              latency=LatencyProtocol(warmup=2, min_runs=10, min_duration_s=0.01), artifact_sha256=sha256_file(path))
    with open_transport(load_target(str(target_file)), cache_dir=tmp_path / "bundle") as t:
        result, out = t.run_job(job, tmp_path / "out")
    assert result["status"] == "ok" and result["torch_loaded"] is False, result.get("error")
    assert result["environment"]["before"]["python"].startswith("3.8.")
    assert result["fixed_batch"] == 4 and result["latency"]["batch"] == 4
    np.testing.assert_allclose(np.load(out / "set-0.npy"), host.predict(x), atol=1e-5)
