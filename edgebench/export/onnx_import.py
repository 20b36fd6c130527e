"""Checks on an ONNX file the user gives (``[[models]] onnx = "..."``) before anything loads it.

An ONNX file may keep tensors outside itself ("external data": ``location`` entries, relative to the model's
folder). A hostile file can point them anywhere — ``../../etc/passwd``, an absolute path, a symbolic link
out of the folder — and a runtime that follows them reads files the user never meant to hand over. ONNX
Runtime refuses such paths since 1.2x, older builds and other runtimes do not: edgebench refuses them itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from edgebench.errors import ArtifactError


def _node_tensors(nodes: Iterable[Any]) -> Iterator[Any]:
    """Every tensor held by ``nodes``' attributes, subgraphs (If, Loop, Scan) included."""
    for node in nodes:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield from (attr.sparse_tensor.values, attr.sparse_tensor.indices)
            for sp in attr.sparse_tensors:
                yield from (sp.values, sp.indices)
            if attr.HasField("g"):
                yield from _graph_tensors(attr.g)
            for g in attr.graphs:
                yield from _graph_tensors(g)


def _graph_tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sp in graph.sparse_initializer:
        yield from (sp.values, sp.indices)
    yield from _node_tensors(graph.node)


def external_locations(model: Any) -> list[tuple[str, str]]:
    """``(tensor name, location)`` of every tensor of ``model`` (an ``onnx.ModelProto``) that keeps its data
    in another file."""
    tensors = [*_graph_tensors(model.graph), *(t for f in model.functions for t in _node_tensors(f.node))]
    out = []
    for t in tensors:
        entries = {e.key: e.value for e in t.external_data}
        if entries or t.data_location == 1:  # TensorProto.EXTERNAL
            out.append((t.name, entries.get("location", "")))
    return out


def check_external_data(path: Path, *, where: str) -> None:
    """Raise :class:`ArtifactError` if the ONNX file ``path`` keeps tensor data outside its own folder (a path
    with ``..``, an absolute path, a symbolic link leading out) or names no file. A file that is not a
    readable ONNX protobuf passes: ONNX Runtime refuses it next, with its own message."""
    import onnx

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # any parse failure: not ONNX; the runtime refuses it next, in its own words
        return
    folder = path.parent.resolve()
    for name, location in external_locations(model):
        target = None if not location or "\0" in location else (folder / location).resolve()
        if target is None or os.path.isabs(location) or not target.is_relative_to(folder):
            raise ArtifactError(
                f"{where}: {path}: tensor {name!r} keeps its data in {location!r}, which is outside the model's "
                f"folder {folder}; refused (external data must be a file beside the model: save it with "
                "onnx.save_model(model, path, save_as_external_data=True, location='model.data'))")
