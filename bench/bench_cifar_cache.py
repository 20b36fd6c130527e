"""CIFAR-10 load time with and without the decoded-array cache (:mod:`edgebench.data.decoded`).

Builds a full-size archive in the official format with the tests' builder (5 × 10000 train images + 10000
test images of random pixels, pickled as Python 2 did), then times ``load_dataset("cifar10")`` in fresh
processes: first on an empty cache (decode the pickles, write the entry), then again (read the entry), and
the reference: a load that cannot cache (the cache folder is a file, so every load decodes).

    python bench/bench_cifar_cache.py [--per-batch 10000] [--reps 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.integration.test_cifar import make_cifar10  # noqa: E402

LOAD = ("import sys, time; t0 = time.perf_counter(); from edgebench.data import load_dataset; "
        "ds = load_dataset('cifar10', root=sys.argv[1], download=False, md5=sys.argv[2]); "
        "print(time.perf_counter() - t0, len(ds.y_train))")


def _load(folder: Path, md5: str, cache: Path) -> float:
    env = {**os.environ, "EDGEBENCH_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", LOAD, str(folder), md5], env=env, capture_output=True, text=True,
                         check=True)
    return float(out.stdout.split()[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-batch", type=int, default=10000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive, _ = make_cifar10(Path(tmp) / "c", per_batch=args.per_batch, n_test=args.per_batch)
        md5 = hashlib.md5(archive.read_bytes()).hexdigest()
        print(f"archive {archive.stat().st_size / 2**20:.0f} MiB, {5 * args.per_batch} + {args.per_batch} images")
        blocked = Path(tmp) / "no-cache"
        blocked.write_text("")  # data_home() below a file: nothing can be cached
        firsts, seconds, uncached = [], [], []
        for r in range(args.reps):
            cache = Path(tmp) / f"cache{r}"
            firsts.append(_load(archive.parent, md5, cache))
            seconds.append(_load(archive.parent, md5, cache))
            uncached.append(_load(archive.parent, md5, blocked))
        med = {k: statistics.median(v) for k, v in
               {"no cache (decode)": uncached, "first (decode + write)": firsts, "second (read)": seconds}.items()}
        for k, v in med.items():
            print(f"{k}: median {v:.2f} s of {args.reps} fresh processes")
        print(f"second / no cache: {med['second (read)'] / med['no cache (decode)']:.3f}")


if __name__ == "__main__":
    main()
