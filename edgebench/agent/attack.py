"""The attack pass: a query-based attack crafted on the loaded artifact through the runtime it is deployed with
(issue 17). DEVICE SIDE, torch-free (numpy, the runtime and :mod:`edgebench.blackbox`), so on a board it attacks
the exact kernels (int8 included) that board runs; the host's crafting stage (:mod:`edgebench.runner.query`)
shares :func:`adversarial_sets` with it, so host and device write the same arrays.

The attack streams its queries to ``backend.predict`` in batches of the request's ``batch_size`` and counts
them per sample (:class:`edgebench.blackbox.QueryResult`). The pass writes one ``attack-<i>-eps<k>.npz`` per ε
(``x`` the adversarial inputs, ``y``, ``pred`` the crafting session's top-1, ``success``, the per-sample norms
``linf``/``l2``/``l0``, the per-sample ``queries``, and ``target`` when targeted) and ``attack-<i>.json`` last,
tagged with the job's digest: a resumed job finds it and does not craft again.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict

import numpy as np

from edgebench.agent.protocol import AttackRequest

#: the arrays of one adversarial set, as saved
Arrays = Dict[str, np.ndarray]


def top1(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch_size: int) -> np.ndarray:
    """``predict``'s top-1 on ``x``, in batches of at most ``batch_size``."""
    out = [np.asarray(predict(x[i:i + batch_size])).argmax(1) for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def adversarial_sets(result: Any, x: np.ndarray, y: np.ndarray, target: np.ndarray | None,
                     predict: Callable[[np.ndarray], np.ndarray], *, round_8bit: bool = False,
                     batch_size: int = 256) -> list[Arrays]:
    """The arrays of each ε's adversarial set from a :class:`~edgebench.blackbox.QueryResult`. ``round_8bit``:
    the inputs an 8-bit image pipeline would deliver (k/255), predicted again through ``predict`` (those
    predictions are not counted as the attack's queries)."""
    out = []
    for k in range(len(result.eps)):
        x_adv = np.asarray(result.x_adv[k], dtype=np.float32)
        pred = np.asarray(result.pred[k])
        if round_8bit:
            x_adv = np.round(x_adv * 255.0).astype(np.float32) / 255.0
            pred = top1(predict, x_adv, batch_size)
        success = (pred != y) if target is None else (pred == target)
        delta = np.abs(x_adv - x).reshape(len(x), -1)
        arrays = {"x": x_adv, "y": y, "pred": pred, "success": success, "linf": delta.max(1, initial=0.0),
                  "l2": np.sqrt((delta.astype(np.float64) ** 2).sum(1)), "l0": (delta > 1e-6).sum(1),
                  "queries": np.asarray(result.queries[k], dtype=np.int64)}
        if target is not None:
            arrays["target"] = target
        out.append(arrays)
    return out


def load_first(path: Path, n: int, batch_size: int) -> np.ndarray:
    """The first ``n`` samples of the test set at ``path`` (streamed: the rest is never read)."""
    from edgebench.agent.stream import iter_batches

    parts: list[np.ndarray] = []
    got = 0
    for chunk in iter_batches(path, min(batch_size, max(n, 1))):
        parts.append(chunk[:n - got])
        got += len(parts[-1])
        if got >= n:
            break
    return np.concatenate(parts) if parts else np.zeros((0,), dtype=np.float32)


def attack_pass(backend: Any, req: AttackRequest, testset: Path, out: Path, i: int, digest: str) -> dict[str, Any]:
    """Craft ``req`` on ``backend`` (the loaded artifact) and write its sets into ``out``; return the pass's
    record (also written to ``attack-<i>.json``)."""
    from edgebench.blackbox import run_query_attack

    y = np.asarray(req.y, dtype=np.int64)
    target = None if req.target is None else np.asarray(req.target, dtype=np.int64)
    x = load_first(testset, len(y), req.batch_size)
    t0 = time.perf_counter()
    result = run_query_attack(req.name, dict(req.params), backend.predict, x, y, list(req.eps), target=target,
                              batch_size=req.batch_size)
    seconds = time.perf_counter() - t0
    files = []
    for k, arrays in enumerate(adversarial_sets(result, x, y, target, backend.predict, round_8bit=req.round_8bit,
                                                batch_size=req.batch_size)):
        name = f"attack-{i}-eps{k}.npz"
        tmp = out / (name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, out / name)
        files.append(name)
    queries = np.asarray(result.queries)
    doc = {"job": digest, "attack": req.name, "names": list(req.names), "files": files, "seconds": seconds,
           "n": int(len(y)), "norm": result.norm, "max_queries": int(result.max_queries),
           "queries": int(queries.sum()), "success_rate": [float(s) for s in np.asarray(result.success).mean(1)]}
    path = out / f"attack-{i}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)
    return doc
