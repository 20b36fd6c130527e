"""BPDA (Athalye et al. 2018) on real twins: the forward pass is unchanged to the bit, the backward pass of the
rounding step is the identity; PGD that finds nothing through a rounding model's zero gradient succeeds through
BPDA, while uniform noise, which needs no gradient, succeeds either way, and the gradient-masking flag fires on
the first and not on the second; ``bpda = true`` in a plan, and the crafted sets' cache key."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgebench.attacks import create_attack
from edgebench.attacks.bpda import bpda, describe, steps_in
from edgebench.config import parse_plan
from edgebench.errors import ConfigError
from edgebench.runner.keys import adv_key, bpda_on
from edgebench.runner.suite import FLAG_KIND, masking_flags
from edgebench.runner.units import Unit
from tests.fixtures.masked import rounding
from tests.fixtures.usermodels import tiny

EPS = 0.2
PLAN = {
    "plan": {"name": "bpda"},
    "data": {"dataset": "digits"},
    "models": [{"name": "m", "factory": "tests.fixtures.masked:rounding"}],
    "compress": [{"method": "kbit", "label": "q", "bits": 8, "bpda": True},
                 {"method": "kbit", "label": "plain", "bits": 8}],
    "attacks": [{"name": "pgd", "eps": [EPS], "steps": 10, "random_start": False},
                {"name": "uniform-noise", "eps": [EPS], "repeats": 10}],
}


def _digits(n: int = 120) -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().images[:n] / 16.0).astype(np.float32)[:, None]


def _outcomes(model: torch.nn.Module, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Labels: the model's own clean predictions (so every sample is clean-correct); per attack, its successes."""
    with torch.no_grad():
        y = model(torch.as_tensor(x)).argmax(1).numpy()
    hits = {}
    for label, spec in (("pgd", PLAN["attacks"][0]), ("uniform-noise", PLAN["attacks"][1])):
        params = {k: v for k, v in spec.items() if k not in ("name", "eps")}
        hits[label] = create_attack(spec["name"], **params)(model, x, y, eps=[EPS]).success[0]
    return y, hits


def _flags(hits: dict[str, np.ndarray]) -> list[dict]:
    plan = parse_plan(PLAN, "bpda.toml")
    per_sample = {(label, "m"): [{"eps": EPS, "ok": np.ones(len(h), bool), "hit": h, "norm": "linf"}]
                  for label, h in hits.items()}
    where = {"model": "m", "variant": "base", "backend": "onnxruntime", "target": "local"}
    return masking_flags(where, "m", per_sample, {a.label: a for a in plan.attacks})


def test_identity_backward_through_the_rounding_step_and_the_same_forward() -> None:
    torch.manual_seed(0)
    model = rounding().eval()
    x = torch.as_tensor(_digits(16)).requires_grad_(True)
    (plain,) = torch.autograd.grad(model(x).logsumexp(1).sum(), x)
    assert float(plain.abs().sum()) == 0.0  # round: zero gradient almost everywhere
    wrapped = bpda(model)
    (through,) = torch.autograd.grad(wrapped(x).logsumexp(1).sum(), x)
    # BPDA's gradient is the gradient of the network after the quantizer, at the quantized input
    q = (torch.round(x * 4) / 4).detach().requires_grad_(True)
    (after,) = torch.autograd.grad(model[1:](q).logsumexp(1).sum(), q)
    assert torch.equal(through, after) and float(through.abs().sum()) > 0
    assert torch.equal(wrapped(x), model(x))  # the forward pass is bit for bit the same
    assert steps_in(model, x.detach().numpy()) == {"round": 1} and "round × 1" in describe({"round": 1})
    assert steps_in(tiny().eval(), x.detach().numpy()) == {}  # nothing to replace in a plain CNN
    assert "changes nothing" in describe({})


