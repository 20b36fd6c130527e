"""A synthetic run in a results store: made-up but internally consistent numbers, for renderer tests and the
render benchmark; never mixed with real runs.

:func:`fill_synthetic` writes every table of a :class:`~edgebench.store.Store` the way
:class:`edgebench.runner.pipeline.Pipeline` does (the same record shapes, keys, source convention and
stage names), from numbers drawn with numpy's seeded generator only, so the same arguments always give
byte-identical store content (golden-file tests of the renderers rely on it). The plan is named
``synthetic`` and every path lives under ``/synthetic/``, so a synthetic run is recognisable anywhere.

What is consistent, as in a real run:

- every accuracy, ``asr`` and 95 % Wilson interval is computed from per-sample correctness masks, and those
  masks are what the ``samples`` rows of kind ``correct`` hold (``unpack_correct`` of an adversarial row's
  samples against its clean row's gives back its ``asr`` and ``robust_acc``);
- ``robust_delta`` / ``robust_delta_p``: McNemar against the base on the same samples
  (``pipeline._deltas_vs_base``); ``host_asr`` and ``deployment_gap`` from host masks a few flips away;
- latency fields are :func:`~edgebench.metrics.latency.latency_summary` of generated lognormal samples, the
  ``latency`` samples rows their :func:`~edgebench.metrics.samples.latency_histogram`;
- energy is :func:`~edgebench.metrics.energy.energy_summary` of generated windows (valid on the first target,
  absent on the second, invalid on the third: too few sensor samples per window);
- minimal ε (first attack, when ``eps_grid >= 2``) from the same hit masks via
  :func:`~edgebench.metrics.robustness.minimal_eps`;
- flags where the pipeline's rules put them: a gradient check per crafting unit (one of them masked), white-box
  below transfer (McNemar, p < 0.05) for the masked unit, energy-invalid per run on the third target,
  throttling for the one run whose environment snapshots show it
  (:func:`~edgebench.agent.envinfo.throttling_during`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from dataclasses import asdict
from statistics import NormalDist
from typing import Any

import numpy as np

from edgebench.metrics.energy import energy_fields
from edgebench.metrics.robustness import whitebox_below_transfer
from edgebench.store.sqlite import Store

BASE = "base"
PLAN_NAME = "synthetic"
VERSION = "0.0.0+synthetic"  # not the package's: the golden files must not change with a version bump
N_CLASSES = 10
INPUT_SHAPE = (1, 28, 28)
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot")
MASKING_SHARE = 0.05  # edgebench.attacks.checks.MASKING_SHARE (that module imports torch)
HIST_BINS = 41  # edgebench.compress.stats.HIST_BINS
TABLES = ("runs", "stages", "artifacts", "variants", "results", "environments", "min_eps", "flags", "samples")

# name, [(layer, weight shape, output positions)] of the zoo models (28x28 inputs)
ARCHS: dict[str, list[tuple[str, tuple[int, ...], int]]] = {
    "liu2018_mnist": [("features.0", (64, 1, 3, 3), 784), ("features.3", (128, 64, 3, 3), 196),
                      ("head.0", (512, 6272), 1), ("head.2", (10, 512), 1)],
    "lenet5": [("features.0", (6, 1, 5, 5), 784), ("features.3", (16, 6, 5, 5), 100), ("head.0", (120, 400), 1),
               ("head.2", (84, 120), 1), ("head.4", (10, 84), 1)],
    "song2020_mnist": [("features.0", (64, 1, 8, 8), 196), ("features.2", (128, 64, 6, 6), 25),
                       ("features.4", (128, 128, 5, 5), 1), ("head.0", (10, 128), 1)],
}
MODEL_NAMES = (("liu", "liu2018_mnist"), ("lenet", "lenet5"), ("song", "song2020_mnist"))

# registry name, norm, strength at the reference ε (share of clean-correct samples fooled)
ATTACKS = (("fgsm", "linf", 0.55), ("pgd", "linf", 0.9), ("bim", "linf", 0.88), ("mim", "linf", 0.9),
           ("apgd", "linf", 0.93), ("cw", "l2", 0.85), ("deepfool", "l2", 0.8), ("uap", "linf", 0.35),
           ("pgd-l2", "l2", 0.8), ("jsma", "l0", 0.75), ("gaussian-noise", "none", 0.04),
           ("uniform-noise", "none", 0.03))
EPS_RANGE = {"linf": (0.05, 0.3, 0.1), "l2": (0.5, 3.0, 1.0), "l0": (0.02, 0.1, 0.05), "none": (0.05, 0.3, 0.1)}

# family: (kind, method, values, name(value), params(value), severity(value))
FAMILIES: tuple[tuple[str, str, str, tuple[Any, ...]], ...] = (
    ("prune-l2", "compress", "filter_pruning", (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)),
    ("int8", "compress", "int8", ("performance", "mixed")),
    ("hashed", "compress", "hashed", (8, 16, 32, 64, 4, 2)),
    ("kbit", "compress", "kbit", (4, 3, 2, 5, 6, 8)),
    ("mag", "compress", "magnitude_pruning", (0.5, 0.7, 0.9, 0.3, 0.8)),
    ("inq", "compress", "inq", (5, 4, 3, 6)),
    ("dns", "compress", "dns", (0.8, 0.9, 0.95, 0.7)),
    ("gi", "defend", "gradient_inhibition", (0.1, 0.2, 0.05, 0.3)),
    ("mulaw", "defend", "mu_law", (255, 100, 50, 500)),
    ("adv", "defend", "adversarial_training", (0.1, 0.2, 0.05, 0.3)),
)

# target templates: name, backend speed (ms of liu2018_mnist on onnxruntime), energy mode, environment facts
TARGETS: tuple[dict[str, Any], ...] = (
    {"name": "local", "ms": 0.43, "energy": "valid", "sensor": "rapl", "rate_hz": 10.0, "idle_w": 3.1,
     "active_w": 11.5, "cpu_model": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", "cpu_count": 2,
     "os": "Linux-6.8.0-1019-aws-x86_64-with-glibc2.39", "machine": "x86_64", "board_model": None,
     "governor": "performance", "freq": (2900.0, 800.0, 3500.0, 3500.0), "hostname": "bench-host",
     "temps": {"x86_pkg_temp": 47.0, "acpitz": 40.0}, "trips": {"x86_pkg_temp": 100.0}, "python": "3.12.3",
     "memory_total_mb": 7930.4, "pi": False, "jetson": False},
    {"name": "raspberry-pi-4", "ms": 6.1, "energy": "absent", "sensor": "none", "cpu_model": "BCM2835",
     "cpu_count": 4, "os": "Linux-6.6.51+rpt-rpi-v8-aarch64-with-glibc2.36", "machine": "aarch64",
     "board_model": "Raspberry Pi 4 Model B Rev 1.4", "governor": "ondemand", "freq": (1800.0, 600.0, 1800.0, 1800.0),
     "hostname": "pi4", "temps": {"cpu-thermal": 52.6}, "trips": {"cpu-thermal": 80.0}, "python": "3.11.2",
     "memory_total_mb": 3791.0, "pi": True, "jetson": False},
    {"name": "jetson-orin-nano", "ms": 2.4, "energy": "invalid", "sensor": "jetson", "rate_hz": 0.4,
     "idle_w": 4.9, "active_w": 7.4, "cpu_model": "ARMv8 Processor rev 1 (v8l)", "cpu_count": 6,
     "os": "Linux-5.15.136-tegra-aarch64-with-glibc2.35", "machine": "aarch64",
     "board_model": "NVIDIA Jetson Orin Nano Developer Kit", "governor": "schedutil",
     "freq": (1510.0, 115.0, 1510.0, 1510.0), "hostname": "orin",
     "temps": {"cpu-thermal": 47.3, "gpu-thermal": 45.9, "soc0-thermal": 46.5, "tj-thermal": 48.1},
     "trips": {"cpu-thermal": 99.0, "gpu-thermal": 99.0, "soc0-thermal": 99.0, "tj-thermal": 99.0},
     "python": "3.10.12", "memory_total_mb": 7620.5, "pi": False, "jetson": True},
    {"name": "raspberry-pi-5", "ms": 2.0, "energy": "valid", "sensor": "pi5-pmic", "rate_hz": 5.0, "idle_w": 2.6,
     "active_w": 6.2, "cpu_model": "Raspberry Pi 5 Model B Rev 1.0", "cpu_count": 4,
     "os": "Linux-6.6.51+rpt-rpi-2712-aarch64-with-glibc2.36", "machine": "aarch64",
     "board_model": "Raspberry Pi 5 Model B Rev 1.0", "governor": "ondemand",
     "freq": (2400.0, 1500.0, 2400.0, 2400.0), "hostname": "pi5", "temps": {"cpu-thermal": 55.2},
     "trips": {"cpu-thermal": 80.0}, "python": "3.11.2", "memory_total_mb": 8052.3, "pi": True, "jetson": False},
)
BACKENDS = (("onnxruntime", "onnx", 1.0), ("openvino", "openvino", 1.12), ("null", "onnx", 0.002))
RUNTIME_VERSIONS = {"onnxruntime": "1.20.1", "openvino": "2024.6.0", "null": ""}

_NORMAL = NormalDist()


# ---------------------------------------------------------------------------------------------- helpers ---

def _key(*parts: Any) -> str:
    """A content-key-like hex id (24 digits, as :func:`edgebench.runner.cache.content_key`)."""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


def _rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent stream per entity, so (say) adding targets leaves every accuracy as it was."""
    return np.random.default_rng([seed, *keys])


