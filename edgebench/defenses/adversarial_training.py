"""Adversarial training, two recipes, resumable.

* ``mode = "pgd"`` — Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018,
  eq. 2.1: ``min_θ E[max_{‖δ‖∞ ≤ ε} L(θ, x + δ, y)]``, the inner maximum approximated by PGD-L∞ (random start
  in the ε-ball, ``steps`` signed-gradient steps of size α, projection onto the ball and the box [0, 1]); every
  training example is replaced by its PGD example.
* ``mode = "mixed"`` — Kurakin, Goodfellow & Bengio, "Adversarial Machine Learning at Scale", ICLR 2017, as used
  by Wijayanto et al. 2018 (seed ``002``, Sec. IV-B, "adversarial-aware" compression): a share λ = ``ratio`` of
  every batch is replaced by adversarial examples (seed 002: "with a batch size of 256 and λ = 0.5, 128
  adversarial examples and 128 clean examples are used") and the loss is
  ``(1 − λ)·CE(clean part) + λ·CE(adversarial part)`` (each a mean over its part). With ``k = λ·m`` examples of
  a batch of ``m`` adversarial this is the plain mean over the mixed batch, i.e. Kurakin et al.'s
  ``(Σ_clean L + λ_K Σ_adv L) / (m − k + λ_K k)`` with their relative weight ``λ_K = 1``. The adversarial
  examples come from ``attack = "fgsm"`` (Kurakin's one-step method, default) or ``"pgd"``. To avoid *label
  leaking* (Kurakin et al. Sec. 4.4; seed 002 Sec. VI) they are crafted against the model's own prediction by
  default (``labels = "predicted"``); ``mode = "pgd"`` crafts against the true labels, as Madry et al. do.

Adversarial examples are crafted in the training graph, on torch tensors, with the attacks' own helpers
(:mod:`edgebench.attacks._gradient`, the projections of :mod:`edgebench.attacks.base`), the model in eval mode
(BatchNorm statistics are not updated by the attack's forward passes) and the random starts drawn from a
generator seeded with ``ctx.seed``.

The given model is **fine-tuned** (learning rate: a tenth of the base's unless ``lr`` is given) or, with
``from_scratch = true``, trained from a fresh initialization at the base's learning rate, as Madry et al. train
their robust MNIST and CIFAR-10 models (and as seed ``003``'s "Adv." rows, Song et al. 2020, Sec. "Experimental
Evaluations": "Adv. was adversarially-trained by (Madry et al. 2018)"). The fresh model is ``ctx.build_base()``
(the plan's model built anew, as ``hashed``'s ``init = "scratch"``) drawn under ``ctx.seed``; where the given
model's layers differ from the base's (a hashed twin) or no builder is given, the given model with every layer's
``reset_parameters()`` under the seed.

**ε ramp** (``eps_ramp_epochs = R > 0``): from scratch at Madry's ε = 0.3 the network sits at chance for the first
epochs (plans/song2020-quantized.toml's earlier note: 0.096–0.098 clean after one epoch of 6,000 MNIST images;
with a ramp over 2 of 4 epochs, 10-step PGD: 0.948 clean and 38 % PGD-40 accuracy at ε = 0.3 on 200 test images,
docs/reproductions.md); the budget therefore grows linearly
per batch over the first ``R`` epochs (at most the whole training: a shortened run still ends at full ε),
``ε_t = ε · min(1, t / (R · B))`` at the ``t``-th batch (1-based) of ``B`` per epoch, and the PGD step size with it
(``α_t = α · ε_t / ε``), full ε from then on. A common curriculum for
PGD training from scratch (e.g. Gowal et al. 2018's IBP schedule; Madry et al. themselves need none on their
network and 100 000 iterations): a departure recorded in the variant's record (``eps_ramp_epochs``) and in each
epoch's history (``eps``: the budget of its last batch).

**Variant twins.** With ``preserve = "auto"`` (default) the variant keeps the compression it was given. A
layer whose weights take few distinct values (a quantized twin: per output channel at most 256 values, each
shared by 1.25 weights or more on average; one grid per tensor when the channels share their values) stays on
those values: training updates a full-precision shadow copy and the forward pass uses its nearest allowed
value, gradients passing straight through (STE, Bengio et al. 2013), so zero is one level among the others. In
a full-precision layer, weights that are exactly zero (pruned) stay zero and get no gradient. So "quantized
then adversarially trained" is quantization-aware adversarial training on the twin's own grid, and
"adversarially trained then quantized" is this defense followed by a compression method. Hashed layers train
their real weights (the hashing is kept by construction). An NNCF ``int8`` twin is refused
(:func:`~edgebench.defenses.base.check_model`: train first, then add ``int8``). Other choices: ``"grid+zeros"``
(a pruned then quantized twin: zeros frozen on grids too), ``"grid"``, ``"zeros"``, ``"none"`` (every weight
free). Limits of the detection: the allowed values are each
channel's (or the tensor's) values *as found* — a level no weight used is not available — and a layer too
small to show the sharing (8 bits per channel on 9-weight rows) is trained as full precision; the variant
record lists every constrained layer and how (``info["constrained_layers"]``).

**Resumable.** With ``ctx.workdir`` set, a checkpoint (model and optimizer state, epoch, the shuffling, attack
and global RNG states, history) is written after every epoch under ``workdir/adversarial_training-<key>``
(``key``: a hash of the parameters but ``epochs``, the seed, the training settings, the data and the given
model), and a run starts from the newest valid checkpoint there; one that cannot be read or does not match
is skipped with a warning. A resumed run ends with the same weights as an uninterrupted one (CPU).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from edgebench.defenses import DEFENSES
from edgebench.defenses.base import Defense, check_model
from edgebench.errors import ConfigError
from edgebench.models.placement import cpu_state, model_device, to_model
from edgebench.params import check_choice, check_fraction, check_int, check_number
from edgebench.variants import WEIGHTED, Variant, VariantContext, clone

log = logging.getLogger(__name__)

MAX_LEVELS = 256  # at most this many distinct values per channel: a quantized layer (8 bits or fewer)
SHARING = 1.25  # ... each shared by this many weights of the channel on average
_FORMAT = "edgebench.adversarial_training.v1"
_CKPT = re.compile(r"^epoch-(\d{4,})\.pt$")


# in-graph attacks ---------------------------------------------------------------------------------------
def _input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    from edgebench.attacks._gradient import cross_entropy

    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(cross_entropy(model(x), y, None).sum(), x)
    return grad


def fgsm_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float) -> torch.Tensor:
    """FGSM (Goodfellow et al. 2015): ``clip_[0,1](x + ε·sign(∇_x CE))``."""
    return torch.clamp(x + eps * _input_gradient(model, x, y).sign(), 0.0, 1.0).detach()


def mixed_loss(model: nn.Module, *, ratio: float, eps: float) -> Any:
    """A training loss (``edgebench.models.train``'s ``loss(logits, x, y)``) that mixes adversarial examples into
    every batch as in seed 002's Algorithm 1 (Kurakin et al. 2017): the first ``round(ratio·m)`` samples of
    each batch of ``m`` are replaced by FGSM examples at ``eps``, crafted against the model's own prediction
    (no label leaking), and the loss is ``(1 − λ)·CE(clean part) + λ·CE(adversarial part)``, λ = ``ratio``.
    Lets another method's retraining (INQ's) train adversarially without a loop of its own."""

    def loss(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        k = int(round(ratio * len(y)))
        if k == 0:
            return F.cross_entropy(logits, y)
        was_training = model.training
        model.eval()  # the attack's passes leave BatchNorm statistics alone
        x_adv = fgsm_examples(model, x[:k], logits[:k].detach().argmax(1), eps=eps)
        model.train(was_training)
        adv = F.cross_entropy(model(x_adv), y[:k])
        if k == len(y):
            return adv
        return ratio * adv + (1.0 - ratio) * F.cross_entropy(logits[k:], y[k:])

    return loss


def pgd_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int, alpha: float,
                 random_start: bool, generator: torch.Generator) -> torch.Tensor:
    """PGD-L∞ (Madry et al. 2018): ``x_{t+1} = Π_{B∞(x,ε) ∩ [0,1]}(x_t + α·sign(∇_x CE(x_t)))`` from a uniform
    start in the ball (or from ``x``); the last iterate."""
    from edgebench.attacks._gradient import random_start_linf
    from edgebench.attacks.base import project_linf

    x_adv = random_start_linf(x, eps, generator) if random_start else x.clone()
    for _ in range(steps):
        x_adv = project_linf(x_adv + alpha * _input_gradient(model, x_adv, y).sign(), x, eps)
    return x_adv.detach()


# keeping a compressed twin compressed -------------------------------------------------------------------
class _StraightThrough(torch.autograd.Function):
    """Forward: the projected weight ``q``. Backward: the gradient to the shadow weight, masked (a pruned
    weight gets none)."""

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor, q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(mask)
        return q

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (mask,) = ctx.saved_tensors
        return grad * mask, None, None


class Constrained(nn.Module):
    """A weight parametrization: zeros of ``mask`` stay zero and, with ``levels`` (sorted allowed values per
    output channel, or one row for the whole tensor), every weight is its nearest allowed value."""

    def __init__(self, mask: torch.Tensor, levels: torch.Tensor | None) -> None:
        super().__init__()
        self.register_buffer("mask", mask)
        self.register_buffer("levels", levels if levels is not None else torch.empty(0))

    @torch.no_grad()
    def project(self, w: torch.Tensor) -> torch.Tensor:
        q = w * self.mask
        if self.levels.numel():
            rows = self.levels.shape[0]
            flat = q.reshape(rows, -1).contiguous()
            hi = torch.searchsorted(self.levels, flat).clamp(max=self.levels.shape[1] - 1)
            lo = (hi - 1).clamp(min=0)
            v_hi, v_lo = self.levels.gather(1, hi), self.levels.gather(1, lo)
            q = torch.where((flat - v_lo).abs() <= (v_hi - flat).abs(), v_lo, v_hi).view_as(w) * self.mask
        return q

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return _StraightThrough.apply(w, self.project(w), self.mask)


def grid_of(w: torch.Tensor) -> tuple[torch.Tensor | None, str]:
    """The allowed values of a quantized weight tensor, or None if it looks full-precision; and a description.

    Quantized: on average every distinct nonzero value of a channel is shared by at least ``SHARING`` weights
    of that channel (trained float weights are all distinct but for rare rounding ties) and no channel has more
    than :data:`MAX_LEVELS` values. One grid for the tensor when the channels' values together are at most
    twice the richest channel's (a per-tensor grid, INQ's powers of two), else one grid per output channel;
    0 is a level when the tensor has zeros."""
    rows = w.detach().reshape(w.shape[0], -1)
    per_row = [torch.unique(r[r != 0]) for r in rows]  # sorted
    sizes = [len(u) for u in per_row]
    nnz = int((rows != 0).sum())
    if nnz == 0 or max(sizes) > MAX_LEVELS or nnz < SHARING * sum(sizes):
        return None, "full precision"
    zero = torch.zeros(1 if nnz < rows.numel() else 0, dtype=w.dtype, device=w.device)
    union = torch.unique(torch.cat([*per_row, zero]))
    if len(union) <= min(MAX_LEVELS, 2 * max(sizes) + 1):
        return union.unsqueeze(0), f"{len(union)} values per tensor"
    grids = [torch.unique(torch.cat([u, zero])) for u in per_row]
    width = max(len(g) for g in grids)
    padded = torch.stack([torch.cat([g, g[-1:].expand(width - len(g))]) if len(g)
                          else torch.zeros(width, dtype=w.dtype, device=w.device) for g in grids])
    return padded, f"<= {width} values per output channel"


def constrain(model: nn.Module, preserve: str, *, source: nn.Module | None = None) -> dict[str, str]:
    """Register :class:`Constrained` on the Conv2d / Linear weights of ``model`` that need it, reading the zeros
    and the allowed values from the same layer of ``source`` (default: ``model`` itself); describe them.
    ``preserve``: ``"auto"``, ``"grid"``, ``"zeros"``, ``"grid+zeros"`` or ``"none"`` (see the module doc)."""
    described: dict[str, str] = {}
    if preserve == "none":
        return described
    source = model if source is None else source
    for name, layer in model.named_modules():
        if not isinstance(layer, WEIGHTED) or parametrize.is_parametrized(layer, "weight"):
            continue
        w = source.get_submodule(name).weight.detach()
        if w.numel() == 0:
            continue
        levels, what = grid_of(w) if preserve in ("auto", "grid", "grid+zeros") else (None, "full precision")
        # auto: a full-precision layer's zeros are pruned weights; on a grid with a zero level, 0 is just a level
        keep_zeros = preserve in ("zeros", "grid+zeros") or (preserve == "auto" and levels is None)
        mask = (w != 0).to(w.dtype) if keep_zeros else torch.ones_like(w)
        zeros = int((mask == 0).sum())
        if levels is None and zeros == 0:
            continue
        parametrize.register_parametrization(layer, "weight", Constrained(mask, levels), unsafe=True)
        kept = [f"{zeros} zeros kept"] if zeros else []
        described[name] = ", ".join(kept + ([f"on its grid: {what} (straight-through)"] if levels is not None
                                            else []))
    return described


def release(model: nn.Module) -> None:
    """Replace every :class:`Constrained` weight by its exact projection (a plain parameter again)."""
    for layer in model.modules():
        if parametrize.is_parametrized(layer, "weight") and isinstance(layer.parametrizations.weight[0], Constrained):
            with torch.no_grad():
                q = layer.parametrizations.weight[0].project(layer.parametrizations.weight.original)
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
            with torch.no_grad():
                layer.weight.copy_(q)


def _same_layout(a: nn.Module, b: nn.Module) -> bool:
    """Whether two models have the same state-dict keys and shapes (a fresh base can replace the given model)."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)


