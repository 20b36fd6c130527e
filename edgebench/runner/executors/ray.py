"""The Ray executor: host stages as tasks on a Ray cluster (``pip install edgebench[ray]``).

``edgebench run PLAN --executor ray`` starts a Ray instance on this machine; ``--address HOST:PORT`` joins a
running cluster (``ray start --head`` on one machine, ``ray start --address …`` on the others). Each host stage
becomes a task that declares what it needs (:class:`~edgebench.runner.stages.Needs`: one CPU, no GPU, and the
memory estimated from the data set), so Ray places it on a node with room for it, and ``max_retries``: a task
whose worker or node dies is run again elsewhere by Ray (``retries`` times), and only then recorded as failed.

Artifacts are cache entries, addressed by content. Where the workers see the same cache folder as this process
(the cluster started here, or every node mounting the same path: a token file in the folder tells), they read
and write it in place. Elsewhere each node keeps its own cache under its temporary folder; a task then carries
the entries its dependencies made, put once each into Ray's object store (fetched only by nodes that lack
them, and checked against their manifests on arrival), and brings back the entries it built, which are
published into this machine's cache. ``EDGEBENCH_RAY_CACHE=shared|ship`` forces one way or the other. Entries
are signed with the writing machine's cache key (:mod:`edgebench.runner.cache`): a shipped entry is signed again
by its receiver (the object store carries it from this trusted process), while nodes that share one folder
need the same key file (``EDGEBENCH_CONFIG`` is passed to the workers).

Device jobs are dispatched from this process, which must reach the targets (the scheduler's device threads;
:mod:`edgebench.runner.stages`), unless the target names a ``ray_resource``: then from a node offering it
(:meth:`RayExecutor.device_job`). The loaded data set travels as a cache entry like any other (workers map it);
the plan's own files (checkpoints, ONNX models, factory modules) must be at the same paths on every node.
``EDGEBENCH_DATA`` is passed to the workers, for a worker that has to load the data itself.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError, EdgebenchError
from edgebench.runner.executors.base import EXECUTORS

log = logging.getLogger("edgebench")

TOKEN = ".edgebench-cache-id"  #: the file in a cache folder that tells a worker it sees the same folder
_ENV_PASSED = ("EDGEBENCH_DATA", "EDGEBENCH_AGENT_PYTHON", "EDGEBENCH_CONFIG")


def cache_token(root: Path) -> str:
    """The random identity of the cache folder ``root`` (made on first use)."""
    path = root / TOKEN
    root.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        tmp = root / f"{TOKEN}.{os.getpid()}"
        tmp.write_text(secrets.token_hex(16))
        try:
            os.link(tmp, path)  # the first writer wins; a concurrent one reads the winner's
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def ray_host_task(task: Any, token: str, mode: str) -> dict[str, Any]:
    """A worker's side of one host stage on Ray: use the scheduler's cache if this node sees it (``token``
    matches) and ``mode`` allows, else this node's own cache, brought up to date from ``task.inputs``."""
    import dataclasses

    import ray

    from edgebench.runner.worker import run_host_task

    node = ray.get_runtime_context().get_node_id()
    shared = mode != "ship" and (Path(task.cache_root) / TOKEN).is_file() and \
        (Path(task.cache_root) / TOKEN).read_text().strip() == token
    if shared:
        task = dataclasses.replace(task, inputs=())
    else:
        from edgebench.runner.cache import Cache

        local = Cache(node_cache_root())
        # a manifest signed with this node's key is enough to skip the fetch: the stage's own lookup checks the
        # files' hashes (and rebuilds a damaged entry), so the data set is not hashed again for every task
        wanted = [(kind, key, ref) for kind, key, ref in task.inputs if not local.signed(kind, key)]
        fetched = ray.get([ref for _, _, ref in wanted]) if wanted else []
        blobs = dict(zip([(kind, key) for kind, key, _ in wanted], fetched))
        # every input stays listed (None: this node holds it), so the worker ships back all else the stage used
        task = dataclasses.replace(task, cache_root=str(local.root), ship_outputs=True,
                                   inputs=tuple((kind, key, blobs.get((kind, key))) for kind, key, _ in task.inputs))
    report = run_host_task(task)
    report.update(node=node, shared_cache=shared)
    return report


def node_cache_root() -> Path:
    """A node's own cache (where it does not see the scheduler's): one folder per user under the temporary
    folder, kept from run to run and cluster to cluster (entries are addressed by content and signed with this
    machine's key), rather than one per Ray node id, which piled up a folder per ``ray start``."""
    import tempfile

    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"edgebench-ray-cache-{user}"


