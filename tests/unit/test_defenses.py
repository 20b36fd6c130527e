"""Defenses on real data (scikit-learn's digits): gradient inhibition (seed 000, eq. 12) and the gradient masking
behind it, µ-law mapping (seed 003, eq. 3a), adversarial training (Madry et al.; Kurakin et al. / seed 002),
resuming an interrupted adversarial training, compressed twins (hashed, k-bit, pruned), ONNX export and the
errors a user can cause."""

from __future__ import annotations

import copy
import functools
import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgebench.attacks import create_attack
from edgebench.compress.hashed import HashedLinear
from edgebench.data import load_dataset
from edgebench.defenses import DEFENSES
from edgebench.defenses.adversarial_training import AdversarialTraining, Constrained, grid_of
from edgebench.defenses.mu_law import mu_law
from edgebench.errors import CompressError, ConfigError, UnknownNameError
from edgebench.models.train import TrainConfig, predict_logits
from edgebench.variants import VariantContext, create_method
from tests.fixtures.models import trained

TRAIN = TrainConfig(epochs=8, seed=0)

compressor = functools.partial(create_method, "compress")
make_defense = functools.partial(create_method, "defend")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def cnn():
    """digits_cnn, 8 epochs: clean accuracy 0.933 on the 360 test digits."""
    return trained("digits_cnn", epochs=TRAIN.epochs, seed=TRAIN.seed)


@pytest.fixture(scope="module")
def liu():
    """Seed 000's own network (784-C64-C128-F512-10, here on 8x8 digits), 8 epochs: clean accuracy 0.964."""
    return trained("liu2018_mnist", epochs=TRAIN.epochs, seed=TRAIN.seed)


def ctx_for(ds, **kw) -> VariantContext:
    return VariantContext(ds.x_train, ds.y_train, ds.shape, 10, TRAIN, seed=0, where="plan.toml: defend "
                           "(variant 'v' of model 'm')", **kw)


def acc(model, x, y) -> float:
    return float(np.mean(predict_logits(model, x).argmax(1) == y))


def snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# registry and bad input ----------------------------------------------------------------------------------
def test_registry_names_and_did_you_mean() -> None:
    assert DEFENSES.names() == ["adversarial_training", "gradient_inhibition", "mu_law"]
    with pytest.raises(UnknownNameError, match="Did you mean 'gradient_inhibition'"):
        make_defense("gradient_inhibiton", where="plan.toml: defend[0].method")
    with pytest.raises(ConfigError, match="has no parameter 'taus'.*did you mean 'tau'"):
        make_defense("gradient_inhibition", taus=0.1)


@pytest.mark.parametrize(("name", "params", "word"), [
    ("gradient_inhibition", {"tau": -0.1}, "tau"),
    ("gradient_inhibition", {"tau": float("nan")}, "tau"),
    ("gradient_inhibition", {"tau": True}, "tau"),
    ("gradient_inhibition", {"layers": "head.2"}, "layers"),
    ("mu_law", {"mu": 0}, "mu"),
    ("mu_law", {"mu": -255.0}, "mu"),
    ("mu_law", {"normalize": "minmax"}, "normalize"),
    ("mu_law", {"bits": 1}, "bits"),
    ("adversarial_training", {"mode": "mixed", "ratio": 1.5}, "ratio"),
    ("adversarial_training", {"mode": "mixed", "ratio": -0.1}, "ratio"),
    ("adversarial_training", {"ratio": 2.0}, "ratio"),
    ("adversarial_training", {"ratio": 0.5}, "ratio"),  # ratio needs mode 'mixed'
    ("adversarial_training", {"eps": 1.5}, "eps"),
    ("adversarial_training", {"eps": -0.01}, "eps"),
    ("adversarial_training", {"eps_ramp_epochs": -1}, "eps_ramp_epochs"),
    ("adversarial_training", {"mode": "trades"}, "mode"),
    ("adversarial_training", {"mode": "mixed", "attack": "cw"}, "attack"),
    ("adversarial_training", {"attack": "fgsm"}, "attack"),  # mode 'pgd' trains on PGD examples
    ("adversarial_training", {"steps": 0}, "steps"),
    ("adversarial_training", {"lr": 0}, "lr"),
    ("adversarial_training", {"preserve": "all"}, "preserve"),
])
def test_bad_parameters_name_the_parameter(name, params, word) -> None:
    with pytest.raises(ConfigError, match=rf"defense '{name}'.*{word}") as info:
        make_defense(name, **params)
    assert "compression method" not in str(info.value)