def _unit_id(model: str, variant: str) -> str:
    return model if variant == BASE else f"{model}/{variant}"


def _fmt(v: Any) -> str:
    """A parameter value as it appears in a variant name (as ``edgebench.config._fmt``)."""
    return f"{v:g}" if isinstance(v, float) else str(v)


def _pack(mask: np.ndarray, set_id: str) -> dict[str, Any]:
    """:func:`edgebench.metrics.samples.pack_correct` (inlined: one call per result row)."""
    return {"n": int(mask.size), "k": int(mask.sum()), "bits": base64.b64encode(np.packbits(mask).tobytes()).decode(),
            "set_sha256": set_id}


def _ranks(x: np.ndarray) -> np.ndarray:
    """Uniform scores in (0, 1) with the order of ``x``."""
    r = np.empty(x.size)
    r[np.argsort(x, kind="stable")] = (np.arange(x.size) + 0.5) / x.size
    return r


def _p(mask: np.ndarray) -> dict[str, Any]:
    from edgebench.metrics.robustness import proportion

    return proportion(mask)


# ---------------------------------------------------------------------------------------------- the plan ---

def _variant_list(count: int) -> list[dict[str, Any]]:
    """``count`` compressed/defended variants: family by family (prune-l2, int8, hashed, kbit, ...), then the
    next value of each; names as the plan parser makes them (``prune-l2-10``, ``int8``, ``hashed-8``)."""
    out = []
    for j in range(count):
        fam, kind, method, values = FAMILIES[j % len(FAMILIES)]
        level = j // len(FAMILIES)
        v = values[level % len(values)]
        rep = level // len(values)
        if fam == "prune-l2":
            name, params, sev = f"prune-l2-{round(v * 100)}", {"criterion": "L2", "ratio": v, "steps": 2,
                                                               "epochs_per_step": 1}, v
        elif fam == "int8":
            name, params, sev = ("int8" if v == "performance" else f"int8-{v}"), {"calibration_size": 300,
                                                                                  "preset": v}, 0.05
        elif fam == "hashed":
            name, params, sev = f"hashed-{v}", {"rate": f"1/{v}", "init": "distill"}, math.log2(v) / 7
        elif fam == "kbit":
            name, params, sev = f"kbit-{v}", {"bits": v, "grid": "zero", "granularity": "channel"}, (8 - v) / 6
        elif fam == "mag":
            name, params, sev = f"mag-{round(v * 100)}", {"ratio": v, "scope": "local"}, v ** 3
        elif fam == "inq":
            name, params, sev = f"inq-{v}", {"bits": v}, (7 - v) / 5
        elif fam == "dns":
            name, params, sev = f"dns-{round(v * 100)}", {"sparsity": v}, v ** 4
        elif fam == "gi":
            name, params, sev = f"gi-{_fmt(v)}", {"tau": v}, v
        elif fam == "mulaw":
            name, params, sev = f"mulaw-{v}", {"mu": float(v)}, 0.1
        else:
            name, params, sev = f"adv-pgd-{_fmt(v)}", {"attack": "pgd", "eps": v, "steps": 7, "ratio": 0.5}, 0.4
        if rep:
            name += f"-r{rep + 1}"
        out.append({"variant": name, "family": fam, "kind": kind, "method": method, "params": params,
                    "value": v, "severity": float(min(sev, 1.0))})
    return out


def _plan(models: list[tuple[str, str]], variants: list[dict[str, Any]], attacks: list[dict[str, Any]],
          targets: list[dict[str, Any]], backends: list[str], n: int, seed: int) -> Any:
    from edgebench.config import AttackSpec, CompressSpec, DataSpec, ModelSpec, Plan, TargetSpec

    return Plan(
        name=PLAN_NAME, source="<synthetic>", seed=seed,
        data=DataSpec(dataset="fashion-mnist", n_test=n, seed=seed),
        models=tuple(ModelSpec(name=m, arch=arch, train={"epochs": 8, "batch_size": 128, "lr": 1e-3,
                                                          "weight_decay": 0.0, "optimizer": "adam"})
                     for m, arch in models),
        compress=tuple(CompressSpec(method=v["method"], variant=v["variant"], model=m, params=v["params"],
                                    kind=v["kind"]) for m, _ in models for v in variants),
        attacks=tuple(AttackSpec(name=a["name"], label=a["label"], eps=tuple(a["eps"]), n=n,
                                 threat=("white-box", "transfer") if i == 0 else ("white-box",),
                                 min_eps=i == 0 and len(a["eps"]) > 1) for i, a in enumerate(attacks)),
        targets=tuple(TargetSpec(target=t["name"], backends=tuple(backends)) for t in targets),
    )


# ------------------------------------------------------------------------------------------------ stats ---

