"""Gradient inhibition (Liu et al., "Security Analysis and Enhancement of Model Variant Deep Learning Systems
under Adversarial Attacks", 2018 — seed ``000``, Sec. V-A, eq. 12).

After training, every weight of the chosen layers moves away from zero by τ::

    w ← w + τ · sign(w)                                                    (eq. 12)

by default on the last fully connected layer only (the seed's practice: "the layers close to the output layer
... for higher attack rate reduction but lowest accuracy loss"). Biases are left alone; ``sign(0) = 0``, so a
pruned weight stays pruned and a quantized layer keeps its zero level (its other levels move to ±(|q| + τ)).

Why it "works" (seed 000, eqs. 8-11): larger last-layer weights push the softmax towards one-hot, so
``∇_x J = Σ_j w_ji (F(z_j) − t_j)`` shrinks until, in float32, it is exactly zero for most inputs, and FGSM's
``sign(∇_x J)`` is then zero: no perturbation at all. That is **gradient masking** (Athalye et al. 2018), not
robustness: the decision boundary barely moves, so examples crafted on the un-inhibited model transfer with
their full success rate, and attacks on the logit margin (CW-L2) are unaffected. The unit tests measure both
(``tests/unit/test_defenses.py``). How much clean accuracy it costs depends on the network: none on seed 000's
784-C64-C128-F512-10 (0.964 at every τ up to 2 on the digits), but ``digits_cnn``, whose last layer reads only
64 features, fell from 0.972 to 0.936 / 0.881 / 0.764 at τ = 0.1 / 0.2 / 0.5 (20 epochs of training) — read
the variant's clean accuracy before its attack numbers.

Hashed layers (seed 000's HashNets): eq. 12 is applied to the stored real weights ``w``. With the sign hash
``xi = ±1``, ``(w_h + τ·sign(w_h))·xi = w_h·xi + τ·sign(w_h·xi)``: every virtual weight of ``phi(W)`` moves by
exactly ``τ·sign``, i.e. eq. 12 on the virtual weights — and the variant keeps its hashed storage (one shift
per bucket, not one per virtual weight). (The seed applies eq. 12 to HashNets in Fig. 10a without saying which
weights; this is the reading under which both are the same.)
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from edgebench.defenses import DEFENSES
from edgebench.defenses.base import LAYERS_DEFAULT, Defense, map_weights
from edgebench.params import check_layers, check_number
from edgebench.variants import Variant, VariantContext


@DEFENSES.register("gradient_inhibition")
class GradientInhibition(Defense):
    """``w ← w + τ·sign(w)`` on the chosen layers (seed 000, eq. 12).

    Args:
        tau: the inhibition coefficient τ >= 0 (the seed sweeps 0.01 … 0.5; τ = 0 is the identity).
        layers: module-name globs of the Conv2d / Linear layers (plain or hashed); None: the last Linear layer.
    """

    name: ClassVar[str] = "gradient_inhibition"

    def __init__(self, *, tau: float = 0.1, layers: list[str] | None = None) -> None:
        self.tau = check_number("tau", tau, what=self.what, lo=0.0)
        self.layers = check_layers(layers, what=self.what, default=LAYERS_DEFAULT)

    def apply(self, model: nn.Module, ctx: VariantContext) -> Variant:
        def inhibit(_name: str, _layer: nn.Module, w: torch.Tensor) -> None:
            w.add_(self.tau * torch.sign(w))

        twin, per_layer = map_weights(model, self.layers, ctx, method=self.name, fn=inhibit)
        return Variant(model=twin, info={
            "tau": self.tau, "layers": list(per_layer), "per_layer": per_layer,
            "rule": "w <- w + tau * sign(w) (Liu et al. 2018, eq. 12); biases unchanged; sign(0) = 0"})