@pytest.mark.parametrize("name", ["gradient_inhibition", "mu_law"])
def test_layer_pattern_that_matches_nothing(cnn, digits, name) -> None:
    with pytest.raises(CompressError, match=r"variant 'v' of model 'm'.*pattern 'classifier\.\*' matches no") as info:
        make_defense(name, layers=["classifier.*"]).apply(cnn, ctx_for(digits))
    assert "head.2" in str(info.value)  # it lists the layers there are
    conv_only = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    with pytest.raises(CompressError, match="no Linear layer"):
        make_defense(name).apply(conv_only, ctx_for(digits))


@pytest.mark.parametrize("name", ["gradient_inhibition", "mu_law", "adversarial_training"])
def test_an_nncf_int8_twin_is_refused(cnn, digits, name) -> None:
    like_int8 = copy.deepcopy(cnn)
    like_int8.add_module("__nncf_hooks", nn.Module())  # what nncf.quantize leaves in the twin
    with pytest.raises(CompressError, match=r"variant 'v' of model 'm'.*cannot defend an NNCF int8 twin"):
        make_defense(name).apply(like_int8, ctx_for(digits))


# gradient inhibition (seed 000, eq. 12) ------------------------------------------------------------------
def test_gradient_inhibition_is_eq_12_on_the_last_linear_layer(cnn, digits) -> None:
    before = snapshot(cnn)
    out = make_defense("gradient_inhibition", tau=0.3).apply(cnn, ctx_for(digits))
    after = snapshot(out.model)
    w = before["head.2.weight"]
    assert torch.equal(after["head.2.weight"], w + 0.3 * torch.sign(w))
    assert all(torch.equal(after[k], before[k]) for k in before if k != "head.2.weight")  # biases, other layers
    assert out.info["layers"] == ["head.2"] and out.info["tau"] == 0.3
    assert out.info["per_layer"]["head.2"]["delta_abs_max"] == pytest.approx(0.3)
    # sign(0) = 0: a pruned weight stays pruned
    pruned = copy.deepcopy(cnn)
    with torch.no_grad():
        pruned.head[2].weight[:, ::2] = 0.0
    got = make_defense("gradient_inhibition", tau=0.3, layers=["head.*"]).apply(pruned, ctx_for(digits)).model
    assert bool((got.head[2].weight[:, ::2] == 0).all())
    assert got.head[0].weight.abs().min() >= 0.3  # both Linear layers of the head moved
    assert make_defense("gradient_inhibition", tau=0.3, layers=["head.*"]).apply(pruned, ctx_for(digits)).info[
        "per_layer"]["head.2"]["zeros_kept"] == 32 * 10


def test_gradient_inhibition_on_a_hashed_twin_moves_every_virtual_weight(cnn, digits) -> None:
    ctx = ctx_for(digits)
    hashed = compressor("hashed", rate="1/8", epochs=0).apply(cnn, ctx).model
    layer = hashed.head[2]
    assert isinstance(layer, HashedLinear)
    virtual = layer.weight_virtual().detach().clone()
    defense = make_defense("gradient_inhibition", tau=0.25)
    out = defense.apply(hashed, ctx)
    got = out.model.head[2]
    assert isinstance(got, HashedLinear) and got.w.numel() == layer.w.numel()  # still hashed, same storage
    # eq. 12 on the real weights == eq. 12 on every virtual weight, exactly (xi = +-1)
    assert torch.equal(got.weight_virtual().detach(), virtual + 0.25 * torch.sign(virtual))
    assert out.info["per_layer"]["head.2"]["weights"] == "real (hashed buckets)"
    defense.attach(out, hashed, ctx)  # deploys the dense virtual weights
    assert isinstance(out.deploy.head[2], nn.Linear)
    x = digits.x_test[:64]
    np.testing.assert_allclose(predict_logits(out.deploy, x), predict_logits(out.model, x), atol=1e-4)