def ray_device_task(target: Any, job_json: str, files: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes],
                                                                                  dict[str, Any]]:
    """A device job on a node that reaches the device: the artifact and test sets arrive through the object
    store (``files``: host path -> bytes), the job runs through the target's own transport from here, and the
    agent's outputs go back as bytes with the result and who dispatched it."""
    import dataclasses
    import socket
    import tempfile

    import ray

    from edgebench.agent.protocol import Job, TestSet
    from edgebench.targets import open_transport

    job = Job.from_json(job_json)
    with tempfile.TemporaryDirectory(prefix="edgebench-device-") as tmp:
        root = Path(tmp)
        where: dict[str, Path] = {}
        folders: dict[Path, int] = {}  # one folder per source folder: an artifact's companions stay beside it
        for path, blob in files.items():
            folder = root / f"d{folders.setdefault(Path(path).parent, len(folders))}"
            folder.mkdir(exist_ok=True)
            where[path] = folder / Path(path).name
            where[path].write_bytes(blob if isinstance(blob, bytes) else ray.get(blob))
        job = dataclasses.replace(job, artifact=str(where[job.artifact]) if job.artifact else "",
                                  artifacts=tuple(dataclasses.replace(a, path=str(where[a.path]))
                                                  for a in job.artifacts),
                                  output_dir=str(root / "out"),
                                  testsets=tuple(TestSet(ts.name, str(where[ts.path])) for ts in job.testsets))
        with open_transport(target) as transport:
            result, out = transport.run_job(job, root / "out")
        outputs = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}
    who = {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(), "pid": os.getpid()}
    return result, outputs, who


