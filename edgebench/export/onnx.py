"""ONNX export with a dynamic batch axis, and the parity check against the torch twin."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgebench.export.parity import runtime_parity
from edgebench.models.placement import cpu_copy, example_input

OPSET = 17


def export_onnx(model: nn.Module, input_shape: tuple[int, ...], path: Path, *, opset: int = OPSET) -> Path:
    """Write ``model`` to ``path`` as ONNX with input ``x`` of shape ``(batch, *input_shape)`` and output
    ``logits``; the batch axis is dynamic. Uses the TorchScript-based exporter (``dynamo=False``), which
    needs no extra packages and handles every zoo model; the result is checked with ``onnx.checker``. A model
    on a GPU is exported from a CPU copy (:func:`~edgebench.models.placement.cpu_copy`): the same file as a CPU
    run's."""
    import onnx

    model = cpu_copy(model.eval())
    example = example_input(model, input_shape)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), buf, input_names=["x"], output_names=["logits"], opset_version=opset,
            dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
        )
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto)
    path.write_bytes(buf.getvalue())
    return path


def onnx_parity(model: nn.Module, path: Path, x: np.ndarray, *, atol: float = 1e-4) -> dict[str, Any]:
    """Compare ONNX Runtime's logits with the torch twin's on real inputs ``x``.

    Returns ``max_abs_diff`` of the logits, ``top1_agreement`` (fraction of equal argmax), the sample
    count, the tolerance and ``ok`` (``max_abs_diff <= atol``). A parity failure is recorded and flagged
    in the report, never hidden.
    """
    return runtime_parity(model, path, x, backend="onnxruntime", atol=atol)
