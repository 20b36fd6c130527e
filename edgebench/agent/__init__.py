"""DEVICE SIDE: the agent that runs a job on a target. numpy and one runtime only; never torch.

``python -m edgebench.agent run JOB.json`` reads a job (artifact, test sets, backend options, measurement
protocol: :mod:`edgebench.agent.protocol`), then, in the job's output folder, writes one raw output file per
pass as soon as the pass ends: ``set-<i>.npy`` (per-sample logits of test set ``i``, one accuracy pass per
set), ``latency_ns.npy`` (per-inference wall times of the latency pass), with ``set-<i>.json``,
``latency.json``, ``energy.json`` and ``profile.json`` (the per-operator profiling pass after the timed
ones, :mod:`edgebench.agent.profile`) recording each finished pass (so a rerun resumes), and last
``result.json``: the summary the host reads (status, backend, load time, latency and energy summaries, the
environment before and after, memory (:mod:`edgebench.agent.memory`), the profile, the list of raw files),
or on a failure a ``result.json`` with status ``error`` and the one-line reason. Metrics are computed on the
host from the raw outputs (MLPerf's accuracy-checker split). Host code imports the job's types from
:mod:`edgebench.agent.protocol`; importing this package loads no numpy until :func:`run_job` is used.
"""

from __future__ import annotations

from typing import Any

from edgebench.agent.protocol import PROTOCOL_VERSION, EnergyProtocol, Job, LatencyProtocol, TestSet

__all__ = ["PROTOCOL_VERSION", "EnergyProtocol", "Job", "LatencyProtocol", "TestSet", "run_job", "run_latency_job"]


def __getattr__(name: str) -> Any:  # PEP 562: the passes (numpy, a runtime) load on first use
    if name == "run_job":
        from edgebench.agent.job import run_job

        return run_job
    if name == "run_latency_job":
        from edgebench.agent.rounds import run_latency_job

        return run_latency_job
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
