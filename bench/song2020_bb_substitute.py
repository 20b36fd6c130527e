"""Seed 003 (Song et al. 2020), Table 2: how much do black-box FGSM examples hurt Orig. when the substitute is the one
CleverHans 2.1 ships for black-box attacks, rather than this plan's LeNet-5 trained on all 60,000 labelled images?

The seed ran "most tests and attacks" in CleverHans 2.1 and names no substitute; CleverHans 2.1's black-box attack
(``cleverhans_tutorials/mnist_blackbox.py``) is Papernot et al. 2017's ("Practical Black-Box Attacks against Machine
Learning"): the adversary holds out the first 150 test images with their labels, trains a 784-200-200-10 MLP on
them (Adam 1e-3, batch 128, 10 epochs), and 5 times doubles its set by Jacobian-based augmentation
(``x + λ_ρ·sign(∂z_y/∂x)`` for each point's label, λ_ρ = -0.1 for the first 3 augmentations and +0.1 after, no
clipping), labelling the new half by the oracle's top-1 and training 10 more epochs each round (6 training rounds,
4,800 points, 4,650 oracle queries). FGSM is then crafted on the substitute against its own prediction
(CleverHans's default without ``y``). The substitute and its training are :mod:`edgebench.models.substitute`'s
(what a plan's ``substitute`` table runs), queried here through the torch Orig. instead of its ONNX file.

Both substitutes attack the same Orig. on the same 1,000 test images (150-1149, outside the holdout):

* ``jbda``: the above, under ``torch.manual_seed(SEED)``;
* ``full``: this plan's substitute, ``lenet5`` trained as ``[[models]] substitute`` (Adam 1e-3, batch 128, 6 epochs,
  all 60,000 training images with their labels).

Orig. is ``--oracle PATH`` (a ``song2020_mnist`` state dict, e.g. a run's cached ``model/<key>/model.pt``) or, without
it, trained here as the plan trains it (6 epochs, Adam 1e-3, batch 128, seed 0). Prints one JSON line: the
substitutes' and Orig.'s clean accuracy on the 1,000 and Orig.'s accuracy on each substitute's FGSM examples at
ε = 0.1, 0.2, 0.3. One thread, about two minutes with ``--oracle``.

    EDGEBENCH_DATA=../shared/data PYTHONPATH=. python bench/song2020_bb_substitute.py [--oracle PATH] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn

from edgebench.attacks import create_attack
from edgebench.data import load_dataset
from edgebench.models import create_model
from edgebench.models.substitute import KEYS, mlp, train_substitute
from edgebench.models.train import TrainConfig, predict_logits, seeded, train

EPS = (0.1, 0.2, 0.3)
HOLDOUT, SUB_EPOCHS = 150, 10  # CleverHans 2.1's mnist_blackbox defaults (the rest: edgebench.models.substitute.KEYS)


def jbda_substitute(oracle: nn.Module, x_hold: np.ndarray, y_hold: np.ndarray, seed: int) -> nn.Module:
    seeded(seed)
    sub = mlp(inputs=784, hidden=[200, 200], classes=10)
    train_substitute(sub, lambda x: predict_logits(oracle, x), x_hold, y_hold,
                     TrainConfig(epochs=SUB_EPOCHS, batch_size=128, lr=1e-3, seed=seed),
                     rounds=KEYS["rounds"], lmbda=KEYS["lmbda"], tau=KEYS["tau"])
    return sub.eval()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--oracle", help="a song2020_mnist state dict (default: train Orig. here as the plan does)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    ds = load_dataset("mnist")
    mean = tuple(float(v) for v in ds.x_train.mean(axis=(0, 2, 3)))
    std = tuple(max(float(v), 1e-3) for v in ds.x_train.std(axis=(0, 2, 3)))
    cfg = TrainConfig(epochs=6, batch_size=128, lr=1e-3, seed=args.seed)  # the plan's Orig. and substitute
    seeded(args.seed)
    oracle = create_model("song2020_mnist", input_shape=ds.shape, num_classes=10, mean=mean, std=std)
    if args.oracle:
        oracle.load_state_dict(torch.load(args.oracle, map_location="cpu"))
    else:
        train(oracle, ds.x_train, ds.y_train, cfg)
    oracle.eval()
    seeded(args.seed)
    full = create_model("lenet5", input_shape=ds.shape, num_classes=10, mean=mean, std=std)
    train(full, ds.x_train, ds.y_train, cfg)
    full.eval()
    jbda = jbda_substitute(oracle, ds.x_test[:HOLDOUT], ds.y_test[:HOLDOUT], args.seed)
    x, y = ds.x_test[HOLDOUT:HOLDOUT + 1000], ds.y_test[HOLDOUT:HOLDOUT + 1000]

    def acc(model: nn.Module, xs: np.ndarray) -> float:
        return round(float(np.mean(predict_logits(model, xs).argmax(1) == y)), 4)

    out: dict = {"oracle": args.oracle or "trained here", "seed": args.seed, "orig_clean": acc(oracle, x)}
    fgsm = create_attack("fgsm")
    for name, sub in (("jbda", jbda), ("full", full)):
        own = predict_logits(sub, x).argmax(1)  # crafted against the substitute's prediction, as CleverHans does
        res = fgsm(sub, x, own, eps=list(EPS))
        out[f"{name}_clean"] = acc(sub, x)
        out[f"orig_under_{name}_fgsm"] = {f"{e:g}": acc(oracle, res.x_adv[k]) for k, e in enumerate(EPS)}
    out["seconds"] = round(time.perf_counter() - t0)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