def test_gradient_inhibition_masks_gradients_rather_than_adding_robustness(liu, digits) -> None:
    """Seed 000, Fig. 10a: white-box FGSM success falls as τ grows, clean accuracy unchanged. Measured here
    (seed 0, 360 test digits, FGSM ε = 0.3; transfer: FGSM examples crafted on the un-inhibited model):

    ====  =====  =========  ================  ==============  =========================
    τ     clean  FGSM asr   zero-gradient     transfer asr    CW-L2 asr (100 samples)
    ====  =====  =========  ================  ==============  =========================
    0     0.964  1.000      0.00              1.000           1.00 (median L2 0.62)
    0.5   0.964  0.908      0.08              0.997           1.00 (0.55)
    1     0.964  0.435      0.54              0.997           1.00 (0.53)
    2     0.964  0.138      0.83              0.997           1.00 (0.50)
    ====  =====  =========  ================  ==============  =========================

    The drop is gradient masking: the softmax saturates, ∇_x J underflows to exactly 0 (FGSM's sign(0) = 0
    moves nothing), but the decision boundary has not moved — the examples of the base transfer with their
    full success rate and CW-L2 (a margin loss on logits) succeeds everywhere, with *smaller* perturbations.
    The τ scale differs from the seed's (τ = 0.1 sufficed on MNIST): the effect needs logit margins of ~100
    (float32's exp underflow), reached here at τ ≈ 1.
    """
    x, y = digits.x_test, digits.y_test
    ctx = ctx_for(digits)
    fgsm = create_attack("fgsm")
    cw = create_attack("cw", steps=30, binary_search_steps=4, lr=0.1)
    base_adv = fgsm(liu, x, y, eps=[0.3]).x_adv[0]
    rows = []
    for tau in (0.0, 0.5, 1.0, 2.0):
        model = make_defense("gradient_inhibition", tau=tau).apply(liu, ctx).model
        ok = predict_logits(model, x).argmax(1) == y
        white = float(fgsm(model, x, y, eps=[0.3]).success[0, ok].mean())
        transfer = float((predict_logits(model, base_adv).argmax(1) != y)[ok].mean())
        xt = torch.from_numpy(x).requires_grad_(True)
        (grad,) = torch.autograd.grad(nn.functional.cross_entropy(model(xt), torch.from_numpy(y), reduction="sum"), xt)
        zero = float((grad.flatten(1).abs().amax(1) == 0).float().mean())
        margin = cw(model, x[:100], y[:100], eps=[float("inf")])
        cw_asr = float(margin.success[0, ok[:100]].mean())
        rows.append((tau, float(ok.mean()), white, zero, transfer, cw_asr))
    logging.getLogger(__name__).info("tau, clean, fgsm asr, zero-grad share, transfer asr, cw asr: %s", rows)
    clean = [r[1] for r in rows]
    white = [r[2] for r in rows]
    assert clean[0] == pytest.approx(0.964, abs=0.01)
    assert max(clean) - min(clean) <= 0.01  # measured: 0.964 at every τ
    assert all(b < a for a, b in zip(white, white[1:]))  # measured: 1.000, 0.908, 0.435, 0.138
    assert white[0] >= 0.99 and white[-1] <= 0.25
    assert [r[3] for r in rows] == sorted(r[3] for r in rows)  # measured 0.00, 0.08, 0.54, 0.83: the share of
    assert rows[0][3] == 0.0 and rows[-1][3] >= 0.75  # inputs whose gradient is exactly zero grows with τ
    assert all(r[4] >= 0.98 for r in rows)  # transfer from the base: measured 1.000, 0.997, 0.997, 0.997
    assert all(r[5] >= 0.95 for r in rows)  # CW-L2 at ε = inf: measured 1.00 at every τ


