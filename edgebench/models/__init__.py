"""The model zoo (registered architectures) and the training loop. Host side: imports torch lazily.

Every zoo factory is called as ``factory(input_shape=(C, H, W), num_classes=K, mean=..., std=...)`` and
returns an ``nn.Module`` whose first layer normalizes, so that it takes inputs in [0, 1] like every
backend and attack (DESIGN.md, "The model owns its preprocessing").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgebench.registry import Registry

MODELS: Registry[Callable[..., Any]] = Registry("model", modules=("edgebench.models.zoo", "edgebench.models.cifar"))


def create_model(name: str, *, input_shape: tuple[int, int, int], num_classes: int,
                 mean: tuple[float, ...] = (0.0,), std: tuple[float, ...] = (1.0,), where: str = "",
                 **params: Any) -> Any:
    """Build the zoo model ``name`` for inputs of ``input_shape`` and ``num_classes`` outputs."""
    factory = MODELS.get(name, where=where)
    return factory(input_shape=tuple(input_shape), num_classes=num_classes, mean=tuple(mean), std=tuple(std),
                   **params)


__all__ = ["MODELS", "create_model"]
