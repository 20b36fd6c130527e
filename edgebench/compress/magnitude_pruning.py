"""Unstructured magnitude pruning through NNCF 3.x ``nncf.prune`` (Han et al., NIPS 2015, "Learning both
weights and connections"; the unstructured pruning the poster ``004`` contrasts with filter pruning).

``scope = "local"`` prunes the same share of every layer's smallest-magnitude weights
(``PruneMode.UNSTRUCTURED_MAGNITUDE_LOCAL``); ``"global"`` ranks all layers' weights together
(``UNSTRUCTURED_MAGNITUDE_GLOBAL``), so layers with many small weights lose more. NNCF applies its masks
through hooks; after the optional fine-tuning the masks are multiplied into the weights of a plain copy of
the model (no hooks in the twin or the exported graph; ``nncf.strip`` would need ``torchao``).
Zeroed weights keep the dense shapes, so ONNX Runtime runs no faster: the gain is in DEFLATE'd size.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgebench.compress import COMPRESSORS
from edgebench.compress.base import Compressor, finetune
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


@COMPRESSORS.register("magnitude_pruning")
class MagnitudePruning(Compressor):
    """Unstructured magnitude pruning with NNCF (``nncf.prune``), then optional fine-tuning.

    Args:
        ratio: share of weights set to zero, in (0, 1).
        scope: ``"local"`` (same share per layer) or ``"global"`` (one threshold for all layers).
        epochs: fine-tuning epochs with the masks applied.
        lr: fine-tuning learning rate; default a tenth of the base's.
    """

    name = "magnitude_pruning"

    def __init__(self, *, ratio: float, scope: str = "local", epochs: int = 1, lr: float | None = None) -> None:
        self.ratio = check_ratio("ratio", ratio, what=self.what)
        self.scope = check_choice("scope", scope, ("local", "global"), what=self.what)
        self.epochs = check_int("epochs", epochs, what=self.what)
        self.lr = lr

    def apply(self, model: nn.Module, ctx: VariantContext) -> Variant:
        import nncf

        work = clone(model)
        mode = (nncf.PruneMode.UNSTRUCTURED_MAGNITUDE_LOCAL if self.scope == "local"
                else nncf.PruneMode.UNSTRUCTURED_MAGNITUDE_GLOBAL)
        try:
            work = nncf.prune(for_nncf(work), mode=mode, ratio=self.ratio,
                              examples_inputs=example_input(work, ctx.input_shape))
        except Exception as exc:  # NNCF raises its own types for graphs it cannot trace
            raise ctx.fail(f"NNCF cannot prune this model ({type(exc).__name__}: {exc})") from None
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
                          info={"scope": self.scope, "ratio": self.ratio, "per_layer": per_layer,
                                "engine": f"nncf {nncf.__version__} {mode.name}"})