# µ-law (seed 003, eq. 3a) --------------------------------------------------------------------------------
def test_mu_law_formula_by_hand() -> None:
    x = torch.tensor([-1.0, -0.1, -0.01, 0.0, 0.01, 0.1, 0.5, 1.0])
    got = mu_law(x, 255.0)
    want = [math.copysign(math.log(1 + 255 * abs(v)) / math.log(256), v) if v else 0.0 for v in x.tolist()]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)
    assert got[0] == -1 and got[-1] == 1 and got[3] == 0
    assert got[5] == pytest.approx(0.5910, abs=1e-4) and got[4] == pytest.approx(0.2285, abs=1e-4)


def test_mu_law_maps_the_last_layer(cnn, digits) -> None:
    ctx = ctx_for(digits)
    before = snapshot(cnn)
    out = make_defense("mu_law").apply(cnn, ctx)  # µ = 255, the seed's setting, on the last Linear layer
    after = snapshot(out.model)
    w = before["head.2.weight"]
    torch.testing.assert_close(after["head.2.weight"], torch.sign(w) * torch.log1p(255 * w.abs()) / math.log(256))
    assert all(torch.equal(after[k], before[k]) for k in before if k != "head.2.weight")
    assert out.info["mu"] == 255.0 and out.info["layers"] == ["head.2"] and out.info["normalize"] == "none"
    # normalize = "max" keeps the layer's range
    out_max = make_defense("mu_law", normalize="max", mu=100).apply(cnn, ctx)
    got = out_max.model.head[2].weight
    assert float(got.detach().abs().max()) == pytest.approx(float(w.abs().max()), rel=1e-6)
    m = w.abs().max()
    torch.testing.assert_close(got, m * torch.sign(w) * torch.log1p(100 * w.abs() / m) / math.log(101))
    # outside eq. 3a's domain: an error naming the layer and the way out
    big = copy.deepcopy(cnn)
    with torch.no_grad():
        big.head[2].weight.mul_(10)
    with pytest.raises(CompressError, match=r"layer 'head\.2'.*outside eq\. 3a's domain.*normalize = 'max'"):
        make_defense("mu_law").apply(big, ctx)
    # on a hashed twin: F is odd, so mapping the real weights maps every virtual weight exactly
    hashed = compressor("hashed", rate="1/8", epochs=0).apply(cnn, ctx).model
    virtual = hashed.head[2].weight_virtual().detach().clone()
    mapped = make_defense("mu_law").apply(hashed, ctx).model.head[2]
    assert isinstance(mapped, HashedLinear)
    torch.testing.assert_close(mapped.weight_virtual().detach(), mu_law(virtual, 255.0), rtol=0, atol=0)


def test_mu_law_then_quantized_and_its_effect(liu, digits) -> None:
    """Seed 003, Table 1 (MNIST): on an ordinarily trained model the mapping changes little — clean accuracy
    kept, one-step attacks somewhat weaker, PGD about the same. Measured on seed 000's network (360 test
    digits; asr among the correctly classified):

    ==========  =====  ==============  ===============
    model       clean  FGSM ε = 0.1    PGD-20 ε = 0.1
    ==========  =====  ==============  ===============
    base        0.964  0.392           0.432
    +mu         0.967  0.239           0.408
    +mu (Q)     0.953  (3 bits, every layer, after the mapping)
    ==========  =====  ==============  ===============
    """
    ctx, x, y = ctx_for(digits), digits.x_test, digits.y_test
    fgsm, pgd = create_attack("fgsm"), create_attack("pgd", steps=20)
    mapped = make_defense("mu_law").apply(liu, ctx).model
    q = make_defense("mu_law", bits=3).apply(liu, ctx)
    # +mu (Q): mapping, then 3-bit linear quantization of every layer on the named grid
    assert q.info["quantization"]["bits"] == 3 and "7 levels with a zero level" in q.info["quantization"]["grid"]
    for name, module in q.model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            rows = module.weight.detach().reshape(module.weight.shape[0], -1)
            assert max(len(torch.unique(r)) for r in rows) <= 7, name
    expected = compressor("kbit", bits=3).apply(mapped, ctx).model
    assert same(snapshot(q.model), snapshot(expected))
    clean = [acc(m, x, y) for m in (liu, mapped, q.model)]
    one_step, iterative = [], []
    for m in (liu, mapped):
        ok = predict_logits(m, x).argmax(1) == y
        one_step.append(float(fgsm(m, x, y, eps=[0.1]).success[0, ok].mean()))
        iterative.append(float(pgd(m, x, y, eps=[0.1]).success[0, ok].mean()))
    logging.getLogger(__name__).info("mu-law clean %s, fgsm asr %s, pgd asr %s", clean, one_step, iterative)
    assert clean[0] == pytest.approx(0.964, abs=0.01)
    assert abs(clean[1] - clean[0]) <= 0.01 and abs(clean[2] - clean[0]) <= 0.02  # measured 0.967, 0.953
    assert one_step[1] <= one_step[0] - 0.1  # measured 0.392 -> 0.239
    assert abs(iterative[1] - iterative[0]) <= 0.05  # measured 0.432 -> 0.408


