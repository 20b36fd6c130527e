"""Filter pruning and the runtimes' vector width, in ONNX Runtime (issue 16, item 9).

Two measurements, one inference per case in turn (``_timing.interleaved``) so drift hits every case alike,
batch 1, fp32, ``--threads`` intra-op threads, the p50 of each case and its ratio to the 64-channel base:

- ``channels``: a four-convolution network (3×3, padding 1, ReLU, on a 3×``--size``² input, then average
  pooling and a linear classifier) built at 64, 58, 57, 56 and 48 channels: what fewer channels cost when the
  count is off the multiple of 8 that ONNX Runtime's NCHWc convolutions block by;
- ``pruned``: the 64-channel network filter-pruned by edgebench (L2, no fine-tuning) at each ``--ratios`` with
  ``round_to = 1`` (the channel counts the ratio gives) and with the default ``round_to = 8``, with the MACs of
  each.

    python bench/bench_pruning.py [--reps 2000] [--threads 2] [--size 32] [--ratios 0.1,0.2,0.3,0.4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's edgebench, installed or not
from _timing import interleaved  # noqa: E402

from edgebench.compress.stats import count_macs  # noqa: E402
from edgebench.export.onnx import export_onnx  # noqa: E402
from edgebench.models.train import TrainConfig, seeded  # noqa: E402
from edgebench.variants import VariantContext, create_method  # noqa: E402


def four_convs(c: int) -> nn.Module:
    layers: list[nn.Module] = []
    for cin in (3, c, c, c):
        layers += [nn.Conv2d(cin, c, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10)).eval()


def session(model: nn.Module, shape: tuple[int, ...], folder: Path, name: str, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    path = export_onnx(model, shape, folder / f"{name}.onnx")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def channels(model: nn.Module) -> str:
    return "/".join(str(m.out_channels) for m in model.modules() if isinstance(m, nn.Conv2d))


def report(title: str, times: dict[str, list[float]], info: dict[str, str], ref: str) -> None:
    base = statistics.median(times[ref])
    print(f"\n{title}\n| case | channels | MACs | p50 ms | p10-p90 ms | p50 / {ref} |\n|---|---|---|---|---|---|")
    for name, ts in times.items():
        q = np.percentile(ts, [10, 50, 90]) * 1e3
        print(f"| {name} | {info[name]} | {q[1]:.3f} | {q[0]:.3f}-{q[2]:.3f} | {q[1] / base / 1e3:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--ratios", default="0.1,0.2,0.3,0.4")
    args = ap.parse_args()
    shape = (3, args.size, args.size)
    x = np.random.default_rng(0).random((1, *shape), dtype=np.float32)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seeded(0)
        nets = {f"c{c}": four_convs(c) for c in (64, 58, 57, 56, 48)}
        cases, info = {}, {}
        for name, net in nets.items():
            sess = session(net, shape, folder, name, args.threads)
            cases[name] = (lambda s=sess: s.run(None, {"x": x}))
            info[name] = f"{channels(net)} | {count_macs(net, shape):,}"
        report("channels (unpruned networks)", interleaved(cases, reps=args.reps, warmup=50), info, "c64")

        rng = np.random.default_rng(0)
        ctx = VariantContext(rng.random((16, *shape), dtype=np.float32), rng.integers(0, 10, 16), shape, 10,
                             TrainConfig(epochs=1), seed=0, where="bench")
        base = nets["c64"]
        cases, info = {"base": cases["c64"]}, {"base": info["c64"]}
        for ratio in (float(r) for r in args.ratios.split(",")):
            for round_to in (1, 8):
                # prune_first: all four convolutions, as when the README's figures were measured
                out = create_method("compress", "filter_pruning", ratio=ratio, epochs_per_step=0,
                                    round_to=round_to, prune_first=True).apply(base, ctx).model
                name = f"r{ratio:g}/round_to={round_to}"
                sess = session(out, shape, folder, name.replace("/", "_"), args.threads)
                cases[name] = (lambda s=sess: s.run(None, {"x": x}))
                info[name] = f"{channels(out)} | {count_macs(out, shape):,}"
        report("pruned from 64 channels, round_to = 1 vs 8", interleaved(cases, reps=args.reps, warmup=50), info,
               "base")


if __name__ == "__main__":
    main()
