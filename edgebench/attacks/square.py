"""Square Attack (Andriushchenko, Croce, Flammarion & Hein, ECCV 2020), score-based, L∞ or L2: the host entry of
:mod:`edgebench.blackbox.square` (the algorithm, its defaults and its query accounting are documented there).

Example::

    result = create_attack("square", norm="linf", max_queries=1000, seed=0)(model, x, y, eps=[0.05, 0.1])
    result.queries  # (K, N) queries per ε and sample
"""

from __future__ import annotations

from edgebench.attacks import ATTACKS
from edgebench.attacks._query import QueryBased
from edgebench.blackbox.square import SquareAttack


@ATTACKS.register("square")
class Square(SquareAttack, QueryBased):
    """Square Attack, L∞ or L2, score-based (query budget), untargeted or targeted.

    On a torch model or, through :meth:`on_predict`, on any predict function. Parameters: those of
    :class:`edgebench.blackbox.square.SquareAttack` (``norm``, ``max_queries``, ``p_init``, ``loss``, ``seed``)."""
