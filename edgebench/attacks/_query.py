"""The host side of the query-based attacks of :mod:`edgebench.blackbox`: a mixin that makes a numpy query attack
an :class:`~edgebench.attacks.base.Attack` too, so that it is registered in ``ATTACKS`` (``edgebench attacks``
lists it, plans validate its parameters against the numpy attack's own constructor) and runs either way:

- on a predict function (an ONNX Runtime or OpenVINO session of the exported artifact):
  :meth:`QueryBased.on_predict` returns the :class:`~edgebench.blackbox.QueryResult`;
- on a torch model like every other attack, ``atk(model, x, y, eps=[...])``: the predict function is the model's
  forward under ``no_grad`` (each call counts one forward pass) and the :class:`~.base.AttackResult` carries the
  per-sample ``queries``.

A host entry is one class: ``class Square(SquareAttack, QueryBased)`` (the numpy attack first, so that its
constructor, ``name`` and ``minimal`` are the entry's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from edgebench.attacks.base import Attack, Passes
from edgebench.blackbox import Predict, QueryResult, run_query_attack
from edgebench.models.placement import numpy_of, to_device, to_model

#: queries per predict call when the attack runs on a torch model
TORCH_BATCH = 256


class QueryBased(Attack):
    """Mixin of the host entries of the query attacks (see the module docstring)."""

    query_based: ClassVar[bool] = True
    needs_gradient: ClassVar[bool] = False

    def params(self) -> dict[str, Any]:  # the numpy attack's
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"

    def on_predict(self, predict: Predict, x: np.ndarray, y: np.ndarray, eps: Sequence[float], target:
                   np.ndarray | None = None, batch_size: int = 256) -> QueryResult:
        """Attack the model behind ``predict`` (float32 NCHW batches in [0, 1] -> scores) at every ε of
        ``eps``, sending at most ``batch_size`` samples per call."""
        return run_query_attack(self.name, self.params(), predict, x, y, eps, target=target, batch_size=batch_size)

    def run_all(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: tuple[float, ...],
                target: torch.Tensor | None, passes: Passes) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        device = x.device

        def predict(batch: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                out = model(to_model(model, batch))
            passes.forward += 1
            return numpy_of(out.float())

        res = self.on_predict(predict, numpy_of(x.float()), numpy_of(y), eps,
                              None if target is None else numpy_of(target), batch_size=TORCH_BATCH)
        passes.queries = res.queries
        return ([to_device(a, device, dtype=x.dtype) for a in res.x_adv], [to_device(p, device) for p in res.pred])

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
            target: torch.Tensor | None, passes: Passes) -> tuple[torch.Tensor, torch.Tensor]:
        xs, preds = self.run_all(model, x, y, eps=(eps,), target=target, passes=passes)
        return xs[0], preds[0]
