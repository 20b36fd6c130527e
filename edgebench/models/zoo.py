"""Registered architectures. Each takes inputs in [0, 1] and normalizes inside the graph."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from edgebench.errors import ConfigError
from edgebench.models import MODELS


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, as the first layer, so exported graphs carry their preprocessing."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], channels: int) -> None:
        super().__init__()
        mean_t = torch.as_tensor(list(mean), dtype=torch.float32)
        std_t = torch.as_tensor(list(std), dtype=torch.float32)
        if mean_t.numel() == 1:
            mean_t, std_t = mean_t.expand(channels).clone(), std_t.expand(channels).clone()
        if torch.any(std_t <= 0):
            raise ConfigError(f"Normalize: std must be > 0, got {list(std)}")
        self.register_buffer("mean", mean_t.view(1, channels, 1, 1))
        self.register_buffer("std", std_t.view(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _flat_size(features: nn.Module, input_shape: tuple[int, int, int], model: str) -> int:
    try:
        with torch.no_grad():
            return int(features(torch.zeros(1, *input_shape)).numel())
    except RuntimeError as exc:
        raise ConfigError(f"model {model!r} cannot take inputs of shape {input_shape}: {exc}") from None


class Classifier(nn.Module):
    """normalize -> features -> flatten -> head. The split lets compression and defenses find layers."""

    def __init__(self, norm: Normalize, features: nn.Sequential, head: nn.Sequential) -> None:
        super().__init__()
        self.norm = norm
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(self.norm(x)), 1))


def _classifier(name: str, features: nn.Sequential, hidden: Sequence[int], *, input_shape: tuple[int, int, int],
                num_classes: int, mean: Sequence[float], std: Sequence[float]) -> Classifier:
    flat = _flat_size(features, input_shape, name)
    layers: list[nn.Module] = []
    width = flat
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, num_classes))
    return Classifier(Normalize(mean, std, input_shape[0]), features, nn.Sequential(*layers))


@MODELS.register("liu2018_mnist")
def liu2018_mnist(*, input_shape: tuple[int, int, int], num_classes: int, mean: Sequence[float] = (0.0,),
                  std: Sequence[float] = (1.0,)) -> Classifier:
    """The MNIST network of Liu et al. 2018 (seed ``000``, Sec. V): 784-C64-C128-F512-10.

    The paper gives the widths only; kernel size, padding and pooling are our choice, stated here:
    3×3 convolutions with padding 1, ReLU, 2×2 max-pooling after each, then F512 with ReLU and the
    classifier (3.3 M parameters on 28×28 inputs).
    """
    c = input_shape[0]
    features = nn.Sequential(
        nn.Conv2d(c, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    )
    return _classifier("liu2018_mnist", features, [512], input_shape=input_shape, num_classes=num_classes,
                       mean=mean, std=std)


@MODELS.register("song2020_mnist")
def song2020_mnist(*, input_shape: tuple[int, int, int], num_classes: int, mean: Sequence[float] = (0.0,),
                   std: Sequence[float] = (1.0,)) -> Classifier:
    """The "four-layer CNN on MNIST" of Song et al. 2020 (seed ``003``), whose attacks ran in CleverHans 2.1:
    read as CleverHans's MNIST tutorial network (``ModelBasicCNN``), the seed naming no other:
    C64(8×8, stride 2, pad 3)-C128(6×6, stride 2)-C128(5×5)-F10 with ReLU (about 0.7 M parameters on 28×28).
    The seed's µ-law mapping goes on its last layer, the single fully connected one."""
    c = input_shape[0]
    features = nn.Sequential(
        nn.Conv2d(c, 64, 8, stride=2, padding=3), nn.ReLU(),
        nn.Conv2d(64, 128, 6, stride=2), nn.ReLU(),
        nn.Conv2d(128, 128, 5), nn.ReLU(),
    )
    return _classifier("song2020_mnist", features, [], input_shape=input_shape, num_classes=num_classes,
                       mean=mean, std=std)


