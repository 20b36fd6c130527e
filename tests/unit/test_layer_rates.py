"""Per-layer pruning rates of ``dns`` and ``magnitude_pruning`` (:mod:`edgebench.compress.layer_rates`): the
named layers reach their own sparsity, the others the method's, and a bad name or rate is one ConfigError."""

from __future__ import annotations

import functools

import pytest
import torch

from edgebench.compress.magnitude_pruning import magnitude_mask
from edgebench.data import load_dataset
from edgebench.errors import ConfigError
from edgebench.models.train import TrainConfig
from edgebench.variants import VariantContext, create_method
from tests.fixtures.models import trained

compressor = functools.partial(create_method, "compress")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def base():
    return trained("digits_cnn", epochs=8)


def ctx_for(ds) -> VariantContext:
    return VariantContext(ds.x_train, ds.y_train, ds.shape, 10, TrainConfig(epochs=8), seed=0, where="test")


def sparsity(model: torch.nn.Module, name: str) -> float:
    return float((dict(model.named_modules())[name].weight == 0).float().mean())


def test_magnitude_mask_by_hand() -> None:
    w = torch.tensor([[0.5, -0.1, 0.3], [-0.2, 0.0, 0.9]])
    assert magnitude_mask(w, 0.5).tolist() == [[True, False, True], [False, False, True]]  # 0.0, 0.1, 0.2 go
    assert magnitude_mask(w, 0.0).all()
    # ties go by position: the first of two equal magnitudes is pruned
    assert magnitude_mask(torch.tensor([0.2, -0.2, 1.0]), 1 / 3).tolist() == [False, True, True]


def test_magnitude_pruning_layer_rates(base, digits) -> None:
    out = compressor("magnitude_pruning", ratio=0.8, epochs=1,
                     layer_rates={"features.0": 0.3, "head.2": 0.0}).apply(base, ctx_for(digits))
    sp = {n: i["sparsity"] for n, i in out.info["per_layer"].items()}
    assert sp["features.0"] == pytest.approx(round(0.3 * 144) / 144, abs=1e-6)  # kept through fine-tuning
    assert sp["head.2"] == 0.0
    assert sp["features.2"] == pytest.approx(0.8, abs=0.01) and sp["head.0"] == pytest.approx(0.8, abs=0.01)
    assert sparsity(out.model, "features.0") == pytest.approx(sp["features.0"])
    # the pruned weights of the named layer are its smallest ones in the base
    w0 = base.features[0].weight.detach()
    pruned = out.model.features[0].weight == 0
    assert float(w0.abs()[pruned].max()) <= float(w0.abs()[~pruned].min())
    assert out.info["layer_rates"] == {"features.0": 0.3, "head.2": 0.0}


def test_dns_layer_rates(base, digits) -> None:
    out = compressor("dns", sparsity=0.8, epochs=1, lr=1e-3,
                     layer_rates={"features.0": 0.3, "head.2": 0.0}).apply(base, ctx_for(digits))
    per = out.info["per_layer"]
    assert "head.2" not in per and sparsity(out.model, "head.2") == 0.0  # rate 0: dense, not under surgery
    assert per["features.0"]["target"] == 0.3 and 0.2 <= per["features.0"]["sparsity"] <= 0.4
    for name in ("features.2", "head.0"):
        assert per[name]["target"] == 0.8 and 0.7 <= per[name]["sparsity"] <= 0.9, name


@pytest.mark.parametrize("method,kw", [("dns", {"sparsity": 0.5}), ("magnitude_pruning", {"ratio": 0.5})])
def test_unknown_layer_is_one_config_error(base, digits, method, kw) -> None:
    with pytest.raises(ConfigError, match=r"test: compression method '\w+': layer_rates names 'conv1', which is "
                                          r"no Conv2d/Linear layer of the model; layers are \['features.0'"):
        compressor(method, **kw, layer_rates={"conv1": 0.3}).apply(base, ctx_for(digits))


@pytest.mark.parametrize("bad", [{"features.0": 1.0}, {"features.0": -0.1}, {"features.0": True}, {}, [0.3], 0.3])
def test_bad_layer_rates(bad) -> None:
    with pytest.raises(ConfigError, match="compression method 'dns': layer_rates"):
        compressor("dns", sparsity=0.5, layer_rates=bad)
