"""The fault catalogue of docs/reliability.md, each case a test: the user sees one clear line, the rest goes
on, and nothing is lost or duplicated in the store.

Here: Ctrl-C (SIGINT) during a device job, SIGKILL during a host stage (training), two processes writing one
store at once, a corrupted cache entry, the host's disk full (the run folder, the artifact cache) and a hostile
ONNX model whose external data point outside its folder. The other cases live beside the code they exercise
(tests/integration/test_pipeline.py, test_ssh.py, tests/unit/test_agent.py, test_data.py, test_plan_fuzz.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from edgebench.cli import main
from tests.fixtures.signals import sigint_as_a_terminal_leaves_it

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

PLAN = """
[plan]
name = "faults"
[data]
dataset = "digits"
[[models]]
name = "cnn"
arch = "digits_cnn"
train = {{ epochs = {epochs}, batch_size = 32, lr = 0.003 }}
{extra}
[[attacks]]
name = "fgsm"
eps = [0.05, 0.2]
[[targets]]
target = "local"
backends = ["onnxruntime"]
[export]
openvino = false
[measure]
warmup = 2
min_runs = 20
min_duration_s = {duration}
"""
ROWS = 3  # per model: clean + fgsm at two eps
STAGES = {"data", "model/cnn", "testset/clean", "craft/cnn/fgsm", "latency/local/onnxruntime",
          "device/local/onnxruntime/cnn"}
INTERRUPTED = "edgebench: interrupted; finished stages are kept, run the same command again to resume"
TERMINATED = "edgebench: terminated (SIGTERM); finished stages are kept, run the same command again to resume"


def write_plan(tmp_path: Path, *, epochs: int = 2, duration: float = 0.05, extra: str = "") -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(PLAN.format(epochs=epochs, duration=duration, extra=extra))
    return path


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: this checkout, the test's own cache, one thread."""
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def start_cli(plan: Path, out: Path) -> subprocess.Popen[str]:
    """``edgebench run`` in its own process group, as a terminal would start it (Ctrl-C reaches the group)."""
    return subprocess.Popen([sys.executable, "-m", "edgebench.cli", "run", str(plan), "--out", str(out)],
                            env=cli_env(), stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=sigint_as_a_terminal_leaves_it)


