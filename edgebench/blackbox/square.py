"""Square Attack (Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient black-box
adversarial attack via random search", ECCV 2020, Algorithms 1-3). Score-based, L∞ or L2 (``norm``). DEVICE SIDE:
numpy only.

Random search on the scores: each iteration changes one random square window of the current best perturbation
and keeps the change if the loss decreases (one query per sample and iteration). As in the authors' code
(github.com/max-andr/square-attack, ``attack.py``):

- loss: the margin ``z_y - max_{j != y} z_j`` untargeted, the cross-entropy of the target when targeted
  (``loss = "margin"`` or ``"ce"`` chooses either); a sample stops once its margin is <= 0 (it is fooled).
- the window's side ``s = round(sqrt(p · d / c))`` (``d`` the input size, ``c`` the channels) follows the
  piecewise-constant schedule of ``p`` (``p_init`` halved at 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000
  of every 10,000 queries: the schedule is over the query budget).
- L∞ (Alg. 2): init by vertical stripes ``x + ε · {±1}^{c×1×w}``; a step sets the window of every channel to
  ``±ε`` (one sign per channel), re-drawn while that would not change the image; ``p_init = 0.05``, window side
  in ``[1, h - 1]``.
- L2 (Alg. 3): init by a grid of ``h // 5``-sized "centred squares" (two opposite pseudo-Gaussian bumps) with
  random signs per channel, scaled to norm ε; a step moves the mass of a second window into the first one, adds
  a new pair of bumps there and rescales so that the whole perturbation has norm ε; ``p_init = 0.1``, odd window
  side ``>= 3``.

One difference from the authors' batch code: the windows are drawn per sample (the authors draw one per
iteration for the whole batch in L2 and per sample in L∞), so that a sample's attack does not depend on which
other samples are still being attacked. Queries: one clean query, one for the init, one per iteration, at most
``max_queries`` in all (the paper's 10,000 by default).

Example::

    result = run_query_attack("square", {"norm": "linf", "max_queries": 1000}, predict, x, y, eps=[8 / 255])
"""

from __future__ import annotations

import functools
import math

import numpy as np

from edgebench.blackbox import QUERY_ATTACKS
from edgebench.blackbox._common import Queries, QueryAttack, cross_entropy, margin
from edgebench.errors import AttackError, ConfigError

#: the schedule of p over 10,000 queries: ``p_init / 2**k`` after the k-th boundary (the authors' ``p_selection``)
_BOUNDARIES = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def p_selection(p_init: float, it: int, n_iters: int) -> float:
    """The fraction of the input changed at iteration ``it`` of ``n_iters`` (the authors' schedule, rescaled
    to the budget)."""
    it = int(it / n_iters * 10000)
    halvings = sum(it > b for b in _BOUNDARIES)
    return p_init if it > 10000 else p_init / 2 ** halvings


def _rectangles(rows: int, cols: int) -> np.ndarray:
    """One pseudo-Gaussian bump on a ``rows x cols`` grid: nested squares of weight ``1 / (k + 1)^2`` around the
    centre, unit L2 norm (the authors' ``pseudo_gaussian_pert_rectangles``)."""
    delta = np.zeros((rows, cols))
    r, c = rows // 2, cols // 2
    for k in range(max(r + 1, c + 1)):
        delta[max(r, 0):min(r + 2 * k + 1, rows), max(c, 0):min(c + 2 * k + 1, cols)] += 1.0 / (k + 1) ** 2
        r, c = r - 1, c - 1
    total = np.sqrt((delta ** 2).sum())
    return delta / total if total > 0 else delta


