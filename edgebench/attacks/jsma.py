"""JSMA — Jacobian-based Saliency Map Attack (Papernot, McDaniel, Jha, Fredrikson, Celik & Swami, "The
Limitations of Deep Learning in Adversarial Settings", EuroS&P 2016). Norm: L0.

Run on a compressed variant's torch twin, whose forward pass goes through the reshaped (hashed) weights,
this is the HJSMA of Liu et al. 2018 (seed ``000``, eq. 7): the forward derivatives below flow through
the hashed weights. ε is the largest **fraction** of the input features that may change (Papernot's γ); a
call with several ε runs the greedy search **once**: the iterate after ``k`` modified features does not
depend on the budget, so the result at budget ``⌊ε·d⌋`` is a prefix of the run for the largest budget,
snapshotted per sample (the curve "success vs number of perturbed elements" of Fig. 5 of the seed, in one
pass).

Per step, for each sample still running, with ``t`` its target and ``F`` the model's output (see
``output`` below), the forward derivatives::

    α = ∇_x F_t(x)          β = ∇_x Σ_{o≠t} F_o(x)

and, with ``s = sign(θ)`` (``θ > 0`` raises features, ``θ < 0`` lowers them), over the search domain Γ:

* ``pairs=True`` (Papernot's Algorithm 3): the pair ``p ≠ q`` maximizing ``(s·α_pq) · (−s·β_pq)`` subject to
  ``s·α_pq > 0`` and ``s·β_pq < 0``, with ``α_pq = α_p + α_q`` (same for β); both features move by θ.
* ``pairs=False`` (eq. 7 of the seed, Papernot's eq. 8): the single feature maximizing ``(s·α_i) · (−s·β_i)``
  subject to ``s·α_i > 0`` and ``s·β_i < 0``. The seed prints the score as the ratio ``α_i / Σβ_i``, which
  under its own mask is ≤ 0 and would rank the weakest features first; we read it as Papernot's product.

If no candidate satisfies the sign conditions, the step falls back to the feature(s) of Γ with the largest
``s·α`` (the target-gradient rule ART's ``SaliencyMapMethod`` uses for every step), so a sample never
stalls. A chosen feature becomes ``clip_[0,1](x_i + θ)`` and leaves Γ (each feature changes at most once, as
in CleverHans; with ``|θ| = 1`` it is set to 1 or 0). Γ starts as the features not already saturated (< 1
for ``θ > 0``, > 0 for ``θ < 0``).

Choices, stated:

* **F: the softmax by default** (``output="softmax"``, "JSMA-F" in Carlini & Wagner's naming), as in the
  seed: its ``F`` is the output layer with its softmax (eq. 8, Sec. IV-B), and CleverHans' TF
  ``jsma_symbolic`` differentiates the probabilities too. Since ``Σ_o F_o = 1``, ``β = −α`` exactly: the
  sign conditions reduce to ``s·α > 0`` and the score to ``α²``, so a step takes the feature (pair) of Γ
  with the largest ``s·∇F_t``, and one backward pass per step suffices. We differentiate ``log F_t``
  instead of ``F_t``: per sample that scales every feature by ``1/F_t > 0`` (same ranking) and does not
  underflow in float32 when the model is confident (``F_t ≈ e^-100``). ``output="logits"`` ("JSMA-Z", the
  logits as Papernot et al. use them; ART differentiates the model's outputs, logits here, but keeps only
  α) computes α and β with two backward passes and runs the full pairwise search below. Measured on the
  8×8 digits CNN (200 test samples, target ``y+1``, pairs) at ε = 0.05/0.1/0.2/0.3: softmax 0.09/0.45/0.85/
  0.94, logits 0.04/0.17/0.68/0.88; on ``liu2018_mnist`` (1 epoch on 10 k MNIST images, 50 samples) at ε =
  0.02/0.05/0.1/0.15: softmax 0.10/0.58/0.84/0.94, logits 0.04/0.28/0.70/0.86: the softmax map is the
  stronger attack at half the backward passes.
* **Untargeted use** (no ``target``): per sample the target is the most likely wrong class at the start
  (largest logit other than the label), kept fixed; success is any misclassification (checked every step).
  It is the nearest class in logit margin, so usually the cheapest in L0; it is deterministic (ART and
  CleverHans draw a random wrong class, which needs a seed and is on average a harder target); and a fixed
  target keeps the greedy path a single sequence, so the prefix property holds.
* **Budget** per ε: ``⌊ε·d⌋`` features (``d`` the features per sample). With ``pairs=True`` a step changes
  two features, so an odd budget ``2m+1`` ends at ``2m``. A sample stops on success, when its next step
  would exceed the largest budget, when Γ holds fewer features than a step needs, or after ``max_iter``
  steps.

Memory is bounded: the full Jacobian (classes × d) and the ``d × d`` pair matrix are never built. Per
step: one forward with input gradients, one (softmax) or two (logits) backward passes, ``O(batch · d)`` for
α, β and the search bookkeeping, and, for ``output="logits", pairs=True``, the pair search in blocks of
``block`` rows, ``O(batch · block · d)``; when ``block`` is not given, blocks start at 8 rows and double,
up to the largest block under 64 MiB. (With the softmax the best pair is the top two of ``s·α``.)

The logits pair search returns the same pair as the full matrix and usually touches a few blocks only. With
``c = −s·β`` and, for a pair, ``u = s·α_p + s·α_q``, ``v = c_p + c_q``, rows ``p`` are visited in decreasing
order of an upper bound on their best score ``u·v``: the smaller of ``(s·α_p + max s·α) · (c_p + max c_q)``
and the AM-GM bound ``(λu + v/λ)² / 4`` maximized over the same partners, the partners being the ``q`` with
``s·α_q > −s·α_p`` (rows with none get 0); the search stops when the next bound cannot beat the best pair
found. Its time is capped at ``2**26`` pair scores per sample and step: for ``d ≤ 8192`` (MNIST, CIFAR) it
is always exact; for larger inputs it is exact when the pruning ends within ``2**26 / d`` rows, and
otherwise keeps the best pair of those most promising rows. On a 3×224×224 input (d = 150 528) the full
pair matrix would take 84 GiB in float32 (and 2·10¹⁰ scores per step).

Cost per call: ``S + 1`` forward and ``S`` (softmax) or ``2·S`` (logits) backward passes, ``S`` the largest
number of steps any sample takes (the forward of a step also evaluates the previous step's iterate, so
success costs nothing extra).

Example::

    result = JSMA(theta=1.0, pairs=True)(model, x, y, eps=[0.02, 0.05, 0.1, 0.2], target=target)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgebench.attacks import ATTACKS
from edgebench.attacks._gradient import no_gradient
from edgebench.attacks.base import Attack, Passes
from edgebench.errors import ConfigError

# memory budget of one block of the pair search when ``block`` is not given
_BLOCK_BYTES = 64 * 2**20
# bytes per element of a block: two float32 sums, their product (in place) and the bool masks
_BYTES_PER_PAIR = 20
# at most this many pair scores per sample and step: the pair search is exact for d <= 8192 always, and
# beyond that whenever its pruning ends within 2**26 / d rows (the usual case)
_MAX_PAIR_WORK = 2**26


def _best_single(sa: torch.Tensor, c: torch.Tensor, dom: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the feature of ``dom`` maximizing ``sa · c`` with ``sa > 0`` and ``c > 0``: ``(index, found)``."""
    score = (sa * c).masked_fill_(~(dom & (sa > 0) & (c > 0)), 0.0)
    val, p = score.max(1)
    return p, val > 0