def _cdf(x: np.ndarray, sigma: float, shift: float = 0.0) -> np.ndarray:
    """CDF of N(0, σ) whose two halves are pushed ``shift`` away from zero (gradient inhibition)."""
    z = np.where(x >= 0, np.maximum(x - shift, 0.0), np.minimum(x + shift, 0.0)) / sigma
    return np.array([_NORMAL.cdf(float(v)) for v in z])


def _layer_hist(rng: np.random.Generator, size: int, sigma: float, *, lim_factor: float = 4.5, zeros: float = 0.0,
                levels: int | None = None, shift: float = 0.0, distinct: int | None = None) -> dict[str, Any]:
    """A weight histogram of the shape :func:`edgebench.compress.stats.weight_histograms` stores, from a
    normal law (pruned: the centre ``zeros`` share set to 0; quantized: ``levels`` values), and the summary
    numbers computed from it."""
    lim = sigma * lim_factor * float(rng.uniform(0.9, 1.1)) + shift
    lo, hi = -lim, lim * float(rng.uniform(0.85, 1.0))  # the histogram's range is ±max|W|
    if rng.random() < 0.5:
        lo, hi = -hi, -lo
    edges = np.linspace(-lim, lim, HIST_BINS + 1)
    nz = size - int(round(zeros * size))
    t = sigma * _NORMAL.inv_cdf(0.5 + zeros / 2) if zeros > 0 else 0.0  # |w| below t was pruned
    if levels is not None and levels <= HIST_BINS:
        vals = np.linspace(lo, hi, levels)
        cells = np.concatenate([[lo], (vals[1:] + vals[:-1]) / 2, [hi]])
        p = np.diff(_cdf(cells, sigma, shift))
        counts_l = rng.multinomial(nz, p / p.sum())
        counts = np.bincount(np.clip(np.searchsorted(edges, vals, "right") - 1, 0, HIST_BINS - 1),
                             weights=counts_l, minlength=HIST_BINS).astype(np.int64)
    else:
        e = np.clip(edges, lo, hi)
        c = _cdf(e, sigma, shift)
        if t > 0:
            ct = _cdf(np.clip(e, -t, t), sigma, shift)
            c = c - ct  # the mass inside (-t, t) is gone
        p = np.clip(np.diff(c), 0.0, None)
        counts = rng.multinomial(nz, p / p.sum())
    counts[HIST_BINS // 2] += size - nz
    centres = (edges[1:] + edges[:-1]) / 2
    mean = float((centres * counts).sum() / size)
    std = float(math.sqrt(max(((centres - mean) ** 2 * counts).sum() / size, 0.0)))
    cum = np.concatenate([[0], np.cumsum(counts)]) / size
    p01, p99 = (float(np.clip(np.interp(q, cum, edges), lo, hi)) for q in (0.01, 0.99))
    if distinct is None:
        distinct = min(levels, size) if levels is not None else nz + (1 if nz < size else 0)
    return {"min": lo, "max": hi, "mean": mean, "std": std, "p01": p01, "p99": p99, "zeros": (size - nz) / size,
            "distinct": int(distinct), "edges": [float(x) for x in edges], "counts": [int(x) for x in counts]}


def _variant_stats(rng: np.random.Generator, arch: str, v: dict[str, Any] | None) -> dict[str, Any]:
    """``variants.stats`` of a unit as :func:`edgebench.compress.stats.model_stats` computes them (``v`` None:
    the base), with the per-format artifact sizes the pipeline adds."""
    layers = ARCHS[arch]
    fam, val = (v["family"], v["value"]) if v else ("base", None)
    keep = 1.0 - val if fam == "prune-l2" else 1.0
    shapes, convs = [], [i for i, (_, s, _) in enumerate(layers) if len(s) == 4]
    last_conv = convs[-1]
    for i, (name, shape, pos) in enumerate(layers):
        s = list(shape)
        if keep < 1.0:
            if i in convs:
                s[0] = max(1, round(s[0] * keep))
                if i > 0:
                    s[1] = max(1, round(s[1] * keep))
            elif i == last_conv + 1:
                s[1] = max(1, round(s[1] * keep))
        shapes.append((name, tuple(s), pos))
    weights, delta = {}, {}
    params = nonzeros = macs = virtual = 0
    deflate = 0.0
    for (name, shape, pos), (_, shape0, _) in zip(shapes, layers):
        size = int(np.prod(shape))
        fan_in = int(np.prod(shape[1:]))
        sigma = math.sqrt(2.0 / fan_in)
        macs += pos * size
        virtual += size
        kw: dict[str, Any] = {}
        stored, zeros, ratio = size, 0.0, 0.93
        if fam == "int8":
            kw, ratio = {"levels": 255}, 0.55
        elif fam in ("kbit", "inq"):
            bits = int(val)
            kw = {"levels": 2 ** bits - 1 if fam == "kbit" else 2 ** (bits - 1) + 1}
            ratio = (bits + 1) / 32 + 0.04
        elif fam == "hashed":
            stored = math.ceil(size / val)
            kw, ratio = {"lim_factor": 6.5, "distinct": stored}, math.log2(max(stored, 2)) / 32 + 0.08
        elif fam in ("mag", "dns"):
            zeros = float(val)
            kw, ratio = {"zeros": zeros}, (1 - zeros) * 0.93 + zeros * 0.02
        elif fam == "gi":
            kw = {"shift": float(val) * sigma * 3}
        w = _layer_hist(rng, size, sigma, **kw)
        weights[name] = w
        params += stored + shape[0]
        nonzeros += int(round(stored * (1 - w["zeros"]))) + shape[0]
        deflate += size * 4 * ratio
        if v is not None:
            if shape != shape0:
                delta[name] = None
                continue
            # typical size of the weight change, times (√rows + √cols): the spectral norm of such a matrix
            if fam in ("int8", "kbit", "inq"):
                err = 2 * w["max"] / (kw["levels"] - 1) / math.sqrt(12)
            elif fam in ("mag", "dns"):
                err = 0.35 * sigma * float(val)
            elif fam == "gi":
                err = float(val) * sigma * 3
            else:
                err = {"hashed": 0.9, "mulaw": 0.08, "adv": 0.5}.get(fam, 0.05) * sigma
            scale = math.sqrt(shape[0]) + math.sqrt(fan_in)
            delta[name] = float(err * scale * rng.uniform(0.9, 1.1))
    stats: dict[str, Any] = {"params": params, "nonzeros": nonzeros, "macs": macs, "weight_bytes": virtual * 4,
                             "weight_deflate_bytes": int(deflate), "weights": weights}
    if v is not None:
        stats["delta_w_spectral"] = delta
    return stats


def _variant_info(rng: np.random.Generator, v: dict[str, Any] | None, acc: float) -> dict[str, Any]:
    """``variants.info``: the training history of a base; the method's facts, seconds and host accuracy of
    a variant (as ``Pipeline._compress`` stores them)."""
    if v is None:
        return {"train": [{"epoch": 8, "loss": float(round(rng.uniform(0.2, 0.3), 6)),
                           "train_acc": float(round(rng.uniform(0.9, 0.93), 6))}]}
    fam, val = v["family"], v["value"]
    x = val if isinstance(val, (int, float)) else 1  # the numeric value (int8's is a preset name)
    facts: dict[str, Any] = {
        "prune-l2": {"criterion": "L2", "ratio": val, "steps": 2, "batchnorm_recalibrated": False,
                     "engine": "torch-pruning 1.5.1"},
        "int8": {"grid": f"int8: symmetric per-channel weights, per-tensor activations (NNCF preset {val!r})",
                 "calibration_size": 300, "quantizers": 8, "engine": "nncf 2.14.0"},
        "hashed": {"rate": 1 / x, "rate_fraction": f"1/{val}", "init": "distill", "epochs": 8, "lr": 1e-3,
                   "temperature": 4.0, "alpha": 0.9},
        "kbit": {"grid": f"symmetric uniform, {2 ** int(x) - 1} levels with a zero level, per channel, scale by "
                         "squared-error clipping search", "bits": val, "levels": 2 ** int(x) - 1},
        "mag": {"scope": "local", "ratio": val, "engine": "nncf 2.14.0 MAGNITUDE"},
        "inq": {"bits": val, "schedule": [0.5, 0.75, 0.875, 1.0]},
        "dns": {"sparsity": val, "achieved_sparsity": float(x) - 0.003},
        "gi": {"tau": val, "layers": None},
        "mulaw": {"mu": float(x), "normalize": "none"},
        "adv": {"attack": "pgd", "eps": val, "steps": 7, "ratio": 0.5, "epochs": 5},
    }[fam]
    history = [] if fam in ("int8", "kbit", "gi", "mulaw") else \
        [{"epoch": e + 1, "loss": float(round(0.4 / (e + 1), 6)), "train_acc": float(round(acc - 0.01 / (e + 1), 6))}
         for e in range(2)]
    return {**facts, "seconds": float(round(rng.uniform(1.0, 90.0), 3)), "host_clean_acc": acc, "history": history}


# ------------------------------------------------------------------------------------------- environment ---

def _snapshot(t: dict[str, Any], rng: np.random.Generator, *, hot: bool = False) -> dict[str, Any]:
    """One :func:`edgebench.agent.envinfo.environment` snapshot of target template ``t`` (``hot``: after a run
    that throttled: a zone at its trip point, the Pi firmware reporting the frequency cap)."""
    cur, fmin, fmax, hw = t["freq"]
    per_cpu = {f"cpu{i}": {"cur": cur, "min": fmin, "max": fmax, "hw_max": hw} for i in range(t["cpu_count"])}
    temps = {z: float(round(c + rng.uniform(-1.0, 2.0), 1)) for z, c in t["temps"].items()}
    throttled = {"raw": "0x0", "now": [], "since_boot": []} if t["pi"] else None
    if hot:
        zone = next(iter(t["trips"]))
        temps[zone] = float(round(t["trips"][zone] + 1.4, 1))
        if t["pi"]:
            throttled = {"raw": "0x20002", "now": ["arm-frequency-capped"], "since_boot": ["arm-frequency-capped"]}
        else:
            per_cpu = {k: {**c, "max": round(fmax * 0.6, 1)} for k, c in per_cpu.items()}
    return {
        "hostname": t["hostname"], "os": t["os"], "machine": t["machine"], "board_model": t["board_model"],
        "cpu_model": t["cpu_model"], "cpu_count": t["cpu_count"], "governor": t["governor"],
        "governors": [t["governor"]], "cpu_freq_mhz": per_cpu["cpu0"]["cur"], "cpu_freqs_mhz": per_cpu,
        "cpu_freq_summary_mhz": {k: {"min": min(vals), "max": max(vals), "mean": sum(vals) / len(vals)}
                                 for k in ("cur", "max", "min", "hw_max")
                                 for vals in [[c[k] for c in per_cpu.values()]]},
        "temperatures_c": temps, "thermal_trip_c": dict(t["trips"]),
        "loadavg": [float(round(x, 2)) for x in rng.uniform(0.05, 1.2, 3)],
        "python": t["python"], "numpy": "2.1.3",
        "runtimes": {"onnxruntime": RUNTIME_VERSIONS["onnxruntime"], "openvino": RUNTIME_VERSIONS["openvino"],
                     "numpy": "2.1.3"},
        "memory_total_mb": t["memory_total_mb"], "memory_available_mb": float(round(t["memory_total_mb"] * 0.7, 1)),
        "throttled": throttled,
        "jetson_power_mode": {"name": "15W", "id": 0} if t["jetson"] else None,
        "jetson_release": "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64"
        if t["jetson"] else None,
    }


def _sensor(t: dict[str, Any]) -> dict[str, Any]:
    """The power sensor's ``describe()``."""
    if t["sensor"] == "rapl":
        return {"name": "rapl", "kind": "energy", "unit": "J",
                "source": "Linux powercap RAPL energy_uj (µJ), unwrapped with max_energy_range_uj",
                "zones": [{"zone": "intel-rapl:0", "name": "package-0", "path": "/sys/class/powercap/intel-rapl:0",
                           "max_energy_range_uj": 262143328850}],
                "summed": ["intel-rapl:0"],
                "covers": "CPU package(s) only (cores, caches, on-die graphics); not the rest of the board, not DRAM"}
    if t["sensor"] == "jetson":
        return {"name": "jetson", "kind": "power", "unit": "W", "rail": "VDD_IN", "summed": ["VDD_IN"],
                "candidates": ["VDD_IN"], "available_rails": ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"],
                "covers": "the module's input rail (VDD_IN): the whole module, not the carrier board"}
    return {"name": "pi5-pmic", "kind": "power", "unit": "W",
            "source": "vcgencmd pmic_read_adc: sum of X_A (A) x X_V (V) per rail",
            "summed": ["VDD_CORE", "DDR_VDD2", "3V3_SYS", "1V8_SYS"], "wall_power": False,
            "covers": ("the Raspberry Pi 5 PMIC's regulated rails only, not the wall power: the 5 V USB-C input "
                       "path, the regulators' conversion losses and USB/HAT peripherals are not included")}


def _energy(t: dict[str, Any], rng: np.random.Generator, mean_ms: float, load: float, job: str,
            measure: Any) -> dict[str, Any]:
    """The agent's energy record: ``{"sensor", "absent"}`` without a sensor, else
    :func:`edgebench.metrics.energy.energy_summary` of generated windows (``invalid``: a sensor read too
    rarely for the window, as an INA3221 polled at 0.4 Hz)."""
    from edgebench.metrics.energy import energy_summary

    if t["energy"] == "absent":
        return {"sensor": "none", "absent": "no power sensor configured for this target", "job": job}
    windows = []
    t0 = 2.0 / t["rate_hz"] + measure.energy_idle_s
    for _ in range(measure.energy_windows):
        duration = float(measure.energy_min_window_s + rng.uniform(0.0, 0.01) + mean_ms / 1e3)
        inferences = int(duration / (mean_ms / 1e3))
        power = t["idle_w"] + (t["active_w"] - t["idle_w"]) * load * float(rng.uniform(0.97, 1.03))
        windows.append({"t0": t0, "t1": t0 + duration, "epoch_t0": 1.7e9 + t0, "epoch_t1": 1.7e9 + t0 + duration,
                        "inferences": inferences, "joules": power * duration,
                        "samples": int(duration * t["rate_hz"])})
        t0 += duration + 0.001
    idle = t["idle_w"] * float(rng.uniform(0.98, 1.02))
    out = energy_summary(windows, idle_power_w=idle, min_window_s=measure.energy_min_window_s,
                         min_samples=measure.energy_min_samples, sensor=_sensor(t))
    return {**out, "job": job}


def _backend_info(backend: str, fmt: str, t: dict[str, Any]) -> dict[str, Any]:
    if backend == "onnxruntime":
        info: dict[str, Any] = {
            "backend": "onnxruntime", "runtime_version": RUNTIME_VERSIONS["onnxruntime"],
            "providers": ["CPUExecutionProvider"], "requested_providers": ["CPUExecutionProvider"],
            "provider_options": [{}], "intra_op_num_threads": t["cpu_count"], "inter_op_num_threads": 1,
            "graph_optimization_level": "ORT_ENABLE_ALL", "precision": "f32"}
    elif backend == "openvino":
        info = {"backend": "openvino", "runtime_version": RUNTIME_VERSIONS["openvino"], "device": "CPU",
                "device_name": t["cpu_model"], "execution_devices": ["CPU"], "performance_hint": "LATENCY",
                "num_streams": 1, "inference_num_threads": t["cpu_count"],
                "requested": {"num_streams": None, "inference_num_threads": None, "inference_precision": "f32"},
                "latency_shape": [1, *INPUT_SHAPE], "precision": "f32"}
    else:
        info = {"backend": "null", "runtime_version": "", "precision": "n/a"}
    return {**info, "format": fmt}


def _abs_grad_hist(rng: np.random.Generator, n: int, zeros: int, scale: float) -> dict[str, Any]:
    """``abs_grad_hist`` of :func:`edgebench.attacks.checks.gradient_health`: per-sample mean |∂J/∂x| on 40
    log-spaced bins, exact zeros counted apart."""
    pos = scale * rng.lognormal(0.0, 1.1, n - zeros)
    median_l1 = float(np.median(np.concatenate([np.zeros(zeros), pos])) * int(np.prod(INPUT_SHAPE)))
    if pos.size == 0:
        return {"edges": [], "counts": [], "zeros": zeros, "_median_l1": median_l1}
    lo, hi = float(pos.min()), float(pos.max())
    edges = np.geomspace(lo, hi * 1.000001 if hi > lo else lo * 10, 41)
    counts, _ = np.histogram(pos, bins=edges)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts], "zeros": zeros,
            "_median_l1": median_l1}


