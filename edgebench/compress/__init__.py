"""Compression methods: one file per method, one registry, one result type.

A method is configured once from a plan's ``[[compress]]`` entry (keyword-only parameters, validated in
``__init__``) and applied to a trained torch model. It returns a :class:`~edgebench.compress.base.Compressed`
variant: the **torch twin** that host attacks differentiate through (compression-aware, as in the HFGSM
of seed ``000``) and, by default, the same module exported to ONNX and OpenVINO IR for the devices.
Host side only: imports torch (and NNCF / torch-pruning where a method needs them) lazily.
"""

from __future__ import annotations

from typing import Any

from edgebench.registry import Registry, check_kwargs

COMPRESSORS: Registry[Any] = Registry(
    "compression method",
    modules=(
        "edgebench.compress.filter_pruning",
        "edgebench.compress.magnitude_pruning",
        "edgebench.compress.dns",
        "edgebench.compress.inq",
        "edgebench.compress.kbit",
        "edgebench.compress.int8",
        "edgebench.compress.hashed",
    ),
)


def create_compressor(name: str, *, where: str = "", **params: Any) -> Any:
    """Instantiate method ``name``; unknown or missing parameters and bad values are :class:`ConfigError`."""
    cls = COMPRESSORS.get(name, where=where)
    check_kwargs(cls.__init__, params, what=f"compression method {name!r}", where=where)
    return cls(**params)


__all__ = ["COMPRESSORS", "create_compressor"]
