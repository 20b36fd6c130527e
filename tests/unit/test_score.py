"""Scoring as a pure function of stage outcomes: device runs' raw outputs, adversarial sets and the twins'
predictions in, the store's records out. No stage runs here: the outcomes are written by hand."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from edgebench.config import parse_plan
from edgebench.metrics.robustness import mcnemar
from edgebench.runner.score import ResultRecord, score
from edgebench.runner.units import AdvSets, DeviceRun, Unit
from edgebench.store.sqlite import RESULT_FIELDS, RESULT_KEY

PLAN = {
    "plan": {"name": "score"},
    "data": {"dataset": "digits"},
    "models": [{"name": "m", "arch": "digits_cnn"}],
    "compress": [{"method": "int8", "label": "q"}],
    "attacks": [{"name": "fgsm", "eps": [0.1, 0.3], "min_eps": True}],
    "targets": [{"target": "local", "backends": ["onnxruntime"]}],
}

Y = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])


def logits(pred: np.ndarray, classes: int = 10) -> np.ndarray:
    out = np.zeros((len(pred), classes), np.float32)
    out[np.arange(len(pred)), pred] = 1.0
    return out


def device_run(folder: Path, name: str, clean: np.ndarray, adv: dict[str, tuple[np.ndarray, Path, str, int]],
               unit_id: str) -> DeviceRun:
    """A device run as the agent leaves it: one logits file per test set and a result.json listing them."""
    folder.mkdir(parents=True)
    sets = [{"name": "clean", "path": folder / "clean.npz", "attack": "none", "eps": 0.0, "source": unit_id}]
    files = [{"name": "clean", "file": "set-0.npy", "n": len(clean)}]
    np.save(folder / "set-0.npy", logits(clean))
    for j, (set_name, (pred, path, label, k)) in enumerate(adv.items(), start=1):
        np.save(folder / f"set-{j}.npy", logits(pred))
        files.append({"name": set_name, "file": f"set-{j}.npy", "n": len(pred)})
        sets.append({"name": set_name, "path": path, "attack": label, "eps": [0.1, 0.3][k], "source": unit_id,
                     "k": k})
    result = {"testsets": files, "latency": {"p50_ms": 1.5, "runs": 100, "mean_ms": 1.6, "protocol": {}},
              "energy": None, "memory": {"baseline_rss_mb": 60.0, "load_rss_mb": 12.5, "peak_rss_mb": 14.0},
              "profile": {"total_ms": 1.2, "ops": [{"op": "Conv", "kernel": "CPU/float", "share": 1.0}]}}
    (folder / "result.json").write_text(json.dumps(result))
    return DeviceRun(name, folder, result, sets)


def adv_sets(folder: Path, source: str, host_pred: list[np.ndarray], attack) -> AdvSets:
    folder.mkdir(parents=True)
    files = []
    for k, hp in enumerate(host_pred):
        f = folder / f"eps{k}.npz"
        np.savez(f, x=np.zeros((len(Y), 1, 8, 8), np.float32), y=Y, host_pred=hp, success=hp != Y,
                 linf=np.full(len(Y), [0.1, 0.3][k]), l2=np.ones(len(Y)), l0=np.ones(len(Y)))
        files.append(f)
    info = {"norm": "linf", "mean_linf": [0.1, 0.3], "mean_l2": [1.0, 2.0]}
    return AdvSets(source, attack, f"key-{source}", files, info)


@pytest.fixture
def outcome(tmp_path: Path):
    plan = parse_plan(PLAN, "score.toml")
    attack = plan.attacks[0]
    base, var = Unit("m"), Unit("m", "q")
    adv_base = adv_sets(tmp_path / "adv-m", "m", [Y.copy(), (Y + 1) % 10], attack)
    adv_var = adv_sets(tmp_path / "adv-q", "m/q", [Y.copy(), Y.copy()], attack)
    wrong_half = np.where(np.arange(10) < 5, Y, (Y + 1) % 10)
    runs = {
        "device/local/onnxruntime/m": device_run(tmp_path / "run-m", "device/local/onnxruntime/m", Y.copy(), {
            "fgsm@0.1 from m": (Y.copy(), adv_base.files[0], "fgsm", 0),
            "fgsm@0.3 from m": ((Y + 1) % 10, adv_base.files[1], "fgsm", 1)}, "m"),
        "device/local/onnxruntime/m/q": device_run(tmp_path / "run-q", "device/local/onnxruntime/m/q", Y.copy(), {
            "fgsm@0.1 from m/q": (Y.copy(), adv_var.files[0], "fgsm", 0),
            "fgsm@0.3 from m/q": (wrong_half, adv_var.files[1], "fgsm", 1)}, "m/q"),
    }
    values = {"craft/m/fgsm": adv_base, "craft/m/q/fgsm": adv_var, **runs}
    return plan, values, base, var


def test_records_have_the_store_fields_and_the_defined_metrics(outcome) -> None:
    plan, values, base, var = outcome
    asked: list[tuple[Unit, object]] = []

    def host_predict(unit: Unit, path):
        asked.append((unit, path))
        return Y.copy()  # the twins classify every clean sample correctly

    scores = score(plan, values, Y, host_predict=host_predict)
    assert [f.name for f in dataclasses.fields(ResultRecord)] == [*RESULT_KEY, *RESULT_FIELDS]
    rows = {(r.variant, r.attack, r.eps): r for r in scores.records}
    assert len(rows) == 6
    clean = rows[("base", "none", 0.0)]
    assert clean.clean_acc == 1.0 and clean.n == 10 and clean.threat == "clean" and clean.p50_ms == 1.5
    assert (clean.load_rss_mb, clean.peak_rss_mb) == (12.5, 14.0)  # the agent's memory, beside its latency
    profiles = [s for s in scores.samples if s["kind"] == "profile"]
    assert [(s["variant"], s["attack"], s["data"]["total_ms"]) for s in profiles] == [("base", "none", 1.2),
                                                                                      ("q", "none", 1.2)]
    strong = rows[("base", "fgsm", 0.3)]
    assert strong.robust_acc == 0.0 and strong.asr == 1.0 and strong.asr_n == 10 and strong.threat == "white-box"
    assert strong.host_asr == 1.0 and strong.deployment_gap == 0.0  # the host twin's own predictions, from the set
    assert strong.mean_linf == 0.3 and strong.robust_delta is None  # the base has no base to compare with
    half = rows[("q", "fgsm", 0.3)]
    assert half.robust_acc == 0.5 and half.asr == 0.5
    assert half.host_asr == 0.0 and half.deployment_gap == 0.5  # its twin was never fooled; the device was
    # the variant against the base on the same samples: +0.5, with McNemar's exact p
    assert half.robust_delta == pytest.approx(0.5)
    assert half.robust_delta_p == pytest.approx(mcnemar(np.zeros(10, bool), np.arange(10) < 5)["p_value"])
    assert rows[("q", "fgsm", 0.1)].robust_delta == 0.0
    # the twins are asked for their clean predictions once per unit; white-box sets carry their own
    assert asked == [(base, None), (var, None)]
    # rows serialize to exactly the store's columns
    assert set(half.row()) == {*RESULT_KEY, *RESULT_FIELDS}


def test_minimal_eps_samples_and_no_twin(outcome) -> None:
    plan, values, base, var = outcome
    scores = score(plan, values, Y, host_predict=lambda unit, path: None)  # ONNX-only units: no twin
    assert all(r.host_asr is None and r.deployment_gap is None for r in scores.records)
    me = {(m["variant"]): m for m in scores.min_eps}
    assert me["base"]["eps_grid"] == [0.1, 0.3] and me["base"]["n"] == 10 and me["base"]["found"] == 10
    assert me["q"]["found"] == 5 and "host" not in me["q"]
    kinds = [s["kind"] for s in scores.samples]
    assert kinds.count("correct") == 6 and kinds.count("latency") == 0  # no latency_ns.npy was written
