"""The synthetic store (:mod:`tests.fixtures.synthetic`): row counts, internal consistency of every
accuracy with the stored per-sample masks, determinism, and the edge sizes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgebench.metrics.robustness import mcnemar, wilson
from edgebench.metrics.samples import unpack_correct
from edgebench.store import Store
from tests.fixtures.synthetic import fill_synthetic, synthetic_run

RUN = "syn"
KEY = ("model", "variant", "attack", "eps", "backend", "target", "source")


def _fill(path: Path, **kw: Any) -> Store:
    store = Store.open(path)
    fill_synthetic(store, RUN, **kw)
    return store


def _expected(models: int, variants: int, attacks: int, eps_grid: int, targets: int, backends: int,
              transfer: int = 1, names: tuple[str, ...] = ()) -> dict[str, int]:
    units, pairs = models * variants, targets * backends
    transferred = min(transfer, attacks)
    transfer_rows = models * (variants - 1) * pairs * eps_grid * transferred
    results = units * pairs * (1 + attacks * eps_grid) + transfer_rows
    return {"results": results, "correct": results, "latency": units * pairs, "variants": units,
            "profile": units * targets * min(backends, 2),  # the null backend (third) has no profiler
            "artifacts": 2 * units, "environments": units * pairs,
            "stages": 2 + units + units * attacks + units * pairs,
            "min_eps": (units + models * (variants - 1) * min(transferred, 1)) * pairs
            if attacks and eps_grid >= 2 else 0}


@pytest.mark.parametrize("sizes", [
    {"models": 1, "variants": 5, "attacks": 3, "eps_grid": 1, "targets": 2, "backends": 1},
    {"models": 2, "variants": 3, "attacks": 2, "eps_grid": 3, "targets": 3, "backends": 2},
    {"models": 2, "variants": 3, "attacks": 3, "eps_grid": 2, "targets": 1, "backends": 1, "transfer": 2,
     "names": ("a_b",)},
    {"models": 1, "variants": 3, "attacks": 2, "eps_grid": 2, "targets": 1, "backends": 1, "transfer": 0},
])
def test_row_counts(tmp_path: Path, sizes: dict[str, int]) -> None:
    with _fill(tmp_path / "results.sqlite", n=200, **sizes) as st:
        want = _expected(**sizes)
        results = st.results(RUN)
        assert len(results) == want["results"]
        assert len(st.samples(RUN, "correct")) == want["correct"]
        assert len(st.samples(RUN, "latency")) == want["latency"]
        assert len(st.samples(RUN, "profile")) == want["profile"]
        assert len(st.variants(RUN)) == want["variants"]
        assert len(st.artifacts(RUN)) == want["artifacts"]
        assert len(st.environments(RUN)) == want["environments"]
        assert len(st.stages(RUN)) == want["stages"]
        assert len(st.min_eps(RUN)) == want["min_eps"]
        run = st.run(RUN)
        assert run is not None and run["plan_name"] == "synthetic" and run["status"] == "done"
        assert all(s["status"] == "done" for s in st.stages(RUN))
        kinds = [f["kind"] for f in st.flags(RUN)]
        units = sizes["models"] * sizes["variants"]
        assert kinds.count("gradient-check") + kinds.count("gradient-masking") == units
        assert kinds.count("gradient-masking") == sizes["models"]  # one masked variant per model
        transferred = {r["attack"] for r in results if r["threat"] == "transfer"}
        assert transferred == {a["label"] for a in json.loads(run["plan"])["attacks"] if "transfer" in a["threat"]}
        assert len(transferred) == min(sizes.get("transfer", 1), sizes["attacks"])
        names = sizes.get("names", ())
        assert {v["model"] for v in st.variants(RUN)} == {*names, *("liu", "lenet")[len(names):sizes["models"]]}
        assert kinds.count("throttling") == 1
        assert kinds.count("energy-invalid") == (units * sizes["backends"] if sizes["targets"] >= 3 else 0)
        assert (kinds.count("whitebox-below-transfer") >= 1) == bool(transferred)
        # exactly one parity failure per model once there are >= 3 variants
        assert sum(a["parity_ok"] == 0 for a in st.artifacts(RUN)) == sizes["models"]


def test_accuracies_match_the_stored_masks(tmp_path: Path) -> None:
    with _fill(tmp_path / "results.sqlite", variants=4, attacks=3, eps_grid=2, targets=3, n=300) as st:
        results = st.results(RUN)
        masks = {tuple(s[k] for k in KEY): unpack_correct(s["data"]) for s in st.samples(RUN, "correct")}
        assert len(masks) == len(results)
        clean = {(r["model"], r["variant"], r["backend"], r["target"]): r for r in results if r["attack"] == "none"}
        robust = {}
        for r in results:
            mask = masks[tuple(r[k] for k in KEY)]
            assert mask.size == r["n"] == 300
            crow = clean[(r["model"], r["variant"], r["backend"], r["target"])]
            ok = masks[tuple(crow[k] for k in KEY)]
            assert r["clean_acc"] == pytest.approx(ok.mean(), abs=1e-12)
            assert (r["clean_acc_lo"], r["clean_acc_hi"]) == pytest.approx(wilson(int(ok.sum()), ok.size))
            if r["attack"] == "none":
                assert r["threat"] == "clean" and r["robust_acc"] is None
                assert r["min_ms"] <= r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"]
                assert r["min_ms"] <= r["mean_ms"] <= r["max_ms"] and r["runs"] >= 200
                continue
            assert r["robust_acc"] == pytest.approx(mask.mean(), abs=1e-12)
            assert (r["robust_acc_lo"], r["robust_acc_hi"]) == pytest.approx(wilson(int(mask.sum()), mask.size))
            fooled = ~mask[ok]
            assert r["asr_n"] == int(ok.sum())
            assert r["asr"] == pytest.approx(fooled.mean(), abs=1e-12)
            assert (r["asr_lo"], r["asr_hi"]) == pytest.approx(wilson(int(fooled.sum()), fooled.size))
            assert r["deployment_gap"] == pytest.approx(r["asr"] - r["host_asr"])
            own = r["model"] if r["variant"] == "base" else f"{r['model']}/{r['variant']}"
            assert r["threat"] == ("white-box" if r["source"] == own else "transfer")
            robust[tuple(r[k] for k in KEY)] = mask
        # the paired comparison with the base, as pipeline._deltas_vs_base makes it
        checked = 0
        for r in results:
            if r["attack"] == "none" or r["variant"] == "base":
                assert r["robust_delta"] is None
                continue
            own = f"{r['model']}/{r['variant']}"
            base_key = (r["model"], "base", r["attack"], r["eps"], r["backend"], r["target"],
                        r["model"] if r["source"] == own else r["source"])
            mine, theirs = robust[tuple(r[k] for k in KEY)], robust[base_key]
            assert r["robust_delta"] == pytest.approx(mine.mean() - theirs.mean())
            assert r["robust_delta_p"] == pytest.approx(mcnemar(theirs, mine)["p_value"])
            checked += 1
        assert checked > 0
        # energy columns exactly where the target's sensor gave a reading, flagged when invalid
        energy = {(e["target"]): e["environment"]["energy"] for e in st.environments(RUN)}
        assert energy["raspberry-pi-4"].get("absent") and energy["local"]["valid"]
        assert not energy["jetson-orin-nano"]["valid"] and energy["jetson-orin-nano"]["invalid_reasons"]
        for r in clean.values():
            assert (r["energy_j"] is None) == (r["target"] == "raspberry-pi-4")
            assert r["energy_valid"] == {"local": 1, "jetson-orin-nano": 0}.get(r["target"])
        # latency histograms hold every timed run
        for s in st.samples(RUN, "latency"):
            row = clean[(s["model"], s["variant"], s["backend"], s["target"])]
            assert sum(s["data"]["counts"]) == s["data"]["n"] == row["runs"]
            assert len(s["data"]["edges_ms"]) == len(s["data"]["counts"]) + 1
            assert s["data"]["edges_ms"][0] == pytest.approx(row["min_ms"])
            assert s["data"]["edges_ms"][-1] == pytest.approx(row["max_ms"])
        # minimal ε: per sample among the clean-correct ones, consistent with the masks on the grid
        for m in st.min_eps(RUN):
            crow = clean[(m["model"], m["variant"], m["backend"], m["target"])]
            ok = masks[tuple(crow[k] for k in KEY)]
            assert m["n"] == len(m["values"]) == int(ok.sum())
            for e in m["eps_grid"]:
                mask = masks[(m["model"], m["variant"], m["attack"], e, m["backend"], m["target"], m["source"])]
                hit_by_eps = np.array([v is not None and v <= e for v in m["values"]])
                assert np.array_equal(hit_by_eps, ~mask[ok])
        # gradient checks carry the histogram of the per-sample mean |∂J/∂x|
        for f in st.flags(RUN):
            if f["kind"] in ("gradient-check", "gradient-masking"):
                h = f["detail"]["abs_grad_hist"]
                assert len(h["edges"]) == len(h["counts"]) + 1
                assert all(a < b for a, b in zip(h["edges"], h["edges"][1:]))
                assert sum(h["counts"]) + h["zeros"] == f["detail"]["n"]
                assert math.isclose(h["zeros"] / f["detail"]["n"], f["detail"]["zero_share"])


def test_variant_stats_shapes(tmp_path: Path) -> None:
    with _fill(tmp_path / "results.sqlite", variants=11, attacks=1, targets=1, n=100) as st:
        variants = {v["variant"]: v for v in st.variants(RUN)}
        assert {"base", "prune-l2-10", "int8", "hashed-8", "kbit-4", "gi-0.1", "adv-pgd-0.1"} <= set(variants)
        base = variants["base"]["stats"]
        assert "delta_w_spectral" not in base
        for v in variants.values():
            st_ = v["stats"]
            assert set(st_["artifacts"]) == {"onnx", "openvino"}
            assert st_["artifacts"]["onnx"]["deflate_bytes"] < st_["artifacts"]["onnx"]["size_bytes"]
            for w in st_["weights"].values():
                assert len(w["edges"]) == len(w["counts"]) + 1 == 42
                assert w["min"] <= w["p01"] <= w["mean"] <= w["p99"] <= w["max"]
                assert max(-w["min"], w["max"]) == pytest.approx(w["edges"][-1])
            if v["variant"] != "base":
                assert set(st_["delta_w_spectral"]) == set(st_["weights"])
        # filter pruning removes channels: fewer parameters and MACs, no ΔW where shapes changed
        pruned = variants["prune-l2-10"]["stats"]
        assert pruned["params"] < base["params"] and pruned["macs"] < base["macs"]
        assert pruned["delta_w_spectral"]["features.0"] is None
        assert variants["hashed-8"]["stats"]["params"] < base["params"] / 4
        assert variants["kbit-4"]["stats"]["weights"]["head.0"]["distinct"] == 15


def test_deterministic(tmp_path: Path) -> None:
    kw = {"models": 2, "variants": 4, "attacks": 2, "eps_grid": 2, "targets": 3, "n": 150, "seed": 3}
    with _fill(tmp_path / "a" / "results.sqlite", **kw) as a, _fill(tmp_path / "b" / "results.sqlite", **kw) as b:
        for table in ("runs", "stages", "artifacts", "variants", "results", "environments", "min_eps", "flags",
                      "samples"):
            rows_a = a.conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4, 5").fetchall()
            rows_b = b.conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4, 5").fetchall()
            assert [tuple(r) for r in rows_a] == [tuple(r) for r in rows_b], table
        assert a.results(RUN) == b.results(RUN) and a.variants(RUN) == b.variants(RUN)
        assert a.samples(RUN) == b.samples(RUN)
        # refilling the same run id replaces it, and another seed gives other numbers
        fill_synthetic(a, RUN, **kw)
        assert a.results(RUN) == b.results(RUN)
        fill_synthetic(b, RUN, **{**kw, "seed": 4})
        assert a.results(RUN) != b.results(RUN)


@pytest.mark.parametrize("sizes", [
    {"variants": 1, "attacks": 0, "targets": 1},
    {"variants": 1, "attacks": 2, "eps_grid": 2, "targets": 1},
    {"variants": 2, "attacks": 0, "targets": 1, "backends": 3},
])
def test_edge_sizes(tmp_path: Path, sizes: dict[str, int]) -> None:
    full = {"models": 1, "variants": 5, "attacks": 3, "eps_grid": 1, "targets": 2, "backends": 1, **sizes}
    with _fill(tmp_path / "results.sqlite", n=50, **sizes) as st:
        want = _expected(**full)
        assert len(st.results(RUN)) == want["results"]
        assert len(st.samples(RUN)) == want["correct"] + want["latency"] + want["profile"]
        assert len(st.min_eps(RUN)) == want["min_eps"]
        kinds = {f["kind"] for f in st.flags(RUN)}
        assert ("gradient-check" in kinds) == (full["attacks"] > 0)
        assert "throttling" in kinds  # a single target throttles itself
        if full["attacks"] == 0:
            assert all(r["attack"] == "none" for r in st.results(RUN))


def test_bad_sizes(tmp_path: Path) -> None:
    with Store.open(tmp_path / "results.sqlite") as st:
        for bad in ({"variants": 0}, {"targets": 0}, {"attacks": -1}, {"backends": 4}, {"n": 0}, {"transfer": -1},
                    {"names": ("a", "b")}, {"models": 2, "names": ("a", "a")}):
            with pytest.raises(ValueError):
                fill_synthetic(st, RUN, **bad)


def test_run_data_switches_drop_what_sparser_runs_lack() -> None:
    full = synthetic_run(attacks=1, eps_grid=2)
    assert all("weights" in v["stats"] for v in full.variants)
    assert any(f["kind"].startswith("gradient-") for f in full.flags)
    assert any(s["kind"] == "latency" for s in full.samples)
    assert any(r["energy_j"] is not None for r in full.results)
    assert {r["threat"] for r in full.results} == {"clean", "white-box", "transfer"}
    sparse = synthetic_run(attacks=1, eps_grid=2, stats=False, histograms=False, energy=False, transfer=False)
    assert all("weights" not in v["stats"] and "delta_w_spectral" not in v["stats"] and "params" in v["stats"]
               for v in sparse.variants)
    assert not any(f["kind"].startswith("gradient-") for f in sparse.flags)
    assert {s["kind"] for s in sparse.samples} == {"correct", "profile"}  # profiles are not histograms
    assert all(r["energy_j"] is None and r["energy_valid"] is None for r in sparse.results)
    assert {r["threat"] for r in sparse.results} == {"clean", "white-box"}
    # the same made-up measurements otherwise
    assert [r["clean_acc"] for r in sparse.results if r["threat"] == "clean"] == \
        [r["clean_acc"] for r in full.results if r["threat"] == "clean"]
