"""The backend protocol shared by every runtime. Torch-free."""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


class Backend(abc.ABC):
    """One inference runtime on one device.

    Subclasses take their options as keyword-only constructor arguments (thread counts, providers, ...),
    so a bad option fails before any model is loaded.
    """

    name: str = "?"

    @abc.abstractmethod
    def load(self, path: Path) -> None:
        """Load the artifact at ``path``; raise :class:`~edgebench.errors.ArtifactError` if it is rejected."""

    @property
    @abc.abstractmethod
    def input_shape(self) -> tuple[int | None, ...]:
        """The model's input shape, ``None`` for dynamic axes (the batch axis)."""

    @abc.abstractmethod
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Logits for a float32 batch ``x`` of shape ``(N, *input_shape[1:])``."""

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        """Return a zero-argument callable that runs one inference on ``x``, prepared once.

        The latency pass times calls of this callable, so any per-call Python work (building input
        dicts, copying arrays) must happen here, not in the callable. The default just closes over
        ``predict``; backends override it with their cheapest call path.
        """
        predict = self.predict
        return lambda: predict(x)

    def profile(self, x: np.ndarray, runs: int) -> tuple[list[dict[str, Any]], int] | None:
        """Per-operator profile of ``runs`` inferences on ``x`` in a separate session with the runtime's profiler
        on (the timed session is left as it is): the node records of :mod:`edgebench.runtime.profiling` summed
        over the inferences profiled, and their number. None: this runtime has no profiler."""
        return None

    @abc.abstractmethod
    def info(self) -> dict[str, Any]:
        """What actually ran: runtime version, providers/devices, threads, precision."""
