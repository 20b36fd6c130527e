"""The query-based attacks of :mod:`edgebench.blackbox` on real models: a 64-64-10 MLP trained 20 epochs (seed 0)
on scikit-learn's 8x8 digits (test accuracy ~0.94), through its torch forward and through an ONNX Runtime
session of its exported file.

Every predict goes through :class:`CountingPredict`, which counts the rows it is sent and the size of each call,
so the queries the attacks report are checked against the queries they made. The attack-specific contract
(budget per norm, determinism, model state, passes, targets, errors) also runs in test_attack_contract.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgebench.attacks import create_attack
from edgebench.blackbox import QUERY_ATTACKS, QueryResult, run_query_attack
from edgebench.errors import AttackError, ConfigError, UnknownNameError
from tests.fixtures.imports import assert_fresh_imports_clean
from tests.fixtures.models import dataset, trained

N = 100


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


class CountingPredict:
    """A predict function that counts what it is sent: ``rows`` in all and the size of every call."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.rows = 0
        self.sizes: list[int] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
        self.rows += len(x)
        self.sizes.append(len(x))
        return self.inner(x)


@pytest.fixture(scope="module")
def setup() -> tuple[nn.Module, np.ndarray, np.ndarray]:
    ds = dataset("digits")
    model = trained("mlp64", epochs=20, factory=_mlp)
    return model, ds.x_test[:N], ds.y_test[:N]


def torch_predict(model: nn.Module):
    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()
    return predict


@pytest.fixture(scope="module")
def ort_predict(setup, tmp_path_factory: pytest.TempPathFactory):
    from edgebench.export.onnx import export_onnx
    from edgebench.runtime import create_backend

    model, _, _ = setup
    path = export_onnx(model, (1, 8, 8), tmp_path_factory.mktemp("bb") / "mlp.onnx")
    backend = create_backend("onnxruntime", intra_op_num_threads=1, inter_op_num_threads=1)
    backend.load(Path(path))
    return backend.predict


def _accuracy(predict, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(predict(x).argmax(1) == y))


