"""int8 ONNX (QDQ) that ONNX Runtime runs with int8 kernels. Host side, torch-free.

ONNX Runtime executes a QDQ model in int8 only where its graph optimizer can fuse a ``DequantizeLinear →
op → QuantizeLinear`` group into a quantized kernel (``QLinearConv``, ``QGemm``, ``QLinearMatMul``); anything
it cannot fuse runs in float32 *after* dequantizing its int8 weights on every inference. NNCF's ONNX QDQ graph
(``nncf.quantize`` on an ONNX model) leaves two such gaps, which made the int8 artifact of ``liu2018_mnist``
slower than its fp32 base:

- **no quantizer on a Gemm/MatMul's activation input** behind a ``Flatten``/``Reshape``: NNCF puts one
  quantizer before the ``MaxPool`` and lets it stand for the ops that keep the grid, but ONNX Runtime carries
  the ``DequantizeLinear`` forward through ``MaxPool`` and ``Transpose`` only, not ``Flatten``; the 3.2 M-weight
  ``Gemm`` ran in float32 with its weights dequantized per call.
- **a float32 bias on an op with no output quantizer** (the logits ``Gemm``): ONNX Runtime's QDQ Gemm fusion
  wants the bias as int32 (scale ``s_x · s_w``) when the output stays float.

:func:`complete_qdq` closes both: it inserts the ``QuantizeLinear``/``DequantizeLinear`` pair of the upstream
quantizer (exact: values behind ``MaxPool``/``Flatten`` already sit on that grid) and quantizes such biases to
int32, as ``onnxruntime.quantization.quantize_static`` does. :func:`quantize_onnx_ort` is that quantizer
(per-channel int8 weights, uint8 activations, QDQ) on a calibration set; :func:`optimized_ops` lists the ops
ONNX Runtime's optimizer leaves, to check that the int8 kernels are there.
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: ops that move or select values without changing them: a quantizer before them stands for their output
_GRID_KEEPING = frozenset({"MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity"})
#: ops ONNX Runtime fuses with their DequantizeLinear inputs into int8 kernels: name -> data input, bias input
_FUSABLE = {"Conv": (0, 2), "Gemm": (0, 2), "MatMul": (0, None)}
#: the op types of ONNX Runtime's int8 kernels in an optimized graph
INT8_KERNELS = frozenset({"QLinearConv", "QGemm", "QLinearMatMul", "MatMulInteger", "ConvInteger",
                          "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool", "QLinearAveragePool"})


def complete_qdq(model: Any) -> dict[str, int]:
    """Make the QDQ ``model`` (an ``onnx.ModelProto``, changed in place) fusable by ONNX Runtime: a quantizer
    pair on every Conv/Gemm/MatMul data input that lacks one but whose value comes, through grid-keeping ops,
    from a per-tensor ``DequantizeLinear``; an int32 bias (scale ``s_x · s_w``, zero point 0) for each
    Conv/Gemm whose data and weight inputs are dequantized and whose bias is a float initializer; negative
    ``axis`` attributes of weight dequantizers made positive. Returns the counts of each change."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    counts = {"activation_qdq": 0, "int32_bias": 0}

    def dq_of(name: str) -> Any:
        n = producer.get(name)
        return n if n is not None and n.op_type == "DequantizeLinear" else None

    def upstream_dq(name: str) -> Any:
        n = producer.get(name)
        while n is not None and n.op_type in _GRID_KEEPING:
            n = producer.get(n.input[0])
        return n if n is not None and n.op_type == "DequantizeLinear" and _per_tensor(n, inits) else None

    for n in list(g.node):
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            for a in n.attribute:
                if a.name == "axis" and a.i < 0:
                    a.i += len(inits[n.input[0]].dims)
    for n in list(g.node):
        if n.op_type not in _FUSABLE:
            continue
        data, bias = _FUSABLE[n.op_type]
        x = n.input[data]
        if dq_of(x) is None and (src := upstream_dq(x)) is not None:
            s, z = src.input[1], src.input[2] if len(src.input) > 2 else ""
            q = helper.make_node("QuantizeLinear", [x, s, z], [f"{x}_eb_q"], name=f"{x}_eb_Q")
            dq = helper.make_node("DequantizeLinear", [f"{x}_eb_q", s, z], [f"{x}_eb_dq"], name=f"{x}_eb_DQ")
            _insert_before(g, n, [q, dq])
            producer[q.output[0]], producer[dq.output[0]] = q, dq
            n.input[data] = dq.output[0]
            counts["activation_qdq"] += 1
        if bias is None or len(n.input) <= bias or n.input[bias] not in inits:
            continue
        xdq, wdq = dq_of(n.input[data]), dq_of(n.input[1])
        if xdq is None or wdq is None or xdq.input[1] not in inits or wdq.input[1] not in inits:
            continue
        b = numpy_helper.to_array(inits[n.input[bias]]).astype(np.float64)
        sx = numpy_helper.to_array(inits[xdq.input[1]]).astype(np.float64).reshape(-1)
        sw = numpy_helper.to_array(inits[wdq.input[1]]).astype(np.float64).reshape(-1)
        if b.ndim != 1 or sx.size != 1 or sw.size not in (1, b.size):
            continue
        sb = np.broadcast_to(sx * sw, b.shape).astype(np.float32)
        qb = np.clip(np.round(b / np.where(sb > 0, sb, 1.0)), -2**31, 2**31 - 1).astype(np.int32)
        name = f"{n.input[bias]}_eb_int32"
        g.initializer.extend([numpy_helper.from_array(qb, name), numpy_helper.from_array(sb, f"{name}_scale"),
                              numpy_helper.from_array(np.zeros_like(qb), f"{name}_zero")])
        dq = helper.make_node("DequantizeLinear", [name, f"{name}_scale", f"{name}_zero"], [f"{name}_dq"],
                              name=f"{name}_DQ", axis=0)
        _insert_before(g, n, [dq])
        old = n.input[bias]
        n.input[bias] = dq.output[0]
        if not any(old in m.input for m in g.node):
            g.initializer.remove(inits.pop(old))
        counts["int32_bias"] += 1
    return counts


