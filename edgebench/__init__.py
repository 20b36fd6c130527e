"""edgebench: what compression and deployment cost a model in accuracy, robustness, latency and energy.

Importing the package is cheap and side-effect free: heavy host dependencies (torch, onnx, matplotlib)
are imported by the modules that use them, and the device side (:mod:`edgebench.runtime`,
:mod:`edgebench.agent`) never imports torch at all.
"""

from __future__ import annotations

__version__ = "0.1.0"

from edgebench.errors import EdgebenchError

__all__ = ["EdgebenchError", "__version__"]
