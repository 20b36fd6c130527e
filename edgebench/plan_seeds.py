"""``[plan] seed`` / ``seeds`` and ``[quick] seeds``: the training seeds of a plan (issue 20;
:mod:`edgebench.runner.seeds` runs one copy of the stage graph per seed), checked with one line naming the key."""

from __future__ import annotations

from typing import Any

from edgebench.toml_table import Table

__all__ = ["plan_seeds", "seeds_error"]


def plan_seeds(head: Table) -> tuple[int, tuple[int, ...]]:
    """``[plan] seed = N`` or ``seeds = [N, ...]`` (training seeds; :mod:`edgebench.runner.seeds`): the first seed,
    and all of them where there are several (``()`` for one, so a one-seed plan resolves as before ``seeds``)."""
    if "seeds" not in head.raw:
        return head.number("seed", 0, lo=0, integer=True), ()
    if "seed" in head.raw:
        raise head.fail("seeds", "give either seed or seeds, not both (seed = N is seeds = [N])")
    raw = head.get("seeds", list)
    if (why := seeds_error(raw)) is not None:
        raise head.fail("seeds", why)
    return raw[0], tuple(raw) if len(raw) > 1 else ()


def seeds_error(raw: list[Any]) -> str | None:
    """Why ``raw`` is not a list of training seeds (None: it is one)."""
    if not raw or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in raw) or len(set(raw)) < len(raw):
        return f"must be a non-empty list of distinct non-negative integers, got {raw!r}"
    return None
