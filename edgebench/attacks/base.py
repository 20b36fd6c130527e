"""The attack base class: validation, model mode, multi-ε loop and per-sample results, and the
projections onto the ε-balls of the budget norms.

Subclasses implement :meth:`Attack.run` for one ε; :meth:`Attack.__call__` (final) checks the inputs,
freezes the model (eval mode, parameters without gradients, restored afterwards), runs every ε and
returns an :class:`AttackResult`.

Three kinds of attack share this base:

* **budgeted** (FGSM, PGD, …): ``run`` is called once per ε, the budget in the attack's ``norm``.
* **minimal** (``minimal = True``: CW-L2, DeepFool): they look for the smallest perturbation, so ``run`` is
  called once with ``eps = inf`` and the result at each finite ε is that perturbation projected onto the
  ε-ball (and re-evaluated: one forward per ε), as Foolbox does. ``eps = inf`` keeps it unprojected.
* **sequence** attacks (JSMA) override :meth:`Attack.run_all` and produce every ε in one pass.

Which label an untargeted attack moves away from is the caller's choice, for every attack at once
(``label`` of :meth:`Attack.__call__`): ``"true"`` (default) crafts against the ground truth; ``"predicted"`` against
the model's own top-1 on the clean input, as Kurakin et al. ("Adversarial Machine Learning at Scale", ICLR 2017)
do to avoid label leaking and as Wijayanto et al. 2018 (seed ``002``, Sec. VI) craft FGSM: "we use the class
corresponding to the maximum prediction probability instead". Success is always judged against the true label.
"""

from __future__ import annotations

import abc
import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, final

import numpy as np
import torch
from torch import nn

from edgebench.attacks._family import ModelFamily
from edgebench.errors import AttackError
from edgebench.models.placement import model_device, model_dtype
from edgebench.registry import check_kwargs

log = logging.getLogger(__name__)

#: the labels an untargeted attack can be crafted against (:meth:`Attack.__call__`'s ``label``)
CRAFT_LABELS = ("true", "predicted")


@dataclass
class Passes:
    """Forward and backward passes spent (each counts one batch); ``queries``: a query-based attack's queries per
    ε and sample, ``(K, N)``."""

    forward: int = 0
    backward: int = 0
    queries: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass
class AttackResult:
    """What an attack call returns. Arrays have a leading ε axis ``K`` and a sample axis ``N``.

    ``success[k, n]``: the model misclassifies ``x_adv[k, n]`` (untargeted) or assigns it the target.
    ``pred[k, n]``: the attacked model's top-1 on ``x_adv[k, n]``. ``linf``, ``l2``: perturbation norms;
    ``l0``: the number of input features changed (by more than 1e-6). ``norm``: the attack's budget norm.
    ``passes``: forward and backward passes spent, each counting one batch. ``queries[k, n]``: the queries a
    query-based attack (``query_based``) spent on sample ``n`` at ε ``k`` (None for the others).
    """

    attack: str
    eps: tuple[float, ...]
    x_adv: np.ndarray
    success: np.ndarray
    pred: np.ndarray
    linf: np.ndarray
    l2: np.ndarray
    targeted: bool = False
    passes: Passes = field(default_factory=Passes)
    l0: np.ndarray | None = None
    norm: str = "linf"
    queries: np.ndarray | None = None

    def success_rate(self) -> np.ndarray:
        return self.success.mean(axis=1)

    def norms(self) -> np.ndarray:
        """The perturbation norms in the attack's own norm (``linf``, ``l2`` or ``l0``), shape ``(K, N)``."""
        got = {"linf": self.linf, "l2": self.l2, "l0": self.l0}.get(self.norm)
        return self.linf if got is None else got


def check_params(cls: type, params: dict[str, Any], *, where: str) -> None:
    """Raise :class:`ConfigError` for parameters the attack's constructor does not take, and for a value given
    to an integer parameter that is not an integer (``steps = 2.5``)."""
    from edgebench.params import check_integers

    check_kwargs(cls.__init__, params, what=f"attack {cls.name!r}", where=where)
    check_integers(cls.__init__, params, what=f"attack {cls.name!r}", where=where)


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no parameter gradients while attacking; the previous state is restored after."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


def predict(model: nn.Module, x: torch.Tensor, passes: Passes, y: torch.Tensor | None = None,
            target: torch.Tensor | None = None) -> torch.Tensor:
    """The model's top-1 on ``x`` (one forward, counted). A :class:`~edgebench.attacks._family.ModelFamily` decides
    with the labels ``y`` (and ``target``): one forward per member, the label unless every member is fooled."""
    if isinstance(model, ModelFamily):
        if y is None:
            raise AttackError("a model family predicts with the labels (every member fooled or not)")
        return model.predict(x, y, target, passes)
    with torch.no_grad():
        pred = model(x).argmax(1)
    passes.forward += 1
    return pred


