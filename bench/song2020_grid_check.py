"""An independent check of Song et al. 2020's 3-bit collapse (seed 003, Table 1 and Fig. 1): the paper's grid
re-implemented here in a few lines of plain PyTorch, outside ``edgebench.compress.kbit``, applied to a trained
model's weights, and the clean accuracy measured on the 10,000 MNIST test images.

The grid is the plan's row ``q`` (``kbit``: ``grid = "nozero"``, ``granularity = "tensor"``, ``scale = "max"``):
per layer, 2^b mid-rise levels ``s·{±1/2, ±3/2, …}`` with the outermost on max|W|; biases kept. If these
accuracies match the pipeline's (``clean.csv`` of the run), the collapse is the grid's, not a bug of ours.

    EDGEBENCH_DATA=../shared/data python bench/song2020_grid_check.py MODEL.pt [MODEL.pt ...] --bits 1 2 3 4 5

``MODEL.pt`` is a cache entry of the run: ``model/<key>/model.pt`` (a state dict) or ``variant/<key>/twin.pt``
(a pickled module), both of the plan's ``song2020_mnist``.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from edgebench.data import load_dataset  # noqa: E402
from edgebench.models.zoo import song2020_mnist  # noqa: E402


def quantize_(model: torch.nn.Module, bits: int) -> None:
    """Every weight matrix of ``model`` onto the per-tensor, max-scaled, zero-free grid of ``bits`` bits."""
    half = 2 ** bits / 2 - 0.5                      # the outermost level, in steps
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight"):
                step = p.abs().max() / half
                p.copy_((torch.floor(p / step) + 0.5).clamp(-half, half) * step)


def load(path: str) -> torch.nn.Module:
    obj = torch.load(path, map_location="cpu", weights_only=False)
    state = obj if isinstance(obj, dict) else obj.state_dict()
    model = song2020_mnist(input_shape=(1, 28, 28), num_classes=10)
    model.load_state_dict(state)
    return model.eval()


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return float((pred == y).double().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--bits", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 8])
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("mnist")
    x, y = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    for path in args.models:
        trained = load(path)
        row = [f"fp32 {accuracy(trained, x, y):.4f}"]
        for bits in args.bits:
            model = copy.deepcopy(trained)
            quantize_(model, bits)
            row.append(f"{bits}-bit {accuracy(model, x, y):.4f}")
        print(path, "  ".join(row))


if __name__ == "__main__":
    main()
