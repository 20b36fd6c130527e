"""The OpenVINO path on a real (tiny) model: IR export fp32/fp16, parity with the torch twin through the
device-side backend, dynamic batch, the bound latency call, what ``info`` reports, the errors a user can
cause, and the torch-free guarantee of the backend module (in a child process)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")

from edgebench.errors import ArtifactError, ConfigError, DeviceError  # noqa: E402
from edgebench.runtime import create_backend  # noqa: E402

SHAPE = (1, 8, 8)
OV = {"inference_num_threads": 1, "inference_precision": "f32"}


@dataclasses.dataclass(frozen=True)
class Exported:
    model: object
    xml: Path
    xml16: Path
    x: np.ndarray


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """digits_cnn with seeded random weights, exported to IR as fp32 and fp16; 64 inputs in [0, 1]."""
    import torch

    from edgebench.export.openvino import export_openvino
    from edgebench.models import create_model

    root = tmp_path_factory.mktemp("openvino")
    torch.manual_seed(0)
    model = create_model("digits_cnn", input_shape=SHAPE, num_classes=10).eval()
    xml = export_openvino(model, SHAPE, root / "fp32" / "digits_cnn.xml")
    xml16 = export_openvino(model, SHAPE, root / "fp16" / "digits_cnn.xml", fp16=True)
    x = np.random.default_rng(0).random((64, *SHAPE), dtype=np.float32)
    return Exported(model, xml, xml16, x)


@pytest.fixture(scope="module")
def backend(exported: Exported):
    b = create_backend("openvino", **OV)
    b.load(exported.xml)
    return b


# -------------------------------------------------------------------------------------------- export


def test_export_writes_ir_with_dynamic_batch(exported: Exported, backend) -> None:
    from edgebench.export.card import artifact_files, artifact_size

    files = artifact_files(exported.xml)
    assert files == [exported.xml, exported.xml.with_suffix(".bin")]
    assert all(p.is_file() for p in files)
    assert artifact_size(exported.xml) == sum(p.stat().st_size for p in files)
    # fp32 weights of ~37 k parameters: the .bin holds at least 4 bytes each
    n_params = sum(p.numel() for p in exported.model.parameters())
    assert files[1].stat().st_size >= 4 * n_params
    assert backend.input_shape == (None, *SHAPE)
    assert artifact_files(Path("m.onnx")) == [Path("m.onnx")]


def test_fp32_parity_with_torch(exported: Exported) -> None:
    from edgebench.export.openvino import openvino_parity

    result = openvino_parity(exported.model, exported.xml, exported.x)
    assert set(result) == {"backend", "n", "max_abs_diff", "top1_agreement", "atol", "scale", "ok", "precision"}
    assert result["backend"] == "openvino" and result["n"] == 64 and result["precision"] == "f32"
    assert result["max_abs_diff"] <= 1e-4
    assert result["top1_agreement"] == 1.0
    assert result["ok"] is True and result["atol"] == 1e-4


def test_fp16_halves_the_weights_and_stays_close(exported: Exported) -> None:
    from edgebench.export.openvino import openvino_parity

    ratio = exported.xml16.with_suffix(".bin").stat().st_size / exported.xml.with_suffix(".bin").stat().st_size
    assert 0.4 <= ratio <= 0.6
    result = openvino_parity(exported.model, exported.xml16, exported.x, atol=1e-2)
    assert result["precision"] == "f32"  # fp16 weights, computed in f32
    assert 0 < result["max_abs_diff"] <= 1e-2 and result["ok"] is True


def test_onnx_parity_uses_shared_comparison(exported: Exported, tmp_path: Path) -> None:
    """onnx_parity's keys and values are unchanged by the shared helper; the ONNX file also converts to IR."""
    from edgebench.export.onnx import export_onnx, onnx_parity
    from edgebench.export.openvino import export_openvino_from_onnx, openvino_parity
    from edgebench.export.parity import compare_logits

    onnx = export_onnx(exported.model, SHAPE, tmp_path / "m.onnx")
    result = onnx_parity(exported.model, onnx, exported.x)
    assert set(result) == {"backend", "n", "max_abs_diff", "top1_agreement", "atol", "scale", "ok"}
    assert result["backend"] == "onnxruntime" and result["n"] == 64 and result["ok"] is True
    xml = export_openvino_from_onnx(onnx, tmp_path / "from_onnx.xml")
    again = openvino_parity(exported.model, xml, exported.x)
    assert again["max_abs_diff"] <= 1e-4 and again["top1_agreement"] == 1.0
    ref = np.array([[0.0, 1.0], [2.0, 0.0]], np.float32)
    bad = compare_logits(ref, ref[:, ::-1], backend="b", atol=0.5, extra=1)
    assert bad == {"backend": "b", "n": 2, "max_abs_diff": 2.0, "top1_agreement": 0.0, "atol": 0.5, "scale": 2.0,
                   "ok": False, "extra": 1}


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_parity_on_no_inputs_compares_nothing(exported: Exported, tmp_path: Path, fmt: str) -> None:
    """Both backends' parity checks go through one loop (export.parity.runtime_parity): no inputs, n = 0, ok."""
    from edgebench.export.onnx import export_onnx, onnx_parity
    from edgebench.export.openvino import openvino_parity

    none = exported.x[:0]
    if fmt == "onnx":
        result = onnx_parity(exported.model, export_onnx(exported.model, SHAPE, tmp_path / "m.onnx"), none)
    else:
        result = openvino_parity(exported.model, exported.xml, none)
        assert result.pop("precision") == "f32"
    assert result == {"backend": "onnxruntime" if fmt == "onnx" else "openvino", "n": 0, "max_abs_diff": 0.0,
                      "top1_agreement": 1.0, "atol": 1e-4, "scale": 1.0, "ok": True}


