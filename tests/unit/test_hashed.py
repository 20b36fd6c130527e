"""HashedNets (edgebench.compress.hashed): hash tables, eq. 3-4 gradients, HFGSM through phi(W) (eq. 6),
parameter counts at 1/8 on the seed-000 network, and real training on scikit-learn's digits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from edgebench.compress import COMPRESSORS
from edgebench.compress.hashed import Hashed, HashedConv2d, HashedLinear, hash_tables, to_dense
from edgebench.errors import CompressError, ConfigError
from edgebench.models import create_model
from edgebench.models.train import TrainConfig, predict_logits, seeded
from edgebench.variants import VariantContext
from tests.fixtures.models import trained


def _ctx(x: np.ndarray, y: np.ndarray, *, epochs: int = 0, build=None) -> VariantContext:
    return VariantContext(x_train=x, y_train=y, input_shape=tuple(x.shape[1:]), num_classes=10,
                           train=TrainConfig(epochs=epochs, lr=1e-3, seed=0), seed=0, where="test: hashed",
                           build_base=build)


def _empty_ctx(shape: tuple[int, ...]) -> VariantContext:
    return _ctx(np.zeros((0, *shape), np.float32), np.zeros(0, np.int64))


def _tiny(c: int = 1) -> nn.Module:
    seeded(0)
    return create_model("digits_cnn", input_shape=(c, 8, 8), num_classes=10)


# hash tables ---------------------------------------------------------------------------------------------
def test_hashes_are_deterministic_per_seed_and_balanced() -> None:
    a = HashedLinear(64, 64, buckets=256, seed=7)
    b = HashedLinear(64, 64, buckets=256, seed=7)
    c = HashedLinear(64, 64, buckets=256, seed=8)
    assert torch.equal(a.index, b.index) and torch.equal(a.sign, b.sign)
    assert not torch.equal(a.index, c.index) and not torch.equal(a.sign, c.sign)
    # fixed values: the same in every process and run (no salted hash())
    index, sign = hash_tables((2, 3), 5, 0)
    assert index.tolist() == [[4, 2, 3], [1, 2, 3]] and sign.tolist() == [[1.0, 1.0, -1.0], [1.0, -1.0, 1.0]]
    assert index.dtype == torch.int64 and sign.dtype == torch.float32 and index.shape == (2, 3)
    assert set(sign.unique().tolist()) == {-1.0, 1.0}
    share_pos = float((a.sign > 0).float().mean())
    assert 0.4 < share_pos < 0.6
    # buckets << virtual weights (4096 / 256 = 16 per bucket on average): nearly every bucket is used
    assert a.index.unique().numel() >= 0.9 * 256 and int(a.index.min()) >= 0 and int(a.index.max()) < 256
    # h and xi are independent: the sign share is balanced inside the buckets too
    pos_in_even = float((a.sign[a.index % 2 == 0] > 0).float().mean())
    assert 0.4 < pos_in_even < 0.6
    # the state dict holds only the real weights and the bias (the tables come from the seed)
    assert set(a.state_dict()) == {"w", "bias"} and a.w.shape == (256,)


def test_gradient_of_real_weights_is_eq4() -> None:
    torch.manual_seed(0)
    layer = HashedLinear(30, 20, buckets=50, seed=3)
    x = torch.randn(8, 30)
    target = torch.randn(8, 20)
    loss = ((layer(x) - target) ** 2).sum()
    loss.backward()
    # dL/dV from a dense layer holding the virtual weights V
    dense = nn.Linear(30, 20)
    with torch.no_grad():
        dense.weight.copy_(layer.weight_virtual())
        dense.bias.copy_(layer.bias)
    ((dense(x) - target) ** 2).sum().backward()
    grad_v = dense.weight.grad
    expected = torch.zeros(50)
    for k in range(50):
        mask = layer.index == k
        expected[k] = (layer.sign[mask] * grad_v[mask]).sum()
    assert torch.allclose(layer.w.grad, expected, atol=1e-6)
    assert torch.allclose(layer.bias.grad, dense.bias.grad, atol=1e-6)


def test_hashed_conv_matches_dense_conv_with_virtual_weights() -> None:
    torch.manual_seed(0)
    conv = HashedConv2d(4, 6, 3, stride=2, padding=1, groups=2, buckets=11, seed=1)
    assert conv.virtual_shape == (6, 2, 3, 3) and conv.w.numel() == 11
    x = torch.randn(2, 4, 9, 9)
    dense = to_dense(conv)
    assert type(dense) is nn.Conv2d and dense.groups == 2 and dense.stride == (2, 2)
    assert torch.allclose(conv(x), dense(x), atol=1e-6)
    # every virtual weight is +-(one of the 11 real weights)
    assert torch.equal(conv.weight_virtual().abs().unique().sort().values, conv.w.abs().unique().sort().values)


def test_input_gradient_is_hfgsm_through_phi_and_dense_export_matches() -> None:
    base = _tiny()
    model = Hashed(rate=0.25, epochs=0).apply(base, _empty_ctx((1, 8, 8))).model
    dense = to_dense(model)
    assert not any(isinstance(m, (HashedLinear, HashedConv2d)) for m in dense.modules())
    assert any(isinstance(m, HashedLinear) for m in model.modules())  # to_dense copied, did not convert
    torch.manual_seed(1)
    x = torch.rand(5, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 3, 4])
    grads = []
    for net in (model, dense):
        xi = x.clone().requires_grad_(True)
        logits = net(xi)
        (g,) = torch.autograd.grad(nn.functional.cross_entropy(logits, y), xi)
        grads.append((logits.detach(), g))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-5)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-6, rtol=1e-4)
    assert float(grads[0][1].abs().sum()) > 0


# the method ----------------------------------------------------------------------------------------------
def test_liu2018_at_one_eighth_counts_real_weights() -> None:
    seeded(0)
    base = create_model("liu2018_mnist", input_shape=(1, 28, 28), num_classes=10)
    out = Hashed(rate="1/8", epochs=0).apply(base, _empty_ctx((1, 28, 28)))
    info = out.info
    assert set(info["per_layer"]) == {"features.0", "features.3", "head.0", "head.2"}
    for name, layer in base.named_modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            n = layer.weight.numel()
            row = info["per_layer"][name]
            hashed = out.model.get_submodule(name)
            assert row["virtual"] == n and row["real"] == math.ceil(n / 8) == hashed.w.numel()
    n_base = sum(p.numel() for p in base.parameters())
    n_twin = sum(p.numel() for p in out.model.parameters())
    assert info["real_params"] == n_twin and info["virtual_params"] == n_base
    assert 0.12 < n_twin / n_base < 0.14
    assert info["rate"] == 0.125 and info["init"] == "distill" and "splitmix64" in info["hash"]
    assert not out.model.training


def test_scratch_init_does_not_modify_base_and_is_deterministic() -> None:
    """The default init is in the contract table (test_variant_contract.py); ``init = "scratch"`` here."""
    base = _tiny()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 8, 8), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    ctx = _ctx(x, y, epochs=1)
    a = Hashed(rate=0.25, init="scratch").apply(base, ctx)
    b = Hashed(rate=0.25, init="scratch").apply(base, ctx)
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    assert len(a.history) == 1
    after = base.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_distill_init_is_least_squares_fit() -> None:
    base = _tiny()
    out = Hashed(rate=1.0, epochs=0).apply(base, _empty_ctx((1, 8, 8)))
    # rate 1: as many buckets as weights, but collisions remain; the fit is the per-bucket mean of xi * W,
    # times one per-layer factor that restores the layer's norm ||phi(W)|| = ||W||
    layer = out.model.get_submodule("head.2")
    w = base.get_submodule("head.2").weight.detach()
    means = torch.zeros_like(layer.w).index_add_(0, layer.index.reshape(-1), (layer.sign * w).reshape(-1))
    means /= torch.bincount(layer.index.reshape(-1), minlength=layer.buckets).clamp(min=1)
    scale = w.norm() / (means[layer.index] * layer.sign).norm()
    assert torch.allclose(layer.w, means * scale, atol=1e-6)
    assert torch.isclose(layer.weight_virtual().norm(), w.norm(), rtol=1e-5)
    assert torch.equal(layer.bias, base.get_submodule("head.2").bias)
    assert 0 <= out.info["per_layer"]["head.2"]["init_rel_error"] < 1


def test_layers_glob_selects_a_subset() -> None:
    base = _tiny()
    out = Hashed(rate=0.5, epochs=0, layers=["head.*"]).apply(base, _empty_ctx((1, 8, 8)))
    assert set(out.info["per_layer"]) == {"head.0", "head.2"}
    assert type(out.model.get_submodule("features.0")) is nn.Conv2d
    assert torch.equal(out.model.get_submodule("features.0").weight, base.get_submodule("features.0").weight)


def test_registered() -> None:
    assert COMPRESSORS.register("hashed")(Hashed) is Hashed and Hashed.name == "hashed"


@pytest.mark.parametrize(("params", "word"), [
    ({"rate": 0}, "rate"), ({"rate": 1.5}, "rate"), ({"rate": "1/0"}, "rate"), ({"rate": "abc"}, "rate"),
    ({"rate": True}, "rate"), ({"rate": float("nan")}, "rate"), ({"init": "foo"}, "init"),
    ({"epochs": -1}, "epochs"), ({"lr": 0}, "lr"), ({"temperature": -1.0}, "temperature"),
    ({"alpha": 1.5}, "alpha"), ({"layers": "head.*"}, "layers"), ({"layers": []}, "layers"),
    ({"hash_seed": -1}, "hash_seed"),
])
def test_bad_parameters_name_themselves(params: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        Hashed(**params)


def test_rate_forms() -> None:
    assert Hashed(rate="1/64").rate == 1 / 64 and Hashed(rate=" 1 / 16 ").rate == 1 / 16 and Hashed(rate=1).rate == 1
    assert Hashed(rate=0.1).buckets(10) == 1  # 0.1 is 1/10, not the binary float just above it


def test_bad_layers_name_the_layer() -> None:
    base = _tiny()
    with pytest.raises(CompressError, match=r"nope\*"):
        Hashed(layers=["nope*"]).apply(base, _empty_ctx((1, 8, 8)))

    class WithAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.att = nn.MultiheadAttention(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.att(x, x, x)[0]

    with pytest.raises(CompressError, match="att.out_proj"):
        Hashed(epochs=0).apply(WithAttention(), _empty_ctx((1, 8, 8)))
    reflect = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"))
    with pytest.raises(CompressError, match="'0'.*padding_mode"):
        Hashed(epochs=0).apply(reflect, _empty_ctx((1, 8, 8)))


# real training on digits ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_base():
    from edgebench.data import load_dataset

    torch.set_num_threads(1)
    return load_dataset("digits"), trained("digits_cnn", epochs=10, lr=1e-3)


def _acc(model: nn.Module, ds) -> float:
    return float((predict_logits(model, ds.x_test).argmax(1) == ds.y_test).mean())


def test_digits_hashed_one_eighth_close_to_base(digits_base) -> None:
    ds, base = digits_base

    def build() -> nn.Module:
        return create_model("digits_cnn", input_shape=ds.shape, num_classes=ds.num_classes)

    ctx = _ctx(ds.x_train, ds.y_train, epochs=10, build=build)
    base_acc = _acc(base, ds)
    # 15 distillation epochs: at 10 the least-squares start (rel. error ~0.93, chance accuracy) lands 2.8 points
    # below the base with this seed but up to 5.3 with others; at 15 every seed tried was within 4 points
    distilled = Hashed(rate="1/8", init="distill", epochs=15).apply(base, ctx)
    scratch = Hashed(rate="1/8", init="scratch").apply(base, ctx)
    dist_acc, scratch_acc = _acc(distilled.model, ds), _acc(scratch.model, ds)
    print(f"digits test accuracy: base {base_acc:.4f}, hashed 1/8 distill {dist_acc:.4f}, "
          f"hashed 1/8 scratch {scratch_acc:.4f} (n={len(ds.y_test)})")
    assert base_acc > 0.9
    assert dist_acc > base_acc - 0.05
    assert scratch_acc > 0.8
    assert len(distilled.history) == 15 and len(scratch.history) == 10 and distilled.info["lr"] == 1e-3
    dense_logits = predict_logits(to_dense(distilled.model), ds.x_test)
    assert np.allclose(dense_logits, predict_logits(distilled.model, ds.x_test), atol=1e-5)
