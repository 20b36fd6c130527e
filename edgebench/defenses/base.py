"""What the defenses share: the compression interface (a defense *is* a
:class:`~edgebench.compress.base.Compressor`), parameter checks worded for defenses, the choice of layers
(hashed layers included, the last fully connected layer by default) and access to a layer's stored weights.

Hashed layers (:mod:`edgebench.compress.hashed`) store their real weights in ``w`` and compute the virtual
weight ``phi(W) = W_h ⊙ xi`` (seed ``000``, eq. 3). A weight-space defense changes ``w``: for any *odd*
element-wise map ``g`` (``g(-v) = -g(v)``: eq. 12's ``v + τ·sign(v)``, eq. 3a's µ-law), and ``xi = ±1``,
``g(w[h]) · xi = g(w[h] · xi)``, so changing the real weights is exactly the same as changing every virtual
weight and the variant keeps its hashed storage. :meth:`Defense.attach` deploys such a twin densely, as the
``hashed`` method does.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from edgebench.compress.base import CompressContext, Compressed, Compressor, clone
from edgebench.errors import ConfigError

__all__ = ["Defense", "check_fraction", "check_layers", "check_model", "check_number", "chosen_layers", "is_hashed",
           "stored_weight", "virtual_weight"]


class Defense(Compressor):
    """A registered defense. Same contract as a compression method: keyword-only parameters checked in
    ``__init__`` (:class:`ConfigError` naming the parameter), :meth:`apply` returns a new variant and never
    modifies the model it is given; errors about the model name the variant (``ctx.where``) and the layer."""

    name: ClassVar[str] = "?"

    def attach(self, compressed: Compressed, model: nn.Module, ctx: CompressContext) -> None:
        """A twin that still holds hashed layers (a defense applied on a ``hashed`` variant) deploys its
        dense virtual weights, like the ``hashed`` method's own variants."""
        from edgebench.compress.hashed import _HashedLayer, to_dense

        if any(isinstance(m, _HashedLayer) for m in compressed.model.modules()):
            compressed.deploy = to_dense(compressed.model)


def check_model(model: nn.Module, ctx: CompressContext, *, method: str) -> None:
    """Refuse twins a defense cannot produce a cacheable, exportable variant of: an NNCF ``int8`` twin (its
    quantizers neither pickle nor follow edited weights: their ranges were calibrated on the old ones, and its
    artifact is re-quantized from the base). Defend first, then apply ``int8`` ``on`` the defended variant."""
    if any("__nncf_hooks" in name for name, _ in model.named_modules()):
        raise ctx.fail(f"{method}: cannot defend an NNCF int8 twin (fixed quantizer ranges, its artifact is "
                       "quantized from the base); defend the base and add the int8 variant with on = <defended "
                       "variant>, or use kbit for a quantized twin")


# parameter checks ---------------------------------------------------------------------------------------
def _where(method: str) -> str:
    return f"defense {method!r}"


def check_number(name: str, value: Any, *, method: str, lo: float | None = None, lo_open: bool = False,
                 hi: float | None = None, what: str = "") -> float:
    """A finite real number with optional bounds (``lo_open``: ``> lo`` rather than ``>= lo``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value <= hi
    if not ok:
        if what:
            rule = what
        elif lo is not None and hi is not None:
            rule = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
        elif lo is not None:
            rule = f"{'>' if lo_open else '>='} {lo:g}"
        else:
            rule = "finite"
        raise ConfigError(f"{_where(method)}: {name} must be a number {rule}, got {value!r}")
    return float(value)


def check_fraction(name: str, value: Any, *, method: str) -> float:
    """A number in [0, 1] (a ratio, an ε on inputs in [0, 1])."""
    return check_number(name, value, method=method, lo=0.0, hi=1.0)


def check_layers(value: Any, *, method: str) -> list[str] | None:
    """None, or a non-empty list of non-empty module-name globs."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(p, str) and p for p in value):
        raise ConfigError(f"{_where(method)}: layers must be a non-empty list of module-name globs (e.g. "
                          f"['head.*']) or omitted for the last fully connected layer, got {value!r}")
    return list(value)


