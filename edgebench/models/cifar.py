"""The seeds' CIFAR-10 networks: DNN1-3 and VGG-16 of Liu et al. 2018 (seed ``000``, Table I) and the wide
ResNet-32 of Song et al. 2020 (seed ``003``). Inputs in [0, 1], normalized inside the graph like the rest of the zoo.

Parameter counts and MACs in the docstrings: 3×32×32 inputs, 10 classes, default arguments, from
``edgebench.compress.stats.model_stats`` (BatchNorm parameters included; MACs of convolutions and linear layers).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from edgebench.errors import ConfigError
from edgebench.models import MODELS
from edgebench.models.zoo import Classifier, _classifier, _pooled_classifier, _vgg

# Convolution stacks: (channels, padding) for a 3×3 convolution + ReLU, "M" for a 2×2 max-pool.
_Stack = Sequence["tuple[int, int] | str"]


def _plain_cnn(name: str, stack: _Stack, hidden: int, *, input_shape: tuple[int, int, int], num_classes: int,
               mean: Sequence[float], std: Sequence[float]) -> Classifier:
    """``stack`` (no BatchNorm, as the CNNs of the time), flatten, one hidden fully connected layer + ReLU, output."""
    layers: list[nn.Module] = []
    cin = input_shape[0]
    for item in stack:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            cout, pad = item
            layers += [nn.Conv2d(cin, cout, 3, padding=pad), nn.ReLU()]
            cin = cout
    return _classifier(name, nn.Sequential(*layers), [hidden], input_shape=input_shape, num_classes=num_classes,
                       mean=mean, std=std)


# Seed 000 (Liu et al. 2018, "Security Analysis and Enhancement of Model Compressed Deep Learning Systems under
# Adversarial Attacks", Table I) counts ReLU convolutional layers, fully connected layers (VGG-16's 3 are
# FC-4096, FC-4096 and the output, so the count includes the output layer) and max-pooling layers; it gives no
# widths. The choices below are the CIFAR-10 CNNs of that time, stated in each docstring.
_DNN1 = ((32, 1), (32, 0), "M", (64, 1), (64, 0), "M")
_DNN2 = ((32, 1), (32, 1), "M", (64, 1), (64, 1), "M", (128, 1), (128, 1), "M")
_DNN3 = ((64, 1), (64, 1), (64, 1), "M", (128, 1), (128, 1), (128, 1), "M", (256, 1), (256, 1), (256, 1), "M")
_VGG16_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def _dnn(name: str, stack: _Stack, doc: str) -> None:
    """Register the Table I network ``name``: ``stack``, flatten, F512 + ReLU and the output layer."""

    def build(*, input_shape: tuple[int, int, int], num_classes: int, mean: Sequence[float] = (0.0,),
              std: Sequence[float] = (1.0,)) -> Classifier:
        return _plain_cnn(name, stack, 512, input_shape=input_shape, num_classes=num_classes, mean=mean, std=std)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    globals()[name] = MODELS.register(name)(build)  # importable by name, like the other zoo factories


_dnn("liu2018_dnn1", _DNN1, """
    DNN1 of Liu et al. 2018 (seed ``000``, Table I): 4 ReLU conv, 2 fully connected, 2 max-pooling layers.

    Widths (the paper gives none): the Keras ``cifar10_cnn`` example network, the standard small CIFAR-10 CNN
    of 2017-2018, which has exactly this layout: C32(pad 1)-C32(no pad)-pool-C64(pad 1)-C64(no pad)-pool-F512-F10,
    3×3 kernels, ReLU, no BatchNorm (the example's dropout is left out, as elsewhere in the zoo).
    On 3×32×32, 10 classes: 1 250 858 parameters, 20.7 M MACs (20 741 120).
    """)

_dnn("liu2018_dnn2", _DNN2, """
    DNN2 of Liu et al. 2018 (seed ``000``, Table I): 6 ReLU conv, 2 fully connected, 3 max-pooling layers.

    Widths (the paper gives none): DNN1 grown by one more stage, the three-block "VGG-style" CIFAR-10 CNN of
    the time: C32-C32-pool-C64-C64-pool-C128-C128-pool-F512-F10, 3×3 kernels with padding 1, ReLU, no BatchNorm.
    On 3×32×32, 10 classes: 1 341 226 parameters, 39.7 M MACs (39 687 168).
    """)

_dnn("liu2018_dnn3", _DNN3, """
    DNN3 of Liu et al. 2018 (seed ``000``, Table I): 9 ReLU conv, 2 fully connected, 3 max-pooling layers.

    Widths (the paper gives none): three VGG stages of three 3×3 convolutions each (padding 1) with VGG-16's
    first three widths, C64×3-pool-C128×3-pool-C256×3-pool-F512-F10, ReLU, no BatchNorm: the deepest of the
    three plain CNNs, between DNN2 and VGG-16 in depth and width.
    On 3×32×32, 10 classes: 4 022 794 parameters, 268 M MACs (268 112 896).
    """)


@MODELS.register("liu2018_vgg16")
def liu2018_vgg16(*, input_shape: tuple[int, int, int], num_classes: int, mean: Sequence[float] = (0.0,),
                  std: Sequence[float] = (1.0,), width: float = 1.0) -> Classifier:
    """VGG-16 of Liu et al. 2018 (seed ``000``, Table I): 13 ReLU conv, 3 fully connected, 5 max-pooling layers.

    VGG-16 (Simonyan & Zisserman 2015, configuration D) with its standard widths, 64-64-pool-128-128-pool-
    256×3-pool-512×3-pool-512×3-pool, in the CIFAR form (Fu's ``pytorch-vgg-cifar10``): BatchNorm after each
    convolution, and the three fully connected layers sized for the 1×1×512 map of a 32×32 input, 512-512-10
    (the 4096-unit ImageNet head fits a 7×7 map); no dropout. ``width`` thins every layer.
    On 3×32×32, 10 classes: 15 249 354 parameters, 314 M MACs (313 725 952).
    """
    return _vgg("liu2018_vgg16", _VGG16_STAGES, width, input_shape=input_shape, num_classes=num_classes, mean=mean,
                std=std)


class _WideUnit(nn.Module):
    """Pre-activation residual unit of Madry et al.'s CIFAR model: BN-LReLU-3×3 conv (stride)-BN-LReLU-3×3 conv,
    added to a parameter-free shortcut (average pooling by the stride, channels zero-padded on both sides)."""

    def __init__(self, cin: int, cout: int, stride: int, activate_before_residual: bool) -> None:
        super().__init__()
        self.bn1, self.act1 = nn.BatchNorm2d(cin), nn.LeakyReLU(0.1)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn2, self.act2 = nn.BatchNorm2d(cout), nn.LeakyReLU(0.1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.shared = activate_before_residual
        self.stride, self.pad = stride, (cout - cin) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.act1(self.bn1(x))
        short = a if self.shared else x
        out = self.conv2(self.act2(self.bn2(self.conv1(a))))
        if self.pad:
            if self.stride > 1:
                short = F.avg_pool2d(short, self.stride)
            short = F.pad(short, (0, 0, 0, 0, self.pad, self.pad))
        return out + short


@MODELS.register("song2020_wrn32")
def song2020_wrn32(*, input_shape: tuple[int, int, int], num_classes: int, mean: Sequence[float] = (0.0,),
                   std: Sequence[float] = (1.0,), widen: int = 10) -> Classifier:
    """The "wide ResNet-32 on CIFAR-10" of Song et al. 2020 (seed ``003``), whose adversarially trained model is
    Madry et al.'s (2018): read as the model of Madry et al.'s ``cifar10_challenge`` (TensorFlow, after the TF
    models ResNet), the seed naming no widening factor and that being the wide ResNet-32 of its setting.

    A 3×3 stem of 16 channels; three stages of 5 pre-activation residual units of 16·k channels (k = ``widen``,
    default 10 as in that model: 160-320-640) with strides 1-2-2, each unit BN-LeakyReLU(0.1)-3×3 conv-BN-
    LeakyReLU(0.1)-3×3 conv plus a parameter-free shortcut (average pooling by the stride and zero-padded
    channels where the width changes; the first unit shares its pre-activation with the shortcut); final BN,
    LeakyReLU(0.1), global average pooling and one fully connected layer: 1 + 30 + 1 = 32 weighted layers.
    Differences: symmetric padding in the stride-2 convolutions (TF's "SAME" pads bottom/right only) and the
    plan's per-channel ``mean``/``std`` instead of per-image standardization.
    On 3×32×32, 10 classes: 45 901 914 parameters, 6.63 G MACs (6 630 070 528).
    Filter pruning removes channels inside the units only (each unit's first convolution: at widen 1 and ratio
    0.25, 464 154 → 342 874 parameters): the zero-padded shortcuts fix the stages' widths.
    """
    if isinstance(widen, bool) or not isinstance(widen, int) or widen < 1:
        raise ConfigError(f"model 'song2020_wrn32': widen must be an integer >= 1 (the zero-padded shortcuts need "
                          f"even channel steps), got {widen!r}")
    widths = [16 * widen * 2 ** i for i in range(3)]
    layers: list[nn.Module] = [nn.Conv2d(input_shape[0], 16, 3, padding=1, bias=False)]
    cin = 16
    for i, cout in enumerate(widths):
        for j in range(5):
            layers.append(_WideUnit(cin, cout, 2 if (i > 0 and j == 0) else 1, i == 0 and j == 0))
            cin = cout
    layers += [nn.BatchNorm2d(cin), nn.LeakyReLU(0.1)]
    return _pooled_classifier("song2020_wrn32", layers, cin, [], input_shape=input_shape, num_classes=num_classes,
                              mean=mean, std=std)
