"""The agent's passes: what a device does with a :class:`~edgebench.agent.protocol.Job`. Torch-free.

The agent answers in the job's output folder with ``result.json`` and one raw output file per pass
(``set-<i>.npy``: per-sample logits of test set ``i``; ``latency_ns.npy``: per-inference wall times; the energy
windows go into ``result.json``), so metrics are computed on the host from raw outputs (MLPerf's
accuracy-checker split).

Test sets stream in chunks of ``batch_size`` samples, each output is written as soon as its pass ends, and a
job is resumable: run again into the same output folder (a dropped SSH connection, a killed agent) it skips
the passes already finished for the same job, and a second agent started on the same folder waits for the
first (a file lock) instead of measuring beside it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.agent.memory import MemoryProbe
from edgebench.agent.profile import profile_pass
from edgebench.agent.protocol import PROTOCOL_VERSION, EnergyProtocol, Job, LatencyProtocol, TestSet, sha256_file
from edgebench.errors import ConfigError, DataError, DeviceError, EdgebenchError
from edgebench.metrics.latency import latency_summary

__all__ = ["latency_pass", "run_job", "write_error"]


def _check_testset(ts: TestSet, input_shape: tuple[int | None, ...], artifact: str) -> int:
    """Check the test set's sample shape against the model's from the file header; return its size."""
    from edgebench.agent.stream import testset_shape

    path = Path(ts.path)
    if not path.is_file():
        raise DataError(f"{path}: test set {ts.name!r} not found")
    shape = testset_shape(path)
    expected = tuple(input_shape[1:])
    if input_shape == (None,):  # the backend does not know the model's input (null backend without a card)
        expected, input_shape = tuple(shape[1:]), (None, *shape[1:])
    if len(shape) != len(input_shape) or any(e is not None and e != a for e, a in zip(expected, shape[1:])):
        raise DataError(
            f"{path}: test set {ts.name!r} has samples of shape {tuple(shape[1:])}, but the model "
            f"{artifact} takes {tuple('?' if e is None else e for e in expected)}"
        )
    return int(shape[0])


def checked_artifact(path: Path, expected_sha256: str, what: str = "model file") -> str:
    """The artifact's SHA-256, after checking it is there and (when the host gave one) equal to the host's."""
    if not path.is_file():
        raise DataError(f"{path}: {what} not found on the device")
    sha = sha256_file(path)
    if expected_sha256 and sha != expected_sha256:
        raise DataError(f"{path}: sha256 {sha[:12]} differs from the host's {expected_sha256[:12]}; "
                        "the copy is corrupt, re-send it")
    return sha


def _accuracy_pass(backend: Any, path: Path, n: int, batch_size: int, out: Path) -> None:
    """Logits of every sample, streamed: one chunk in memory, written as it comes. A model with a fixed batch
    streams in a multiple of it (:func:`~edgebench.runtime.boundary.fixed_chunk`): only the last chunk is padded."""
    from edgebench.agent.stream import NpyWriter, iter_batches
    from edgebench.runtime.boundary import fixed_chunk

    writer = NpyWriter(out, n)
    for x in iter_batches(path, fixed_chunk(batch_size, backend.fixed_batch)):
        writer.write(backend.predict(x))
    writer.close()


def latency_pass(infer: Any, proto: LatencyProtocol) -> tuple[np.ndarray, float]:
    """Time ``infer()`` per call with ``perf_counter_ns``; return the samples and the timed duration."""
    for _ in range(proto.warmup):
        infer()
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    min_runs, max_runs = proto.min_runs, proto.max_runs
    start = clock()
    deadline = start + int(proto.min_duration_s * 1e9)
    n = 0
    while True:
        t0 = clock()
        infer()
        t1 = clock()
        append(t1 - t0)
        n += 1
        if (n >= min_runs and t1 >= deadline) or n >= max_runs:
            break
    return np.asarray(samples, dtype=np.int64), (clock() - start) / 1e9


def _energy_pass(infer: Any, proto: EnergyProtocol, where: str) -> dict[str, Any]:
    """Idle baseline, then ``proto.windows`` windows of back-to-back inferences while a thread samples the
    sensor; energy per inference integrates power between the window markers (see
    :mod:`edgebench.metrics.energy`). No readable sensor: ``{"absent": why}``, never an estimate."""
    from edgebench.sensors import create_sensor

    sensor = create_sensor(proto.sensor, where=f"{where}: energy.sensor", **proto.options)
    try:
        return _measure_energy(sensor, infer, proto, where)
    finally:
        sensor.close()


def _measure_energy(sensor: Any, infer: Any, proto: EnergyProtocol, where: str) -> dict[str, Any]:
    why = sensor.probe()
    if why:
        return {"sensor": proto.sensor, "absent": why}
    from edgebench.metrics.energy import energy_summary, idle_power, window_energy
    from edgebench.sensors.sampler import PowerSampler

    sampler = PowerSampler(sensor, rate_hz=proto.rate_hz)
    clock = time.perf_counter_ns
    marks: list[tuple[int, int, int]] = []
    sampler.start()
    try:
        time.sleep(2.0 / proto.rate_hz)  # a reading before the idle window opens
        idle0 = sampler.mark()
        time.sleep(proto.idle_s)
        idle1 = sampler.mark()
        for _ in range(proto.windows):
            t0 = sampler.mark()
            deadline = t0 + int(proto.min_window_s * 1e9)
            n = 0
            while True:
                infer()
                n += 1
                if clock() >= deadline:
                    break
            marks.append((t0, sampler.mark(), n))
        time.sleep(2.0 / proto.rate_hz)  # a reading after the last window closes
    finally:
        sampler.stop()
    if sampler.error:
        raise DeviceError(f"{where}: power sensor {proto.sensor!r} stopped answering: {sampler.error}")
    t_ns, values = sampler.samples()
    t, kind = t_ns / 1e9, sensor.kind
    offset = sampler.epoch_offset_ns / 1e9
    end = (marks[-1][1] if marks else idle1) / 1e9 + offset
    logged = sensor.log_between(idle0 / 1e9 + offset, end + 1.0)
    waited = 0.0
    while logged is not None and (len(logged[0]) == 0 or float(np.max(logged[0])) < end) and waited < 3.0:
        time.sleep(0.1)  # a meter's logger may flush late: give the log a moment to cover the last window
        waited += 0.1
        logged = sensor.log_between(idle0 / 1e9 + offset, end + 1.0)
    if logged is not None:  # the sensor's own timestamped log (an external meter): its clock is the epoch
        t, values, kind = np.asarray(logged[0]) - offset, np.asarray(logged[1]), "power"

    def joules(a: float, b: float) -> float:
        try:
            return window_energy(kind, t, values, a, b)
        except ValueError:  # the samples do not cover the window
            return float("nan")

    windows = [{"t0": a / 1e9, "t1": b / 1e9, "epoch_t0": a / 1e9 + offset, "epoch_t1": b / 1e9 + offset,
                "inferences": n, "joules": joules(a / 1e9, b / 1e9),
                "samples": int(np.count_nonzero((t >= a / 1e9) & (t <= b / 1e9)))} for a, b, n in marks]
    try:
        idle_w: float | None = idle_power(kind, t, values, idle0 / 1e9, idle1 / 1e9)
    except ValueError:
        idle_w = None
    return energy_summary(windows, idle_power_w=idle_w, min_window_s=proto.min_window_s,
                          min_samples=proto.min_samples, sensor=sensor.describe())


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """One agent at a time per output folder: a second one (the retry of a job whose connection dropped
    while the first still runs) waits, then finds the passes done."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(out / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _done(out: Path, name: str, digest: str) -> dict[str, Any] | None:
    """The record of a pass finished for this job (same digest), or None."""
    try:
        doc = json.loads((out / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("job") == digest else None


def _attack_passes(job: Job, backend: Any, sizes: list[int], out: Path, digest: str,
                   resumed: list[str]) -> list[dict[str, Any]]:
    """The job's attack requests crafted on the loaded artifact (:mod:`edgebench.agent.attack`), each once: a
    resumed job reuses an attack this job finished (noted in ``resumed``)."""
    from edgebench.agent.attack import attack_pass

    records = []
    for i, req in enumerate(job.attacks):
        if not 0 <= req.testset < len(job.testsets) or len(req.y) > sizes[req.testset]:
            raise DataError(f"job {job.job_id}: attack {i} ({req.name}) asks for {len(req.y)} samples of test set "
                            f"{req.testset}, which the job does not have")
        done = _done(out, f"attack-{i}", digest)
        if done is None or not all((out / f).is_file() for f in done.get("files", ())):
            done = attack_pass(backend, req, Path(job.testsets[req.testset].path), out, i, digest)
        else:
            resumed.append(f"attack-{i}")
        records.append({k: v for k, v in done.items() if k != "job"})
    return records


def run_job(job: Job) -> dict[str, Any]:
    """Run ``job`` here and write ``result.json`` and the raw outputs into ``job.output_dir``.

    Returns the result document. Errors a user can cause raise :class:`EdgebenchError`. Passes already
    finished in that folder for the same job are reused (see the module docstring).
    """
    if job.kind == "latency":  # interleaved rounds of several artifacts: edgebench.agent.rounds
        raise ConfigError(f"job {job.job_id}: a latency job runs with edgebench.agent.rounds.run_latency_job")
    out = Path(job.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        return _run_locked(job, out)


def _run_locked(job: Job, out: Path) -> dict[str, Any]:
    from edgebench.agent.envinfo import environment
    from edgebench.runtime import create_backend

    digest = job.digest()
    finished = _done(out, "result", digest)
    if finished is not None and finished.get("status") == "ok":
        return finished
    env_before = environment()
    artifact = Path(job.artifact)
    sha = checked_artifact(artifact, job.artifact_sha256)
    where = f"job {job.job_id}"
    backend = create_backend(job.backend, where=f"{where}: backend", io=job.io, **job.backend_options)
    memory = MemoryProbe()
    t0 = time.perf_counter_ns()
    backend.load(artifact)
    load_ms = (time.perf_counter_ns() - t0) / 1e6
    memory.loaded()
    shape = backend.input_shape
    sizes = [_check_testset(ts, shape, str(artifact)) for ts in job.testsets]
    resumed: list[str] = []

    latency = _done(out, "latency", digest)
    if latency is not None:
        resumed.append("latency")
    energy = _done(out, "energy", digest)
    if energy is not None:
        resumed.append("energy")
    first_logits = None
    peak_in_rounds: dict[str, Any] | None = None
    measure_latency = job.latency.enabled and job.testsets and sizes[0] > 0
    if measure_latency and (latency is None or energy is None):
        from edgebench.agent.stream import iter_batches

        sample = next(iter_batches(job.testsets[0].path, 1))
        infer = backend.bind(sample)
        if latency is None and job.latency.in_rounds:
            # the target's latency job times this artifact (edgebench.agent.rounds); here only the batch-1 memory
            # peak (bind, first inference, warm-up: the inferences a timed pass starts with) and the output check
            memory.start_peak()
            first_logits = backend.scores(infer())
            for _ in range(job.latency.warmup):
                infer()
            peak_in_rounds = memory.peak()
        elif latency is None:
            memory.start_peak()
            t0 = time.perf_counter_ns()
            first_out = infer()
            first_ns = time.perf_counter_ns() - t0
            first_logits = backend.scores(first_out)
            samples, duration = latency_pass(infer, job.latency)
            peak = memory.peak()
            _save_npy(out / "latency_ns.npy", samples)
            latency = {**latency_summary(samples, first_ns=first_ns, duration_s=duration), "job": digest,
                       "protocol": asdict(job.latency), "sample": job.testsets[0].name, "file": "latency_ns.npy",
                       "memory": peak, "batch": backend.fixed_batch or 1}
            _write_json(out / "latency.json", latency)
        if energy is None:
            energy = {**_energy_pass(infer, job.energy, where), "job": digest}
            _write_json(out / "energy.json", energy)
    profile = _done(out, "profile", digest) if job.profile_runs else None
    if profile is not None:
        resumed.append("profile")
    elif measure_latency and job.profile_runs:  # after the timed passes, in a session of its own
        profile = {**profile_pass(backend, Path(job.testsets[0].path), job.profile_runs), "job": digest}
        _write_json(out / "profile.json", profile)

    attacks = _attack_passes(job, backend, sizes, out, digest, resumed)
    todo = [(ts.name, Path(ts.path), n, f"set-{i}") for i, (ts, n) in enumerate(zip(job.testsets, sizes))]
    todo += [(set_name, out / f, a["n"], f[:-len(".npz")]) for a in attacks for set_name, f in zip(a["names"],
                                                                                               a["files"])]
    sets: list[dict[str, Any]] = []
    for set_name, set_path, n, name in todo:
        done = _done(out, name, digest)
        if done is None or not (out / f"{name}.npy").is_file():
            t0 = time.perf_counter_ns()
            _accuracy_pass(backend, set_path, n, job.batch_size, out / f"{name}.npy")
            done = {"name": set_name, "n": n, "file": f"{name}.npy", "seconds": (time.perf_counter_ns() - t0) / 1e9,
                    "job": digest}
            _write_json(out / f"{name}.json", done)
        else:
            resumed.append(name)
        sets.append({k: v for k, v in done.items() if k != "job"})
    output_diff = None
    if first_logits is not None and sizes[0] > 0:
        # the latency run's output for its sample must equal the accuracy run's (MLPerf TEST01 in small)
        row0 = np.load(out / "set-0.npy", mmap_mode="r")[0]
        output_diff = float(np.max(np.abs(first_logits.reshape(-1) - row0)))
        if latency is not None:
            latency["output_max_abs_diff"] = output_diff
            _write_json(out / "latency.json", latency)

    result = {
        "protocol": PROTOCOL_VERSION,
        "job_id": job.job_id,
        "job": digest,
        "status": "ok",
        "artifact_sha256": sha,
        "backend": backend.info(),
        "load_ms": load_ms,
        "testsets": sets,
        "batch_size": job.batch_size,
        "fixed_batch": backend.fixed_batch,
        "latency": None if latency is None else {k: v for k, v in latency.items() if k != "job"},
        "energy": None if energy is None else {k: v for k, v in energy.items() if k != "job"},
        "files": [s["file"] for s in sets] + ([latency["file"]] if latency else []) + [f for a in attacks
                                                                                      for f in a["files"]],
        "attacks": attacks,
        "resumed": resumed,
        "environment": {"before": env_before, "after": environment()},
        "torch_loaded": "torch" in sys.modules,
        "peak_rss_mb": _peak_rss_mb(memory),
        "memory": memory.result(peak_in_rounds if latency is None else latency.get("memory")),
        "output_max_abs_diff": output_diff,
        "profile": None if profile is None else {k: v for k, v in profile.items() if k != "job"},
    }
    _write_json(out / "result.json", result)
    return result


def _peak_rss_mb(memory: MemoryProbe) -> float | None:
    """The agent process's peak resident memory so far (None where the OS does not say).

    Linux: ``VmHWM`` of this process's own address space, across the probe's resets before the latency pass.
    (``ru_maxrss`` survives ``exec``: a child started by a large host process would report the host's peak.)"""
    peak = memory.process_peak_mb()
    if peak is not None:
        return peak
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)


def write_error(output_dir: str, job_id: str, exc: BaseException) -> None:
    """Record a failed job so the host can say what went wrong on the device."""
    kind = type(exc).__name__ if isinstance(exc, EdgebenchError) else f"internal {type(exc).__name__}"
    try:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        _write_json(out / "result.json", {"protocol": PROTOCOL_VERSION, "job_id": job_id, "status": "error",
                                          "error": str(exc), "error_type": kind})
    except OSError:  # a full disk: the one line on stderr still says what happened
        pass
