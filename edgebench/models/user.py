"""The user's own models: a torch factory ``package.module:function`` (plus an optional state-dict
checkpoint), or a ready ONNX file."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from edgebench.errors import ArtifactError, ConfigError


def build_from_factory(ref: str, params: dict[str, Any], *, where: str) -> Any:
    """Import ``package.module`` and call ``function(**params)``; it must return an ``nn.Module`` that
    takes inputs in [0, 1] and returns logits."""
    from torch import nn

    module_name, _, func_name = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}: cannot import {module_name!r} ({exc}); is it on PYTHONPATH?") from None
    except RuntimeError as exc:  # e.g. timm under a torchvision built for another torch: "torchvision::nms ..."
        raise ConfigError(f"{where}: importing {module_name!r} failed ({exc}); are its dependencies built for "
                          f"this torch?") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ConfigError(f"{where}: {module_name!r} has no function {func_name!r}")
    try:
        model = func(**params)
    except TypeError as exc:
        raise ConfigError(f"{where}: {ref}({params}) failed: {exc}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{where}: {ref} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def load_state_dict(model: Any, path: Path, *, where: str) -> None:
    """Load a state-dict checkpoint safely (``weights_only=True``) into ``model``."""
    import torch

    if not path.is_file():
        raise ArtifactError(f"{where}: checkpoint {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ArtifactError(f"{where}: {path} is not a loadable state-dict checkpoint ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        first = str(exc).splitlines()[0]
        raise ArtifactError(f"{where}: {path} does not fit the model ({first})") from None
