"""Query-based (black-box) attacks that need only a predict function. DEVICE SIDE and host: numpy only,
torch-free, so the same code attacks an artifact through a runtime session on the host and inside the agent on
the target (the bundle ships this folder).

One registry, :data:`QUERY_ATTACKS` (one file per attack). An attack is configured once with keyword-only
parameters (its query budget ``max_queries``, its ``seed``, the papers' defaults) and called through
:func:`run_query_attack` on a :data:`Predict` function:

- ``predict(x)``: ``x`` a float32 batch ``(B, *sample_shape)`` in [0, 1], NCHW as the plan's data; returns the
  model's scores ``(B, classes)`` (logits or probabilities: score-based attacks use them through a margin,
  decision-based ones only the top-1). The caller adapts a runtime session (static batch, layout, range) behind
  this function.
- every call to ``predict`` counts one query per sample passed (:class:`QueryCounter`); the budget is per
  sample and per ε.

The host registers a thin entry per attack in :data:`edgebench.attacks.ATTACKS` (so ``edgebench attacks`` lists
them and plans validate their parameters) that calls into this package.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgebench.registry import Registry, check_kwargs

#: ``(B, *sample_shape) float32 in [0, 1] -> (B, classes)`` scores (``typing.Callable``: a runtime alias that
#: Python 3.8 can subscript)
Predict = typing.Callable[[np.ndarray], np.ndarray]

QUERY_ATTACKS: Registry[Any] = Registry("query attack", modules=("edgebench.blackbox.*",))


@dataclass
class QueryResult:
    """What a query attack returns. Arrays have a leading ε axis ``K`` and a sample axis ``N``.

    ``x_adv[k, n]``: float32 in [0, 1], within ε of ``x[n]`` in the attack's ``norm``. ``pred[k, n]``: the predict
    function's top-1 on ``x_adv[k, n]``. ``success[k, n]``: misclassified (untargeted) or the target (targeted).
    ``queries[k, n]``: the queries spent on sample ``n`` at ε ``k``, at most ``max_queries`` (the clean query,
    made once per call, counts at every ε; a sample already misclassified costs that 1 query; a
    minimal-perturbation attack run once for every ε reports its one run's count at every ε, plus the
    re-query of the projection).
    """

    attack: str
    eps: tuple[float, ...]
    norm: str
    x_adv: np.ndarray
    pred: np.ndarray
    success: np.ndarray
    queries: np.ndarray
    max_queries: int


def run_query_attack(name: str, params: dict[str, Any], predict: Predict, x: np.ndarray, y: np.ndarray,
                     eps: Sequence[float], *, target: np.ndarray | None = None,
                     batch_size: int = 256) -> QueryResult:
    """Run query attack ``name`` (with ``params``, its constructor's keyword arguments) on ``predict`` for every
    ε of ``eps``; queries go to ``predict`` in batches of at most ``batch_size`` samples. ``target``: the target
    class per sample (targeted attack). An unknown name or parameter is a :class:`~edgebench.errors.ConfigError`,
    bad inputs an :class:`~edgebench.errors.AttackError`."""
    return create_query_attack(name, **params).perturb(predict, x, y, eps, target=target, batch_size=batch_size)


def create_query_attack(name: str, *, where: str = "", **params: Any) -> Any:
    """Instantiate query attack ``name``; an unknown parameter is an error naming the attack and the
    parameter."""
    cls = QUERY_ATTACKS.get(name, where=where)
    check_kwargs(cls.__init__, params, what=f"attack {name!r}", where=where)
    return cls(**params)


__all__ = ["QUERY_ATTACKS", "Predict", "QueryResult", "create_query_attack", "run_query_attack"]
