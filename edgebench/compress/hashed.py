"""HashedNets: random weight sharing by the hashing trick (Chen et al. 2015, "Compressing neural networks
with the hashing trick", ICML), as modelled in seed ``000`` (Liu et al. 2018, Sec. III, eqs. 3-7).

A hashed layer stores a real weight vector ``w`` of ``K`` buckets (plus a dense bias). Its virtual weight
matrix is ``V[i, j] = w[h(i, j)] * xi(i, j)``, i.e. ``phi(W) = W_h ⊙ xi`` (seed 000, Sec. III-B), with a
bucket hash ``h`` and an independent sign hash ``xi`` in {-1, +1} that removes the bias of hashed
inner products (Weinberger et al. 2009). Both are pure functions of (layer seed, layer shape):

* ``k``: the flat row-major index of a virtual weight (``(o, i, kh, kw)`` for a convolution);
* ``h(k) = splitmix64(k * 0x9E3779B97F4A7C15 + key_h) mod K`` and ``xi(k) = +1`` if the top bit of
  ``splitmix64(k * 0x9E3779B97F4A7C15 + key_xi)`` is set, else ``-1`` (splitmix64's output function is
  Stafford's variant 13 of MurmurHash3's xorshift-multiply finalizer, the mixer xxhash also uses);
* ``key_h`` / ``key_xi`` = blake2b-64 of ("edgebench.hashed.v1", layer seed, "h" / "xi", shape); the
  layer seed is blake2b-64 of (``hash_seed``, layer name). Never Python's salted ``hash()``: the tables are
  the same in every process and run, so they need not be stored (non-persistent buffers; the state dict
  holds only ``w`` and the bias).

Forward (eq. 3): the dense virtual weight is built by a gather, ``w[index] * sign``, then a plain
``F.linear`` / ``F.conv2d``. Autograd through the gather gives eq. 4 exactly: the gradient of a real
weight ``w_k`` is ``sum over (i, j) with h(i, j) = k of xi(i, j) * dL/dV(i, j)``, and the gradient w.r.t.
the layer *input* flows through ``phi(W)``: ``delta^l_j = (sum_i w_h(i,j) xi(i,j) delta^{l+1}_i) f'(z^l_j)``.
So ``torch.autograd.grad(loss, x)`` on a hashed model *is* the HFGSM gradient of eq. 6 (and the forward
derivatives of HJSMA, eq. 7): attacks need no special case for this method.

Deployment ships the virtual weights densely (:func:`to_dense`): a device runs plain Conv/Gemm, not a
Gather + Mul per layer on every inference.
"""

from __future__ import annotations

import copy
import hashlib
import math
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgebench.compress import COMPRESSORS
from edgebench.compress.base import Compressor, finetune
from edgebench.errors import ConfigError
from edgebench.models.placement import model_device
from edgebench.models.train import Loss
from edgebench.params import check_choice, check_int, check_layers, check_number
from edgebench.variants import Variant, VariantContext, clone, select_layers

