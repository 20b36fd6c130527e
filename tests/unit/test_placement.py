"""The placement helpers (:mod:`edgebench.models.placement`) and every host stage on a model that is not a float32
CPU model: in float64, each stage must follow the model (inputs, constants and masks made in the model's dtype) and
give the float32 run's values within the stage's tolerance (``tests/fixtures/stages.py``). This is the CPU's stand-in
for the CUDA run of the same stages (``tests/gpu/test_stages_cuda.py``): a tensor made without ``dtype=`` from the
model is, in the same line, usually made without ``device=`` too."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from edgebench.models.placement import (
    CPU,
    cpu_copy,
    cpu_state,
    example_input,
    model_device,
    model_dtype,
    numpy_of,
    to_device,
    to_model,
)
from tests.fixtures.models import dataset
from tests.fixtures.stages import STAGES, base_model, compare


def test_model_device_and_dtype_follow_parameters_then_buffers() -> None:
    assert model_device(nn.Linear(2, 2, device="meta")) == torch.device("meta")
    bn_only = nn.Module()
    bn_only.register_buffer("b", torch.zeros(1, dtype=torch.float64, device="meta"))
    assert model_device(bn_only) == torch.device("meta") and model_dtype(bn_only) == torch.float64
    assert model_device(nn.ReLU()) == CPU and model_dtype(nn.ReLU()) == torch.float32
    assert model_dtype(nn.Linear(2, 2).double()) == torch.float64


def test_batches_take_the_model_dtype_and_labels_int64() -> None:
    model = nn.Linear(3, 2).double()
    x, y = to_model(model, np.ones((4, 3), np.float32), np.arange(4, dtype=np.int32))
    assert (x.dtype, y.dtype, x.device) == (torch.float64, torch.int64, CPU)
    assert to_model(model, np.ones((1, 3), np.float32)).shape == (1, 3)
    assert to_device(torch.ones(2), torch.device("meta")).device == torch.device("meta")
    assert example_input(model, (3,)).dtype == torch.float64
    assert numpy_of(torch.ones(2, requires_grad=True) * 2).tolist() == [2.0, 2.0]


def test_cpu_state_reaches_nested_tensors_and_cpu_copy_is_identity_on_cpu() -> None:
    opt = torch.optim.Adam(nn.Linear(2, 2).parameters())
    state = cpu_state({"opt": opt.state_dict(), "list": [torch.ones(1, requires_grad=True)], "n": 3})
    assert state["n"] == 3 and not state["list"][0].requires_grad
    model = nn.Linear(2, 2)
    assert cpu_copy(model) is model


@pytest.fixture(scope="module")
def digits():
    return dataset("digits")


@pytest.mark.parametrize("stage", [s for s in STAGES if s.float64_same], ids=lambda s: s.name)
def test_every_stage_follows_a_float64_model(stage, digits, tmp_path) -> None:
    base = base_model(stage.arch)
    ref = stage.run(copy.deepcopy(base), digits, tmp_path / "f32")
    model = copy.deepcopy(base).double()
    got = stage.run(model, digits, tmp_path / "f64")
    assert model_dtype(model) == torch.float64  # the stage left the given model as it was
    compare(stage, ref, got)
