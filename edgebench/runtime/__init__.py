"""DEVICE SIDE: inference backends. Imports numpy and, lazily, one runtime library; never torch.

A backend ``load``s an artifact and ``predict``s batches; timing, warm-up and stop rules belong to the
agent (the load generator), never to the backend (MLPerf's SUT / loadgen split).
"""

from __future__ import annotations

from typing import Any

from edgebench.registry import Registry, check_kwargs
from edgebench.runtime.base import Backend

BACKENDS: Registry[type[Backend]] = Registry(
    "backend", modules=("edgebench.runtime.onnxruntime", "edgebench.runtime.openvino", "edgebench.runtime.null")
)


def create_backend(name: str, *, where: str = "", io: dict[str, Any] | None = None, **options: object) -> Backend:
    """Instantiate the backend ``name`` with its options (unknown options are an error). ``io`` (a model's
    boundary, :class:`~edgebench.runtime.boundary.ModelIO` as a dict; ``{}`` for edgebench's own convention):
    the backend seen through :class:`~edgebench.runtime.boundary.BoundaryBackend`, which also runs a file with a
    fixed batch; ``None``: the bare backend."""
    cls = BACKENDS.get(name, where=where)
    check_kwargs(cls.__init__, options, what=f"backend {name!r}", where=where)
    if io is None:
        return cls(**options)
    from edgebench.runtime.boundary import BoundaryBackend, ModelIO

    boundary = ModelIO.from_dict(io, where=f"{where}: io" if where else "io")
    return BoundaryBackend(cls(**options), boundary)


__all__ = ["BACKENDS", "Backend", "create_backend"]
