"""Host work on a GPU vs its floor, measured in the same run on the same device (issue 18, "Measured").

(a) PGD-L∞ (40 steps, Madry et al. 2018) through edgebench's public attack call vs a bare loop of the same
passes (random start, ``steps`` forward + ``torch.autograd.grad`` passes with the sign step and projection,
one forward on the last iterate, the 8-sample logits check, the result copied to the CPU), and vs
torchattacks' ``PGD`` (Kim 2020, "Torchattacks: A PyTorch Repository for Adversarial Attacks") at the same
ε, α and steps when it is importable. Goal: edgebench ≤ 1.05× the floor.
(b) Training throughput (images/s) of :func:`edgebench.models.train.train` vs a bare loop (the data uploaded
once, a permutation per epoch, forward, cross-entropy, backward, SGD step). Goal: ≤ 1.10× the floor's time.
(c) The full-size ``plans/liu2018-hashnet.toml`` wall time on one GPU, on an empty cache, through
``python -m edgebench.cli run ... --device cuda`` (only where ``run`` has ``--device``; else the JSON says so).

The default network is ``resnet50_cifar``: the full-width ResNet-50 for 32×32 inputs (23.5 M parameters,
1.30 G MACs per image), so that at batch 256 each pass is tens of milliseconds of GPU work and the ratio
reads edgebench's overhead against real compute rather than against kernel-launch latency (a ResNet-20 would
measure the launch queue). Timing: a warm-up call per case, then ``--reps`` interleaved repeats, each
ending in ``torch.cuda.synchronize``; medians, ratios against the floor of the same run.

    python bench/bench_gpu.py [--model resnet50_cifar] [--batch 256] [--steps 40] [--reps 5] [--out gpu.json]
    python bench/bench_gpu.py --cpu --quick --out /tmp/gpu.json    # exercise the script on the CPU, tiny
    python bench/bench_gpu.py --cpu --quick --plan-device cpu --plan PLAN   # ... and the plan part, on the CPU

Without CUDA (and without ``--cpu``) it prints one line and exits 0.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(Path(__file__).resolve().parent), str(ROOT)]
from _timing import interleaved, table  # noqa: E402

from edgebench.attacks import create_attack  # noqa: E402
from edgebench.attacks.base import frozen, project_linf  # noqa: E402
from edgebench.models import create_model  # noqa: E402
from edgebench.models.train import TrainConfig, train  # noqa: E402

EPS = 8 / 255
SHAPE = (3, 32, 32)


def _commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or os.environ.get("EDGEBENCH_COMMIT", "unknown")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("EDGEBENCH_COMMIT", "unknown")


def _device_info(dev: torch.device) -> dict:
    info = {"device": str(dev), "torch": torch.__version__, "cuda": torch.version.cuda}
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info.update(name=props.name, memory_gib=round(props.total_memory / 2**30, 1))
    else:
        info.update(name="cpu", threads=torch.get_num_threads())
    return info


def _synced(fn: Callable[[], object], dev: torch.device) -> Callable[[], None]:
    """``fn`` followed by a device synchronize, so that wall time covers the GPU work it queued."""
    def run() -> None:
        fn()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
    return run


def _summary(times: dict[str, list[float]], ref: str) -> dict:
    base = statistics.median(times[ref])
    return {name: {"median_s": statistics.median(ts), "min_s": min(ts), "max_s": max(ts),
                   "ratio": statistics.median(ts) / base} for name, ts in times.items()}


def bare_pgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float, steps: int,
             seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The floor: PGD-L∞ as a user writes it, the same passes as edgebench's call, all on ``x.device``."""
    gen = torch.Generator().manual_seed(seed)  # CPU draw moved over, as edgebench draws its start
    with frozen(model):
        with torch.no_grad():
            model(x[:8])  # edgebench's logits check, same size
        x_t = (x + (torch.rand(x.shape, generator=gen) * 2 - 1).to(x.device) * eps).clamp(0, 1)
        for _ in range(steps):
            x_t.requires_grad_(True)
            grad, = torch.autograd.grad(F.cross_entropy(model(x_t), y, reduction="sum"), x_t)
            x_t = project_linf(x_t.detach() + alpha * grad.sign(), x, eps)
        with torch.no_grad():
            pred = model(x_t).argmax(1)
    return x_t.cpu(), pred.cpu()


