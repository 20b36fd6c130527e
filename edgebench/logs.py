"""Logging for the command line: edgebench's own messages at INFO (DEBUG with ``-v``), every other library's at
WARNING (DEBUG with ``-v``), all through the root logger's one stderr handler.

Some libraries configure their own logger when imported. NNCF gives logger ``nncf`` its own stdout handler at INFO
with propagation off, so its ``INFO:nncf:Compiling and loading torch extension…`` lines bypass any root setting.
Such a logger is adopted (its own handlers dropped, propagation on, the third-party level set): at once if its
library is loaded, else right after the module that configures it is first imported (edgebench imports NNCF
lazily, and unpickling a quantized twin imports it too).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

#: logger name -> the module that configures it when imported
SELF_CONFIGURED = {"nncf": "nncf.common.logging.logger"}


def setup_logging(verbose: bool = False, *, stream: TextIO | None = None) -> None:
    """Configure logging for one ``edgebench`` command (see the module docstring)."""
    third_party = logging.DEBUG if verbose else logging.WARNING
    logging.basicConfig(format="%(message)s", stream=stream or sys.stderr)
    logging.getLogger().setLevel(third_party)
    logging.getLogger("edgebench").setLevel(logging.DEBUG if verbose else logging.INFO)
    quiet_third_party(third_party)


def quiet_third_party(level: int = logging.WARNING) -> None:
    """Route the :data:`SELF_CONFIGURED` loggers through the root logger at ``level``, now or once imported."""
    for name, module in SELF_CONFIGURED.items():
        if module in sys.modules:
            _adopt(name, level)
        else:
            _AfterImport.arm(module, lambda name=name: _adopt(name, level))


def _adopt(name: str, level: int) -> None:
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(level)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``then`` once, right after module ``name`` has been executed by its first import."""

    _armed: dict[str, _AfterImport] = {}

    def __init__(self, name: str, then: Any) -> None:
        self.name, self.then = name, then

    @classmethod
    def arm(cls, name: str, then: Any) -> None:
        hook = cls._armed.get(name)
        if hook is not None:  # armed already (setup called again): the latest level wins
            hook.then = then
            return
        cls._armed[name] = hook = cls(name, then)
        sys.meta_path.insert(0, hook)

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # find the real module (once)
        self._armed.pop(self.name, None)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run, then = spec.loader.exec_module, self.then

        def exec_module(module: Any) -> None:
            run(module)
            then()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
