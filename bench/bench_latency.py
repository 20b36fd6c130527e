"""The agent's latency pass vs a bare ``session.run`` loop on the same ONNX model and thread count.

Alternates blocks of each so drift hits both alike; compares the median of the blocks' p50s.

    python bench/bench_latency.py [--model digits_cnn|liu2018_mnist] [--blocks 7] [--runs 2000] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="digits_cnn")
    ap.add_argument("--blocks", type=int, default=7)
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import onnxruntime as ort

    from edgebench.agent.job import LatencyProtocol, _latency_pass
    from edgebench.export.onnx import export_onnx
    from edgebench.models import create_model
    from edgebench.runtime import create_backend

    shape = (1, 8, 8) if args.model == "digits_cnn" else (1, 28, 28)
    path = Path(tempfile.mkdtemp()) / "m.onnx"
    export_onnx(create_model(args.model, input_shape=shape, num_classes=10), shape, path)
    x = np.random.default_rng(0).random((1, *shape), dtype=np.float32)

    backend = create_backend("onnxruntime", intra_op_num_threads=args.threads, inter_op_num_threads=1)
    backend.load(path)
    infer = backend.bind(x)
    proto = LatencyProtocol(warmup=100, min_runs=args.runs, min_duration_s=0.0, max_runs=args.runs)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def bare() -> np.ndarray:
        for _ in range(100):
            sess.run(None, {"x": x})
        out = np.empty(args.runs, dtype=np.int64)
        clock = time.perf_counter_ns
        for i in range(args.runs):
            t0 = clock()
            sess.run(None, {"x": x})
            out[i] = clock() - t0
        return out

    p50 = {"bare_session_run": [], "edgebench_agent": []}
    for _ in range(args.blocks):
        p50["bare_session_run"].append(float(np.median(bare())) / 1e3)
        samples, _ = _latency_pass(infer, proto)
        p50["edgebench_agent"].append(float(np.median(samples)) / 1e3)
    ref = statistics.median(p50["bare_session_run"])
    print(f"## batch-1 latency, {args.model}, onnxruntime {ort.__version__}, {args.threads} threads, "
          f"{args.blocks} blocks x {args.runs} runs\n")
    print("| loop | median of block p50 (µs) | min-max (µs) | ratio to bare |\n|---|---|---|---|")
    for name, vals in p50.items():
        med = statistics.median(vals)
        print(f"| {name} | {med:.2f} | {min(vals):.2f}-{max(vals):.2f} | {med / ref:.3f} |")


if __name__ == "__main__":
    main()
