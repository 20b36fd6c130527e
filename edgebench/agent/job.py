"""The versioned host <-> agent job protocol, and the agent's two passes. Torch-free.

A job is a JSON document; the agent answers with ``result.json`` plus ``outputs.npz``. Protocol versions
are integers; the agent refuses a job of another version with a message saying which it speaks.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.errors import ConfigError, DataError, EdgebenchError
from edgebench.metrics.latency import latency_summary

PROTOCOL_VERSION = 1


@dataclass(frozen=True)
class TestSet:
    """One test set file (``.npz`` with float32 ``x`` in [0, 1]; ``y`` optional, unused by the agent)."""

    name: str
    path: str


@dataclass(frozen=True)
class LatencyProtocol:
    """Batch-1 latency protocol: warm-up runs, then timed runs until both ``min_runs`` and
    ``min_duration_s`` are reached (or ``max_runs``). The first inference after loading is timed
    separately, before warm-up."""

    warmup: int = 10
    min_runs: int = 100
    min_duration_s: float = 1.0
    max_runs: int = 1_000_000
    enabled: bool = True


@dataclass(frozen=True)
class Job:
    """What the host asks of a target."""

    job_id: str
    artifact: str
    backend: str
    output_dir: str
    testsets: tuple[TestSet, ...] = ()
    backend_options: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 128
    latency: LatencyProtocol = LatencyProtocol()
    artifact_sha256: str = ""
    protocol: int = PROTOCOL_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str, *, source: str = "job") -> Job:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}: not valid JSON ({exc})") from None
        if raw.get("protocol") != PROTOCOL_VERSION:
            raise ConfigError(
                f"{source}: job protocol {raw.get('protocol')!r}, this agent speaks {PROTOCOL_VERSION}; "
                "install the same edgebench version on the host and the device"
            )
        try:
            raw["testsets"] = tuple(TestSet(**t) for t in raw.get("testsets", ()))
            raw["latency"] = LatencyProtocol(**raw.get("latency", {}))
            return cls(**raw)
        except TypeError as exc:
            raise ConfigError(f"{source}: malformed job ({exc})") from None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _load_testset(ts: TestSet, input_shape: tuple[int | None, ...], artifact: str) -> np.ndarray:
    path = Path(ts.path)
    if not path.is_file():
        raise DataError(f"{path}: test set {ts.name!r} not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "x" not in data.files:
                raise DataError(f"{path}: no array 'x' in test set {ts.name!r} (has {data.files})")
            x = np.ascontiguousarray(data["x"], dtype=np.float32)
    except ValueError as exc:
        raise DataError(f"{path}: cannot read test set {ts.name!r} ({exc}); pickled arrays are refused") from None
    expected = tuple(input_shape[1:])
    if input_shape == (None,):  # the backend does not know the model's input (null backend without a card)
        expected, input_shape = tuple(x.shape[1:]), (None, *x.shape[1:])
    if x.ndim != len(input_shape) or any(e is not None and e != a for e, a in zip(expected, x.shape[1:])):
        raise DataError(
            f"{path}: test set {ts.name!r} has samples of shape {tuple(x.shape[1:])}, but the model "
            f"{artifact} takes {tuple('?' if e is None else e for e in expected)}"
        )
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise DataError(f"{path}: test set {ts.name!r} holds {bad} NaN/inf values; fix the data")
    return x


def _accuracy_pass(backend: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    chunks = [backend.predict(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros((0, 0), np.float32)


def _latency_pass(infer: Any, proto: LatencyProtocol) -> tuple[np.ndarray, float]:
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


def run_job(job: Job) -> dict[str, Any]:
    """Run ``job`` here and write ``outputs.npz`` and ``result.json`` into ``job.output_dir``.

    Returns the result document. Errors a user can cause raise :class:`EdgebenchError`.
    """
    from edgebench.agent.envinfo import environment
    from edgebench.runtime import create_backend

    out = Path(job.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    env_before = environment()
    artifact = Path(job.artifact)
    if not artifact.is_file():
        raise DataError(f"{artifact}: model file not found on the device")
    digest = sha256_file(artifact)
    if job.artifact_sha256 and digest != job.artifact_sha256:
        raise DataError(f"{artifact}: sha256 {digest[:12]} differs from the host's {job.artifact_sha256[:12]}; "
                        "the copy is corrupt, re-send it")
    backend = create_backend(job.backend, where=f"job {job.job_id}: backend", **job.backend_options)
    t0 = time.perf_counter_ns()
    backend.load(artifact)
    load_ms = (time.perf_counter_ns() - t0) / 1e6
    shape = backend.input_shape

    arrays: dict[str, np.ndarray] = {}
    sets: list[dict[str, Any]] = []
    xs = [(ts, _load_testset(ts, shape, str(artifact))) for ts in job.testsets]

    latency: dict[str, Any] | None = None
    if job.latency.enabled and xs:
        sample = xs[0][1][:1]
        infer = backend.bind(sample)
        t0 = time.perf_counter_ns()
        first_out = infer()
        first_ns = time.perf_counter_ns() - t0
        samples, duration = _latency_pass(infer, job.latency)
        arrays["latency_ns"] = samples
        latency = latency_summary(samples, first_ns=first_ns, duration_s=duration)
        latency["protocol"] = asdict(job.latency)
        latency["sample"] = xs[0][0].name
        first_logits = np.asarray(first_out[0] if isinstance(first_out, list) else first_out)
    for i, (ts, x) in enumerate(xs):
        t0 = time.perf_counter_ns()
        logits = _accuracy_pass(backend, x, job.batch_size)
        key = f"logits_{i}"
        arrays[key] = logits
        sets.append({"name": ts.name, "n": int(len(x)), "key": key,
                     "seconds": (time.perf_counter_ns() - t0) / 1e9})
    if latency is not None:
        # the latency run's output for its sample must equal the accuracy run's (MLPerf TEST01 in small)
        latency["output_max_abs_diff"] = float(np.max(np.abs(first_logits.reshape(-1) - arrays["logits_0"][0])))

    tmp = out / "outputs.npz.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, out / "outputs.npz")
    result = {
        "protocol": PROTOCOL_VERSION,
        "job_id": job.job_id,
        "status": "ok",
        "artifact_sha256": digest,
        "backend": backend.info(),
        "load_ms": load_ms,
        "testsets": sets,
        "batch_size": job.batch_size,
        "latency": latency,
        "environment": {"before": env_before, "after": environment()},
        "torch_loaded": "torch" in sys.modules,
    }
    _write_json(out / "result.json", result)
    return result


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)


def write_error(output_dir: str, job_id: str, exc: BaseException) -> None:
    """Record a failed job so the host can say what went wrong on the device."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    kind = type(exc).__name__ if isinstance(exc, EdgebenchError) else f"internal {type(exc).__name__}"
    _write_json(out / "result.json", {"protocol": PROTOCOL_VERSION, "job_id": job_id, "status": "error",
                                      "error": str(exc), "error_type": kind})
