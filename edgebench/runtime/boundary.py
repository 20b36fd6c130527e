"""The model's boundary: ONNX files as users bring them, run as if they took edgebench's inputs. DEVICE SIDE,
numpy only.

edgebench's data, and every attack, live in [0, 1], NCHW, and read logits. A file converted from another framework
may take NHWC input, another value range ([0, 255], [-1, 1]), end in a softmax, hold the scores in its second
output, or have a fixed batch (no dynamic batch axis, as many vendor and model-zoo files are). The model entry
says so (``layout``, ``input_range``, ``output``, ``scores``: :class:`ModelIO`), and :class:`BoundaryBackend`
converts at the boundary, around any runtime backend, so every caller of :meth:`Backend.predict` and
:meth:`Backend.bind` (the accuracy and latency passes, the import check, query attacks) sees [0, 1] NCHW in and
logits out. The artifact itself is never changed: the file the user deploys is the file measured.

- **input**: ``x_model = lo + x * (hi - lo)``, then ``(N, C, H, W) -> (N, H, W, C)`` for ``nhwc``;
- **fixed batch** ``b`` (the file's batch axis is a number): inputs run in chunks of exactly ``b``, the last
  padded with copies of its last sample and the padding's outputs dropped; a bound (latency) call runs one batch
  of ``b``, so its time is per batch of ``b``;
- **output**: the output named (or numbered) ``output``; ``probabilities`` become log-probabilities
  ``log(max(p, tiny))`` (float32's smallest normal, so ``log`` >= -87.3): the argmax is unchanged, and since
  ``log softmax(z) = z - logsumexp(z)``, the cross-entropy and the margin between two classes equal the logits'
  (until a probability saturates to 0 in float32).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.errors import ArtifactError, ConfigError
from edgebench.runtime.base import Backend

LAYOUTS = ("nchw", "nhwc")
SCORES = ("logits", "probabilities")
_TINY = float(np.finfo(np.float32).tiny)


@dataclass(frozen=True)
class ModelIO:
    """How a model file's input and output differ from edgebench's (see the module docstring). ``output``: the
    output's name, or its index among the file's outputs."""

    layout: str = "nchw"
    input_range: tuple = (0.0, 1.0)
    output: Any = 0
    scores: str = "logits"

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None, *, where: str = "io") -> ModelIO:
        """The boundary a job (or a host caller) gives as a plain dict; a bad value is one :class:`ConfigError`."""
        raw = dict(raw or {})
        unknown = sorted(set(raw) - {"layout", "input_range", "output", "scores"})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: layout, input_range, output, scores")
        io = cls(layout=raw.get("layout", "nchw"), input_range=tuple(raw.get("input_range", (0.0, 1.0))),
                 output=raw.get("output", 0), scores=raw.get("scores", "logits"))
        if io.layout not in LAYOUTS:
            raise ConfigError(f"{where}: layout {io.layout!r} is not one of {list(LAYOUTS)}")
        if io.scores not in SCORES:
            raise ConfigError(f"{where}: scores {io.scores!r} is not one of {list(SCORES)}")
        lo_hi = io.input_range
        if (len(lo_hi) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v)
                                   for v in lo_hi) or not lo_hi[0] < lo_hi[1]):
            raise ConfigError(f"{where}: input_range must be [lo, hi] with finite lo < hi (e.g. [0, 255] or "
                              f"[-1, 1]), got {list(lo_hi)!r}")
        out = io.output
        if isinstance(out, bool) or not isinstance(out, (str, int)) or (isinstance(out, int) and out < 0) or \
                (isinstance(out, str) and not out):
            raise ConfigError(f"{where}: output must be an output's name or its index (0, 1, ...), got {out!r}")
        return cls(io.layout, (float(lo_hi[0]), float(lo_hi[1])), out, io.scores)

    def to_dict(self) -> dict[str, Any]:
        """The keys that differ from edgebench's own convention (``{}``: the file takes what edgebench feeds)."""
        out: dict[str, Any] = {}
        if self.layout != "nchw":
            out["layout"] = self.layout
        if tuple(self.input_range) != (0.0, 1.0):
            out["input_range"] = [float(v) for v in self.input_range]
        if self.output != 0:
            out["output"] = self.output
        if self.scores != "logits":
            out["scores"] = self.scores
        return out

    def to_model(self, x: np.ndarray) -> np.ndarray:
        """A float32 batch in [0, 1], NCHW, as the model takes it (C-contiguous float32)."""
        lo, hi = self.input_range
        if (lo, hi) != (0.0, 1.0):
            x = np.asarray(x, dtype=np.float32) * np.float32(hi - lo) + np.float32(lo)
        if self.layout == "nhwc":
            x = np.moveaxis(x, 1, -1)
        return np.ascontiguousarray(x, dtype=np.float32)

    def to_logits(self, y: np.ndarray) -> np.ndarray:
        """The chosen output as logits (log-probabilities for ``probabilities``)."""
        y = np.asarray(y, dtype=np.float32)
        return np.log(np.maximum(y, _TINY)) if self.scores == "probabilities" else y

    def data_dims(self, model_dims: tuple) -> tuple:
        """The model's per-sample dims in edgebench's layout (``(H, W, C) -> (C, H, W)`` for ``nhwc``)."""
        if self.layout == "nhwc" and len(model_dims) >= 2:
            return (model_dims[-1], *model_dims[:-1])
        return tuple(model_dims)


