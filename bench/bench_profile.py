"""The agent's profiling pass does not change the timed numbers: p50 of the latency pass with and without the
profiling pass after it, in the same run.

Two measurements per backend (ONNX Runtime, OpenVINO), on an untrained model exported to ONNX (OpenVINO reads
the ONNX file):

- ``jobs``: whole agent jobs, each in a fresh agent process as on a device (``python -m edgebench.agent run``),
  alternating ``profile_runs = 0`` and ``profile_runs = N`` (the order flips every pair); the median of each
  side's p50s and their ratio (goal: inside the pairs' spread, i.e. no measurable effect), and the profiling
  pass's own cost in seconds (job wall time on minus off).
- ``process``: in one process, a latency pass, then either the profiling pass or nothing, then a second latency
  pass on the same bound session (what interleaved rounds would see if a profile ran between them): the
  second pass's p50 over the first's, with and without the profile between, alternating.

    python bench/bench_profile.py [--model liu2018_mnist] [--pairs 5] [--runs 50] [--seconds 0.5] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def export(model: str, root: Path) -> tuple[Path, Path]:
    """The model (untrained, seeded) as ONNX and a 64-sample test set, written by a child process so that this
    one stays torch-free like the agent."""
    code = (
        "import sys, numpy as np, torch\n"
        "from pathlib import Path\n"
        "from edgebench.models import create_model\n"
        "from edgebench.export.onnx import export_onnx\n"
        "torch.manual_seed(0)\n"
        f"m = create_model({model!r}, input_shape=(1, 28, 28), num_classes=10).eval()\n"
        f"export_onnx(m, (1, 28, 28), Path({str(root / 'model.onnx')!r}))\n"
        f"np.savez({str(root / 'test.npz')!r}, x=np.random.default_rng(0).random((64, 1, 28, 28), "
        "dtype=np.float32))\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    return root / "model.onnx", root / "test.npz"


def agent_job(artifact: Path, testset: Path, backend: str, options: dict, out: Path, seconds: float,
              profile_runs: int) -> tuple[float, float, dict]:
    from edgebench.agent import Job, LatencyProtocol, TestSet

    job = Job(job_id=out.name, artifact=str(artifact), backend=backend, output_dir=str(out),
              testsets=(TestSet("x", str(testset)),), backend_options=options, batch_size=64,
              latency=LatencyProtocol(warmup=50, min_runs=200, min_duration_s=seconds), profile_runs=profile_runs)
    path = out.with_suffix(".json")
    path.write_text(job.to_json())
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "edgebench.agent", "run", str(path)], check=True, capture_output=True)
    wall = time.perf_counter() - t0
    result = json.loads((out / "result.json").read_text())
    return result["latency"]["p50_ms"], wall, result


def in_process(artifact: Path, testset: Path, backend: str, options: dict, seconds: float, runs: int,
               pairs: int) -> dict[str, list[float]]:
    from edgebench.agent import LatencyProtocol
    from edgebench.agent.job import latency_pass
    from edgebench.runtime import create_backend

    b = create_backend(backend, **options)
    b.load(artifact)
    x = np.load(testset)["x"][:1]
    infer = b.bind(x)
    proto = LatencyProtocol(warmup=50, min_runs=200, min_duration_s=seconds)
    ratios: dict[str, list[float]] = {"profile between": [], "nothing between": []}
    for i in range(pairs):
        for case in (("profile between", "nothing between") if i % 2 == 0 else ("nothing between", "profile between")):
            first = float(np.median(latency_pass(infer, proto)[0]))
            if case == "profile between":
                b.profile(x, runs)
            second = float(np.median(latency_pass(infer, proto)[0]))
            ratios[case].append(second / first)
    return ratios


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="liu2018_mnist")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--runs", type=int, default=50, help="profile_runs of the 'on' jobs")
    ap.add_argument("--seconds", type=float, default=0.5, help="min_duration_s of each latency pass")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="onnxruntime,openvino")
    args = ap.parse_args()
    options = {"onnxruntime": {"intra_op_num_threads": args.threads, "inter_op_num_threads": 1},
               "openvino": {"inference_num_threads": args.threads}}
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        root = Path(tmp)
        artifact, testset = export(args.model, root)
        print(f"{args.model}, batch 1, {args.threads} threads, {args.pairs} pairs, profile_runs {args.runs}, "
              f"latency passes of >= {args.seconds} s\n")
        print("| backend | p50 off ms (median, range) | p50 on ms (median, range) | on/off | pairs on/off range "
              "| profile pass s | process: 2nd/1st p50, profile between | nothing between |")
        print("|---|---|---|---|---|---|---|---|")
        for backend in args.only.split(","):
            p50: dict[bool, list[float]] = {False: [], True: []}
            wall: dict[bool, list[float]] = {False: [], True: []}
            for i in range(args.pairs):
                for on in ((False, True) if i % 2 == 0 else (True, False)):
                    ms, seconds, result = agent_job(artifact, testset, backend, options[backend],
                                                    root / f"{backend}-{i}-{int(on)}", args.seconds,
                                                    args.runs if on else 0)
                    assert (result["profile"] is not None) == on
                    p50[on].append(ms)
                    wall[on].append(seconds)
            pair = [a / b for a, b in zip(p50[True], p50[False])]
            off, on_ = statistics.median(p50[False]), statistics.median(p50[True])
            cost = statistics.median(wall[True]) - statistics.median(wall[False])
            proc = in_process(artifact, testset, backend, options[backend], args.seconds, args.runs, args.pairs)
            between, nothing = (statistics.median(proc[k]) for k in ("profile between", "nothing between"))
            print(f"| {backend} | {off:.4f} ({min(p50[False]):.4f}-{max(p50[False]):.4f}) | {on_:.4f} "
                  f"({min(p50[True]):.4f}-{max(p50[True]):.4f}) | {on_ / off:.3f} | {min(pair):.3f}-{max(pair):.3f} "
                  f"| {cost:.2f} | {between:.3f} ({min(proc['profile between']):.3f}-"
                  f"{max(proc['profile between']):.3f}) | {nothing:.3f} ({min(proc['nothing between']):.3f}-"
                  f"{max(proc['nothing between']):.3f}) |", flush=True)


if __name__ == "__main__":
    main()
