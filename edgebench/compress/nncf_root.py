"""Any root module made safe for NNCF 3.x, under the same names.

NNCF's ``wrap_model`` (``nncf.quantize`` and ``nncf.prune`` on a torch model) adds its ``HookStorage`` as a
*child* of the root module (``__nncf_hooks``). A root whose ``forward`` calls its children in turn — a plain
``nn.Sequential``, or a user's module looping over ``self.children()`` — then calls the storage too, which has no
``forward``: ``NotImplementedError: Module [HookStorage] is missing the required "forward" function``. Wrapping
the network in a module that holds it as one attribute avoids that, but renames every layer (``model.0``) and
with them the twin's state dict, the stats' layer names and NNCF's op names.

:class:`NNCFRoot` does neither: it registers the root's children (and the root's own parameters and buffers)
under their own names, so the NNCF twin's module and parameter names are the base's, and its ``forward`` calls
the root through an attribute that is not a child, so the root's loop never sees the storage NNCF adds to the
wrapper. :func:`unwrap` gives the root back (its children are the wrapper's: the same objects).
"""

from __future__ import annotations

from typing import Any

from torch import nn


class NNCFRoot(nn.Module):
    """``root`` with its children, parameters and buffers registered here under the same names; calls ``root``."""

    def __init__(self, root: nn.Module) -> None:
        super().__init__()
        for name, child in root.named_children():
            self.add_module(name, child)
        for name, p in root.named_parameters(recurse=False):
            self.register_parameter(name, p)
        for name, b in root.named_buffers(recurse=False):
            self.register_buffer(name, b, persistent=name not in root._non_persistent_buffers_set)
        object.__setattr__(self, "_edgebench_root", root)  # not a child: NNCF's storage stays out of the root's loop
        self.training = root.training

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._edgebench_root(*args, **kwargs)

    def train(self, mode: bool = True) -> NNCFRoot:
        self._edgebench_root.train(mode)  # the root's own flag (its children are ours too)
        return super().train(mode)


def for_nncf(model: nn.Module) -> NNCFRoot:
    """``model`` (not copied) behind an :class:`NNCFRoot`, ready for ``nncf.quantize`` / ``nncf.prune``."""
    return model if isinstance(model, NNCFRoot) else NNCFRoot(model)


def unwrap(model: nn.Module) -> nn.Module:
    """The root module behind an :class:`NNCFRoot` (the model itself otherwise)."""
    return model._edgebench_root if isinstance(model, NNCFRoot) else model
