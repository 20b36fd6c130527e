"""The training loop: seeded, deterministic on CPU, with a progress bar on a terminal. It runs on the device of
the model it is given (:mod:`edgebench.models.placement`): the shuffling order is drawn on the CPU, and each batch
moves to the model's device as it is used."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from edgebench.errors import ConfigError
from edgebench.models.placement import numpy_of, to_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`train`. ``optimizer`` is ``adam`` or ``sgd`` (momentum 0.9)."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError(f"train: epochs >= 0, batch_size >= 1, lr > 0, weight_decay >= 0 (got {self})")
        if self.optimizer not in ("adam", "sgd"):
            raise ConfigError(f"train: optimizer {self.optimizer!r} is not one of 'adam', 'sgd'")


def _progress(iterable: range, desc: str) -> object:
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, disable=not sys.stderr.isatty(), leave=False)


Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, cfg: TrainConfig, *, desc: str = "train",
          loss: Loss | None = None, after_step: Callable[[], None] | None = None,
          params: list[nn.Parameter] | None = None) -> list[dict]:
    """Train ``model`` in place on ``(x, y)``; return per-epoch loss and accuracy.

    ``loss(logits, xb, yb)`` replaces cross-entropy (distillation, adversarial mixing); ``after_step`` runs
    after every optimizer step (compression methods use it to re-impose their constraints: INQ's frozen
    powers of two, DNS masks); ``params`` restricts the optimizer to some parameters.

    Determinism: the shuffling order comes from a CPU generator seeded with ``cfg.seed`` (the same order on any
    device) and the weights were initialized under the same seed by the caller (:func:`seeded`). The data stays
    on the host; each batch moves to the model's device (:func:`~edgebench.models.placement.to_model`).
    """
    x = np.asarray(x)
    y = np.asarray(y)
    gen = torch.Generator().manual_seed(cfg.seed)
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    if cfg.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    ce = nn.CrossEntropyLoss()
    loss_fn: Loss = loss or (lambda logits, _xb, yb: ce(logits, yb))
    history = []
    model.train()
    for epoch in _progress(range(cfg.epochs), desc):  # type: ignore[attr-defined]
        order = torch.randperm(len(x), generator=gen).numpy()
        total, losses, hits = 0, [], []  # kept on the device: no host sync per step
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            xb, yb = to_model(model, x[idx], y[idx])
            opt.zero_grad(set_to_none=True)
            logits = model(xb)
            value = loss_fn(logits, xb, yb)
            value.backward()
            opt.step()
            if after_step is not None:
                after_step()
            losses.append(value.detach())
            hits.append((logits.detach().argmax(1) == yb).sum())
            total += len(idx)
        sizes = [len(order[i:i + cfg.batch_size]) for i in range(0, len(order), cfg.batch_size)]
        loss_sum = sum(v * n for v, n in zip(torch.stack(losses).tolist(), sizes)) if losses else 0.0
        correct = int(torch.stack(hits).sum()) if hits else 0
        history.append({"epoch": epoch + 1, "loss": loss_sum / max(total, 1), "train_acc": correct / max(total, 1)})
        log.debug("%s epoch %d: %s", desc, epoch + 1, history[-1])
    model.eval()
    return history


def seeded(seed: int) -> None:
    """Seed torch's global generator (weight initialization) before building a model."""
    torch.manual_seed(seed)


@torch.no_grad()
def predict_logits(model: nn.Module, x: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
    """Logits of ``model`` on ``x`` in eval mode, computed on the model's device in batches, as float32 numpy."""
    model.eval()
    out = [numpy_of(model(to_model(model, x[i:i + batch_size])).float()) for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
