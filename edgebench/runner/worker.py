"""What a worker (a process of the local pool, a Ray task) runs for one host stage.

A host stage is a pure function of the plan and of cache entries: the worker keeps one replica of the plan's
:class:`~edgebench.runner.pipeline.Pipeline` per plan and cache (so a worker loads the data set once and keeps
the models it loaded), computes the stage's dependencies from the cache where it has not already, then the
stage itself, whose outputs land in the cache. It records nothing in the run's store
(:class:`~edgebench.runner.context.DiscardStore`):
the scheduler does, on its own thread, when it loads what the worker built. The report it returns says what
it did (the stage's note, whether it only found its outputs cached, the time, the process and machine).

When the workers do not share the scheduler's cache folder (a Ray cluster over several machines), the task
carries the cache entries its dependencies made (``inputs``: content-addressed, and checked against their
manifests on arrival) and the report carries back the entries the stage built, or found in the worker's own
cache while the sender lacks them (``ship_outputs``).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from edgebench.runner.executors.base import HostTask

_REPLICAS: dict[tuple[str, str], Any] = {}

__all__ = ["HostTask", "replica", "run_host_task", "set_threads"]


def set_threads(threads: int) -> None:
    """Cap this process's compute threads (before and after torch is imported): with several workers on one
    machine, each gets its share of the cores instead of all of them fighting over every core."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import sys

    if "torch" in sys.modules:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def replica(plan: Any, cache_root: str) -> Any:
    """This process's pipeline for ``plan`` over the cache at ``cache_root`` (made once, then reused)."""
    import tempfile

    from edgebench.runner.cache import Cache
    from edgebench.runner.context import DiscardStore
    from edgebench.runner.pipeline import Pipeline

    ident = (plan.digest(), cache_root)
    pipe = _REPLICAS.get(ident)
    if pipe is None:
        _REPLICAS.clear()  # one plan at a time: a worker serving a new run drops the old one's models
        pipe = Pipeline(plan, out_dir=Path(tempfile.gettempdir()), cache=Cache(Path(cache_root)), store=DiscardStore())
        _REPLICAS[ident] = pipe
    return pipe


def run_host_task(task: HostTask) -> dict[str, Any]:
    """Compute ``task.stage`` into the cache; return the report (see the module docstring)."""
    set_threads(task.threads)
    import torch

    from edgebench.export.openvino import disable_openvino_telemetry

    if torch.get_num_threads() != task.threads:
        torch.set_num_threads(task.threads)
    disable_openvino_telemetry()
    pipe = replica(task.plan, task.cache_root)
    device = pipe.torch_device()  # the plan's [host] device, probed on this worker's machine
    if device.type == "cuda":
        torch.cuda.set_device(device)
    for kind, key, blob in task.inputs:
        if blob is not None:
            pipe.cache.unpack(kind, key, blob)
    if task.data:
        pipe.use_data_entry(task.data)
    t0 = time.perf_counter()
    with pipe.cache.recording() as used:
        value = pipe.compute(task.stage)
    report: dict[str, Any] = {"stage": task.stage, "note": getattr(value, "note", ""),
                              "cached": bool(getattr(value, "cached", False)), "seconds": time.perf_counter() - t0,
                              "pid": os.getpid(), "host": socket.gethostname(), "threads": task.threads}
    if task.ship_outputs:  # what the stage made, or found in this worker's cache, and the sender lacks
        sent = {(kind, key) for kind, key, _ in task.inputs}
        report["entries"] = [(kind, key, pipe.cache.pack(kind, key)) for kind, key, built in used
                             if built or (kind, key) not in sent]
    return report
