"""Interleaved latency rounds (issue 16, item 6) on real ONNX Runtime sessions of tiny models: the agent's
latency job (order, per-round medians, CV, resume, the settle wait), the plan keys, and the round-median test
that ``edgebench compare`` and the report use instead of Welch's t over per-inference samples."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from edgebench.agent import Job, LatencyProtocol
from edgebench.agent import TestSet as TS  # aliased: pytest would try to collect a class named Test*
from edgebench.agent.protocol import ArtifactRef, sha256_file

ORT = {"intra_op_num_threads": 1, "inter_op_num_threads": 1}
FAST = LatencyProtocol(warmup=3, min_runs=30, min_duration_s=0.03, rounds=3, settle_s=0.0)


def tiny_onnx(path: Path, hidden: int) -> Path:
    """A two-layer MLP on 64 inputs (``hidden`` units, 10 outputs): a real graph ONNX Runtime runs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(hidden)
    w1 = numpy_helper.from_array(rng.standard_normal((64, hidden)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((hidden, 10)).astype(np.float32), "w2")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w1"], ["h"]),
         helper.make_node("Relu", ["h"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 10])], initializer=[w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rounds")
    x = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)
    np.savez(root / "set.npz", x=x)
    a = tiny_onnx(root / "a.onnx", 16)
    (root / "a2.onnx").write_bytes(a.read_bytes())  # the same artifact twice
    return {"a": a, "a2": root / "a2.onnx", "b": tiny_onnx(root / "b.onnx", 512), "set": root / "set.npz"}


def latency_job(tiny: dict[str, Path], out: Path, names: tuple[str, ...] = ("a", "b"), **proto) -> Job:
    return Job(job_id="lat", artifact="", backend="onnxruntime", output_dir=str(out), kind="latency",
               testsets=(TS("clean", str(tiny["set"])),), backend_options=dict(ORT),
               artifacts=tuple(ArtifactRef(n, str(tiny[n]), sha256_file(tiny[n])) for n in names),
               latency=dataclasses.replace(FAST, **proto))