def wait_for(proc: subprocess.Popen[str], ready: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before {what}: {proc.stderr.read() if proc.stderr else ''}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def error_lines(stderr: str) -> list[str]:
    """What the CLI says to the user (log lines are progress, not errors)."""
    return [ln for ln in stderr.splitlines() if ln.startswith("edgebench:")]


def the_run(out: Path) -> Path:
    (run_dir,) = [p.parent for p in out.glob("*/results.sqlite")]
    return run_dir


def store_facts(run_dir: Path) -> dict[str, object]:
    """What a resumed run must not lose or duplicate."""
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        return {
            "results": db.execute("SELECT count(*) FROM results").fetchone()[0],
            "distinct": db.execute("SELECT count(*) FROM (SELECT DISTINCT model, variant, attack, eps, backend, "
                                   "target, source FROM results)").fetchone()[0],
            "stages": dict(db.execute("SELECT stage, status FROM stages").fetchall()),
            "status": [r[0] for r in db.execute("SELECT status FROM runs")],
            "integrity": db.execute("PRAGMA integrity_check").fetchone()[0],
        }


def group_gone(pgid: int, timeout: float = 10) -> bool:
    """Whether every process of the group (the host and its agent) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["ctrl-c", "kill"])
def test_sigint_stops_cleanly_keeps_finished_stages_then_resumes(how: str, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Ctrl-C during a device job (the latency timing): exit 130 and one line; the host stages already done stay
    stored (and cached), the interrupted job is not recorded as done; the same command again finishes without
    redoing the host stages and without a duplicate row. ``kill PID`` (SIGTERM to the run alone, as a batch
    scheduler or ``docker stop`` sends it) does the same with exit 143: the run stops its agent itself."""
    plan, out = write_plan(tmp_path, duration=2.0), tmp_path / "reports"
    proc = start_cli(plan, out)
    # the latency job times for at least min_duration_s (2 s): the signal lands inside it, not after the short
    # accuracy job
    wait_for(proc, lambda: bool(list(out.glob("*/raw/latency_*/job.json"))), "the latency job started")
    time.sleep(0.2)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the host and its agent
    else:
        proc.send_signal(signal.SIGTERM)  # the run's process only: its agent is the run's to stop
    _, err = proc.communicate(timeout=60)
    line = INTERRUPTED if how == "ctrl-c" else TERMINATED
    assert proc.returncode == (130 if how == "ctrl-c" else 143), err
    assert error_lines(err) == [line] and err.rstrip().endswith(line)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert group_gone(proc.pid), "the agent outlived the interrupted run"
    run_dir = the_run(out)
    facts = store_facts(run_dir)
    assert facts["status"] == ["interrupted"] and facts["results"] == 0 and facts["integrity"] == "ok"
    assert facts["stages"] == {s: "done" for s in STAGES if not s.startswith(("device/", "latency/"))}
    # the interrupted latency job left no result, and the accuracy job had not started
    assert list(run_dir.glob("raw/latency_*/job.json")) and not list(run_dir.glob("raw/*/result.json"))

    with caplog.at_level("INFO", logger="edgebench"):  # the same command again (in this process: faster)
        assert main(["run", str(plan), "--out", str(out)]) == 0
    done = {r.getMessage().split("] ", 1)[-1].split(":")[0]: r.getMessage() for r in caplog.records
            if r.getMessage().startswith("[")}
    assert "(cached)" in done["model/cnn"] and "(cached)" in done["craft/cnn/fgsm"]  # not redone
    assert "(cached)" not in done["device/local/onnxruntime/cnn"]  # measured: it had not finished
    facts = store_facts(run_dir)
    assert facts["status"] == ["done"] and facts["integrity"] == "ok"
    assert facts["results"] == facts["distinct"] == ROWS
    assert facts["stages"] == dict.fromkeys(STAGES, "done")
    recs = json.loads((run_dir / "results.json").read_text())
    assert sorted((r["attack"], r["eps"]) for r in recs) == [("fgsm", 0.05), ("fgsm", 0.2), ("none", 0.0)]


def test_sigkill_mid_host_stage_then_resume(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """SIGKILL while the model trains: nothing half-built is published in the cache, the finished stage (data)
    stays stored; the same command again trains, measures and stores every row once."""
    plan, out = write_plan(tmp_path, epochs=5), tmp_path / "reports"
    cache = Path(os.environ["EDGEBENCH_CACHE"])
    proc = start_cli(plan, out)
    wait_for(proc, lambda: bool(list((cache / "model").glob(".*.tmp-*"))), "training started")
    time.sleep(0.2)  # the checkpoint is built (trained) inside that folder: well before five epochs are done
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not list((cache / "model").glob("*/manifest.json"))  # no entry published by the killed build
    run_dir = the_run(out)
    facts = store_facts(run_dir)
    assert facts["stages"].get("data") == "done" and "model/cnn" not in facts["stages"]
    assert set(facts["stages"].values()) == {"done"} and facts["results"] == 0 and facts["integrity"] == "ok"
    assert facts["status"] == ["running"]  # killed: it had no chance to say more; the report marks it incomplete

    with caplog.at_level("INFO", logger="edgebench"):  # the same command again (in this process: faster)
        assert main(["run", str(plan), "--out", str(out)]) == 0
    model_line = next(r.getMessage() for r in caplog.records if "model/cnn: host clean acc" in r.getMessage())
    assert "(cached)" not in model_line  # trained again, from scratch
    facts = store_facts(run_dir)
    assert facts["status"] == ["done"] and facts["results"] == facts["distinct"] == ROWS
    assert facts["stages"] == dict.fromkeys(STAGES, "done")
    from edgebench.runner.cache import Cache

    (entry,) = [p for p in (cache / "model").iterdir() if not p.name.startswith(".")]
    assert Cache(cache).get("model", entry.name) == entry  # published whole: every file matches its manifest
    assert not list((cache / "model").glob(".*.tmp-*"))  # the killed build's temporary folder was swept


# ---------------------------------------------------------------------------------------------------------------
WRITER = """
import sys, time
from edgebench.store import Store
db, run, n, go, meet = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
if meet == "open":  # the two meet at Store.open (a fresh store: both create it)
    time.sleep(max(0.0, go - time.time()))
with Store.open(db) as store:
    time.sleep(max(0.0, go - time.time()))  # the two meet at their first write
    store.begin_run(run, plan_name="p", plan_hash=run, plan={}, version="test")
    for i in range(n):  # one transaction per row: the two writers interleave as finely as they can
        store.put_results(run, [{"model": "m", "variant": "base", "attack": "fgsm", "eps": i / n, "backend": "b",
                                 "target": "t", "source": "m", "n": i, "clean_acc": i / n}])
        store.set_stage(run, f"stage/{i}", key=str(i), status="done", info={"i": i})
    store.finish_run(run, "done")
"""


def _writers(db: Path, n: int, *, meet: str = "write", delay: float = 1.0) -> list[subprocess.CompletedProcess[str]]:
    """Two processes writing ``n`` rows each into ``db``, starting at the same moment (``meet``: at their first
    write, or at ``Store.open``)."""
    go = time.time() + delay
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), run, str(n), str(go), meet], env=cli_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for run in ("a", "b")]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=120), *p.communicate()) for p in procs]


