"""Interleaved latency rounds: the agent's side of a latency job (:attr:`~edgebench.agent.protocol.Job.kind`
``latency``). DEVICE SIDE, torch-free.

The job loads every artifact of one target and backend (``job.artifacts``), times each one's first inference,
warms each up, then measures them in ``rounds`` rounds. Round ``r`` times every artifact for one segment (a
``1/rounds`` share of the protocol's runs and duration, after ``ceil(warmup/rounds)`` untimed runs), starting
with artifact ``r mod n`` (A B C, B C A, C A B, ...), so slow drift (a warming CPU, a neighbour's load, a
governor) lands on every artifact alike instead of on whichever block ran last. Every round after the first
times each artifact in a session created for that round (loaded, bound and warmed up with the protocol's full
``warmup``, untimed): a runtime session carries state of its own (where its arena and buffers landed, how its
threads were placed) that can move its latency by tens of percent against another session of the same file,
and rounds that all reuse one session would hide that spread from the per-round medians and from every test
on them. Between rounds the agent pauses
``cooldown_s`` and waits, at most ``settle_s``, for the hottest thermal zone to come back within ``settle_c`` °C
of its reading before the first round and for the CPU frequency cap to come back to its value then; each round
records that temperature, the CPU frequency and its cap, and
the wait, and how many CPUs other processes kept busy during the round (``other_load``: a neighbour's load is
drift that interleaving spreads over every artifact within a job, but that no test can separate from a real
difference between two jobs).

Outputs in the job's folder: ``latency-<i>.npy`` (artifact ``i``'s per-inference wall times, all rounds in
order), ``rounds.json`` (per round: the order, each artifact's median and run count, the thermal state),
rewritten after every round, so a rerun of the same job (same digest) resumes after the last finished round,
and ``result.json``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.agent.job import (
    _check_testset,
    _done,
    _locked,
    _save_npy,
    _write_json,
    checked_artifact,
    latency_pass,
)
from edgebench.agent.protocol import PROTOCOL_VERSION, ArtifactRef, Job, LatencyProtocol
from edgebench.errors import ArtifactError, ConfigError, DataError, EdgebenchError
from edgebench.metrics.latency import latency_summary, round_cv

__all__ = ["run_latency_job", "segment_protocol", "settle"]

#: how often the agent re-reads the temperature while it waits for it to settle
POLL_S = 0.25


def segment_protocol(proto: LatencyProtocol) -> LatencyProtocol:
    """The protocol of one artifact's segment in one round: a ``1/rounds`` share of the runs and duration."""
    k = max(1, proto.rounds)
    return replace(proto, warmup=-(-proto.warmup // k), min_runs=max(1, -(-proto.min_runs // k)),
                   min_duration_s=proto.min_duration_s / k, max_runs=max(1, proto.max_runs // k))


def settle(proto: LatencyProtocol, baseline: dict[str, Any], root: str = "/") -> dict[str, Any]:
    """Pause ``cooldown_s``, then wait (at most ``settle_s``) until the hottest zone is within ``settle_c`` of
    ``baseline["temp_c"]`` and the CPU frequency cap is back to ``baseline["freq_cap_mhz"]`` (a thermal governor
    lowers it). Returns the state read last, ``waited_s`` (the whole pause) and ``settled`` (None where the device
    reads neither)."""
    from edgebench.agent.envinfo import thermal_state

    def hot(state: dict[str, Any]) -> bool | None:
        checks = []
        if baseline.get("temp_c") is not None and state["temp_c"] is not None:
            checks.append(state["temp_c"] > baseline["temp_c"] + proto.settle_c)
        if baseline.get("freq_cap_mhz") is not None and state["freq_cap_mhz"] is not None:
            checks.append(state["freq_cap_mhz"] < baseline["freq_cap_mhz"])
        return any(checks) if checks else None

    t0 = time.monotonic()
    if proto.cooldown_s > 0:
        time.sleep(proto.cooldown_s)
    state = thermal_state(root)
    start = time.monotonic()
    while hot(state):
        left = proto.settle_s - (time.monotonic() - start)
        if left <= 0:
            break
        time.sleep(min(POLL_S, left))
        state = thermal_state(root)
    now = hot(state)
    return {**state, "waited_s": time.monotonic() - t0, "settled": None if now is None else not now}


class OtherLoad:
    """How many CPUs other processes kept busy while a round ran: the machine's busy CPU time (``/proc/stat``)
    less this process's own, over the wall time. None where the machine does not say (not Linux)."""

    def __init__(self) -> None:
        from edgebench.agent.envinfo import cpu_busy_s

        self._busy = cpu_busy_s
        self._t0, self._own0, self._busy0 = time.monotonic(), _own_cpu_s(), cpu_busy_s()

    def cores(self) -> float | None:
        busy, wall = self._busy(), time.monotonic() - self._t0
        if busy is None or self._busy0 is None or wall <= 0:
            return None
        return max(0.0, (busy - self._busy0 - (_own_cpu_s() - self._own0)) / wall)


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_latency_job(job: Job) -> dict[str, Any]:
    """Run latency job ``job`` here; write ``result.json``, ``rounds.json`` and ``latency-<i>.npy`` into
    ``job.output_dir`` and return the result document. Rounds finished for the same job are kept."""
    out = Path(job.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        return _run_locked(job, out)


def _session(job: Job, ref: ArtifactRef, sample: Any) -> tuple[Any, Any, float]:
    """A new session of the artifact ``ref`` bound to ``sample``: (backend, infer, load ms)."""
    from edgebench.runtime import create_backend

    backend = create_backend(job.backend, where=f"job {job.job_id}: backend", io=ref.io, **job.backend_options)
    t0 = time.perf_counter_ns()
    backend.load(Path(ref.path))
    load_ms = (time.perf_counter_ns() - t0) / 1e6
    return backend, backend.bind(sample), load_ms


def _load(job: Job, sample: Any) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Every artifact that loads, bound to the first sample, with its load time and first inference; and the
    ones that do not (name and the one-line reason): they leave the rounds, the others are still timed."""
    loaded, failed = [], []
    for ref in job.artifacts:
        path = Path(ref.path)
        try:
            sha = checked_artifact(path, ref.sha256, what=f"model file of {ref.name!r}")
            backend, infer, load_ms = _session(job, ref, sample)
            _check_testset(job.testsets[0], backend.input_shape, str(path))
            t0 = time.perf_counter_ns()
            infer()
        except EdgebenchError as exc:
            if not isinstance(exc, (ArtifactError, DataError)):  # the backend or the set: every artifact fails
                raise
            failed.append({"name": ref.name, "error": str(exc)})
            continue
        loaded.append({"ref": ref, "sha": sha, "backend": backend, "infer": infer, "load_ms": load_ms,
                       "first_ns": time.perf_counter_ns() - t0})
    if not loaded:
        raise ArtifactError(f"job {job.job_id}: no artifact of the latency job loads; first: {failed[0]['error']}")
    return loaded, failed


def _run_locked(job: Job, out: Path) -> dict[str, Any]:
    from edgebench.agent.envinfo import environment, thermal_state

    digest = job.digest()
    finished = _done(out, "result", digest)
    if finished is not None and finished.get("status") == "ok":
        return finished
    if not job.artifacts or not job.testsets:
        raise ConfigError(f"job {job.job_id}: a latency job names at least one artifact and one test set")
    proto = job.latency
    env_before = environment()
    from edgebench.agent.stream import iter_batches

    sample = next(iter_batches(Path(job.testsets[0].path), 1))
    loaded, failed = _load(job, sample)
    names = [a["ref"].name for a in loaded]
    state = _done(out, "rounds", digest)
    if state is None or state.get("names") != names:  # new, or other artifacts loaded this time: start over
        state = {"job": digest, "names": names, "baseline": thermal_state(), "rounds": []}
    done = state["rounds"]
    chunks: list[list[np.ndarray]] = []
    for k in range(len(loaded)):
        kept = sum(r["runs"][k] for r in done)
        f = out / f"latency-{k}.npy"
        prior = np.load(f, allow_pickle=False)[:kept] if kept and f.is_file() else np.zeros(0, np.int64)
        if len(prior) < kept:  # the file lost what rounds.json says it holds: measure every round again
            done.clear()
            chunks = []
            break
        chunks.append([prior])
    if not chunks:
        chunks = [[np.zeros(0, np.int64)] for _ in loaded]
    resumed = len(done)
    for a in loaded:
        for _ in range(proto.warmup):
            a["infer"]()
    segment = segment_protocol(proto)
    n = len(loaded)
    for r in range(len(done), max(1, proto.rounds)):
        thermal = settle(proto, state["baseline"]) if r else {**thermal_state(), "waited_s": 0.0, "settled": None}
        order = [(r + k) % n for k in range(n)]
        medians: list[float] = [0.0] * n
        runs, seconds = [0] * n, [0.0] * n
        load = OtherLoad()
        for i in order:
            if r:  # a session of this round's own, warmed up in full (the module's docstring says why)
                loaded[i]["infer"] = None  # the previous round's session goes before the next one loads
                _, loaded[i]["infer"], _ = _session(job, loaded[i]["ref"], sample)
                for _ in range(proto.warmup):
                    loaded[i]["infer"]()
            samples, seconds[i] = latency_pass(loaded[i]["infer"], segment)
            chunks[i].append(samples)
            medians[i], runs[i] = float(np.median(samples)) / 1e6, int(len(samples))
        for i in range(n):
            _save_npy(out / f"latency-{i}.npy", np.concatenate(chunks[i]))
        done.append({"round": r, "order": [names[i] for i in order], "median_ms": medians,
                     "runs": runs, "seconds": seconds, "other_load": load.cores(), **thermal})
        _write_json(out / "rounds.json", state)
    variants = []
    for i, a in enumerate(loaded):
        samples = np.concatenate(chunks[i])
        medians_i = [r["median_ms"][i] for r in done]
        variants.append({
            "name": a["ref"].name, "artifact_sha256": a["sha"], "load_ms": a["load_ms"],
            "file": f"latency-{i}.npy",
            "latency": {**latency_summary(samples, first_ns=a["first_ns"],
                                          duration_s=sum(r["seconds"][i] for r in done)),
                        "batch": a["backend"].fixed_batch or 1,
                        "rounds": len(done), "round_cv": round_cv(medians_i), "round_median_ms": medians_i},
        })
    result = {
        "protocol": PROTOCOL_VERSION, "kind": "latency", "job_id": job.job_id, "job": digest, "status": "ok",
        "backend": loaded[0]["backend"].info(), "latency_protocol": asdict(proto), "sample": job.testsets[0].name,
        "variants": variants, "failed": failed, "rounds": done, "baseline": state["baseline"],
        "files": [v["file"] for v in variants] + ["rounds.json"], "resumed": resumed,
        "environment": {"before": env_before, "after": environment()}, "torch_loaded": "torch" in sys.modules,
    }
    _write_json(out / "result.json", result)
    return result
