"""fp16 ONNX: an fp32 ONNX file with its float initializers and computation in float16, its inputs and outputs
kept float32 (a Cast at each end), so the same input arrays and parity check apply. Host side, torch-free.

The conversion is ONNX Runtime's own ``onnxruntime.transformers.float16.convert_float_to_float16`` (shipped
in the ``onnxruntime`` package: no further dependency), with ``keep_io_types``. ONNX Runtime's CPU provider
has float16 kernels for few operators and inserts Casts around the others, so on a CPU the fp16 file is
mainly half the storage; GPUs and NPUs compute in it."""

from __future__ import annotations

from pathlib import Path

from edgebench.errors import ArtifactError

#: the parity tolerance of an fp16 artifact against its fp32 twin (relative to the logit scale beyond 1): float16
#: keeps 11 significant bits, a relative error of about 5e-4 per rounding, which grows through the layers
FP16_ATOL = 1e-2


def to_fp16(src: Path, dst: Path) -> Path:
    """Write the fp32 ONNX file ``src`` as fp16 to ``dst`` (float32 inputs and outputs); checked with
    ``onnx.checker``. A graph that already holds quantized ops (QDQ int8) is refused: fp16 is for float graphs."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    quantized = sorted({n.op_type for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")})
    if quantized:
        raise ArtifactError(f"{src}: has {quantized} nodes (an int8 QDQ graph); fp16 applies to float graphs only")
    half = convert_float_to_float16(model, keep_io_types=True)
    _toposort(half.graph)  # the converter appends its input Casts after the nodes that read them
    onnx.checker.check_model(half)
    onnx.save(half, str(dst))
    return dst


def _toposort(graph: object) -> None:
    """Order ``graph``'s nodes so that each comes after the producers of its inputs (stable otherwise)."""
    nodes = list(graph.node)  # type: ignore[attr-defined]
    known = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}  # type: ignore[attr-defined]
    ordered = []
    while nodes:
        ready = [n for n in nodes if all(i in known for i in n.input)]
        if not ready:
            raise ArtifactError("fp16 conversion left a graph with a cycle or a missing input")
        for n in ready:
            known.update(n.output)
            ordered.append(n)
        nodes = [n for n in nodes if n not in ready]
    del graph.node[:]  # type: ignore[attr-defined]
    graph.node.extend(ordered)  # type: ignore[attr-defined]