def test_two_processes_write_one_store_at_once(tmp_path: Path) -> None:
    """Two processes write one results store at once (WAL): every row of both is there, once, and the file
    passes SQLite's integrity check."""
    from edgebench.store import Store

    db, n = tmp_path / "results.sqlite", 150
    with Store.open(db):  # the first run created it
        pass
    for p in _writers(db, n):
        assert p.returncode == 0, p.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        per_run = dict(conn.execute("SELECT run_id, count(*) FROM results GROUP BY run_id").fetchall())
        assert per_run == {"a": n, "b": n}
        assert conn.execute("SELECT count(DISTINCT run_id || eps) FROM results").fetchone()[0] == 2 * n
        assert dict(conn.execute("SELECT run_id, count(*) FROM stages GROUP BY run_id").fetchall()) == per_run
        assert sorted(conn.execute("SELECT run_id, status FROM runs").fetchall()) == [("a", "done"), ("b", "done")]
        clean = conn.execute("SELECT clean_acc FROM results WHERE run_id='b' ORDER BY eps").fetchall()
        assert [c[0] for c in clean] == [i / n for i in range(n)]


def test_two_processes_create_one_store_at_once(tmp_path: Path) -> None:
    """Reproduces the race about one run in three (six tries, each opening a fresh store from two processes at
    the same moment); it passes once Store.open retries the journal-mode switch and inserts the version once."""
    for trial in range(6):
        db = tmp_path / f"fresh-{trial}.sqlite"
        for p in _writers(db, 5, meet="open", delay=0.3):
            assert p.returncode == 0, p.stderr.strip().splitlines()[-1]


