"""DEVICE SIDE: inference backends. Imports numpy and, lazily, one runtime library; never torch.

A backend ``load``s an artifact and ``predict``s batches; timing, warm-up and stop rules belong to the
agent (the load generator), never to the backend (MLPerf's SUT / loadgen split).
"""

from __future__ import annotations

from edgebench.errors import ConfigError
from edgebench.registry import Registry
from edgebench.runtime.base import Backend

BACKENDS: Registry[type[Backend]] = Registry(
    "backend", modules=("edgebench.runtime.onnxruntime", "edgebench.runtime.null")
)


def create_backend(name: str, *, where: str = "", **options: object) -> Backend:
    """Instantiate the backend ``name`` with its options (unknown options are an error)."""
    import inspect

    cls = BACKENDS.get(name, where=where)
    allowed = [n for n, p in inspect.signature(cls.__init__).parameters.items() if p.kind == p.KEYWORD_ONLY]
    unknown = [k for k in options if k not in allowed]
    if unknown:
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}backend {name!r} has no option(s) {unknown}; allowed: {allowed}")
    return cls(**options)


__all__ = ["BACKENDS", "Backend", "create_backend"]