@MODELS.register("lenet5")
def lenet5(*, input_shape: tuple[int, int, int], num_classes: int, mean: Sequence[float] = (0.0,),
           std: Sequence[float] = (1.0,)) -> Classifier:
    """LeNet-5 (LeCun et al. 1998) in its common modern form: C6(5×5, pad 2)-pool-C16(5×5)-pool-
    F120-F84, ReLU and max-pooling. Needs inputs of at least 20×20 (MNIST, Fashion-MNIST, CIFAR)."""
    c = input_shape[0]
    features = nn.Sequential(
        nn.Conv2d(c, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
    )
    return _classifier("lenet5", features, [120, 84], input_shape=input_shape, num_classes=num_classes,
                       mean=mean, std=std)


@MODELS.register("digits_cnn")
def digits_cnn(*, input_shape: tuple[int, int, int], num_classes: int, mean: Sequence[float] = (0.0,),
               std: Sequence[float] = (1.0,)) -> Classifier:
    """A small CNN sized for scikit-learn's 8×8 digits: C16-C32(3×3, pad 1)-pool-F64 (about 37 k
    parameters); trains to ≥ 0.95 test accuracy in seconds on a CPU."""
    c = input_shape[0]
    features = nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    )
    return _classifier("digits_cnn", features, [64], input_shape=input_shape, num_classes=num_classes,
                       mean=mean, std=std)


# Small-input variants of the poster ``004``'s ImageNet architectures ----------------------------------------
# The poster (seed 004) prunes Keras MobileNetV1, DenseNet-121, ResNet-50 and VGG-19. Their ImageNet forms
# downsample by 32 (a 28×28 image would vanish) and cost 0.6–20 GMACs; the variants below keep each
# architecture's defining structure (block types, depths, connectivity) and scale only the stem, the strides
# and the widths so that one Fashion-MNIST epoch (60 000 images of 1×28×28, batch 128) trains in about a
# minute or two on a 2-core CPU. All end with ``nn.AdaptiveAvgPool2d(1)``, so 1×28×28 and 3×32×32 inputs
# both work. Parameter counts and MACs in the docstrings: 1×28×28 inputs, 10 classes, default width, from
# ``edgebench.compress.stats.model_stats``; epoch times: SGD steps of 128 random images timed on one thread
# (``OMP_NUM_THREADS=1``) while another job used most of the second core, times 469 batches.


def _scaled(channels: int, width: float, *, minimum: int = 4) -> int:
    return max(minimum, int(round(channels * width)))


def _check_width(name: str, width: float) -> float:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ConfigError(f"model {name!r}: width must be a number > 0, got {width!r}")
    return float(width)


def _conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _pooled_classifier(name: str, features: list[nn.Module], channels: int, hidden: Sequence[int], *,
                       input_shape: tuple[int, int, int], num_classes: int, mean: Sequence[float],
                       std: Sequence[float]) -> Classifier:
    feats = nn.Sequential(*features, nn.AdaptiveAvgPool2d(1))
    model = _classifier(name, feats, hidden, input_shape=input_shape, num_classes=num_classes, mean=mean, std=std)
    assert _flat_size(feats, input_shape, name) == channels
    return model


# MobileNetV1: (output channels, stride of the depthwise conv) of the 13 depthwise-separable blocks.
# ImageNet (Howard et al. 2017, Table 1): stem stride 2 and block strides 2,1,2,1,2,1,1,1,1,1,1,2,1 (÷32).
_MOBILENET_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                     (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 1), (1024, 1))


