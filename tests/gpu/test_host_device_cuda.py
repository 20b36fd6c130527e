"""A tiny digits plan with ``[host] device = "cuda"`` end to end on a GPU: every torch host stage records the CUDA
device that computed it, and the exported ONNX file answers within the parity tolerance of the same plan's CPU
run (cache keys hold no device, so the CPU run gets its own cache to compute again). Skipped where torch sees no
CUDA device."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.slow, pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA device: torch sees none on this machine")]

PLAN = """
[plan]
name = "cuda"
[data]
dataset = "digits"
n_train = 400
n_test = 100
[[models]]
name = "cnn"
arch = "digits_cnn"
train = { epochs = 2, batch_size = 32 }
[[attacks]]
name = "pgd"
eps = [0.1]
n = 50
[export]
openvino = false
[host]
device = "cuda"
"""


def _run(tmp: Path, sub: str, device: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, dict]]:
    from edgebench.config import load_plan
    from edgebench.runner.pipeline import run_plan
    from edgebench.store import Store

    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp / sub / "cache"))
    (tmp / "plan.toml").write_text(PLAN)
    summary = run_plan(load_plan(tmp / "plan.toml"), out_dir=tmp / sub / "reports", device=device)
    assert not summary.failed, summary.failed
    with Store.open(summary.run_dir / "results.sqlite", create=False) as store:
        info = {s["stage"]: s["info"] for s in store.stages(summary.run_id)}
        onnx = next(a["path"] for a in store.artifacts(summary.run_id) if a["format"] == "onnx")
    return Path(onnx), info


def test_cuda_run_records_cuda_and_exports_within_parity_of_a_cpu_run(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort

    gpu_onnx, gpu_info = _run(tmp_path, "gpu", "cuda", monkeypatch)
    for stage in ("model/cnn", "craft/cnn/pgd"):
        dev = gpu_info[stage]["device"]
        assert dev["device"].startswith("cuda") and dev["cuda"] and dev["memory_mb"] > 0, dev
        assert dev["name"] == torch.cuda.get_device_name(0)
    cpu_onnx, cpu_info = _run(tmp_path, "cpu", "cpu", monkeypatch)
    assert cpu_info["model/cnn"]["device"]["device"] == "cpu"
    x = np.random.default_rng(0).random((16, 1, 8, 8), dtype=np.float32)
    outs = []
    for path in (gpu_onnx, cpu_onnx):
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outs.append(sess.run(None, {sess.get_inputs()[0].name: x})[0])
    assert outs[0].shape == outs[1].shape
    # float rounding differs between the devices' training: the same predictions, nearly always
    assert (outs[0].argmax(1) == outs[1].argmax(1)).mean() >= 0.9
    # the GPU run's file is its twin's graph: its stored (CPU) weights on the CPU give the same logits
    from edgebench.config import load_plan
    from edgebench.runner.build import base_builder
    from edgebench.runner.cache import Cache
    from edgebench.runner.context import RunContext
    from edgebench.runner.dataset import load_data

    ctx = RunContext(plan=load_plan(tmp_path / "plan.toml"), cache=Cache(tmp_path / "twin-cache"), run_id="x",
                     run_dir=tmp_path)
    load_data(ctx)
    twin = base_builder(ctx, ctx.spec("cnn"))()
    state = torch.load(next((tmp_path / "gpu" / "cache").rglob("model.pt")), map_location="cpu", weights_only=True)
    assert all(v.device.type == "cpu" for v in state.values())  # stored from the CPU
    twin.load_state_dict(state)
    with torch.no_grad():
        ref = twin.eval()(torch.from_numpy(x)).numpy()
    assert np.abs(outs[0] - ref).max() < 1e-4