# adversarial training ------------------------------------------------------------------------------------
def test_pgd_adversarial_training_raises_robust_accuracy(cnn, digits) -> None:
    """Madry et al. (PGD examples only, ε = 0.2, 5 steps, 3 epochs of fine-tuning at lr 1e-3) and Kurakin et al.
    (λ = 0.5, FGSM ε = 0.2). Robust accuracy under PGD-20 on the 360 test digits, measured:

    ==========  =====  ========  =========  ========
    model       clean  ε = 0.1   ε = 0.15   ε = 0.2
    ==========  =====  ========  =========  ========
    base        0.933  0.553     0.219      0.019
    pgd AT      0.944  0.725     0.497      0.275
    mixed AT    0.950  0.714     0.461      0.206
    ==========  =====  ========  =========  ========
    """
    ctx, x, y = ctx_for(digits), digits.x_test, digits.y_test
    pgd = create_attack("pgd", steps=20)
    eps = [0.1, 0.15, 0.2]

    def measure(model):
        return acc(model, x, y), 1 - pgd(model, x, y, eps=eps).success.mean(1)

    base_clean, base_robust = measure(cnn)
    out = make_defense("adversarial_training", mode="pgd", eps=0.2, epochs=3, lr=1e-3, steps=5).apply(cnn, ctx)
    clean, robust = measure(out.model)
    mixed = make_defense("adversarial_training", mode="mixed", eps=0.2, epochs=3, lr=1e-3).apply(cnn, ctx)
    mixed_clean, mixed_robust = measure(mixed.model)
    logging.getLogger(__name__).info("base %s %s, pgd AT %s %s, mixed AT %s %s", base_clean, base_robust, clean,
                                     robust, mixed_clean, mixed_robust)
    np.testing.assert_allclose(base_robust, [0.553, 0.219, 0.019], atol=0.03)
    assert all(robust - base_robust >= 0.15)  # measured +0.17, +0.28, +0.26
    assert all(mixed_robust - base_robust >= 0.12)  # measured +0.16, +0.24, +0.19
    assert clean >= base_clean - 0.02 and mixed_clean >= base_clean - 0.02  # measured 0.944, 0.950 vs 0.933
    assert out.info["epochs_done"] == 3 and out.info["resumed_from_epoch"] is None
    assert out.info["step_size"] == pytest.approx(2.5 * 0.2 / 5) and out.info["labels"] == "true"
    assert mixed.info["ratio"] == 0.5 and mixed.info["attack"] == "fgsm" and mixed.info["labels"] == "predicted"
    assert [h["epoch"] for h in out.history] == [1, 2, 3] and "train_clean_acc" not in out.history[-1]
    assert {"train_adv_acc", "train_clean_acc"} <= set(mixed.history[-1])


def test_mixed_batches_follow_the_ratio(cnn, digits, monkeypatch) -> None:
    """Seed 002: "with a batch size of 256 and λ = 0.5, 128 adversarial examples and 128 clean examples"."""
    seen: list[int] = []
    real = AdversarialTraining._craft

    def spy(self, model, x, y, gen, eps):
        seen.append(len(x))
        return real(self, model, x, y, gen, eps)

    monkeypatch.setattr(AdversarialTraining, "_craft", spy)
    ctx = VariantContext(digits.x_train[:512], digits.y_train[:512], digits.shape, 10,
                          TrainConfig(batch_size=256), seed=0)
    make_defense("adversarial_training", mode="mixed", ratio=0.5, epochs=1).apply(cnn, ctx)
    assert seen == [128, 128]
    seen.clear()
    make_defense("adversarial_training", mode="mixed", ratio=0.25, epochs=1, attack="pgd", steps=2).apply(cnn, ctx)
    assert seen == [64, 64]
    seen.clear()
    out = make_defense("adversarial_training", mode="mixed", ratio=0.0, epochs=1).apply(cnn, ctx)
    assert seen == [] and "train_adv_acc" not in out.history[0]  # λ = 0: plain fine-tuning