@MODELS.register("mobilenet_v1_small")
def mobilenet_v1_small(*, input_shape: tuple[int, int, int], num_classes: int, mean: Sequence[float] = (0.0,),
                       std: Sequence[float] = (1.0,), width: float = 0.25) -> Classifier:
    """MobileNetV1 (Howard et al. 2017, "MobileNets") for 28×28/32×32 inputs.

    Kept: the 3×3 stem convolution and the 13 depthwise-separable blocks of Table 1, each a 3×3 depthwise
    convolution + BN + ReLU then a 1×1 pointwise convolution + BN + ReLU, with the paper's channel
    progression 64-128-128-256-256-512×6-1024-1024 times the width multiplier α (the paper's own knob),
    global average pooling and one fully connected classifier.
    Scaled down: the stem has stride 1 (not 2) and only three blocks downsample (blocks 2, 4 and 6; the
    paper also downsamples in block 12), a total stride of 8 instead of 32, because 28/32-pixel inputs would
    otherwise shrink to 1×1 after the fourth block; α = ``width`` defaults to 0.25 (the paper's smallest
    multiplier, "0.25 MobileNet") for the CPU budget. No dropout (Keras's default 1e-3 dropout is omitted).
    Default (α = 0.25) on 1×28×28: 215 k parameters, 4.1 M MACs; one Fashion-MNIST epoch (batch 128, SGD)
    measured at ≈ 97 s on one thread of a shared 2-core CPU (α = 0.5: 0.82 M parameters, 15.7 M MACs, 284 s).
    """
    return _mobilenet_v1("mobilenet_v1_small", _MOBILENET_BLOCKS, width, input_shape=input_shape,
                         num_classes=num_classes, mean=mean, std=std)


def _mobilenet_v1(name: str, blocks: Sequence[tuple[int, int]], width: float, *, input_shape: tuple[int, int, int],
                  num_classes: int, mean: Sequence[float], std: Sequence[float]) -> Classifier:
    """A stride-1 3×3 stem of 32·α channels, then ``blocks`` of (channels, depthwise stride) times α."""
    w = _check_width(name, width)
    c = input_shape[0]
    cin = _scaled(32, w)
    layers: list[nn.Module] = _conv_bn_relu(c, cin, 3)
    for cout, stride in blocks:
        cout = _scaled(cout, w)
        layers += _conv_bn_relu(cin, cin, 3, stride, groups=cin)  # depthwise
        layers += _conv_bn_relu(cin, cout, 1)  # pointwise
        cin = cout
    return _pooled_classifier(name, layers, cin, [], input_shape=input_shape,
                              num_classes=num_classes, mean=mean, std=std)


class _DenseLayer(nn.Module):
    """DenseNet-B bottleneck: BN-ReLU-1×1 conv (4k) - BN-ReLU-3×3 conv (k), output concatenated to the input."""

    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth), nn.ReLU(inplace=True), nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


@MODELS.register("densenet121_small")
def densenet121_small(*, input_shape: tuple[int, int, int], num_classes: int, mean: Sequence[float] = (0.0,),
                      std: Sequence[float] = (1.0,), width: float = 0.125) -> Classifier:
    """DenseNet-121 (Huang et al. 2017, "Densely Connected Convolutional Networks") for 28×28/32×32 inputs.

    Kept: four dense blocks of 6-12-24-16 bottleneck layers (BN-ReLU-1×1 conv to 4k channels, BN-ReLU-3×3
    conv to k, concatenated to the block's input), transitions of BN-ReLU-1×1 conv with compression 0.5 and
    2×2 average pooling, a stem of 2k channels, final BN-ReLU, global average pooling and one fully
    connected classifier: the 121 layers of the paper's Table 1.
    Scaled down: the growth rate k = round(32 · ``width``), default 4 (ImageNet: 32; the paper's CIFAR
    DenseNet-BC: 12), because the cost grows with k² per layer; the stem is a single 3×3 convolution with
    stride 2 and no max-pooling instead of 7×7/2 + 3×3 max-pool/2, so the four blocks run at 14, 7, 4 and
    2 pixels on 28×28 inputs (a ÷4 stem would leave 1×1 maps for the last block).
    Default (k = 4) on 1×28×28: 119 k parameters, 2.9 M MACs; one Fashion-MNIST epoch (batch 128, SGD)
    measured at ≈ 150 s on one thread of a shared 2-core CPU, over the one-minute budget even at this
    width: the cost is the 120 BatchNorm layers, 58 concatenations and their backward passes (per-layer
    overhead on small tensors), not the MACs (k = 6: 6.5 M MACs, 217 s; k = 8: 11.5 M MACs, 284 s).
    """
    return _densenet121("densenet121_small", width, 2, input_shape=input_shape, num_classes=num_classes,
                        mean=mean, std=std)


