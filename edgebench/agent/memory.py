"""DEVICE SIDE: the agent's memory figures, read around the passes (never inside the timed loop). Torch-free.

- ``load_rss_mb``: resident memory the model's loading added (``VmRSS`` after the backend's ``load`` minus
  before it; the runtime library is already imported, so this is the model and its session).
- ``peak_rss_mb``: the peak resident memory during the latency pass (bind, first inference, warm-up, timed runs)
  over the same baseline: the high-water mark ``VmHWM`` is reset to the current RSS just before (writing ``5``
  to ``/proc/self/clear_refs``) and read just after. Where the target's variants are timed in interleaved rounds
  by one latency job (several models loaded at once), each device job reads the peak over its own batch-1 bind,
  first inference and warm-up instead, untimed. Where the reset is refused, the peak is the process's
  since it started (``peak_method`` says so; it then includes the agent's start and the model's loading);
  where there is no ``/proc`` (not Linux), both are None and ``memory_note`` says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["MemoryProbe", "status_mb"]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def status_mb(key: str) -> float | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MiB; None where it cannot be read."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 2**10
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS; True only where the kernel honoured it (some sandboxes accept the write
    and ignore it: VmHWM then still reads above VmRSS). The margin covers the per-thread RSS counters the kernel
    folds in lazily."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
    except OSError:
        return False
    hwm, rss = status_mb("VmHWM"), status_mb("VmRSS")
    return hwm is not None and rss is not None and hwm <= rss + 8.0


class MemoryProbe:
    """Created just before the model is loaded (its RSS then is the baseline); :meth:`loaded` after the load,
    :meth:`start_peak` just before the latency pass, :meth:`peak` just after it."""

    def __init__(self) -> None:
        self.baseline = status_mb("VmRSS")
        self.load_rss_mb: float | None = None
        self._reset = False
        self._hwm_before_reset: float | None = None

    def loaded(self) -> None:
        now = status_mb("VmRSS")
        if now is not None and self.baseline is not None:
            self.load_rss_mb = now - self.baseline

    def start_peak(self) -> None:
        before = status_mb("VmHWM")  # the reset erases the process's peak so far: keep it for process_peak_mb
        if before is not None:
            self._hwm_before_reset = max(before, self._hwm_before_reset or 0.0)
        self._reset = _reset_peak()

    def process_peak_mb(self) -> float | None:
        """The process's peak resident memory since it started (absolute, not over the baseline), across the
        resets :meth:`start_peak` makes; None where ``/proc/self/status`` cannot be read."""
        now = status_mb("VmHWM")
        if now is None:
            return None
        return max(now, self._hwm_before_reset or 0.0)

    def peak(self) -> dict[str, Any]:
        """The latency pass's peak over the baseline, and how it was read."""
        hwm = status_mb("VmHWM")
        if hwm is None or self.baseline is None:
            return {"peak_rss_mb": None, "peak_method": None}
        return {"peak_rss_mb": hwm - self.baseline,
                "peak_method": "VmHWM reset before the latency pass" if self._reset else
                               "VmHWM since the agent started (/proc/self/clear_refs not writable, or ignored)"}

    def result(self, peak: dict[str, Any] | None) -> dict[str, Any]:
        """The ``memory`` entry of ``result.json`` (``peak``: :meth:`peak`'s, kept with the latency pass)."""
        doc: dict[str, Any] = {"baseline_rss_mb": self.baseline, "load_rss_mb": self.load_rss_mb,
                               **(peak or {"peak_rss_mb": None, "peak_method": None})}
        if self.baseline is None:
            doc["memory_note"] = "no /proc/self/status on this system (not Linux): memory not measured"
        elif peak is None:
            doc["memory_note"] = "no latency pass: no peak"
        return doc
