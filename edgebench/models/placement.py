"""Where a host stage computes: on the device of the model it is given (issue 18, "Every host stage runs there").

The contract with the runner: the runner puts the model on the device (``[host] device``); every host function
(training, compression, defenses, attacks, gradient checks, parity) follows :func:`model_device` and moves its
data there batch by batch with :func:`to_model`. So no function here picks a device, and none is CPU-only by
accident. The rules the host code keeps, and this module's helpers for them:

- data made from numpy moves to the model's device (and floating dtype) one batch at a time (:func:`to_model`;
  from numpy on CUDA through pinned memory with a ``non_blocking`` copy, so the copy overlaps the GPU's work);
- random draws come from CPU ``torch.Generator`` s and move afterwards, so a GPU run and a CPU run draw the
  same noise and shuffles;
- results leave the device as numpy through :func:`numpy_of` (``.detach().cpu().numpy()``); weights are hashed
  and state dicts cached on the CPU (:func:`cpu_state`);
- files are exported from a CPU copy (:func:`cpu_copy`), so an artifact does not depend on where the twin was
  computed.

Host side only: imports torch.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import numpy as np
import torch
from torch import nn

CPU = torch.device("cpu")


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (else its first buffer); the CPU for a model with neither."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return CPU


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of ``model``'s first floating-point parameter or buffer (inputs are cast to it); float32
    without one."""
    for t in itertools.chain(model.parameters(), model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.float32


def to_device(a: np.ndarray | torch.Tensor, device: torch.device, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``a`` (numpy or a tensor) as a tensor on ``device`` (cast to ``dtype`` if given). A numpy array bound for a
    CUDA device is staged in pinned host memory and copied with ``non_blocking=True``; elsewhere a plain copy
    (or no copy at all when ``a`` is already there)."""
    device = torch.device(device)
    t = torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else torch.as_tensor(a)
    if dtype is not None and t.device == CPU and t.dtype != dtype:
        t = t.to(dtype)  # cast on the host: the device receives the final bytes
    if device.type == "cuda" and t.device == CPU:
        return t.pin_memory().to(device, dtype=dtype, non_blocking=True)
    return t.to(device, dtype=dtype)


def to_model(model: nn.Module, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor | None = None,
             ) -> Any:
    """A batch for ``model``: inputs ``x`` on its device in its floating dtype, and labels ``y`` (if given) on its
    device as int64; returns ``x`` alone or ``(x, y)``."""
    device = model_device(model)
    xt = to_device(x, device, dtype=model_dtype(model))
    if y is None:
        return xt
    return xt, to_device(y, device, dtype=torch.int64)


def example_input(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """One zero input of ``input_shape`` for ``model`` (batch 1, its device and dtype): what tracers are given."""
    return torch.zeros(1, *input_shape, device=model_device(model), dtype=model_dtype(model))


def numpy_of(t: torch.Tensor) -> np.ndarray:
    """``t`` as numpy, wherever it lives (``.detach().cpu().numpy()``)."""
    return t.detach().cpu().numpy()


def cpu_state(obj: Any) -> Any:
    """``obj`` (a state dict, an optimizer's state, nested dicts / lists / tuples of tensors) with every tensor
    detached and on the CPU: what goes into the cache or a checkpoint, so a file written on a GPU loads anywhere
    and hashes the same."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return type(obj)((k, cpu_state(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_state(v) for v in obj)
    return obj


def cpu_copy(model: nn.Module) -> nn.Module:
    """``model`` itself if it is on the CPU, else a deep copy moved to the CPU (the original stays where it is):
    what an exporter traces, so that the file written is the one a CPU run writes."""
    if model_device(model) == CPU:
        return model
    return copy.deepcopy(model).to(CPU)