def _quick(epochs: int, **kw):
    return make_defense("adversarial_training", mode="pgd", eps=0.15, epochs=epochs, lr=1e-3, steps=2, **kw)


def test_resumed_training_equals_an_uninterrupted_one(cnn, digits, tmp_path) -> None:
    whole = _quick(3).apply(cnn, ctx_for(digits))
    again = _quick(3).apply(cnn, ctx_for(digits))
    assert same(snapshot(whole.model), snapshot(again.model))  # deterministic given the seed
    # 1 epoch with a workdir, then 3 with the same workdir: continues from epoch 1
    first = _quick(1).apply(cnn, ctx_for(digits, workdir=tmp_path))
    assert first.info["resumed_from_epoch"] is None
    folder = Path(first.info["checkpoints"])
    assert folder.parent == tmp_path and [p.name for p in folder.iterdir()] == ["epoch-0001.pt"]
    resumed = _quick(3).apply(cnn, ctx_for(digits, workdir=tmp_path))
    assert resumed.info["resumed_from_epoch"] == 1 and resumed.info["epochs_done"] == 3
    assert same(snapshot(resumed.model), snapshot(whole.model))
    assert resumed.history == whole.history
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-0002.pt", "epoch-0003.pt"]  # the last two kept
    # everything done already: nothing to train, same result
    done = _quick(3).apply(cnn, ctx_for(digits, workdir=tmp_path))
    assert done.info["resumed_from_epoch"] == 3 and same(snapshot(done.model), snapshot(whole.model))
    # other settings do not pick up these checkpoints
    other = make_defense("adversarial_training", mode="pgd", eps=0.1, epochs=3, lr=1e-3, steps=2).apply(
        cnn, ctx_for(digits, workdir=tmp_path))
    assert other.info["resumed_from_epoch"] is None and Path(other.info["checkpoints"]) != folder


def interrupt_in_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int) -> Callable[[], None]:
    """Make adversarial training raise KeyboardInterrupt (a power cut) as epoch ``epoch`` starts; the undo."""
    real = AdversarialTraining._epoch

    def cut(self, *args):
        if args[-1] == epoch:
            raise KeyboardInterrupt("power cut")
        return real(self, *args)

    monkeypatch.setattr(AdversarialTraining, "_epoch", cut)
    return lambda: monkeypatch.setattr(AdversarialTraining, "_epoch", real)


