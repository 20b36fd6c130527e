"""Variant methods: what turns a trained model into a variant — compression methods (:mod:`edgebench.compress`,
a plan's ``[[compress]]``) and defenses (:mod:`edgebench.defenses`, ``[[defend]]``) alike.

One base (:class:`VariantMethod`), one context (:class:`VariantContext`), one result (:class:`Variant`), one
layer selector (:func:`select_layers`) and one lookup by kind and name (:func:`method_for`,
:func:`create_method`) over the two registries, one per extension point. The parameter checks are
:mod:`edgebench.params` (shared with the attacks). Host side only: imports torch.
"""

from __future__ import annotations

import abc
import copy
import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from edgebench.errors import CompressError
from edgebench.models.placement import cpu_copy
from edgebench.models.train import TrainConfig
from edgebench.params import check_integers
from edgebench.registry import Registry, check_kwargs

WEIGHTED = (nn.Conv2d, nn.Linear)

#: The kinds of variant method: the plan tables ``[[compress]]`` and ``[[defend]]``, one registry each.
KINDS = ("compress", "defend")


@dataclass
class VariantContext:
    """What a method may use besides the model: training data (for fine-tuning and calibration), the base
    model's training settings, a seed, a builder of fresh uncompressed models, ``where`` — the plan
    entry and variant name, for error messages — and ``workdir``, a folder that survives an interrupted run
    (for checkpoints of long training, so a resumed run continues where it stopped; None: no checkpoints)."""

    x_train: np.ndarray
    y_train: np.ndarray
    input_shape: tuple[int, ...]
    num_classes: int
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    where: str = "compress"
    build_base: Callable[[], nn.Module] | None = None
    workdir: Path | None = None

    def fail(self, msg: str, *, layer: str | None = None) -> CompressError:
        at = f" layer {layer!r}:" if layer else ""
        return CompressError(f"{self.where}:{at} {msg}")


@dataclass
class Variant:
    """A variant. ``model`` is the torch twin (eval mode) that host attacks differentiate through;
    ``info`` holds the method's facts (grid, schedule, channel counts, sparsity), stored with the variant.

    ``deploy`` is the module exported for the devices when it is not the twin itself (hashed layers deploy
    as dense virtual weights); ``export_onnx`` / ``export_openvino`` replace the default export where the
    artifact is made another way (int8: a QDQ ONNX model quantized from the fp32 export);
    ``parity_atol`` loosens the parity tolerance where the twin only simulates the artifact's arithmetic.
    """

    model: nn.Module
    info: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    deploy: nn.Module | None = None
    export_onnx: Callable[[Path], Path] | None = None
    export_openvino: Callable[[Path], Path] | None = None
    parity_atol: float | None = None
    precision: str = "f32"


