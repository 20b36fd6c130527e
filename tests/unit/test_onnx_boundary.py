"""ONNX files as users bring them (issue 17 §2), each exported here with ``torch.onnx.export`` from one trained
digits_cnn: the host's graph check (:func:`~edgebench.export.onnx_io.inspect_onnx`), the boundary around both real
runtimes (ONNX Runtime and OpenVINO) through ``predict`` and ``bind``, the agent's passes on a fixed batch and an
NHWC file, and one exact line for every file edgebench cannot use."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from edgebench.agent import Job, LatencyProtocol, run_job
from edgebench.agent import TestSet as TS  # aliased: pytest would try to collect a class named Test*
from edgebench.config import load_plan
from edgebench.errors import ArtifactError, ConfigError, DataError
from edgebench.export.onnx_io import check_scores, describe, inspect_onnx
from edgebench.runner.keys import onnx_import_key
from edgebench.runtime import create_backend
from tests.fixtures.userfiles import CASES, Softmaxed, TwoOutputs, export, export_case

WHERE = "plan.toml: models[vendor].onnx"
BACKENDS = ("onnxruntime", "openvino")
#: the file's boundary is under test, not the arithmetic: OpenVINO's CPU plugin defaults to bf16 on CPUs with AMX or
#: avx512_bf16 (~3 significant digits), so it is pinned to f32 here (test_openvino.py tests the precision itself)
OPTIONS = {"onnxruntime": {}, "openvino": {"inference_precision": "f32"}}


@pytest.fixture(scope="module")
def model_and_data(trained_digits: tuple[nn.Module, np.ndarray, np.ndarray]) -> tuple[nn.Module, Any, Any, Any]:
    """A copy of the trained digits_cnn, 203 test samples (not a multiple of 4: the last fixed batch is padded),
    their labels and the torch logits."""
    import copy

    model, x, y = trained_digits
    model = copy.deepcopy(model)
    x, y = x[:203], y[:203]
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    return model, x, y, logits


def _open(path: Path, keys: dict[str, Any], backend: str) -> tuple[Any, dict[str, Any]]:
    boundary = inspect_onnx(path, keys, (1, 8, 8), where=WHERE)
    runtime = create_backend(backend, io=boundary["io"], **OPTIONS[backend])
    runtime.load(path)
    return runtime, boundary


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_file_gives_the_models_logits(case: str, backend: str, model_and_data: Any, tmp_path: Path) -> None:
    model, x, y, logits = model_and_data
    path, keys = export_case(model, case, tmp_path, (1, 8, 8))
    runtime, boundary = _open(path, keys, backend)
    got = runtime.predict(x)
    assert got.shape == logits.shape
    assert np.mean(got.argmax(1) == y) == np.mean(logits.argmax(1) == y)  # the same accuracy
    want = torch.log_softmax(torch.from_numpy(logits), 1).numpy() if case == "softmax" else logits
    np.testing.assert_allclose(got, want, atol=2e-4 * max(1.0, float(np.abs(want).max())))
    assert boundary["fixed_batch"] == CASES[case][1] == runtime.fixed_batch
    assert runtime.input_shape == (CASES[case][1], 1, 8, 8)  # in edgebench's layout, whatever the file's
    assert boundary["scores"] == ("probabilities" if case == "softmax" else "logits")
    # bind (the latency pass): one call on one sample, padded to the fixed batch, read back as that sample's logits
    infer = runtime.bind(x[:1])
    np.testing.assert_allclose(runtime.scores(infer()), got[:1], atol=1e-4 * max(1.0, float(np.abs(want).max())))


def test_the_boundary_as_the_job_and_the_report_carry_it(model_and_data: Any, tmp_path: Path) -> None:
    model = model_and_data[0]
    b4 = inspect_onnx(export_case(model, "batch4", tmp_path, (1, 8, 8))[0], {}, (1, 8, 8), where=WHERE)
    assert b4["io"] == {} and b4["fixed_batch"] == 4 and b4["input"] == "image"
    soft = inspect_onnx(export_case(model, "softmax", tmp_path, (1, 8, 8))[0], {}, (1, 8, 8), where=WHERE)
    assert soft["io"] == {"scores": "probabilities"} and soft["scores_from"].startswith("Softmax node")
    two = inspect_onnx(export_case(model, "two_outputs", tmp_path, (1, 8, 8))[0], {"output": 1}, (1, 8, 8),
                       where=WHERE)
    assert two["io"] == {"output": "scores"} and two["outputs"] == ["embedding", "scores"]
    nhwc, keys = export_case(model, "nhwc", tmp_path, (1, 8, 8))
    assert inspect_onnx(nhwc, {**keys, "input_range": [0, 255]}, (1, 8, 8), where=WHERE)["io"] == {
        "layout": "nhwc", "input_range": [0.0, 255.0]}
    assert describe("vendor", b4) == (
        "vendor: imported ONNX file, input 'image' 4×1×8×8 (NCHW); fixed batch 4: the accuracy pass runs in chunks of "
        "exactly 4, the last padded and the padding's outputs dropped; latency and energy are per call, i.e. per "
        "batch of 4.")
    assert "scores from output 'scores' (2 of 2)" in describe("v", two)
    assert "probabilities (Softmax node" in describe("v", soft)
    # anything computed through the artifact is keyed by its boundary
    keys_seen = {onnx_import_key("ab" * 32, "fp", io) for io in ({}, {"layout": "nhwc"}, {"input_range": [0, 255]},
                                                                   {"output": 1}, {"scores": "probabilities"})}
    assert len(keys_seen) == 5


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["batch4", "nhwc"])
def test_agent_runs_the_file_at_its_batch_and_layout(case: str, backend: str, model_and_data: Any,
                                                     tmp_path: Path) -> None:
    model, x, y, logits = model_and_data
    path, keys = export_case(model, case, tmp_path, (1, 8, 8))
    io = inspect_onnx(path, keys, (1, 8, 8), where=WHERE)["io"]
    testset = tmp_path / "set.npz"
    np.savez(testset, x=x, y=y)
    job = Job(job_id="b", artifact=str(path), backend=backend, output_dir=str(tmp_path / "out"),
              testsets=(TS("clean", str(testset)),), batch_size=50, io=io, profile_runs=3,
              backend_options=OPTIONS[backend],
              latency=LatencyProtocol(warmup=2, min_runs=10, min_duration_s=0.01))
    result = run_job(job)
    assert result["status"] == "ok"
    got = np.load(tmp_path / "out" / "set-0.npy")
    np.testing.assert_allclose(got, logits, atol=1e-4 * max(1.0, float(np.abs(logits).max())))
    batch = CASES[case][1]
    assert result["fixed_batch"] == (batch if batch else None)
    assert result["latency"]["batch"] == batch and result["latency"]["runs"] >= 10
    assert result["output_max_abs_diff"] < 1e-4 * max(1.0, float(np.abs(logits).max()))
    assert result["backend"]["io"] == io
    assert dataclasses.replace(job, io={}).digest() != job.digest() or io == {}


# ------------------------------------------------------------------------------------------ what it cannot use


class _TwoInputs(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.inner(x * mask)


class _Uint8(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.float() / 255.0)


def _bad(model: nn.Module, tmp: Path, name: str) -> Path:
    """The bad files: each is one thing edgebench cannot use."""
    if name == "two_inputs":
        return export(_TwoInputs(model), tmp / "f.onnx", (1, 1, 8, 8), extra_input=True)
    if name == "uint8":
        return export(_Uint8(model), tmp / "f.onnx", (1, 1, 8, 8), dtype=torch.uint8)
    if name == "cifar":
        return export(nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)), tmp / "f.onnx", (1, 3, 32, 32))
    if name == "flat":
        return export(nn.Linear(64, 10), tmp / "f.onnx", (1, 64))
    if name == "nhwc":
        return export_case(model, "nhwc", tmp, (1, 8, 8))[0]
    if name == "two_outputs":
        return export(TwoOutputs(model), tmp / "f.onnx", (1, 1, 8, 8), output_names=("embedding", "scores"))
    return export(model, tmp / "f.onnx", (1, 1, 8, 8))


BAD = [
    ("two_inputs", {}, ArtifactError, "the model has 2 inputs ['image', 'mask']; edgebench feeds one image tensor: "
                                      "export it with a single input (others as constants)"),
    ("uint8", {}, ArtifactError, "input 'image' is uint8; edgebench feeds float32 images in input_range: export the "
                                 "model with a float32 input (quantization inside the graph is fine)"),
    ("cifar", {}, DataError, "input 'image' has shape 1×3×32×32, the data's samples are 1×8×8; export the model "
                             "for 1×8×8 samples (NCHW) or 8×8×1 (NHWC, with layout = \"nhwc\") or use a data set "
                             "of the model's shape"),
    ("flat", {}, DataError, "input 'image' has shape 1×64: 1 dims per sample after the batch, the data's samples "
                            "are 1×8×8; export the model for 1×8×8 samples (NCHW) or 8×8×1 (NHWC, with layout = "
                            "\"nhwc\") or use a data set of the model's shape"),
    ("nhwc", {}, DataError, "input 'image' has shape 1×8×8×1, which is NHWC for the data's 1×8×8 samples: set "
                            "layout = \"nhwc\""),
    ("nhwc", {"layout": "nchw"}, DataError, "input 'image' has shape 1×8×8×1, which is NHWC for the data's 1×8×8 "
                                            "samples: layout = \"nchw\" contradicts it; set layout = \"nhwc\""),
    ("plain", {"layout": "nhwc"}, DataError, "input 'image' has shape 1×1×8×8, which is NCHW for the data's 1×8×8: "
                                             "layout = \"nhwc\" contradicts it; remove layout"),
    ("two_outputs", {"output": "logits"}, ArtifactError, "the model has no output 'logits'; its outputs are "
                                                         "['embedding', 'scores'] (0..1): set output on the model "
                                                         "entry to one of them"),
    ("two_outputs", {"output": 2}, ArtifactError, "the model has no output 2; its outputs are ['embedding', "
                                                  "'scores'] (0..1): set output on the model entry to one of them"),
]


@pytest.mark.parametrize(("name", "keys", "kind", "message"), BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_what_edgebench_cannot_use_is_one_line(name: str, keys: dict[str, Any], kind: type, message: str,
                                               model_and_data: Any, tmp_path: Path) -> None:
    path = _bad(model_and_data[0], tmp_path, name)
    with pytest.raises(kind) as info:
        inspect_onnx(path, keys, (1, 8, 8), where=WHERE)
    assert str(info.value) == f"{WHERE}: {path}: {message}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_scores_of_the_wrong_output_or_not_probabilities(backend: str, model_and_data: Any, tmp_path: Path) -> None:
    model, x = model_and_data[:2]
    path = export(TwoOutputs(model), tmp_path / "f.onnx", (1, 1, 8, 8), output_names=("embedding", "scores"))
    runtime, boundary = _open(path, {}, backend)  # no output key: the first output, (N, 3), is not the scores
    with pytest.raises(DataError) as info:
        check_scores(runtime, boundary, x, 10, where=WHERE, path=path)
    assert str(info.value) == (f"{WHERE}: {path}: output 'embedding' gives shape (2, 3) for 2 samples, expected "
                               "(N, 10); the file's outputs are ['embedding', 'scores']: set output on the model "
                               "entry to the one holding the scores")
    logits_file = export(model, tmp_path / "g.onnx", (1, 1, 8, 8))
    runtime, boundary = _open(logits_file, {"scores": "probabilities"}, backend)
    with pytest.raises(DataError) as info:
        check_scores(runtime, boundary, x, 10, where=WHERE, path=logits_file)
    assert str(info.value).startswith(f"{WHERE}: {logits_file}: output 'logits' is not probabilities (")
    assert str(info.value).endswith('set scores = "logits" on the model entry')
    soft = export(Softmaxed(model), tmp_path / "h.onnx", (1, 1, 8, 8))
    check_scores(*_open(soft, {}, backend), x, 10, where=WHERE, path=soft)  # passes


def test_model_entry_keys(tmp_path: Path) -> None:
    base = ('[plan]\nname = "t"\n[data]\ndataset = "digits"\n[[models]]\nname = "m"\narch = "digits_cnn"\n'
            '[[models]]\nname = "v"\nonnx = "v.onnx"\nattack_source = "m"\n{extra}\n[[targets]]\ntarget = "local"\n')

    def load(extra: str) -> Any:
        (tmp_path / "plan.toml").write_text(base.format(extra=extra))
        return load_plan(tmp_path / "plan.toml")

    plan = load('layout = "nhwc"\ninput_range = [-1, 1]\noutput = "scores"\nscores = "probabilities"')
    assert plan.models[1].io == {"layout": "nhwc", "input_range": [-1, 1], "output": "scores",
                                 "scores": "probabilities"}
    assert plan.models[0].io == {}
    src = tmp_path / "plan.toml"
    for extra, message in [
        ('layout = "nwhc"', "models[1].layout: 'nwhc' is not one of ['nchw', 'nhwc'] (did you mean 'nhwc'?)"),
        ("input_range = [255, 0]", "models[1].input_range: input_range must be [lo, hi] with finite lo < hi (e.g. "
                                   "[0, 255] or [-1, 1]), got [255, 0]"),
        ("output = -1", "models[1].output: output must be an output's name or its index (0, 1, ...), got -1"),
        ('scores = "softmax"', "models[1].scores: 'softmax' is not one of ['logits', 'probabilities']"),
    ]:
        with pytest.raises(ConfigError) as info:
            load(extra)
        assert str(info.value) == f"{src}: {message}"
    (tmp_path / "plan.toml").write_text(base.format(extra="").replace('arch = "digits_cnn"\n',
                                                                      'arch = "digits_cnn"\nlayout = "nhwc"\n'))
    with pytest.raises(ConfigError) as info:
        load_plan(tmp_path / "plan.toml")
    assert str(info.value) == (f"{src}: models[0].layout: applies to an 'onnx' model only (a zoo or factory model is "
                               "exported by edgebench, which feeds it [0, 1] NCHW and reads its logits); remove it")