# layers -------------------------------------------------------------------------------------------------
def _kinds() -> tuple[tuple[type[nn.Module], ...], tuple[type[nn.Module], ...]]:
    """(every weighted kind, the fully connected kinds), hashed layers included."""
    from edgebench.compress.hashed import HashedConv2d, HashedLinear

    return (nn.Conv2d, nn.Linear, HashedConv2d, HashedLinear), (nn.Linear, HashedLinear)


def chosen_layers(model: nn.Module, patterns: Sequence[str] | None, ctx: CompressContext, *,
                  method: str) -> list[tuple[str, nn.Module]]:
    """The Conv2d / Linear (plain or hashed) layers of ``model`` whose names match one of ``patterns``
    (shell globs, e.g. ``"head.*"``); with ``patterns`` None, the last fully connected layer (the one closest
    to the output, where seeds ``000`` and ``003`` apply their defenses). A pattern that matches no layer, or
    a model without the layer wanted, is a :class:`CompressError` naming the variant."""
    weighted, linear = _kinds()
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, weighted)]
    names = [n for n, _ in found]
    if patterns is None:
        fc = [(n, m) for n, m in found if isinstance(m, linear)]
        if not fc:
            raise ctx.fail(f"{method}: the model has no Linear layer (the default target, the last fully connected "
                           f"layer); name the layers with `layers` (weighted layers: {names})")
        return [fc[-1]]
    if not found:
        raise ctx.fail(f"{method}: the model has no Conv2d or Linear layer to defend")
    chosen: list[tuple[str, nn.Module]] = []
    for pat in patterns:
        hits = [(n, m) for n, m in found if fnmatch.fnmatchcase(n, pat)]
        if not hits:
            raise ctx.fail(f"{method}: layers: pattern {pat!r} matches no Conv2d/Linear layer; layers are {names}")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def stored_weight(name: str, layer: nn.Module, ctx: CompressContext, *, method: str) -> torch.Tensor:
    """The parameter that holds ``layer``'s weights: ``w`` (the real weights) for a hashed layer, else
    ``weight``. A parametrized weight (a method's training-time wrapper left in place) cannot be edited."""
    from torch.nn.utils import parametrize

    from edgebench.compress.hashed import _HashedLayer

    if isinstance(layer, _HashedLayer):
        return layer.w
    if parametrize.is_parametrized(layer, "weight"):
        raise ctx.fail(f"{method}: the weight is parametrized ({type(layer.parametrizations.weight[0]).__name__}); "
                       "remove the parametrization before defending", layer=name)
    weight = getattr(layer, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise ctx.fail(f"{method}: {type(layer).__name__} has no weight tensor", layer=name)
    return weight


def is_hashed(layer: nn.Module) -> bool:
    from edgebench.compress.hashed import _HashedLayer

    return isinstance(layer, _HashedLayer)


def virtual_weight(layer: nn.Module) -> torch.Tensor:
    """The weight the layer computes with (the virtual ``phi(W)`` for a hashed layer)."""
    from edgebench.compress.hashed import _HashedLayer

    return layer.weight_virtual() if isinstance(layer, _HashedLayer) else layer.weight


def map_weights(model: nn.Module, patterns: Sequence[str] | None, ctx: CompressContext, *, method: str,
                fn: Any) -> tuple[nn.Module, dict[str, dict[str, Any]]]:
    """A copy of ``model`` whose chosen layers' stored weights went through ``fn(name, layer, w)`` in place
    (which may return extra facts for the record), and per layer: what was mapped, how many weights, and
    how far they moved (|Δw| mean and max, |w| mean and max before and after)."""
    check_model(model, ctx, method=method)
    twin = clone(model)
    per_layer: dict[str, dict[str, Any]] = {}
    with torch.no_grad():
        for name, layer in chosen_layers(twin, patterns, ctx, method=method):
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
