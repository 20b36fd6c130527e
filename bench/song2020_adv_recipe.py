"""Issue 20 / seed 003 (Song et al. 2020), "Adv.": does Madry et al.'s PGD training from scratch with an ε ramp
reach non-trivial PGD accuracy at a small size where the earlier recipe (fine-tuning Orig. at lr 1e-4) gives 0 %?

On the plan's quick data (6,000 MNIST training images, class-stratified, seed 0; 1,000 test images), Orig.
(``song2020_mnist``) is trained 2 epochs (Adam 1e-3, batch 128) as at the plan's quick size, then one arm of
``adversarial_training`` (``mode = "pgd"``, ε = 0.3, 10 steps of 2.5ε/10) is applied:

* ``finetune EPOCHS``: Orig. fine-tuned at lr 1e-4 (the plan's earlier Adv.);
* ``scratch-ramp EPOCHS [RAMP]``: from a fresh ``song2020_mnist`` (``ctx.build_base``) at lr 1e-3, ε growing
  linearly over the first ``RAMP`` epochs (default 2).

Prints one JSON line: clean accuracy on the 1,000 test images and PGD-40 accuracy at ε = 0.3 on the first 200.
MNIST comes from ``$EDGEBENCH_DATA/mnist``. Results and the command are in docs/reproductions.md.

``time-step``: the seconds of one training step of the plan's Adv. (40 PGD steps of 0.01 on a batch of 128
random inputs, then the update; 1 thread), three times: the plan's full-size cost is 469 such steps per epoch.

    EDGEBENCH_DATA=../shared/data nice -n 19 python bench/song2020_adv_recipe.py scratch-ramp 4 2
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edgebench.attacks import create_attack  # noqa: E402
from edgebench.data import load_dataset  # noqa: E402
from edgebench.defenses import DEFENSES  # noqa: E402
from edgebench.models import create_model  # noqa: E402
from edgebench.models.train import TrainConfig, predict_logits, seeded, train  # noqa: E402
from edgebench.variants import VariantContext  # noqa: E402


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    if argv[:1] == ["time-step"]:
        time_step()
        return
    if len(argv) < 2 or argv[0] not in ("finetune", "scratch-ramp"):
        sys.exit("usage: song2020_adv_recipe.py finetune|scratch-ramp EPOCHS [RAMP] | time-step")
    arm, epochs = argv[0], int(argv[1])
    ds = load_dataset("mnist").subset(n_train=6000, n_test=1000, seed=0)
    mean = tuple(float(v) for v in ds.x_train.mean(axis=(0, 2, 3)))
    std = tuple(max(float(v), 1e-3) for v in ds.x_train.std(axis=(0, 2, 3)))

    def build() -> torch.nn.Module:
        return create_model("song2020_mnist", input_shape=ds.shape, num_classes=10, mean=mean, std=std)

    cfg = TrainConfig(epochs=2, batch_size=128, lr=1e-3, seed=0)  # the plan's Orig. at quick size
    seeded(0)
    orig = build()
    train(orig, ds.x_train, ds.y_train, cfg)
    orig.eval()
    ctx = VariantContext(ds.x_train, ds.y_train, ds.shape, 10, cfg, seed=0, where="song2020_adv_recipe",
                         build_base=build)
    method = DEFENSES.get("adversarial_training")
    if arm == "finetune":
        defense = method(mode="pgd", eps=0.3, steps=10, epochs=epochs, lr=1e-4)
    else:
        defense = method(mode="pgd", eps=0.3, steps=10, epochs=epochs, from_scratch=True,
                         eps_ramp_epochs=int(argv[2]) if len(argv) > 2 else 2)
    t0 = time.time()
    variant = defense.apply(orig, ctx)
    seconds = time.time() - t0
    model = variant.model.eval()
    clean = float(np.mean(predict_logits(model, ds.x_test).argmax(1) == ds.y_test))
    pgd = create_attack("pgd", steps=40)(model, ds.x_test[:200], ds.y_test[:200], eps=[0.3])
    print(json.dumps({"arm": arm, "epochs": epochs, "train_s": round(seconds), "clean_1000": clean,
                      "pgd40_eps0.3_acc_200": float(1 - pgd.success.mean()), "history": variant.history}))


def time_step() -> None:
    from edgebench.defenses.adversarial_training import pgd_examples

    model = create_model("song2020_mnist", input_shape=(1, 28, 28), num_classes=10)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(128, 1, 28, 28, generator=gen), torch.randint(0, 10, (128,), generator=gen)
    seconds = []
    for _ in range(3):
        t0 = time.perf_counter()
        model.eval()
        x_adv = pgd_examples(model, x, y, eps=0.3, steps=40, alpha=0.01, random_start=True, generator=gen)
        model.train()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x_adv), y).backward()
        opt.step()
        seconds.append(round(time.perf_counter() - t0, 2))
    print(json.dumps({"seconds_per_step_of_128": seconds}))


if __name__ == "__main__":
    main(sys.argv[1:])
