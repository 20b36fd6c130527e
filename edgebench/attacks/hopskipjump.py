"""HopSkipJumpAttack (Chen, Jordan & Wainwright, IEEE S&P 2020), decision-based, L2 or L∞, minimal-perturbation:
the host entry of :mod:`edgebench.blackbox.hopskipjump` (the algorithm, its defaults and its query accounting are
documented there).

Example::

    result = create_attack("hopskipjump", norm="l2", max_queries=5000)(model, x, y, eps=[0.5, 1.0, float("inf")])
    result.queries  # (K, N) queries per ε and sample
"""

from __future__ import annotations

from edgebench.attacks import ATTACKS
from edgebench.attacks._query import QueryBased
from edgebench.blackbox.hopskipjump import HopSkipJumpAttack


@ATTACKS.register("hopskipjump")
class HopSkipJump(HopSkipJumpAttack, QueryBased):
    """HopSkipJumpAttack, L2 or L∞, decision-based (query budget), minimal, untargeted or targeted.

    On a torch model or, through :meth:`on_predict`, on any predict function. Parameters: those of
    :class:`edgebench.blackbox.hopskipjump.HopSkipJumpAttack` (``norm``, ``max_queries``, ``max_iter``,
    ``init_evals``, ``max_evals``, ``init_size``, ``gamma``, ``seed``)."""
