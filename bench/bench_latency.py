"""The agent's latency pass (``latency_pass`` over a backend's ``bind``) vs a reference, in the same run.

Three measurements, each alternating blocks of edgebench and its reference (the order flips every block)
so drift and other processes hit both alike; each compares the median of the blocks' p50s:

- ``null``: the harness's own cost per inference with the ``null`` backend's bound callable vs a bare
  ``perf_counter_ns`` loop around a no-op call (goal: < 20 µs per inference, absolute).
- ``onnxruntime``: the agent vs a bare ``session.run`` loop, same model, threads and input (goal ≤ 1.10×).
- ``openvino``: the agent (LATENCY hint, f32, T threads) vs OpenVINO's ``benchmark_app`` run as a subprocess
  on the same IR with the same hint, threads and precision (goal ≤ 1.10×). benchmark_app refuses
  ``-nthreads`` together with ``-hint latency``, so the thread count goes in through ``-load_config``. Mind
  what it reports: its "Median" is the request's C++-side ``latency`` (it excludes the hand-back to the
  Python caller that its own loop pays too; compare the wall time per inference, Duration / Count), and
  ``-b 1`` reshapes the model to a static batch of 1 before compiling, while the agent runs the IR as
  exported (dynamic batch axis). Info rows time bare in-process ``request.infer()`` loops on both shapes,
  Python-timed and C++-timed, to split the gap into those parts.

    python bench/bench_latency.py [--only null,onnxruntime,openvino] [--blocks 7] [--threads 2]
        [--model liu2018_mnist|digits_cnn] [--runs 2000] [--null-runs 200000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's edgebench, installed or not

PARTS = ("null", "onnxruntime", "openvino")
SHAPES = {"digits_cnn": (1, 8, 8), "liu2018_mnist": (1, 28, 28)}


class CpuMeter:
    """CPU time used by other processes (cores busy on average) while a block pair ran, from /proc/stat
    minus this process's and its children's own CPU time."""

    def __init__(self) -> None:
        self.other: list[float] = []
        self._hz = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _busy() -> float | None:
        try:
            with open("/proc/stat") as f:
                v = [int(t) for t in f.readline().split()[1:]]
        except OSError:
            return None
        return float(sum(v[:8]) - v[3] - v[4])  # user..steal minus idle and iowait (guest is inside user)

    @staticmethod
    def _own() -> float:
        s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

    def start(self) -> tuple[float | None, float, float]:
        return self._busy(), self._own(), time.perf_counter()

    def stop(self, snap: tuple[float | None, float, float]) -> None:
        busy0, own0, t0 = snap
        busy1, own1, wall = self._busy(), self._own(), time.perf_counter() - t0
        if busy0 is not None and busy1 is not None and wall > 0:
            self.other.append(max(0.0, ((busy1 - busy0) / self._hz - (own1 - own0)) / wall))

    def flag(self, rows: list[list[str]]) -> list[list[str]]:
        """Mark the verdicts of rows measured while other processes kept > 0.25 core busy (median)."""
        busy = statistics.median(self.other) if self.other else 0.0
        if busy > 0.25:
            for r in rows:
                if r[-1] != "info":
                    r[-1] += f" (CPU shared: {busy:.2f} cores busy elsewhere)"
        return rows

    def summary(self) -> str:
        if not self.other:
            return "other processes: n/a"
        return (f"other processes busy {statistics.median(self.other):.2f} cores median, "
                f"{max(self.other):.2f} max over block pairs (of {os.cpu_count()})")


def _alternate(blocks: int, a: Callable[[], None], b: Callable[[], None], meter: CpuMeter) -> None:
    for i in range(blocks):
        snap = meter.start()
        for fn in ((a, b) if i % 2 == 0 else (b, a)):
            fn()
        meter.stop(snap)


def _us(ns: np.ndarray, stat: Callable[[np.ndarray], float] = np.median) -> float:
    return float(stat(ns)) / 1e3


def _rng(vals: list[float]) -> str:
    return f"{min(vals):.2f}-{max(vals):.2f}"


def _pair_ratios(a: list[float], b: list[float]) -> str:
    r = [x / y for x, y in zip(a, b)]
    return f"median {statistics.median(r):.3f}, {min(r):.3f}-{max(r):.3f}"


def _row(name: str, eb: float, ref: float, goal: str, ok: bool | None, unit: str = "µs") -> list[str]:
    verdict = "info" if ok is None else ("met" if ok else "NOT met")
    return [name, f"{eb:.2f} {unit}", f"{ref:.2f} {unit}", f"{eb / ref:.3f}", goal, verdict]


# ---------------------------------------------------------------------------------------------- null ---

def bench_null(args: argparse.Namespace, model_path: Path, x: np.ndarray) -> tuple[list[list[str]], list[str]]:
    from edgebench.agent.job import latency_pass
    from edgebench.agent.protocol import LatencyProtocol
    from edgebench.runtime import create_backend

    backend = create_backend("null", num_classes=10)
    backend.load(model_path)
    infer = backend.bind(x)
    n = args.null_runs
    proto = LatencyProtocol(warmup=1000, min_runs=n, min_duration_s=0.0, max_runs=n)

    def noop() -> None:
        return None

    def bare() -> tuple[np.ndarray, float]:
        for _ in range(1000):
            noop()
        clock = time.perf_counter_ns
        samples: list[int] = []
        append = samples.append
        start = clock()
        for _ in range(n):
            t0 = clock()
            noop()
            t1 = clock()
            append(t1 - t0)
        return np.asarray(samples, dtype=np.int64), (clock() - start) / 1e9

    res: dict[str, dict[str, list[float]]] = {k: {"p50": [], "mean": [], "iter": []} for k in ("eb", "ref")}

    def record(key: str, out: tuple[np.ndarray, float]) -> None:
        samples, duration = out
        res[key]["p50"].append(_us(samples))
        res[key]["mean"].append(_us(samples, np.mean))
        res[key]["iter"].append(duration / len(samples) * 1e6)

    meter = CpuMeter()
    _alternate(args.blocks, lambda: record("eb", latency_pass(infer, proto)), lambda: record("ref", bare()),
               meter)
    med = {k: {s: statistics.median(v) for s, v in d.items()} for k, d in res.items()}
    rows = [
        _row("null: harness overhead per inference, p50", med["eb"]["p50"], med["ref"]["p50"], "< 20 µs",
             med["eb"]["p50"] < 20),
        _row("null: harness overhead per inference, mean", med["eb"]["mean"], med["ref"]["mean"], "< 20 µs",
             med["eb"]["mean"] < 20),
        _row("null: whole loop wall time per iteration", med["eb"]["iter"], med["ref"]["iter"], "< 20 µs",
             med["eb"]["iter"] < 20),
    ]
    notes = [f"null: {args.blocks} blocks x {n} runs; block p50 edgebench {_rng(res['eb']['p50'])} µs, "
             f"bare {_rng(res['ref']['p50'])} µs; block means edgebench {_rng(res['eb']['mean'])} µs, "
             f"bare {_rng(res['ref']['mean'])} µs; {meter.summary()}"]
    return meter.flag(rows), notes


# ------------------------------------------------------------------------------------------ onnxruntime ---

def bench_onnxruntime(args: argparse.Namespace, onnx_path: Path, x: np.ndarray) -> tuple[list[list[str]], list[str]]:
    import onnxruntime as ort

    from edgebench.agent.job import latency_pass
    from edgebench.agent.protocol import LatencyProtocol
    from edgebench.runtime import create_backend

    backend = create_backend("onnxruntime", intra_op_num_threads=args.threads, inter_op_num_threads=1)
    backend.load(onnx_path)
    infer = backend.bind(x)
    proto = LatencyProtocol(warmup=100, min_runs=args.runs, min_duration_s=0.0, max_runs=args.runs)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

    def bare() -> np.ndarray:
        for _ in range(100):
            sess.run(None, {"x": x})
        out = np.empty(args.runs, dtype=np.int64)
        clock = time.perf_counter_ns
        for i in range(args.runs):
            t0 = clock()
            sess.run(None, {"x": x})
            out[i] = clock() - t0
        return out

    p50: dict[str, list[float]] = {"eb": [], "ref": []}
    meter = CpuMeter()
    _alternate(args.blocks, lambda: p50["eb"].append(_us(latency_pass(infer, proto)[0])),
               lambda: p50["ref"].append(_us(bare())), meter)
    eb, ref = statistics.median(p50["eb"]), statistics.median(p50["ref"])
    rows = [_row(f"onnxruntime p50 vs bare session.run ({args.threads} thr)", eb, ref, "≤ 1.10×",
                 eb / ref <= 1.10)]
    notes = [f"onnxruntime {ort.__version__}: {args.blocks} blocks x {args.runs} runs; block p50 edgebench "
             f"{_rng(p50['eb'])} µs, bare {_rng(p50['ref'])} µs; paired block ratios "
             f"{_pair_ratios(p50['eb'], p50['ref'])}; {meter.summary()}"]
    return meter.flag(rows), notes


# --------------------------------------------------------------------------------------------- openvino ---

_STAT = re.compile(r"^\[ INFO \]\s+(Median|Average|Count|Duration):\s+([\d.]+)\s*(ms|us|iterations)?", re.M)
_PROP = re.compile(r"^\[ INFO \]\s+(INFERENCE_NUM_THREADS|INFERENCE_PRECISION_HINT|NUM_STREAMS|PERFORMANCE_HINT|"
                   r"ENABLE_CPU_PINNING|OPTIMAL_NUMBER_OF_INFER_REQUESTS):\s+(.+)$", re.M)


def _benchmark_app(cmd: list[str]) -> tuple[dict[str, float], dict[str, str], str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"benchmark_app failed ({proc.returncode}): {' '.join(cmd)}\n{out[-3000:]}")
    stats: dict[str, float] = {}
    for key, val, unit in _STAT.findall(out):
        stats[key] = float(val) * (1000.0 if unit == "ms" and key in ("Median", "Average") else 1.0)
    if "Median" not in stats:
        raise SystemExit(f"benchmark_app printed no 'Median:' latency:\n{out[-3000:]}")
    mode = "sync" if "inference synchronously" in out else "async"
    return stats, dict(_PROP.findall(out)), mode


def bench_openvino(args: argparse.Namespace, xml: Path, x: np.ndarray,
                   workdir: Path) -> tuple[list[list[str]], list[str]]:
    import openvino as ov

    from edgebench.agent.job import latency_pass
    from edgebench.agent.protocol import LatencyProtocol
    from edgebench.runtime import create_backend

    app = shutil.which("benchmark_app")
    if app is None:
        raise SystemExit("benchmark_app is not on PATH (it comes with the openvino pip package)")
    t = args.threads
    backend = create_backend("openvino", device="CPU", performance_hint="LATENCY", inference_num_threads=t,
                             inference_precision="f32")
    backend.load(xml)
    infer = backend.bind(x)
    info = backend.info()
    proto = LatencyProtocol(warmup=100, min_runs=100, min_duration_s=args.seconds, max_runs=10**8)

    # info rows: the same settings in a bare in-process loop (a preset input tensor and request.infer()), on
    # the IR as exported (dynamic batch axis, as the agent runs it) and reshaped to a static batch of 1 (as
    # benchmark_app runs it: -b 1 reshapes the model before compiling)
    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": t, "INFERENCE_PRECISION_HINT": "f32"}
    requests = {}
    for kind in ("dynamic", "static"):
        m = core.read_model(str(xml))
        if kind == "static":
            m.reshape(list(x.shape))
        requests[kind] = core.compile_model(m, "CPU", config).create_infer_request()
        requests[kind].set_input_tensor(ov.Tensor(x, shared_memory=True))

    def bare(request) -> tuple[np.ndarray, np.ndarray]:
        for _ in range(100):
            request.infer()
        clock = time.perf_counter_ns
        wall: list[int] = []
        cxx: list[float] = []
        start = clock()
        deadline = start + int(args.seconds / 2 * 1e9)
        while True:
            t0 = clock()
            request.infer()
            t1 = clock()
            wall.append(t1 - t0)
            cxx.append(request.latency)  # ms, C++-side, as benchmark_app reads it
            if t1 >= deadline:
                break
        return np.asarray(wall, dtype=np.int64), np.asarray(cxx) * 1e6

    cfg = workdir / "benchmark_app_config.json"
    cfg.write_text(json.dumps({"CPU": {"INFERENCE_NUM_THREADS": str(t)}}))
    cmd = [app, "-m", str(xml), "-d", "CPU", "-hint", "latency", "-b", "1", "-infer_precision", "f32",
           "-load_config", str(cfg), "-t", str(args.seconds)]

    keys = ("eb", "eb_mean", "eb_wall", "app", "app_avg", "app_wall", "dynamic", "dynamic_cxx", "static", "static_cxx")
    res: dict[str, list[float]] = {k: [] for k in keys}
    app_props: dict[str, str] = {}
    app_mode = ""

    def agent_and_bare() -> None:
        samples, duration = latency_pass(infer, proto)
        res["eb_wall"].append(duration / len(samples) * 1e6)
        res["eb"].append(_us(samples))
        res["eb_mean"].append(_us(samples, np.mean))
        for kind, request in requests.items():
            wall, cxx = bare(request)
            res[kind].append(_us(wall))
            res[f"{kind}_cxx"].append(_us(cxx))

    def reference() -> None:
        nonlocal app_props, app_mode
        stats, app_props, app_mode = _benchmark_app(cmd)
        res["app"].append(stats["Median"])
        res["app_avg"].append(stats["Average"])
        res["app_wall"].append(stats["Duration"] * 1e3 / stats["Count"])  # ms / iterations

    meter = CpuMeter()
    _alternate(args.blocks, agent_and_bare, reference, meter)
    med = {k: statistics.median(v) for k, v in res.items()}
    app_p50 = med["app"]
    rows = [
        _row(f"openvino p50 vs benchmark_app median ({t} thr, f32)", med["eb"], app_p50, "≤ 1.10×",
             med["eb"] / app_p50 <= 1.10),
        _row("openvino mean vs benchmark_app average", med["eb_mean"], med["app_avg"], "—", None),
        _row("openvino wall time per inference (duration / count)", med["eb_wall"], med["app_wall"], "—", None),
        _row("  info: agent p50 vs bare request.infer() p50 (dynamic batch)", med["eb"], med["dynamic"], "—", None),
        _row("  info: bare infer(), dynamic batch, Python-timed p50 vs app", med["dynamic"], app_p50, "—", None),
        _row("  info: bare infer(), dynamic batch, C++ request.latency p50 vs app", med["dynamic_cxx"], app_p50,
             "—", None),
        _row("  info: bare infer(), static batch 1, Python-timed p50 vs app", med["static"], app_p50, "—", None),
        _row("  info: bare infer(), static batch 1, C++ request.latency p50 vs app", med["static_cxx"], app_p50,
             "—", None),
    ]
    ours = {k: info.get(k) for k in ("num_streams", "inference_num_threads", "precision", "performance_hint")}
    pin = backend._compiled.get_property("ENABLE_CPU_PINNING")  # diagnostics only
    notes = [
        f"openvino {ov.__version__}: {args.blocks} blocks of {args.seconds} s each side (bare loops "
        f"{args.seconds / 2:g} s each); block p50 edgebench {_rng(res['eb'])} µs, benchmark_app {_rng(res['app'])} "
        f"µs, bare dynamic {_rng(res['dynamic'])} µs, bare static {_rng(res['static'])} µs; paired block ratios "
        f"edgebench/benchmark_app {_pair_ratios(res['eb'], res['app'])}; {meter.summary()}",
        f"openvino settings: edgebench {ours}, ENABLE_CPU_PINNING {pin}, model input {backend.input_shape}; "
        f"benchmark_app ({app_mode} API) {app_props}",
        f"benchmark_app command: {' '.join(cmd)}  (config: {cfg.read_text()})",
    ]
    return meter.flag(rows), notes


def _export(model_name: str, parts: list[str], workdir: Path) -> None:
    """Build the untrained zoo model and write the artifacts the parts need (run in a child process, so the
    measuring process stays torch-free like the device agent)."""
    from edgebench.export.onnx import export_onnx
    from edgebench.export.openvino import export_openvino
    from edgebench.models import create_model

    shape = SHAPES[model_name]
    model = create_model(model_name, input_shape=shape, num_classes=10)
    export_onnx(model, shape, workdir / "model.onnx")  # the null backend loads it too (no card: no shape)
    if "openvino" in parts:
        export_openvino(model, shape, workdir / "model.xml")
    n_params = sum(p.numel() for p in model.parameters())
    (workdir / "meta.json").write_text(json.dumps({"n_params": n_params}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(PARTS), help="comma-separated subset of " + ",".join(PARTS))
    ap.add_argument("--model", default="liu2018_mnist", choices=sorted(SHAPES))
    ap.add_argument("--blocks", type=int, default=7)
    ap.add_argument("--runs", type=int, default=2000, help="timed runs per onnxruntime block")
    ap.add_argument("--null-runs", type=int, default=200_000, help="timed runs per null block")
    ap.add_argument("--seconds", type=int, default=3, help="duration of each openvino block, each side")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--export-to", help=argparse.SUPPRESS)  # internal: the child process that exports
    args = ap.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad:
        ap.error(f"--only: unknown part(s) {bad}; choose from {PARTS}")
    if args.export_to:
        _export(args.model, parts, Path(args.export_to))
        return

    shape = SHAPES[args.model]
    workdir = Path(tempfile.mkdtemp(prefix="bench_latency_"))
    subprocess.run([sys.executable, __file__, "--model", args.model, "--only", ",".join(parts),
                    "--export-to", str(workdir)], check=True)
    n_params = json.loads((workdir / "meta.json").read_text())["n_params"]
    onnx_path = workdir / "model.onnx"
    x = np.random.default_rng(0).random((1, *shape), dtype=np.float32)

    rows: list[list[str]] = []
    notes: list[str] = []
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    for part in PARTS:
        if part not in parts:
            continue
        if part == "null":
            r, n = bench_null(args, onnx_path, x)
        elif part == "onnxruntime":
            r, n = bench_onnxruntime(args, onnx_path, x)
        else:
            r, n = bench_openvino(args, workdir / "model.xml", x, workdir)
        rows += r
        notes += n
        gc.collect()  # the part's sessions and thread pools go before the next part
    load1 = os.getloadavg()
    shutil.rmtree(workdir, ignore_errors=True)

    print(f"## batch-1 latency, {args.model} ({'x'.join(map(str, shape))} input, {n_params / 1e6:.2f} M params, "
          f"untrained), {args.threads} threads, {args.blocks} blocks, {time.perf_counter() - t0:.0f} s, "
          f"nproc {os.cpu_count()}, loadavg(1 min) {load0[0]:.2f} -> {load1[0]:.2f}, "
          f"torch loaded in the measuring process: {'torch' in sys.modules}\n")
    head = ["measurement", "edgebench", "reference", "ratio", "goal", "verdict"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    for n in notes:
        print(f"- {n}")


if __name__ == "__main__":
    main()
