"""Interleaved latency rounds vs one block per artifact, on two copies of the same artifact (issue 16, item 6).

Two byte-identical copies A and A' of one ONNX model (untrained ``liu2018_mnist`` 1×28×28, exported in a
child process so the measuring agent stays torch-free) are timed by the real agent (``python -m
edgebench.agent run``), ``--reps`` times, alternating the two protocols:

- ``block`` (protocol 2's way, ``rounds = 1``): one device job per copy, A's whole timed pass then A''s; the
  ratio A' ÷ A of the two jobs' p50s, and the CV of each block's medians over ``--rounds`` equal slices in time;
- ``interleaved``: one latency job timing A and A' in ``--rounds`` interleaved rounds; the median of the
  per-round ratios (``compare_rounds(paired=True)``, as the report reads it), and the CV of the round medians.

The load average before and after is printed: on a shared machine other processes' load dominates both.

The true ratio is 1: every departure is protocol noise. It also reads the cross-run view that ``edgebench
compare`` takes: A's round medians in consecutive interleaved jobs compared with ``compare_rounds`` (how many
"resolved" differences of the same artifact with no floor and with ``RUN_FLOOR``; the run-to-run CV of the
jobs' p50s), and Welch's t over per-inference samples on consecutive block jobs (the old compare's p-values).

    python bench/bench_rounds.py [--reps 6] [--rounds 5] [--seconds 1.0] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's edgebench, installed or not

from edgebench.agent.protocol import ArtifactRef, Job, LatencyProtocol, TestSet, sha256_file  # noqa: E402
from edgebench.metrics.latency import round_cv, welch_test  # noqa: E402
from edgebench.metrics.rounds import RUN_FLOOR, compare_rounds  # noqa: E402

EXPORT = ("import sys; from pathlib import Path; from edgebench.models import create_model; "
          "from edgebench.export.onnx import export_onnx; "
          "export_onnx(create_model('liu2018_mnist', input_shape=(1, 28, 28), num_classes=10), (1, 28, 28), "
          "Path(sys.argv[1]))")


def agent(job: Job, work: Path, name: str) -> dict:
    """Run ``job`` in a fresh agent process (as a device job runs) and return its result document."""
    f = work / f"{name}.json"
    f.write_text(job.to_json())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "edgebench.agent", "run", str(f)], capture_output=True, text=True,
                          env=env, check=False)
    if proc.returncode:
        raise SystemExit(f"agent failed: {proc.stderr.strip()}")
    return json.loads((Path(job.output_dir) / "result.json").read_text())


def slices(samples_ns: np.ndarray, k: int) -> list[float]:
    """Medians (ms) of ``k`` equal slices in time order: a block's "round medians"."""
    return [float(np.median(s)) / 1e6 for s in np.array_split(samples_ns, k)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0, help="timed seconds per artifact per job")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    load0 = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-rounds-"))
    subprocess.run([sys.executable, "-c", EXPORT, str(work / "a.onnx")], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    (work / "a2.onnx").write_bytes((work / "a.onnx").read_bytes())
    np.savez(work / "x.npz", x=np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32))
    opts = {"intra_op_num_threads": args.threads, "inter_op_num_threads": 1}
    proto = LatencyProtocol(warmup=20, min_runs=200, min_duration_s=args.seconds, rounds=args.rounds, settle_s=0.0)
    base = Job(job_id="b", artifact="", backend="onnxruntime", output_dir="", backend_options=opts, batch_size=4,
               testsets=(TestSet("x", str(work / "x.npz")),))
    refs = tuple(ArtifactRef(n, str(work / f"{n}.onnx"), sha256_file(work / f"{n}.onnx")) for n in ("a", "a2"))

    block = {"ratio": [], "cv": [], "p50": [], "stats": []}
    inter = {"ratio": [], "cv": [], "p50": [], "rounds": []}
    for rep in range(args.reps):
        for kind in (("block", "inter") if rep % 2 == 0 else ("inter", "block")):
            if kind == "block":
                p50 = []
                for ref in refs:
                    out = work / f"block-{rep}-{ref.name}"
                    job = dataclasses.replace(base, artifact=ref.path, artifact_sha256=ref.sha256,
                                              output_dir=str(out), latency=dataclasses.replace(proto, rounds=1))
                    lat = agent(job, work, out.name)["latency"]
                    samples = np.load(out / "latency_ns.npy")
                    block["cv"].append(round_cv(slices(samples, args.rounds)))
                    block["stats"].append((lat["mean_ms"], lat["std_ms"], lat["runs"]))
                    p50.append(lat["p50_ms"])
                block["ratio"].append(p50[1] / p50[0])
                block["p50"].append(p50[0])
            else:
                out = work / f"inter-{rep}"
                job = dataclasses.replace(base, kind="latency", artifacts=refs, output_dir=str(out), latency=proto)
                variants = agent(job, work, out.name)["variants"]
                inter["ratio"].append(compare_rounds(*(v["latency"]["round_median_ms"] for v in variants),
                                                     paired=True)["ratio"])
                inter["cv"] += [v["latency"]["round_cv"] for v in variants]
                inter["p50"].append(variants[0]["latency"]["p50_ms"])
                inter["rounds"].append(variants[0]["latency"]["round_median_ms"])

    def dev(r: list[float]) -> str:
        d = [abs(x - 1) * 100 for x in r]
        return f"median {statistics.median(d):.2f} %, max {max(d):.2f} %"

    print(f"liu2018_mnist ×2 copies, {args.reps} reps, {args.rounds} rounds, {args.seconds:g} s per artifact, "
          f"{args.threads} thread(s); load average (1 min) {load0[0]:.1f} before, {os.getloadavg()[0]:.1f} after "
          f"on {os.cpu_count()} CPUs\n")
    print("| protocol | A' ÷ A per rep | abs(ratio − 1) | CV of round (slice) medians |")
    print("|---|---|---|---|")
    for name, d in (("block (rounds = 1)", block), ("interleaved", inter)):
        print(f"| {name} | {', '.join(f'{r:.3f}' for r in d['ratio'])} | {dev(d['ratio'])} | "
              f"median {statistics.median(d['cv']) * 100:.2f} %, max {max(d['cv']) * 100:.2f} % |")
    runs = inter["p50"]
    print(f"\nrun-to-run CV of A's p50 over the {len(runs)} interleaved jobs: {round_cv(runs) * 100:.2f} %; over the "
          f"block jobs: {round_cv(block['p50']) * 100:.2f} %")
    pairs = list(zip(inter["rounds"], inter["rounds"][1:]))
    for floor in (0.0, RUN_FLOOR):
        hits = [compare_rounds(a, b, paired=False, floor=floor) for a, b in pairs]
        ratios = ", ".join(f"{h['ratio']:.3f}" for h in hits)
        print(f"compare_rounds, same artifact in consecutive jobs, floor {floor:g}: "
              f"{sum(h['resolved'] for h in hits)}/{len(hits)} read resolved (ratios {ratios})")
    a_stats = block["stats"][0::2]
    ps = [welch_test(*x, *y)["p_value"] for x, y in zip(a_stats, a_stats[1:])]
    print(f"old compare (Welch's t over per-inference samples), same artifact in consecutive block jobs: p = "
          f"{', '.join(f'{p:.2g}' for p in ps)}")


if __name__ == "__main__":
    main()
