"""The machinery every query attack shares. DEVICE SIDE: numpy only, torch-free, Python 3.8.

- :class:`Queries`: the predict function behind a per-sample query counter; it sends the rows in chunks of at
  most ``batch_size`` samples and checks what comes back.
- :func:`margin` and :func:`cross_entropy`: the score losses (Carlini & Wagner 2017's margin; the softmax
  cross-entropy), both "positive / larger = not yet adversarial".
- :func:`project`: onto the ε-ball of ``linf`` or ``l2`` around ``x`` and onto the box [0, 1].
- :class:`QueryAttack`: the base of the attacks: parameter checks, the clean query, the per-ε loop (once per ε
  for a budgeted attack; once in all for a minimal-perturbation one, then projected onto each ε-ball and
  re-queried) and the :class:`~edgebench.blackbox.QueryResult`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgebench.errors import AttackError, ConfigError

NORMS = ("linf", "l2")


class Queries:
    """``predict`` with a query counter per sample: ``queries(x_rows, idx)`` returns the scores of the rows,
    ``x_rows[i]`` being a query for sample ``idx[i]`` (a sample may appear several times), and adds one query per
    row to ``count``. Rows go to ``predict`` in chunks of at most ``batch_size``; ``calls`` counts the calls."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], n: int, batch_size: int, *, name: str) -> None:
        self.predict = predict
        self.batch_size = batch_size
        self.count = np.zeros(n, dtype=np.int64)
        self.calls = 0
        self.name = name

    def __call__(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = []
        for start in range(0, len(x), self.batch_size):
            chunk = x[start:start + self.batch_size]
            scores = np.asarray(self.predict(chunk))
            self.calls += 1
            if scores.ndim != 2 or len(scores) != len(chunk):
                raise AttackError(f"attack {self.name!r}: predict must return scores of shape ({len(chunk)}, "
                                  f"classes) for a batch of {len(chunk)}, got {scores.shape}")
            out.append(scores)
        np.add.at(self.count, idx, 1)
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def margin(scores: np.ndarray, label: np.ndarray, targeted: bool) -> np.ndarray:
    """The margin loss, positive while the attack has not succeeded: ``z_y - max_{j != y} z_j`` (untargeted,
    ``label`` the true class) or ``max_{j != t} z_j - z_t`` (targeted, ``label`` the target)."""
    rows = np.arange(len(scores))
    own = scores[rows, label].astype(np.float64)
    other = np.array(scores, dtype=np.float64)
    other[rows, label] = -np.inf
    best_other = other.max(axis=1)
    return best_other - own if targeted else own - best_other


def cross_entropy(scores: np.ndarray, label: np.ndarray, targeted: bool) -> np.ndarray:
    """The softmax cross-entropy of ``label``, to minimise: ``-log p_t`` (targeted) or ``log p_y``
    (untargeted)."""
    z = scores.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    own = log_p[np.arange(len(z)), label]
    return -own if targeted else own


def flat_norms(delta: np.ndarray, norm: str) -> np.ndarray:
    """Per-row ``norm`` (``linf`` or ``l2``) of ``delta``, shape ``(N,)``."""
    flat = delta.reshape(len(delta), -1).astype(np.float64)
    return np.abs(flat).max(axis=1) if norm == "linf" else np.sqrt((flat ** 2).sum(axis=1))


def project(x_adv: np.ndarray, x: np.ndarray, eps: float, norm: str) -> np.ndarray:
    """``x_adv`` projected onto the ``norm`` ball of radius ``eps`` around ``x`` (rows), then onto [0, 1];
    ``eps = inf`` only clips to the box. A row already inside the ball is returned exactly as it is (a point
    found on the decision boundary keeps its decision)."""
    x_adv = np.clip(x_adv, 0.0, 1.0).astype(np.float32)
    if math.isinf(eps):
        return x_adv
    delta = (x_adv - x).astype(np.float64)
    norms = flat_norms(delta, norm)
    if norm == "linf":
        out = np.minimum(np.maximum(x_adv, x - eps), x + eps)
    else:
        factor = np.minimum(1.0, eps / np.maximum(norms, 1e-12))
        out = x + delta * factor.reshape((-1,) + (1,) * (x.ndim - 1))
    out = np.clip(out, 0.0, 1.0).astype(np.float32)
    inside = norms <= eps
    out[inside] = x_adv[inside]
    return out


def is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


class QueryAttack:
    """Base of the query attacks. Subclasses set ``name``, take keyword-only parameters (``norm``,
    ``max_queries``, ``seed`` and their own), call :meth:`_setup` and implement :meth:`attack`.

    ``minimal``: the attack looks for the smallest adversarial perturbation (HopSkipJump); it runs once, and the
    result at each finite ε is that point projected onto the ε-ball and re-queried (one more query, counted).
    Otherwise (Square) it runs once per ε within the ε-ball. Either way a sample the model already gets wrong
    costs its one clean query and is not attacked, and a sample never spends more than ``max_queries``.
    """

    name = "?"
    minimal = False

    def _setup(self, norm: str, max_queries: int, seed: int, least: int) -> None:
        where = f"attack {self.name!r}"
        if norm not in NORMS:
            raise ConfigError(f"{where}: norm must be 'linf' or 'l2', got {norm!r}")
        if not is_int(max_queries) or max_queries < least:
            raise ConfigError(f"{where}: max_queries must be an integer >= {least}, got {max_queries!r}")
        if not is_int(seed):
            raise ConfigError(f"{where}: seed must be an integer, got {seed!r}")
        self.norm = norm
        self.max_queries = int(max_queries)
        self.seed = int(seed)

    def params(self) -> dict[str, Any]:
        """The constructor's keyword arguments that give this attack back (for the device, and the repr)."""
        return {k: v for k, v in sorted(vars(self).items()) if not k.startswith("_")}

    def attack(self, queries: Queries, x: np.ndarray, label: np.ndarray, idx: np.ndarray, eps: float,
               targeted: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Attack the samples ``idx`` (clean inputs ``x[idx]``, ``label`` the true classes or the targets) at
        ``eps`` (``inf`` for a minimal attack); queries go through ``queries`` (which already holds the clean
        query of each sample). Return ``(x_adv, pred)`` for those samples, ``pred`` the top-1 the attack saw
        for ``x_adv`` (for a minimal attack, ``pred`` is re-queried after projection and may be anything)."""
        raise NotImplementedError

    def perturb(self, predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray,
                eps: Sequence[float], *, target: np.ndarray | None = None, batch_size: int = 256) -> Any:
        """Run the attack on ``predict`` at every ε of ``eps``; return a :class:`~edgebench.blackbox.QueryResult`."""
        from edgebench.blackbox import QueryResult

        x, y, eps_t, target = self._check(x, y, eps, target, batch_size)
        targeted = target is not None
        label = target if targeted else y
        clean = Queries(predict, len(x), batch_size, name=self.name)
        clean_pred = clean(x, np.arange(len(x))).argmax(axis=1) if len(x) else np.zeros(0, dtype=np.int64)
        todo = np.flatnonzero(clean_pred != label if targeted else clean_pred == y)
        xs: list[np.ndarray] = []
        preds: list[np.ndarray] = []
        counts: list[np.ndarray] = []
        found: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        for e in eps_t:
            x_adv, pred, count = x.copy(), clean_pred.copy(), clean.count.copy()
            if e > 0 and len(todo):
                if self.minimal:
                    if found is None:
                        queries = self._queries(predict, clean, batch_size)
                        found = self.attack(queries, x, label, todo, math.inf, targeted, self._rng())
                        found = (found[0], found[1], queries.count)
                    run_count = found[2].copy()
                    moved = todo[np.any((found[0] != x[todo]).reshape(len(todo), -1), axis=1)]
                    where = np.searchsorted(todo, moved)
                    x_adv[moved] = project(found[0][where], x[moved], e, self.norm)
                    requery = Queries(predict, len(x), batch_size, name=self.name)
                    if len(moved):
                        pred[moved] = requery(x_adv[moved], moved).argmax(axis=1)
                    count = run_count + requery.count
                else:
                    queries = self._queries(predict, clean, batch_size)
                    x_adv[todo], pred[todo] = self.attack(queries, x, label, todo, e, targeted, self._rng())
                    count = queries.count
            xs.append(x_adv)
            preds.append(pred)
            counts.append(count)
        pred_all = np.stack(preds) if preds else np.zeros((0, len(x)), dtype=np.int64)
        success = pred_all == label[None] if targeted else pred_all != y[None]
        return QueryResult(attack=self.name, eps=eps_t, norm=self.norm,
                           x_adv=np.stack(xs) if xs else np.zeros((0,) + x.shape, dtype=np.float32),
                           pred=pred_all, success=success,
                           queries=np.stack(counts) if counts else np.zeros((0, len(x)), dtype=np.int64),
                           max_queries=self.max_queries)

    def _rng(self) -> np.random.Generator:
        """The generator of one run: the same at every ε, so that a run is reproducible and does not depend on
        the other ε of the call."""
        return np.random.default_rng(self.seed)

    def _queries(self, predict: Callable[[np.ndarray], np.ndarray], clean: Queries, batch_size: int) -> Queries:
        """A fresh counter for one run, starting from the clean query of each sample."""
        queries = Queries(predict, len(clean.count), batch_size, name=self.name)
        queries.count += clean.count
        return queries

    def _check(self, x: Any, y: Any, eps: Any, target: Any,
               batch_size: Any) -> tuple[np.ndarray, np.ndarray, tuple[float, ...], np.ndarray | None]:
        where = f"attack {self.name!r}"
        x = np.ascontiguousarray(x, dtype=np.float32)
        y = np.asarray(y).astype(np.int64)
        eps_t = (float(eps),) if isinstance(eps, (int, float)) else tuple(float(e) for e in eps)
        if any(math.isnan(e) or e < 0 for e in eps_t):
            raise AttackError(f"{where}: eps must be >= 0, got {list(eps_t)}")
        if not self.minimal and any(math.isinf(e) for e in eps_t):
            raise AttackError(f"{where}: eps = inf only makes sense for a minimal-perturbation attack; give "
                              f"{self.name!r} a finite budget")
        if not is_int(batch_size) or batch_size < 1:
            raise AttackError(f"{where}: batch_size must be an integer >= 1, got {batch_size!r}")
        if x.ndim < 2:
            raise AttackError(f"{where}: x must be a batch (N, ...), got shape {x.shape}")
        if x.size and (not np.isfinite(x).all() or x.min() < 0.0 or x.max() > 1.0):
            raise AttackError(f"{where}: inputs must be finite and lie in [0, 1] (got min {x.min():.4g}, max "
                              f"{x.max():.4g}); scale the data, the model normalizes inside")
        if y.shape != (len(x),):
            raise AttackError(f"{where}: labels must have shape ({len(x)},), got {y.shape}")
        if target is not None:
            target = np.asarray(target).astype(np.int64)
            if target.shape != (len(x),):
                raise AttackError(f"{where}: target must have shape ({len(x)},), got {target.shape}")
            if np.any(target == y):
                raise AttackError(f"{where}: a target equals the true label for {int(np.sum(target == y))} "
                                  "samples; choose targets different from the labels")
        return x, y, eps_t, target
