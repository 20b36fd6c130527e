"""DEVICE SIDE: the agent that runs a job on a target. numpy and one runtime only; never torch.

``python -m edgebench.agent run JOB.json`` reads a job (artifact, test sets, backend options, measurement
protocol), runs an accuracy pass over every test set and a latency pass, and writes raw outputs
(``outputs.npz``: per-sample logits, per-inference latencies) and ``result.json`` into the job's output
folder. Metrics are computed on the host from the raw outputs (MLPerf's accuracy-checker split).
"""

from __future__ import annotations

from edgebench.agent.job import run_job
from edgebench.agent.protocol import PROTOCOL_VERSION, EnergyProtocol, Job, LatencyProtocol, TestSet

__all__ = ["PROTOCOL_VERSION", "EnergyProtocol", "Job", "LatencyProtocol", "TestSet", "run_job"]
