"""One :class:`Registry` per extension point (datasets, models, attacks, backends, transports, ...).

Entries are registered at their definition site with ``@REGISTRY.register("name")``; lookups of unknown
names raise :class:`~edgebench.errors.UnknownNameError` listing close matches and every known name.
A registry can name modules to import lazily on first lookup, so that ``import edgebench`` stays cheap
and heavy dependencies load only when an entry of theirs is used. Torch-free.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from edgebench.errors import ConfigError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> entry mapping for one extension point.

    Args:
        kind: what the entries are, used in error messages ("attack", "dataset", ...).
        modules: modules whose import registers the built-in entries; imported on first lookup. A name ending
            in ``.*`` stands for every module of that package whose name does not start with ``_`` (so a new
            built-in entry is one new file plus one decorator).
    """

    def __init__(self, kind: str, *, modules: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._modules = modules
        self._entries: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``; a duplicate name is an error."""

        def deco(obj: T) -> T:
            existing = self._entries.get(name)
            if existing is not None and existing is not obj:
                raise ConfigError(f"{self.kind} {name!r} is registered twice ({existing!r} and {obj!r})")
            self._entries[name] = obj
            return obj

        return deco

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._modules:
                if module.endswith(".*"):
                    import pkgutil

                    package = importlib.import_module(module[:-2])
                    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
                        if not info.name.startswith("_"):
                            importlib.import_module(f"{package.__name__}.{info.name}")
                else:
                    importlib.import_module(module)

    def get(self, name: str, *, where: str = "") -> T:
        """Return the entry ``name``, or raise an error with "did you mean" and the known names.

        ``where`` says where the name came from (``"plan.toml: attacks[1].name"``) for the message.
        """
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            pass
        known = sorted(self._entries)
        close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        prefix = f"{where}: " if where else ""
        raise UnknownNameError(
            f"{prefix}unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {', '.join(known)}"
        ) from None

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return sorted(self._entries.items())


def check_kwargs(func: Callable[..., object], params: dict[str, object], *, what: str, where: str = "") -> None:
    """Raise :class:`ConfigError` for keyword parameters ``func`` does not take, or required ones missing.

    ``what`` names the entry ("attack 'pgd'"), ``where`` where the parameters came from ("plan.toml: ...").
    """
    import inspect

    sig = inspect.signature(func)
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    accepted = {n: p for n, p in sig.parameters.items() if p.kind in kinds and n != "self"}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    allowed = ", ".join(sorted(accepted)) or "(none)"
    prefix = f"{where}: " if where else ""
    if not takes_any:
        for key in params:
            if key not in accepted:
                close = difflib.get_close_matches(key, list(accepted), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{prefix}{what} has no parameter {key!r}{hint}. Allowed parameters: {allowed}")
    missing = [k for k, p in accepted.items() if p.default is inspect.Parameter.empty and k not in params]
    if missing:
        raise ConfigError(f"{prefix}{what} needs parameter(s) {', '.join(map(repr, missing))}. "
                          f"Allowed parameters: {allowed}")
