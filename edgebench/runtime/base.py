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
    #: the model file's batch when its batch axis is a number, not dynamic (set by
    #: :class:`~edgebench.runtime.boundary.BoundaryBackend`): every inference runs exactly that many samples
    fixed_batch: int | None = None

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

    def scores(self, out: Any) -> np.ndarray:
        """The output of a :meth:`bind` call as float32 logits of the samples bound."""
        return np.array(out[0] if isinstance(out, list) else out, dtype=np.float32)

    def select_output(self, which: str | int) -> None:
        """Make ``predict`` and ``bind`` return the loaded model's output ``which`` (its name or its index) instead
        of the first; raise :class:`~edgebench.errors.ArtifactError` naming the file's outputs if there is none."""
        from edgebench.errors import ArtifactError

        raise ArtifactError(f"backend {self.name!r} cannot choose among a model's outputs")

    def profile(self, x: np.ndarray, runs: int) -> tuple[list[dict[str, Any]], int] | None:
        """Per-operator profile of ``runs`` inferences on ``x`` in a separate session with the runtime's profiler
        on (the timed session is left as it is): the node records of :mod:`edgebench.runtime.profiling` summed
        over the inferences profiled, and their number. None: this runtime has no profiler."""
        return None

    @abc.abstractmethod
    def info(self) -> dict[str, Any]:
        """What actually ran: runtime version, providers/devices, threads, precision."""


def output_index(path: Path | None, names: list[list[str]], which: str | int) -> int:
    """The index of output ``which`` (a name, or an index) among a model's outputs (each one's names); an
    :class:`~edgebench.errors.ArtifactError` naming the file and its outputs if it has none such."""
    from edgebench.errors import ArtifactError

    for i, own in enumerate(names):
        if which == i if isinstance(which, int) else which in own:
            return i
    listed = [own[0] if own else f"#{i}" for i, own in enumerate(names)]
    raise ArtifactError(f"{path}: the model has no output {which!r}; its outputs are {listed} (0..{len(names) - 1}): "
                        "set output on the model entry to one of them")
