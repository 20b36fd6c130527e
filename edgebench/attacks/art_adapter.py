"""The ``art`` attack: runs any evasion attack of the Adversarial Robustness Toolbox (ART, Nicolae et al.,
"Adversarial Robustness Toolbox v1.0.0", arXiv:1807.01069) inside edgebench, on the same models, inputs,
budgets and result type as the built-in attacks. Norm: the one declared (``norm``, default L∞).

The torch model is wrapped in ``art.estimators.classification.PyTorchClassifier`` (clip values (0, 1),
cross-entropy loss, input shape from ``x``, number of classes from one forward pass), and the ART class named
``attack`` (``art.attacks.evasion.<attack>``) is built with ``params`` for each ε:

* when the ART attack takes ``eps_param`` (default ``"eps"``), ε is passed as that parameter and the attack
  runs once per ε; ``eps_relative`` sets other parameters to a multiple of ε (``{"eps_step": 0.25}``: PGD's
  step is ε/4 at every ε, rather than ART's fixed default 0.1);
* otherwise (DeepFool, CarliniL2Method, …) it runs once, like a minimal attack, and the result at each finite ε
  is its perturbation projected onto the ε-ball of ``norm`` (see ``base``): declare ``norm="l2"`` for the L2
  ones (DeepFool, CarliniL2Method).

Unless ``params`` says otherwise: ``norm`` is passed as ART's ``norm`` (``np.inf`` or 2) when the attack takes
one, ``batch_size`` is the whole call, ``verbose`` is off. With a target, ``targeted=True`` and the targets
(one-hot) are ART's ``y``; without, ``y`` is the one-hot true label. ART's output is used as it is (no
projection at a budgeted ε). Passes: ART does not report them, so the model is wrapped in a module that counts
its forward calls and, through a hook on its output, every backward through it (ART's class gradients do one
backward per class); one more forward reads the number of classes and one the prediction on the result.
ART is imported when an attack is built, never when this module is imported.

Example::

    pgd = ArtAttack(attack="ProjectedGradientDescent", params={"max_iter": 40, "num_random_init": 1},
                    eps_relative={"eps_step": 2.5 / 40})
    result = pgd(model, x, y, eps=[0.1, 0.2, 0.3])
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
from typing import Any

import numpy as np
import torch
from torch import nn

from edgebench.attacks import ATTACKS
from edgebench.attacks._gradient import no_gradient
from edgebench.attacks.base import Attack, Passes, predict
from edgebench.errors import AttackError, ConfigError
from edgebench.models.placement import model_dtype, numpy_of, to_device

_WHERE = "attack 'art'"
_MISSING = f"{_WHERE}: needs the Adversarial Robustness Toolbox: pip install 'edgebench[art]'"
_ART_NORMS = {"linf": float("inf"), "l2": 2}
_SET_BY_ADAPTER = ("targeted",)
# edgebench's names (and common abbreviations) of attacks ART has, for "did you mean"
_EDGEBENCH_NAMES = {
    "fgsm": "fastgradientmethod",
    "fgm": "fastgradientmethod",
    "pgd": "projectedgradientdescent",
    "bim": "basiciterativemethod",
    "mim": "momentumiterativemethod",
    "cw": "carlinil2method",
    "deepfool": "deepfool",
    "apgd": "autoprojectedgradientdescent",
    "jsma": "saliencymapmethod",
    "uap": "universalperturbation",
    "square": "squareattack",
    "hsj": "hopskipjump",
}


def _evasion_module() -> Any:
    try:
        import art.attacks.evasion as evasion
    except ImportError:
        raise AttackError(_MISSING) from None
    return evasion


def _art_class(name: str) -> type:
    """The evasion attack class ``art.attacks.evasion.<name>``; unknown names list the close ones."""
    evasion = _evasion_module()
    from art.attacks.attack import EvasionAttack

    known = sorted(
        n
        for n in dir(evasion)
        if not n.startswith("_")
        and isinstance(getattr(evasion, n), type)
        and issubclass(getattr(evasion, n), EvasionAttack)
    )
    if name in known:
        return getattr(evasion, name)
    lower = {k.lower(): k for k in known}
    close = [lower[n] for n in (_EDGEBENCH_NAMES.get(str(name).lower()), str(name).lower()) if n in lower]
    close += [c for c in difflib.get_close_matches(str(name), known, n=3, cutoff=0.5) if c not in close]
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(f"{_WHERE}: ART has no evasion attack {name!r}.{hint} Known: {', '.join(known)}")


def _art_params(cls: type) -> list[str]:
    """The keyword parameters of the ART attack's constructor, less the estimator."""
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]  # self, estimator/classifier
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in params if p.kind in kinds]


class _Counting(nn.Module):
    """Counts the forward calls of ``inner`` and every backward pass through its output; a forward that ART
    means to differentiate (its input requires grad) but whose output has no gradient is an :class:`AttackError`
    (ART would fail later in ``backward`` with a RuntimeError)."""

    def __init__(self, inner: nn.Module, passes: Passes) -> None:
        super().__init__()
        self.inner = inner
        self._passes = passes
        self._dtype = model_dtype(inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x.to(self._dtype))  # ART sends float32; the gradient flows back through the cast
        self._passes.forward += 1
        if out.requires_grad:
            out.register_hook(self._backward)
        elif x.requires_grad and torch.is_grad_enabled():
            raise no_gradient(ArtAttack.name, RuntimeError("its output does not require grad"))
        return out

    def _backward(self, grad: torch.Tensor) -> None:
        self._passes.backward += 1


