"""OpenVINO IR export (``model.xml`` + ``model.bin``) with a dynamic batch axis, and the parity check
against the torch twin through the device-side ``openvino`` backend. Host side."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgebench.errors import ArtifactError
from edgebench.export.parity import runtime_parity
from edgebench.models.placement import cpu_copy, example_input
from edgebench.runtime.openvino import ov_error_reason

log = logging.getLogger(__name__)


def disable_openvino_telemetry() -> None:
    """Turn OpenVINO's usage telemetry off in this process, as if the user had declined it. Its converter and
    NNCF (which share it) send events unless the user opted out, each from a new Python process that they wait
    for: in a worker process started with ``spawn`` that made every stage several times slower (a whole
    interpreter per event; 6 s instead of 0.7 s to train and export a digits model), and a measuring tool must
    not phone home from inside a run anyway. Each tool re-reads the user's consent whenever it initializes, so
    the consent check itself answers "declined" here. Only this process changes; no file is written."""
    try:
        import openvino_telemetry
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:
        return
    try:
        OptInChecker.check = lambda self, *args, **kwargs: ConsentCheckResult.DECLINED  # type: ignore[method-assign]
        instance = openvino_telemetry.Telemetry.__dict__.get("_SingletonMetaClass__single_instance")
        if instance is None:
            instance = getattr(openvino_telemetry.Telemetry, "_SingletonMetaClass__single_instance", None)
        if instance is not None:  # made before this call (importing openvino.tools.ovc makes one)
            instance.consent = False
    except Exception:  # noqa: BLE001 - another layout of the package: leave it as it is
        log.debug("openvino telemetry: could not turn it off", exc_info=True)


def _check_xml(path: Path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".xml":
        raise ArtifactError(f"{path}: an OpenVINO IR path must end in .xml (its weights go to a .bin beside it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _save(ov_model: Any, path: Path, *, fp16: bool) -> Path:
    import openvino as ov

    if len(ov_model.inputs) == 1:
        ov_model.inputs[0].get_tensor().set_names({"x"})
    if len(ov_model.outputs) == 1:
        ov_model.outputs[0].get_tensor().set_names({"logits"})
    # save_model compresses weights to fp16 unless told not to; we keep fp32 unless fp16 is asked for
    ov.save_model(ov_model, str(path), compress_to_fp16=fp16)
    return path


def export_openvino(model: nn.Module, input_shape: tuple[int, ...], path: Path, *, fp16: bool = False) -> Path:
    """Write ``model`` as OpenVINO IR to ``path`` (``.xml``; the ``.bin`` lands beside it) with input ``x`` of
    shape ``(batch, *input_shape)`` and output ``logits``; the batch axis is dynamic. Weights are stored as
    fp32, or fp16 (half the ``.bin``) with ``fp16=True``; inputs and outputs stay float32 either way."""
    import openvino as ov

    disable_openvino_telemetry()
    path = _check_xml(path)
    model = cpu_copy(model.eval())  # traced on the CPU, as a CPU run traces it
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            ov_model = ov.convert_model(model, example_input=example_input(model, input_shape),
                                        input=[ov.PartialShape([-1, *input_shape])])
    except Exception as exc:
        raise ArtifactError(
            f"openvino cannot convert model {type(model).__name__} with input shape {tuple(input_shape)} "
            f"({ov_error_reason(exc)}); export it to ONNX and use export_openvino_from_onnx, or change the model"
        ) from None
    return _save(ov_model, path, fp16=fp16)


def export_openvino_from_onnx(onnx_path: Path, path: Path, *, fp16: bool = False) -> Path:
    """Convert the ONNX file ``onnx_path`` to OpenVINO IR at ``path`` (``.xml`` + ``.bin``), keeping its
    input shapes (a dynamic batch axis stays dynamic). Weights fp32, or fp16 with ``fp16=True``."""
    import openvino as ov

    onnx_path = Path(onnx_path)
    path = _check_xml(path)
    if not onnx_path.is_file():
        raise ArtifactError(f"{onnx_path}: ONNX file not found; re-run the ONNX export or fix the path")
    try:
        ov_model = ov.convert_model(str(onnx_path))
    except Exception as exc:
        raise ArtifactError(
            f"{onnx_path}: openvino cannot convert this ONNX model ({ov_error_reason(exc)}); the file is corrupt or "
            "uses unsupported operators — re-run the ONNX export"
        ) from None
    return _save(ov_model, path, fp16=fp16)


def openvino_parity(model: nn.Module, path: Path, x: np.ndarray, *, atol: float = 1e-4,
                    inference_precision: str | None = "f32") -> dict[str, Any]:
    """Compare the OpenVINO backend's logits on the IR at ``path`` with the torch twin's on real inputs ``x``.

    Same keys as :func:`edgebench.export.onnx.onnx_parity` (``backend``, ``n``, ``max_abs_diff``,
    ``top1_agreement``, ``atol``, ``ok``) plus ``precision``: the inference precision the plugin reported
    (``f32`` by default here; ``None`` keeps the plugin's default, which may be bf16 on AMX CPUs).
    """
    return runtime_parity(model, path, x, backend="openvino", atol=atol, record=("precision",),
                          inference_precision=inference_precision)