def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Project onto the L∞ ball of radius ``eps`` around ``x`` and onto the input box [0, 1]."""
    return torch.clamp(torch.minimum(torch.maximum(x_adv, x - eps), x + eps), 0.0, 1.0)


def project_l2(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Project onto the L2 ball of radius ``eps`` around ``x``, then onto the input box [0, 1]."""
    delta = x_adv - x
    norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    factor = (eps / norms).clamp(max=1.0).view(-1, *([1] * (x.ndim - 1)))
    return torch.clamp(x + delta * factor, 0.0, 1.0)


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project onto the ``norm`` ball (``linf`` or ``l2``) of radius ``eps`` around ``x`` and onto [0, 1];
    ``eps = inf`` only clips to the box."""
    if eps == float("inf"):
        return torch.clamp(x_adv, 0.0, 1.0)
    if norm == "linf":
        return project_linf(x_adv, x, eps)
    if norm == "l2":
        return project_l2(x_adv, x, eps)
    raise ValueError(f"project: norm {norm!r} has no projection (use 'linf' or 'l2')")


class Attack(abc.ABC):
    """Base of every attack. Subclasses set ``name`` and ``norm`` and implement :meth:`run`.

    ``norm``: the norm of ε — ``linf``, ``l2``, ``l0`` (ε is the fraction of input features that may change)
    or ``none`` (noise baselines: ε is the noise scale). ``minimal``: see the module docstring.
    ``universal``: one perturbation for all the inputs of a call (UAP), so callers must not split a set into
    batches. ``query_based``: the attack needs only a predict function (:mod:`edgebench.blackbox`; it has
    ``on_predict``), so it can attack an exported artifact through its runtime.
    """

    name: ClassVar[str] = "?"
    norm: ClassVar[str] = "linf"
    targeted_ok: ClassVar[bool] = True
    minimal: ClassVar[bool] = False
    universal: ClassVar[bool] = False
    needs_gradient: ClassVar[bool] = True
    #: the attack takes a :class:`~edgebench.attacks._family.ModelFamily` (threat ``family``): its loop reaches the
    #: model only through :mod:`edgebench.attacks._gradient`'s helpers and :func:`predict`
    family_ok: ClassVar[bool] = False
    query_based: ClassVar[bool] = False
    #: "" where the attack runs on any device (that of the model it is given); else one line saying why it must
    #: run on the CPU (a library limit): the runner then runs it there and records the reason
    cpu_only: ClassVar[str] = ""

    def __repr__(self) -> str:
        # hyper-parameters only: not instance copies of class facts (norm set from norm_p, minimal, ...)
        params = ", ".join(f"{k}={v!r}" for k, v in sorted(vars(self).items())
                           if not k.startswith("_") and not hasattr(type(self), k))
        return f"{type(self).__name__}({params})"

    @abc.abstractmethod
    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
            target: torch.Tensor | None, passes: Passes) -> tuple[torch.Tensor, torch.Tensor]:
        """Craft adversarial inputs for one ``eps``; return ``(x_adv, pred)`` with ``pred`` the model's
        top-1 on ``x_adv``. ``target`` is given for targeted attacks. Count passes in ``passes``."""

    def run_all(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: tuple[float, ...],
                target: torch.Tensor | None, passes: Passes) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Every ε of a call: ``(x_advs, preds)``, one entry per ε. The default calls :meth:`run` per ε (once
        for a minimal attack, then projects); sequence attacks override it."""
        xs: list[torch.Tensor] = []
        preds: list[torch.Tensor] = []
        found: tuple[torch.Tensor, torch.Tensor] | None = None
        for e in eps:
            if e == 0.0:
                x_adv, pred = x.clone(), predict(model, x, passes, y, target)
            elif self.minimal:
                if found is None:
                    found = self.run(model, x, y, eps=float("inf"), target=target, passes=passes)
                if np.isfinite(e):
                    x_adv = project(found[0], x, e, self.norm)
                    pred = predict(model, x_adv, passes, y, target)
                else:
                    x_adv, pred = found
            else:
                x_adv, pred = self.run(model, x, y, eps=e, target=target, passes=passes)
            xs.append(x_adv.detach())
            preds.append(pred.detach())
        return xs, preds

    @final
    def __call__(self, model: nn.Module, x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, *,
                 eps: float | Sequence[float], target: torch.Tensor | np.ndarray | None = None,
                 label: str = "true") -> AttackResult:
        """Attack ``model`` at every ε. ``label``: craft against the ``"true"`` labels ``y`` or the model's
        ``"predicted"`` top-1 on ``x`` (one more forward; see the module docstring); ``success`` and the result's
        ``pred`` are judged against ``y`` either way."""
        self._check_label(model, label, target)
        x = torch.as_tensor(np.asarray(x) if isinstance(x, np.ndarray) else x, dtype=torch.float32)
        y = torch.as_tensor(np.asarray(y) if isinstance(y, np.ndarray) else y, dtype=torch.int64)
        eps_list = (float(eps),) if isinstance(eps, (int, float)) else tuple(float(e) for e in eps)
        self._validate(x, y, eps_list, target)
        tgt = None if target is None else torch.as_tensor(np.asarray(target), dtype=torch.int64)
        # run where the model lives (CPU or CUDA) in its dtype; random draws come from CPU generators, so a seed
        # gives the same start on either
        device = model_device(model)
        x, y = x.to(device, model_dtype(model)), y.to(device)
        tgt = None if tgt is None else tgt.to(device)
        passes = Passes()
        with frozen(model):
            self._check_logits(model, x[:8])
            y_craft = y if label == "true" else predict(model, x, passes)
            xs, preds = self.run_all(model, x, y_craft, eps=eps_list, target=tgt, passes=passes)
        x_adv_all = torch.stack([t.detach() for t in xs]).cpu().float()
        pred_all = torch.stack([t.detach() for t in preds]).cpu()
        x, y, tgt = x.cpu().float(), y.cpu(), None if tgt is None else tgt.cpu()
        success = (pred_all == tgt) if tgt is not None else (pred_all != y)
        delta = (x_adv_all - x.unsqueeze(0)).flatten(2)
        return AttackResult(
            attack=repr(self), eps=eps_list, x_adv=x_adv_all.numpy(), success=success.numpy(),
            pred=pred_all.numpy(), linf=delta.abs().amax(2).numpy(), l2=delta.norm(dim=2).numpy(),
            targeted=tgt is not None, passes=passes, l0=(delta.abs() > 1e-6).sum(2).numpy(), norm=self.norm,
            queries=passes.queries,
        )

    def _check_label(self, model: nn.Module, label: str, target: Any) -> None:
        where = f"attack {self.name!r}"
        if label not in CRAFT_LABELS:
            raise AttackError(f"{where}: label must be one of {list(CRAFT_LABELS)}, got {label!r}")
        if label == "predicted" and target is not None:
            raise AttackError(f"{where}: label = 'predicted' is for untargeted attacks; drop the target or use 'true'")
        if label == "predicted" and isinstance(model, ModelFamily):
            raise AttackError(f"{where}: label = 'predicted' is not defined for a model family (its members may "
                              "predict differently); use 'true'")

    def _validate(self, x: torch.Tensor, y: torch.Tensor, eps: tuple[float, ...], target: Any) -> None:
        where = f"attack {self.name!r}"
        if any(np.isnan(e) or e < 0 for e in eps):
            raise AttackError(f"{where}: eps must be >= 0, got {list(eps)}")
        if not self.minimal and any(np.isinf(e) for e in eps):
            raise AttackError(f"{where}: eps = inf only makes sense for a minimal-perturbation attack "
                              f"(cw, deepfool); give {self.name!r} a finite budget")
        if self.norm == "l0" and any(e > 1 for e in eps):
            raise AttackError(f"{where}: eps is the fraction of input features that may change, in [0, 1]; "
                              f"got {list(eps)}")
        if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
            raise AttackError(f"{where}: inputs must lie in [0, 1] (got min {float(x.min()):.4g}, "
                              f"max {float(x.max()):.4g}); scale the data, the model normalizes inside")
        if not torch.isfinite(x).all():
            raise AttackError(f"{where}: inputs hold NaN or inf")
        if y.ndim != 1 or len(y) != len(x):
            raise AttackError(f"{where}: labels must have shape ({len(x)},), got {tuple(y.shape)}")
        if target is not None:
            if not self.targeted_ok:
                raise AttackError(f"{where}: this attack has no targeted mode; drop 'target'")
            t = np.asarray(target)
            if t.shape != (len(x),):
                raise AttackError(f"{where}: target must have shape ({len(x)},), got {t.shape}")
            if np.any(t == np.asarray(y)):
                raise AttackError(f"{where}: a target equals the true label for {int(np.sum(t == np.asarray(y)))} "
                                  "samples; choose targets different from the labels")

    def _check_logits(self, model: nn.Module, x: torch.Tensor) -> None:
        """Warn when the model looks like it returns probabilities: attacks need logits."""
        if not len(x):
            return
        with torch.no_grad():
            out = model(x)
        if out.ndim == 2 and out.shape[1] > 1 and bool((out >= 0).all()) and bool(
                torch.allclose(out.sum(1), torch.ones(len(out), device=out.device), atol=1e-3)):
            warnings.warn(f"attack {self.name!r}: the model's outputs are non-negative and sum to 1 — it seems "
                          "to return probabilities; attacks need logits (drop the final softmax)", stacklevel=3)
