"""Every host stage on CUDA against the same call on the CPU (issue 18, "Every host stage runs there"): training,
each compression method and defense, the statistics, the gradient checks and FGSM, PGD, CW and Square (host side)
on a tiny model placed on the GPU give the CPU run's integers and masks and its floats within the stage's stated
tolerance (``tests/fixtures/stages.py``), return their values on the CPU, and leave the model on its device.
Files: an ONNX export of a GPU twin is the CPU export's graph, its parity runs on the GPU, a cached twin and an
adversarial-training checkpoint hold CPU tensors. Skipped without CUDA (``conftest.py``)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from edgebench.models.placement import CPU, model_device
from tests.fixtures.models import dataset
from tests.fixtures.stages import STAGES, base_model, compare, context

CUDA = torch.device("cuda", 0)


@pytest.fixture(scope="module")
def digits():
    return dataset("digits")


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_stage_on_cuda_matches_the_cpu(stage, digits, tmp_path) -> None:
    base = base_model(stage.arch)
    ref = stage.run(copy.deepcopy(base), digits, tmp_path / "cpu")
    model = copy.deepcopy(base).to(CUDA)
    got = stage.run(model, digits, tmp_path / "cuda")
    assert model_device(model) == CUDA  # the stage did not move the model it was given
    compare(stage, ref, got)


def test_variant_twins_stay_on_the_gpu_and_are_cached_on_the_cpu(digits, tmp_path) -> None:
    from edgebench.variants import create_method

    model = base_model("digits_cnn").to(CUDA)
    method = create_method("compress", "kbit", bits=4)
    twin = method.apply(model, context(digits)).model
    assert model_device(twin) == CUDA
    method.save_twin(twin, tmp_path / "twin.pt")
    loaded = method.load_twin(tmp_path / "twin.pt", model)
    assert {t.device for t in loaded.state_dict().values()} == {CPU}
    assert model_device(twin) == CUDA  # saving copied it


def test_adversarial_training_checkpoints_hold_cpu_tensors(digits, tmp_path) -> None:
    from edgebench.variants import create_method

    model = base_model("digits_cnn").to(CUDA)
    create_method("defend", "adversarial_training", eps=0.1, epochs=1, steps=2).apply(model, context(digits, tmp_path))
    (ckpt,) = tmp_path.glob("adversarial_training-*/epoch-*.pt")
    state = torch.load(ckpt, weights_only=True)  # no map_location: the file itself is on the CPU
    assert {t.device for t in state["model"].values()} == {CPU}


def test_int8_says_why_it_runs_on_the_cpu() -> None:
    from edgebench.compress.int8 import Int8

    assert "CUDA" in Int8.cpu_only


def test_onnx_export_of_a_gpu_twin_is_the_cpu_export_and_parity_runs_on_the_gpu(digits, tmp_path) -> None:
    import onnx

    from edgebench.export.onnx import export_onnx, onnx_parity

    base = base_model("digits_cnn")
    on_cpu = onnx.load(str(export_onnx(copy.deepcopy(base), digits.shape, tmp_path / "cpu.onnx")))
    model = copy.deepcopy(base).to(CUDA)
    on_gpu = onnx.load(str(export_onnx(model, digits.shape, tmp_path / "gpu.onnx")))
    assert model_device(model) == CUDA
    assert [n.op_type for n in on_gpu.graph.node] == [n.op_type for n in on_cpu.graph.node]
    init_cpu = {i.name: onnx.numpy_helper.to_array(i) for i in on_cpu.graph.initializer}
    init_gpu = {i.name: onnx.numpy_helper.to_array(i) for i in on_gpu.graph.initializer}
    assert init_gpu.keys() == init_cpu.keys()
    assert all(np.array_equal(init_gpu[k], init_cpu[k]) for k in init_cpu)
    parity = onnx_parity(model, tmp_path / "gpu.onnx", digits.x_test[:64])
    assert parity["ok"] and parity["n"] == 64, parity