def bench_pgd(args: argparse.Namespace, dev: torch.device) -> dict:
    torch.manual_seed(0)
    model = create_model(args.model, input_shape=SHAPE, num_classes=10).to(dev).eval()
    x = torch.rand(args.batch, *SHAPE, device=dev)
    y = torch.randint(0, 10, (args.batch,), device=dev)
    alpha = 2.5 * EPS / args.steps  # edgebench's default step size, given to every case
    pgd = create_attack("pgd", steps=args.steps, abs_stepsize=alpha)
    cases: dict[str, Callable[[], object]] = {
        "floor": lambda: bare_pgd(model, x, y, EPS, alpha, args.steps, 0),
        "edgebench_pgd": lambda: pgd(model, x, y, eps=EPS),
    }
    out: dict = {"model": args.model, "batch": args.batch, "steps": args.steps, "eps": EPS, "alpha": alpha,
                 "passes_per_call": str(pgd(model, x, y, eps=EPS).passes)}
    try:
        import torchattacks

        ta = torchattacks.PGD(model, eps=EPS, alpha=alpha, steps=args.steps, random_start=True)
        cases["torchattacks_pgd"] = lambda: ta(x, y).cpu()
        out["torchattacks"] = torchattacks.__version__
    except ImportError:
        print("torchattacks is not installed: its PGD is skipped (pip install torchattacks)")
        out["torchattacks"] = None
    times = interleaved({k: _synced(fn, dev) for k, fn in cases.items()}, reps=args.reps)
    print(f"\n## PGD-{args.steps}, {args.model}, batch {args.batch}, {dev}\n")
    print(table(times, "floor"))
    out["cases"] = _summary(times, "floor")
    out["ratio"] = out["cases"]["edgebench_pgd"]["ratio"]
    out["goal"] = 1.05
    return out


def bare_train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, lr: float, seed: int) -> None:
    """The floor: one epoch of SGD (momentum 0.9) over data uploaded once, no per-step host sync."""
    dev = next(model.parameters()).device
    xd, yd = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    order = torch.randperm(len(xd), generator=torch.Generator().manual_seed(seed)).to(dev)
    model.train()
    for i in range(0, len(order), batch):
        idx = order[i:i + batch]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xd[idx]), yd[idx]).backward()
        opt.step()
    model.eval()


def bench_train(args: argparse.Namespace, dev: torch.device) -> dict:
    torch.manual_seed(0)
    base = create_model(args.model, input_shape=SHAPE, num_classes=10).to(dev)
    ours, floor = base, copy.deepcopy(base)
    n = args.batch * args.train_batches
    x = torch.rand(n, *SHAPE)
    y = torch.randint(0, 10, (n,))
    x_np, y_np = x.numpy(), y.numpy()
    cfg = TrainConfig(epochs=1, batch_size=args.batch, lr=0.01, optimizer="sgd")
    times = interleaved({
        "floor": _synced(lambda: bare_train(floor, x, y, args.batch, cfg.lr, cfg.seed), dev),
        "edgebench_train": _synced(lambda: train(ours, x_np, y_np, cfg), dev),
    }, reps=args.reps)
    print(f"\n## Training, {args.model}, {n} images per epoch, batch {args.batch}, SGD, {dev}\n")
    print(table(times, "floor"))
    cases = _summary(times, "floor")
    for c in cases.values():
        c["images_per_s"] = n / c["median_s"]
    print("images/s: " + ", ".join(f"{k} {v['images_per_s']:.0f}" for k, v in cases.items()))
    return {"model": args.model, "batch": args.batch, "images": n, "cases": cases,
            "ratio": cases["edgebench_train"]["ratio"], "goal": 1.10}


