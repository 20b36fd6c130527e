"""The attack base class: validation, model mode, multi-ε loop and per-sample results.

Subclasses implement :meth:`Attack.run` for one ε; :meth:`Attack.__call__` (final) checks the inputs,
freezes the model (eval mode, parameters without gradients, restored afterwards), runs every ε and
returns an :class:`AttackResult`.
"""

from __future__ import annotations

import abc
import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, final

import numpy as np
import torch
from torch import nn

from edgebench.errors import AttackError
from edgebench.registry import check_kwargs

log = logging.getLogger(__name__)


@dataclass
class Passes:
    """Forward and backward passes spent (each counts one batch)."""

    forward: int = 0
    backward: int = 0


@dataclass
class AttackResult:
    """What an attack call returns. Arrays have a leading ε axis ``K`` and a sample axis ``N``.

    ``success[k, n]``: the model misclassifies ``x_adv[k, n]`` (untargeted) or assigns it the target.
    ``pred[k, n]``: the attacked model's top-1 on ``x_adv[k, n]``. ``linf``, ``l2``: perturbation norms.
    """

    attack: str
    eps: tuple[float, ...]
    x_adv: np.ndarray
    success: np.ndarray
    pred: np.ndarray
    linf: np.ndarray
    l2: np.ndarray
    targeted: bool = False
    passes: Passes = field(default_factory=Passes)

    def success_rate(self) -> np.ndarray:
        return self.success.mean(axis=1)


def check_params(cls: type, params: dict[str, Any], *, where: str) -> None:
    """Raise :class:`ConfigError` for parameters the attack's constructor does not take."""
    check_kwargs(cls.__init__, params, what=f"attack {cls.name!r}", where=where)


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no parameter gradients while attacking; the previous state is restored after."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


class Attack(abc.ABC):
    """Base of every attack. Subclasses set ``name`` and ``norm`` and implement :meth:`run`."""

    name: ClassVar[str] = "?"
    norm: ClassVar[str] = "linf"
    targeted_ok: ClassVar[bool] = True

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in sorted(vars(self).items()) if not k.startswith("_"))
        return f"{type(self).__name__}({params})"

    @abc.abstractmethod
    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
            target: torch.Tensor | None, passes: Passes) -> tuple[torch.Tensor, torch.Tensor]:
        """Craft adversarial inputs for one ``eps``; return ``(x_adv, pred)`` with ``pred`` the model's
        top-1 on ``x_adv``. ``target`` is given for targeted attacks. Count passes in ``passes``."""

    @final
    def __call__(self, model: nn.Module, x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, *,
                 eps: float | Sequence[float], target: torch.Tensor | np.ndarray | None = None) -> AttackResult:
        x = torch.as_tensor(np.asarray(x) if isinstance(x, np.ndarray) else x, dtype=torch.float32)
        y = torch.as_tensor(np.asarray(y) if isinstance(y, np.ndarray) else y, dtype=torch.int64)
        eps_list = (float(eps),) if isinstance(eps, (int, float)) else tuple(float(e) for e in eps)
        self._validate(x, y, eps_list, target)
        tgt = None if target is None else torch.as_tensor(np.asarray(target), dtype=torch.int64)
        passes = Passes()
        xs, preds = [], []
        with frozen(model):
            self._check_logits(model, x[:8])
            for e in eps_list:
                if e == 0.0:
                    with torch.no_grad():
                        pred = model(x).argmax(1)
                    passes.forward += 1
                    x_adv = x.clone()
                else:
                    x_adv, pred = self.run(model, x, y, eps=e, target=tgt, passes=passes)
                xs.append(x_adv.detach())
                preds.append(pred.detach())
        x_adv_all = torch.stack(xs)
        pred_all = torch.stack(preds)
        success = (pred_all == tgt) if tgt is not None else (pred_all != y)
        delta = (x_adv_all - x.unsqueeze(0)).flatten(2)
        return AttackResult(
            attack=repr(self), eps=eps_list, x_adv=x_adv_all.numpy(), success=success.numpy(),
            pred=pred_all.numpy(), linf=delta.abs().amax(2).numpy(), l2=delta.norm(dim=2).numpy(),
            targeted=tgt is not None, passes=passes,
        )

    def _validate(self, x: torch.Tensor, y: torch.Tensor, eps: tuple[float, ...], target: Any) -> None:
        where = f"attack {self.name!r}"
        if any(not np.isfinite(e) or e < 0 for e in eps):
            raise AttackError(f"{where}: eps must be finite and >= 0, got {list(eps)}")
        if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
            raise AttackError(f"{where}: inputs must lie in [0, 1] (got min {float(x.min()):.4g}, "
                              f"max {float(x.max()):.4g}); scale the data, the model normalizes inside")
        if not torch.isfinite(x).all():
            raise AttackError(f"{where}: inputs hold NaN or inf")
        if y.ndim != 1 or len(y) != len(x):
            raise AttackError(f"{where}: labels must have shape ({len(x)},), got {tuple(y.shape)}")
        if target is not None and not self.targeted_ok:
            raise AttackError(f"{where}: this attack has no targeted mode")

    def _check_logits(self, model: nn.Module, x: torch.Tensor) -> None:
        """Warn when the model looks like it returns probabilities: attacks need logits."""
        if not len(x):
            return
        with torch.no_grad():
            out = model(x)
        if out.ndim == 2 and out.shape[1] > 1 and bool((out >= 0).all()) and bool(
                torch.allclose(out.sum(1), torch.ones(len(out)), atol=1e-3)):
            warnings.warn(f"attack {self.name!r}: the model's outputs are non-negative and sum to 1 — it seems "
                          "to return probabilities; attacks need logits (drop the final softmax)", stacklevel=3)
