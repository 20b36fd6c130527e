"""The default plan, cold (empty cache, new run folder) and again (the same run resumed).

    python bench/bench_default_plan.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    env = {**os.environ, "EDGEBENCH_CACHE": str(tmp / "cache")}
    cmd = [sys.executable, "-m", "edgebench.cli", "run", "--out", str(tmp / "reports")]
    times = []
    for label in ("cold", "again"):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
        print(f"{label}: {times[-1]:.1f} s")
    (run,) = (tmp / "reports").iterdir()
    recs = json.loads((run / "results.json").read_text())
    clean = next(r for r in recs if r["attack"] == "none")
    print(f"\n| measure | value | target |\n|---|---|---|\n| cold run | {times[0]:.1f} s | < 180 s |\n"
          f"| second run | {times[1]:.1f} s | < 15 s |\n| clean acc (ONNX Runtime, n={clean['n']}) | "
          f"{clean['clean_acc']:.4f} [{clean['clean_acc_lo']:.3f}, {clean['clean_acc_hi']:.3f}] | >= 0.95 |\n"
          f"| latency p50 | {clean['p50_ms'] * 1e3:.1f} µs over {clean['runs']} runs | |")


if __name__ == "__main__":
    main()