def _densenet121(name: str, width: float, stem_stride: int, *, input_shape: tuple[int, int, int], num_classes: int,
                 mean: Sequence[float], std: Sequence[float]) -> Classifier:
    """Growth rate round(32 · ``width``); a single 3×3 stem convolution of stride ``stem_stride``."""
    w = _check_width(name, width)
    growth = max(2, int(round(32 * w)))
    ch = 2 * growth
    layers: list[nn.Module] = [nn.Conv2d(input_shape[0], ch, 3, stride=stem_stride, padding=1, bias=False)]
    for i, n in enumerate((6, 12, 24, 16)):
        for _ in range(n):
            layers.append(_DenseLayer(ch, growth))
            ch += growth
        if i < 3:
            out = ch // 2
            layers += [nn.BatchNorm2d(ch), nn.ReLU(inplace=True), nn.Conv2d(ch, out, 1, bias=False),
                       nn.AvgPool2d(2, ceil_mode=True)]
            ch = out
    layers += [nn.BatchNorm2d(ch), nn.ReLU(inplace=True)]
    return _pooled_classifier(name, layers, ch, [], input_shape=input_shape,
                              num_classes=num_classes, mean=mean, std=std)


class _Bottleneck(nn.Module):
    """ResNet bottleneck (He et al. 2016, Fig. 5 right): 1×1 - 3×3 (stride) - 1×1 (×4), BN after each,
    projection shortcut (1×1 conv + BN) where the shape changes; stride on the 3×3 conv (torchvision's v1.5)."""

    def __init__(self, cin: int, mid: int, stride: int) -> None:
        super().__init__()
        cout = 4 * mid
        self.body = nn.Sequential(
            *_conv_bn_relu(cin, mid, 1), *_conv_bn_relu(mid, mid, 3, stride),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


@MODELS.register("resnet50_small")
def resnet50_small(*, input_shape: tuple[int, int, int], num_classes: int, mean: Sequence[float] = (0.0,),
                   std: Sequence[float] = (1.0,), width: float = 0.125) -> Classifier:
    """ResNet-50 (He et al. 2016, "Deep Residual Learning") for 28×28/32×32 inputs.

    Kept: four stages of 3-4-6-3 bottleneck blocks (1×1, 3×3, 1×1 convolutions with expansion 4, BN after
    each, identity shortcuts and 1×1 projection shortcuts where the shape changes), stage strides 1-2-2-2,
    global average pooling and one fully connected classifier: the 50 weighted layers of Table 1.
    Scaled down: the base width (64-128-256-512 bottleneck channels, 2048 at the output) is multiplied by
    ``width``, default 0.125 (8-16-32-64, 256 at the output), for the CPU budget; the stem is one 3×3
    convolution with stride 2 and no max-pooling instead of 7×7/2 + 3×3 max-pool/2 (÷2 instead of ÷4), so
    the stages run at 14, 7, 4 and 2 pixels on 28×28 inputs (16, 8, 4, 2 on 32×32) instead of vanishing.
    Default (width 0.125) on 1×28×28: 376 k parameters, 4.5 M MACs; one Fashion-MNIST epoch (batch 128,
    SGD) measured at ≈ 100 s on one thread of a shared 2-core CPU (width 0.25: 1.48 M parameters,
    18.1 M MACs, 194 s).
    """
    return _resnet50("resnet50_small", width, 2, input_shape=input_shape, num_classes=num_classes, mean=mean,
                     std=std)


def _resnet50(name: str, width: float, stem_stride: int, *, input_shape: tuple[int, int, int], num_classes: int,
              mean: Sequence[float], std: Sequence[float]) -> Classifier:
    """Base width 64 · ``width``; a single 3×3 stem convolution + BN + ReLU of stride ``stem_stride``."""
    w = _check_width(name, width)
    cin = _scaled(64, w)
    layers: list[nn.Module] = _conv_bn_relu(input_shape[0], cin, 3, stride=stem_stride)
    for i, (n, mid) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
        mid = _scaled(mid, w)
        for j in range(n):
            layers.append(_Bottleneck(cin, mid, 2 if (i > 0 and j == 0) else 1))
            cin = 4 * mid
    return _pooled_classifier(name, layers, cin, [], input_shape=input_shape,
                              num_classes=num_classes, mean=mean, std=std)


_VGG19_STAGES = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))


