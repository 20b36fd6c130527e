"""PGD and FGSM cost vs the floor: a bare loop of forward + ``torch.autograd.grad`` passes with the same
forward/backward counts, on the same model, batch and thread count.

    python bench/bench_pgd.py [--model digits_cnn|liu2018_mnist] [--batch 256] [--steps 40] [--reps 7]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved, table  # noqa: E402

from edgebench.attacks import create_attack  # noqa: E402
from edgebench.attacks.base import frozen  # noqa: E402
from edgebench.models import create_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="liu2018_mnist")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    shape = (1, 8, 8) if args.model == "digits_cnn" else (1, 28, 28)
    torch.manual_seed(0)
    model = create_model(args.model, input_shape=shape, num_classes=10).eval()
    x = torch.rand(args.batch, *shape)
    y = torch.randint(0, 10, (args.batch,))
    pgd = create_attack("pgd", steps=args.steps)
    fgsm = create_attack("fgsm")

    def floor(n_fwdbwd: int, n_fwd: int) -> None:
        with frozen(model):
            with torch.no_grad():
                model(x[:8])  # the attack's logits check, same size
            for _ in range(n_fwdbwd):
                xx = x.detach().requires_grad_(True)
                torch.autograd.grad(F.cross_entropy(model(xx), y, reduction="sum"), xx)
            with torch.no_grad():
                for _ in range(n_fwd):
                    model(x)

    # pass counts of one call: PGD = steps fwd+bwd + 1 fwd (last iterate); FGSM = 1 fwd+bwd + 1 fwd
    # (prediction on x_adv); both also run the 8-sample logits check, which the floor runs too
    res = pgd(model, x, y, eps=0.3)
    print(f"PGD passes per call: {res.passes}; FGSM: {fgsm(model, x, y, eps=0.3).passes}")
    t_pgd = interleaved({"floor": lambda: floor(args.steps, 1), "edgebench_pgd": lambda: pgd(model, x, y, eps=0.3)},
                        reps=args.reps)
    print(f"\n## PGD-{args.steps}, {args.model}, batch {args.batch}, {args.threads} threads\n")
    print(table(t_pgd, "floor"))
    t_fgsm = interleaved({"floor": lambda: floor(1, 1), "edgebench_fgsm": lambda: fgsm(model, x, y, eps=0.3)},
                         reps=args.reps * 5)
    print(f"\n## FGSM, {args.model}, batch {args.batch}, {args.threads} threads\n")
    print(table(t_fgsm, "floor"))


if __name__ == "__main__":
    main()
