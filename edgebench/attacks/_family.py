"""A family of models that one gradient attack targets at once: expectation over transformation (EOT; Athalye,
Engstrom, Ilyas & Kwok, "Synthesizing Robust Adversarial Examples", ICML 2018, eq. 1) where the transformation
is the choice of compressed variant. The attack ascends the family objective

    J_F(x) = (1 / K) · Σ_k J(f_k(x), y)

whose input gradient is the mean of the members' gradients (linearity of the gradient). The gradient machinery
(:func:`edgebench.attacks._gradient.objective_gradient`) evaluates the members **one at a time**: the forward and
backward of one twin, its gradient added to a running sum, its graph freed, then the next; so the memory of a
step is that of one member's graph, whatever K. A step costs K forward + K backward passes.

The family *decides* like its weakest link for the attacker: a sample counts as adversarial only when every
member is fooled (untargeted: no member predicts the label; targeted: every member predicts the target). The
decision logits of a family (:meth:`ModelFamily.decision`) are those of the first member not fooled yet, else of
the first member, so that ``logits.argmax(1)`` tells success exactly as it does for one model and the attacks'
"keep the first successful iterate" logic keeps an iterate only when it fools the whole family.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from edgebench.errors import AttackError


class ModelFamily(nn.Module):
    """Several torch twins (the members, e.g. a base model and its compressed variants) standing for one model in
    the gradient attacks that support it (``family_ok``: FGSM, PGD and its subclasses, MIM, APGD).

    ``names`` label the members; ``forwards[i]`` and ``backwards[i]`` count member ``i``'s passes (the attack's
    own :class:`~edgebench.attacks.base.Passes` counts their total)."""

    def __init__(self, members: Sequence[nn.Module], names: Sequence[str]) -> None:
        super().__init__()
        if len(members) < 2 or len(members) != len(names):
            raise AttackError(f"a model family needs two or more members with one name each, got {len(members)} "
                              f"members and names {list(names)}")
        self.members = nn.ModuleList(members)
        self.names = tuple(names)
        self.forwards = [0] * len(members)
        self.backwards = [0] * len(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of the members' logits, without gradients (used only where no label is known, e.g. the check
        that a model returns logits). Under autograd it refuses: that would hold every member's graph at once;
        the gradient machinery evaluates members one at a time."""
        if torch.is_grad_enabled() and x.requires_grad:
            raise AttackError("a model family is differentiated member by member (objective_gradient), "
                              "not through its forward")
        with torch.no_grad():
            return torch.stack([m(x) for m in self.members]).mean(0)

    def count(self, i: int, *, backward: bool, passes: Any) -> None:
        """Count one forward (and with ``backward`` one backward) pass of member ``i``, and in the attack's total
        ``passes`` (a :class:`~edgebench.attacks.base.Passes`)."""
        self.forwards[i] += 1
        passes.forward += 1
        if backward:
            self.backwards[i] += 1
            passes.backward += 1

    @staticmethod
    def decision(logits: Sequence[torch.Tensor], y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        """Per sample, the logits of the first member not fooled (argmax equal to ``y``, or not ``target``), else
        those of the first member: their argmax succeeds exactly when every member is fooled."""
        chosen = logits[0].clone()
        settled = torch.zeros(len(y), dtype=torch.bool, device=y.device)
        for z in logits:
            pred = z.argmax(1)
            held = (pred == y) if target is None else (pred != target)
            take = held & ~settled
            chosen[take] = z[take]
            settled |= take
        return chosen

    def predict(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, passes: Any) -> torch.Tensor:
        """The family's decision at ``x`` (one forward per member, counted): the label (or a non-target) unless
        every member is fooled."""
        outs = []
        with torch.no_grad():
            for i, m in enumerate(self.members):
                outs.append(m(x))
                self.count(i, backward=False, passes=passes)
        return self.decision(outs, y, target).argmax(1)

    def cost(self) -> dict[str, object]:
        """The passes spent per member and in total (for the crafted set's record)."""
        return {"members": list(self.names),
                "per_member": {n: {"forward": f, "backward": b}
                               for n, f, b in zip(self.names, self.forwards, self.backwards)},
                "forward": sum(self.forwards), "backward": sum(self.backwards)}
