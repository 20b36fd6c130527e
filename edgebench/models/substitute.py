"""A substitute trained by querying its victim: Papernot et al. 2017's Jacobian-based dataset augmentation
(JBDA), the black-box attack CleverHans 2.1 ships (``cleverhans_tutorials/mnist_blackbox.py``) and the one seed
003 (Song et al. 2020) cites for its black-box setting.

The adversary holds ``holdout`` labelled images and may ask the *oracle* (a unit of the plan, queried through an
ONNX Runtime session of the very file its device jobs run) for its top-1 label, nothing else. The substitute is
trained on the held images; then ``rounds - 1`` times the set doubles: every point ``x`` with label ``y`` adds
``x + λ_ρ·sign(∂z_y/∂x)`` (``z`` the substitute's logits, no clipping), labelled by the oracle, and the substitute
trains again on the whole set, from where it stands. ``λ_ρ = -λ`` for the first ``tau`` augmentations and ``+λ``
after, as CleverHans 2.1 does (``lmbda_coef = 2 * int(int(rho / 3) != 0) - 1``). Its defaults are the ones here:
150 held images, 6 training rounds, λ = 0.1, τ = 3, so 150·(2⁵ - 1) = 4,650 oracle queries; 10 epochs per round
(Adam 1e-3, batch 128) is the plan's ``train`` table, and :func:`mlp` its 784-200-200-10 substitute.

One difference, said where it is used: CleverHans holds out the *test* set's first 150 images and attacks the
rest; edgebench attacks the test set's first ``n``, so the held images are the *training* set's first
``holdout`` (same distribution, disjoint from every attacked and measured sample).

``[[models]]`` entry (the keys of its ``substitute`` table are :data:`KEYS`)::

    [[models]]
    name = "jbda"
    factory = "edgebench.models.substitute:mlp"
    params = { inputs = 784, hidden = [200, 200], classes = 10 }
    train = { epochs = 10, batch_size = 128, lr = 1e-3 }
    substitute = { oracle = "orig" }
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch import nn

    from edgebench.models.train import TrainConfig

#: the ``substitute`` table's keys and their defaults (CleverHans 2.1's); ``oracle`` is required
KEYS: dict[str, Any] = {"oracle": None, "holdout": 150, "rounds": 6, "lmbda": 0.1, "tau": 3}
#: how the oracle is queried: a host session of the file its device jobs on this backend run
ORACLE_BACKEND = "onnxruntime"


def read_substitute(t: Any) -> dict[str, Any]:
    """The ``substitute`` table of a ``[[models]]`` entry (a :class:`~edgebench.toml_table.Table`), checked, with
    its defaults filled in; ``{}`` when the entry has none."""
    if not t.raw:
        return {}
    out = {"oracle": t.get("oracle", str, required=True),
           "holdout": t.number("holdout", KEYS["holdout"], lo=1, integer=True),
           "rounds": t.number("rounds", KEYS["rounds"], lo=1, integer=True),
           "lmbda": t.number("lmbda", KEYS["lmbda"], lo=0, lo_open=True),
           "tau": t.number("tau", KEYS["tau"], lo=1, integer=True)}
    t.done()
    return out


def check_oracles(models: Sequence[Any], units: Sequence[str], source: str) -> None:
    """Each substitute's oracle names a unit of the plan (``model`` or ``model/variant``) that is neither the
    substitute nor built from it, and the substitute is a torch model trained here (no ONNX file, no checkpoint)."""
    from edgebench.errors import ConfigError

    oracle_of = {m.name: m.substitute["oracle"].split("/", 1)[0] for m in models if m.substitute}
    for i, m in enumerate(models):
        if not m.substitute:
            continue
        where = f"{source}: models[{i}].substitute"
        if m.onnx or m.checkpoint:
            raise ConfigError(f"{where}: a substitute is trained here, by querying its oracle; it takes 'arch' or "
                              f"'factory', not {'onnx' if m.onnx else 'checkpoint'}")
        oracle = m.substitute["oracle"]
        if oracle not in units:
            raise ConfigError(f"{where}.oracle: {oracle!r} is not a model or variant of this plan; choose one of "
                              f"{sorted(units)}")
        seen, model = {m.name}, oracle.split("/", 1)[0]
        while model is not None:
            if model in seen:
                raise ConfigError(f"{where}.oracle: {oracle!r} is {m.name!r} itself or is trained by querying it; "
                                  f"a substitute needs an oracle that exists without it")
            seen.add(model)
            model = oracle_of.get(model)


def augmentation_steps(rounds: int, lmbda: float, tau: int) -> list[float]:
    """``λ_ρ`` of each of the ``rounds - 1`` augmentations: ``-λ`` for the first ``tau``, then ``+λ``."""
    return [(-lmbda if rho < tau else lmbda) for rho in range(rounds - 1)]


def jacobian_augment(model: nn.Module, x: np.ndarray, y: np.ndarray, step: float, *,
                     batch_size: int = 512) -> np.ndarray:
    """The new points ``x + step·sign(∂z_y/∂x)``, ``z`` the logits of ``model`` (in eval mode), one per row."""
    import torch

    from edgebench.models.placement import numpy_of, to_model

    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        xb, yb = to_model(model, x[i:i + batch_size], y[i:i + batch_size])
        xb.requires_grad_(True)
        (grad,) = torch.autograd.grad(model(xb).gather(1, yb[:, None]).sum(), xb)
        out.append(x[i:i + batch_size] + step * numpy_of(grad.sign()))
    return np.concatenate(out).astype(np.float32)


def train_substitute(model: nn.Module, oracle: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray,
                     cfg: TrainConfig, *, rounds: int, lmbda: float, tau: int,
                     desc: str = "substitute") -> dict[str, Any]:
    """Train ``model`` in place by JBDA from the held ``(x, y)``: ``oracle(x)`` returns the oracle's scores (only
    their argmax is used). Each round trains ``cfg.epochs`` epochs under seed ``cfg.seed + round``. Returns the
    per-round history (points, queries so far, the last epoch's loss and accuracy) and the totals."""
    from edgebench.models.train import train

    xs, ys = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64)
    steps = augmentation_steps(rounds, lmbda, tau)
    history, queries = [], 0
    for rho in range(rounds):
        last = train(model, xs, ys, replace(cfg, seed=cfg.seed + rho), desc=f"{desc} round {rho + 1}/{rounds}")
        history.append({"round": rho + 1, "points": len(xs), "queries": queries, **(last[-1] if last else {})})
        if rho < rounds - 1:
            new = jacobian_augment(model, xs, ys, steps[rho])
            labels = np.asarray(oracle(new)).argmax(1).astype(np.int64)  # the top-1 label, all the oracle tells
            queries += len(new)
            xs, ys = np.concatenate([xs, new]), np.concatenate([ys, labels])
    model.eval()
    return {"history": history, "queries": queries, "points": len(xs), "steps": steps}


def mlp(*, inputs: int = 784, hidden: Sequence[int] = (200, 200), classes: int = 10) -> nn.Module:
    """CleverHans 2.1's black-box substitute: flatten, ``hidden`` ReLU layers, then the logits; it takes the [0, 1]
    pixels as they are (no normalization). Weights drawn as its ``HeReLuNormalInitializer`` does (normal, std
    ``sqrt(2 / fan_in)``), biases zero, under the plan's seed."""
    from torch import nn

    sizes = [int(inputs), *(int(h) for h in hidden)]
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(sizes[-1], int(classes)))
    for layer in layers:
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, std=(2.0 / layer.in_features) ** 0.5)
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)