def _per_tensor(dq: Any, inits: dict[str, Any]) -> bool:
    scale = inits.get(dq.input[1])
    return scale is not None and int(np.prod(scale.dims)) == 1


def _insert_before(graph: Any, node: Any, new: Sequence[Any]) -> None:
    at = list(graph.node).index(node)
    for k, m in enumerate(new):
        graph.node.insert(at + k, m)


def strip_output_qdq(model: Any) -> int:
    """Remove each ``QuantizeLinear → DequantizeLinear`` pair that produces a graph output (``quantize_static``
    quantizes the logits to uint8 too), so the logits stay float32: the op before it still fuses into an int8
    kernel with a float output. Returns the number of pairs removed."""
    g = model.graph
    outputs = {o.name for o in g.output}
    producer = {o: n for n in g.node for o in n.output}
    removed = 0
    for dq in [n for n in g.node if n.op_type == "DequantizeLinear" and n.output[0] in outputs]:
        q = producer.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear" or any(q.output[0] in m.input for m in g.node if m is not dq):
            continue
        src = q.input[0]
        for m in g.node:  # the float tensor now is the output: rename its producer's output
            for k, name in enumerate(m.output):
                if name == src:
                    m.output[k] = dq.output[0]
            for k, name in enumerate(m.input):
                if name == src and m is not q:
                    m.input[k] = dq.output[0]
        g.node.remove(q)
        g.node.remove(dq)
        removed += 1
    return removed


def quantize_onnx_ort(fp32: Path, out: Path, batches: Sequence[np.ndarray], *, input_name: str = "x",
                      reduce_range: bool = True) -> Path:
    """``onnxruntime.quantization.quantize_static`` of the fp32 ONNX file ``fp32`` into ``out``: QDQ format,
    per-channel symmetric int8 weights (7-bit with ``reduce_range``, which keeps the u8×s8 kernels of CPUs
    without VNNI from saturating), asymmetric uint8 activations, int32 biases, MinMax calibration on
    ``batches`` (arrays fed as ``input_name``); the logits stay float32 (:func:`strip_output_qdq`)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{input_name: b} for b in batches])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    root = logging.getLogger()  # quantize_static logs "consider pre-processing" on the root logger every call
    level = root.level
    with tempfile.TemporaryDirectory() as tmp:  # quantize_static writes augmented models beside its output
        raw = Path(tmp) / "q.onnx"
        root.setLevel(max(level, logging.ERROR))
        try:
            quantize_static(str(fp32), str(raw), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            reduce_range=reduce_range, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        model = onnx.load(str(raw))
    strip_output_qdq(model)
    complete_qdq(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return out


def optimized_ops(path: Path) -> Counter[str]:
    """The op types, counted, of the graph ONNX Runtime's CPU provider actually runs for the file ``path``
    (all optimizations on, as the ``onnxruntime`` backend loads it)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return Counter(n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node)
