"""Filter pruning with physical channel removal, the method of the poster ``004`` (NNCF filter pruning at
10–50 % with the L1, L2 and geometric-median criteria, iterative, with fine-tuning).

NNCF 3.x no longer has filter pruning and NNCF 2.x only zero-filled filters (the ONNX graph kept its
shapes, so nothing got faster); here torch-pruning (Fang et al., CVPR 2023, "DepGraph") removes the
channels and everything that depends on them, while the *criteria keep NNCF's names and semantics*:

- ``"L1"`` / ``"L2"``: the L1 / L2 norm of each output filter of a convolution (Li et al., ICLR 2017);
- ``"geometric_median"``: FPGM (He et al., CVPR 2019): a filter's summed Euclidean distance to the other
  filters of its layer; the filters closest to the geometric median are the most replaceable.

Which convolutions are pruned, and how filters are scored, follow NNCF's defaults (NNCF 2.x ``filter_pruning``
parameters ``prune_first_conv = false``, ``prune_downsample_convs = false``; ``FilterPruningController`` sums the
filter importance over each group of convolutions pruned together), each kept as an option for the other choice:

- ``prune_first = false``: a *first* convolution — one reached from the model input by a path through no other
  convolution or linear layer (NNCF's ``get_first_nodes_of_type``) — is not pruned;
- ``prune_downsample = false``: a convolution with a stride above 1 (NNCF's ``is_conv_with_downsampling``,
  depthwise ones included) is not pruned;
- a group (the convolutions that lose the same channels: a residual stage's convolutions and projection, a depthwise
  convolution and its producer) holding one such convolution is not pruned at all, as NNCF leaves a cluster with
  an unprunable node unpruned (torch-pruning skips a group with an ignored layer);
- ``importance = "group"``: a channel's score is the sum of the criterion over every convolution of its group whose
  output channel it is (NNCF's cumulative filter importance); ``"root"`` scores it on the root convolution's own
  filters only (the producer's for a depthwise one), edgebench's earlier behaviour.

Only convolutions are roots. Depthwise convolutions (``groups == in_channels ==
out_channels``, MobileNet's) are accepted but are never roots of their own: torch-pruning puts them in the
dependency group of the convolution that feeds them, so they lose the same channels as that producer, ranked
by the producer's filters; other grouped convolutions are refused. Linear layers lose input features only where they
follow a pruned convolution, and the classifier is never pruned. The ``ratio`` share of each
convolution's filters goes in ``steps`` equal steps; after each, BatchNorm statistics are re-estimated on
training data (NNCF's BN adaptation) and the network is fine-tuned for ``epochs_per_step`` epochs.

Channel rounding (``round_to``, default 8): the channels a layer keeps are rounded to a multiple of ``round_to``,
because CPU runtimes vectorize convolutions over blocks of 8 or 16 channels (oneDNN's nChw8c/nChw16c, MLAS's
NCHWc): in ONNX Runtime a four-convolution network runs slower at 58 or 57 channels than at 64, while 56 and 48
are faster (issue 16, ``bench/bench_pruning.py``). Which way is ``rounding``:

- ``"down"`` (default; torch-pruning's ``round_to``): the ratio is a *minimum*. Rounding down can remove much
  more than the ratio on small layers (16 channels at 30 % keep 8), and two ratios can give the same network
  (a 64-channel layer keeps 32 at 40 % and at 50 %). A layer that would keep fewer than ``round_to`` channels
  keeps what the ratio gives.
- ``"up"`` (NNCF's ``get_rounded_pruned_element_number``, "always rounds number of remaining elements up"): the
  ratio is a *maximum*; a layer keeps ``ceil(keep / round_to) * round_to`` channels of the ``keep`` the ratio
  leaves (torch-pruning's ``int(channels * (1 - ratio))``), at most all of them, so a 16-channel layer is not
  pruned below 50 %.

``round_to = 1`` is the unrounded pruning.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgebench.compress import COMPRESSORS
from edgebench.compress.base import Compressor, finetune, recalibrate_batchnorm
from edgebench.errors import ConfigError
from edgebench.models.placement import example_input
from edgebench.params import check_choice, check_int, check_ratio
from edgebench.variants import Variant, VariantContext, clone, select_layers

CRITERIA = ("L1", "L2", "geometric_median")
IMPORTANCE = ("group", "root")
ROUNDING = ("down", "up")


def filter_importance(weight: torch.Tensor, criterion: str) -> torch.Tensor:
    """One score per output filter of ``weight`` (out, in, kh, kw); low scores are pruned first."""
    flat = weight.detach().flatten(1).float()
    if criterion == "L1":
        return flat.abs().sum(1)
    if criterion == "L2":
        return flat.norm(dim=1)
    return torch.cdist(flat, flat).sum(1)


def is_depthwise(m: nn.Module) -> bool:
    """A depthwise convolution: one filter per input channel (``groups == in_channels == out_channels > 1``)."""
    return isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels == m.out_channels


def _importance(criterion: str, roots: set[int], scope: str = "root") -> Any:
    import torch_pruning as tp

    class FilterImportance(tp.importance.Importance):
        """The root convolution's own filter scores (NNCF semantics), for the indices torch-pruning asks.

        A depthwise convolution is never a root of its own: when torch-pruning's graph walk reaches one before
        the convolution that feeds it (as in MobileNet), the scores come from that producer (the first regular
        convolution in ``roots`` whose output channels the group prunes), indexed as the group maps them; a group
        with no such producer (a depthwise convolution on the input or after an excluded layer) is not pruned."""

        def __call__(self, group: Any) -> torch.Tensor | None:
            dep, idxs = group[0]
            layer = dep.target.module
            if scope == "group":
                return _group_importance(group, len(idxs), criterion)
            if not is_depthwise(layer):
                return filter_importance(layer.weight, criterion)[list(idxs)]
            for dep_k, idxs_k in list(group)[1:]:
                m = dep_k.target.module
                if (isinstance(m, nn.Conv2d) and not is_depthwise(m) and id(m) in roots
                        and group._DG.is_out_channel_pruning_fn(dep_k.handler) and len(idxs_k) == len(idxs)):
                    return filter_importance(m.weight, criterion)[[int(i) for i in idxs_k]]
            return None

    return FilterImportance()


def _group_importance(group: Any, n: int, criterion: str) -> torch.Tensor | None:
    """NNCF's cumulative filter importance: per channel of the group, the sum of the criterion over every
    convolution (depthwise ones included) whose output channel it is, each indexed as the group maps it."""
    total = None
    for dep, idxs in group:
        m = dep.target.module
        if isinstance(m, nn.Conv2d) and group._DG.is_out_channel_pruning_fn(dep.handler) and len(idxs) == n:
            score = filter_importance(m.weight, criterion)[[int(i) for i in idxs]]
            total = score if total is None else total + score
    return total


def first_convs(model: nn.Module, example: torch.Tensor) -> list[nn.Module]:
    """The convolutions reached from the input by a path through no other Conv2d or Linear layer (NNCF's "first
    convolutions"), found on torch-pruning's traced graph."""
    import torch_pruning as tp

    dg = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    firsts = []
    for m, node in dg.module2node.items():
        if not isinstance(m, nn.Conv2d):
            continue
        todo, seen, first = list(node.inputs), set(), not node.inputs
        while todo and not first:
            up = todo.pop()
            if id(up) in seen or isinstance(up.module, (nn.Conv2d, nn.Linear)):
                continue
            seen.add(id(up))
            first = not up.inputs
            todo += up.inputs
        if first:
            firsts.append(m)
    return firsts


def _check_bool(name: str, value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{what}: {name} must be true or false, got {value!r}")
    return value


def rounded_pruned(current: int, n_pruned: int, round_to: int, *, up: bool = False) -> int:
    """Channels to remove from ``current`` so that the rest is a multiple of ``round_to``. Rounded down (``up``
    false: at least ``n_pruned``, or ``n_pruned`` itself where that multiple would be 0) or up (NNCF's: at most
    ``n_pruned``, never below 0)."""
    keep = current - n_pruned
    if up:
        return current - min(-(-keep // round_to) * round_to, current)
    rounded = keep - keep % round_to
    return current - rounded if rounded > 0 else max(n_pruned, 0)


def _pruner(tp: Any, up: bool) -> type:
    class RoundingPruner(tp.pruner.MetaPruner):
        """torch-pruning's MetaPruner, whose channel rounding never empties a layer and goes ``up`` where asked
        (:func:`rounded_pruned`)."""

        def _round_to(self, n_pruned: int, current_channels: int, round_to: int) -> int:
            return rounded_pruned(current_channels, n_pruned, round_to, up=up)

    return RoundingPruner


def channel_counts(model: nn.Module) -> dict[str, list[int]]:
    """``{layer: [in, out]}`` channel/feature counts of every Conv2d and Linear."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            out[name] = [m.in_channels, m.out_channels]
        elif isinstance(m, nn.Linear):
            out[name] = [m.in_features, m.out_features]
    return out


@COMPRESSORS.register("filter_pruning")
class FilterPruning(Compressor):
    """Iterative filter pruning with physical removal (torch-pruning) and NNCF's criteria.

    Args:
        ratio: share of each convolution's filters removed, in (0, 1) (the poster: 0.1–0.5).
        criterion: ``"L1"``, ``"L2"`` or ``"geometric_median"``.
        steps: pruning steps (the ratio is reached linearly).
        epochs_per_step: fine-tuning epochs after each step.
        lr: fine-tuning learning rate; default a tenth of the base's.
        layers: module-name globs of the convolutions to prune; default all.
        round_to: the kept channels of each layer are rounded to a multiple of this (default 8, the vector
            width CPU runtimes block channels by); 1 for no rounding.
        rounding: ``"down"`` (default: the ratio is a minimum, torch-pruning's) or ``"up"`` (the ratio is a
            maximum, NNCF's).
        prune_first: prune the first convolutions too (NNCF's ``prune_first_conv``; default false, NNCF's).
        prune_downsample: prune convolutions with stride > 1 too (NNCF's ``prune_downsample_convs``; default false).
        importance: ``"group"`` (default, NNCF's: summed over the group) or ``"root"`` (the root's own filters).
    """

    name = "filter_pruning"

    def __init__(self, *, ratio: float, criterion: str = "L2", steps: int = 1, epochs_per_step: int = 1,
                 lr: float | None = None, layers: list[str] | None = None, round_to: int = 8,
                 rounding: str = "down", prune_first: bool = False, prune_downsample: bool = False,
                 importance: str = "group") -> None:
        self.ratio = check_ratio("ratio", ratio, what=self.what)
        self.criterion = check_choice("criterion", criterion, CRITERIA, what=self.what)
        self.steps = check_int("steps", steps, what=self.what, lo=1)
        self.epochs_per_step = check_int("epochs_per_step", epochs_per_step, what=self.what)
        self.lr = lr
        self.layers = list(layers) if layers is not None else None
        self.round_to = check_int("round_to", round_to, what=self.what, lo=1)
        self.rounding = check_choice("rounding", rounding, ROUNDING, what=self.what)
        self.prune_first = _check_bool("prune_first", prune_first, self.what)
        self.prune_downsample = _check_bool("prune_downsample", prune_downsample, self.what)
        self.importance = check_choice("importance", importance, IMPORTANCE, what=self.what)

    def _nncf_kept(self, model: nn.Module, example: torch.Tensor, ctx: VariantContext) -> set[int]:
        """ids of the convolutions NNCF's defaults leave unpruned: first ones, and those with stride > 1."""
        kept = set()
        if not self.prune_first:
            try:
                kept |= {id(m) for m in first_convs(model, example)}
            except Exception as exc:  # torch-pruning's tracer fails on graphs it cannot follow
                raise ctx.fail(f"torch-pruning cannot trace this model ({type(exc).__name__}: {exc})") from None
        if not self.prune_downsample:
            kept |= {id(m) for m in model.modules() if isinstance(m, nn.Conv2d) and tuple(m.stride) != (1, 1)}
        return kept

    def apply(self, model: nn.Module, ctx: VariantContext) -> Variant:
        import torch_pruning as tp

        twin = clone(model)
        before = channel_counts(twin)
        convs = select_layers(twin, self.layers, ctx, kinds=(nn.Conv2d,))
        for name, conv in convs:
            if conv.groups != 1 and not is_depthwise(conv):
                raise ctx.fail(f"grouped convolution (groups={conv.groups}) is not supported by filter pruning; "
                               "leave it out with 'layers'", layer=name)
        example = example_input(twin, ctx.input_shape)
        kept = self._nncf_kept(twin, example, ctx)
        chosen = {id(m) for _, m in convs if id(m) not in kept}
        if not chosen:
            raise ctx.fail("no convolution left to prune: every one chosen is a first convolution or has a stride "
                           "above 1, which NNCF's defaults leave unpruned; set prune_first = true or "
                           "prune_downsample = true to prune them")
        # depthwise convolutions follow the convolution that feeds them, whatever 'layers' says (unless NNCF's
        # rules keep them, and with them their group)
        ignored = [m for _, m in twin.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in chosen
                   and (not is_depthwise(m) or id(m) in kept)]
        try:
            pruner = _pruner(tp, self.rounding == "up")(
                twin, example, importance=_importance(self.criterion, chosen, self.importance),
                pruning_ratio=self.ratio,
                iterative_steps=self.steps, ignored_layers=ignored, root_module_types=[nn.Conv2d],
                round_to=self.round_to if self.round_to > 1 else None)
        except Exception as exc:  # torch-pruning's tracer fails on graphs it cannot follow
            raise ctx.fail(f"torch-pruning cannot trace this model ({type(exc).__name__}: {exc})") from None
        history: list[dict[str, Any]] = []
        bn = 0
        for step in range(self.steps):
            pruner.step()
            bn = recalibrate_batchnorm(twin, ctx.x_train)
            for h in finetune(twin, ctx, self.epochs_per_step, lr=self.lr,
                              desc=f"filter pruning step {step + 1}/{self.steps}"):
                history.append({**h, "prune_step": step + 1})
        twin.eval()
        after = channel_counts(twin)
        with torch.no_grad():
            out = twin(example)
        if out.shape[-1] != ctx.num_classes:
            raise ctx.fail(f"pruning changed the number of outputs to {out.shape[-1]}")
        per_layer = {name: {"channels_before": before[name], "channels_after": after.get(name)} for name in before}
        return Variant(model=twin, history=history, info={
            "criterion": self.criterion, "ratio": self.ratio, "steps": self.steps, "round_to": self.round_to,
            "rounding": self.rounding, "prune_first": self.prune_first, "prune_downsample": self.prune_downsample,
            "importance": self.importance,
            "not_pruned": sorted(n for n, m in twin.named_modules() if id(m) in kept), "per_layer": per_layer,
            "batchnorm_recalibrated": bn, "engine": f"torch-pruning {tp.__version__}"})
