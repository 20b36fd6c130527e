"""The small-input variants of the poster 004's architectures: shapes, sizes, ONNX export equivalence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgebench.compress.stats import model_stats
from edgebench.errors import ConfigError
from edgebench.export.onnx import export_onnx
from edgebench.models import MODELS, create_model

SMALL = ["mobilenet_v1_small", "densenet121_small", "resnet50_small", "vgg19_small"]
# (params, MACs) on 1×28×28 with 10 classes at the default width, as the docstrings state
SIZES = {"mobilenet_v1_small": (215_498, 4_116_256), "densenet121_small": (119_002, 2_892_960),
         "resnet50_small": (375_618, 4_541_728), "vgg19_small": (323_186, 5_428_992)}


def test_registered() -> None:
    assert set(SMALL) <= set(MODELS.names())


@pytest.mark.parametrize("name", SMALL)
def test_sizes_match_the_docstrings(name) -> None:
    torch.manual_seed(0)
    m = create_model(name, input_shape=(1, 28, 28), num_classes=10)
    s = model_stats(m, (1, 28, 28))
    assert (s["params"], s["macs"]) == SIZES[name]


def test_structure() -> None:
    mn = create_model("mobilenet_v1_small", input_shape=(1, 28, 28), num_classes=10)
    dw = [m for m in mn.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(dw) == 13 and all(m.groups == m.in_channels == m.out_channels for m in dw)
    dn = create_model("densenet121_small", input_shape=(1, 28, 28), num_classes=10)
    convs = [m for m in dn.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) + 1 == 121  # stem + 2 per dense layer (58) + 3 transitions = 120 convolutions, + FC
    rn = create_model("resnet50_small", input_shape=(1, 28, 28), num_classes=10)
    convs = [m for m in rn.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 + 3 * 16 + 4  # stem, 16 bottlenecks, 4 projection shortcuts
    vgg = create_model("vgg19_small", input_shape=(1, 28, 28), num_classes=10)
    assert len([m for m in vgg.modules() if isinstance(m, nn.Conv2d)]) == 16
    assert len([m for m in vgg.modules() if isinstance(m, nn.Linear)]) == 3
    with pytest.raises(ConfigError, match="width must be a number > 0"):
        create_model("vgg19_small", input_shape=(1, 28, 28), num_classes=10, width=0)


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_onnx_matches_torch(name, shape, tmp_path) -> None:
    import onnxruntime as ort

    torch.manual_seed(0)
    m = create_model(name, input_shape=shape, num_classes=10, mean=(0.5,), std=(0.25,)).eval()
    x = torch.rand(2, *shape)
    with torch.no_grad():
        ref = m(x).numpy()
    assert ref.shape == (2, 10)
    path = export_onnx(m, shape, tmp_path / f"{name}.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)