@ATTACKS.register("art")
class ArtAttack(Attack):
    """Any ART evasion attack, run by edgebench.

    Args:
        attack: the class name in ``art.attacks.evasion`` (``"ProjectedGradientDescent"``, ``"DeepFool"``, …).
        params: the ART constructor's parameters (never the estimator, ε or ``targeted``).
        eps_param: the ART parameter that receives ε; an attack without it runs once (minimal-style).
        eps_relative: ART parameters set to ``factor · ε`` at each ε.
        norm: the budget norm of ε, ``"linf"`` or ``"l2"`` (also ``"l0"`` for attacks that take ε).
    """

    name = "art"
    norm = "linf"

    def __init__(
        self,
        *,
        attack: str,
        params: dict[str, Any] | None = None,
        eps_param: str | None = "eps",
        eps_relative: dict[str, float] | None = None,
        norm: str = "linf",
    ) -> None:
        if norm not in ("linf", "l2", "l0"):
            raise ConfigError(f"{_WHERE}: norm must be 'linf', 'l2' or 'l0', got {norm!r}")
        cls = _art_class(attack)
        accepted = _art_params(cls)
        params = dict(params or {})
        eps_relative = dict(eps_relative or {})
        allowed = ", ".join(p for p in accepted if p not in _SET_BY_ADAPTER)
        for key in [*params, *eps_relative]:
            if key not in accepted:
                close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{_WHERE}: ART's {attack} has no parameter {key!r}{hint}. Its parameters: {allowed}")
            if key in _SET_BY_ADAPTER:
                raise ConfigError(f"{_WHERE}: do not set {key!r}; pass a target to the call for a targeted attack")
        if eps_param is not None and eps_param not in accepted and eps_param != "eps":
            raise ConfigError(
                f"{_WHERE}: ART's {attack} has no parameter {eps_param!r} for ε. Its parameters: {allowed}"
            )
        has_eps = eps_param is not None and eps_param in accepted
        if has_eps and (eps_param in params or eps_param in eps_relative):
            raise ConfigError(f"{_WHERE}: {eps_param!r} is ε, given by the call's eps; drop it from params")
        if eps_relative and not has_eps:
            raise ConfigError(f"{_WHERE}: eps_relative needs an attack that takes ε; ART's {attack} does not")
        if not has_eps and norm == "l0":
            raise ConfigError(
                f"{_WHERE}: ART's {attack} takes no ε, so its result is projected onto each ε-ball; "
                "that needs norm 'linf' or 'l2'"
            )
        if any(not isinstance(f, (int, float)) or f <= 0 for f in eps_relative.values()):
            raise ConfigError(f"{_WHERE}: eps_relative factors must be numbers > 0, got {eps_relative}")
        self.attack = attack
        self.params = params
        self.eps_param = eps_param if has_eps else None
        self.eps_relative = eps_relative
        self.norm = norm  # the base reads the budget norm from the instance
        self.minimal = not has_eps
        self._cls = cls
        self._accepted = accepted

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
        if target is not None and "targeted" not in self._accepted:
            raise AttackError(f"{_WHERE}: ART's {self.attack} has no targeted mode; drop 'target'")
        if not len(x):
            return x.clone(), torch.zeros(0, dtype=torch.int64, device=x.device)
        try:
            from art.estimators.classification import PyTorchClassifier
        except ImportError:
            raise AttackError(_MISSING) from None

        counting = _Counting(model, passes)
        with torch.no_grad():
            n_classes = int(counting(x[:1]).shape[1])
        # ART's estimator computes on the model's device: device_type "gpu" means torch's *current* CUDA device,
        # to which it moves the model, so that is made the model's own (cuda:N) while ART runs
        on_gpu = x.device.type == "cuda"
        with torch.cuda.device(x.device) if on_gpu else contextlib.nullcontext():
            classifier = PyTorchClassifier(
                model=counting,
                loss=nn.CrossEntropyLoss(),
                input_shape=tuple(x.shape[1:]),
                nb_classes=n_classes,
                clip_values=(0.0, 1.0),
                device_type="gpu" if on_gpu else "cpu",
            )
            kwargs = self._kwargs(eps, len(x))
            if target is not None:
                kwargs["targeted"] = True
            try:
                attack = self._cls(classifier, **kwargs)
            except (ValueError, TypeError) as exc:  # ART's parameter checks (EstimatorError is a TypeError)
                raise ConfigError(f"{_WHERE}: ART's {self.attack} rejected {kwargs}: {exc}") from exc
            labels = numpy_of(y if target is None else target)
            onehot = np.eye(n_classes, dtype=np.float32)[labels]
            x_adv = attack.generate(x=numpy_of(x).astype(np.float32), y=onehot)
        x_adv_t = to_device(np.asarray(x_adv).reshape(x.shape), x.device, dtype=x.dtype)
        return x_adv_t, predict(model, x_adv_t, passes)

    def _kwargs(self, eps: float, n: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if "norm" in self._accepted and self.norm in _ART_NORMS:
            kwargs["norm"] = _ART_NORMS[self.norm]
        if "batch_size" in self._accepted:
            kwargs["batch_size"] = max(n, 1)
        if "verbose" in self._accepted:
            kwargs["verbose"] = False
        kwargs.update(self.params)
        if self.eps_param is not None:
            kwargs[self.eps_param] = float(eps)
            kwargs.update({k: float(f * eps) for k, f in self.eps_relative.items()})
        return kwargs
