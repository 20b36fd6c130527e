"""CW-L2: edgebench's batched torch implementation vs ART's ``CarliniL2Method`` at equal settings (steps =
ART's ``max_iter``, binary-search steps, learning rate, initial constant, confidence 0; edgebench without
abort-early, as ART has none, and with its default warm start across binary-search steps), on
``liu2018_mnist`` trained for one epoch on 2000 MNIST training images, attacking the first ``--batch`` test
images. Prints the interleaved timing table, the passes of one call and the success rate and mean L2 (of the
successful samples) of both.

Note that the two optimize differently: edgebench uses Adam (the paper's), ART a line search on plain gradient
steps, and ART doubles the constant where edgebench multiplies it by 10 (the authors' code), so the same
learning rate is not the same step; the comparison is at equal iteration and binary-search budgets.

MNIST is read from ``$EDGEBENCH_DATA/mnist`` (default ``../shared/data/mnist`` next to the repository); the
benchmark says so and exits when the files are absent (it never downloads).

    python bench/bench_cw.py [--batch 256] [--steps 10] [--bss 3] [--lr 0.1] [--const 1.0] [--reps 2]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved, table  # noqa: E402

from edgebench.attacks import create_attack  # noqa: E402
from edgebench.attacks.art_adapter import _Counting  # noqa: E402
from edgebench.attacks.base import Passes, frozen  # noqa: E402
from edgebench.errors import DataError  # noqa: E402
from edgebench.models import create_model  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def _mnist():
    from edgebench.data import load_dataset

    root = Path(os.environ.get("EDGEBENCH_DATA", str(REPO.parent / "shared" / "data"))) / "mnist"
    try:
        return load_dataset("mnist", root=str(root), download=False)
    except DataError as exc:
        print(
            f"bench_cw: skipped, MNIST is not available in {root} ({exc}); set EDGEBENCH_DATA to a folder "
            "with mnist/*-ubyte.gz"
        )
        return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--bss", type=int, default=3, help="binary-search steps (both)")
    ap.add_argument("--lr", type=float, default=0.1, help="learning rate (both)")
    ap.add_argument("--const", type=float, default=1.0, help="initial constant c (both)")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train", type=int, default=2000, help="MNIST training images for the 1-epoch training")
    args = ap.parse_args()
    try:
        from art.attacks.evasion import CarliniL2Method
        from art.estimators.classification import PyTorchClassifier
    except ImportError:
        print("bench_cw: skipped, needs the Adversarial Robustness Toolbox: pip install 'edgebench[art]'")
        return
    ds = _mnist()
    if ds is None:
        return
    torch.set_num_threads(args.threads)
    from edgebench.models.train import TrainConfig, seeded, train

    seeded(0)
    model = create_model("liu2018_mnist", input_shape=(1, 28, 28), num_classes=10)
    train(model, ds.x_train[: args.train], ds.y_train[: args.train], TrainConfig(epochs=1, seed=0))
    model.eval()
    x_np, y_np = ds.x_test[: args.batch], ds.y_test[: args.batch]
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    with torch.no_grad():
        clean_acc = float((model(x).argmax(1) == y).float().mean())

    cw = create_attack(
        "cw", steps=args.steps, binary_search_steps=args.bss, lr=args.lr, initial_const=args.const, abort_early=False
    )
    art_passes = Passes()
    classifier = PyTorchClassifier(
        model=_Counting(model, art_passes),
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, 28, 28),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    art_cw = CarliniL2Method(
        classifier,
        max_iter=args.steps,
        binary_search_steps=args.bss,
        learning_rate=args.lr,
        initial_const=args.const,
        batch_size=args.batch,
        verbose=False,
    )
    onehot = np.eye(10, dtype=np.float32)[y_np]
    last: dict[str, np.ndarray] = {}
    ours_passes: list[Passes] = []

    def run_edgebench() -> None:
        res = cw(model, x, y, eps=float("inf"))
        last["edgebench_cw"], ours_passes[:] = res.x_adv[0], [res.passes]

    def run_art() -> None:
        with frozen(model):  # the same model state as edgebench's attacks use
            last["art_cw"] = art_cw.generate(x=x_np, y=onehot)

    print(
        f"model liu2018_mnist, 1 epoch on {args.train} MNIST images, clean accuracy {clean_acc:.3f} on the "
        f"{args.batch} attacked test images"
    )
    times = interleaved({"art_cw": run_art, "edgebench_cw": run_edgebench}, reps=args.reps)
    calls = args.reps + 1  # + the warm-up; ART's CW is deterministic, so every call costs the same
    art_one = Passes(art_passes.forward // calls, art_passes.backward // calls)
    print(f"passes of one call (batch passes): edgebench {ours_passes[0]}, ART {art_one}")
    print(
        f"\n## CW-L2, {args.steps} steps x {args.bss} binary-search steps, lr {args.lr}, c0 {args.const}, "
        f"liu2018_mnist, batch {args.batch}, {args.threads} threads\n"
    )
    print(table(times, "art_cw"))
    print()
    fooled = {}
    for name, xa in last.items():
        with torch.no_grad():
            pred = model(torch.from_numpy(xa)).argmax(1).numpy()
        ok = pred != y_np
        l2 = np.linalg.norm((xa - x_np).reshape(len(x_np), -1), axis=1)
        mean_l2 = float(l2[ok].mean()) if ok.any() else 0.0
        newly = ok & (l2 > 0)
        fooled[name] = (newly, l2)
        print(
            f"{name}: success {ok.mean():.3f} (clean error {1 - clean_acc:.3f}), mean L2 of successes {mean_l2:.4f}, "
            f"of new successes {float(l2[newly].mean()) if newly.any() else 0.0:.4f}"
        )

    (a, l2_a), (b, l2_b) = fooled.values()
    both = a & b
    names = " / ".join(fooled)
    print(
        f"on the {int(both.sum())} images both newly fool: mean L2 {names} "
        f"{float(l2_a[both].mean()) if both.any() else 0.0:.4f} / {float(l2_b[both].mean()) if both.any() else 0.0:.4f}"
    )


if __name__ == "__main__":
    main()