def _best_pairs(
    sa: torch.Tensor,
    c: torch.Tensor,
    dom: torch.Tensor,
    block: int | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row, the pair ``p ≠ q`` of ``dom`` maximizing ``(sa_p + sa_q)(c_p + c_q)`` with both sums > 0:
    ``(p, q, found)``. Exact, in blocks of rows ordered by an upper bound, stopping when no remaining row
    can beat the best pair found (see the module docstring)."""
    n, d = sa.shape
    ninf = float("-inf")
    a_dom = sa.masked_fill(~dom, ninf)
    c_dom = c.masked_fill(~dom, ninf)
    # for row p, its admissible partners q have sa_q > -sa_p: a suffix of the features sorted by sa
    a_sorted, a_order = a_dom.sort(1)
    c_suffix = c_dom.gather(1, a_order).flip(1).cummax(1).values.flip(1)
    c_suffix = torch.cat([c_suffix, c_suffix.new_full((n, 1), ninf)], 1)
    first = torch.searchsorted(a_sorted, (-sa).contiguous(), right=True)
    ub_a = sa + a_dom.amax(1, keepdim=True)
    ub_c = c + c_suffix.gather(1, first)
    bound = (ub_a * ub_c).masked_fill_(~(dom & (ub_a > 0) & (ub_c > 0)), 0.0)
    # uv <= (λu + v/λ)² / 4 (AM-GM), tight where the two sums are balanced, which the bound above is not
    # when α and β are correlated; λ evens out the scales of the two derivatives
    lam = (c_dom.amax(1, keepdim=True).clamp_min(1e-30) / a_dom.amax(1, keepdim=True).clamp_min(1e-30)).sqrt()
    mix = lam * sa + c / lam
    mix_suffix = mix.masked_fill(~dom, ninf).gather(1, a_order).flip(1).cummax(1).values.flip(1)
    mix_suffix = torch.cat([mix_suffix, mix_suffix.new_full((n, 1), ninf)], 1)
    ub_mix = (mix + mix_suffix.gather(1, first)).clamp_min_(0.0)
    bound = torch.minimum(bound, ub_mix.square_().mul_(0.25))
    del a_dom, c_dom, a_sorted, a_order, c_suffix, first, ub_a, ub_c, mix, mix_suffix, ub_mix
    bound_sorted, row_order = bound.sort(dim=1, descending=True, stable=True)
    del bound

    best = sa.new_zeros(n)
    best_p = torch.zeros(n, dtype=torch.long, device=sa.device)
    best_q = torch.zeros(n, dtype=torch.long, device=sa.device)
    pos, end, grow = 0, min(d, max(1, _MAX_PAIR_WORK // d)), 8
    while pos < end:
        live = (bound_sorted[:, pos] > best).nonzero().squeeze(1)
        if not live.numel():
            break
        # automatic blocks start small and double (the pruning usually ends within the first rows), up to
        # the memory budget
        size = block if block is not None else min(grow, _BLOCK_BYTES // (len(live) * d * _BYTES_PER_PAIR))
        size = max(1, min(size, end - pos))
        grow *= 2
        rows = row_order[live, pos : pos + size]  # (L, size)
        a_l, c_l, dom_l = sa[live], c[live], dom[live]
        pair_a = a_l.gather(1, rows).unsqueeze(2) + a_l.unsqueeze(1)  # (L, size, d)
        pair_c = c_l.gather(1, rows).unsqueeze(2) + c_l.unsqueeze(1)
        ok = (pair_a > 0) & (pair_c > 0)
        ok &= dom_l.unsqueeze(1)
        ok &= dom_l.gather(1, rows).unsqueeze(2)
        score = pair_a.mul_(pair_c).masked_fill_(~ok, 0.0)
        del pair_c, ok
        score.scatter_(2, rows.unsqueeze(2), 0.0)  # p == q
        val, flat = score.view(len(live), -1).max(1)
        del score, pair_a
        p = rows.gather(1, (flat // d).unsqueeze(1)).squeeze(1)
        better = val > best[live]
        upd = live[better]
        best[upd], best_p[upd], best_q[upd] = val[better], p[better], (flat % d)[better]
        pos += size
    return best_p, best_q, best > 0


@ATTACKS.register("jsma")
class JSMA(Attack):
    """Jacobian-based Saliency Map Attack (HJSMA on a compressed model's twin), L0, targeted or untargeted.

    Args:
        theta: change of each chosen feature (clipped to [0, 1]): ``+1`` sets features to 1 (Papernot's
            default), a negative value lowers them; ``0 < |theta| <= 1``.
        pairs: ``True``: Papernot's pairwise saliency search (two features per step); ``False``: the
            single-feature map of eq. 7 of the seed (one feature per step).
        max_iter: at most this many steps (gradient evaluations) per call; ``None``: bounded by the budget.
        block: rows of the logits pair search per block (memory ``O(batch · block · d)``); ``None``: blocks
            of 8 rows, doubling, up to the largest block under 64 MiB.
        output: ``"softmax"`` (JSMA-F, the seed's F) or ``"logits"`` (JSMA-Z); see the module docstring.
    """

    name = "jsma"
    norm = "l0"

    def __init__(
        self,
        *,
        theta: float = 1.0,
        pairs: bool = True,
        max_iter: int | None = None,
        block: int | None = None,
        output: str = "softmax",
    ) -> None:
        where = "attack 'jsma'"
        if isinstance(theta, bool) or not isinstance(theta, (int, float)) or not (0 < abs(theta) <= 1):
            raise ConfigError(
                f"{where}: theta must be a number with 0 < |theta| <= 1 (inputs are in [0, 1]), got {theta!r}"
            )
        if not isinstance(pairs, bool):
            raise ConfigError(f"{where}: pairs must be true or false, got {pairs!r}")
        for key, value in (("max_iter", max_iter), ("block", block)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{where}: {key} must be an integer >= 1 or None, got {value!r}")
        if output not in ("softmax", "logits"):
            raise ConfigError(f"{where}: output must be 'softmax' or 'logits', got {output!r}")
        self.theta = float(theta)
        self.pairs = pairs
        self.max_iter = max_iter
        self.block = block
        self.output = output

    def run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        eps: float,
        target: torch.Tensor | None,
        passes: Passes,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        xs, preds = self.run_all(model, x, y, eps=(eps,), target=target, passes=passes)
        return xs[0], preds[0]

    def run_all(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        eps: tuple[float, ...],
        target: torch.Tensor | None,
        passes: Passes,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        n = len(x)
        shape = tuple(x.shape[1:])
        d = math.prod(shape)
        budgets = [min(d, math.floor(e * d + 1e-6)) for e in eps]
        step = 2 if self.pairs else 1
        limit = max(budgets, default=0)
        sign = 1.0 if self.theta > 0 else -1.0

        cur = x.detach().reshape(n, d).clone()
        domain = cur < 1.0 if self.theta > 0 else cur > 0.0
        dev = x.device
        count = torch.zeros(n, dtype=torch.long, device=dev)
        outs = [cur.clone() for _ in eps]
        out_preds = [torch.full((n,), -1, dtype=torch.long, device=dev) for _ in eps]
        goal = None if target is None else target.to(dev)
        active = torch.arange(n, device=dev)
        steps = 0
        while active.numel():
            xa = cur[active].view(-1, *shape).requires_grad_(True)
            with torch.enable_grad():
                logits = model(xa)
            passes.forward += 1
            pred = logits.detach().argmax(1)
            if goal is None:  # untargeted: the most likely wrong class at the start (all samples active)
                goal = logits.detach().scatter(1, y.to(dev)[:, None], float("-inf")).argmax(1)
            # this iterate is the answer for every budget it fits in (the last one written wins)
            c_act = count[active]
            for k, budget in enumerate(budgets):
                fit = c_act <= budget
                outs[k][active[fit]] = cur[active[fit]]
                out_preds[k][active[fit]] = pred[fit]
            succ = (pred == goal[active]) if target is not None else (pred != y.to(dev)[active])
            keep = ~succ & (c_act + step <= limit) & (domain[active].sum(1) >= step)
            if self.max_iter is not None and steps >= self.max_iter:
                keep[:] = False
            if not keep.any():
                break
            alpha, beta = self._derivatives(logits, xa, goal[active], keep, passes)
            rows = active[keep]
            sa = sign * alpha[keep].reshape(len(rows), d)
            dom = domain[rows]
            if beta is None:  # softmax: β = −α, the best feature(s) are the top of s·α
                chosen = sa.masked_fill_(~dom, float("-inf")).topk(step, dim=1).indices
            elif self.pairs:
                c = -sign * beta[keep].reshape(len(rows), d)
                p, q, found = _best_pairs(sa, c, dom, self.block)
                if not bool(found.all()):  # fall back to the two largest target derivatives
                    lost = ~found
                    top = sa[lost].masked_fill(~dom[lost], float("-inf")).topk(2, dim=1).indices
                    p[lost], q[lost] = top[:, 0], top[:, 1]
                chosen = torch.stack([p, q], 1)
            else:
                c = -sign * beta[keep].reshape(len(rows), d)
                p, found = _best_single(sa, c, dom)
                if not bool(found.all()):  # fall back to the largest target derivative
                    lost = ~found
                    p[lost] = sa[lost].masked_fill(~dom[lost], float("-inf")).argmax(1)
                chosen = p.unsqueeze(1)
            del alpha, beta, logits, xa
            r = rows.unsqueeze(1).expand_as(chosen)
            cur[r, chosen] = (cur[r, chosen] + self.theta).clamp_(0.0, 1.0)
            domain[r, chosen] = False
            count[rows] += step
            active = rows
            steps += 1
        return [o.view(n, *shape) for o in outs], out_preds

    def _derivatives(
        self, logits: torch.Tensor, xa: torch.Tensor, goal: torch.Tensor, keep: torch.Tensor, passes: Passes
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """For the samples in ``keep``: softmax, ``(∇ log F_t, None)`` (one backward pass; β = −α); logits,
        ``(∇ Z_t, ∇ Σ_{o≠t} Z_o)`` (two backward passes)."""
        w = keep.to(logits.dtype)
        try:
            if self.output == "softmax":
                log_t = logits.log_softmax(1).gather(1, goal[:, None]).squeeze(1)
                (alpha,) = torch.autograd.grad((log_t * w).sum(), xa)
                passes.backward += 1
                return alpha, None
            z_t = logits.gather(1, goal[:, None]).squeeze(1)
            (alpha,) = torch.autograd.grad((z_t * w).sum(), xa, retain_graph=True)
            passes.backward += 1
            (total,) = torch.autograd.grad((logits.sum(1) * w).sum(), xa)
            passes.backward += 1
        except RuntimeError as exc:
            raise no_gradient(self.name, exc) from None
        return alpha, total - alpha
