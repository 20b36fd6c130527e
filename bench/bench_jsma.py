"""JSMA peak memory and time on ONE input: edgebench (softmax/logits × pairs/single) vs ART's SaliencyMapMethod.

Each case runs in a fresh subprocess (after importing torch and loading the model); its peak memory is the
peak RSS of the first call over the RSS just before it (Linux: the peak is reset with ``/proc/self/clear_refs``;
elsewhere the increase of ``ru_maxrss``). Time: the first call and the median of ``--reps`` more calls.

    python bench/bench_jsma.py [--gamma 0.1] [--train 10000] [--reps 3] [--threads 2] [--no-big]

Table 1: ``liu2018_mnist`` (784-C64-C128-F512-10, seed 000) on a 1×28×28 MNIST test digit, targeted at
``(label + 1) % 10`` with budget γ (the model is trained for one epoch on ``--train`` MNIST images when the
data is found under ``../shared/data``, else left untrained). Table 2: a tiny conv net on one 3×224×224 input,
10 features (where a full ``d × d`` pair matrix would need 84 GiB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CASE = r"""
import json, resource, statistics, sys, time
import numpy as np
import torch
from torch import nn

args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
torch.manual_seed(0)
if args["big"]:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                          nn.Linear(64, 10))
    x = torch.rand(1, 3, 224, 224)
else:
    from edgebench.models import create_model
    model = create_model("liu2018_mnist", input_shape=(1, 28, 28), num_classes=10)
    model.load_state_dict(torch.load(args["weights"]))
    x = torch.from_numpy(np.load(args["x"]))
model.eval()
with torch.no_grad():
    y = model(x).argmax(1)
target = (y + 1) % 10
gamma = args["gamma"]

if args["impl"] == "art":
    import logging
    logging.disable(logging.WARNING)
    from art.attacks.evasion import SaliencyMapMethod
    from art.estimators.classification import PyTorchClassifier
    clf = PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]),
                            nb_classes=10, clip_values=(0.0, 1.0), device_type="cpu")
    attack = SaliencyMapMethod(clf, theta=1.0, gamma=gamma, batch_size=1, verbose=False)

    def run():
        adv = torch.from_numpy(attack.generate(x.numpy(), y=target.numpy()))
        with torch.no_grad():
            pred = model(adv).argmax(1)
        return adv, pred
else:
    from edgebench.attacks.jsma import JSMA
    output, mode = args["impl"].split("-")
    attack = JSMA(theta=1.0, pairs=mode == "pairs", output=output)

    def run():
        res = attack(model, x, y, eps=gamma, target=target)
        return torch.from_numpy(res.x_adv[0]), torch.from_numpy(res.pred[0])

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))


scale = 1024 if sys.platform != "darwin" else 1
try:  # Linux: reset the peak RSS to the current RSS, so the peak of the call alone is seen
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before, how = status("VmRSS"), "hwm"
except OSError:  # elsewhere: the increase of the high-water mark since the process started
    before, how = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, "maxrss"
t0 = time.perf_counter()
adv, pred = run()
first = time.perf_counter() - t0
after = status("VmHWM") if how == "hwm" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
times = []
for _ in range(args["reps"]):
    t0 = time.perf_counter()
    run()
    times.append(time.perf_counter() - t0)
print(json.dumps({"peak_mb": (after - before) / 2**20, "first_s": first,
                  "median_s": statistics.median(times) if times else first,
                  "l0": int(((adv - x).abs() > 1e-6).sum()), "success": bool(pred[0] == target[0])}))
"""


CASES = (
    ("edgebench jsma softmax pairs (default)", "softmax-pairs"),
    ("edgebench jsma softmax single", "softmax-single"),
    ("edgebench jsma logits pairs", "logits-pairs"),
    ("edgebench jsma logits single", "logits-single"),
    ("ART SaliencyMapMethod", "art"),
)


def run_case(impl: str, *, big: bool, gamma: float, reps: int, threads: int, weights: str, x: str) -> dict:
    payload = json.dumps(
        {"impl": impl, "big": big, "gamma": gamma, "reps": reps, "threads": threads, "weights": weights, "x": x}
    )
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", CASE, payload], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"rc {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(rows: dict[str, dict]) -> str:
    out = ["| case | peak RSS increase MB | first call s | median s | l0 | success |", "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        if "error" in r:
            out.append(f"| {name} | error: {r['error']} | | | | |")
        else:
            out.append(
                f"| {name} | {r['peak_mb']:.1f} | {r['first_s']:.3f} | {r['median_s']:.3f} | {r['l0']} "
                f"| {r['success']} |"
            )
    return "\n".join(out)


def prepare(tmp: Path, n_train: int, threads: int) -> tuple[str, str, str]:
    """Weights of liu2018_mnist and one test digit; returns (weights path, input path, description)."""
    import numpy as np
    import torch

    from edgebench.data import load_dataset
    from edgebench.models import create_model
    from edgebench.models.train import TrainConfig, predict_logits, seeded, train

    torch.set_num_threads(threads)
    seeded(0)
    model = create_model("liu2018_mnist", input_shape=(1, 28, 28), num_classes=10)
    root = REPO.parent / "shared" / "data" / "mnist"
    desc = "untrained"
    x = None
    if n_train > 0 and root.is_dir():
        ds = load_dataset("mnist", root=str(root), download=False)
        train(model, ds.x_train[:n_train], ds.y_train[:n_train], TrainConfig(epochs=1, seed=0))
        acc = float(np.mean(predict_logits(model, ds.x_test[:1000]).argmax(1) == ds.y_test[:1000]))
        desc = f"trained 1 epoch on {n_train} MNIST images, test accuracy {acc:.3f} (first 1000)"
        ok = np.flatnonzero(predict_logits(model, ds.x_test[:50]).argmax(1) == ds.y_test[:50])
        x = ds.x_test[ok[0] : ok[0] + 1]
    if x is None:
        gen = np.random.default_rng(0)
        x = (gen.random((1, 1, 28, 28)) * (gen.random((1, 1, 28, 28)) > 0.8)).astype(np.float32)
    model.eval()
    weights, xpath = tmp / "liu2018.pt", tmp / "x.npy"
    torch.save(model.state_dict(), weights)
    np.save(xpath, x.astype(np.float32))
    return str(weights), str(xpath), desc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gamma", type=float, default=0.1, help="budget: fraction of the 784 features")
    ap.add_argument("--train", type=int, default=10000, help="MNIST images to train on (0: untrained)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-big", action="store_true", help="skip the 3x224x224 table")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        weights, x, desc = prepare(Path(tmp), args.train, args.threads)
        common = {"reps": args.reps, "threads": args.threads, "weights": weights, "x": x}
        rows = {name: run_case(impl, big=False, gamma=args.gamma, **common) for name, impl in CASES}
        print(
            f"\n## JSMA, liu2018_mnist ({desc}), one 1x28x28 input, gamma {args.gamma} "
            f"({int(args.gamma * 784)} features), targeted, theta 1, {args.threads} threads\n"
        )
        print(table(rows))
        if not args.no_big:
            gamma = 10 / (3 * 224 * 224)
            rows = {name: run_case(impl, big=True, gamma=gamma, **common) for name, impl in CASES}
            print(
                f"\n## JSMA, tiny conv net (untrained), one 3x224x224 input, 10 features, targeted, "
                f"{args.threads} threads\n"
            )
            print(table(rows))


if __name__ == "__main__":
    main()