@MODELS.register("vgg19_small")
def vgg19_small(*, input_shape: tuple[int, int, int], num_classes: int, mean: Sequence[float] = (0.0,),
                std: Sequence[float] = (1.0,), width: float = 0.125) -> Classifier:
    """VGG-19 (Simonyan & Zisserman 2015, configuration E) for 28×28/32×32 inputs.

    Kept: 16 3×3 convolutions (padding 1, ReLU) in five stages of 2-2-4-4-4 with widths 64-128-256-512-512,
    2×2 max-pooling after each stage, and a classifier of two hidden fully connected layers + the output
    layer (19 weighted layers).
    Scaled down: all widths times ``width``, default 0.125 (8-16-32-64-64 convolution channels), and the
    hidden fully connected layers have 512 · ``width`` units instead of 4096, for the CPU budget;
    BatchNorm after every convolution (the common ``vgg19_bn`` form; plain VGG-19 needed the paper's staged
    initialization from shallower nets to train at all); the max-pooling rounds up (``ceil_mode``) so that
    28 → 14 → 7 → 4 → 2 → 1 survives five halvings, then global average pooling (a no-op on the 1×1 map,
    there for larger inputs) replaces the flatten of the 7×7 ImageNet map; no dropout.
    Default (width 0.125) on 1×28×28: 323 k parameters, 5.4 M MACs; one Fashion-MNIST epoch (batch 128,
    SGD) measured at ≈ 58 s on one thread of a shared 2-core CPU (width 0.25: 1.29 M parameters,
    21.6 M MACs, 139 s).
    """
    return _vgg("vgg19_small", _VGG19_STAGES, width, input_shape=input_shape, num_classes=num_classes, mean=mean,
                std=std)


def _vgg(name: str, stages: Sequence[tuple[int, int]], width: float, *, input_shape: tuple[int, int, int],
         num_classes: int, mean: Sequence[float], std: Sequence[float]) -> Classifier:
    """``stages`` of (channels, convolutions) times ``width``, 3×3 conv + BN + ReLU, a ceil-mode 2×2 max-pool after
    each stage, global average pooling, two hidden fully connected layers of 512 · ``width`` and the output."""
    w = _check_width(name, width)
    cin = input_shape[0]
    layers: list[nn.Module] = []
    for cout, n in stages:
        cout = _scaled(cout, w)
        for _ in range(n):
            layers += _conv_bn_relu(cin, cout, 3)
            cin = cout
        layers.append(nn.MaxPool2d(2, ceil_mode=True))
    hidden = _scaled(512, w)
    return _pooled_classifier(name, layers, cin, [hidden, hidden], input_shape=input_shape,
                              num_classes=num_classes, mean=mean, std=std)


# The poster ``004``'s architectures at full width for 32×32 inputs (CIFAR-10/100) -------------------------------
# The CIFAR forms people train (e.g. Kuang Liu's ``pytorch-cifar`` and Fu's ``pytorch-vgg-cifar10``, the usual
# baselines): the ImageNet widths and depths, a stride-1 3×3 stem without max-pooling in place of the ÷4 ImageNet
# stem. Parameter counts and MACs in the docstrings: 3×32×32 inputs, 10 classes, default width, from
# ``edgebench.compress.stats.model_stats`` (BatchNorm parameters included; MACs of convolutions and linear layers).
# ``width`` thins them like the ``_small`` variants, which stay as they are (plans and caches name them).

_MOBILENET_CIFAR_BLOCKS = _MOBILENET_BLOCKS[:11] + ((1024, 2), (1024, 1))


