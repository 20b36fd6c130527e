"""HopSkipJumpAttack (Chen, Jordan & Wainwright, "HopSkipJumpAttack: a query-efficient decision-based attack",
IEEE S&P 2020, Algorithm 2). Decision-based (only the top-1 is used), L2 or L∞ (``norm``), untargeted or
targeted. A minimal-perturbation attack: it runs once, and the result at a finite ε is the point found projected
onto the ε-ball and queried again (one more query, counted). DEVICE SIDE: numpy only.

As in the authors' code (github.com/Jianbo-Lab/HSJA, ``hsja.py``), with its defaults:

- init: uniform noise in [0, 1] until one is adversarial (at most ``init_size`` draws, ART's bound; the authors
  draw until success), then a binary search on the blend ``(1 - t) x + t · noise`` to ``t`` within 0.001;
- each iteration ``t = 1 .. max_iter`` (40):
  1. binary search towards ``x`` to the decision boundary (Alg. 1), to within ``θ = γ / d^{3/2}`` (L2, on the
     blend factor) or ``θ = γ / d^2`` (L∞, on the L∞ radius, relative to it), ``γ = 1``, ``d`` the input size;
  2. the gradient direction at the boundary point from ``B_t = min(init_evals · sqrt(t), max_evals)`` random
     unit directions (Gaussian for L2, uniform for L∞), probed at distance ``δ_t`` (0.1 at ``t = 1``, then
     ``sqrt(d) θ d_{t-1}`` for L2 and ``d θ d_{t-1}`` for L∞, ``d_{t-1}`` the distance before the last binary
     search), with the mean of the ±1 decisions as baseline (eq. 16); L∞ steps along its sign;
  3. geometric step-size search: ``ξ = ||x_t - x|| / sqrt(t)``, halved until the step stays adversarial.

All samples run in lockstep so that their queries share predict calls (in chunks of ``batch_size``). A sample
never spends more than ``max_queries`` (the clean query and the projection's included): it stops where its
budget ends, at its last adversarial point (every point kept is one the model was seen to misclassify). A
sample whose init finds no adversarial noise is returned as it is (not fooled).

Example::

    result = run_query_attack("hopskipjump", {"norm": "l2", "max_queries": 5000}, predict, x, y, eps=[0.5, 1.0])
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from edgebench.blackbox import QUERY_ATTACKS
from edgebench.blackbox._common import Queries, QueryAttack, flat_norms, is_int
from edgebench.errors import ConfigError

#: the most halvings of the step size in one geometric search (ξ / 2^50 is below float32 resolution)
MAX_HALVINGS = 50
#: the bytes of random directions held at once by the gradient estimate (groups of samples share it)
_ESTIMATE_BYTES = 1 << 26


def _column(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape((-1,) + (1,) * (ndim - 1))


@QUERY_ATTACKS.register("hopskipjump")
class HopSkipJumpAttack(QueryAttack):
    """HopSkipJumpAttack, L2 or L∞.

    Args:
        norm: ``"l2"`` or ``"linf"``: the norm the attack minimises (and of ε).
        max_queries: the query budget per sample (the clean query and the re-query at each ε included).
        max_iter: iterations (gradient estimate, step, binary search); the authors' 40.
        init_evals, max_evals: the gradient estimate's ``B_t = min(init_evals · sqrt(t), max_evals)`` queries.
        init_size: the most uniform-noise draws to find an adversarial start.
        gamma: the binary search threshold's ``γ``.
        seed: seed of the noise and the random directions.
    """

    name = "hopskipjump"
    minimal = True
    norm = "l2"  # the default (an instance sets its own)

    def __init__(self, *, norm: str = "l2", max_queries: int = 25000, max_iter: int = 40, init_evals: int = 100,
                 max_evals: int = 10000, init_size: int = 100, gamma: float = 1.0, seed: int = 0) -> None:
        self._setup(norm, max_queries, seed, least=3)
        where = f"attack {self.name!r}"
        for key, value in (("max_iter", max_iter), ("init_evals", init_evals), ("max_evals", max_evals),
                           ("init_size", init_size)):
            if not is_int(value) or value < 1:
                raise ConfigError(f"{where}: {key} must be an integer >= 1, got {value!r}")
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not gamma > 0:
            raise ConfigError(f"{where}: gamma must be a number > 0, got {gamma!r}")
        self.max_iter = int(max_iter)
        self.init_evals = int(init_evals)
        self.max_evals = int(max_evals)
        self.init_size = int(init_size)
        self.gamma = float(gamma)

    def attack(self, queries: Queries, x: np.ndarray, label: np.ndarray, idx: np.ndarray, eps: float,
               targeted: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        run = _Run(self, queries, x[idx], label[idx], idx, targeted, rng)
        live = run.initialize()
        dist = flat_norms(run.x_adv[live] - run.x0[live], self.norm)
        dist_post = np.zeros(len(idx))
        if len(live):
            dist_post[live] = run.boundary(live, run.x_adv[live])
        for t in range(1, self.max_iter + 1):
            evals = min(int(self.init_evals * math.sqrt(t)), self.max_evals)
            keep = run.remaining(live) > evals
            live, dist = live[keep], dist[keep]
            if not len(live):
                break
            d = run.x0[0].size
            if t == 1:
                delta = np.full(len(live), 0.1)
            else:
                delta = (math.sqrt(d) if self.norm == "l2" else d) * run.theta * dist_post[live]
            grad = run.gradient(live, delta, evals)
            update = np.sign(grad) if self.norm == "linf" else grad
            moved, stepped = run.step_size(live, update, dist / math.sqrt(t))
            if len(moved):
                dist_post[moved] = run.boundary(moved, stepped)
                dist = flat_norms(run.x_adv[live] - run.x0[live], self.norm)
        return run.x_adv, np.full(len(idx), -1)


class _Run:
    """One run of the attack on the samples ``idx`` (local rows ``0 .. m-1``): the current adversarial points
    ``x_adv`` and the query helpers."""

    def __init__(self, attack: HopSkipJumpAttack, queries: Queries, x0: np.ndarray, label: np.ndarray,
                 idx: np.ndarray, targeted: bool, rng: np.random.Generator) -> None:
        self.attack, self.queries, self.x0, self.label, self.idx = attack, queries, x0, label, idx
        self.targeted, self.rng, self.norm = targeted, rng, attack.norm
        self.x_adv = x0.copy()
        d = x0[0].size if len(x0) else 1
        self.theta = attack.gamma / (d * math.sqrt(d) if self.norm == "l2" else d ** 2)
        self.budget = attack.max_queries - 1  # one query is kept for the projection at each ε

    def remaining(self, rows: np.ndarray) -> np.ndarray:
        return self.budget - self.queries.count[self.idx[rows]]

    def adversarial(self, points: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The decision (eq. 1) on ``points``, one query each for sample ``rows``."""
        top = self.queries(np.clip(points, 0.0, 1.0), self.idx[rows]).argmax(axis=1)
        return top == self.label[rows] if self.targeted else top != self.label[rows]

    def initialize(self) -> np.ndarray:
        """Adversarial uniform noise, blended towards ``x`` by binary search; return the rows that have one."""
        m, shape = len(self.x0), self.x0.shape[1:]
        found = np.zeros(m, dtype=bool)
        for _ in range(self.attack.init_size):
            todo = np.flatnonzero(~found & (self.remaining(np.arange(m)) >= 1))
            if not len(todo):
                break
            noise = self.rng.uniform(0.0, 1.0, size=(len(todo),) + shape).astype(np.float32)
            ok = self.adversarial(noise, todo)
            self.x_adv[todo[ok]] = noise[ok]
            found[todo[ok]] = True
        live = np.flatnonzero(found)
        noise = self.x_adv[live].copy()
        high = self._bisect(live, np.ones(len(live)), np.full(len(live), 0.001),
                            lambda act, mid: self._blend(live[act], noise[act], mid))
        self.x_adv[live] = self._blend(live, noise, high)
        return live

    def _bisect(self, rows: np.ndarray, high: np.ndarray, threshold: np.ndarray,
                probe: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        """Bisect ``[0, high]`` per row (``high`` on the adversarial side) until it is ``threshold`` wide or the
        sample's budget ends; ``probe(act, mid)`` gives the points to query for ``rows[act]`` at ``mid``. Returns
        the final ``high`` (adversarial, or the start)."""
        low = np.zeros(len(rows))
        while True:
            act = np.flatnonzero((high - low > threshold) & (self.remaining(rows) >= 1))
            if not len(act):
                return high
            mid = (high[act] + low[act]) / 2
            ok = self.adversarial(probe(act, mid), rows[act])
            high[act[ok]], low[act[~ok]] = mid[ok], mid[~ok]

    def _blend(self, rows: np.ndarray, towards: np.ndarray, t: np.ndarray) -> np.ndarray:
        t = _column(t, self.x0.ndim)
        return ((1 - t) * self.x0[rows] + t * towards).astype(np.float32)

    def _toward(self, rows: np.ndarray, points: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """The authors' ``project``: the blend with factor ``alpha`` (L2), or ``points`` clipped to the L∞ ball of
        radius ``alpha`` around ``x`` (L∞)."""
        if self.norm == "l2":
            return self._blend(rows, points, alpha)
        a = _column(alpha, self.x0.ndim).astype(np.float32)
        return np.clip(points, self.x0[rows] - a, self.x0[rows] + a)

    def boundary(self, rows: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Binary search from the adversarial ``points`` towards ``x`` to the boundary (Alg. 1); sets ``x_adv`` of
        ``rows`` and returns the distances of ``points`` to ``x`` (the ``d_{t-1}`` of ``δ_t``)."""
        dist = flat_norms(points - self.x0[rows], self.norm)
        if self.norm == "linf":
            high, threshold = dist.copy(), np.minimum(dist * self.theta, self.theta)
        else:
            high, threshold = np.ones(len(rows)), np.full(len(rows), self.theta)
        high = self._bisect(rows, high, threshold, lambda act, mid: self._toward(rows[act], points[act], mid))
        self.x_adv[rows] = self._toward(rows, points, high)
        return dist

    def gradient(self, rows: np.ndarray, delta: np.ndarray, evals: int) -> np.ndarray:
        """The Monte Carlo estimate of the gradient direction at ``x_adv[rows]`` (eq. 16, with baseline), ``evals``
        queries per sample; samples are estimated in groups so the random directions stay within
        ``_ESTIMATE_BYTES``."""
        shape = self.x0.shape[1:]
        size = self.x0[0].size
        group = max(1, _ESTIMATE_BYTES // (4 * size * evals))
        out = np.zeros((len(rows),) + shape, dtype=np.float32)
        for start in range(0, len(rows), group):
            part = slice(start, start + group)
            r, base = rows[part], self.x_adv[rows[part]][:, None]
            dlt = delta[part].reshape((-1, 1) + (1,) * len(shape)).astype(np.float32)
            draw = (self.rng.standard_normal if self.norm == "l2"
                    else lambda size: self.rng.uniform(-1.0, 1.0, size=size))
            rv = draw(size=(len(r), evals) + shape).astype(np.float32)
            rv /= np.sqrt((rv ** 2).reshape(len(r), evals, -1).sum(axis=2)).reshape(rv.shape[:2] + (1,) * len(shape))
            probe = np.clip(base + dlt * rv, 0.0, 1.0)
            rv = (probe - base) / dlt
            decision = self.adversarial(probe.reshape((-1,) + shape), np.repeat(r, evals)).reshape(len(r), evals)
            fval = 2.0 * decision - 1.0
            mean = fval.mean(axis=1, keepdims=True)
            coef = np.where(np.abs(mean) == 1.0, fval, fval - mean).astype(np.float32)
            grad = (coef.reshape(coef.shape + (1,) * len(shape)) * rv).mean(axis=1)
            norms = np.sqrt((grad.reshape(len(r), -1) ** 2).sum(axis=1))
            out[part] = grad / _column(np.maximum(norms, 1e-12), grad.ndim)
        return out

    def step_size(self, rows: np.ndarray, update: np.ndarray, xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The geometric search: halve ``ξ`` until ``x_adv + ξ · update`` is adversarial. Returns the rows that
        found a step and their stepped points (the others keep ``x_adv``: their budget ended)."""
        pending = np.ones(len(rows), dtype=bool)
        xi = xi.copy()
        for _ in range(MAX_HALVINGS):
            act = np.flatnonzero(pending & (self.remaining(rows) >= 1))
            if not len(act):
                break
            cand = np.clip(self.x_adv[rows[act]] + _column(xi[act], update.ndim) * update[act], 0.0, 1.0)
            ok = self.adversarial(cand, rows[act])
            pending[act[ok]] = False
            xi[act[~ok]] /= 2
        done = np.flatnonzero(~pending)
        stepped = np.clip(self.x_adv[rows[done]] + _column(xi[done], update.ndim) * update[done], 0.0, 1.0)
        return rows[done], stepped.astype(np.float32)