def test_onnx_file_loads_directly(exported: Exported, tmp_path: Path, backend) -> None:
    from edgebench.export.onnx import export_onnx

    onnx = export_onnx(exported.model, SHAPE, tmp_path / "m.onnx")
    b = create_backend("openvino", **OV)
    b.load(onnx)
    np.testing.assert_allclose(b.predict(exported.x), backend.predict(exported.x), atol=1e-5)


# -------------------------------------------------------------------------------------------- backend


def test_dynamic_batch_rows_match(exported: Exported, backend) -> None:
    full = backend.predict(exported.x)
    assert full.shape == (64, 10) and full.dtype == np.float32
    one = backend.predict(exported.x[:1])
    part = backend.predict(exported.x[5:42])
    assert one.shape == (1, 10) and part.shape == (37, 10)
    np.testing.assert_allclose(one, full[:1], rtol=0, atol=1e-5)
    np.testing.assert_allclose(part, full[5:42], rtol=0, atol=1e-5)
    big = backend.predict(np.concatenate([exported.x, exported.x]))
    np.testing.assert_allclose(big, np.concatenate([full, full]), rtol=0, atol=1e-5)


def test_bind_runs_the_prepared_request(exported: Exported, backend) -> None:
    sample = exported.x[3:4]
    expected = backend.predict(sample)
    run = backend.bind(sample)
    first = np.array(run())  # copy: the returned view is overwritten by the next call
    second = run()
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(run.request.get_output_tensor(0).data, second)
    # the input was bound once, sharing memory: the callable takes no argument and predict leaves it alone
    backend.predict(exported.x)
    np.testing.assert_array_equal(run(), first)
    # timed on a copy compiled for the static batch-1 shape (benchmark_app's -b 1); predict keeps the dynamic one
    assert list(run.compiled.input(0).get_partial_shape().to_shape()) == [1, 1, 8, 8]
    assert backend.info()["latency_shape"] == [1, 1, 8, 8]
    assert backend.input_shape[0] is None and backend.predict(exported.x[:5]).shape == (5, 10)


def test_bind_can_time_the_dynamic_model(exported: Exported) -> None:
    from edgebench.runtime import create_backend

    dynamic = create_backend("openvino", inference_precision="f32", inference_num_threads=1,
                             static_latency_shape=False)
    dynamic.load(exported.xml)
    run = dynamic.bind(exported.x[:1])
    assert run.compiled.input(0).get_partial_shape().is_dynamic and dynamic.info()["latency_shape"] is None
    np.testing.assert_allclose(run(), dynamic.predict(exported.x[:1]), rtol=0, atol=1e-6)


