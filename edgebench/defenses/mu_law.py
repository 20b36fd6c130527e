"""µ-law nonlinear weight mapping (Song, Fallon & Li, "Improving Adversarial Robustness in Weight-quantized
Neural Networks", 2020 — seed ``003``, Sec. "Defending White-box Gradient-based Attacks with Nonlinear
Mapping", eq. 3a).

After training, the weights of the last layer(s) are passed through the µ-law *compression* function::

    F(x) = sgn(x) · ln(1 + µ|x|) / ln(1 + µ),      −1 ≤ x ≤ 1              (eq. 3a)

The seed uses only the compression half (not the expansion, eq. 3b) "to increase nonlinearity", with
µ = 255, on the last layer of its MNIST network and the last three layers of its CIFAR-10 ResNet, and states
the domain −1 ≤ x ≤ 1 but no rescaling: the weights are mapped directly ("mapping the weights directly to a
different distribution"). So:

* ``normalize = "none"`` (default, the seed's formula as written): ``w' = F(w)``. Every mapped weight must lie
  in [−1, 1] (the domain of eq. 3a); a layer with ``max|w| > 1`` is a :class:`CompressError` naming it.
  ``F`` is odd and increasing, fixes 0 and ±1, and enlarges small weights a lot (µ = 255: 0.01 → 0.23,
  0.1 → 0.59), so the layer's outputs grow and its ranking of classes barely changes.
* ``normalize = "max"`` (our option, not the seed's): ``w' = m · F(w / m)`` with ``m = max|w|`` of the layer,
  which keeps each layer's range (any magnitude accepted).

Biases are not mapped (the seed maps "the weights"). Hashed layers: ``F`` is odd, so mapping the real weights
``w`` maps every virtual weight ``w_h · xi`` exactly (see :mod:`edgebench.defenses.base`); ``m`` is the
largest virtual weight.

Quantization: the seed's "+mu (Q)" models are µ-mapped after training, *then* weight-quantized (3 bits,
linear levels, every layer). ``bits`` does that second step here with the ``kbit`` method (whose grid, named
by ``grid``, goes into the record); leaving it out and adding a ``kbit`` variant ``on`` this one is the same.
A ``mu_law`` variant ``on`` a ``kbit`` variant maps the quantized levels instead: ``F`` is a monotone
bijection, so the layer keeps its number of levels, now spaced logarithmically.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from edgebench.compress.hashed import virtual_weight
from edgebench.defenses import DEFENSES
from edgebench.defenses.base import LAYERS_DEFAULT, Defense, map_weights
from edgebench.params import check_bits, check_choice, check_layers, check_number
from edgebench.variants import Variant, VariantContext


def mu_law(x: torch.Tensor, mu: float) -> torch.Tensor:
    """Eq. 3a: ``sgn(x) · ln(1 + µ|x|) / ln(1 + µ)`` (``log1p`` for accuracy near 0)."""
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


@DEFENSES.register("mu_law")
class MuLaw(Defense):
    """µ-law companding of the chosen layers' weights (seed 003, eq. 3a).

    Args:
        mu: µ > 0 (the seed: 255); larger µ, stronger nonlinearity.
        layers: module-name globs of the Conv2d / Linear layers (plain or hashed); None: the last Linear layer.
        normalize: ``"none"`` (the seed: ``F(w)``, weights must lie in [−1, 1]) or ``"max"`` (``m·F(w/m)``).
        bits: if given (2..8), weight-quantize every Conv2d / Linear layer to ``bits`` with ``kbit`` after the
            mapping — the seed's "+mu (Q)" models (3 bits in the seed).
        grid: the ``kbit`` grid used with ``bits``: ``"zero"`` (2^b − 1 levels with zero) or ``"nozero"``.
    """

    name: ClassVar[str] = "mu_law"

    def __init__(self, *, mu: float = 255.0, layers: list[str] | None = None, normalize: str = "none",
                 bits: int | None = None, grid: str = "zero") -> None:
        self.mu = check_number("mu", mu, what=self.what, lo=0.0, lo_open=True)
        self.layers = check_layers(layers, what=self.what, default=LAYERS_DEFAULT)
        self.normalize = check_choice("normalize", normalize, ("none", "max"), what=self.what)
        self.bits = None if bits is None else check_bits(bits, what=self.what, lo=2, hi=8)
        self.grid = check_choice("grid", grid, ("zero", "nozero"), what=self.what)

    def apply(self, model: nn.Module, ctx: VariantContext) -> Variant:
        def compand(name: str, layer: nn.Module, w: torch.Tensor) -> dict[str, Any]:
            m = float(virtual_weight(layer).detach().abs().max()) if w.numel() else 0.0
            if self.normalize == "none":
                if m > 1.0:
                    raise ctx.fail(f"{self.name}: max|w| = {m:.4g} lies outside eq. 3a's domain [-1, 1]; "
                                   "use normalize = 'max' (maps w/max|w| and scales back)", layer=name)
                w.copy_(mu_law(w, self.mu))
            elif m > 0:
                w.copy_(mu_law(w / m, self.mu) * m)
            return {"scale": m if self.normalize == "max" else 1.0}

        twin, per_layer = map_weights(model, self.layers, ctx, method=self.name, fn=compand)
        info: dict[str, Any] = {
            "mu": self.mu, "normalize": self.normalize, "layers": list(per_layer), "per_layer": per_layer,
            "rule": ("w <- sgn(w) ln(1 + mu |w|) / ln(1 + mu) (Song et al. 2020, eq. 3a)" if self.normalize == "none"
                     else "w <- m sgn(w) ln(1 + mu |w|/m) / ln(1 + mu), m = max|w| per layer (eq. 3a on w/m)")
                    + "; biases unchanged"}
        if self.bits is None:
            return Variant(model=twin, info=info)
        from edgebench.compress.kbit import KBit

        quantized = KBit(bits=self.bits, grid=self.grid).apply(twin, ctx)
        info["quantization"] = {"method": "kbit", "order": "mu-law mapping, then quantization (the seed's '+mu (Q)')",
                                **quantized.info}
        return Variant(model=quantized.model.eval(), info=info)