def fixed_chunk(batch_size: int, fixed: int | None) -> int:
    """The chunk a pass streams a test set in: ``batch_size`` rounded down to a multiple of the model's fixed batch
    (at least one batch), so only the last chunk is padded."""
    return batch_size if not fixed else fixed * max(1, batch_size // fixed)


class BoundaryBackend(Backend):
    """Any backend, seen through a :class:`ModelIO` and the file's fixed batch (see the module docstring)."""

    def __init__(self, inner: Backend, io: ModelIO) -> None:
        self.inner = inner
        self.io = io
        self.name = inner.name
        self._bound = 1

    def load(self, path: Path) -> None:
        self.inner.load(path)
        if self.io.output != 0:
            self.inner.select_output(self.io.output)
        shape = self.inner.input_shape
        if self.io.layout == "nhwc" and len(shape) != 4:
            raise ArtifactError(f"{path}: layout 'nhwc' needs a 4-d input (batch, height, width, channels), the "
                                f"model's input has {len(shape)} dims; remove layout from the model entry")
        batch = shape[0] if shape else None
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        shape = self.inner.input_shape
        return (shape[0], *self.io.data_dims(tuple(shape[1:]))) if shape else shape

    def _padded(self, x: np.ndarray) -> np.ndarray:
        """``x`` (model space, at most one fixed batch) padded to the fixed batch with copies of its last sample."""
        b = self.fixed_batch
        if b is None or len(x) == b:
            return x
        fill = x[-1:] if len(x) else np.zeros((1, *x.shape[1:]), dtype=x.dtype)
        return np.ascontiguousarray(np.concatenate([x, np.repeat(fill, b - len(x), axis=0)]))

    def predict(self, x: np.ndarray) -> np.ndarray:
        xm = self.io.to_model(x)
        b = self.fixed_batch
        if b is None or len(xm) == b:
            return self.io.to_logits(self.inner.predict(xm))
        parts = [self.inner.predict(self._padded(xm[i:i + b]))[:min(b, len(xm) - i)]
                 for i in range(0, max(len(xm), 1), b)]
        return self.io.to_logits(np.concatenate(parts)[:len(xm)])

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        """The inner backend's bound call on ``x`` converted (once) and padded to the fixed batch: with a fixed
        batch ``b`` > 1 one call is one batch of ``b``. :meth:`scores` reads its output."""
        self._bound = len(x)
        return self.inner.bind(self._padded(self.io.to_model(x)))

    def scores(self, out: Any) -> np.ndarray:
        return self.io.to_logits(self.inner.scores(out)[:self._bound])

    def profile(self, x: np.ndarray, runs: int) -> tuple[list[dict[str, Any]], int] | None:
        return self.inner.profile(self._padded(self.io.to_model(x)), runs)

    def info(self) -> dict[str, Any]:
        return {**self.inner.info(), "io": self.io.to_dict(), "fixed_batch": self.fixed_batch}
