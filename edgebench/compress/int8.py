"""int8 post-training quantization with NNCF 3.x ``nncf.quantize`` (weights and activations; the
"Int8" model of seed ``002``, Table I, which that paper could only attack by transfer because its int8
graph had no gradients).

Here the torch twin *is* attackable: ``nncf.quantize`` on the torch model inserts fake-quantizers whose
backward pass is the straight-through estimator (Bengio et al. 2013), so white-box attacks differentiate
through the simulated int8 arithmetic. Artifacts:

- **OpenVINO IR int8**: the fake-quantized twin converted by ``openvino.convert_model``; the CPU plugin
  executes its FakeQuantize pairs as int8 kernels.
- **ONNX QDQ**: ``nncf.quantize`` on the fp32 ONNX export with the same calibration samples, preset and
  bias correction, giving QuantizeLinear/DequantizeLinear pairs that ONNX Runtime runs as int8.

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
from edgebench.params import check_choice, check_int
from edgebench.variants import Variant, VariantContext, clone


@COMPRESSORS.register("int8")
class Int8(Compressor):
    """Post-training int8 quantization (NNCF), with an attackable fake-quantized torch twin.

    Args:
        calibration_size: training samples used for calibration (NNCF's ``subset_size``; 300 is its default).
        preset: ``"performance"`` (symmetric weights and activations) or ``"mixed"`` (asymmetric activations).
        fast_bias_correction: NNCF's fast bias correction after calibration.
        parity_atol: the largest |Δlogit| accepted between an int8 artifact and the twin.
    """

    name = "int8"

    def __init__(self, *, calibration_size: int = 300, preset: str = "performance", fast_bias_correction: bool = True,
                 parity_atol: float = 0.25) -> None:
        self.calibration_size = check_int("calibration_size", calibration_size, what=self.what, lo=1)
        self.preset = check_choice("preset", preset, ("performance", "mixed"), what=self.what)
        self.fast_bias_correction = bool(fast_bias_correction)
        self.parity_atol = float(parity_atol)

    def _options(self) -> dict:
        import nncf

        preset = nncf.QuantizationPreset.PERFORMANCE if self.preset == "performance" else nncf.QuantizationPreset.MIXED
        return {"preset": preset, "subset_size": self.calibration_size,
                "fast_bias_correction": self.fast_bias_correction}

    def apply(self, model: nn.Module, ctx: VariantContext) -> Variant:
        import nncf

        batches = self._calibration(ctx)
        try:
            data = nncf.Dataset([torch.from_numpy(b) for b in batches])
            twin = nncf.quantize(for_nncf(clone(model)), data, **self._options())
        except Exception as exc:  # NNCF raises its own types for graphs it cannot trace
            raise ctx.fail(f"NNCF cannot quantize this model ({type(exc).__name__}: {exc})") from None
        twin.eval()
        quantizers = sum(1 for n, _ in twin.named_modules() if n.count(".") == 3 and "__nncf_hooks" in n)
        return Variant(model=twin, parity_atol=self.parity_atol, precision="int8", info={
            "grid": "int8: symmetric per-channel weights, per-tensor activations (NNCF preset "
                    f"{self.preset!r})", "calibration_size": len(batches), "quantizers": quantizers,
            "engine": f"nncf {nncf.__version__}"})

    def save_twin(self, twin: nn.Module, path: Path) -> None:
        """NNCF's quantizers do not pickle: store NNCF's own config of the wrapped model and its state."""
        from nncf.torch import get_config

        torch.save({"config": get_config(twin), "state": twin.state_dict()}, path)

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
        """The ONNX artifact is a QDQ model quantized by NNCF from the fp32 export of the base ``model``."""

        def export_qdq(path: Path) -> Path:
            import nncf
            import onnx

            from edgebench.export.onnx import export_onnx

            fp32 = export_onnx(model, ctx.input_shape, path.with_suffix(".fp32.onnx"))
            try:
                data = nncf.Dataset([{"x": b} for b in self._calibration(ctx)])
                q = nncf.quantize(onnx.load(str(fp32)), data, **self._options())
            finally:
                fp32.unlink(missing_ok=True)
            onnx.save(q, str(path))
            return path

        compressed.export_onnx = export_qdq