def test_interrupted_training_resumes_and_skips_a_corrupt_checkpoint(cnn, digits, tmp_path, monkeypatch,
                                                                    caplog) -> None:
    whole = _quick(3).apply(cnn, ctx_for(digits))
    undo = interrupt_in_epoch(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        _quick(3).apply(cnn, ctx_for(digits, workdir=tmp_path))
    undo()
    (folder,) = tmp_path.iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-0001.pt", "epoch-0002.pt"]
    (folder / "epoch-0002.pt").write_bytes(b"not a checkpoint")  # torn by the crash
    with caplog.at_level(logging.WARNING, logger="edgebench.defenses.adversarial_training"):
        resumed = _quick(3).apply(cnn, ctx_for(digits, workdir=tmp_path))
    assert "ignoring unreadable checkpoint" in caplog.text and "epoch-0002.pt" in caplog.text
    assert resumed.info["resumed_from_epoch"] == 1
    assert same(snapshot(resumed.model), snapshot(whole.model)) and resumed.history == whole.history


def test_from_scratch_reinitializes_under_the_seed(cnn, digits) -> None:
    a = _quick(1, from_scratch=True).apply(cnn, ctx_for(digits))
    b = _quick(1, from_scratch=True).apply(cnn, ctx_for(digits))
    tuned = _quick(1).apply(cnn, ctx_for(digits))
    assert same(snapshot(a.model), snapshot(b.model)) and not same(snapshot(a.model), snapshot(tuned.model))
    default_lr = make_defense("adversarial_training", epochs=0, from_scratch=True).apply(cnn, ctx_for(digits))
    assert default_lr.info["lr"] == TRAIN.lr and default_lr.history == []
    assert make_defense("adversarial_training", epochs=0).apply(cnn, ctx_for(digits)).info["lr"] == TRAIN.lr / 10


def test_from_scratch_starts_from_the_plans_model_built_anew(cnn, digits) -> None:
    """With ``ctx.build_base`` (the runner's builder of the plan's model), from_scratch starts from exactly the
    model that builder makes under the seed (hashed's init = "scratch" does the same)."""
    from edgebench.models import create_model

    def build():
        return create_model("digits_cnn", input_shape=digits.shape, num_classes=10, mean=(0.25,), std=(0.5,))

    out = make_defense("adversarial_training", epochs=0, from_scratch=True).apply(cnn, ctx_for(digits,
                                                                                               build_base=build))
    torch.manual_seed(0)
    assert same(snapshot(out.model), snapshot(build()))  # the builder's normalization too (mean 0.25)
    assert not same(snapshot(out.model), snapshot(cnn))


def test_eps_ramp_schedule() -> None:
    at = make_defense("adversarial_training", eps=0.3, eps_ramp_epochs=2)
    assert [at.eps_at(b, 3, 5) for b in range(1, 8)] == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.3])
    assert at.eps_at(3, 3, 1) == pytest.approx(0.3) and at.eps_at(1, 3, 1) == pytest.approx(0.1)  # 1 epoch run
    assert make_defense("adversarial_training", eps=0.3).eps_at(1, 3, 5) == 0.3  # no ramp


def test_eps_ramp_grows_the_budget_and_the_step(cnn, digits, monkeypatch) -> None:
    """Every batch's PGD examples stay within that batch's ramped budget and use the scaled step size."""
    import edgebench.defenses.adversarial_training as at_module

    seen: list[tuple[float, float, float]] = []
    real = at_module.pgd_examples

    def spy(model, x, y, *, eps, steps, alpha, random_start, generator):
        out = real(model, x, y, eps=eps, steps=steps, alpha=alpha, random_start=random_start, generator=generator)
        seen.append((eps, alpha, float((out - x).abs().max())))
        return out

    monkeypatch.setattr(at_module, "pgd_examples", spy)
    ctx = VariantContext(digits.x_train[:512], digits.y_train[:512], digits.shape, 10, TrainConfig(batch_size=256),
                         seed=0)
    out = make_defense("adversarial_training", eps=0.2, steps=2, step_size=0.05, epochs=3, eps_ramp_epochs=2,
                       lr=1e-3).apply(cnn, ctx)
    budgets = [e for e, _, _ in seen]
    assert budgets == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.2, 0.2])  # 2 batches per epoch, ramp over 4
    assert [a for _, a, _ in seen] == pytest.approx([0.0125, 0.025, 0.0375, 0.05, 0.05, 0.05])
    assert all(d <= e + 1e-6 for e, _, d in seen) and seen[0][2] > 0.04  # within, and using, the budget
    assert [h["eps"] for h in out.history] == pytest.approx([0.1, 0.2, 0.2])
    assert out.info["eps_ramp_epochs"] == 2


def test_grid_detection() -> None:
    torch.manual_seed(0)
    assert grid_of(torch.randn(64, 32))[0] is None  # full precision
    s = torch.rand(8, 1) + 0.5
    per_channel = torch.randint(-3, 4, (8, 40)).float() * s
    levels, what = grid_of(per_channel)
    assert levels.shape[0] == 8 and "per output channel" in what
    per_tensor = torch.randint(-3, 4, (8, 40)).float() * 0.1
    levels, what = grid_of(per_tensor)
    assert levels.shape[0] == 1 and len(levels[0]) == 7 and "per tensor" in what
    c = Constrained(torch.ones(8, 40), levels)
    w = per_tensor + 0.04 * torch.randn(8, 40)
    torch.testing.assert_close(c.project(w), torch.round(w / 0.1).clamp(-3, 3) * 0.1)


