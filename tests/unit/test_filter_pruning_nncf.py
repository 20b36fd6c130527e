"""Filter pruning under NNCF's defaults (the poster, seed 004, pruned with NNCF): the first convolution and the
stride > 1 convolutions are left alone, and with them every convolution of their group; filters are scored by
the sum of the criterion over the group. The earlier behaviour stays as options (``prune_first``,
``prune_downsample``, ``importance = "root"``). On a plain ``nn.Sequential`` and on the residual user model with
BatchNorm and a projection shortcut (``tests.fixtures.usermodels.residual``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgebench.compress.filter_pruning import filter_importance, first_convs
from edgebench.errors import CompressError, ConfigError
from edgebench.models.train import TrainConfig, seeded
from edgebench.variants import VariantContext, create_method
from tests.fixtures.usermodels import residual, tiny

SHAPE = (1, 8, 8)


def prune(model: nn.Module, **kw) -> object:
    rng = np.random.default_rng(0)
    ctx = VariantContext(rng.random((16, *SHAPE), dtype=np.float32), rng.integers(0, 10, 16), SHAPE, 10,
                         TrainConfig(epochs=1), seed=0, where="test")
    return create_method("compress", "filter_pruning", ratio=0.5, epochs_per_step=0, round_to=1,
                         **kw).apply(model, ctx)


def outs(model: nn.Module) -> dict[str, int]:
    return {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def sequential() -> nn.Module:
    seeded(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(128, 10)).eval()


def test_sequential_defaults_leave_the_first_and_strided_convs() -> None:
    base = sequential()
    assert first_convs(base, torch.rand(1, *SHAPE)) == [base[0]]
    out = prune(base)
    assert outs(out.model) == {"0": 8, "2": 4, "4": 8}
    assert out.info["not_pruned"] == ["0", "4"]
    assert (out.info["prune_first"], out.info["prune_downsample"], out.info["importance"]) == (False, False, "group")
    assert outs(prune(base, prune_first=True, prune_downsample=True).model) == {"0": 4, "2": 4, "4": 4}
    assert outs(prune(base, prune_downsample=True).model) == {"0": 8, "2": 4, "4": 4}


def test_residual_groups_with_a_kept_conv_are_not_pruned() -> None:
    seeded(0)
    base = residual().eval()
    # stem.0 is first, and its channels are tied to layer1.conv2 by the identity shortcut; layer2.conv1 and the
    # projection layer2.shortcut.0 have stride 2, and the projection is tied to layer2.conv2: only layer1.conv1 goes
    out = prune(base)
    assert outs(out.model) == {"stem.0": 8, "layer1.conv1": 4, "layer1.conv2": 8, "layer2.conv1": 16,
                               "layer2.conv2": 16, "layer2.shortcut.0": 16}
    assert out.info["not_pruned"] == ["layer2.conv1", "layer2.shortcut.0", "stem.0"]
    assert out.model.layer1.bn1.num_features == 4
    earlier = prune(base, prune_first=True, prune_downsample=True)
    assert outs(earlier.model) == {"stem.0": 4, "layer1.conv1": 4, "layer1.conv2": 4, "layer2.conv1": 8,
                                   "layer2.conv2": 8, "layer2.shortcut.0": 8}
    with torch.no_grad():
        for o in (out, earlier):
            assert o.model(torch.rand(2, *SHAPE)).shape == (2, 10)


def _opposed_residual() -> nn.Module:
    """The residual model with stem.0's filter norms rising with the channel index and layer1.conv2's (tied to
    them) falling and ten times larger: the root's scores and the group's sums disagree on every channel."""
    seeded(0)
    model = residual().eval()
    with torch.no_grad():
        for c in range(8):
            w = model.stem[0].weight[c]
            w.mul_((c + 1) / w.norm())
            v = model.layer1.conv2.weight[c]
            v.mul_(10 * (8 - c) / v.norm())
    return model


@pytest.mark.parametrize("importance,kept", [("root", [4, 5, 6, 7]), ("group", [0, 1, 2, 3])])
def test_group_importance_sums_over_the_group(importance, kept) -> None:
    base = _opposed_residual()
    out = prune(base, prune_first=True, importance=importance)
    assert out.model.stem[0].out_channels == 4
    assert torch.equal(out.model.stem[0].weight, base.stem[0].weight[kept])
    assert out.model.layer1.conv2.out_channels == 4  # tied to the stem by the identity shortcut
    # the two orders the scores give: the root's own, and the sum over the group (NNCF's)
    root = filter_importance(base.stem[0].weight, "L2")
    total = root + filter_importance(base.layer1.conv2.weight, "L2")
    by = {"root": root, "group": total}[importance]
    assert sorted(torch.argsort(by, descending=True)[:4].tolist()) == kept


def test_nothing_left_to_prune_and_bad_options() -> None:
    seeded(0)
    with pytest.raises(CompressError, match="test: no convolution left to prune: .* set prune_first = true"):
        prune(tiny().eval())
    for key, bad in (("prune_first", 1), ("prune_downsample", "no")):
        with pytest.raises(ConfigError, match=f"filter_pruning': {key} must be true or false"):
            create_method("compress", "filter_pruning", ratio=0.5, **{key: bad})
    with pytest.raises(ConfigError, match="importance"):
        create_method("compress", "filter_pruning", ratio=0.5, importance="sum")
