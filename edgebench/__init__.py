"""edgebench: what compression and deployment cost a model in accuracy, robustness, latency and energy.

From Python::

    import edgebench

    plan = edgebench.load_plan()                 # the built-in default plan; or load_plan("plans/x.toml")
    summary = edgebench.run_plan(plan, out_dir="reports")
    run = edgebench.open_run(summary.run_id)     # or a run folder, or its results.sqlite
    run.results                                  # one dict per stored result row

Importing the package is cheap and side-effect free: these functions are imported when first used, heavy host
dependencies (torch, onnx, matplotlib) by the modules that use them, and the device side
(:mod:`edgebench.runtime`, :mod:`edgebench.agent`) never imports torch at all.
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib
from typing import Any

from edgebench.errors import EdgebenchError

#: public name -> (module, attribute), imported on first use
_LAZY = {
    "load_plan": ("edgebench.config", "load_plan"),  # (path=None, *, quick=False) -> Plan
    "run_plan": ("edgebench.runner.pipeline", "run_plan"),  # (plan, *, out_dir, run_id, executor) -> RunSummary
    "open_run": ("edgebench.report.runs", "open_run"),  # (run id | folder | results.sqlite, out) -> RunData
}

__all__ = ["EdgebenchError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'edgebench' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
