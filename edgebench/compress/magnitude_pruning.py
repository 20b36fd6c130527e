"""Unstructured magnitude pruning through NNCF 3.x ``nncf.prune`` (Han et al., NIPS 2015, "Learning both
weights and connections"; the unstructured pruning the poster ``004`` contrasts with filter pruning).

``scope = "local"`` prunes the same share of every layer's smallest-magnitude weights
(``PruneMode.UNSTRUCTURED_MAGNITUDE_LOCAL``); ``"global"`` ranks all layers' weights together
(``UNSTRUCTURED_MAGNITUDE_GLOBAL``), so layers with many small weights lose more. NNCF applies its masks
through hooks; after the optional fine-tuning the masks are multiplied into the weights of a plain copy of
the model (no hooks in the twin or the exported graph; ``nncf.strip`` would need ``torchao``). ``layer_rates``
gives named layers a rate of their own (Han et al. 2015 prune LeNet-5's conv1 by 34 % only:
:mod:`edgebench.compress.layer_rates`): their NNCF masks are replaced, before fine-tuning, by masks that zero that
share of the layer's smallest-magnitude weights (ties broken by position).
Zeroed weights keep the dense shapes, so ONNX Runtime runs no faster: the gain is in DEFLATE'd size.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgebench.compress import COMPRESSORS
from edgebench.compress.base import Compressor, finetune
from edgebench.compress.layer_rates import check_layer_rates, layer_rate_map
from edgebench.compress.nncf_root import for_nncf
from edgebench.models.placement import example_input
from edgebench.params import check_choice, check_int, check_ratio
from edgebench.variants import Variant, VariantContext, clone


def nncf_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{module name: bool mask}`` of the weight masks NNCF registered on ``model``."""
    out = {}
    for name, buf in model.named_buffers():
        if name.endswith("binary_mask") and ".post_hooks." in name:
            hook = name.split(".post_hooks.", 1)[1]
            module = hook.split(":weight__", 1)[0].replace(":", ".")
            out[module] = buf.detach().clone()
    return out


def magnitude_mask(w: torch.Tensor, rate: float) -> torch.Tensor:
    """Bool mask keeping all but the ``round(rate·n)`` smallest-magnitude entries of ``w`` (stable order: ties go
    by position, so the same mask on any device)."""
    k = round(rate * w.numel())
    keep = torch.ones(w.numel(), dtype=torch.bool, device=w.device)
    keep[torch.argsort(w.detach().abs().flatten(), stable=True)[:k]] = False
    return keep.view_as(w)


def set_layer_masks(model: nn.Module, rates: dict[str, float]) -> None:
    """Replace, in place, the NNCF weight masks of the layers named in ``rates`` by :func:`magnitude_mask` at
    their rate (NNCF's hooks read these buffers on every forward, so fine-tuning keeps them)."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("binary_mask") and ".post_hooks." in name:
                module = name.split(".post_hooks.", 1)[1].split(":weight__", 1)[0].replace(":", ".")
                if module in rates:
                    buf.copy_(magnitude_mask(modules[module].weight, rates[module]).to(buf.dtype))


@COMPRESSORS.register("magnitude_pruning")
class MagnitudePruning(Compressor):
    """Unstructured magnitude pruning with NNCF (``nncf.prune``), then optional fine-tuning.

    Args:
        ratio: share of weights set to zero, in (0, 1).
        scope: ``"local"`` (same share per layer) or ``"global"`` (one threshold for all layers).
        epochs: fine-tuning epochs with the masks applied.
        lr: fine-tuning learning rate; default a tenth of the base's.
        layer_rates: ``{layer name: rate}`` for named layers (0 leaves one dense); the others follow ``ratio``
            and ``scope``.
    """

    name = "magnitude_pruning"

    def __init__(self, *, ratio: float, scope: str = "local", epochs: int = 1, lr: float | None = None,
                 layer_rates: dict[str, float] | None = None) -> None:
        self.ratio = check_ratio("ratio", ratio, what=self.what)
        self.scope = check_choice("scope", scope, ("local", "global"), what=self.what)
        self.epochs = check_int("epochs", epochs, what=self.what)
        self.lr = lr
        self.layer_rates = check_layer_rates(layer_rates, what=self.what)

    def apply(self, model: nn.Module, ctx: VariantContext) -> Variant:
        import nncf

        work = clone(model)
        rates = layer_rate_map(work, self.layer_rates, self.ratio, ctx, what=self.what) if self.layer_rates else {}
        mode = (nncf.PruneMode.UNSTRUCTURED_MAGNITUDE_LOCAL if self.scope == "local"
                else nncf.PruneMode.UNSTRUCTURED_MAGNITUDE_GLOBAL)
        try:
            work = nncf.prune(for_nncf(work), mode=mode, ratio=self.ratio,
                              examples_inputs=example_input(work, ctx.input_shape))
        except Exception as exc:  # NNCF raises its own types for graphs it cannot trace
            raise ctx.fail(f"NNCF cannot prune this model ({type(exc).__name__}: {exc})") from None
        set_layer_masks(work, {n: rates[n] for n in self.layer_rates})
        history = finetune(work, ctx, self.epochs, lr=self.lr, desc="finetune (pruned)")
        masks = nncf_masks(work)
        if not masks:
            raise ctx.fail("NNCF found no layer to prune")
        twin = clone(model)
        trained = dict(work.named_parameters())
        per_layer: dict[str, Any] = {}
        with torch.no_grad():
            for name, p in twin.named_parameters():
                p.copy_(trained[name])
            modules = dict(twin.named_modules())
            for name, mask in masks.items():
                modules[name].weight.mul_(mask.to(modules[name].weight.dtype))
                per_layer[name] = {"sparsity": float(1 - mask.float().mean())}
        return Variant(model=twin.eval(), history=history,
                          info={"scope": self.scope, "ratio": self.ratio, "layer_rates": self.layer_rates,
                                "per_layer": per_layer,
                                "engine": f"nncf {nncf.__version__} {mode.name}"})