@EXECUTORS.register("ray")
class RayExecutor:
    """``workers``: host stages at once (None: the cluster's CPUs); ``address``: the cluster to join (None:
    start one here, with ``workers`` CPUs when given); ``retries``: Ray's ``max_retries`` per task."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None, retries: int = 2) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError("--executor ray: Ray is not installed; pip install 'edgebench[ray]' (or pick "
                              "--executor local)") from None
        self.asked, self.address, self.max_retries = workers, address, retries
        self.retries = 0  # Ray retries a lost task itself; the scheduler then records it as failed
        self.mode = os.environ.get("EDGEBENCH_RAY_CACHE", "auto")
        if self.mode not in ("auto", "shared", "ship"):
            raise ConfigError(f"EDGEBENCH_RAY_CACHE={self.mode!r}: use auto, shared or ship")
        self.workers = workers or 1
        self._started = False
        self._owns = False
        self._remote: Any = None
        self._refs: dict[tuple[str, str], Any] = {}  # cache entries already in the object store
        self._running: dict[Any, Future] = {}
        self._cache: Any = None
        self._device_remote: Any = None
        self._lock = threading.Lock()

    def _start(self, cache_root: str) -> None:
        with self._lock:  # the scheduler's thread (a host stage) or a device thread (a dispatched job) starts it
            if not self._started:
                self._start_locked(cache_root)

    def _start_locked(self, cache_root: str) -> None:
        import ray

        self._started = True
        env = {k: os.environ[k] for k in _ENV_PASSED if k in os.environ}
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"runtime_env": {"env_vars": env}, "include_dashboard": False,
                                      "log_to_driver": False, "logging_level": logging.WARNING}
            if self.address:
                kwargs["address"] = self.address
            else:
                kwargs["num_cpus"] = self.asked
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(f"--executor ray: could not {'join ' + self.address if self.address else 'start'} "
                                  f"a Ray cluster ({str(exc).splitlines()[0]}); check the address, or start one "
                                  "with 'ray start --head'") from None
            self._owns = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = self.asked or max(1, cpus)
        if self.mode == "auto" and not self.address:
            self.mode = "shared"  # the cluster started here: its workers see this machine's cache
        from edgebench.runner.cache import Cache

        self._cache = Cache(Path(cache_root))
        self._token = cache_token(Path(cache_root))
        self._remote = ray.remote(ray_host_task)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        log.info("ray executor: %d node(s), %d CPU(s), %d stage(s) at once; cache %s", len(nodes), cpus,
                 self.workers, {"shared": "shared in place", "ship": "shipped through the object store",
                                "auto": "shared where a node sees it, else shipped"}[self.mode])

    def fit(self, to_compute: Any) -> None:
        pass  # a cluster is sized by its nodes, not by the run

    def submit(self, task: Any, needs: Any) -> Future:
        import dataclasses


        if not self._started:
            self._start(task.cache_root)
        inputs: tuple[tuple[str, str, Any], ...] = ()
        if self.mode != "shared":
            inputs = tuple((kind, key, self._ref(kind, key)) for kind, key, _ in task.inputs)
        task = dataclasses.replace(task, inputs=inputs, threads=max(1, int(needs.cpus)))
        opts: dict[str, Any] = {"num_cpus": needs.cpus, "max_retries": self.max_retries, "retry_exceptions": False}
        if needs.gpus:
            opts["num_gpus"] = needs.gpus
        if needs.memory_mb:
            opts["memory"] = int(needs.memory_mb) * 2**20
        ref = self._remote.options(**opts).remote(task, self._token, self.mode)
        out: Future = Future()
        self._running[ref] = out
        ref.future().add_done_callback(lambda f, ref=ref: self._settle(ref, f))
        return out

    def device_job(self, target: Any, job: Any, out_dir: Path, *, cache_root: str) -> tuple[dict[str, Any], Path]:
        """Run ``job`` from a node that offers ``target.ray_resource`` (one at a time there: the resource is asked
        for whole) and write its outputs into ``out_dir``, as a transport's ``run_job`` would."""
        import ray
        from ray.exceptions import RayTaskError

        from edgebench.errors import DeviceError
        from edgebench.export.card import artifact_files

        if not self._started:
            self._start(cache_root)
        resource = target.ray_resource
        if not ray.cluster_resources().get(resource):
            raise DeviceError(f"target {target.name!r}: no node of the Ray cluster offers resource {resource!r}; on "
                              f"the machine that reaches the device run ray start --address ... --resources "
                              f"'{{\"{resource}\": 1}}' (or remove ray_resource from {target.source})")
        models = [Path(job.artifact)] if job.artifact else []
        models += [Path(a.path) for a in job.artifacts]  # a latency job's artifacts
        paths = [*(f for m in models for f in artifact_files(m)), *(Path(ts.path) for ts in job.testsets)]
        files = {str(p): self._file_ref(p) for p in dict.fromkeys(paths)}
        if self._device_remote is None:
            self._device_remote = ray.remote(ray_device_task)
        ref = self._device_remote.options(num_cpus=0, resources={resource: 1}, max_retries=self.max_retries,
                                          retry_exceptions=False).remote(target, job.to_json(), files)
        self._running[ref] = Future()
        try:
            result, outputs, who = ray.get(ref)
        except RayTaskError as exc:
            if isinstance(getattr(exc, "cause", None), EdgebenchError):
                raise exc.cause from None
            raise
        finally:
            self._running.pop(ref, None)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, blob in outputs.items():
            (out_dir / name).write_bytes(blob)
        result["dispatched_from"] = who
        return result, out_dir

    def _file_ref(self, path: Path) -> Any:
        import ray

        key = ("file", str(path))
        if key not in self._refs:
            self._refs[key] = ray.put(path.read_bytes())
        return self._refs[key]

    def _ref(self, kind: str, key: str) -> Any:
        import ray

        if (kind, key) not in self._refs:
            self._refs[(kind, key)] = ray.put(self._cache.pack(kind, key))
        return self._refs[(kind, key)]

    def _settle(self, ref: Any, fut: Future) -> None:
        """Hand the task's outcome to the scheduler's future: a stage's own :class:`EdgebenchError` as itself
        (one line, not Ray's wrapped traceback)."""
        from ray.exceptions import RayTaskError

        out = self._running.pop(ref, None)
        if out is None or out.done():
            return
        exc = fut.exception()
        if exc is None:
            out.set_result(fut.result())
        elif isinstance(exc, RayTaskError) and isinstance(getattr(exc, "cause", None), EdgebenchError):
            out.set_exception(exc.cause)
        else:
            out.set_exception(exc)

    def lost(self, exc: BaseException, fut: Future | None = None) -> str | None:
        from ray import exceptions as rx

        kinds = tuple(getattr(rx, n) for n in ("WorkerCrashedError", "NodeDiedError", "ObjectLostError",
                                                "OwnerDiedError", "TaskUnschedulableError", "OutOfMemoryError",
                                                "TaskCancelledError")
                      if hasattr(rx, n))
        if not isinstance(exc, kinds):
            return None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"its Ray worker was lost {self.max_retries + 1} time(s) ({type(exc).__name__}: {first[:160]})"

    def collect(self, report: dict[str, Any]) -> None:
        for kind, key, blob in report.pop("entries", ()) or ():
            self._cache.unpack(kind, key, blob)

    def shutdown(self, cancel: bool = False) -> None:
        import ray

        if cancel:
            for ref in list(self._running):
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - best effort: the task may have ended meanwhile
                    pass
        self._running.clear()
        self._refs.clear()
        if self._owns and ray.is_initialized():
            ray.shutdown()
        self._owns = self._started = False

    def describe(self) -> str:
        where = self.address or "a Ray instance started here"
        return f"ray ({where}; {self.asked or 'all'} CPU(s))"