def test_info_reports_what_ran(backend) -> None:
    info = backend.info()
    assert info["backend"] == "openvino"
    import openvino

    assert info["runtime_version"] == openvino.__version__
    assert info["device"] == "CPU" and info["execution_devices"] == ["CPU"]
    assert info["performance_hint"] == "LATENCY"
    assert info["precision"] == "f32"
    assert info["inference_num_threads"] == 1
    assert isinstance(info["num_streams"], int) and info["num_streams"] >= 1
    assert isinstance(info["device_name"], str) and info["device_name"]


def test_default_precision_is_read_back(exported: Exported) -> None:
    b = create_backend("openvino", inference_num_threads=1)
    b.load(exported.xml)
    assert b.info()["precision"] in ("f32", "bf16", "f16")  # the plugin's choice (bf16 on AMX CPUs)


def test_local_target_has_openvino_f32() -> None:
    from edgebench.targets import load_target

    opts = load_target("local").backends["openvino"]
    assert opts["inference_precision"] == "f32" and opts["device"] == "CPU"
    create_backend("openvino", **opts)


# -------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("option", "value", "error"), [
    ("performance_hint", "FAST", ConfigError),
    ("inference_precision", "f8", ConfigError),
    ("num_streams", 0, ConfigError),
    ("inference_num_threads", -1, ConfigError),
    ("device", "TPU", DeviceError),
])
def test_bad_option(option: str, value: object, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        create_backend("openvino", **{option: value})
    assert repr(value) in str(info.value)
    if error is ConfigError:
        assert option in str(info.value)
    else:
        assert "available" in str(info.value) and "CPU" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    b = create_backend("openvino", **OV)
    missing = tmp_path / "nope.xml"
    with pytest.raises(ArtifactError, match="nope.xml.*not found"):
        b.load(missing)


def test_missing_bin(exported: Exported, tmp_path: Path) -> None:
    lone = tmp_path / "lone.xml"
    lone.write_bytes(exported.xml.read_bytes())
    with pytest.raises(ArtifactError, match=r"lone\.bin"):
        create_backend("openvino", **OV).load(lone)


def test_corrupt_xml(exported: Exported, tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes(exported.xml.read_bytes()[:500])
    bad.with_suffix(".bin").write_bytes(exported.xml.with_suffix(".bin").read_bytes())
    with pytest.raises(ArtifactError, match=r"bad\.xml.*(tags mismatch|corrupt)"):
        create_backend("openvino", **OV).load(bad)


def test_truncated_bin(exported: Exported, tmp_path: Path) -> None:
    cut = tmp_path / "cut.xml"
    cut.write_bytes(exported.xml.read_bytes())
    cut.with_suffix(".bin").write_bytes(exported.xml.with_suffix(".bin").read_bytes()[:1000])
    with pytest.raises(ArtifactError, match=r"cut\.xml.*weights"):
        create_backend("openvino", **OV).load(cut)


def test_export_errors(exported: Exported, tmp_path: Path) -> None:
    from edgebench.export.openvino import export_openvino, export_openvino_from_onnx

    with pytest.raises(ArtifactError, match=r"\.xml"):
        export_openvino(exported.model, SHAPE, tmp_path / "m.onnx")
    with pytest.raises(ArtifactError, match="Classifier|digits|cannot convert"):
        export_openvino(exported.model, (3, 5), tmp_path / "bad_shape.xml")
    with pytest.raises(ArtifactError, match="not found"):
        export_openvino_from_onnx(tmp_path / "absent.onnx", tmp_path / "x.xml")


def test_parity_tolerance_scales_with_large_logits() -> None:
    """float32 rounding grows with the logits' size: 1.5e-4 off on logits of ~300 passes at atol 1e-4, the same
    difference on logits of order 1 does not."""
    from edgebench.export.parity import compare_logits

    ref = np.array([[300.0, -120.0, 5.0]], np.float32)
    big = compare_logits(ref, ref + np.float32(1.5e-4), backend="x", atol=1e-4)
    assert big["ok"] is True and big["scale"] == pytest.approx(300.0)
    small = compare_logits(ref / 300, ref / 300 + np.float32(1.5e-4), backend="x", atol=1e-4)
    assert small["ok"] is False and small["scale"] == 1.0