def bumps(s: int, rng: np.random.Generator) -> np.ndarray:
    """The ``s x s`` "centred square" of the L2 attack: a bump and its negative side by side, unit L2 norm,
    transposed with probability 1/2 (the authors' ``meta_pseudo_gaussian_pert``)."""
    delta = np.zeros((s, s))
    delta[:s // 2] = _rectangles(s // 2, s)
    delta[s // 2:] = -_rectangles(s - s // 2, s)
    delta /= max(np.sqrt((delta ** 2).sum()), 1e-12)
    return delta.T.copy() if rng.random() > 0.5 else delta


def window_index(top: np.ndarray, left: np.ndarray, s: int, c: int) -> tuple[np.ndarray, ...]:
    """Index arrays selecting the ``s x s`` window at ``(top[i], left[i])`` of every channel of sample ``i``
    of an ``(m, c, h, w)`` array: ``arr[index]`` has shape ``(m, c, s, s)``."""
    span = np.arange(s)
    return (np.arange(len(top))[:, None, None, None], np.arange(c)[None, :, None, None],
            (top[:, None] + span)[:, None, :, None], (left[:, None] + span)[:, None, None, :])


def window_flat(top: np.ndarray, left: np.ndarray, s: int, shape: tuple[int, ...]) -> np.ndarray:
    """The flat indices, in a sample's ``c · h · w`` features, of its ``s x s`` window of every channel:
    ``(m, c · s · s)``, channel-major."""
    _, c, h, w = shape
    return (top * w + left)[:, None] + _window_offsets(s, c, h, w)[None, :]


@functools.lru_cache(maxsize=64)
def _window_offsets(s: int, c: int, h: int, w: int) -> np.ndarray:
    span = np.arange(s)
    return (np.arange(c)[:, None, None] * (h * w) + span[None, :, None] * w + span[None, None, :]).reshape(-1)


def window_mask(top: np.ndarray, left: np.ndarray, s: int, h: int, w: int) -> np.ndarray:
    """Boolean ``(m, 1, h, w)`` masks of the windows."""
    rows = (np.arange(h)[None] >= top[:, None]) & (np.arange(h)[None] < top[:, None] + s)
    cols = (np.arange(w)[None] >= left[:, None]) & (np.arange(w)[None] < left[:, None] + s)
    return (rows[:, :, None] & cols[:, None, :])[:, None]


def _signs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform ±1 (float32) of ``shape``."""
    return (rng.integers(0, 2, size=shape) * 2 - 1).astype(np.float32)


def _l2_normalize(delta: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return delta / np.maximum(np.sqrt((delta ** 2).sum(axis=axes, keepdims=True)), 1e-12)


@QUERY_ATTACKS.register("square")
class SquareAttack(QueryAttack):
    """Square Attack, L∞ or L2, untargeted or targeted.

    Args:
        norm: ``"linf"`` or ``"l2"``: the budget norm.
        max_queries: the query budget per sample and ε (the clean query included); the paper's 10,000.
        p_init: the initial fraction of the input changed per step; default 0.05 (L∞) or 0.1 (L2), the paper's.
        loss: ``"margin"`` or ``"ce"``; default the paper's: margin untargeted, cross-entropy targeted.
        seed: seed of the random search (the same at every ε).
    """

    name = "square"
    norm = "linf"  # the default (an instance sets its own)

    def __init__(self, *, norm: str = "linf", max_queries: int = 10000, p_init: float | None = None,
                 loss: str | None = None, seed: int = 0) -> None:
        self._setup(norm, max_queries, seed, least=2)
        where = f"attack {self.name!r}"
        if p_init is None:
            p_init = 0.05 if norm == "linf" else 0.1
        if isinstance(p_init, bool) or not isinstance(p_init, (int, float)) or not 0 < p_init <= 1:
            raise ConfigError(f"{where}: p_init must be a number in (0, 1], got {p_init!r}")
        if loss not in (None, "margin", "ce"):
            raise ConfigError(f"{where}: loss must be 'margin' or 'ce' (or left out), got {loss!r}")
        self.p_init = float(p_init)
        self.loss = loss

    def attack(self, queries: Queries, x: np.ndarray, label: np.ndarray, idx: np.ndarray, eps: float,
               targeted: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if x.ndim != 4 or x.shape[2] < 2 or x.shape[3] < 2:
            raise AttackError(f"attack {self.name!r}: needs images (N, C, H, W) with H, W >= 2, got shape "
                              f"{x.shape}")
        use_ce = self.loss == "ce" or (self.loss is None and targeted)

        def losses(scores: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            m = margin(scores, label[rows], targeted)
            return (cross_entropy(scores, label[rows], targeted) if use_ce else m), m

        x0 = x[idx]
        init = self._init_linf if self.norm == "linf" else self._init_l2
        x_best = init(x0, eps, rng)
        scores = queries(x_best, idx)
        loss_min, margin_min = losses(scores, idx)
        pred = scores.argmax(axis=1)
        step = self._step_linf if self.norm == "linf" else self._step_l2
        for it in range(self.max_queries - 2):  # the clean query and the init's are spent
            active = np.flatnonzero(margin_min > 0)
            if not len(active):
                break
            p = p_selection(self.p_init, it, self.max_queries)
            x_new = step(x0[active], x_best[active], eps, p, rng)
            scores = queries(x_new, idx[active])
            loss, marg = losses(scores, idx[active])
            better = loss < loss_min[active]
            took = active[better]
            x_best[took] = x_new[better]
            loss_min[took], margin_min[took] = loss[better], marg[better]
            pred[took] = scores[better].argmax(axis=1)
        return x_best, pred

    # L∞ (Algorithm 2)
    @staticmethod
    def _init_linf(x0: np.ndarray, eps: float, rng: np.random.Generator) -> np.ndarray:
        n, c, _, w = x0.shape
        return np.clip(x0 + eps * _signs(rng, (n, c, 1, w)), 0.0, 1.0)

    @staticmethod
    def _step_linf(x0: np.ndarray, x_best: np.ndarray, eps: float, p: float,
                   rng: np.random.Generator) -> np.ndarray:
        m, c, h, w = x0.shape
        s = min(max(int(round(math.sqrt(p * h * w))), 1), h - 1, w - 1)
        u = rng.random((m, 2 + c))  # one draw for the window's corner and the signs: numpy's per-call cost dominates
        top, left = (u[:, 0] * (h - s)).astype(np.int64), (u[:, 1] * (w - s)).astype(np.int64)
        signs = np.where(u[:, 2:] < 0.5, -eps, eps).astype(np.float32)[:, :, None]
        rows, flat = np.arange(m)[:, None], window_flat(top, left, s, x0.shape)
        base = x0.reshape(m, -1)[rows, flat].reshape(m, c, s * s)
        new = np.clip(base + signs, 0.0, 1.0)
        # the authors re-draw the signs while they would not change the image. Per channel at most one sign leaves
        # the window as it is (both would need x + ε and x - ε to clip to the same value), so the draw that
        # changes nothing is unique, and flipping it by a uniform non-zero mask of channels is that re-draw's
        # distribution (uniform over the other sign patterns) without the loop
        x_new = x_best.reshape(m, -1).copy()
        same = np.flatnonzero(np.all(np.abs(new.reshape(m, -1) - x_new[rows, flat]) < 1e-7, axis=1))
        if len(same):
            flip = np.zeros((len(same), c, 1), dtype=bool)
            todo = np.arange(len(same))
            while len(todo):
                flip[todo] = rng.random((len(todo), c, 1)) < 0.5
                todo = todo[~flip[todo].any(axis=(1, 2))]
            new[same] = np.clip(base[same] + np.where(flip, -signs[same], signs[same]), 0.0, 1.0)
        x_new[rows, flat] = new.reshape(m, -1)
        return x_new.reshape(x0.shape)

    # L2 (Algorithm 3)
    @staticmethod
    def _init_l2(x0: np.ndarray, eps: float, rng: np.random.Generator) -> np.ndarray:
        n, c, h, w = x0.shape
        s = max(h // 5, 1)
        start = (h - s * 5) // 2
        delta = np.zeros(x0.shape)
        for i in range(h // s):
            for j in range(w // s):
                top, left = start + i * s, start + j * s
                rows, cols = min(s, h - top), min(s, w - left)  # a tile past the edge is cut (or empty)
                if rows > 0 and cols > 0:
                    delta[:, :, top:top + rows, left:left + cols] += (
                        bumps(s, rng)[:rows, :cols] * _signs(rng, (n, c, 1, 1)))
        return np.clip(x0 + _l2_normalize(delta, (1, 2, 3)) * eps, 0.0, 1.0).astype(np.float32)

    @staticmethod
    def _step_l2(x0: np.ndarray, x_best: np.ndarray, eps: float, p: float,
                 rng: np.random.Generator) -> np.ndarray:
        m, c, h, w = x0.shape
        s = max(int(round(math.sqrt(p * h * w))), 3)
        s = min(s + 1 if s % 2 == 0 else s, h - 1, w - 1)
        top1, left1 = rng.integers(0, h - s, size=m), rng.integers(0, w - s, size=m)
        top2, left2 = rng.integers(0, h - s, size=m), rng.integers(0, w - s, size=m)
        win1 = window_index(top1, left1, s, c)
        mask1, mask2 = window_mask(top1, left1, s, h, w), window_mask(top2, left2, s, h, w)
        delta = (x_best - x0).astype(np.float64)
        window = delta[win1]
        norm_window = np.sqrt((window ** 2).sum(axis=(2, 3), keepdims=True))
        norm_image = np.sqrt((delta ** 2).sum(axis=(1, 2, 3), keepdims=True))
        norm_both = np.sqrt(((delta * (mask1 | mask2)) ** 2).sum(axis=(2, 3), keepdims=True))
        new = bumps(s, rng)[None, None] * _signs(rng, (m, c, 1, 1))
        new = new + window / (1e-10 + norm_window)
        room = np.maximum(eps ** 2 - norm_image ** 2, 0.0) / c + norm_both ** 2
        new = _l2_normalize(new, (2, 3)) * np.sqrt(room)
        delta = delta * ~mask2  # the second window's mass moves into the first
        delta[win1] = new
        return np.clip(x0 + _l2_normalize(delta, (1, 2, 3)) * eps, 0.0, 1.0).astype(np.float32)
