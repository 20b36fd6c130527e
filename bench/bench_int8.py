"""int8 ONNX on ONNX Runtime: edgebench's artifact (both engines) vs ``quantize_static``'s vs the fp32 base, and
NNCF's QDQ graph as written (what edgebench shipped before issue 16), all from the same fp32 export.

Each case is loaded by edgebench's ``onnxruntime`` backend (as the agent loads it: all graph optimizations,
``--threads`` intra-op threads) and timed through ``backend.bind(x)`` on one input (batch 1). Interleaved
blocks: every block times each case for ``--runs`` inferences, the order rotating block to block, so drift and
the other processes on this shared machine hit all cases alike; a case's p50 is the median of its block
p50s, and each ratio is the median of the per-block ratios (paired within a block), with their range.

Per case it also prints the int8 kernels ONNX Runtime's optimizer leaves (QLinearConv, QGemm, ...) against the
float ones, and the parity (max |Δlogit|) against the fake-quantized torch twin.

    python bench/bench_int8.py [--model liu2018_mnist|lenet5] [--blocks 9] [--runs 300] [--threads 2]

Goals (issue 16): edgebench's int8 p50 ≤ 1.05× quantize_static's, and < 1.0× fp32.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's edgebench, installed or not

SHAPES = {"liu2018_mnist": (1, 28, 28), "lenet5": (1, 28, 28)}


def build(args: argparse.Namespace, root: Path) -> tuple[dict[str, Path], object, np.ndarray]:
    """The fp32 export, edgebench's int8 artifact from each engine, quantize_static's, and NNCF's raw graph."""
    import nncf
    import onnx
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from edgebench.export.onnx import export_onnx
    from edgebench.models import create_model
    from edgebench.models.train import TrainConfig
    from edgebench.variants import Variant, VariantContext, create_method

    shape = SHAPES[args.model]
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = create_model(args.model, input_shape=shape, num_classes=10, mean=(0.13,), std=(0.31,)).eval()
    x_cal = rng.random((args.calibration, *shape), dtype=np.float32)  # untrained weights: inputs in [0, 1]
    ctx = VariantContext(x_cal, np.zeros(len(x_cal), np.int64), shape, 10, TrainConfig(), seed=0, where="bench")
    paths = {"fp32": export_onnx(model, shape, root / "fp32.onnx")}
    twin = None
    for engine in ("nncf", "onnxruntime"):
        method = create_method("compress", "int8", calibration_size=args.calibration, engine=engine)
        variant = twin = method.apply(model, ctx) if twin is None else Variant(twin.model, info=twin.info)
        method.attach(variant, model, ctx)
        paths[f"edgebench {engine}"] = variant.export_onnx(root / f"eb-{engine}.onnx")
    batches = [b[None] for b in x_cal]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{"x": b} for b in batches])

        def get_next(self):  # noqa: ANN201
            return next(self._it, None)

    quantize_static(str(paths["fp32"]), str(root / "ort.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    paths["quantize_static"] = root / "ort.onnx"
    raw = nncf.quantize(onnx.load(str(paths["fp32"])), nncf.Dataset([{"x": b} for b in batches]),
                        preset=nncf.QuantizationPreset.PERFORMANCE, subset_size=args.calibration)
    onnx.save(raw, str(root / "nncf-raw.onnx"))
    paths["nncf as written (before)"] = root / "nncf-raw.onnx"
    return paths, twin.model, x_cal


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="liu2018_mnist", choices=sorted(SHAPES))
    ap.add_argument("--blocks", type=int, default=9)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calibration", type=int, default=64)
    args = ap.parse_args()
    logging.disable(logging.WARNING)

    import onnxruntime as ort

    from edgebench.export.qdq import INT8_KERNELS, optimized_ops
    from edgebench.models.train import predict_logits
    from edgebench.runtime import create_backend

    with tempfile.TemporaryDirectory() as tmp:
        paths, twin, x_cal = build(args, Path(tmp))
        x = np.ascontiguousarray(x_cal[:1])
        ref = predict_logits(twin, x_cal)
        infer, kernels, parity = {}, {}, {}
        for name, path in paths.items():
            backend = create_backend("onnxruntime", intra_op_num_threads=args.threads, inter_op_num_threads=1)
            backend.load(path)
            infer[name] = backend.bind(x)
            ops = optimized_ops(path)
            kernels[name] = ", ".join(f"{k}×{v}" for k, v in sorted(ops.items())
                                      if k in INT8_KERNELS or k in ("Conv", "FusedConv", "Gemm", "FusedGemm",
                                                                    "MatMul", "DequantizeLinear"))
            got = backend.predict(x_cal)
            parity[name] = float(np.max(np.abs(got - ref)))
        names = list(paths)
        p50: dict[str, list[float]] = {n: [] for n in names}
        for n in names:  # warm-up
            for _ in range(50):
                infer[n]()
        for b in range(args.blocks):
            order = names[b % len(names):] + names[:b % len(names)]
            for n in order:
                fn, ts = infer[n], np.empty(args.runs)
                for i in range(args.runs):
                    t0 = time.perf_counter_ns()
                    fn()
                    ts[i] = time.perf_counter_ns() - t0
                p50[n].append(float(np.median(ts)) / 1e3)

    def ratio(a: str, b: str) -> str:
        r = [x / y for x, y in zip(p50[a], p50[b])]
        return f"{statistics.median(r):.2f} ({min(r):.2f}–{max(r):.2f})"

    print(f"{args.model}, batch 1, {args.threads} threads, onnxruntime {ort.__version__}, {args.blocks} interleaved "
          f"blocks × {args.runs} runs; ratios: median of per-block ratios (range)\n")
    print("| case | p50 µs | vs fp32 | vs quantize_static | max |Δlogit| vs twin | kernels after ORT's optimizer |")
    print("|---|---|---|---|---|---|")
    for n in names:
        print(f"| {n} | {statistics.median(p50[n]):.1f} | {ratio(n, 'fp32')} | {ratio(n, 'quantize_static')} | "
              f"{parity[n]:.4f} | {kernels[n]} |")
    eb = [n for n in names if n.startswith("edgebench")]
    ok = all(statistics.median([x / y for x, y in zip(p50[n], p50["quantize_static"])]) <= 1.05 and
             statistics.median([x / y for x, y in zip(p50[n], p50["fp32"])]) < 1.0 for n in eb)
    print(f"\ngoal (≤ 1.05× quantize_static and < 1.0× fp32 for {', '.join(eb)}): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
