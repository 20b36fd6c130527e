"""``edgebench search``'s sampler against random search (issue 21): the same plan, space, budget and seeds, the
Optuna sampler of the plan (NSGA-II by default) and Optuna's ``RandomSampler``, ``--repeats`` seeds each, ``--trials``
trials per search, every trial measured as ``edgebench search`` measures it (the runner, ONNX Runtime on this
machine; one artifact cache for all, so a configuration met again is not rebuilt).

Two figures per sampler, mean and per seed:

- ``trials to target``: the first trial (1-based) that is within the budget with robust accuracy >= each
  ``--target`` (default: the best feasible robust accuracy any search found, minus 0.02 and minus 0.1); a search
  that never gets there counts ``trials + 1`` (marked ``>``);
- ``hypervolume``: of the feasible trials' (robust accuracy, true stored size) after all trials
  (:func:`edgebench.metrics.pareto.hypervolume_2d`, reference point: robust accuracy 0, the budget's size);
- ``feasible trials``: how many of the trials were within the budget.

    python bench/bench_search.py [--plan bench/plans/search-digits-bench.toml] [--trials 12] [--repeats 3]
        [--samplers nsga2,random,tpe] [--out /tmp/bench-search] [--target 0.6,0.55]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's edgebench, installed or not

from edgebench.metrics.pareto import hypervolume_2d  # noqa: E402
from edgebench.search.study import load_search, run_search  # noqa: E402

HERE = Path(__file__).resolve().parent


def curve(rows: list[dict], budget_size: float | None) -> list[tuple[bool, float | None, float | None]]:
    """Per trial in order: (within budget, robust accuracy, stored MB)."""
    out = []
    for r in sorted(rows, key=lambda r: r["index"] if r.get("index") is not None else r["number"]):
        v = r.get("values") or {}
        ok = r.get("state") == "COMPLETE" and bool(r.get("feasible"))
        out.append((ok, v.get("robust_acc"), v.get("size_mb")))
    return out


def trials_to(c: list[tuple[bool, float | None, float | None]], target: float) -> int | None:
    return next((i + 1 for i, (ok, acc, _) in enumerate(c) if ok and acc is not None and acc >= target - 1e-12), None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plan", default=str(HERE / "plans" / "search-digits-bench.toml"))
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samplers", default="nsga2,random")
    ap.add_argument("--out", default="/tmp/bench-search")
    ap.add_argument("--target", default=None, help="robust accuracies to reach, comma-separated (default: the best "
                    "feasible one any search found minus 0.02, and minus 0.1)")
    args = ap.parse_args()
    out = Path(args.out)
    os.environ.setdefault("EDGEBENCH_CACHE", str(out / "cache"))
    _, space, _ = load_search(args.plan)
    size_cap = space.budget.get("size_mb", 1.0)
    curves: dict[str, dict[int, list]] = {}
    t0 = time.perf_counter()
    for sampler in args.samplers.split(","):
        for seed in range(args.repeats):
            t = time.perf_counter()
            s = run_search(args.plan, out_dir=out / "runs", run_id=f"{sampler}-seed{seed}", trials=args.trials,
                           sampler=sampler, seed=seed, finish=False)
            curves.setdefault(sampler, {})[seed] = curve(s.trials, size_cap)
            print(f"{sampler} seed {seed}: {len(s.trials)} trials in {time.perf_counter() - t:.0f} s", flush=True)
    best = max((acc for cs in curves.values() for c in cs.values() for ok, acc, _ in c if ok and acc is not None),
               default=0.0)
    targets = [float(t) for t in args.target.split(",")] if args.target else [round(best - 0.02, 4),
                                                                             round(best - 0.1, 4)]
    result: dict = {"plan": args.plan, "trials": args.trials, "repeats": args.repeats, "targets": targets,
                    "best_feasible_robust_acc": best, "seconds": time.perf_counter() - t0, "samplers": {}}
    print(f"\nbest feasible robust accuracy found: {best:.4f}; hypervolume of (robust_acc, stored MB), reference "
          f"(0, {size_cap:g} MB); >N: not reached in N trials, counted N + 1 in the mean")
    head = " ".join(f"{'to ' + format(t, '.3f') + ' (per seed)':24s} {'mean':>5s}" for t in targets)
    print(f"{'sampler':8s} {head}  {'hypervolume (per seed)':28s} {'mean':>7s}  feasible trials")
    for sampler, cs in curves.items():
        row, entry = [], {}
        for t in targets:
            reach = {seed: trials_to(c, t) for seed, c in cs.items()}
            counted = [r if r is not None else args.trials + 1 for r in reach.values()]
            per = ", ".join(str(r) if r is not None else f">{args.trials}" for r in reach.values())
            row.append(f"{per:24s} {statistics.mean(counted):5.2f}")
            entry[f"trials_to_{t}"] = reach
            entry[f"mean_trials_to_{t}"] = statistics.mean(counted)
        hv = {seed: hypervolume_2d([(acc, size) for ok, acc, size in c if ok and acc is not None and size is not None],
                                   ref=(0.0, size_cap)) for seed, c in cs.items()}
        feasible = {seed: sum(ok for ok, _, _ in c) for seed, c in cs.items()}
        print(f"{sampler:8s} {' '.join(row)}  {', '.join(f'{h:.5f}' for h in hv.values()):28s} "
              f"{statistics.mean(hv.values()):7.5f}  {', '.join(map(str, feasible.values()))}")
        result["samplers"][sampler] = {**entry, "hypervolume": hv, "mean_hypervolume": statistics.mean(hv.values()),
                                       "feasible": feasible, "curves": cs}
    (out / "bench_search.json").write_text(json.dumps(result, indent=1, default=str))
    print(f"\n{out / 'bench_search.json'}; {result['seconds']:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