def test_pgd_is_blind_on_a_rounding_model_noise_is_not_and_bpda_restores_pgd() -> None:
    torch.manual_seed(0)
    model, x = rounding().eval(), _digits()
    y, hits = _outcomes(model, x)
    assert hits["pgd"].sum() == 0 and hits["uniform-noise"].sum() >= 20  # measured: 0 and 101 of 120
    (flag,) = _flags(hits)
    assert flag["kind"] == FLAG_KIND and flag["attack"] == "uniform-noise"
    assert flag["detail"]["against"]["pgd"]["p_value"] < 1e-5
    # through BPDA, PGD finds its way again and no flag fires
    _, through = _outcomes(bpda(model), x)
    assert through["pgd"].sum() > hits["uniform-noise"].sum() and through["pgd"].mean() >= 0.8
    assert not _flags(through)
    # a normal model (no rounding): PGD beats the noise, no flag
    torch.manual_seed(0)
    _, normal = _outcomes(tiny().eval(), x)
    assert normal["pgd"].sum() > normal["uniform-noise"].sum() and not _flags(normal)


def test_bpda_in_a_plan_and_the_cache_key() -> None:
    plan = parse_plan(PLAN, "bpda.toml")
    q, plain = plan.compress
    assert q.bpda and "bpda" not in q.params and not plain.bpda  # not a parameter of the method
    assert bpda_on(plan, Unit("m", "q")) and not bpda_on(plan, Unit("m", "plain")) and not bpda_on(plan, Unit("m"))
    d = plan.as_dict()
    assert d["compress"][0]["bpda"] is True and "bpda" not in d["compress"][1] and "bpda" not in d["models"][0]
    keys = {flag: adv_key(plan, "src", plan.attacks[0], n_test=100, data_fingerprint="d", bpda=flag)
            for flag in (False, True)}
    assert keys[False] != keys[True]
    model_bpda = parse_plan({**PLAN, "models": [{**PLAN["models"][0], "bpda": True}]}, "bpda.toml")
    assert bpda_on(model_bpda, Unit("m"))
    with pytest.raises(ConfigError, match="bpda"):
        parse_plan({**PLAN, "models": [*PLAN["models"], {"name": "v", "onnx": "v.onnx", "attack_source": "m",
                                                        "bpda": True}]}, "bpda.toml")
    with pytest.raises(ConfigError, match="bpda"):
        parse_plan({**PLAN, "compress": [{"method": "kbit", "bits": 8, "bpda": "yes"}]}, "bpda.toml")


def test_int8_twin_activation_quantizers_go_straight_through() -> None:
    """NNCF's fake quantizers: straight-through inside their range, zero gradient outside; through BPDA the
    identity everywhere, on the 8 activation quantizers of digits_cnn's int8 twin (its weights need no gradient)."""
    from edgebench.compress import COMPRESSORS
    from edgebench.data import load_dataset
    from edgebench.models import create_model
    from edgebench.models.train import TrainConfig
    from edgebench.variants import VariantContext

    ds = load_dataset("digits")
    torch.manual_seed(0)
    base = create_model("digits_cnn", input_shape=ds.shape, num_classes=10).eval()
    ctx = VariantContext(ds.x_train, ds.y_train, ds.shape, 10, TrainConfig(epochs=1), seed=0, where="test")
    twin = COMPRESSORS.get("int8")(calibration_size=32).apply(base, ctx).model
    assert steps_in(twin, ds.x_test[:8]) == {"symmetric_quantize": 8}
    for p in twin.parameters():
        p.requires_grad_(False)
    x = torch.from_numpy(ds.x_test[:64]).requires_grad_(True)
    y = torch.from_numpy(ds.y_test[:64])
    (ste,) = torch.autograd.grad(torch.nn.functional.cross_entropy(twin(x), y), x)
    (through,) = torch.autograd.grad(torch.nn.functional.cross_entropy(bpda(twin)(x), y), x)
    assert torch.equal(bpda(twin)(x), twin(x))
    assert not torch.equal(ste, through) and float(through.abs().sum()) > 0