def _norms(res: QueryResult, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    delta = (res.x_adv - x[None]).reshape(len(res.eps), len(x), -1).astype(np.float64)
    return np.abs(delta).max(2), np.sqrt((delta ** 2).sum(2))


# ------------------------------------------------------------------------------------------------ Square


@pytest.mark.parametrize(("norm", "eps"), [("linf", (0.0, 0.1, 0.2)), ("l2", (0.0, 0.5, 1.0))])
def test_square_lowers_accuracy_within_the_budget_and_counts_every_query(setup, norm, eps) -> None:
    model, x, y = setup
    predict = CountingPredict(torch_predict(model))
    res = run_query_attack("square", {"norm": norm, "max_queries": 300, "seed": 0}, predict, x, y, eps,
                           batch_size=32)
    clean = _accuracy(torch_predict(model), x, y)
    robust = 1.0 - res.success.mean(1)
    assert robust[0] == pytest.approx(clean) and clean > 0.9
    assert robust[2] < clean - 0.3 and robust[2] <= robust[1] <= clean, robust
    linf, l2 = _norms(res, x)
    assert (linf if norm == "linf" else l2).max(1) == pytest.approx(eps, abs=1e-5)  # the budget is used, not passed
    assert res.x_adv.min() >= 0.0 and res.x_adv.max() <= 1.0
    # the top-1 the attack reports is the model's on the adversarial input
    for k in range(len(eps)):
        np.testing.assert_array_equal(res.pred[k], torch_predict(model)(res.x_adv[k]).argmax(1))
    np.testing.assert_array_equal(res.success, res.pred != y[None])
    # queries: exactly those made (the clean query is made once and counted at every ε); one per misclassified
    # sample; the budget caps every sample, and the samples the attack does not break spend all of it
    assert predict.rows == res.queries.sum() - (len(eps) - 1) * N and max(predict.sizes) <= 32
    assert np.all(res.queries[0] == 1) and res.max_queries == 300
    wrong = torch_predict(model)(x).argmax(1) != y
    assert np.all(res.queries[:, wrong] == 1)
    assert res.queries.max() == 300
    np.testing.assert_array_equal(res.queries[1:][~res.success[1:]], 300)
    assert np.all(res.queries[1:][res.success[1:] & ~wrong[None]] < 300)


def test_square_is_reproducible_per_seed(setup) -> None:
    model, x, y = setup
    run = lambda seed: run_query_attack("square", {"max_queries": 100, "seed": seed}, torch_predict(model),  # noqa: E731
                                        x[:40], y[:40], [0.1])
    a, b, c = run(0), run(0), run(1)
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    np.testing.assert_array_equal(a.queries, b.queries)
    assert not np.array_equal(a.x_adv, c.x_adv)


def test_square_targeted_reaches_the_target(setup) -> None:
    model, x, y = setup
    target = (y + 1) % 10
    res = run_query_attack("square", {"max_queries": 300}, torch_predict(model), x, y, [0.0, 0.2], target=target)
    np.testing.assert_array_equal(res.success, res.pred == target[None])
    assert res.success[0].sum() == 0 and res.success[1].mean() > 0.3


def test_square_through_onnxruntime_matches_torch(setup, ort_predict) -> None:
    """The same seed through the exported file's ONNX Runtime session and through the torch model: the same
    adversarial inputs and queries. The logits agree to ~1e-6, not bit for bit; a loss comparison closer than
    that could take another branch, so up to 2 % of the samples may differ (none did when this was written)."""
    model, x, y = setup
    params = {"norm": "linf", "max_queries": 200, "seed": 3}
    ours = run_query_attack("square", params, ort_predict, x, y, [0.05, 0.1])
    theirs = run_query_attack("square", params, torch_predict(model), x, y, [0.05, 0.1])
    same = np.all(np.isclose(ours.x_adv, theirs.x_adv, atol=1e-6).reshape(2, N, -1), axis=2)
    assert same.mean() >= 0.98
    np.testing.assert_array_equal(ours.queries[same], theirs.queries[same])
    assert abs(ours.success.mean() - theirs.success.mean()) <= 0.02


# ------------------------------------------------------------------------------------------------ HopSkipJump

INF = float("inf")
HSJ = {"max_queries": 1000, "max_iter": 6, "seed": 0}
HSJ_EPS = {"l2": (0.0, 0.5, 1.5, INF), "linf": (0.0, 0.05, 0.15, INF)}


@pytest.fixture(scope="module")
def hsj_runs(setup):
    """HopSkipJump L2 and L∞ on 60 samples through a counting torch predict: ``{norm: (result, predict)}``."""
    model, x, y = setup
    out = {}
    for norm in ("l2", "linf"):
        predict = CountingPredict(torch_predict(model))
        out[norm] = run_query_attack("hopskipjump", {**HSJ, "norm": norm}, predict, x[:60], y[:60], HSJ_EPS[norm],
                                     batch_size=64), predict
    return out


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_hopskipjump_lowers_accuracy_within_the_budget_and_counts_every_query(setup, hsj_runs, norm) -> None:
    model, x, y = setup
    x, y = x[:60], y[:60]
    res, predict = hsj_runs[norm]
    eps = HSJ_EPS[norm]
    robust = 1.0 - res.success.mean(1)
    assert robust[0] > 0.9 and robust[-1] == 0.0, robust  # unbounded, every sample is fooled
    assert robust[2] < robust[0] - 0.4 and robust[2] <= robust[1] <= robust[0], robust
    linf, l2 = _norms(res, x)
    assert np.all((linf if norm == "linf" else l2)[1:3].max(1) <= np.array(eps[1:3]) + 1e-5)
    assert res.x_adv.min() >= 0.0 and res.x_adv.max() <= 1.0
    for k in range(len(eps)):
        np.testing.assert_array_equal(res.pred[k], torch_predict(model)(res.x_adv[k]).argmax(1))
    # a finite ε is the unbounded point projected onto the ball: where it is inside, the very same point
    inside = (linf if norm == "linf" else l2)[-1] <= eps[1]
    np.testing.assert_array_equal(res.x_adv[1][inside], res.x_adv[-1][inside])
    # queries: the run once, then one re-query per moved sample at each ε > 0; the budget holds
    moved = np.any((res.x_adv[-1] != x).reshape(60, -1), axis=1)
    assert np.all(res.queries[0] == 1) and np.all(res.queries[1:] == res.queries[1])
    assert predict.rows == res.queries[1].sum() + 2 * moved.sum() and max(predict.sizes) <= 64
    assert res.queries.max() <= HSJ["max_queries"] and res.queries[1][moved].min() > 100


def test_hopskipjump_is_reproducible_per_seed_and_respects_a_small_budget(setup) -> None:
    model, x, y = setup
    run = lambda seed, budget: run_query_attack(  # noqa: E731
        "hopskipjump", {"max_queries": budget, "max_iter": 3, "seed": seed}, torch_predict(model), x[:20], y[:20],
        [1.0])
    a, b, c = run(0, 400), run(0, 400), run(1, 400)
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    np.testing.assert_array_equal(a.queries, b.queries)
    assert not np.array_equal(a.x_adv, c.x_adv)
    # 150 queries: the init and first boundary search (~22), one gradient estimate (100), then the step searches
    # until the budget ends; a budget too small for the next estimate (50) stops after the init
    for budget, least in ((150, 120), (50, 15)):
        small = run(0, budget)
        assert least <= small.queries.max() <= budget, (budget, small.queries.max())


def test_hopskipjump_targeted(setup) -> None:
    model, x, y = setup
    target = (y[:30] + 1) % 10
    res = run_query_attack("hopskipjump", HSJ, torch_predict(model), x[:30], y[:30], [0.0, INF], target=target)
    np.testing.assert_array_equal(res.success, res.pred == target[None])
    assert res.success[0].sum() == 0 and res.success[1].mean() > 0.2


def test_hopskipjump_through_onnxruntime_is_close_to_torch(setup, ort_predict, hsj_runs) -> None:
    """The same seed through ONNX Runtime: decisions agree except on probes within ~1e-6 of the boundary, which
    the binary searches do visit (they stop θ = 1/512 from it), and one different decision changes the random
    draws of every later step, so the runs are compared by their figures: robust accuracy within 5 points at
    each ε (3 of 60 samples), the median L2 distance found within 10 %."""
    _, x, y = setup
    res, _ = hsj_runs["l2"]
    ours = run_query_attack("hopskipjump", {**HSJ, "norm": "l2"}, ort_predict, x[:60], y[:60], HSJ_EPS["l2"],
                            batch_size=64)
    assert np.all(np.abs(ours.success.mean(1) - res.success.mean(1)) <= 0.05)
    _, l2_ours = _norms(ours, x[:60])
    _, l2_torch = _norms(res, x[:60])
    assert np.median(l2_ours[-1]) == pytest.approx(np.median(l2_torch[-1]), rel=0.1)


def test_host_entry_runs_on_a_torch_model_and_on_predict(setup) -> None:
    model, x, y = setup
    atk = create_attack("square", norm="l2", max_queries=60, seed=0)
    assert atk.query_based and not atk.needs_gradient and atk.norm == "l2"
    assert repr(atk) == "Square(loss=None, max_queries=60, norm='l2', p_init=0.1, seed=0)"
    res = atk(model, x[:20], y[:20], eps=[0.0, 1.0])
    direct = atk.on_predict(torch_predict(model), x[:20], y[:20], [0.0, 1.0])
    np.testing.assert_array_equal(res.x_adv, direct.x_adv)
    np.testing.assert_array_equal(res.queries, direct.queries)
    assert res.norm == "l2" and res.l2.max() <= 1.0 + 1e-5
    assert res.passes.forward >= res.queries.max() and res.passes.backward == 0


def test_bad_parameters_and_inputs_are_one_line_errors(setup) -> None:
    model, x, y = setup
    predict = torch_predict(model)
    for params, match in (({"norm": "l1"}, "norm must be 'linf' or 'l2'"),
                          ({"max_queries": 1}, "max_queries must be an integer >= 2"),
                          ({"p_init": 1.5}, "p_init must be a number in"),
                          ({"loss": "hinge"}, "loss must be"),
                          ({"steps": 3}, "has no parameter 'steps'")):
        with pytest.raises(ConfigError, match=f"attack 'square'.*{match}"):
            run_query_attack("square", params, predict, x, y, [0.1])
        with pytest.raises(ConfigError, match=match):
            create_attack("square", **params)
    with pytest.raises(UnknownNameError, match="unknown query attack 'sqare'.*Did you mean 'square'"):
        run_query_attack("sqare", {}, predict, x, y, [0.1])
    with pytest.raises(AttackError, match="attack 'square'.*lie in \\[0, 1\\]"):
        run_query_attack("square", {}, predict, x * 2, y, [0.1])
    with pytest.raises(AttackError, match="attack 'square'.*inf"):
        run_query_attack("square", {}, predict, x, y, [float("inf")])
    with pytest.raises(AttackError, match="attack 'square'.*images"):
        run_query_attack("square", {}, lambda b: predict(b.reshape(-1, 1, 8, 8)), x.reshape(N, 64), y, [0.1])
    with pytest.raises(AttackError, match="predict must return scores of shape"):
        run_query_attack("square", {}, lambda b: predict(b)[:, 0], x, y, [0.1])


def test_registry_and_the_package_import_without_torch() -> None:
    assert QUERY_ATTACKS.names() == ["hopskipjump", "square"]
    assert_fresh_imports_clean("from edgebench.blackbox import QUERY_ATTACKS, run_query_attack\n"
                               "assert QUERY_ATTACKS.names() == ['hopskipjump', 'square']\n")
