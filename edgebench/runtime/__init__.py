"""DEVICE SIDE: inference backends. Imports numpy and, lazily, one runtime library; never torch.

A backend ``load``s an artifact and ``predict``s batches; timing, warm-up and stop rules belong to the
agent (the load generator), never to the backend (MLPerf's SUT / loadgen split).
"""

from __future__ import annotations

from edgebench.registry import Registry, check_kwargs
from edgebench.runtime.base import Backend

BACKENDS: Registry[type[Backend]] = Registry(
    "backend", modules=("edgebench.runtime.onnxruntime", "edgebench.runtime.openvino", "edgebench.runtime.null")
)


def create_backend(name: str, *, where: str = "", **options: object) -> Backend:
    """Instantiate the backend ``name`` with its options (unknown options are an error)."""
    cls = BACKENDS.get(name, where=where)
    check_kwargs(cls.__init__, options, what=f"backend {name!r}", where=where)
    return cls(**options)


__all__ = ["BACKENDS", "Backend", "create_backend"]
