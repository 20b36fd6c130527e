"""Per-variant statistics: parameters and non-zeros, MACs, artifact sizes with DEFLATE (seed ``002``,
Table IV), the spectral norm of ΔW per layer (seed ``003``, eq. 2) and weight distributions per layer
(seed ``000``, Fig. 6). Pure functions of a model (or files); the pipeline stores their results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgebench.compress.storage import deflate_size, true_size
from edgebench.metrics.weights import HIST_BINS
from edgebench.models.placement import example_input, numpy_of


def file_stats(paths: list[Path]) -> dict[str, int]:
    """Size and DEFLATE'd size of an artifact (all its files: an IR's .xml and .bin together)."""
    data = b"".join(Path(p).read_bytes() for p in paths)
    return {"size_bytes": len(data), "deflate_bytes": deflate_size(data)}


def _weighted_kind(m: nn.Module) -> str | None:
    if isinstance(m, nn.Conv2d) or (hasattr(m, "kernel_size") and hasattr(m, "in_channels")):
        return "conv"
    if isinstance(m, nn.Linear) or (hasattr(m, "in_features") and hasattr(m, "out_features")):
        return "linear"
    return None


def effective_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{layer: weight}`` as the layer computes with it: the materialized virtual weights of hashed
    layers (``weight_virtual()``), the fake-quantized weights of an NNCF int8 twin, else ``.weight``; on the CPU
    (computed where the model is), so statistics and hashes of them do not depend on the device."""
    hooks = _nncf_weight_quantizers(model)
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, m in model.named_modules():
            if _weighted_kind(m) is None or "__nncf_hooks" in name:
                continue
            if hasattr(m, "weight_virtual"):
                w = m.weight_virtual()
            elif isinstance(getattr(m, "weight", None), torch.Tensor):
                w = m.weight
            else:
                continue
            if name in hooks:
                w = hooks[name](w)
            out[name] = w.detach().float().cpu().clone()
    return out


def _nncf_weight_quantizers(model: nn.Module) -> dict[str, nn.Module]:
    """NNCF 3.x registers a weight quantizer as a pre-hook on input 1 of the op ``<module path>/<op>/<k>``."""
    found = {}
    for name, m in model.named_modules():
        if ".pre_hooks." not in name or not name.endswith(".0"):
            continue
        key = name.split(".pre_hooks.", 1)[1][:-2]
        op, _, port = key.rpartition("__")
        if port != "1":
            continue
        parts = op.split("/")
        found[".".join(parts[:-2])] = m
    return found


def param_stats(model: nn.Module) -> dict[str, int]:
    """Stored parameters and their non-zeros (NNCF's quantizer scales excluded)."""
    params = [p for n, p in model.named_parameters() if "__nncf_hooks" not in n]
    return {"params": int(sum(p.numel() for p in params)), "nonzeros": int(sum(int((p != 0).sum()) for p in params))}


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one inference on one sample, over convolutions and linear layers (dense:
    zeroed weights still cost a MAC on a runtime without sparse kernels, as in ONNX Runtime)."""
    total = 0

    def hook(m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        nonlocal total
        per_out = (m.in_channels // m.groups) * int(np.prod(m.kernel_size)) if _weighted_kind(m) == "conv" \
            else m.in_features
        total += int(out[0].numel()) * per_out

    handles = [m.register_forward_hook(hook) for n, m in model.named_modules()
               if _weighted_kind(m) is not None and "__nncf_hooks" not in n]
    try:
        with torch.no_grad():
            model.eval()(example_input(model, input_shape))
    finally:
        for h in handles:
            h.remove()
    return total


def weight_deflate(weights: dict[str, torch.Tensor]) -> dict[str, int]:
    """fp32 bytes of the layer weights and their DEFLATE'd size: the storage gain of zeros, shared values and
    few levels, independent of the artifact container."""
    data = b"".join(w.numpy().astype(np.float32).tobytes() for w in weights.values())
    return {"weight_bytes": len(data), "weight_deflate_bytes": deflate_size(data)}


def stored_size(model: nn.Module) -> dict[str, Any]:
    """The storage a device would hold (:func:`edgebench.compress.storage.true_size`): each Conv/Linear layer's
    effective weights (a hashed layer's bucket values ``w`` instead, its hash tables being recomputed from the
    seed) packed to their codebook, the rest of the state dict's floating-point tensors as fp32."""
    weights: dict[str, tuple[np.ndarray, int]] = {}
    covered: set[str] = set()
    effective = effective_weights(model)
    for name, m in model.named_modules():
        if name not in effective:
            continue
        hashed = isinstance(getattr(m, "w", None), torch.Tensor) and hasattr(m, "weight_virtual")
        w = m.w.detach().cpu() if hashed else effective[name]
        weights[name] = (w.float().numpy(), 1 if hashed else int(w.shape[0]))
        covered.add(f"{name}.w" if hashed else f"{name}.weight")
    rest = [numpy_of(t.float()) for k, t in model.state_dict().items()
            if k not in covered and torch.is_floating_point(t)]
    return true_size(weights, rest)


def spectral_delta(base: dict[str, torch.Tensor], variant: dict[str, torch.Tensor]) -> dict[str, float | None]:
    """‖ΔW‖₂ = largest singular value of ``W_variant − W_base`` per layer (seed 003, eq. 2), the weight
    matrix of a convolution taken as (out, in·kh·kw). ``None`` where shapes differ (pruned channels)."""
    out: dict[str, float | None] = {}
    for name, w in base.items():
        v = variant.get(name)
        if v is None or v.shape != w.shape:
            out[name] = None
            continue
        d = (v - w).reshape(w.shape[0], -1).double()
        out[name] = float(torch.linalg.matrix_norm(d, ord=2))
    return out


def weight_histograms(weights: dict[str, torch.Tensor], *, bins: int = HIST_BINS) -> dict[str, dict[str, Any]]:
    """Per layer: a histogram over the symmetric range ±max|W| (seed 000, Fig. 6) and summary numbers."""
    out = {}
    for name, w in weights.items():
        a = w.flatten().numpy().astype(np.float64)
        lim = float(np.abs(a).max()) or 1.0
        counts, edges = np.histogram(a, bins=bins, range=(-lim, lim))
        out[name] = {"min": float(a.min()), "max": float(a.max()), "mean": float(a.mean()), "std": float(a.std()),
                     "p01": float(np.percentile(a, 1)), "p99": float(np.percentile(a, 99)),
                     "zeros": float(np.mean(a == 0)), "distinct": int(np.unique(a).size),
                     "edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}
    return out


def model_stats(model: nn.Module, input_shape: tuple[int, ...], *, base: nn.Module | None = None) -> dict[str, Any]:
    """Everything above for one torch twin (``base`` gives ΔW)."""
    weights = effective_weights(model)
    stats: dict[str, Any] = {**param_stats(model), "macs": count_macs(model, input_shape), **weight_deflate(weights),
                             **stored_size(model), "weights": weight_histograms(weights)}
    if base is not None:
        stats["delta_w_spectral"] = spectral_delta(effective_weights(base), weights)
    return stats