def test_adversarial_training_on_compressed_twins(cnn, digits) -> None:
    """Quantized then adversarially trained (a 3-bit kbit twin stays on its grid: straight-through), pruned then
    adversarially trained (zeros stay zero), hashed (real weights trained), and adversarially trained then
    quantized."""
    ctx = ctx_for(digits)
    kbit = compressor("kbit", bits=3).apply(cnn, ctx).model
    out = _quick(1).apply(kbit, ctx)
    changed = 0
    for name, module in kbit.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            old = module.weight.detach().reshape(module.weight.shape[0], -1)
            new = out.model.get_submodule(name).weight.detach().reshape(old.shape)
            assert not any(isinstance(m, Constrained) for m in out.model.modules())  # plain modules again
            for o, n in zip(old, new):
                allowed = set(torch.unique(old).tolist()) if "per tensor" in out.info["constrained_layers"][name] \
                    else set(o.tolist())
                assert set(n.tolist()) <= allowed | {0.0}, name
            changed += int((old != new).sum())
    assert changed > 0  # it did train
    assert set(out.info["constrained_layers"]) == {"features.0", "features.2", "head.0", "head.2"}
    # pruned: half of every layer's weights zeroed (what a magnitude-pruned twin is)
    pruned = copy.deepcopy(cnn)
    with torch.no_grad():
        for module in pruned.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                w = module.weight
                w[w.abs() < w.abs().median()] = 0.0
    out = _quick(1).apply(pruned, ctx)
    for name, module in pruned.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            new = out.model.get_submodule(name).weight
            assert torch.equal(new == 0, module.weight == 0), name
            assert not torch.equal(new, module.weight), name
    # hashed: the real weights train, the layer stays hashed
    hashed = compressor("hashed", rate="1/8", epochs=0).apply(cnn, ctx).model
    defense = _quick(1)
    out = defense.apply(hashed, ctx)
    assert isinstance(out.model.head[2], HashedLinear)
    assert not torch.equal(out.model.head[2].w, hashed.head[2].w)
    defense.attach(out, hashed, ctx)
    assert isinstance(out.deploy.head[2], nn.Linear)
    # adversarially trained, then quantized
    then_q = compressor("kbit", bits=3).apply(_quick(1).apply(cnn, ctx).model, ctx).model
    assert all(len(torch.unique(r)) <= 7 for r in then_q.head[2].weight.detach())
    # preserve = "none": the grid is left; "grid+zeros": the zero level frozen too (a pruned then quantized twin)
    free = _quick(1, preserve="none").apply(kbit, ctx).model
    assert len(torch.unique(free.head[2].weight.detach()[0])) > 7
    both = _quick(1, preserve="grid+zeros").apply(kbit, ctx).model
    assert bool((both.head[0].weight[kbit.head[0].weight == 0] == 0).all())


def test_defended_variants_export_to_onnx(cnn, digits, tmp_path) -> None:
    from edgebench.export.onnx import export_onnx, onnx_parity

    ctx = ctx_for(digits)
    x = digits.x_test[:64]
    for name, params in (("gradient_inhibition", {"tau": 0.5}), ("mu_law", {}),
                         ("adversarial_training", {"epochs": 1, "steps": 2, "eps": 0.1})):
        defense = make_defense(name, **params)
        out = defense.apply(cnn, ctx)
        defense.attach(out, cnn, ctx)
        assert out.deploy is None  # a plain module: it deploys itself
        path = export_onnx(out.model, digits.shape, tmp_path / f"{name}.onnx")
        parity = onnx_parity(out.model, path, x, atol=1e-4)
        assert parity["ok"] and parity["top1_agreement"] == 1.0, (name, parity)
        saved = tmp_path / f"{name}.pt"
        defense.save_twin(out.model, saved)
        np.testing.assert_array_equal(predict_logits(defense.load_twin(saved, cnn), x), predict_logits(out.model, x))