__all__ = ["Hashed", "HashedConv2d", "HashedLayer", "HashedLinear", "hash_tables", "is_hashed", "layer_seed",
           "to_dense", "virtual_weight"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_VERSION = "edgebench.hashed.v1"
HASH_DESCRIPTION = ("bucket h(k) = splitmix64(k*0x9E3779B97F4A7C15 + key_h) mod buckets, sign xi(k) = +1/-1 from "
                    "the top bit of splitmix64(k*0x9E3779B97F4A7C15 + key_xi), k = flat row-major index of the "
                    "virtual weight; key_h, key_xi = blake2b-64(layer seed, 'h'|'xi', shape), "
                    "layer seed = blake2b-64(hash_seed, layer name)")


# hash functions -----------------------------------------------------------------------------------------
def _stable_key(*parts: object) -> int:
    """A 63-bit integer from blake2b over the parts' text: the same in every process (unlike ``hash()``)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def layer_seed(hash_seed: int, name: str) -> int:
    """The seed of layer ``name`` in a model hashed with ``hash_seed``."""
    return _stable_key(_VERSION, "layer", hash_seed, name)


def _splitmix64(n: int, key: int) -> np.ndarray:
    """splitmix64 outputs for the flat indices ``0..n-1`` under ``key`` (uint64, wrapping arithmetic)."""
    z = np.arange(n, dtype=np.uint64) * _GOLDEN + np.uint64(key)
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def hash_tables(shape: tuple[int, ...], buckets: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(index, sign)`` of a virtual weight of ``shape``: int64 bucket numbers ``h`` in ``[0, buckets)`` and
    float32 signs ``xi`` in {-1, +1}, from two independently keyed hashes of the flat index."""
    shape = tuple(int(s) for s in shape)
    n = math.prod(shape)
    h = _splitmix64(n, _stable_key(_VERSION, seed, "h", *shape)) % np.uint64(buckets)
    top = _splitmix64(n, _stable_key(_VERSION, seed, "xi", *shape)) >> np.uint64(63)
    index = torch.from_numpy(h.astype(np.int64)).view(shape)
    sign = torch.from_numpy(top.astype(np.float32) * 2.0 - 1.0).view(shape)
    return index, sign


# layers -------------------------------------------------------------------------------------------------
class HashedLayer(nn.Module):
    """What both hashed layers share: the real weights ``w`` (the parameter that stores the layer: edit it to
    change every virtual weight of its buckets), the bias, the hash tables and eq. 3's virtual weight
    (:meth:`weight_virtual`)."""

    virtual_shape: tuple[int, ...]
    buckets: int
    seed: int

    def _setup(self, shape: tuple[int, ...], *, buckets: int, seed: int, bias: bool, out: int, fan_in: int) -> None:
        if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1:
            raise ConfigError(f"{type(self).__name__}: buckets must be an integer >= 1, got {buckets!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"{type(self).__name__}: seed must be an integer, got {seed!r}")
        self.virtual_shape = tuple(int(s) for s in shape)
        self.buckets = buckets
        self.seed = seed
        self._fan_in = max(1, fan_in)
        self.w = nn.Parameter(torch.empty(buckets))
        if bias:
            self.bias: nn.Parameter | None = nn.Parameter(torch.empty(out))
        else:
            self.register_parameter("bias", None)
        index, sign = hash_tables(self.virtual_shape, buckets, seed)
        # Recomputed from (seed, shape) on construction, so not part of the state dict: it holds w and bias only.
        self.register_buffer("index", index, persistent=False)
        self.register_buffer("sign", sign, persistent=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Chen et al.'s default: ``w`` and the bias uniform in ±1/sqrt(fan_in), so each virtual weight has
        the distribution of a fresh ``nn.Linear`` / ``nn.Conv2d`` weight."""
        bound = 1.0 / math.sqrt(self._fan_in)
        self.w.uniform_(-bound, bound, generator=generator)
        if self.bias is not None:
            self.bias.uniform_(-bound, bound, generator=generator)

    def weight_virtual(self) -> torch.Tensor:
        """The virtual weight ``phi(W) = W_h ⊙ xi`` (eq. 3): a gather of ``w`` by ``h``, times ``xi``.

        ``index_select`` rather than ``w[index]``: its backward (``index_add_``) sums the gradients of the
        virtual weights sharing a bucket in a fixed order, while advanced indexing's backward on CPU does not
        with more than two threads, and the same seed must give the same twin on any machine."""
        return self.w.index_select(0, self.index.reshape(-1)).view(self.index.shape) * self.sign

    @torch.no_grad()
    def fit_(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> float:
        """Set ``w`` to the least-squares fit of a dense ``weight`` of the virtual shape: each bucket gets the
        mean of ``xi * W`` over the virtual weights mapped to it (0 for an empty bucket); copy ``bias``.
        Returns the relative error ``||phi(W) - W|| / ||W||`` of the fit."""
        if tuple(weight.shape) != self.virtual_shape:
            raise ValueError(f"fit_: weight of shape {tuple(weight.shape)} != virtual shape {self.virtual_shape}")
        target = weight.detach().to(self.w)
        flat = self.index.reshape(-1)
        sums = torch.zeros_like(self.w).index_add_(0, flat, (target * self.sign).reshape(-1))
        counts = torch.bincount(flat, minlength=self.buckets).to(self.w)
        self.w.copy_(sums / counts.clamp(min=1))
        if bias is not None and self.bias is not None:
            self.bias.copy_(bias.detach())
        norm = float(target.norm())
        return float((self.weight_virtual() - target).norm()) / norm if norm > 0 else 0.0


class HashedLinear(HashedLayer):
    """A fully connected layer whose ``out × in`` virtual weight is hashed into ``buckets`` real weights
    (eq. 3 of seed 000: ``a_i = f(sum_j w_h(i,j) xi(i,j) a_j)``); gradients are eq. 4 (see module doc)."""

    def __init__(self, in_features: int, out_features: int, *, buckets: int, seed: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self._setup((self.out_features, self.in_features), buckets=buckets, seed=seed, bias=bias,
                    out=self.out_features, fan_in=self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight_virtual(), self.bias)

    @classmethod
    def from_dense(cls, layer: nn.Linear, *, buckets: int, seed: int) -> HashedLinear:
        """A hashed twin of ``layer`` with default init (call :meth:`fit_` to fit its weights)."""
        return cls(layer.in_features, layer.out_features, buckets=buckets, seed=seed,
                   bias=layer.bias is not None).to(layer.weight.device, layer.weight.dtype)

    @torch.no_grad()
    def to_dense(self) -> nn.Linear:
        """A plain ``nn.Linear`` holding the materialized virtual weights."""
        dense = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                          device=self.w.device, dtype=self.w.dtype)
        dense.weight.copy_(self.weight_virtual())
        if self.bias is not None:
            dense.bias.copy_(self.bias)
        return dense.train(self.training)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, buckets={self.buckets}, "
                f"seed={self.seed}, bias={self.bias is not None}")


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class HashedConv2d(HashedLayer):
    """A 2-D convolution whose ``out × in/groups × kh × kw`` virtual kernel is hashed into ``buckets`` real
    weights (eq. 3 with ``j`` running over input channel and kernel position); zero padding only."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], *,
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] | str = 0,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, buckets: int, seed: int,
                 bias: bool = True) -> None:
        super().__init__()
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ConfigError(f"HashedConv2d: in_channels {in_channels} and out_channels {out_channels} must be "
                              f"divisible by groups {groups}")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding: tuple[int, int] | str = padding if isinstance(padding, str) else _pair(padding)
        self.dilation = _pair(dilation)
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self._setup(shape, buckets=buckets, seed=seed, bias=bias, out=self.out_channels,
                    fan_in=math.prod(shape[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight_virtual(), self.bias, self.stride, self.padding, self.dilation, self.groups)

    @classmethod
    def from_dense(cls, layer: nn.Conv2d, *, buckets: int, seed: int) -> HashedConv2d:
        """A hashed twin of ``layer`` (zero padding) with default init (call :meth:`fit_` to fit it)."""
        return cls(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                   padding=layer.padding, dilation=layer.dilation, groups=layer.groups, buckets=buckets, seed=seed,
                   bias=layer.bias is not None).to(layer.weight.device, layer.weight.dtype)

    @torch.no_grad()
    def to_dense(self) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` holding the materialized virtual kernel."""
        dense = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, stride=self.stride,
                          padding=self.padding, dilation=self.dilation, groups=self.groups,
                          bias=self.bias is not None, device=self.w.device, dtype=self.w.dtype)
        dense.weight.copy_(self.weight_virtual())
        if self.bias is not None:
            dense.bias.copy_(self.bias)
        return dense.train(self.training)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, buckets={self.buckets}, "
                f"seed={self.seed}, bias={self.bias is not None}")


def is_hashed(module: nn.Module) -> bool:
    """Whether ``module`` is a hashed layer (its weights are the real weights ``w``, not ``weight``)."""
    return isinstance(module, HashedLayer)


def virtual_weight(layer: nn.Module) -> torch.Tensor:
    """The weight ``layer`` computes with: the virtual ``phi(W)`` of a hashed layer, else its ``weight``."""
    return layer.weight_virtual() if isinstance(layer, HashedLayer) else layer.weight


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, new)


def to_dense(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every hashed layer replaced by a plain ``nn.Linear`` / ``nn.Conv2d`` holding
    its virtual weights: the deployable model (ONNX / OpenVINO get Conv/Gemm, not Gather + Mul). Same
    logits as ``model``; ``model`` itself is not changed."""
    if isinstance(model, HashedLayer):
        return model.to_dense()
    dense = copy.deepcopy(model)
    for name, module in list(dense.named_modules()):
        if isinstance(module, HashedLayer):
            _replace(dense, name, module.to_dense())
    return dense


# the compression method ---------------------------------------------------------------------------------
def _parse_rate(value: Any) -> Fraction:
    bad = ConfigError(f"compression method 'hashed': rate must be a number in (0, 1] or a fraction like '1/8' "
                      f"(real weights per virtual weight), got {value!r}")
    if isinstance(value, bool):
        raise bad
    try:
        if isinstance(value, (int, float)):
            if not math.isfinite(value):
                raise bad
            rate = Fraction(repr(float(value)))  # 0.1 -> 1/10, not the binary float's neighbour
        elif isinstance(value, str):
            rate = Fraction("".join(value.split()))
        else:
            raise bad
    except (ValueError, ZeroDivisionError):
        raise bad from None
    if not 0 < rate <= 1:
        raise bad
    return rate


@COMPRESSORS.register("hashed")
class Hashed(Compressor):
    """HashedNets (Chen et al. 2015), the compression of seed ``000`` (Liu et al. 2018, eqs. 3-4, Fig. 3).

    Every selected ``Conv2d`` / ``Linear`` becomes a :class:`HashedConv2d` / :class:`HashedLinear` with
    ``ceil(rate * virtual weights)`` real weights (biases stay dense); the torch twin computes eq. 3, so
    white-box attacks on it are the compression-aware HFGSM / HJSMA of eqs. 6-7. The deployed artifact is
    :func:`to_dense` of the twin.

    Parameters:
        rate: real weights per virtual weight, in (0, 1]: ``0.125`` or ``"1/8"`` ... ``"1/64"`` (seed 000).
        init: ``"distill"`` (default): each bucket starts at the least-squares fit of the base's weights
            (mean of ``xi * W`` over its virtual weights), then the twin is trained against the base as
            teacher (Hinton et al. 2015: ``alpha T^2 KL(p_t^T || p_s^T) + (1 - alpha) CE``);
            ``"scratch"``: a fresh model (``ctx.build_base()``, else the base re-initialized) with
            Chen et al.'s uniform ±1/sqrt(fan_in) init, trained with cross-entropy.
        epochs: training epochs; None: the base's (``ctx.train.epochs``).
        lr: learning rate; None: the base's (not a tenth of it: the shared weights move far from the base's).
        temperature, alpha: distillation temperature (> 0) and weight of the soft loss (in [0, 1]).
        layers: shell globs over module names; None: every Conv2d and Linear.
        hash_seed: seed of the hash functions (see the module doc).
    """

    name: ClassVar[str] = "hashed"

    def __init__(self, *, rate: float | str = 0.125, init: str = "distill", epochs: int | None = None,
                 lr: float | None = None, temperature: float = 4.0, alpha: float = 0.9,
                 layers: list[str] | None = None, hash_seed: int = 0) -> None:
        what = self.what
        self._rate = _parse_rate(rate)
        self.rate = float(self._rate)
        self.init = check_choice("init", init, ("distill", "scratch"), what=what)
        self.epochs = None if epochs is None else check_int("epochs", epochs, what=what, lo=0)
        self.lr = None if lr is None else check_number("lr", lr, what=what, lo=0.0, lo_open=True)
        self.temperature = check_number("temperature", temperature, what=what, lo=0.0, lo_open=True)
        self.alpha = check_number("alpha", alpha, what=what, lo=0.0, hi=1.0)
        self.layers = check_layers(layers, what=what, default="every Conv2d and Linear")
        self.hash_seed = check_int("hash_seed", hash_seed, what=what, lo=0)

    def buckets(self, n_virtual: int) -> int:
        """Real weights of a layer with ``n_virtual`` virtual weights: ``max(1, ceil(rate * n_virtual))``."""
        return max(1, math.ceil(self._rate * n_virtual))

    def _check(self, name: str, layer: nn.Module, ctx: VariantContext) -> None:
        if type(layer) not in (nn.Conv2d, nn.Linear):
            raise ctx.fail(f"hashed: cannot hash a {type(layer).__name__} (only plain Conv2d and Linear; its owner "
                           f"may read .weight directly); leave it out with `layers`", layer=name)
        if isinstance(layer, nn.Conv2d) and layer.padding_mode != "zeros":
            raise ctx.fail(f"hashed: padding_mode {layer.padding_mode!r} is not supported (zeros only)", layer=name)
        if layer.weight.numel() == 0:
            raise ctx.fail("hashed: the layer has no weights to hash", layer=name)

    def _fresh(self, model: nn.Module, ctx: VariantContext) -> nn.Module:
        """The starting model of ``init="scratch"`` (call under a seeded, forked RNG), on ``model``'s device. Its
        weights are drawn on the CPU (the CPU generator the seed sets), then moved: the same start on any device."""
        device = model_device(model)
        if ctx.build_base is not None:
            return ctx.build_base().eval().to(device)
        fresh = clone(model).cpu()
        for module in fresh.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
        return fresh.to(device)

    def apply(self, model: nn.Module, ctx: VariantContext) -> Variant:
        chosen = select_layers(model, self.layers, ctx)
        for name, layer in chosen:
            self._check(name, layer, ctx)
        per_layer: dict[str, dict[str, Any]] = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)
            twin = self._fresh(model, ctx) if self.init == "scratch" else clone(model)
            for name, base_layer in chosen:
                try:
                    layer = twin.get_submodule(name)
                except AttributeError:
                    layer = None
                if type(layer) is not type(base_layer) or layer.weight.shape != base_layer.weight.shape:
                    raise ctx.fail("hashed: ctx.build_base() made a model whose layer differs from the base's",
                                   layer=name)
                n_virtual = layer.weight.numel()
                kind = HashedLinear if isinstance(layer, nn.Linear) else HashedConv2d
                hashed = kind.from_dense(layer, buckets=self.buckets(n_virtual), seed=layer_seed(self.hash_seed, name))
                per_layer[name] = {"virtual": n_virtual, "real": hashed.buckets, "rate": hashed.buckets / n_virtual}
                if self.init == "distill":
                    per_layer[name]["init_rel_error"] = hashed.fit_(layer.weight, layer.bias)
                    # averaging ~1/rate mixed-sign weights per bucket shrinks ||phi(W)|| by ~sqrt(rate): restore
                    # the layer's norm so the distillation starts from the base's activation scale
                    with torch.no_grad():
                        fitted = hashed.weight_virtual().norm()
                        if fitted > 0:
                            hashed.w.mul_(layer.weight.norm() / fitted)
                _replace(twin, name, hashed)

        epochs = self.epochs if self.epochs is not None else ctx.train.epochs
        lr = self.lr or ctx.train.lr
        if self.init == "distill":
            teacher = clone(model).requires_grad_(False)
            loss = _distillation(teacher, self.temperature, self.alpha)
            history = finetune(twin, ctx, epochs, lr=lr, desc="hashed distill", loss=loss)
        else:
            history = finetune(twin, ctx, epochs, lr=lr, desc="hashed scratch")
        twin.eval()

        for name in per_layer:
            per_layer[name]["absmax"] = float(twin.get_submodule(name).w.detach().abs().max())  # Fig. 6's range
        real = sum(p.numel() for p in twin.parameters())
        virtual = real + sum(v["virtual"] - v["real"] for v in per_layer.values())
        info: dict[str, Any] = {
            "rate": self.rate,
            "rate_fraction": str(self._rate),
            "init": self.init,
            "epochs": epochs,
            "lr": lr,
            "per_layer": per_layer,
            "real_params": real,
            "virtual_params": virtual,
            "param_ratio": real / virtual,
            "hash": f"{HASH_DESCRIPTION}; hash_seed {self.hash_seed}",
            "deploy": "dense virtual weights (edgebench.compress.hashed.to_dense)",
        }
        if self.init == "distill":
            info.update(temperature=self.temperature, alpha=self.alpha)
        return Variant(model=twin, info=info, history=history)

    def attach(self, compressed: Variant, model: nn.Module, ctx: VariantContext) -> None:
        """Devices run the dense virtual weights (plain Conv/Gemm), not the gather of the twin."""
        compressed.deploy = to_dense(compressed.model)


def _distillation(teacher: nn.Module, temperature: float, alpha: float) -> Loss:
    """Hinton et al. 2015: ``alpha T^2 KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) CE(s, y)``."""
    ce = nn.CrossEntropyLoss()

    def loss(logits: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = F.log_softmax(teacher(xb) / temperature, dim=1)
        soft = F.kl_div(F.log_softmax(logits / temperature, dim=1), target, reduction="batchmean", log_target=True)
        return alpha * temperature ** 2 * soft + (1.0 - alpha) * ce(logits, yb)

    return loss
