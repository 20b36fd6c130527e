"""What every compression method shares: its context, its result, parameter checks, layer selection,
fine-tuning and BatchNorm re-calibration."""

from __future__ import annotations

import abc
import copy
import fnmatch
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from edgebench.errors import CompressError, ConfigError
from edgebench.models.train import Loss, TrainConfig, train

WEIGHTED = (nn.Conv2d, nn.Linear)


@dataclass
class CompressContext:
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
class Compressed:
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


class Compressor(abc.ABC):
    """A registered compression method. Subclasses take keyword-only parameters, check them in
    ``__init__`` (raise :class:`ConfigError` naming the parameter), and implement :meth:`apply`, which must
    not modify the model it is given."""

    name: ClassVar[str] = "?"

    @abc.abstractmethod
    def apply(self, model: nn.Module, ctx: CompressContext) -> Compressed:
        """Return the compressed variant of ``model`` (a trained base)."""

    def attach(self, compressed: Compressed, model: nn.Module, ctx: CompressContext) -> None:
        """Attach artifact exporters that cannot be cached with the twin (closures over the base model and
        calibration data); called after :meth:`apply` and after loading a cached twin. Default: none."""
        return None

    def save_twin(self, twin: nn.Module, path: Path) -> None:
        """Write the twin to the artifact cache. Its classes may be built by the method (pruned shapes,
        hashed layers), so the whole module is pickled; :meth:`load_twin` reads it back only from the cache,
        whose files are hash-checked before use — never from a user-supplied path."""
        torch.save(twin, path)

    def load_twin(self, path: Path, model: nn.Module) -> nn.Module:
        """Read a twin written by :meth:`save_twin` (``model`` is the base, for methods that rebuild)."""
        return torch.load(path, weights_only=False).eval()

    def params(self) -> dict[str, Any]:
        """The configured parameters, for the variant record."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"


# parameter checks ---------------------------------------------------------------------------------------
def check_ratio(name: str, value: Any, *, method: str) -> float:
    """A fraction strictly between 0 and 1 (pruning ratios, partition shares)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) < 1.0:
        raise ConfigError(f"compression method {method!r}: {name} must be a number in (0, 1), got {value!r}")
    return float(value)


def check_bits(value: Any, *, method: str, lo: int = 1, hi: int = 8) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"compression method {method!r}: bits must be an integer in {lo}..{hi}, got {value!r}")
    return value


def check_int(name: str, value: Any, *, method: str, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(f"compression method {method!r}: {name} must be an integer >= {lo}, got {value!r}")
    return value


def check_choice(name: str, value: Any, allowed: Sequence[str], *, method: str) -> str:
    if value not in allowed:
        raise ConfigError(f"compression method {method!r}: {name} {value!r} is not one of {list(allowed)}")
    return str(value)


def check_schedule(value: Any, *, method: str) -> tuple[float, ...]:
    """An increasing list of accumulated shares in (0, 1] ending at 1 (INQ's 50, 75, 87.5, 100 %)."""
    ok = isinstance(value, (list, tuple)) and len(value) > 0 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1 for v in value)
    if not ok or any(b <= a for a, b in zip(value, value[1:])) or not math.isclose(value[-1], 1.0):
        raise ConfigError(f"compression method {method!r}: schedule must be an increasing list of shares in "
                          f"(0, 1] ending with 1.0 (e.g. [0.5, 0.75, 0.875, 1.0]), got {value!r}")
    return tuple(float(v) for v in value)


# layers -------------------------------------------------------------------------------------------------
def select_layers(model: nn.Module, patterns: Sequence[str] | None, ctx: CompressContext, *,
                  kinds: tuple[type[nn.Module], ...] = WEIGHTED) -> list[tuple[str, nn.Module]]:
    """The ``kinds`` layers of ``model`` whose names match one of ``patterns`` (shell globs, e.g.
    ``"features.*"``); all of them when ``patterns`` is None. A pattern matching nothing is an error."""
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]
    if not found:
        kinds_s = ", ".join(k.__name__ for k in kinds)
        raise ctx.fail(f"the model has no {kinds_s} layer this method can compress")
    if patterns is None:
        return found
    chosen = []
    for pat in patterns:
        hits = [(n, m) for n, m in found if fnmatch.fnmatchcase(n, pat)]
        if not hits:
            raise ctx.fail(f"layers: pattern {pat!r} matches no {'/'.join(k.__name__ for k in kinds)} layer; "
                           f"layers are {[n for n, _ in found]}")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def clone(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode: methods never modify the base they were given."""
    return copy.deepcopy(model).eval()


# training -----------------------------------------------------------------------------------------------
def finetune(model: nn.Module, ctx: CompressContext, epochs: int, *, lr: float | None = None, desc: str = "finetune",
             loss: Loss | None = None, after_step: Callable[[], None] | None = None,
             params: list[nn.Parameter] | None = None) -> list[dict[str, Any]]:
    """Train ``model`` for ``epochs`` with the base's optimizer and batch size (learning rate ``lr`` if
    given, else a tenth of the base's, the usual fine-tuning choice); 0 epochs is a no-op."""
    if epochs <= 0 or len(ctx.x_train) == 0:
        return []
    cfg = replace(ctx.train, epochs=epochs, lr=lr if lr is not None else ctx.train.lr / 10, seed=ctx.seed)
    return train(model, ctx.x_train, ctx.y_train, cfg, desc=desc, loss=loss, after_step=after_step, params=params)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: np.ndarray, *, batch_size: int = 256, max_samples: int = 4096) -> int:
    """Re-estimate every BatchNorm's running mean and variance on ``x`` (cumulative average over the
    batches), the BN adaptation NNCF applies after pruning. Returns the number of BatchNorm layers."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or len(x) == 0:
        return 0
    saved = {m: m.momentum for m in bns}
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    xs = np.ascontiguousarray(x[:max_samples], dtype=np.float32)
    for i in range(0, len(xs), batch_size):
        model(torch.from_numpy(xs[i:i + batch_size]))
    for m, mom in saved.items():
        m.momentum = mom
    model.eval()
    return len(bns)


def straight_through(full: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
    """``quantized`` in the forward pass, identity gradient to ``full`` in the backward pass (STE,
    Bengio et al. 2013)."""
    return full + (quantized - full).detach()
