"""Executors: the speed-up of a CPU-bound sweep with more workers, and each executor's cost per job.

**Scaling.** A plan of ``--stages`` independent host stages (digits_cnn models trained ``--epochs`` epochs on
scikit-learn's digits, each with its own learning rate: no stage depends on another) runs end to end
(``Pipeline.run``: scheduling, worker start-up, store records, the report) on an empty cache with 1, 2, ...
workers, on the local executor and on Ray (a local Ray instance started with that many CPUs; its start-up is
timed apart). The reference is the same plan computed in place (``--workers 0``) in the same run; every
configuration runs ``--reps`` times, interleaved, and the median is reported. A local worker gets
``cores // workers`` torch threads (``--threads-per-worker`` fixes it), so by default 1 worker on 2 cores
trains with 2 threads: the curve is what a user gets; a Ray task gets its one CPU's thread.

**Per-job overhead.** ``--jobs`` tasks that do no work (stage ``data`` of a plan, which a worker computes once
and then finds in its replica) go through ``submit`` and back, one at a time, with one worker (after a warm-up
task that starts it): the round trip of one job (pickling the plan and the task, the queue or Ray's scheduler,
the report back). The reference is calling the same task function in this process.

Goals (issue: scale and faults): 20 CPU-bound host stages ≥ 1.7× faster with two workers than one, on both
executors; overhead per job < 50 ms local, < 200 ms on Ray.

    python bench/bench_executors.py [--stages 20] [--epochs 6] [--workers 1,2] [--jobs 200] [--reps 3]
        [--threads-per-worker N] [--skip-ray]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's edgebench, installed or not

os.environ.setdefault("EDGEBENCH_PROGRESS", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def plan_text(stages: int, epochs: int) -> str:
    out = ['[plan]\nname = "bench-executors"\n\n[data]\ndataset = "digits"\n']
    for i in range(stages):
        out.append(f'[[models]]\nname = "m{i:02d}"\narch = "digits_cnn"\n'
                   f'train = {{ epochs = {epochs}, batch_size = 32, lr = {0.001 + 0.0001 * i:.4f} }}\n')
    return "\n".join(out)


def load(text: str, folder: Path):  # noqa: ANN201 - a Plan
    from edgebench.config import load_plan

    path = folder / "plan.toml"
    path.write_text(text)
    return load_plan(path)


def run_once(plan, executor, folder: Path) -> float:  # noqa: ANN001
    """Wall seconds of one run of ``plan`` on an empty cache."""
    from edgebench.runner.cache import Cache
    from edgebench.runner.pipeline import Pipeline

    cache = Cache(Path(tempfile.mkdtemp(dir=folder, prefix="cache-")))
    t0 = time.perf_counter()
    summary = Pipeline(plan, out_dir=Path(tempfile.mkdtemp(dir=folder, prefix="out-")), cache=cache,
                       executor=executor).run()
    dt = time.perf_counter() - t0
    if summary.failed:
        raise SystemExit(f"bench run failed: {summary.failed}")
    return dt


def scaling(args: argparse.Namespace, folder: Path) -> dict[tuple[str, int], list[float]]:
    """Wall seconds per (executor, workers), ``--reps`` times, interleaved (one run of each, then again), so
    that drift on a shared machine hits every configuration alike."""
    from edgebench.runner.executors import InlineExecutor
    from edgebench.runner.executors.local import LocalExecutor

    plan = load(plan_text(args.stages, args.epochs), folder)
    configs: list[tuple[str, int]] = [("in place (reference)", 0)] + [("local", n) for n in args.workers]
    if not args.skip_ray:
        configs += [("ray", n) for n in args.workers]
    times: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
    for rep in range(args.reps):
        for name, n in configs:
            if name == "ray":
                import ray

                from edgebench.runner.executors.ray import RayExecutor

                ray.init(num_cpus=n, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
                dt = run_once(plan, RayExecutor(workers=n), folder)
                ray.shutdown()
            elif name == "local":
                dt = run_once(plan, LocalExecutor(workers=n, threads=args.threads_per_worker), folder)
            else:
                dt = run_once(plan, InlineExecutor(), folder)
            times[(name, n)].append(dt)
            print(f"rep {rep + 1}: {name}, {n} worker(s): {dt:.1f} s", flush=True)
    return times


def overhead(args: argparse.Namespace, folder: Path) -> dict[str, float]:
    """Median seconds per job round trip, per executor, and the in-process reference."""
    from edgebench.runner.executors.base import HostTask, Needs
    from edgebench.runner.executors.local import LocalExecutor
    from edgebench.runner.worker import run_host_task

    plan = load(plan_text(1, 1), folder)
    task = HostTask(plan=plan, stage="data", cache_root=str(folder / "cache-overhead"))
    needs = Needs(memory_mb=0)

    def per_job(submit) -> float:  # noqa: ANN001
        submit().result()  # warm-up: starts the worker, loads the data set once
        times = []
        for _ in range(args.jobs):
            t0 = time.perf_counter()
            submit().result()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    out: dict[str, float] = {}
    times = []
    run_host_task(task)
    for _ in range(args.jobs):
        t0 = time.perf_counter()
        run_host_task(task)
        times.append(time.perf_counter() - t0)
    out["in this process (reference)"] = statistics.median(times)
    local = LocalExecutor(workers=1)
    out["local"] = per_job(lambda: local.submit(task, needs))
    local.shutdown()
    if not args.skip_ray:
        import ray

        from edgebench.runner.executors.ray import RayExecutor

        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
        rx = RayExecutor(workers=1)
        out["ray"] = per_job(lambda: rx.submit(task, needs))
        rx.shutdown()
        ray.shutdown()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stages", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads-per-worker", type=int, default=None,
                    help="torch threads per local worker (default: the executor's own, cores // workers)")
    ap.add_argument("--only", choices=("scaling", "overhead"))
    args = ap.parse_args()
    if not args.skip_ray:
        try:
            import ray  # noqa: F401
        except ImportError:
            print("Ray is not installed: the Ray rows are skipped (pip install 'edgebench[ray]')")
            args.skip_ray = True
    import logging

    logging.basicConfig(level=logging.WARNING)
    from edgebench.runner.executors.local import cores

    print(f"{cores()} cores; {args.stages} stages × {args.epochs} epochs; workers {args.workers}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.only != "overhead":
            times = scaling(args, folder)
            med = {c: statistics.median(ts) for c, ts in times.items()}
            ref = med[("in place (reference)", 0)]
            print(f"\n| executor | workers | wall s, median of {args.reps} (min-max) | speed-up vs 1 worker | "
                  "vs in place |\n|---|---|---|---|---|")
            for (name, n), dt in med.items():
                one = med.get((name, 1))
                ts = times[(name, n)]
                print(f"| {name} | {n} | {dt:.1f} ({min(ts):.1f}-{max(ts):.1f}) | "
                      f"{f'{one / dt:.2f}×' if one and n else '–'} | {ref / dt:.2f}× |")
        if args.only != "scaling":
            per = overhead(args, folder)
            ref = per["in this process (reference)"]
            print(f"\n| executor | per-job round trip, median ms ({args.jobs} jobs) | minus the reference | goal |\n"
                  "|---|---|---|---|")
            for name, s in per.items():
                goal = {"local": "< 50 ms", "ray": "< 200 ms"}.get(name, "")
                print(f"| {name} | {s * 1e3:.2f} | {(s - ref) * 1e3:.2f} | {goal} |")


if __name__ == "__main__":
    main()
