"""The null backend: returns zeros of the right shape instantly, to measure the harness's own overhead.

(MLPerf's ``backend_null``.) Reads the input shape from the model card beside the artifact when there is
one, so it needs no runtime library at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.runtime import BACKENDS
from edgebench.runtime.base import Backend


@BACKENDS.register("null")
class NullBackend(Backend):
    """Returns ``zeros((N, num_classes))``; ``num_classes`` comes from the model card or the option."""

    name = "null"

    def __init__(self, *, num_classes: int = 10) -> None:
        self.num_classes = num_classes
        self._shape: tuple[int | None, ...] = (None,)

    def load(self, path: Path) -> None:
        card = Path(path).with_suffix(".card.json")
        if card.is_file():
            meta = json.loads(card.read_text())
            self.num_classes = int(meta.get("num_classes", self.num_classes))
            self._shape = (None, *meta.get("input_shape", []))

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return self._shape

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.zeros((len(x), self.num_classes), dtype=np.float32)

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        out = np.zeros((len(x), self.num_classes), dtype=np.float32)
        return lambda: out

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "runtime_version": "", "precision": "n/a"}
