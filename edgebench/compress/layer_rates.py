"""Per-layer pruning rates, shared by the unstructured pruning methods (``dns``, ``magnitude_pruning``).

One rate for every layer prunes the first convolution as hard as the large fully connected layers, although it
holds a few hundred weights that every later layer depends on. The papers behind seed ``002`` (Wijayanto et al.
2018) prune layer by layer: Han et al. ("Learning both weights and connections", NIPS 2015, Table 2, and Deep
Compression, ICLR 2016, Table 2) keep 66 % of LeNet-5's conv1, 12 % of conv2, 8 % of fc1 and 19 % of fc2; Guo et
al.'s DNS (NIPS 2016) sets each layer's thresholds with a hand-tuned factor of its own, likewise lightest on conv1.

``layer_rates = { "features.0" = 0.34, "head.0" = 0.92 }`` in a method's entry overrides the method's one rate for
the layers it names (exact module names of Conv2d/Linear layers; a rate in [0, 1), 0 leaves the layer dense);
the other layers keep the method's rate. A name that is no such layer of the model is a :class:`ConfigError`
naming it and listing the layers.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from edgebench.errors import ConfigError
from edgebench.variants import WEIGHTED, VariantContext


def check_layer_rates(value: Any, *, what: str) -> dict[str, float]:
    """``layer_rates`` as ``{layer name: rate}``: a table of names to numbers in [0, 1) (None: empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{what}: layer_rates must be a table of layer names to rates, e.g. "
                          f"{{ \"features.0\" = 0.34 }}, got {value!r}")
    out = {}
    for name, rate in value.items():
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= float(rate) < 1.0:
            raise ConfigError(f"{what}: layer_rates[{name!r}] must be a number in [0, 1) (0 leaves the layer dense), "
                              f"got {rate!r}")
        out[str(name)] = float(rate)
    return out


def layer_rate_map(model: nn.Module, rates: dict[str, float], default: float, ctx: VariantContext, *,
                   what: str) -> dict[str, float]:
    """``{name: rate}`` for every Conv2d/Linear layer of ``model``: ``rates`` where named, else ``default``. A
    name in ``rates`` that is no Conv2d/Linear layer is a :class:`ConfigError` naming it."""
    names = [n for n, m in model.named_modules() if isinstance(m, WEIGHTED)]
    unknown = [n for n in rates if n not in names]
    if unknown:
        raise ConfigError(f"{ctx.where}: {what}: layer_rates names {unknown[0]!r}, which is no Conv2d/Linear layer "
                          f"of the model; layers are {names}")
    return {n: rates.get(n, default) for n in names}