@MODELS.register("mobilenet_v1_cifar")
def mobilenet_v1_cifar(*, input_shape: tuple[int, int, int], num_classes: int, mean: Sequence[float] = (0.0,),
                       std: Sequence[float] = (1.0,), width: float = 1.0) -> Classifier:
    """MobileNetV1 (Howard et al. 2017) at full width (α = 1) for 32×32 inputs, the CIFAR form.

    The 13 depthwise-separable blocks of Table 1 with the paper's channels (32 stem, 64 … 1024) and block
    strides 2 in blocks 2, 4, 6 and 12 as in the paper; only the stem has stride 1 instead of 2, so the total
    stride is 16 and the last blocks run at 2×2 on 32×32 (as in ``pytorch-cifar``'s MobileNet).
    On 3×32×32, 10 classes: 3 217 226 parameters, 46.4 M MACs (46 354 432).
    """
    return _mobilenet_v1("mobilenet_v1_cifar", _MOBILENET_CIFAR_BLOCKS, width, input_shape=input_shape,
                         num_classes=num_classes, mean=mean, std=std)


@MODELS.register("densenet121_cifar")
def densenet121_cifar(*, input_shape: tuple[int, int, int], num_classes: int, mean: Sequence[float] = (0.0,),
                      std: Sequence[float] = (1.0,), width: float = 1.0) -> Classifier:
    """DenseNet-121 (Huang et al. 2017) at full width (growth rate k = 32) for 32×32 inputs, the CIFAR form.

    The 6-12-24-16 bottleneck layers and compression-0.5 transitions of the ImageNet DenseNet-121 (Table 1);
    the stem is one 3×3 convolution of stride 1 to 2k = 64 channels without max-pooling (the paper's CIFAR
    stem), so the blocks run at 32, 16, 8 and 4 pixels (as in ``pytorch-cifar``'s DenseNet121).
    On 3×32×32, 10 classes: 6 956 298 parameters, 888 M MACs (888 350 720).
    """
    return _densenet121("densenet121_cifar", width, 1, input_shape=input_shape, num_classes=num_classes,
                        mean=mean, std=std)


@MODELS.register("resnet50_cifar")
def resnet50_cifar(*, input_shape: tuple[int, int, int], num_classes: int, mean: Sequence[float] = (0.0,),
                   std: Sequence[float] = (1.0,), width: float = 1.0) -> Classifier:
    """ResNet-50 (He et al. 2016) at full width (64-128-256-512 bottleneck channels, 2048 out) for 32×32 inputs.

    The 3-4-6-3 bottleneck stages of Table 1 with stage strides 1-2-2-2; the stem is one 3×3 convolution
    of stride 1 + BN + ReLU and no max-pooling (instead of 7×7/2 + max-pool/2), the CIFAR form of
    ``pytorch-cifar``'s ResNet50, so the stages run at 32, 16, 8 and 4 pixels.
    On 3×32×32, 10 classes: 23 520 842 parameters, 1.30 G MACs (1 297 829 888).
    """
    return _resnet50("resnet50_cifar", width, 1, input_shape=input_shape, num_classes=num_classes, mean=mean,
                     std=std)


@MODELS.register("vgg19_cifar")
def vgg19_cifar(*, input_shape: tuple[int, int, int], num_classes: int, mean: Sequence[float] = (0.0,),
                std: Sequence[float] = (1.0,), width: float = 1.0) -> Classifier:
    """VGG-19 (Simonyan & Zisserman 2015, configuration E) at full width for 32×32 inputs, the CIFAR form.

    16 3×3 convolutions of 64-128-256-512-512 channels (2-2-4-4-4) with BN and ReLU, five 2×2 max-pools
    (32 → 1), and a classifier of two hidden fully connected layers of 512 units + the output, the CIFAR
    VGG of Fu's ``pytorch-vgg-cifar10`` (the 4096-unit ImageNet head fits the 7×7 map of 224×224 inputs, not
    the 1×1 map here); no dropout. It is ``vgg19_small`` with ``width = 1``.
    On 3×32×32, 10 classes: 20 560 330 parameters, 399 M MACs (398 660 608).
    """
    return _vgg("vgg19_cifar", _VGG19_STAGES, width, input_shape=input_shape, num_classes=num_classes, mean=mean,
                std=std)
