"""When a victim's input gradients look masked: the threshold and the test on a
:func:`edgebench.attacks.checks.gradient_health` record. Torch-free, so scoring, the report and made-up runs can
apply the rule without the attack code."""

from __future__ import annotations

from typing import Any

# share of samples with a zero or non-finite input gradient above which a victim is flagged
MASKING_SHARE = 0.05


def masked(health: dict[str, Any], share: float = MASKING_SHARE) -> bool:
    """Whether ``health`` (from :func:`edgebench.attacks.checks.gradient_health`) should be flagged as possible
    gradient masking."""
    return health["zero_share"] + health["nonfinite_share"] > share
