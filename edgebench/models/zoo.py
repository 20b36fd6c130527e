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
