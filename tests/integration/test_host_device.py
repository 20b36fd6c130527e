"""The host's compute device (issue 18, "Host device"): ``[host] device`` and ``edgebench run --device`` resolved
at run start, refused in one line where torch sees no CUDA device, recorded per host stage and in the report's
environment section, never part of a cache key; CUDA out of memory fails its own stage naming the batch key.

Everything here runs on the CPU: this machine has no GPU (``tests/gpu/test_host_device_cuda.py`` is the CUDA
run, skipped here with its reason)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgebench.config import load_plan
from edgebench.errors import ConfigError, ResourceError
from edgebench.hostdevice import check_spec, oom_as_error, resolve, stage_device, with_device, with_gpu_workers
from edgebench.runner.placement import batch_key, uses_gpu
from edgebench.store import Store

PLAN = """
[plan]
name = "hostdev"
[data]
dataset = "digits"
n_train = 300
n_test = 60
[[models]]
name = "cnn"
arch = "digits_cnn"
train = {{ epochs = 1, batch_size = 32 }}
{more}
[[attacks]]
name = "fgsm"
eps = [0.1]
n = 30
batch_size = 16
{host}
"""

NO_CUDA = not torch.cuda.is_available()


def _plan(tmp: Path, host: str = "", more: str = "") -> Path:
    path = tmp / "plan.toml"
    path.write_text(PLAN.format(host=host, more=more))
    return path


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "cuda:-1", "cpu:0", "", "cuda 0"])
def test_bad_device_strings_are_refused_naming_the_key(bad: str) -> None:
    with pytest.raises(ConfigError) as exc:
        check_spec(bad, "plan.toml: [host] device")
    line = str(exc.value)
    assert line.startswith("plan.toml: [host] device: ") and "use auto, cpu, cuda or cuda:N" in line
    assert "\n" not in line


def test_plan_keys_parse_and_stay_out_of_the_digest(tmp_path: Path) -> None:
    plain = load_plan(_plan(tmp_path))
    assert plain.host.device == "auto" and plain.host.gpu_workers == 1 and "host" not in plain.as_dict()
    cpu = load_plan(_plan(tmp_path, '[host]\ndevice = "CPU"\ngpu_workers = 2'))
    assert (cpu.host.device, cpu.host.gpu_workers) == ("cpu", 2)
    assert cpu.as_dict()["host"] == {"device": "cpu", "gpu_workers": 2}
    assert cpu.digest() == plain.digest()  # the device computes the same results: same run id, same keys
    with pytest.raises(ConfigError, match=r"\[host\] device: 'tpu' is not a host device"):
        load_plan(_plan(tmp_path, '[host]\ndevice = "tpu"'))
    from edgebench.runner.pipeline import run_plan

    with pytest.raises(ConfigError, match=r"^run_plan\(device=\.\.\.\): 'gpu' is not a host device"):
        run_plan(plain, out_dir=tmp_path / "reports", device="gpu")
    with pytest.raises(ConfigError, match="host.gpu_workers"):
        load_plan(_plan(tmp_path, "[host]\ngpu_workers = 0"))


def test_gpu_workers_flag_overrides_the_plan_and_refuses_zero_in_one_line(tmp_path: Path) -> None:
    plain = load_plan(_plan(tmp_path))
    three = with_gpu_workers(plain, 3)
    assert three.host.gpu_workers == 3 and three.host.origin == "--gpu-workers" and plain.host.gpu_workers == 1
    assert three.digest() == plain.digest() and with_gpu_workers(plain, None) is plain
    proc = subprocess.run([sys.executable, "-m", "edgebench.cli", "run", str(_plan(tmp_path)), "--dry-run",
                           "--gpu-workers", "0", "--out", str(tmp_path / "reports")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "edgebench: --gpu-workers 0: must be 1 or more (the host stages run on the GPU at once)"), proc.stderr


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA: the refusal is for machines without it")
def test_auto_is_the_cpu_here_and_cuda_is_refused_in_one_line() -> None:
    assert resolve("auto", "k") == torch.device("cpu") and resolve("cpu", "k") == torch.device("cpu")
    for spec in ("cuda", "cuda:0", "cuda:3"):
        with pytest.raises(ConfigError) as exc:
            resolve(spec, "plan.toml: [host] device")
        assert str(exc.value) == (f"plan.toml: [host] device: {spec!r} asks for a CUDA device, but torch "
                                  f"{torch.__version__} sees no CUDA device; use 'cpu' or 'auto'")


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA: the refusal is for machines without it")
@pytest.mark.parametrize(("host", "args", "key"), [('[host]\ndevice = "cuda"', [], "plan.toml: [host] device"),
                                                   ("", ["--device", "cuda:3"], "--device")])
def test_cli_refuses_cuda_with_one_line_and_exit_2(tmp_path: Path, host: str, args: list[str], key: str) -> None:
    plan = _plan(tmp_path, host)
    proc = subprocess.run([sys.executable, "-m", "edgebench.cli", "run", str(plan), "--out",
                           str(tmp_path / "reports"), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert key in lines[0] and "sees no CUDA device" in lines[0]
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").rglob("model.pt"))


@pytest.mark.slow
def test_auto_run_is_recorded_and_a_cpu_run_finds_it_all_cached(tmp_path: Path) -> None:
    from edgebench.cli import main
    from edgebench.runner.pipeline import Pipeline

    plan = _plan(tmp_path)
    out = tmp_path / "reports"
    assert main(["run", str(plan), "--out", str(out), "--workers", "0"]) == 0  # auto: the CPU here
    run_dir, = out.iterdir()
    with Store.open(run_dir / "results.sqlite", create=False) as store:
        stages = {s["stage"]: s["info"] for s in store.stages(run_dir.name)}
    expected = str(resolve("auto", "k"))
    for name in ("model/cnn", "craft/cnn/fgsm"):
        dev = stages[name]["device"]
        assert dev["device"] == expected and dev["torch"] == torch.__version__ and dev["memory_mb"] > 0, dev
    assert "device" not in stages["data"]  # main stages are not host computations
    report = (run_dir / "report.md").read_text()
    assert f"Host stages (2) computed on {expected} (" in report and f"torch {torch.__version__}" in report
    # the device is in no key: a --device cpu run finds every host stage of the auto run cached
    rows = Pipeline(with_device(load_plan(plan), "cpu"), out_dir=out).dry_run()
    host = {r["stage"]: r["status"] for r in rows if r["kind"] in ("model", "craft")}
    assert host == {"model/cnn": "cached", "craft/cnn/fgsm": "cached"}, host
    assert main(["run", str(plan), "--out", str(out), "--workers", "0", "--device", "cpu"]) == 0
    assert [p.name for p in out.iterdir()] == [run_dir.name]  # the same run id: the device is not in the digest
    with Store.open(run_dir / "results.sqlite", create=False) as store:
        again = {s["stage"]: s["info"] for s in store.stages(run_dir.name)}
    assert "(cached)" in again["model/cnn"]["note"] and again["model/cnn"]["device"]["device"] == expected


def test_worker_tasks_carry_the_device_and_cpu_stages_ask_no_gpu(tmp_path: Path) -> None:
    from edgebench.runner.dataset import load_data
    from edgebench.runner.pipeline import Pipeline

    plan = with_device(load_plan(_plan(tmp_path)), "cpu")
    pipe = Pipeline(plan, out_dir=tmp_path)
    load_data(pipe)
    task, needs = pipe._task("model/cnn")
    assert task.plan.host.device == "cpu" and task.plan.host.origin == "--device" and needs.gpus == 0.0
    # on a CUDA run, torch stages would take a GPU; a query attack crafted through ONNX Runtime never does
    cuda = torch.device("cuda")
    assert uses_gpu(plan, "model/cnn", cuda) and uses_gpu(plan, "craft/cnn/fgsm", cuda)
    assert not uses_gpu(plan, "craft/cnn/square@onnxruntime", cuda)
    assert not uses_gpu(plan, "model/cnn", pipe.torch_device())


def test_cpu_only_classes_run_on_the_cpu_and_say_so() -> None:
    class Limited:
        cpu_only = "the library's kernels are CPU-only"

    dev, note = stage_device(torch.device("cuda", 0), Limited, "compress 'limited'")
    assert dev == torch.device("cpu") and note == "compress 'limited' runs only on the CPU: the library's kernels " \
                                                   "are CPU-only"
    assert stage_device(torch.device("cuda", 0), object(), "attack 'x'") == (torch.device("cuda", 0), "")
    assert stage_device(torch.device("cpu"), Limited, "x") == (torch.device("cpu"), "")  # nothing to say on the CPU


def test_oom_fails_its_own_stage_naming_the_batch_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CUDA out-of-memory error inside one stage fails that stage with the batch key to lower; the other model
    trains. No GPU is here, so a real ``torch.cuda.OutOfMemoryError`` instance is raised from inside the training
    of model ``big`` (the one stand-in of this file: the error the CUDA caching allocator would raise)."""
    import edgebench.models.train as train_mod
    from edgebench.runner.pipeline import run_plan

    real_train = train_mod.train

    def train(model, x, y, cfg, **kw):  # type: ignore[no-untyped-def]
        if cfg.batch_size == 128:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_train(model, x, y, cfg, **kw)

    monkeypatch.setattr(train_mod, "train", train)
    more = '[[models]]\nname = "big"\narch = "digits_cnn"\ntrain = { epochs = 1, batch_size = 128 }'
    plan = load_plan(_plan(tmp_path, more=more))
    summary = run_plan(plan, out_dir=tmp_path / "reports", device="cpu")
    assert summary.failed["model/big"] == (f"model/big: CUDA out of memory; lower {plan.source}: "
                                           "models[big].train.batch_size (now 128) (or run it with --device cpu)")
    assert "model/cnn" not in summary.failed and "craft/cnn/fgsm" not in summary.failed
    assert "craft/big/fgsm" in summary.skipped
    with Store.open(summary.run_dir / "results.sqlite", create=False) as store:  # auto is the CPU here, recorded
        info = {s["stage"]: s["info"] for s in store.stages(summary.run_id)}
    assert info["model/cnn"]["device"]["device"] == "cpu" and "device" not in info["model/big"]
    # a stage cached from a GPU run: the environment section says which stage ran where
    from edgebench.report.data import RunData
    from edgebench.report.sections import environment_section
    from edgebench.report.tables import Para, Table

    gpu = {"device": "cuda:0", "name": "NVIDIA H100 80GB HBM3", "memory_mb": 81079, "torch": "2.11.0",
           "cuda": "12.8"}
    with Store.open(summary.run_dir / "results.sqlite") as store:
        store.set_stage(summary.run_id, "craft/cnn/fgsm", key="", status="done", info={"device": gpu})
        section = environment_section(RunData.load(store, summary.run_id))
    assert section is not None
    paras = [b.text for b in section.blocks if isinstance(b, Para)]
    assert any(t.startswith("Host stages computed on 2 device(s): cpu (") and
               "cuda:0 (NVIDIA H100 80GB HBM3, 81079 MiB), torch 2.11.0, CUDA 12.8" in t for t in paras), paras
    table, = [b for b in section.blocks if isinstance(b, Table) and b.name == "host_devices"]
    assert [r[0] for r in table.rows] == ["model/cnn", "craft/cnn/fgsm"] and table.rows[1][1].startswith("cuda:0")


def test_batch_keys_and_the_oom_conversion(tmp_path: Path) -> None:
    plan = load_plan(_plan(tmp_path))
    assert batch_key(plan, "craft/cnn/fgsm") == f"{plan.source}: attacks[fgsm].batch_size (now 16)"
    assert batch_key(plan, "model/cnn") == f"{plan.source}: models[cnn].train.batch_size (now 32)"
    line = r"^craft/cnn/fgsm: CUDA out of memory; lower k \(or run it with --device cpu\)$"
    with pytest.raises(ResourceError, match=line), oom_as_error("craft/cnn/fgsm", "k"):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")
    with pytest.raises(ValueError), oom_as_error("s", "k"):  # anything else passes through untouched
        raise ValueError("not memory")