# ---------------------------------------------------------------------------------------------- filling ---

def fill_synthetic(store: Store, run_id: str, *, models: int = 1, variants: int = 5, attacks: int = 3,
                   eps_grid: int = 1, targets: int = 2, backends: int = 1, n: int = 500, seed: int = 0,
                   created: float = 1_700_000_000.0) -> None:
    """Write a complete synthetic run ``run_id`` into ``store``: made-up but internally consistent numbers,
    for renderer tests and the render benchmark; never mixed with real runs (plan ``synthetic``, version
    ``0.0.0+synthetic``, paths under ``/synthetic/``). Whatever ``store`` held under ``run_id`` is replaced.

    Sizes: ``models`` torch models (liu2018_mnist, lenet5, song2020_mnist, ...), each with its base and
    ``variants - 1`` compressed or defended variants (``prune-l2-10``, ``int8``, ``hashed-8``, ``kbit-4``,
    ``mag-50``, ``inq-5``, ``dns-80``, ``gi-0.1``, ``mulaw-255``, ``adv-pgd-0.1``, then the next value of each
    family); ``attacks`` registry attacks (fgsm, pgd, bim, mim, apgd, cw, deepfool, uap, pgd-l2, jsma, ...)
    with ``eps_grid`` ε each, white-box on every unit, the first also transferred from the base to every
    variant (and with per-sample minimal ε when ``eps_grid >= 2``); ``targets`` targets (local,
    raspberry-pi-4, jetson-orin-nano, raspberry-pi-5, ...) with ``backends`` backends each (onnxruntime,
    openvino, null); ``n`` test samples. Rows written (U = models × variants, P = targets × backends,
    A = attacks, E = eps_grid; transfer and min-ε parts only when A ≥ 1):

    - results: U·P clean + U·P·A·E white-box + models·(variants − 1)·P·E transfer; samples: one ``correct``
      row per result row, one ``latency`` row per clean row;
    - variants U, artifacts 2·U (onnx, openvino: the pipeline's format names; per model one failed parity
      check, the int8 variant's IR, when variants ≥ 3), environments U·P, stages 2 + U + U·A + U·P;
    - min_eps (U + models·(variants − 1))·P when E ≥ 2; flags: U gradient checks (per model one
      ``gradient-masking`` when variants ≥ 2), energy-invalid per unit and backend on the third target, one
      throttling, and white-box-below-transfer wherever McNemar finds it (the masked unit's first attack, on
      every target, backend and ε).

    Deterministic: numpy generators seeded from ``seed`` and each entity's indices, no clock; the same
    arguments give byte-identical table contents.
    """
    for name, value, lo in (("models", models, 1), ("variants", variants, 1), ("attacks", attacks, 0),
                            ("eps_grid", eps_grid, 1), ("targets", targets, 1), ("backends", backends, 1),
                            ("n", n, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ValueError(f"fill_synthetic: {name} must be an integer >= {lo}, got {value!r}")
    if backends > len(BACKENDS):
        raise ValueError(f"fill_synthetic: backends must be <= {len(BACKENDS)} ({[b for b, _, _ in BACKENDS]})")
    _Filler(store, run_id, models=models, variants=variants, attacks=attacks, eps_grid=eps_grid, targets=targets,
            backends=backends, n=n, seed=seed, created=created).fill()


class _Filler:
    """The state of one :func:`fill_synthetic` call (see there)."""

    def __init__(self, store: Store, run_id: str, *, models: int, variants: int, attacks: int, eps_grid: int,
                 targets: int, backends: int, n: int, seed: int, created: float) -> None:
        self.store, self.run_id, self.n, self.seed, self.created = store, run_id, n, seed, created
        self.models = [(MODEL_NAMES[i % 3][0] + (f"{i // 3 + 1}" if i >= 3 else ""), MODEL_NAMES[i % 3][1])
                       for i in range(models)]
        self.vlist = _variant_list(variants - 1)
        self.attacks = []
        for i in range(attacks):
            name, norm, power = ATTACKS[i % len(ATTACKS)]
            lo, hi, ref = EPS_RANGE[norm]
            eps = [ref] if eps_grid == 1 else [float(round(e, 6)) for e in np.linspace(lo, hi, eps_grid)]
            label = name if i < len(ATTACKS) else f"{name}-{i // len(ATTACKS) + 1}"
            self.attacks.append({"name": name, "label": label, "norm": norm, "power": power, "ref": ref, "eps": eps})
        self.targets = []
        for i in range(targets):
            t = dict(TARGETS[i % len(TARGETS)])
            if i >= len(TARGETS):
                t["name"] = f"{t['name']}-{i // len(TARGETS) + 1}"
            self.targets.append(t)
        self.backends = list(BACKENDS[:backends])
        self.plan = _plan(self.models, self.vlist, self.attacks, self.targets, [b for b, _, _ in self.backends], n,
                          seed)
        # which variant masks its gradients (gradient inhibition, else a low-bit quantizer, else the last one)
        fams = [v["family"] for v in self.vlist]
        pick = next((fams.index(f) for f in ("gi", "kbit") if f in fams), len(self.vlist) - 1)
        self.masked = self.vlist[pick]["variant"] if self.vlist else None
        self.parity_fail = next((v["variant"] for v in self.vlist if v["family"] == "int8"), None) \
            if variants >= 3 else None
        # the one run that throttles: the last unit on the second target (the Pi 4), first backend
        last = self._units()[-1]
        self.throttled = (1 if targets >= 2 else 0, 0, _unit_id(last[1], last[2]))
        self.clock = created

    # -------------------------------------------------------------------------------------------------
    def _units(self) -> list[tuple[int, str, str, dict[str, Any] | None]]:
        """(model index, model, variant, variant spec) per unit, bases first as the pipeline orders them."""
        out: list[tuple[int, str, str, dict[str, Any] | None]] = [(mi, m, BASE, None)
                                                                  for mi, (m, _) in enumerate(self.models)]
        return out + [(mi, m, v["variant"], v) for mi, (m, _) in enumerate(self.models) for v in self.vlist]

    def _tick(self, seconds: float) -> tuple[float, float]:
        start = self.clock
        self.clock = round(self.clock + seconds, 6)
        return start, self.clock

    def fill(self) -> None:
        st, rid = self.store, self.run_id
        with st.conn:
            for table in TABLES:
                st.conn.execute(f"DELETE FROM {table} WHERE run_id=?", (rid,))
        stages: list[tuple[Any, ...]] = []

        def stage(name: str, seconds: float, note: str, key: str = "") -> None:
            t0, t1 = self._tick(seconds)
            stages.append((rid, name, key, "done", t0, t1, json.dumps({"note": note, "seconds": seconds})))

        n = self.n
        stage("data", 0.8, f"fashion-mnist: {n} test samples")
        units = self._units()
        unit_data: dict[tuple[str, str], dict[str, Any]] = {}
        for ui, (mi, model, variant, spec) in enumerate(units):
            unit_data[(model, variant)] = self._unit(ui, mi, model, variant, spec)
            d = unit_data[(model, variant)]
            stage(f"model/{model}" if variant == BASE else f"compress/{model}/{variant}",
                  float(round(d["seconds"], 3)), f"host clean acc {d['acc']:.4f}")
        stage("testset/clean", 0.2, "")
        adv = self._adversarial(units, unit_data)
        for _mi, model, variant, _ in units:
            uid = _unit_id(model, variant)
            for a in self.attacks:
                rates = ", ".join(f"ε={e:g}: {adv[(model, variant, a['label'], e, uid)]['host']:.3f}" for e in a["eps"])
                stage(f"craft/{uid}/{a['label']}", 3.5, f"host success {rates} in 3.5 s")
        records, samples, envs, min_eps, flags = self._device(units, unit_data, adv, stage)
        flags += self._gradient_flags(units)
        self._deltas(records, adv)

        plan = self.plan.as_dict()
        with st.conn:
            st.conn.executemany("INSERT OR REPLACE INTO stages VALUES (?, ?, ?, ?, ?, ?, ?)", stages)
            st.conn.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (rid, PLAN_NAME, self.plan.digest(), json.dumps(plan, default=str), VERSION,
                             self.created, round(self.clock + 1.0, 6), "done"))
        for (model, variant), d in unit_data.items():
            st.put_variant(rid, model=model, variant=variant, method=d["method"], params=d["params"], info=d["info"],
                           stats=d["stats"])
            for art in d["artifacts"]:
                st.put_artifact(rid, **art)
        for e in envs:
            st.put_environment(rid, **e)
        st.put_results(rid, records)
        st.put_samples(rid, samples)
        st.put_min_eps(rid, min_eps)
        st.put_flags(rid, flags)

    # ------------------------------------------------------------------------------------------ units ---
    def _unit(self, ui: int, mi: int, model: str, variant: str, spec: dict[str, Any] | None) -> dict[str, Any]:
        """Clean correctness, robustness factors, stats, info and artifacts of one unit."""
        from edgebench.export.card import ModelCard

        n, arch = self.n, self.models[mi][1]
        rng = _rng(self.seed, 1, mi, ui)
        z = _rng(self.seed, 0, mi).standard_normal(n)  # the model's per-sample difficulty, shared by its units
        acc0 = 0.905 + 0.01 * (mi % 3)
        fam = spec["family"] if spec else BASE
        sev = spec["severity"] if spec else 0.0
        drop = {BASE: 0.0, "adv": 0.04, "gi": 0.01, "mulaw": 0.006}.get(fam, 0.004 + 0.07 * sev ** 2)
        acc = max(0.15, acc0 - drop + float(rng.normal(0, 0.003)))
        score = z + float(0.35 if spec else 0.3) * rng.standard_normal(n)
        ok = _ranks(score) < round(acc * n) / n
        # white-box strength multiplier (< 1: harder to attack), transfer multiplier, host/device disagreement
        masked = variant == self.masked
        wb = 0.3 if masked else {"adv": 0.45, "mulaw": 0.75, "hashed": 0.9, "prune-l2": 1.0 - 0.1 * sev}.get(fam, 1.0)
        tr = 0.85 if masked else {"adv": 0.3}.get(fam, 0.6)
        gap = {"int8": 0.06, BASE: 0.008}.get(fam, 0.015)
        stats = _variant_stats(rng, arch, spec)
        host_acc = float(ok.mean())
        info = _variant_info(rng, spec, host_acc)
        uid = _unit_id(model, variant)
        key = _key("variant", self.seed, uid)
        precision = "int8" if fam == "int8" else "f32"
        arts = []
        for fmt, file in (("onnx", "model.onnx"), ("openvino", "model-ov.xml")):
            dense = stats["weight_bytes"] // (4 if fam == "int8" else 1)
            size = dense + stats["params"] // 50 + (2_113 if fmt == "onnx" else 11_407)
            dfl = int(stats["weight_deflate_bytes"] * (0.26 if fam == "int8" else 1.0)) + (812 if fmt == "onnx"
                                                                                           else 1_644)
            fail = fmt == "openvino" and variant == self.parity_fail
            scale = float(round(rng.uniform(9.0, 16.0), 4))
            atol = 0.25 if fam == "int8" else 1e-4
            parity = {"backend": "onnxruntime" if fmt == "onnx" else "openvino", "n": min(256, n),
                      "max_abs_diff": float(round(atol * scale * 1.37, 6)) if fail
                      else float(round(atol * scale * rng.uniform(0.01, 0.3), 9)),
                      "top1_agreement": 0.9453125 if fail else 1.0, "atol": atol, "scale": scale, "ok": not fail}
            if fmt == "openvino":
                parity["precision"] = "f32"
            sha = hashlib.sha256(f"{self.seed}/{uid}/{fmt}".encode()).hexdigest()
            path = f"/synthetic/cache/export/{_key('export', self.seed, uid)}/{file}"
            card = ModelCard(
                name=uid, format=fmt, input_shape=INPUT_SHAPE, num_classes=N_CLASSES, classes=CLASSES, sha256=sha,
                size_bytes=size, deflate_bytes=dfl,
                provenance={"arch": arch, "factory": None, "model": model, "variant": variant, "precision": precision,
                            "model_key": key, "dataset": "fashion-mnist", "data_fingerprint": _key("data", self.seed),
                            "plan": PLAN_NAME, "edgebench": VERSION, "torch": "2.5.1+cpu",
                            **({"method": spec["method"], "params": spec["params"], "kind": spec["kind"], "on": BASE}
                               if spec else {})},
                parity=parity)
            arts.append({"model": model, "variant": variant, "format": fmt, "path": path, "sha256": sha,
                         "size_bytes": size, "parity": parity, "card": json.loads(json.dumps(asdict(card)))})
            stats.setdefault("artifacts", {})[fmt] = {"size_bytes": size, "deflate_bytes": dfl, "precision": precision}
        return {"acc": host_acc, "ok": ok, "wb": wb, "tr": tr, "gap": gap, "stats": stats, "info": info,
                "method": spec["method"] if spec else "none", "params": spec["params"] if spec else {},
                "artifacts": arts, "family": fam, "seconds": float(rng.uniform(5.0, 120.0)), "mi": mi,
                "speed": 0.55 if fam == "int8" else 1.0}

    def _adversarial(self, units: list[tuple[int, str, str, dict[str, Any] | None]],
                     unit_data: dict[tuple[str, str], dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
        """Per (model, variant, attack, ε, source): the device hit and correctness masks, the host's, and the
        perturbation norms; the same on every target and backend (the same artifact, the same examples)."""
        n = self.n
        out: dict[tuple[Any, ...], dict[str, Any]] = {}
        rho_base: dict[tuple[int, int], np.ndarray] = {}
        for ui, (mi, model, variant, _) in enumerate(units):
            d = unit_data[(model, variant)]
            ok = d["ok"]
            for ai, a in enumerate(self.attacks):
                shared = _rng(self.seed, 2, mi, ai).standard_normal(n)
                rng = _rng(self.seed, 3, ui, ai)
                rho = _ranks(0.8 * shared + 0.6 * rng.standard_normal(n))
                if variant == BASE:
                    rho_base[(mi, ai)] = rho
                sources = [(_unit_id(model, variant), d["wb"], rho)]
                if ai == 0 and variant != BASE:  # transfer from the base: its examples, its resistance mostly
                    mix = _ranks(0.85 * _ranks(rho_base[(mi, ai)]) + 0.15 * rho)
                    sources.append((model, d["tr"], mix))
                for src, mult, r in sources:
                    flips = rng.random(n) < d["gap"]
                    for e in a["eps"]:
                        s = 1.0 - (1.0 - a["power"]) ** (e / a["ref"])
                        s = 1.0 - (1.0 - s) ** mult
                        hit = ok & (r < s)
                        host_hit = hit ^ (ok & flips)
                        linf, l2 = self._norms(a, e, rng)
                        out[(model, variant, a["label"], e, src)] = {
                            "hit": hit, "correct": ok & ~hit, "host_hit": host_hit, "host": float(host_hit.mean()),
                            "mean_linf": linf, "mean_l2": l2,
                            "set": f"{_key('adv', self.seed, src, a['label'])}/eps{a['eps'].index(e)}.npz"}
        return out

    @staticmethod
    def _norms(a: dict[str, Any], e: float, rng: np.random.Generator) -> tuple[float, float]:
        """Mean L∞ and L2 of the perturbations at ε (28×28 inputs in [0, 1])."""
        u = float(rng.uniform(0.9, 1.0))
        if a["norm"] in ("linf", "none"):
            return e * u, e * 28.0 * float(rng.uniform(0.55, 0.85))
        if a["norm"] == "l2":
            return e * 0.22 * u, e * u * (0.7 if a["name"] in ("cw", "deepfool") else 1.0)
        return 0.92 * u, e * 784 * 0.85 * u / 28.0 * 1.2

    # ----------------------------------------------------------------------------------------- device ---
    def _device(self, units: list[tuple[int, str, str, dict[str, Any] | None]],
                unit_data: dict[tuple[str, str], dict[str, Any]], adv: dict[tuple[Any, ...], dict[str, Any]],
                stage: Any) -> tuple[list[dict[str, Any]], ...]:
        """One device run per target × backend × unit: its environment, result records, samples, minimal-ε
        records and device flags, as ``Pipeline._score`` makes them."""
        from edgebench.agent.envinfo import throttling_during
        from edgebench.metrics.latency import latency_summary
        from edgebench.metrics.samples import latency_histogram

        n, measure = self.n, self.plan.measure
        records: list[dict[str, Any]] = []
        samples: list[dict[str, Any]] = []
        envs: list[dict[str, Any]] = []
        min_eps: list[dict[str, Any]] = []
        flags: list[dict[str, Any]] = []
        clean_set = f"{_key('testset', self.seed, n)}/clean.npz"
        min_eps_done: dict[tuple[str, str, str], dict[str, Any]] = {}
        for ti, t in enumerate(self.targets):
            for bi, (backend, fmt, bfactor) in enumerate(self.backends):
                for ui, (mi, model, variant, _) in enumerate(units):
                    d = unit_data[(model, variant)]
                    uid = _unit_id(model, variant)
                    rng = _rng(self.seed, 4, ti, bi, ui)
                    macs = d["stats"]["macs"] / unit_data[(model, BASE)]["stats"]["macs"]
                    arch_ms = {"liu2018_mnist": 1.0, "lenet5": 0.12, "song2020_mnist": 0.45}[self.models[mi][1]]
                    ms = t["ms"] * arch_ms * bfactor * (0.15 + 0.85 * macs) * d["speed"] \
                        * float(rng.uniform(0.97, 1.03))
                    runs = int(min(max(measure.min_runs, math.ceil(measure.min_duration_s * 1e3 / ms)), 20_000))
                    lat_ns = ms * 1e6 * rng.lognormal(0.0, 0.06, runs)
                    tail = rng.random(runs) < 0.01
                    lat_ns[tail] *= rng.uniform(1.5, 4.0, int(tail.sum()))
                    hot = (ti, bi, uid) == self.throttled
                    if hot:  # the clock falls during the run: the second half is slower
                        lat_ns[runs // 2:] *= 1.35
                    lat_ns = np.maximum(lat_ns, 1000.0).astype(np.int64)
                    lat = latency_summary(lat_ns, first_ns=int(ms * 1e6 * rng.uniform(4.0, 9.0)),
                                          duration_s=float(lat_ns.sum() / 1e9 * 1.004))
                    job = _key("device", self.seed, t["name"], backend, uid)
                    energy = _energy(t, rng, lat["mean_ms"], 1.0 if backend != "null" else 0.05, job, measure)
                    before = _snapshot(t, rng)
                    after = _snapshot(t, rng, hot=hot)
                    info = _backend_info(backend, fmt, t)
                    envs.append({"target": t["name"], "backend": backend, "model": model, "variant": variant,
                                 "backend_info": info,
                                 "environment": {"before": before, "after": after, "energy": energy, "resumed": []}})
                    stage(f"device/{t['name']}/{backend}/{uid}", float(round(lat["duration_s"] + 3.0, 3)),
                          f"p50 {lat['p50_ms']:.3f} ms over {lat['runs']} runs ({fmt})", job)
                    base = {"model": model, "variant": variant, "backend": backend, "target": t["name"],
                            **{k: lat[k] for k in ("mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms",
                                                   "max_ms", "first_ms", "runs", "duration_s", "throughput_per_s")},
                            **energy_fields(energy)}
                    ok = d["ok"]
                    ca = _p(ok)
                    records.append({**base, "attack": "none", "eps": 0.0, "n": ca["n"], "clean_acc": ca["value"],
                                    "clean_acc_lo": ca["lo"], "clean_acc_hi": ca["hi"], "source": uid,
                                    "threat": "clean"})
                    row_key = {k: base[k] for k in ("model", "variant", "backend", "target")}
                    samples.append({"kind": "correct", **row_key, "attack": "none", "eps": 0.0, "source": uid,
                                    "data": _pack(ok, clean_set)})
                    samples.append({"kind": "latency", **row_key, "attack": "none", "eps": 0.0, "source": uid,
                                    "data": latency_histogram(lat_ns)})
                    per_sample: dict[tuple[str, str], list[dict[str, Any]]] = {}
                    for ai, a in enumerate(self.attacks):
                        srcs = [uid] + ([model] if ai == 0 and variant != BASE else [])
                        for src in srcs:
                            threat = "white-box" if src == uid else "transfer"
                            for e in a["eps"]:
                                x = adv[(model, variant, a["label"], e, src)]
                                ra, asr = _p(x["correct"]), _p(x["hit"][ok])
                                host_asr = _p(x["host_hit"][ok])["value"]
                                records.append({
                                    **base, "attack": a["label"], "eps": e, "n": n, "clean_acc": ca["value"],
                                    "clean_acc_lo": ca["lo"], "clean_acc_hi": ca["hi"], "robust_acc": ra["value"],
                                    "robust_acc_lo": ra["lo"], "robust_acc_hi": ra["hi"], "asr": asr["value"],
                                    "asr_lo": asr["lo"], "asr_hi": asr["hi"], "asr_n": asr["n"], "host_asr": host_asr,
                                    "deployment_gap": asr["value"] - host_asr, "source": src, "threat": threat,
                                    "mean_linf": x["mean_linf"], "mean_l2": x["mean_l2"]})
                                samples.append({"kind": "correct", **row_key, "attack": a["label"], "eps": e,
                                                "source": src, "data": _pack(x["correct"], x["set"])})
                                per_sample.setdefault((a["label"], src), []).append(
                                    {"eps": e, "ok": ok, "hit": x["hit"], "threat": threat, "host_ok": ok,
                                     "host_hit": x["host_hit"]})
                    where = dict(row_key)
                    for (label, src), rows in per_sample.items():
                        if len(rows) > 1 and label == self.attacks[0]["label"]:
                            if (uid, label, src) not in min_eps_done:  # the same masks on every target
                                min_eps_done[(uid, label, src)] = _min_eps_record(rows)
                            min_eps.append({**where, "attack": label, "source": src, "threat": rows[0]["threat"],
                                            **min_eps_done[(uid, label, src)]})
                    flags += whitebox_below_transfer(where, uid, per_sample)
                    label = f"{model}/{variant} on {backend}/{t['name']}"
                    if not energy.get("absent") and not energy.get("valid", False):
                        reasons = "; ".join(energy.get("invalid_reasons", [])) or "invalid window"
                        flags.append({**where, "kind": "energy-invalid", "detail": energy,
                                      "message": f"{label}: energy not trustworthy ({reasons})"})
                    why = throttling_during(before, after)
                    if why:
                        flags.append({**where, "kind": "throttling", "detail": {"reasons": why},
                                      "message": f"{label}: the device throttled during the run ({'; '.join(why)}); "
                                                 "latency and energy are not steady-state"})
        return records, samples, envs, min_eps, flags

    def _gradient_flags(self, units: list[tuple[int, str, str, dict[str, Any] | None]]) -> list[dict[str, Any]]:
        """``Pipeline._gradient_flags``: one per unit that crafted white-box examples."""
        if not self.attacks:
            return []
        out = []
        for ui, (_mi, model, variant, _) in enumerate(units):
            rng = _rng(self.seed, 5, ui)
            uid = _unit_id(model, variant)
            m = min(self.n, 1000)
            zeros = max(1, round(0.31 * m)) if variant == self.masked else \
                int(rng.choice([0, 0, 1])) * int(1 / m <= MASKING_SHARE)
            zero = zeros / m
            hist = _abs_grad_hist(rng, m, zeros, 1e-3 if variant != self.masked else 1e-6)
            med = hist.pop("_median_l1")
            health = {"n": m, "zero_share": zero, "nonfinite_share": 0.0, "median_grad_l1": med, "abs_grad_hist": hist}
            flagged = zero > MASKING_SHARE
            out.append({"kind": "gradient-masking" if flagged else "gradient-check", "model": model, "variant": variant,
                        "backend": "", "target": "", "attack": "", "eps": 0.0, "source": uid, "detail": health,
                        "message": (f"{uid}: {zero:.1%} of input gradients are zero and 0.0% non-finite (flag above "
                                    f"{MASKING_SHARE:.0%}); white-box results may overstate robustness — compare "
                                    "transfer and margin-loss (cw, apgd dlr) attacks") if flagged else
                                   f"{uid}: input gradients healthy ({zero:.1%} zero, 0.0% non-finite)"})
        return out

    @staticmethod
    def _deltas(records: list[dict[str, Any]], adv: dict[tuple[Any, ...], dict[str, Any]]) -> None:
        """``pipeline._deltas_vs_base``: McNemar of each variant's robust correctness against its base's under
        the same attack, ε and examples (computed once per examples, the masks being the same everywhere)."""
        from edgebench.metrics.robustness import mcnemar

        done: dict[tuple[Any, ...], tuple[float, float]] = {}
        for r in records:
            if r["attack"] == "none" or r["variant"] == BASE:
                continue
            k = (r["model"], r["variant"], r["attack"], r["eps"], r["source"])
            if k not in done:
                base_source = r["model"] if r["source"] == f"{r['model']}/{r['variant']}" else r["source"]
                mine = adv[k]["correct"]
                theirs = adv[(r["model"], BASE, r["attack"], r["eps"], base_source)]["correct"]
                done[k] = (float(np.mean(mine) - np.mean(theirs)), mcnemar(theirs, mine)["p_value"])
            r["robust_delta"], r["robust_delta_p"] = done[k]


def _min_eps_record(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``pipeline._min_eps_record``: per-sample minimal ε over the grid, device and host, among the samples
    classified correctly when clean."""
    from edgebench.metrics.robustness import minimal_eps, summarize_min_eps

    eps = np.array([r["eps"] for r in rows])
    values = minimal_eps(eps, np.stack([r["hit"] for r in rows]))[rows[0]["ok"]]
    host = minimal_eps(eps, np.stack([r["host_hit"] for r in rows]))[rows[0]["host_ok"]]
    return {"eps_grid": eps.tolist(), **summarize_min_eps(values),
            "values": [None if math.isinf(v) else v for v in values.tolist()],
            "host": {**summarize_min_eps(host), "values": [None if math.isinf(v) else v for v in host.tolist()]}}


