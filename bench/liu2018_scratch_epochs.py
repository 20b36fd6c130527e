"""How many epochs a HashNet trained from scratch needs to reach the base's accuracy (Liu et al. 2018, seed 000,
Fig. 3), for the ``epochs`` of the scratch arm in ``plans/liu2018-hashnet.toml``: test accuracy after every epoch
of ``Hashed(rate, init="scratch")`` on full MNIST, trained exactly as the plan's compress stage trains it (the
plan's base recipe: Adam, lr 1e-3, batch 128, seed 0; the zoo's ``liu2018_mnist`` with the training set's
normalization, as :func:`edgebench.runner.build.base_builder` makes it). One thread; one JSON line per epoch.

    EDGEBENCH_DATA=../shared/data PYTHONPATH=. python bench/liu2018_scratch_epochs.py 1/64 12
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch

from edgebench.compress.hashed import Hashed
from edgebench.data import load_dataset
from edgebench.models import create_model
from edgebench.models.train import TrainConfig, predict_logits, seeded, train
from edgebench.variants import VariantContext


def main(rate: str, epochs: int) -> None:
    torch.set_num_threads(1)
    ds = load_dataset("mnist")
    mean = tuple(float(v) for v in ds.x_train.mean(axis=(0, 2, 3)))
    std = tuple(max(float(v), 1e-3) for v in ds.x_train.std(axis=(0, 2, 3)))

    def build() -> torch.nn.Module:
        return create_model("liu2018_mnist", input_shape=ds.shape, num_classes=ds.num_classes, mean=mean, std=std)

    cfg = TrainConfig(seed=0, epochs=epochs, batch_size=128, lr=1e-3)
    seeded(0)
    base = build()
    ctx = VariantContext(x_train=ds.x_train, y_train=ds.y_train, input_shape=ds.shape, num_classes=ds.num_classes,
                         train=cfg, seed=0, build_base=build)
    seeded(0)
    twin = Hashed(rate=rate, init="scratch", epochs=0).apply(base, ctx).model  # the scratch start, untrained
    steps = -(-len(ds.x_train) // cfg.batch_size)
    calls, t0 = [0], time.time()
    ce = torch.nn.CrossEntropyLoss()

    def report(epoch: int) -> None:
        acc = float(np.mean(predict_logits(twin, ds.x_test).argmax(1) == ds.y_test))
        print(json.dumps({"rate": rate, "epoch": epoch, "test_acc": acc, "s": round(time.time() - t0)}), flush=True)

    def loss(logits: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        if calls[0] > 1 and (calls[0] - 1) % steps == 0:  # the first step of a new epoch: the last one ended
            with torch.no_grad():
                report((calls[0] - 1) // steps)
            twin.train()
        return ce(logits, yb)

    train(twin, ds.x_train, ds.y_train, cfg, loss=loss)
    report(epochs)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
