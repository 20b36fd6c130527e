"""``[budget]`` and ``[search]`` of a search plan (:mod:`edgebench.search.space`): every bad entry is one line naming
its key (exit 2 from ``edgebench search`` and ``edgebench run``); a trial's sampled chain becomes ordinary plan
variants named by their content; the front, the chosen configuration, the hypervolume and chosen.toml's writer."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from edgebench.cli import main
from edgebench.config import load_plan
from edgebench.metrics.pareto import hypervolume_2d, nondominated
from edgebench.search.chosen import chosen_plan, toml_text
from edgebench.search.front import chosen, front
from edgebench.search.space import parse_search
from edgebench.search.trial import chain_specs, suggest, variant_name

PLAN = """
data = { dataset = "digits" }
models = [{ name = "cnn", arch = "digits_cnn" }]
attacks = [{ name = "fgsm", eps = [0.05, 0.1, 0.2] }]
targets = [{ target = "local", backends = ["onnxruntime"] }]
[budget]
size_mb = 0.02
[search]
trials = 3
[search.compress]
kbit = { bits = [2, 4, 8] }
magnitude_pruning = { ratio = { low = 0.3, high = 0.9, step = 0.1 } }
[search.defend]
mu_law = { mu = { low = 10.0, high = 255.0, log = true } }
inq_like = 1
"""


def plan_text(**edits: str) -> str:
    """PLAN with ``inq_like = 1`` dropped and the edits applied (line -> replacement)."""
    text = PLAN.replace("inq_like = 1\n", "")
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


BAD = {
    "budget-key": ({"size_mb = 0.02": "latency = 1.0"}, "budget.latency: unknown key"),
    "budget-value": ({"size_mb = 0.02": "p50_ms = -1.0"}, "budget.p50_ms: must be > 0"),
    "method": ({"kbit = {": "kbits = {"}, "search.compress.kbits"),
    "parameter": ({"bits = [2, 4, 8]": "bitz = [2, 4, 8]"}, "has no parameter 'bitz'"),
    "choice": ({"bits = [2, 4, 8]": "bits = [2, 12]"}, "search.compress.kbit.bits: "),
    "range": ({"low = 0.3, high = 0.9": "low = 0.9, high = 0.3"}, "search.compress.magnitude_pruning.ratio.high"),
    "range-end": ({"low = 0.3, high = 0.9": "low = 0.3, high = 1.5"}, "search.compress.magnitude_pruning.ratio"),
    "objective": ({"trials = 3": 'objectives = ["robust", "p50_ms"]'}, "search.objectives: 'robust'"),
    "sampler": ({"trials = 3": 'sampler = "cmaes"'}, "search.sampler: 'cmaes' is not one of"),
    "order": ({"trials = 3": 'order = "compress-first"'}, "search.order: "),
    "eps": ({"trials = 3": "eps = 0.3"}, "search.eps: 0.3 is not in the attacks' ε grid"),
    "unknown": ({"trials = 3": "trails = 3"}, "search.trails: unknown key"),
    "trials": ({"trials = 3": "trials = 0"}, "search.trials: must be >= 1"),
    "conflict": ({"mu_law = {": 'adversarial_training = { mode = "pgd", ratio = [0.5, 1.0] }\nmu_law = {'},
                 "search.defend.adversarial_training.ratio"),
    "empty": ({'kbit = { bits = [2, 4, 8] }\n': "", "magnitude_pruning = { ratio = { low = 0.3, high = 0.9, "
               "step = 0.1 } }\n": "", "mu_law = { mu = { low = 10.0, high = 255.0, log = true } }\n": ""},
              "search.compress: the space is empty"),
    "not-a-table": ({"kbit = { bits = [2, 4, 8] }": "kbit = 4"}, "search.compress.kbit: give the method's"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_entry_is_one_line_naming_its_key(case: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    edits, expected = BAD[case]
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_text(**edits))
    for cmd in (["search", str(plan), "--workers", "0"], ["run", str(plan), "--dry-run"]):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"edgebench: {plan}: ") and expected in err, (cmd, err)


def test_without_optuna_search_says_how_to_install(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_text())
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    assert main(["search", str(plan), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "edgebench: edgebench search needs Optuna: pip install 'edgebench[search]'\n"


def test_the_space_parses_and_a_sampled_chain_is_ordinary_variants(tmp_path: Path) -> None:
    import optuna

    path = tmp_path / "plan.toml"
    path.write_text(plan_text(**{"trials = 3": 'trials = 3\norder = ["defend-compress", "compress-defend"]'}))
    plan = load_plan(path)
    space = parse_search(tomllib.loads(path.read_text()), plan)
    assert space is not None and space.eps == 0.1 and space.budget == {"size_mb": 0.02}
    assert space.gates() == {"max_stored_mb": 0.02, "units": "all"} and space.directions() == [
        "maximize", "minimize", "minimize"]
    drawn = {"compress.kbit.bits": 4, "compress.magnitude_pruning.ratio": 0.5, "defend.mu_law.mu": 50.0}
    trial = optuna.trial.FixedTrial({"order": "compress-defend", "compress": "kbit", "defend": "mu_law", **drawn})
    chain = suggest(trial, space)
    assert variant_name(chain) == "kbit-bits4+mu_law-mu50"
    specs = chain_specs(chain, "cnn")
    assert [(s.kind, s.method, s.variant, s.on, s.params) for s in specs] == [
        ("compress", "kbit", "kbit-bits4", "base", {"bits": 4}),
        ("defend", "mu_law", "kbit-bits4+mu_law-mu50", "kbit-bits4", {"mu": 50.0})]
    none = optuna.trial.FixedTrial({"order": "defend-compress", "compress": "none", "defend": "none", **drawn})
    assert suggest(none, space) == [] and variant_name([]) == "base"
    # chosen.toml: the plan without [search], [budget] or grid, the chain as its variants; TOML that reads back
    doc = chosen_plan(tomllib.loads(path.read_text()), chain, "cnn", "picked")
    assert tomllib.loads(toml_text(doc, "a header\nof two lines")) == doc
    again = tmp_path / "chosen.toml"
    again.write_text(toml_text(doc))
    assert [(c.variant, c.on) for c in load_plan(again).compress] == [("kbit-bits4", "base"),
                                                                      ("kbit-bits4+mu_law-mu50", "kbit-bits4")]


def _row(n: int, acc: float, p50: float, size: float, feasible: bool = True, state: str = "COMPLETE") -> dict:
    return {"number": n, "state": state, "feasible": feasible, "variant": f"v{n}",
            "values": {"robust_acc": acc, "p50_ms": p50, "size_mb": size}}


def test_front_and_chosen() -> None:
    objectives, directions = ["robust_acc", "p50_ms", "size_mb"], ["maximize", "minimize", "minimize"]
    rows = [_row(0, 0.5, 1.0, 0.01), _row(1, 0.6, 2.0, 0.01), _row(2, 0.4, 2.0, 0.02),  # 2: dominated by 0
            _row(3, 0.9, 0.5, 0.005, feasible=False), _row(4, 0.9, 0.5, 0.005, state="FAIL"),
            _row(5, 0.6, 2.0, 0.01)]  # a repeat of 1: on the front once
    assert [r["number"] for r in front(rows, objectives, directions)] == [0, 1]
    assert chosen(rows, objectives, directions)["number"] == 1  # the best robust accuracy within the budget
    assert chosen([rows[3]], objectives, directions) is None
    assert nondominated([(0.5, 1.0), (0.5, 1.0), (0.6, 2.0), (0.4, 3.0)], [True, False]) == [0, 2]


def test_hypervolume_2d() -> None:
    assert hypervolume_2d([], ref=(0.0, 1.0)) == 0.0
    assert hypervolume_2d([(0.5, 0.5)], ref=(0.0, 1.0)) == pytest.approx(0.25)
    assert hypervolume_2d([(0.5, 0.5), (0.4, 0.6)], ref=(0.0, 1.0)) == pytest.approx(0.25)  # a dominated point
    assert hypervolume_2d([(0.5, 0.5), (1.0, 0.8), (0.2, 1.5)], ref=(0.0, 1.0)) == pytest.approx(
        0.25 + 1.0 * 0.2 - 0.5 * 0.2)  # the overlap counted once; a point outside the reference adds nothing


def test_a_trial_left_running_by_a_killed_process_fails_and_is_asked_again(tmp_path: Path) -> None:
    optuna = pytest.importorskip("optuna")
    from edgebench.search.study import _resume, _retried

    storage = f"sqlite:///{tmp_path / 'search.db'}"
    first = optuna.create_study(study_name="search", storage=storage, directions=["maximize"])
    first.tell(first.ask({"bits": optuna.distributions.IntDistribution(2, 8)}), [0.5])
    running = first.ask({"bits": optuna.distributions.IntDistribution(2, 8)})  # the process dies here
    running.set_user_attr("variant", "kbit-x")
    again = optuna.load_study(study_name="search", storage=storage)  # the next process
    assert _resume(optuna, again) == [(1, "kbit-x")]
    states = [t.state.name for t in again.get_trials(deepcopy=False)]
    assert states == ["COMPLETE", "FAIL", "WAITING"] and _resume(optuna, again) == []
    trials = again.get_trials(deepcopy=False)
    assert _retried(trials) == {1} and trials[2].params == {} and trials[2].user_attrs == {"retry_of": 1}
    retry = again.ask({"bits": optuna.distributions.IntDistribution(2, 8)})
    assert retry.number == 2 and retry.params == {"bits": running.params["bits"]}
