"""The Ray executor on a real local Ray cluster that the test starts: a head node and a worker node, one CPU
each, both on 127.0.0.1 (``ray start``, as a user would on two machines). A sweep's host stages are spread over
both nodes and its stored results are the local executor's, bit for bit; with the cache shipped through Ray's
object store instead of shared, the same; a Ray worker SIGKILLed mid-task is retried by Ray and nothing is lost
or duplicated; a target naming a Ray resource has its device jobs dispatched from the node offering it. Skips with
a reason where Ray is not installed (``pip install 'edgebench[ray]'``)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.integration.test_executors import only_run, results, stages, sweep

pytest.importorskip("ray", reason="Ray is not installed (pip install 'edgebench[ray]')")

#: a test cluster on loopback, private to the test: no usage statistics, and no token authentication (whether
#: Ray asks for a token depends on files a previous Ray left in the home folder)
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


#: the cluster's address -> the temporary folder of its nodes (TMPDIR), where they keep their own caches
NODE_TMP: dict[str, str] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args: str, env: dict[str, str]) -> None:
    ray_cli = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    proc = subprocess.run([ray_cli, *args], env=env, capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        raise RuntimeError(f"ray {' '.join(args)} failed: {proc.stderr[-2000:]}")


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A head and one worker node on loopback, 1 CPU each; yields the address."""
    tmp = tempfile.mkdtemp(prefix="ebray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = {**os.environ, **RAY_ENV, "OMP_NUM_THREADS": "1", "TMPDIR": tmp}  # the nodes' own caches go there too
    port = _free_port()
    address = f"127.0.0.1:{port}"
    try:
        _ray("start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "1",
             "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", tmp, env=env)
        # the worker node is the one "in the lab": it offers the resource that lab.toml's jobs ask for
        _ray("start", "--address", address, "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
             "--resources", '{"edgebench-lab": 1}', env=env)
        NODE_TMP[address] = tmp
        yield address
    finally:
        subprocess.run([shutil.which("ray") or "ray", "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


def _run(plan: Path, out: Path, cache: Path, *args: str, **env: str) -> subprocess.Popen:
    full = {**os.environ, **RAY_ENV, "EDGEBENCH_CACHE": str(cache), "EDGEBENCH_PROGRESS": "0", **env}
    return subprocess.Popen([sys.executable, "-m", "edgebench.cli", "run", str(plan), "--out", str(out), *args],
                            env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    _, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, stderr[-3000:]
    return stderr


@pytest.fixture(scope="module")
def local_rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple]]:
    """The sweep's results with the local executor (its own cache): what Ray must reproduce. Two models: with one
    CPU on each node, the two training stages that start together run one on each node."""
    tmp = tmp_path_factory.mktemp("local")
    plan = sweep(tmp, n=2)
    _finish(_run(plan, tmp / "out", tmp / "cache", "--workers", "2"))
    return plan, results(only_run(tmp / "out"))


@pytest.fixture(scope="module")
def ray_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache that the first Ray sweep fills (from empty: the tests run in file order) and the lab-dispatch
    test reuses, so that the latter runs only device jobs (run alone, it computes the host stages itself)."""
    return tmp_path_factory.mktemp("ray-cache")


def test_sweep_spreads_over_both_nodes_and_matches_the_local_executor(cluster: str, local_rows: tuple,
                                                                      ray_cache: Path, tmp_path: Path) -> None:
    plan, expected = local_rows
    stderr = _finish(_run(plan, tmp_path / "out", ray_cache, "--executor", "ray", "--address", cluster))
    assert "ray executor: 2 node(s), 2 CPU(s), 2 stage(s) at once" in stderr
    run_dir = only_run(tmp_path / "out")
    assert results(run_dir) == expected
    host = [s for n, s in stages(run_dir).items() if n.split("/")[0] in ("model", "craft")]
    assert len(host) == 4 and all(s["status"] == "done" for s in host)
    assert len({s["worker"]["node"] for s in host}) == 2  # both nodes computed stages
    assert all(s["worker"]["shared_cache"] for s in host)  # one machine: the workers see this cache


def test_cache_shipped_through_the_object_store_gives_the_same_results(cluster: str, local_rows: tuple,
                                                                       tmp_path: Path) -> None:
    plan, expected = local_rows
    _finish(_run(plan, tmp_path / "out", tmp_path / "cache", "--executor", "ray", "--address", cluster,
                 EDGEBENCH_RAY_CACHE="ship"))
    run_dir = only_run(tmp_path / "out")
    assert results(run_dir) == expected
    host = [s for n, s in stages(run_dir).items() if n.split("/")[0] in ("model", "craft")]
    assert not any(s["worker"]["shared_cache"] for s in host)
    # what the workers built came back into this machine's cache, checked against its manifests
    for kind in ("model", "export", "adv"):
        assert len(list((tmp_path / "cache" / kind).glob("*/manifest.json"))) >= 2, kind
    # again from an empty cache here: the nodes keep theirs, find every stage's outputs there and ship them back
    _finish(_run(plan, tmp_path / "out2", tmp_path / "cache2", "--executor", "ray", "--address", cluster,
                 EDGEBENCH_RAY_CACHE="ship"))
    run_dir = only_run(tmp_path / "out2")
    assert results(run_dir) == expected
    host = [s for n, s in stages(run_dir).items() if n.split("/")[0] in ("model", "craft")]
    assert len(host) == 4 and not any(s["worker"]["shared_cache"] for s in host)
    for kind in ("model", "export", "adv"):
        assert len(list((tmp_path / "cache2" / kind).glob("*/manifest.json"))) >= 2, kind
    assert sorted(p.name for p in Path(NODE_TMP[cluster]).glob("edgebench-ray-cache-*")) == \
        [f"edgebench-ray-cache-{os.getuid()}"]  # one folder for both nodes and both runs


def _ray_task_processes() -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["name", "cmdline"]):
        text = " ".join(p.info.get("cmdline") or []) + " " + (p.info.get("name") or "")
        if "ray_host_task" in text and "edgebench.cli" not in text:
            out.append(p)
    return out


def test_ray_worker_killed_mid_task_is_retried_and_nothing_is_lost(cluster: str, local_rows: tuple,
                                                                   tmp_path: Path) -> None:
    plan, expected = local_rows
    plan = sweep(tmp_path, n=2, epochs=12)  # longer stages, so that the kill lands mid-task
    proc = _run(plan, tmp_path / "out", tmp_path / "cache", "--executor", "ray", "--address", cluster)
    try:
        deadline, victim = time.monotonic() + 180, None
        while time.monotonic() < deadline and victim is None and proc.poll() is None:
            busy = _ray_task_processes()
            if busy:
                time.sleep(1.5)
                victim = busy[0]
                victim.send_signal(signal.SIGKILL)
            else:
                time.sleep(0.2)
        assert victim is not None, "never saw a Ray worker running a host task"
        _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    run_dir = only_run(tmp_path / "out")
    st = stages(run_dir)
    assert all(s["status"] == "done" for s in st.values()), st
    assert len(results(run_dir)) == 4  # none lost, none twice
    assert victim.pid not in {s["worker"]["pid"] for s in st.values() if "worker" in s}


def _lab_node(address: str) -> str:
    code = (f"import ray; ray.init(address={address!r}, logging_level='ERROR'); "
            "print([n['NodeID'] for n in ray.nodes() if n['Alive'] and n['Resources'].get('edgebench-lab')][0])")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **RAY_ENV}, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_device_jobs_are_dispatched_from_the_node_that_reaches_the_device(cluster: str, local_rows: tuple,
                                                                           ray_cache: Path, tmp_path: Path) -> None:
    """A target with ``ray_resource`` has its jobs run from the node offering that resource (the lab machine),
    its files shipped there and its outputs back; the same numbers as measured from here. A target whose
    resource no node offers fails in one line, and the other jobs go on."""
    from importlib import resources

    plan, expected = local_rows
    targets = tmp_path / "targets"
    targets.mkdir()
    local = resources.files("edgebench.targets").joinpath("builtin", "local.toml").read_text()
    for name, resource in (("lab", "edgebench-lab"), ("attic", "edgebench-attic")):
        (targets / f"{name}.toml").write_text(local.replace('name = "local"', f'name = "{name}"\nray_resource = '
                                                                                f'"{resource}"'))
    text = plan.read_text().replace('target = "local"', 'target = "lab"')
    text += '[[targets]]\ntarget = "attic"\nbackends = ["onnxruntime"]\n'
    lab_plan = tmp_path / "lab.toml"
    lab_plan.write_text(text)
    proc = _run(lab_plan, tmp_path / "out", ray_cache, "--executor", "ray", "--address", cluster,
                EDGEBENCH_TARGETS=str(targets))
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 1  # the attic's jobs failed, in one line each
    assert "no node of the Ray cluster offers resource 'edgebench-attic'" in stderr and "Traceback" not in stderr
    run_dir = only_run(tmp_path / "out")
    st = stages(run_dir)
    lab = {n: s for n, s in st.items() if n.startswith("device/lab/")}
    assert len(lab) == 2 and all(s["status"] == "done" for s in lab.values())
    assert {s["worker"]["node"] for s in lab.values()} == {_lab_node(cluster)}
    assert all(s["status"] == "failed" for n, s in st.items() if n.startswith("device/attic/"))
    rows = [r for r in results(run_dir)]
    assert len(rows) == 4 and rows == expected  # the lab's rows: the same numbers as measured from here