def bench_plan(args: argparse.Namespace) -> dict:
    """Wall time of the whole plan on an empty cache, through the CLI in a fresh process."""
    cli = [sys.executable, "-m", "edgebench.cli", "run"]
    helptext = subprocess.run([*cli, "--help"], capture_output=True, text=True, cwd=ROOT).stdout
    if "--device" not in helptext:
        msg = "skipped: `edgebench run` has no --device in this tree (it needs the [host] device change)"
        print(msg)
        return {"plan": args.plan, "skipped": msg}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "EDGEBENCH_CACHE": str(Path(tmp) / "cache")}
        cmd = [*cli, args.plan, "--device", args.plan_device, "--out", str(Path(tmp) / "reports")]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True,
                                  timeout=args.plan_timeout)
        except subprocess.TimeoutExpired:
            wall = time.perf_counter() - t0
            print(f"plan: not finished within {args.plan_timeout} s")
            return {"plan": args.plan, "command": " ".join(cmd), "timed_out_s": wall}
        wall = time.perf_counter() - t0
    print(f"plan {args.plan} on {args.plan_device} ({args.device_name}): {wall:.1f} s, exit {proc.returncode}")
    if proc.returncode:
        print(proc.stderr[-2000:])
    return {"plan": args.plan, "command": " ".join(cmd), "wall_s": wall, "returncode": proc.returncode,
            "stderr_tail": proc.stderr[-2000:]}


def _part(fn: Callable[[argparse.Namespace, torch.device], dict], args: argparse.Namespace,
          dev: torch.device) -> dict:
    """One part's results, or the one line of the error that stopped it (the other parts still run)."""
    try:
        return fn(args, dev)
    except Exception as exc:  # a part that cannot run on this tree/device is reported, not hidden
        line = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        print(f"{fn.__name__} failed: {line}")
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        return {"error": line}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="zoo name (default resnet50_cifar; digits_cnn with --quick)")
    ap.add_argument("--batch", type=int, default=None, help="default 256 (8 with --quick)")
    ap.add_argument("--steps", type=int, default=None, help="PGD steps, default 40 (2 with --quick)")
    ap.add_argument("--reps", type=int, default=None, help="timed repeats, default 5 (1 with --quick)")
    ap.add_argument("--train-batches", type=int, default=None, help="batches per training epoch (default 40)")
    ap.add_argument("--plan", default="plans/liu2018-hashnet.toml")
    ap.add_argument("--plan-timeout", type=float, default=1800.0, help="seconds before the plan run is stopped")
    ap.add_argument("--skip-plan", action="store_true")
    ap.add_argument("--plan-device", default=None,
                    help="the plan's --device (default cuda; with --cpu the plan runs only when this is given)")
    ap.add_argument("--cpu", action="store_true", help="run on the CPU (to exercise the script; no plan run)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a few seconds on a CPU)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    q = args.quick
    args.model = args.model or ("digits_cnn" if q else "resnet50_cifar")
    args.batch = args.batch or (8 if q else 256)
    args.steps = args.steps or (2 if q else 40)
    args.reps = args.reps or (1 if q else 5)
    args.train_batches = args.train_batches or (2 if q else 40)
    if not args.cpu and not torch.cuda.is_available():
        print(f"bench_gpu: no CUDA device (torch {torch.__version__}, CUDA {torch.version.cuda} sees none); "
              "nothing measured (--cpu --quick exercises the script on the CPU)")
        return 0
    dev = torch.device("cpu" if args.cpu else "cuda")
    info = _device_info(dev)
    args.device_name = info["name"]
    command = "python bench/bench_gpu.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"{command}\ncommit {_commit()}, {info}")
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    results = {"command": command, "commit": _commit(), "environment": info, "quick": q,
               "pgd": _part(bench_pgd, args, dev), "train": _part(bench_train, args, dev)}
    if args.skip_plan or (args.cpu and args.plan_device is None):
        results["plan"] = {"skipped": "--skip-plan" if args.skip_plan else "--cpu"}
    else:
        args.plan_device = args.plan_device or "cuda"
        results["plan"] = bench_plan(args)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