# checkpoints --------------------------------------------------------------------------------------------
def _digest(*parts: Any) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        if isinstance(p, torch.Tensor):
            h.update(p.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(p, np.ndarray):
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\x1f")
    return h.hexdigest()


class _Checkpoints:
    """``epoch-NNNN.pt`` files in one folder: atomic writes, newest valid first, the last two kept."""

    def __init__(self, folder: Path, fingerprint: str) -> None:
        self.folder = folder
        self.fingerprint = fingerprint

    def save(self, epoch: int, state: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"epoch-{epoch:04d}.pt"
        tmp = path.with_suffix(".tmp")
        # on the CPU: a checkpoint written on a GPU resumes anywhere
        torch.save(cpu_state({"format": _FORMAT, "fingerprint": self.fingerprint, "epoch": epoch, **state}), tmp)
        os.replace(tmp, path)
        for old in self._epochs():
            if old < epoch - 1:
                (self.folder / f"epoch-{old:04d}.pt").unlink(missing_ok=True)

    def _epochs(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        return sorted((int(m.group(1)) for p in self.folder.iterdir() if (m := _CKPT.match(p.name))), reverse=True)

    def newest(self, max_epoch: int) -> dict[str, Any] | None:
        """The newest readable checkpoint of this run with epoch <= ``max_epoch``, or None."""
        for epoch in self._epochs():
            if epoch > max_epoch:
                continue
            path = self.folder / f"epoch-{epoch:04d}.pt"
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # a torn or corrupt file: any reader error
                log.warning("adversarial_training: ignoring unreadable checkpoint %s (%s: %s)", path,
                            type(exc).__name__, exc)
                continue
            if not isinstance(state, dict) or state.get("format") != _FORMAT \
                    or state.get("fingerprint") != self.fingerprint or state.get("epoch") != epoch:
                log.warning("adversarial_training: ignoring checkpoint %s (written by another run or version)", path)
                continue
            return state
        return None


# the defense --------------------------------------------------------------------------------------------
@DEFENSES.register("adversarial_training")
class AdversarialTraining(Defense):
    """Adversarial training of the given model (a base or a compressed twin), resumable from ``ctx.workdir``.

    Args:
        mode: ``"pgd"`` (Madry et al. 2018: PGD examples only) or ``"mixed"`` (Kurakin et al. 2017 / seed 002:
            a share ``ratio`` of each batch adversarial).
        eps: L∞ budget on inputs in [0, 1] (Madry et al.: 0.3 on MNIST, 8/255 on CIFAR-10).
        epochs: training epochs; None: the base's (``ctx.train.epochs``).
        lr: learning rate; None: a tenth of the base's (fine-tuning), the base's with ``from_scratch``.
        ratio: λ in [0, 1], share of each batch made adversarial (``mode = "mixed"`` only; default 0.5 as in
            seed 002).
        attack: ``"fgsm"`` or ``"pgd"``, the examples of ``mode = "mixed"`` (``mode = "pgd"``: PGD).
        steps: PGD steps.
        step_size: PGD step α in input units; None: ``2.5·ε/steps`` (Madry et al.'s rule, as the ``pgd`` attack).
        random_start: PGD starts from a uniform point of the ε-ball.
        labels: ``"true"`` or ``"predicted"`` (the model's top-1, against label leaking); None: ``"true"`` for
            ``mode = "pgd"``, ``"predicted"`` for ``"mixed"``.
        from_scratch: train from a fresh initialization (``ctx.build_base()`` under ``ctx.seed``, see the module
            doc) instead of fine-tuning the given model.
        eps_ramp_epochs: grow ε (and the step size) linearly per batch over this many first epochs; 0: none.
        preserve: ``"auto"``, ``"grid"``, ``"zeros"``, ``"grid+zeros"`` or ``"none"``: how much of a compressed
            twin's structure to keep (see the module doc).
    """

    name: ClassVar[str] = "adversarial_training"

    def __init__(self, *, mode: str = "pgd", eps: float = 0.1, epochs: int | None = None, lr: float | None = None,
                 ratio: float | None = None, attack: str | None = None, steps: int = 10,
                 step_size: float | None = None, random_start: bool = True, labels: str | None = None,
                 from_scratch: bool = False, preserve: str = "auto", eps_ramp_epochs: int = 0) -> None:
        n = self.name
        self.mode = check_choice("mode", mode, ("pgd", "mixed"), what=self.what)
        self.attack = check_choice("attack", attack if attack is not None else (
            "pgd" if mode == "pgd" else "fgsm"), ("fgsm", "pgd"), what=self.what)
        self.labels = check_choice("labels", labels if labels is not None else (
            "true" if mode == "pgd" else "predicted"), ("true", "predicted"), what=self.what)
        self.preserve = check_choice("preserve", preserve, ("auto", "grid", "zeros", "grid+zeros", "none"),
                                     what=self.what)
        self.epochs = None if epochs is None else check_int("epochs", epochs, what=self.what, lo=0)
        self.steps = check_int("steps", steps, what=self.what, lo=1)
        self.eps_ramp_epochs = check_int("eps_ramp_epochs", eps_ramp_epochs, what=self.what, lo=0)
        if self.mode == "pgd" and self.attack != "pgd":
            raise ConfigError(f"defense {n!r}: attack {attack!r} needs mode = 'mixed' (mode 'pgd' trains on PGD "
                              "examples only)")
        if ratio is not None:
            check_fraction("ratio", ratio, what=self.what)
        if self.mode == "pgd" and ratio is not None and ratio != 1:
            raise ConfigError(f"defense {n!r}: ratio {ratio!r} needs mode = 'mixed' (mode 'pgd' makes the whole "
                              "batch adversarial); set mode = 'mixed' or leave ratio out")
        self.ratio = 1.0 if self.mode == "pgd" else check_fraction(
            "ratio", 0.5 if ratio is None else ratio, what=self.what)
        self.eps = check_fraction("eps", eps, what=self.what)
        self.lr = None if lr is None else check_number("lr", lr, what=self.what, lo=0.0, lo_open=True)
        self.step_size = None if step_size is None else check_number("step_size", step_size, what=self.what, lo=0.0,
                                                                     lo_open=True)
        for key, value in (("random_start", random_start), ("from_scratch", from_scratch)):
            if not isinstance(value, bool):
                raise ConfigError(f"defense {n!r}: {key} must be true or false, got {value!r}")
        self.random_start = random_start
        self.from_scratch = from_scratch

    # -- the examples ---------------------------------------------------------------------------------------
    def alpha(self) -> float:
        return self.step_size if self.step_size is not None else 2.5 * self.eps / self.steps

    def eps_at(self, batch: int, per_epoch: int, epochs: int) -> float:
        """The budget at the ``batch``-th batch (1-based, counted over all epochs) of ``per_epoch`` per epoch, in a
        training of ``epochs``: the ramp spans ``min(eps_ramp_epochs, epochs)`` epochs (full ε at the end)."""
        ramp = min(self.eps_ramp_epochs, epochs)
        if ramp == 0:
            return self.eps
        return self.eps * min(1.0, batch / (ramp * max(per_epoch, 1)))

    def _craft(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator,
               eps: float | None = None) -> torch.Tensor:
        eps = self.eps if eps is None else eps
        was_training = model.training
        model.eval()
        try:
            if self.labels == "predicted":
                with torch.no_grad():
                    y = model(x).argmax(1)
            if eps == 0:
                return x.clone()
            if self.attack == "fgsm":
                return fgsm_examples(model, x, y, eps=eps)
            return pgd_examples(model, x, y, eps=eps, steps=self.steps, alpha=self.alpha() * eps / self.eps,
                                random_start=self.random_start, generator=gen)
        finally:
            model.train(was_training)

    # -- apply ----------------------------------------------------------------------------------------------
    def _start(self, model: nn.Module, ctx: VariantContext) -> tuple[nn.Module, dict[str, str]]:
        """The model to train (clone, maybe re-initialized) with its constraints registered."""
        twin = clone(model)
        if self.from_scratch:  # drawn on the CPU under the seed, then moved: the same start on any device
            device = model_device(twin)
            twin.cpu()
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(ctx.seed)
                fresh = ctx.build_base() if ctx.build_base is not None else None
                if fresh is not None and _same_layout(fresh, twin):
                    twin.load_state_dict(fresh.state_dict())
                else:
                    for module in twin.modules():
                        reset = getattr(module, "reset_parameters", None)
                        if callable(reset) and module is not twin:
                            reset()
            twin.to(device)
        # from scratch: the zeros and grid come from the given twin, the values from the fresh init
        return twin, constrain(twin, self.preserve, source=model)

    def apply(self, model: nn.Module, ctx: VariantContext) -> Variant:
        check_model(model, ctx, method=self.name)
        epochs = self.epochs if self.epochs is not None else ctx.train.epochs
        lr = self.lr if self.lr is not None else (ctx.train.lr if self.from_scratch else ctx.train.lr / 10)
        cfg = ctx.train
        twin, described = self._start(model, ctx)
        params = [p for p in twin.parameters() if p.requires_grad]
        if not params:
            raise ctx.fail(f"{self.name}: the model has no trainable parameter")
        if cfg.optimizer == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)
        else:
            opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=cfg.weight_decay)
        shuffle = torch.Generator().manual_seed(ctx.seed)
        attack_gen = torch.Generator().manual_seed(ctx.seed + 1)
        history: list[dict[str, Any]] = []
        start_epoch, resumed_from = 0, None
        store = self._checkpoints(model, ctx, lr)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)
            if store is not None and (ck := store.newest(epochs)) is not None:
                twin.load_state_dict(ck["model"])
                opt.load_state_dict(ck["optimizer"])
                shuffle.set_state(ck["shuffle_rng"])
                attack_gen.set_state(ck["attack_rng"])
                torch.set_rng_state(ck["torch_rng"])
                history = list(ck["history"])
                start_epoch = resumed_from = int(ck["epoch"])
                log.info("adversarial_training: %s resumes after epoch %d of %d from %s", ctx.where, start_epoch,
                         epochs, store.folder)
            xt, yt = np.asarray(ctx.x_train), np.asarray(ctx.y_train)  # on the host; batches move to the model
            for epoch in range(start_epoch, epochs):
                history.append(self._epoch(twin, opt, xt, yt, cfg.batch_size, shuffle, attack_gen, epochs, epoch + 1))
                log.debug("adversarial_training epoch %d: %s", epoch + 1, history[-1])
                if store is not None:
                    store.save(epoch + 1, {"model": twin.state_dict(), "optimizer": opt.state_dict(),
                                           "shuffle_rng": shuffle.get_state(), "attack_rng": attack_gen.get_state(),
                                           "torch_rng": torch.get_rng_state(), "history": history})
        release(twin)
        twin.eval()
        info: dict[str, Any] = {
            "mode": self.mode, "recipe": "Madry et al. 2018 (PGD examples only)" if self.mode == "pgd" else
            "Kurakin et al. 2017 / Wijayanto et al. 2018 (clean and adversarial examples mixed at ratio lambda)",
            "eps": self.eps, "attack": self.attack, "ratio": self.ratio, "labels": self.labels,
            "steps": self.steps if self.attack == "pgd" else 1,
            "step_size": self.alpha() if self.attack == "pgd" else self.eps,
            "random_start": self.random_start if self.attack == "pgd" else False,
            "epochs": epochs, "epochs_done": len(history), "resumed_from_epoch": resumed_from, "lr": lr,
            "optimizer": cfg.optimizer, "batch_size": cfg.batch_size, "from_scratch": self.from_scratch,
            "eps_ramp_epochs": self.eps_ramp_epochs,
            "preserve": self.preserve, "constrained_layers": described,
            "checkpoints": str(store.folder) if store is not None else None,
        }
        return Variant(model=twin, info=info, history=history)

    def _epoch(self, model: nn.Module, opt: torch.optim.Optimizer, xt: np.ndarray, yt: np.ndarray,
               batch_size: int, shuffle: torch.Generator, attack_gen: torch.Generator, epochs: int,
               epoch: int) -> dict[str, Any]:
        model.train()
        order = torch.randperm(len(xt), generator=shuffle).numpy()
        sums = {"loss": 0.0, "adv_correct": 0, "adv_total": 0, "clean_correct": 0, "clean_total": 0}
        per_epoch = -(-len(order) // batch_size)
        eps = self.eps
        for b, i in enumerate(range(0, len(order), batch_size)):
            idx = order[i:i + batch_size]
            xb, yb = to_model(model, xt[idx], yt[idx])
            k = len(idx) if self.mode == "pgd" else int(round(self.ratio * len(idx)))
            eps = self.eps_at((epoch - 1) * per_epoch + b + 1, per_epoch, epochs)
            x_adv = self._craft(model, xb[:k], yb[:k], attack_gen, eps) if k else xb[:0]
            opt.zero_grad(set_to_none=True)
            logits = model(torch.cat([x_adv, xb[k:]]))
            loss = self._loss(logits, yb, k)
            loss.backward()
            opt.step()
            pred = logits.detach().argmax(1)
            sums["loss"] += float(loss.detach()) * len(idx)
            sums["adv_correct"] += int((pred[:k] == yb[:k]).sum())
            sums["adv_total"] += k
            sums["clean_correct"] += int((pred[k:] == yb[k:]).sum())
            sums["clean_total"] += len(idx) - k
        n = max(len(order), 1)
        out: dict[str, Any] = {"epoch": epoch, "loss": sums["loss"] / n, "eps": eps}
        if sums["adv_total"]:
            out["train_adv_acc"] = sums["adv_correct"] / sums["adv_total"]
        if sums["clean_total"]:
            out["train_clean_acc"] = sums["clean_correct"] / sums["clean_total"]
        return out

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
        """``(1 − λ)·CE(clean part) + λ·CE(adversarial part)``; a part that is empty drops out."""
        if k in (0, len(y)):
            return F.cross_entropy(logits, y)
        return (self.ratio * F.cross_entropy(logits[:k], y[:k])
                + (1.0 - self.ratio) * F.cross_entropy(logits[k:], y[k:]))

    def _checkpoints(self, model: nn.Module, ctx: VariantContext, lr: float) -> _Checkpoints | None:
        if ctx.workdir is None:
            return None
        params = {k: v for k, v in self.params().items() if k != "epochs"}
        fingerprint = _digest(_FORMAT, params, ctx.seed, asdict(ctx.train) | {"lr": lr, "epochs": None,
                                                                               "seed": None},
                              [(k, list(v.shape)) for k, v in model.state_dict().items()],
                              *model.state_dict().values(), ctx.x_train, ctx.y_train)
        return _Checkpoints(Path(ctx.workdir) / f"{self.name}-{fingerprint[:16]}", fingerprint)