# ---------------------------------------------------------------------------------------------------------------
def test_corrupted_cache_entry_is_rebuilt_never_used(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Bytes flipped in a cached checkpoint and a cached ONNX file between two runs: both entries fail their
    manifest's sha256, are discarded and rebuilt (one warning each), and the rebuilt artifacts measure exactly
    what the intact ones did."""
    plan, out = write_plan(tmp_path), tmp_path / "reports"
    cache = Path(os.environ["EDGEBENCH_CACHE"])
    assert main(["run", str(plan), "--out", str(out)]) == 0
    first = {(r["attack"], r["eps"]): r for r in json.loads((the_run(out) / "results.json").read_text())}
    (ckpt,) = cache.glob("model/*/model.pt")
    (onnx_file,) = cache.glob("export/*/model.onnx")
    intact = {ckpt: sha256(ckpt), onnx_file: sha256(onnx_file)}
    for path in intact:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        assert sha256(path) != intact[path]

    caplog.clear()
    capsys.readouterr()
    with caplog.at_level("WARNING"):
        assert main(["run", str(plan), "--out", str(out), "--run-id", "again"]) == 0
    warnings = [r.getMessage() for r in caplog.records if "does not match its manifest" in r.getMessage()]
    assert sorted(warnings) == sorted(f"cache: {p.parent} does not match its manifest; discarding it and rebuilding"
                                      for p in intact)
    for path, digest in intact.items():  # rebuilt in place, byte for byte what it was
        assert sha256(path) == digest
    with sqlite3.connect(out / "again" / "results.sqlite") as db:
        stored = dict(db.execute("SELECT format, sha256 FROM artifacts").fetchall())
    assert stored == {"onnx": intact[onnx_file]}
    again = {(r["attack"], r["eps"]): r for r in json.loads((out / "again" / "results.json").read_text())}
    assert again.keys() == first.keys()
    for k, r in again.items():  # the same network measured: not the corrupted one
        assert (r["clean_acc"], r.get("asr")) == (first[k]["clean_acc"], first[k].get("asr"))


class _Planted:
    """A pickle that writes ``marker`` when it is loaded: what someone who can write a shared cache folder could
    leave at the key of a real stage."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def test_planted_cache_entry_is_rebuilt_never_loaded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A compressed twin (a whole pickled module, read back with ``weights_only=False``) replaced by a pickle that
    writes a file, with a manifest that lists its true hash but no valid signature: the run does not load it (the
    file is never written), says so in one line, and rebuilds the variant, which measures what it did before."""
    import torch

    from edgebench.runner.cache import key_path

    plan = write_plan(tmp_path, extra='[[compress]]\nmethod = "kbit"\nbits = 4\n')
    out, cache = tmp_path / "reports", Path(os.environ["EDGEBENCH_CACHE"])
    assert main(["run", str(plan), "--out", str(out)]) == 0
    first = {(r["variant"], r["attack"], r["eps"]): r for r in json.loads((the_run(out) / "results.json").read_text())}
    (twin,) = cache.glob("variant/*/twin.pt")
    intact, signed = sha256(twin), json.loads((twin.parent / "manifest.json").read_text())["signature"]
    marker = tmp_path / "planted-code-ran"

    def plant(signature: str | None) -> None:
        torch.save(_Planted(marker), twin)
        manifest = json.loads((twin.parent / "manifest.json").read_text())
        manifest["files"]["twin.pt"] = sha256(twin)  # a manifest that matches the planted file
        manifest.pop("signature")
        (twin.parent / "manifest.json").write_text(json.dumps({**manifest, **({"signature": signature}
                                                                               if signature else {})}))

    for case, signature in (("unsigned", None), ("stale-signature", signed)):
        plant(signature)
        caplog.clear()
        with caplog.at_level("WARNING"):
            assert main(["run", str(plan), "--out", str(out), "--run-id", case]) == 0
        assert not marker.exists(), case
        lines = [r.getMessage() for r in caplog.records if "cache:" in r.getMessage()]
        assert lines == [f"cache: {twin.parent} is not signed with this machine's cache key ({key_path()}); "
                         "rebuilding it, never loading it"], case
        assert sha256(twin) == intact  # rebuilt, byte for byte what it was
        again = json.loads((out / case / "results.json").read_text())
        assert {(r["variant"], r["attack"], r["eps"]): r["clean_acc"] for r in again} == \
            {k: r["clean_acc"] for k, r in first.items()}
    # the planted pickle was live: loading it the way a twin is loaded runs its code
    torch.save(_Planted(marker), tmp_path / "planted.pt")
    with pytest.raises(AttributeError):  # what it unpickles to is a file object, not a module: .eval() fails
        torch.load(tmp_path / "planted.pt", weights_only=False).eval()
    assert marker.exists()


# ---------------------------------------------------------------------------------------------------------------
Mount = Callable[[Path, str], Path]
Grow = Callable[[Path, str], None]


@pytest.fixture
def small_disk() -> Iterator[tuple[Mount, Grow]]:
    """``mount(path, size)``: a real tmpfs of ``size`` at ``path`` (root only; skipped elsewhere), unmounted at
    the end; ``grow(path, size)`` frees space by resizing it."""
    mounted: list[Path] = []

    def mount(path: Path, size: str) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here to fill ({done.stderr.strip()[:80]})")
        mounted.append(path)
        return path

    def grow(path: Path, size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)

    yield mount, grow
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_host_disk_for_the_run_folder(tmp_path: Path, small_disk: tuple[Mount, Grow],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The run folder's disk fills mid-run: one line saying so, non-zero exit; once space is freed the same
    command finishes, every row once, the store intact."""
    mount, grow = small_disk
    plan, out = write_plan(tmp_path), mount(tmp_path / "reports", "256k")
    capsys.readouterr()
    code = main(["run", str(plan), "--out", str(out)])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert any("full" in ln or "space" in ln for ln in error_lines(err)), err
    grow(out, "16m")
    assert main(["run", str(plan), "--out", str(out)]) == 0
    facts = store_facts(the_run(out))
    assert facts["results"] == facts["distinct"] == ROWS and facts["integrity"] == "ok"


def test_full_host_disk_for_the_cache(tmp_path: Path, small_disk: tuple[Mount, Grow], monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The artifact cache's disk fills while a checkpoint is written: that stage fails in one line naming the
    cache, nothing half-written is published; with space again the same command finishes."""
    mount, grow = small_disk
    cache = mount(tmp_path / "cache", "64k")
    monkeypatch.setenv("EDGEBENCH_CACHE", str(cache))
    plan, out = write_plan(tmp_path), tmp_path / "reports"
    capsys.readouterr()
    code = main(["run", str(plan), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert any(str(cache) in ln and ("full" in ln or "space" in ln) for ln in error_lines(err)), err
    assert not list(cache.glob("*/*/manifest.json")) or all(
        sha256(cache / p.parent / n) == d for p in cache.glob("*/*/manifest.json")
        for n, d in json.loads(p.read_text())["files"].items())
    grow(cache, "16m")
    assert main(["run", str(plan), "--out", str(out)]) == 0
    facts = store_facts(the_run(out))
    assert facts["results"] == facts["distinct"] == ROWS and facts["status"] == ["done"]


# ---------------------------------------------------------------------------------------------------------------
def _onnx_with_external_data(path: Path, location: str) -> Path:
    """A valid 8x8 -> 10 classifier (Flatten, MatMul) whose weight's data live in ``location``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((64, 10), np.float32), "W")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(64 * 10 * 4))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "W"], ["y"])], "hostile",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10])], [w])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_hostile_onnx_external_data_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A user's ONNX model whose external data point outside its folder (``..``, an absolute path, a symbolic
    link leading out) is refused before any runtime reads it: one line per model naming the file and the path;
    the plan's other model is measured and stored."""
    secret = tmp_path / "secret.bin"
    np.arange(640, dtype=np.float32).tofile(secret)
    link = tmp_path / "link" / "weights.bin"
    link.parent.mkdir()
    link.symlink_to(secret)
    hostile = {
        "escape": (_onnx_with_external_data(tmp_path / "escape" / "model.onnx", "../secret.bin"), "../secret.bin"),
        "passwd": (_onnx_with_external_data(tmp_path / "passwd" / "model.onnx", "../../../../../../etc/passwd"),
                   "../../../../../../etc/passwd"),
        "absolute": (_onnx_with_external_data(tmp_path / "absolute" / "model.onnx", str(secret)), str(secret)),
        "symlink": (_onnx_with_external_data(tmp_path / "link" / "model.onnx", "weights.bin"), "weights.bin"),
    }
    extra = "".join(f'[[models]]\nname = "{name}"\nonnx = "{path}"\nattack_source = "cnn"\n'
                    for name, (path, _) in hostile.items())
    out = tmp_path / "reports"
    capsys.readouterr()
    code = main(["run", str(write_plan(tmp_path, extra=extra)), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    lines = error_lines(err)
    assert len(lines) == len(hostile) + 1 and lines[-1].startswith(f"edgebench: {len(hostile)} stage(s) failed")
    for name, (path, location) in hostile.items():
        (line,) = [ln for ln in lines if ln.startswith(f"edgebench: model/{name} failed: ")]
        assert f"models[{name}].onnx: {path}: tensor 'W' keeps its data in {location!r}, which is outside the " \
               f"model's folder {path.parent.resolve()}; refused" in line
    recs = json.loads((the_run(out) / "results.json").read_text())
    assert {r["model"] for r in recs} == {"cnn"} and len(recs) == ROWS

    from edgebench.export.onnx_import import check_external_data

    inside = _onnx_with_external_data(tmp_path / "fine" / "model.onnx", "model.data")
    (inside.parent / "model.data").write_bytes(secret.read_bytes())
    check_external_data(inside, where="plan")  # beside the model: accepted


# ---------------------------------------------------------------------------------------------------------------
def test_target_name_and_paths_with_shell_metacharacters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A local target whose name and file name, and a run folder whose path, are full of shell syntax: passed
    as data (argument lists, never a shell string): nothing runs, the run measures and stores its rows under
    that name. (The ssh transport's own case is tests/integration/test_ssh.py.)"""
    import uuid

    canary = f"eb-pwned-{uuid.uuid4().hex[:8]}"
    monkeypatch.chdir(tmp_path)  # where a shell would run `touch`
    odd = f"odd; touch {canary} $(touch {canary}) `touch {canary}` 'q\\\"| cat"
    target = tmp_path / f"t $(touch {canary}); `touch {canary}`.toml"
    target.write_text(f"[target]\nname = '''{odd}'''\ntransport = \"local\"\n[backends.onnxruntime]\n"
                      "intra_op_num_threads = 1\n")
    plan = write_plan(tmp_path).read_text().replace('target = "local"', f"target = '''{target}'''")
    (tmp_path / "plan.toml").write_text(plan)
    out = tmp_path / f"out $(touch {canary}); `touch {canary}` &"
    assert main(["run", str(tmp_path / "plan.toml"), "--out", str(out)]) == 0
    with sqlite3.connect(the_run(out) / "results.sqlite") as db:
        rows = db.execute("SELECT target, attack, eps FROM results ORDER BY attack, eps").fetchall()
    assert rows == [(odd, "fgsm", 0.05), (odd, "fgsm", 0.2), (odd, "none", 0.0)]
    assert not any((d / canary).exists() for d in (tmp_path, Path.home(), REPO, out))
