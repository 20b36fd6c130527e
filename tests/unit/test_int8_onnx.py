"""int8 ONNX that ONNX Runtime really runs in int8 (both engines), the engine parameter, and fp16 ONNX: on the
real digits data, a trained digits_cnn, real NNCF and ONNX Runtime (its optimized graph read back)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgebench.compress.int8 import PARITY_ATOL
from edgebench.data import load_dataset
from edgebench.errors import ArtifactError, ConfigError
from edgebench.export.fp16 import FP16_ATOL, to_fp16
from edgebench.export.onnx import export_onnx, onnx_parity
from edgebench.export.qdq import INT8_KERNELS, complete_qdq, optimized_ops
from edgebench.models.train import TrainConfig
from edgebench.variants import Variant, VariantContext, create_method
from tests.fixtures.models import trained

compressor = functools.partial(create_method, "compress")
FLOAT_COMPUTE = {"Conv", "Gemm", "FusedGemm", "MatMul", "FusedConv"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """The digits data, the trained base, its fp32 export, and each engine's variant and ONNX artifact
    (calibrated on 64 training samples). The twin (NNCF's, whatever the engine) is made once: the engines
    differ in the ONNX artifact only."""
    root = tmp_path_factory.mktemp("int8")
    digits, base = load_dataset("digits"), trained("digits_cnn", epochs=8)
    ctx = VariantContext(digits.x_train, digits.y_train, digits.shape, 10, TrainConfig(epochs=8), seed=0, where="t")
    out: dict = {"fp32": export_onnx(base, digits.shape, root / "fp32.onnx"), "ctx": ctx, "digits": digits,
                 "base": base}
    twin = None
    for engine in ("nncf", "onnxruntime"):
        method = compressor("int8", calibration_size=64, engine=engine)
        if twin is None:
            variant = twin = method.apply(base, ctx)
        else:
            variant = Variant(twin.model, info=method.describe(64, twin.info["quantizers"]),
                              parity_atol=method.parity_atol, precision="int8")
        method.attach(variant, base, ctx)
        out[engine] = (method, variant, variant.export_onnx(root / f"{engine}.onnx"))
    return out


@pytest.mark.parametrize("engine", ["nncf", "onnxruntime"])
def test_each_engine_gives_a_graph_onnx_runtime_runs_in_int8(built, engine) -> None:
    _, variant, path = built[engine]
    digits = built["digits"]
    ops = optimized_ops(path)
    # both convolutions and both fully connected layers are int8 kernels; nothing computes in float32
    assert ops["QLinearConv"] == 2 and ops["QGemm"] == 2, ops
    assert not FLOAT_COMPUTE & set(ops) and "DequantizeLinear" not in ops, ops
    assert set(optimized_ops(built["fp32"])) & FLOAT_COMPUTE and not INT8_KERNELS & set(optimized_ops(built["fp32"]))
    # the logits come straight from the last Gemm (quantize_static would quantize them to uint8 too), and the
    # artifact is close to the fake-quantized twin
    graph = onnx.load(str(path)).graph
    assert [n.op_type for n in graph.node if n.output[0] == graph.output[0].name] == ["Gemm"]
    parity = onnx_parity(variant.model, path, digits.x_test, atol=variant.parity_atol)
    assert parity["ok"] and parity["top1_agreement"] >= 0.98, parity
    assert variant.parity_atol == PARITY_ATOL[engine]
    if engine == "nncf":  # NNCF's graph is the twin's arithmetic: far inside its tolerance (measured 0.0074)
        assert parity["max_abs_diff"] / parity["scale"] < 0.02, parity


def test_nncf_graph_as_written_leaves_the_gemm_in_float_and_completing_it_is_exact(built, tmp_path) -> None:
    import nncf

    digits = built["digits"]
    method, _, _ = built["nncf"]
    raw = nncf.quantize(onnx.load(str(built["fp32"])), nncf.Dataset([{"x": b} for b in method._calibration(
        built["ctx"])]), **method._options())
    onnx.save(raw, str(tmp_path / "raw.onnx"))
    ops = optimized_ops(tmp_path / "raw.onnx")
    assert ops["Gemm"] + ops["FusedGemm"] >= 1 and ops["DequantizeLinear"] >= 1, ops  # the float Gemm of issue 16
    counts = complete_qdq(raw)
    assert counts == {"activation_qdq": 1, "int32_bias": 4}, counts
    onnx.save(raw, str(tmp_path / "done.onnx"))
    plain = ort.SessionOptions()
    plain.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the QDQ semantics, unfused
    run = {n: ort.InferenceSession(str(tmp_path / f"{n}.onnx"), plain, providers=["CPUExecutionProvider"]).run(
        None, {"x": digits.x_test})[0] for n in ("raw", "done")}
    # the inserted quantizer repeats a grid the values already sit on; only the int32 biases round
    assert np.max(np.abs(run["raw"] - run["done"])) < 1e-2 * max(1.0, float(np.abs(run["raw"]).max()))


def test_engine_reaches_the_variant_info(built) -> None:
    for engine in ("nncf", "onnxruntime"):
        method, variant, _ = built[engine]
        assert method.params()["engine"] == engine and variant.info["engine"].split() == [
            engine, __import__(engine).__version__]
    assert compressor("int8").engine == "nncf" and compressor("int8").overflow_fix == "enable"


@pytest.mark.parametrize(("params", "message"), [
    ({"engine": "tensorrt"}, "compression method 'int8': engine 'tensorrt' is not one of ['nncf', 'onnxruntime']"),
    ({"overflow_fix": "yes"}, "overflow_fix 'yes' is not one of ['enable', 'first_layer', 'disable']"),
    ({"parity_atol": -1}, "parity_atol must be a number > 0, got -1"),
])
def test_bad_int8_parameters_are_one_line_errors(params, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
        compressor("int8", where="plan.toml: compress", **params)
    assert "\n" not in str(err.value)


def test_fp16_onnx_halves_the_file_keeps_float32_io_and_parity(tmp_path: Path, built) -> None:
    base, digits = built["base"], built["digits"]
    half = to_fp16(built["fp32"], tmp_path / "half.onnx")
    model = onnx.load(str(half))
    assert 0.4 < half.stat().st_size / built["fp32"].stat().st_size < 0.6
    assert [i.type.tensor_type.elem_type for i in (*model.graph.input, *model.graph.output)] == [
        onnx.TensorProto.FLOAT] * 2
    assert {onnx.TensorProto.FLOAT16} == {i.data_type for i in model.graph.initializer if i.data_type in (
        onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)}
    parity = onnx_parity(base, half, digits.x_test, atol=FP16_ATOL)
    assert parity["ok"] and parity["top1_agreement"] == 1.0 and 0 < parity["max_abs_diff"], parity
    with pytest.raises(ArtifactError, match="int8 QDQ graph"):
        to_fp16(built["nncf"][2], tmp_path / "no.onnx")


def test_a_depthwise_separable_network_runs_every_conv_in_int8(built, tmp_path: Path) -> None:
    """NNCF quantizes a depthwise Conv's input per channel unless told otherwise; QLinearConv takes per-tensor
    activations only, so that Conv and the one before it ran in float32."""
    import torch
    from torch import nn

    class Separable(nn.Module):  # wrapped: NNCF cannot quantize a root nn.Sequential (issue 16, item 8)
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Conv2d(16, 32, 1), nn.ReLU(),
                                     nn.Flatten(), nn.Linear(32 * 64, 10))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    torch.manual_seed(0)
    wrapped = Separable().eval()
    method = compressor("int8", calibration_size=16)
    variant = method.apply(wrapped, built["ctx"])
    method.attach(variant, wrapped, built["ctx"])
    ops = optimized_ops(variant.export_onnx(tmp_path / "dw.onnx"))
    assert ops["QLinearConv"] == 3 and ops["QGemm"] == 1 and not FLOAT_COMPUTE & set(ops), ops
