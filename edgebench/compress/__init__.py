"""Compression methods: one file per method, one registry, one result type.

A method is a variant method (:mod:`edgebench.variants`, shared with the defenses) of kind ``compress``,
configured once from a plan's ``[[compress]]`` entry (keyword-only parameters, validated in ``__init__``; create
one with :func:`edgebench.variants.create_method`) and applied to a trained torch model. It returns a
:class:`~edgebench.variants.Variant`: the **torch twin** that host attacks differentiate through
(compression-aware, as in the HFGSM of seed ``000``) and, by default, the same module exported to ONNX and
OpenVINO IR for the devices. Host side only: imports torch (and NNCF / torch-pruning where a method needs them)
lazily. """

from __future__ import annotations

from typing import Any

from edgebench.registry import Registry

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


__all__ = ["COMPRESSORS"]
