"""What the defenses share: the variant-method base (:class:`~edgebench.variants.VariantMethod` of kind
``defend``), the refusal of twins that cannot be defended, and the weight map of the weight-space defenses
(hashed layers included, the last fully connected layer by default).

Hashed layers (:mod:`edgebench.compress.hashed`) store their real weights in ``w`` and compute the virtual
weight ``phi(W) = W_h ⊙ xi`` (seed ``000``, eq. 3). A weight-space defense changes ``w``: for any *odd*
element-wise map ``g`` (``g(-v) = -g(v)``: eq. 12's ``v + τ·sign(v)``, eq. 3a's µ-law), and ``xi = ±1``,
``g(w[h]) · xi = g(w[h] · xi)``, so changing the real weights is exactly the same as changing every virtual
weight and the variant keeps its hashed storage. :meth:`Defense.attach` deploys such a twin densely, as the
``hashed`` method does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from edgebench.compress.hashed import HashedConv2d, HashedLinear, is_hashed, to_dense, virtual_weight
from edgebench.variants import Variant, VariantContext, VariantMethod, clone, select_layers

__all__ = ["LAYERS_DEFAULT", "Defense", "check_model", "map_weights", "stored_weight"]

#: What ``layers = None`` selects, for the parameter check's message.
LAYERS_DEFAULT = "the last fully connected layer"


class Defense(VariantMethod):
    """A registered defense (a plan's ``[[defend]]``): a variant method of kind ``defend``. Keyword-only
    parameters checked in ``__init__`` (:class:`ConfigError` naming the parameter), :meth:`apply` returns a
    new variant and never modifies the model it is given; errors about the model name the variant
    (``ctx.where``) and the layer."""

    kind: ClassVar[str] = "defend"

    def attach(self, variant: Variant, model: nn.Module, ctx: VariantContext) -> None:
        """A twin that still holds hashed layers (a defense applied on a ``hashed`` variant) deploys its
        dense virtual weights, like the ``hashed`` method's own variants."""
        if any(is_hashed(m) for m in variant.model.modules()):
            variant.deploy = to_dense(variant.model)


def check_model(model: nn.Module, ctx: VariantContext, *, method: str) -> None:
    """Refuse twins a defense cannot produce a cacheable, exportable variant of: an NNCF ``int8`` twin (its
    quantizers neither pickle nor follow edited weights: their ranges were calibrated on the old ones, and its
    artifact is re-quantized from the base). Defend first, then apply ``int8`` ``on`` the defended variant."""
    if any("__nncf_hooks" in name for name, _ in model.named_modules()):
        raise ctx.fail(f"{method}: cannot defend an NNCF int8 twin (fixed quantizer ranges, its artifact is "
                       "quantized from the base); defend the base and add the int8 variant with on = <defended "
                       "variant>, or use kbit for a quantized twin")


# layers -------------------------------------------------------------------------------------------------
_WEIGHTED = (nn.Conv2d, nn.Linear, HashedConv2d, HashedLinear)
_LINEAR = (nn.Linear, HashedLinear)


def stored_weight(name: str, layer: nn.Module, ctx: VariantContext, *, method: str) -> torch.Tensor:
    """The parameter that holds ``layer``'s weights: ``w`` (the real weights) for a hashed layer, else
    ``weight``. A parametrized weight (a method's training-time wrapper left in place) cannot be edited."""
    from torch.nn.utils import parametrize

    if is_hashed(layer):
        return layer.w
    if parametrize.is_parametrized(layer, "weight"):
        raise ctx.fail(f"{method}: the weight is parametrized ({type(layer.parametrizations.weight[0]).__name__}); "
                       "remove the parametrization before defending", layer=name)
    weight = getattr(layer, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise ctx.fail(f"{method}: {type(layer).__name__} has no weight tensor", layer=name)
    return weight


def map_weights(model: nn.Module, patterns: Sequence[str] | None, ctx: VariantContext, *, method: str,
                fn: Any) -> tuple[nn.Module, dict[str, dict[str, Any]]]:
    """A copy of ``model`` whose chosen layers' stored weights went through ``fn(name, layer, w)`` in place
    (which may return extra facts for the record), and per layer: what was mapped, how many weights, and
    how far they moved (|Δw| mean and max, |w| mean and max before and after)."""
    check_model(model, ctx, method=method)
    twin = clone(model)
    per_layer: dict[str, dict[str, Any]] = {}
    with torch.no_grad():
        for name, layer in select_layers(twin, patterns, ctx, kinds=_WEIGHTED, last_of=_LINEAR, method=method):
            w = stored_weight(name, layer, ctx, method=method)
            before = w.detach().clone()
            max_before = float(virtual_weight(layer).detach().abs().max()) if w.numel() else 0.0
            extra = fn(name, layer, w) or {}
            delta = (w - before).abs()
            some = w.numel() > 0
            per_layer[name] = {
                "weights": "real (hashed buckets)" if is_hashed(layer) else "dense",
                "count": int(w.numel()),
                "changed": int((delta > 0).sum()),
                "zeros_kept": int(((before == 0) & (w == 0)).sum()),
                "delta_abs_mean": float(delta.mean()) if some else 0.0,
                "delta_abs_max": float(delta.max()) if some else 0.0,
                "abs_mean_before": float(before.abs().mean()) if some else 0.0,
                "abs_mean_after": float(w.abs().mean()) if some else 0.0,
                "abs_max_before": max_before,
                "abs_max_after": float(virtual_weight(layer).detach().abs().max()) if some else 0.0,
                **extra,
            }
    return twin.eval(), per_layer