class VariantMethod(abc.ABC):
    """A registered variant method. Subclasses set ``kind`` (a key of :data:`KINDS`) and ``name``, take
    keyword-only parameters, check them in ``__init__`` with :mod:`edgebench.params` (``what=self.what``),
    and implement :meth:`apply`, which must not modify the model it is given."""

    kind: ClassVar[str] = "?"
    name: ClassVar[str] = "?"
    #: "" where :meth:`apply` runs on any device (that of the model it is given); else one line saying why the
    #: method must run on the CPU (a library limit): the runner then runs it there and records the reason
    cpu_only: ClassVar[str] = ""

    @property
    def what(self) -> str:
        """The method as error messages name it: ``"compression method 'kbit'"``, ``"defense 'mu_law'"``."""
        return f"{registry_for(self.kind).kind} {self.name!r}"

    @abc.abstractmethod
    def apply(self, model: nn.Module, ctx: VariantContext) -> Variant:
        """Return the variant of ``model`` (a trained base or another variant's twin)."""

    def attach(self, variant: Variant, model: nn.Module, ctx: VariantContext) -> None:
        """Attach artifact exporters that cannot be cached with the twin (closures over the base model and
        calibration data); called after :meth:`apply` and after loading a cached twin. Default: none."""
        return None

    def save_twin(self, twin: nn.Module, path: Path) -> None:
        """Write the twin to the artifact cache. Its classes may be built by the method (pruned shapes,
        hashed layers), so the whole module is pickled, from the CPU (a copy where the twin is on a GPU: the file
        loads anywhere); :meth:`load_twin` reads it back only from the cache, whose files are hash-checked before
        use — never from a user-supplied path."""
        torch.save(cpu_copy(twin), path)

    def load_twin(self, path: Path, model: nn.Module) -> nn.Module:
        """Read a twin written by :meth:`save_twin` (``model`` is the base, for methods that rebuild)."""
        return torch.load(path, weights_only=False).eval()

    def params(self) -> dict[str, Any]:
        """The configured parameters, for the variant record."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"


# lookup -------------------------------------------------------------------------------------------------
def registry_for(kind: str) -> Registry[Any]:
    """The registry of ``kind`` (``"compress"``: compression methods, ``"defend"``: defenses)."""
    if kind == "compress":
        from edgebench.compress import COMPRESSORS

        return COMPRESSORS
    if kind == "defend":
        from edgebench.defenses import DEFENSES

        return DEFENSES
    raise ValueError(f"unknown kind of variant method {kind!r}; known: {list(KINDS)}")


def method_for(kind: str, name: str, *, where: str = "") -> type[VariantMethod]:
    """The class of method ``name`` of ``kind``; an unknown name is an error with "did you mean"."""
    return registry_for(kind).get(name, where=where)


def create_method(kind: str, name: str, *, where: str = "", **params: Any) -> VariantMethod:
    """Instantiate method ``name`` of ``kind``; unknown or missing parameters, non-integers given to integer
    parameters and bad values are one-line :class:`~edgebench.errors.ConfigError`."""
    registry = registry_for(kind)
    cls = registry.get(name, where=where)
    what = f"{registry.kind} {name!r}"
    check_kwargs(cls.__init__, params, what=what, where=where)
    check_integers(cls.__init__, params, what=what, where=where)
    return cls(**params)


# layers -------------------------------------------------------------------------------------------------
def _kind_names(kinds: tuple[type[nn.Module], ...]) -> str:
    """``Conv2d/Linear``: hashed layers are named by the dense kind they stand for."""
    return "/".join(dict.fromkeys(k.__name__.removeprefix("Hashed") for k in kinds))


def select_layers(model: nn.Module, patterns: Sequence[str] | None, ctx: VariantContext, *,
                  kinds: tuple[type[nn.Module], ...] = WEIGHTED, last_of: tuple[type[nn.Module], ...] | None = None,
                  method: str = "") -> list[tuple[str, nn.Module]]:
    """The ``kinds`` layers of ``model`` whose names match one of ``patterns`` (shell globs, e.g.
    ``"features.*"``). With ``patterns`` None: all of them (where another module holds a weight matrix — a
    Conv1d, an Embedding, a custom layer — that is an error naming it, not a silent skip), or with ``last_of``
    the last layer of those kinds (the one closest to the output: defenses' default, the last fully connected
    layer). A pattern matching nothing, or a model without the layers wanted, is a :class:`CompressError` naming
    the variant (``method``, if given, prefixes the message)."""
    prefix = f"{method}: " if method else ""
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]
    names = [n for n, _ in found]
    if patterns is None and last_of is not None:
        last = [(n, m) for n, m in found if isinstance(m, last_of)]
        if not last:
            raise ctx.fail(f"{prefix}the model has no {_kind_names(last_of)} layer (the default target, the one "
                           f"closest to the output); name the layers with `layers` (weighted layers: {names})")
        return [last[-1]]
    if not found:
        raise ctx.fail(f"{prefix}the model has no {_kind_names(kinds)} layer this method can change")
    if patterns is None:
        _refuse_other_weighted(model, ctx, prefix, names)
        return found
    chosen: list[tuple[str, nn.Module]] = []
    for pat in patterns:
        hits = [(n, m) for n, m in found if fnmatch.fnmatchcase(n, pat)]
        if not hits:
            raise ctx.fail(f"{prefix}layers: pattern {pat!r} matches no {_kind_names(kinds)} layer; layers are "
                           f"{names}")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def _refuse_other_weighted(model: nn.Module, ctx: VariantContext, prefix: str, names: list[str]) -> None:
    """"Every layer" must not silently skip weights: a layer holding a weight matrix of a type the methods do not
    change (Conv1d, ConvTranspose2d, Embedding, a custom layer's own parameter...) is an error naming it."""
    for name, m in model.named_modules():
        if isinstance(m, (*WEIGHTED, parametrize.ParametrizationList)):
            continue
        own = [p for p, t in m.named_parameters(recurse=False) if t.dim() >= 2]
        if own:
            raise ctx.fail(f"{prefix}{type(m).__name__} (parameter {own[0]!r}) is not a Conv2d or Linear layer, the "
                           f"only kinds this method changes; name the layers to change with `layers` (e.g. "
                           f"{names[:4]}{'...' if len(names) > 4 else ''}) to leave it as it is",
                           layer=name or "<root>")


def clone(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode: methods never modify the base they were given."""
    return copy.deepcopy(model).eval()
