"""int8 post-training quantization with NNCF 3.x ``nncf.quantize`` (weights and activations; the
"Int8" model of seed ``002``, Table I, which that paper could only attack by transfer because its int8
graph had no gradients).

Here the torch twin *is* attackable: ``nncf.quantize`` on the torch model inserts fake-quantizers whose
backward pass is the straight-through estimator (Bengio et al. 2013), so white-box attacks differentiate
through the simulated int8 arithmetic. Artifacts:

- **OpenVINO IR int8**: the fake-quantized twin converted by ``openvino.convert_model``; the CPU plugin
  executes its FakeQuantize pairs as int8 kernels.
- **ONNX QDQ**, by ``engine``: ``"nncf"``: ``nncf.quantize`` on the fp32 ONNX export with the same calibration
  samples, preset and bias correction, then completed by :func:`edgebench.export.qdq.complete_qdq` so that
  ONNX Runtime fuses every Conv/Gemm into an int8 kernel (NNCF's graph as written left the large Gemm in
  float32, dequantizing its weights on every call: slower than fp32); ``"onnxruntime"``: ONNX Runtime's own
  ``quantize_static`` (per-channel int8 weights, uint8 activations, QDQ) on the same calibration samples.
  OpenVINO IR is NNCF's either way (the twin converted).

Both are calibrated on ``calibration_size`` training samples drawn with the plan's seed; the parity check
compares each artifact with the twin under a tolerance that allows int8 rounding (``parity_atol``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgebench.compress import COMPRESSORS
from edgebench.compress.base import Compressor
from edgebench.compress.nncf_root import for_nncf
from edgebench.models.placement import cpu_state, to_model
from edgebench.params import check_choice, check_int, check_number
from edgebench.variants import Variant, VariantContext, clone

#: who quantizes the ONNX artifact (the torch twin and the OpenVINO IR are NNCF's either way)
ENGINES = ("nncf", "onnxruntime")
#: NNCF's fix for the int16 saturation of u8×s8 dot products on x86 CPUs without VNNI (AVX2, AVX-512 without
#: VNNI: ``vpmaddubsw``): weights on half the int8 range (7 bits) in all layers, the first only, or none.
#: ONNX Runtime's ``quantize_static`` has one switch for all layers (``reduce_range``), on unless "disable".
OVERFLOW_FIX = ("enable", "first_layer", "disable")
OVERFLOW_FIX_NNCF = {"enable": "enable", "first_layer": "first_layer_only", "disable": "disable"}
#: the default parity tolerance per engine (relative to the logit scale beyond 1): NNCF's ONNX graph computes the
#: twin's own arithmetic; ONNX Runtime's quantizer calibrates its own scales, further from the twin
PARITY_ATOL = {"nncf": 0.05, "onnxruntime": 0.25}


def _engine_version(engine: str) -> str:
    import importlib

    return f"{engine} {importlib.import_module(engine).__version__}"


@COMPRESSORS.register("int8")
class Int8(Compressor):
    """Post-training int8 quantization (NNCF), with an attackable fake-quantized torch twin.

    Args:
        calibration_size: training samples used for calibration (NNCF's ``subset_size``; 300 is its default).
        preset: ``"performance"`` (symmetric weights and activations) or ``"mixed"`` (asymmetric activations).
        fast_bias_correction: NNCF's fast bias correction after calibration.
        parity_atol: the largest |Δlogit| accepted between an int8 artifact and the twin (relative to the logit
            scale beyond 1; see :func:`edgebench.export.parity.compare_logits`).
            Default: 0.05 for engine ``"nncf"`` (measured 0.008 on digits), 0.25 for ``"onnxruntime"`` (0.13: its
            own calibration, not the twin's scales).
        engine: who quantizes the ONNX artifact: ``"nncf"`` or ``"onnxruntime"`` (``quantize_static``).
        overflow_fix: ``"enable"`` (default: 7-bit weights in every layer, exact on every x86 CPU),
            ``"first_layer"`` (NNCF's default) or ``"disable"`` (full 8-bit weights: on CPUs without VNNI the
            int8 kernels then saturate and the artifact drifts from the twin; exact only with VNNI).
    """

    name = "int8"
    cpu_only = ("NNCF 3.4's int8 fake quantizers have no CUDA fallback: on a GPU they JIT-compile a CUDA extension, "
                "which needs nvcc and the CUDA toolkit (nncf.torch.quantization.extensions)")

    def __init__(self, *, calibration_size: int = 300, preset: str = "performance", fast_bias_correction: bool = True,
                 parity_atol: float | None = None, engine: str = "nncf", overflow_fix: str = "enable") -> None:
        self.calibration_size = check_int("calibration_size", calibration_size, what=self.what, lo=1)
        self.preset = check_choice("preset", preset, ("performance", "mixed"), what=self.what)
        self.fast_bias_correction = bool(fast_bias_correction)
        self.engine = check_choice("engine", engine, ENGINES, what=self.what)
        self.overflow_fix = check_choice("overflow_fix", overflow_fix, OVERFLOW_FIX, what=self.what)
        self.parity_atol = PARITY_ATOL[self.engine] if parity_atol is None else \
            check_number("parity_atol", parity_atol, what=self.what, lo=0.0, lo_open=True)

    def _options(self) -> dict:
        import nncf

        preset = nncf.QuantizationPreset.PERFORMANCE if self.preset == "performance" else nncf.QuantizationPreset.MIXED
        from nncf.quantization.advanced_parameters import QuantizationParameters

        fix = nncf.OverflowFix(OVERFLOW_FIX_NNCF[self.overflow_fix])
        # per-tensor activations everywhere: NNCF quantizes a depthwise Conv's input per channel, which ONNX
        # Runtime's QLinearConv cannot take, so that Conv (and the one before it) would run in float32
        per_tensor = QuantizationParameters(per_channel=False)
        return {"preset": preset, "subset_size": self.calibration_size,
                "fast_bias_correction": self.fast_bias_correction,
                "advanced_parameters": nncf.AdvancedQuantizationParameters(
                    overflow_fix=fix, activations_quantization_params=per_tensor)}

    def apply(self, model: nn.Module, ctx: VariantContext) -> Variant:
        import nncf

        batches = self._calibration(ctx)
        try:
            data = nncf.Dataset([to_model(model, b) for b in batches])
            twin = nncf.quantize(for_nncf(clone(model)), data, **self._options())
        except Exception as exc:  # NNCF raises its own types for graphs it cannot trace
            raise ctx.fail(f"NNCF cannot quantize this model ({type(exc).__name__}: {exc})") from None
        twin.eval()
        quantizers = sum(1 for n, _ in twin.named_modules() if n.count(".") == 3 and "__nncf_hooks" in n)
        return Variant(model=twin, parity_atol=self.parity_atol, precision="int8",
                       info=self.describe(len(batches), quantizers))

    def describe(self, calibration_size: int, quantizers: int) -> dict:
        """The variant's info: its grid, calibration, the twin's quantizer count and the ``engine`` that quantized
        the ONNX artifact, with its version (``"onnxruntime 1.32.0"``), as the report names it."""
        return {"grid": "int8: symmetric per-channel weights, per-tensor activations (NNCF preset "
                        f"{self.preset!r}, overflow fix {self.overflow_fix!r})", "calibration_size": calibration_size,
                "quantizers": quantizers, "engine": _engine_version(self.engine)}

    def save_twin(self, twin: nn.Module, path: Path) -> None:
        """NNCF's quantizers do not pickle: store NNCF's own config of the wrapped model and its state."""
        from nncf.torch import get_config

        torch.save({"config": get_config(twin), "state": cpu_state(twin.state_dict())}, path)

    def load_twin(self, path: Path, model: nn.Module) -> nn.Module:
        from nncf.torch import load_from_config

        saved = torch.load(path, weights_only=False)  # written by save_twin into the hash-checked cache only
        twin = load_from_config(for_nncf(clone(model)), saved["config"])
        twin.load_state_dict(saved["state"])
        return twin.eval()

    def _calibration(self, ctx: VariantContext) -> list[np.ndarray]:
        if len(ctx.x_train) == 0:
            raise ctx.fail("int8 calibration needs training samples; the data set has none")
        idx = np.random.default_rng(ctx.seed).permutation(len(ctx.x_train))[: self.calibration_size]
        calib = np.ascontiguousarray(ctx.x_train[idx], dtype=np.float32)
        return [calib[i:i + 1] for i in range(len(calib))]

    def attach(self, compressed: Variant, model: nn.Module, ctx: VariantContext) -> None:
        """The ONNX artifact is a QDQ model quantized by the ``engine`` from the fp32 export of the base
        ``model``, in a form ONNX Runtime fuses into int8 kernels."""

        def export_qdq(path: Path) -> Path:
            import onnx

            from edgebench.export.onnx import export_onnx
            from edgebench.export.qdq import complete_qdq, quantize_onnx_ort

            fp32 = export_onnx(model, ctx.input_shape, path.with_suffix(".fp32.onnx"))
            try:
                if self.engine == "onnxruntime":
                    return quantize_onnx_ort(fp32, path, self._calibration(ctx),
                                             reduce_range=self.overflow_fix != "disable")
                import nncf

                data = nncf.Dataset([{"x": b} for b in self._calibration(ctx)])
                q = nncf.quantize(onnx.load(str(fp32)), data, **self._options())
            finally:
                fp32.unlink(missing_ok=True)
            complete_qdq(q)
            onnx.save(q, str(path))
            return path

        compressed.export_onnx = export_qdq
