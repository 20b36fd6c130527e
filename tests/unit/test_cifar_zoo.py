"""The seeds' CIFAR-10 networks and the poster's architectures at full width: Table I's layer counts, the sizes
their docstrings state, forward shapes on 3×32×32, ONNX export equivalence."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

from edgebench.compress.stats import count_macs, param_stats
from edgebench.errors import ConfigError
from edgebench.export.onnx import export_onnx
from edgebench.models import MODELS, create_model

SEED000 = ["liu2018_dnn1", "liu2018_dnn2", "liu2018_dnn3", "liu2018_vgg16"]
FULL = ["mobilenet_v1_cifar", "densenet121_cifar", "resnet50_cifar", "vgg19_cifar"]
SMALL_ENOUGH = SEED000 + ["mobilenet_v1_cifar", "vgg19_cifar"]  # built, run and exported in a few seconds
BIG = ["densenet121_cifar", "resnet50_cifar", "song2020_wrn32"]  # 7-46 M parameters, 0.9-6.6 G MACs
SHAPE = (3, 32, 32)


def _stated(name: str) -> tuple[int, int]:
    """(parameters, MACs) as the model's docstring states them: "N parameters, … MACs (M)"."""
    doc = " ".join((MODELS.get(name).__doc__ or "").split())
    m = re.search(r"([\d ]+) parameters, [\d.]+ [MG] MACs \(([\d ]+)\)", doc)
    assert m, f"{name}: the docstring states no 'N parameters, x MACs (M)'"
    return int(m.group(1).replace(" ", "")), int(m.group(2).replace(" ", ""))


def test_registered_beside_the_thinned_copies() -> None:
    names = set(MODELS.names())
    assert set(SEED000 + FULL + ["song2020_wrn32"]) <= names
    assert {"mobilenet_v1_small", "densenet121_small", "resnet50_small", "vgg19_small"} <= names


def _check_size(name: str) -> None:
    m = create_model(name, input_shape=SHAPE, num_classes=10)
    assert (param_stats(m)["params"], count_macs(m, SHAPE)) == _stated(name)


@pytest.mark.parametrize("name", SMALL_ENOUGH)
def test_sizes_match_the_docstrings(name) -> None:
    _check_size(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", BIG)
def test_sizes_match_the_docstrings_big(name) -> None:
    _check_size(name)


def _count(model: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


@pytest.mark.parametrize(("name", "convs", "fcs", "pools"), [
    ("liu2018_dnn1", 4, 2, 2), ("liu2018_dnn2", 6, 2, 3), ("liu2018_dnn3", 9, 2, 3), ("liu2018_vgg16", 13, 3, 5)])
def test_seed000_table_i_layer_counts(name, convs, fcs, pools) -> None:
    m = create_model(name, input_shape=SHAPE, num_classes=10)
    assert (_count(m, nn.Conv2d), _count(m, nn.Linear), _count(m, nn.MaxPool2d)) == (convs, fcs, pools)
    assert _count(m, nn.ReLU) == convs + fcs - 1  # every conv and hidden FC layer is a ReLU layer


def test_wide_resnet32_structure() -> None:
    m = create_model("song2020_wrn32", input_shape=SHAPE, num_classes=10, widen=1)
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert len(convs) + _count(m, nn.Linear) == 32  # stem + 3 stages × 5 units × 2 + the classifier
    assert [c.out_channels for c in convs[1::10]] == [16, 32, 64]
    wide = create_model("song2020_wrn32", input_shape=SHAPE, num_classes=10, widen=2)
    assert sorted({c.out_channels for c in wide.modules() if isinstance(c, nn.Conv2d)}) == [16, 32, 64, 128]
    for bad in (0, 2.5, True):
        with pytest.raises(ConfigError, match="widen must be an integer >= 1"):
            create_model("song2020_wrn32", input_shape=SHAPE, num_classes=10, widen=bad)


def test_full_width_structure() -> None:
    mn = create_model("mobilenet_v1_cifar", input_shape=SHAPE, num_classes=10)
    dw = [m for m in mn.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(dw) == 13 and [m.stride[0] for m in dw].count(2) == 4 and dw[-1].out_channels == 1024
    vgg = create_model("vgg19_cifar", input_shape=SHAPE, num_classes=10)
    assert _count(vgg, nn.Conv2d) == 16 and _count(vgg, nn.Linear) == 3
    assert max(m.out_channels for m in vgg.modules() if isinstance(m, nn.Conv2d)) == 512


def _check_onnx(name: str, tmp_path, *, num_classes: int, atol: float, **params) -> None:
    import onnxruntime as ort

    torch.manual_seed(0)
    m = create_model(name, input_shape=SHAPE, num_classes=num_classes, mean=(0.5,), std=(0.25,), **params).eval()
    x = torch.rand(3, *SHAPE)
    with torch.no_grad():
        ref = m(x).numpy()
    assert ref.shape == (3, num_classes) and np.isfinite(ref).all()
    path = export_onnx(m, SHAPE, tmp_path / f"{name}.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"x": x.numpy()})[0], ref, atol=atol, rtol=0)


@pytest.mark.parametrize("name", SMALL_ENOUGH + ["song2020_wrn32"])
def test_forward_and_onnx_match_torch(name, tmp_path) -> None:
    params = {"widen": 1} if name == "song2020_wrn32" else {}  # the structure at widen 1; full width: slow test
    _check_onnx(name, tmp_path, num_classes=100, atol=1e-4, **params)


@pytest.mark.slow
@pytest.mark.parametrize("name", BIG)
def test_onnx_matches_torch_big(name, tmp_path) -> None:
    _check_onnx(name, tmp_path, num_classes=10, atol=1e-3)
