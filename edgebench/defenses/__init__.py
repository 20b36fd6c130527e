"""Defenses: one file per defense, one registry, the compression methods' interface.

A defense turns a trained model — a base or any compressed variant's torch twin — into a defended variant. Like
a compression method it is a variant method (:mod:`edgebench.variants`), of kind ``defend``: configured once
from a plan's ``[[defend]]`` entry (keyword-only parameters, validated in ``__init__``; create one with
:func:`edgebench.variants.create_method`), applied with ``apply(model, ctx) -> Variant``, cached with
``save_twin`` / ``load_twin``, so the pipeline treats compression and defense alike and chains them either way
("adversarially trained then quantized", "quantized then adversarially trained"). The result is a plain
``nn.Module`` that exports like any twin.

* ``gradient_inhibition`` — Liu et al. 2018 (seed ``000``), eq. 12: ``w ← w + τ·sign(w)`` after training.
* ``mu_law`` — Song et al. 2020 (seed ``003``), eq. 3a: µ-law companding of the last layers' weights.
* ``adversarial_training`` — Madry et al. 2018 (PGD examples only) or Kurakin et al. 2017 (clean and
  adversarial examples mixed at ratio λ, the "adversarial-aware" pipeline of seed ``002``); resumable.

Host side only: imports torch lazily (at the first lookup).
"""

from __future__ import annotations

from typing import Any

from edgebench.registry import Registry

DEFENSES: Registry[Any] = Registry("defense", modules=("edgebench.defenses.*",))


__all__ = ["DEFENSES"]
