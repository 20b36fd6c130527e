"""timm models through the user-model factory (``factory = "timm:create_model"``), as the README documents; skipped
where the optional extra ``timm`` is not installed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgebench.errors import ConfigError
from edgebench.export.onnx import export_onnx
from edgebench.models.user import build_from_factory


def test_a_factory_whose_import_breaks_is_one_line(tmp_path, monkeypatch) -> None:
    # what a torchvision wheel built for another torch does on `import timm` (seen with torchvision 0.28.0 from
    # PyPI under torch 2.13.0+cpu)
    (tmp_path / "brokenvision.py").write_text('raise RuntimeError("operator torchvision::nms does not exist")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"^plan.toml: models\[0\]: importing 'brokenvision' failed \(operator "
                                          r"torchvision::nms does not exist\); are its dependencies built for"):
        build_from_factory("brokenvision:create_model", {}, where="plan.toml: models[0]")


def test_a_tiny_timm_model_through_the_factory(tmp_path) -> None:
    import onnxruntime as ort

    pytest.importorskip("timm", reason="timm is not installed (the optional extra: pip install -e '.[timm]')")
    torch.manual_seed(0)
    params = {"model_name": "resnet10t", "num_classes": 10, "pretrained": False}
    model = build_from_factory("timm:create_model", params, where="plan.toml: models[0]").eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x).numpy()
    assert ref.shape == (2, 10) and np.isfinite(ref).all()
    path = export_onnx(model, (3, 32, 32), tmp_path / "resnet10t.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"x": x.numpy()})[0], ref, atol=1e-4, rtol=0)
