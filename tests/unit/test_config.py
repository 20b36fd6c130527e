"""Plan and target validation: every bad value is one ConfigError naming the file, the key and the
allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebench.config import load_plan
from edgebench.errors import ConfigError, UnknownNameError
from edgebench.targets import load_target

BASE = """
[plan]
name = "t"
[data]
dataset = "digits"
[[models]]
name = "m"
arch = "digits_cnn"
[[attacks]]
name = "fgsm"
eps = [0.1]
[[targets]]
target = "local"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "plan.toml"
    p.write_text(text)
    return p


def test_default_plan_is_valid_and_resolves() -> None:
    plan = load_plan()
    assert plan.name == "default"
    assert plan.data.dataset == "digits"
    assert [a.name for a in plan.attacks] == ["fgsm", "pgd"]
    assert plan.attacks[1].params == {"steps": 20, "random_start": True}
    assert plan.targets[0].backends == ("onnxruntime",)
    quick = load_plan(quick=True)
    assert quick.name == "default-quick" and quick.models[0].train["epochs"] == 10
    assert quick.digest() != plan.digest()


def test_plan_digest_ignores_formatting(tmp_path: Path) -> None:
    a = load_plan(write(tmp_path, BASE))
    b = load_plan(write(tmp_path, BASE.replace("eps = [0.1]", "eps   =   [ 0.1 ]  # same")))
    c = load_plan(write(tmp_path, BASE.replace("eps = [0.1]", "eps = [0.2]")))
    assert a.digest() == b.digest() != c.digest()


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("[data]", "[data]\nbogus = 1"), "data: dataset 'digits' has no parameter 'bogus'"),
        (("[data]", "[plan2]\n[data]"), "plan2: unknown key; allowed keys here:"),
        (('dataset = "digits"', 'dataset = "digitz"'), "Did you mean 'digits'"),
        (('arch = "digits_cnn"', 'arch = "digits_cnnn"'), "models[0].arch"),
        (('name = "fgsm"', 'name = "fgsn"'), "Did you mean 'fgsm'"),
        (("eps = [0.1]", "eps = [-0.1]"), "attacks[0].eps: must be a number or list of numbers >= 0"),
        (("eps = [0.1]", 'eps = "big"'), "attacks[0].eps"),
        (("eps = [0.1]", "eps = [0.1]\nstepz = 3"), "attack 'fgsm' has no parameter 'stepz'"),
        (('target = "local"', 'target = "locall"'), "Did you mean 'local'"),
        (('target = "local"', 'target = "local"\nbackends = ["openvinoo"]'), "unknown backend 'openvinoo'"),
        (('name = "t"', 'name = "t"\nseed = -1'), "plan.seed: must be >= 0"),
        (('arch = "digits_cnn"', 'arch = "digits_cnn"\ntrain = { lr = 0 }'), "models[0].train.lr: must be > 0"),
        (('arch = "digits_cnn"', 'arch = "digits_cnn"\ntrain = { epoch = 3 }'), "models[0].train.epoch: unknown key"),
        (('arch = "digits_cnn"', 'arch = "digits_cnn"\nonnx = "m.onnx"'), "give exactly one of"),
        (('arch = "digits_cnn"', 'arch = "digits_cnn"\nattack_source = "nobody"'), "'nobody' is not a model"),
        (("[data]", "[measure]\nmin_runs = 0\n[data]"), "measure.min_runs: must be >= 1"),
        (("[data]", "[measure]\nrounds = 0\n[data]"), "measure.rounds: must be >= 1"),
        (("[data]", "[measure]\nrounds = 2.5\n[data]"), "measure.rounds"),
        (("[data]", "[measure]\nrounds = 9\nmin_runs = 4\n[data]"), "measure.rounds: 9 rounds need at least one"),
        (("[data]", "[measure]\ncooldown_s = -1\n[data]"), "measure.cooldown_s: must be >= 0"),
        (("[data]", "[measure]\nsettle_s = -0.5\n[data]"), "measure.settle_s: must be >= 0"),
        (("[data]", "[measure]\nsettle_c = 0\n[data]"), "measure.settle_c: must be > 0"),
        (("[data]", "[data]\n[data.x]"), "dataset 'digits' has no parameter 'x'"),
    ],
)
def test_bad_plans_name_file_and_key(tmp_path: Path, edit: tuple[str, str], expected: str) -> None:
    path = write(tmp_path, BASE.replace(*edit, 1))
    with pytest.raises(ConfigError) as info:
        load_plan(path)
    msg = str(info.value)
    assert str(path) in msg
    assert expected in msg
    assert "\n" not in msg


def test_onnx_model_needs_a_surrogate(tmp_path: Path) -> None:
    text = BASE.replace('arch = "digits_cnn"', 'onnx = "m.onnx"')
    with pytest.raises(ConfigError, match="cannot craft white-box attacks; set attack_source"):
        load_plan(write(tmp_path, text))
    text += '\n[[models]]\nname = "s"\narch = "digits_cnn"\n'
    plan = load_plan(write(tmp_path, text.replace('onnx = "m.onnx"', 'onnx = "m.onnx"\nattack_source = "s"')))
    assert plan.models[0].source == "s" and plan.models[1].source == "s"


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_plan(write(tmp_path, "[plan\nname="))
    with pytest.raises(ConfigError, match="plan file not found"):
        load_plan(tmp_path / "nope.toml")


def test_targets_builtin_and_user_defined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = load_target("local")
    assert local.transport == "local" and "onnxruntime" in local.backends
    (tmp_path / "pi.toml").write_text('[target]\nname = "pi"\n[backends.onnxruntime]\nintra_op_num_threads = 4\n')
    monkeypatch.setenv("EDGEBENCH_TARGETS", str(tmp_path))
    pi = load_target("pi")
    assert pi.backends["onnxruntime"]["intra_op_num_threads"] == 4
    with pytest.raises(UnknownNameError, match="Known targets: .*local"):
        load_target("nowhere")
    (tmp_path / "bad.toml").write_text('[target]\nname = "bad"\ntransport = "carrier-pigeon"\n[backends.null]\n')
    with pytest.raises(UnknownNameError, match="bad.toml: target.transport: unknown transport"):
        load_target("bad")
    (tmp_path / "empty.toml").write_text('[target]\nname = "empty"\n')
    with pytest.raises(ConfigError, match="at least one"):
        load_target("empty")


COMPRESS = BASE + """
[[compress]]
method = "filter_pruning"
label = "fp"
ratio = [0.1, 0.5]
steps = 2
[[compress]]
method = "hashed"
rate = ["1/8", 0.015625]
[[compress]]
method = "inq"
schedule = [0.5, 1.0]
"""


def test_compress_entries_expand_sweeps_into_named_variants(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, COMPRESS))
    assert [(c.method, c.variant, c.model) for c in plan.compress] == [
        ("filter_pruning", "fp-0.1", "m"), ("filter_pruning", "fp-0.5", "m"),
        ("hashed", "hashed-1_8", "m"), ("hashed", "hashed-0.015625", "m"), ("inq", "inq", "m")]
    assert plan.compress[1].params == {"ratio": 0.5, "steps": 2}
    assert plan.compress[4].params == {"schedule": [0.5, 1.0]}  # a list parameter is not a sweep
    quick = load_plan(write(tmp_path, COMPRESS + "[quick]\ncompress_epochs = 0\n"), quick=True)
    assert quick.compress[0].params == {"ratio": 0.1, "steps": 2}  # no epochs key: nothing to cap
    assert load_plan(write(tmp_path, COMPRESS.replace("steps = 2", "epochs_per_step = 5") +
                           "[quick]\ncompress_epochs = 1\n"), quick=True).compress[0].params["epochs_per_step"] == 1


def test_variants_applied_on_variants_are_ordered_and_named(tmp_path: Path) -> None:
    """``on`` chains methods: a variant built on another is named ``<on>+<label>`` and comes after it."""
    plan = load_plan(write(tmp_path, BASE + """
[[compress]]
method = "kbit"
bits = [3, 8]
on = ["fp", "base"]
[[compress]]
method = "filter_pruning"
label = "fp"
ratio = 0.5
"""))
    assert [(c.variant, c.on, c.kind) for c in plan.compress] == [
        ("kbit-3", "base", "compress"), ("kbit-8", "base", "compress"), ("fp", "base", "compress"),
        ("fp+kbit-3", "fp", "compress"), ("fp+kbit-8", "fp", "compress")]  # fp+kbit-* after fp
    with pytest.raises(ConfigError, match=r"compress \(variant 'fpp\+kbit'\): on = 'fpp' is not a variant of "
                                          r"model 'm'; allowed: 'base' or one of \['kbit'\]"):
        load_plan(write(tmp_path, BASE + '[[compress]]\nmethod = "kbit"\nbits = 4\non = ["base", "fpp"]\n'))
    with pytest.raises(ConfigError, match=r"compress\[0\]\.on: give 'base' or variant names"):
        load_plan(write(tmp_path, BASE + '[[compress]]\nmethod = "kbit"\nbits = 4\non = []\n'))


@pytest.mark.parametrize(("entry", "expected"), [
    ('method = "prune"', r"compress\[0\]\.method: unknown compression method 'prune'"),
    ('method = "filter_pruning"\nratio = 1.5', r"compress\[0\] \(variant 'filter_pruning'\).*ratio must be a number "
                                                r"in \(0, 1\), got 1.5"),
    ('method = "filter_pruning"\nratio = [0.5, 0.0]', r"variant 'filter_pruning-0'.*ratio must be"),
    ('method = "kbit"\nbits = 12', r"variant 'kbit'.*bits must be an integer in 1..8, got 12"),
    ('method = "int8"\nengine = "tensorrt"', r"variant 'int8'.*engine 'tensorrt' is not one of \['nncf', 'onnx"),
    ('method = "kbit"\nbits = 4\nbitz = 2', r"compression method 'kbit' has no parameter 'bitz' \(did you mean 'bits'"),
    ('method = "kbit"', r"needs parameter\(s\) 'bits'"),
    ('method = "kbit"\nbits = 4\nmodel = "other"', r"compress\[0\]\.model: 'other' is not a model of this plan"),
    ('method = "kbit"\nbits = 4\nlabel = "a/b"', r"compress\[0\]\.label: 'a/b': use letters"),
    ('method = "kbit"\nbits = 4\nlabel = "_a"', r"compress\[0\]\.label: '_a': use letters.*not '_' at either end"),
    ('method = "kbit"\nbits = [4, 4]', r"variant 'kbit-4' of model 'm' is defined twice"),
])
def test_bad_compress_entries(tmp_path: Path, entry: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as info:
        load_plan(write(tmp_path, BASE + "[[compress]]\n" + entry + "\n"))
    assert str(info.value).startswith(str(tmp_path / "plan.toml"))


def test_attack_victims_select_variants(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, COMPRESS.replace('eps = [0.1]', 'eps = [0.1]\nvictims = ["base", "hashed-*"]')))
    fgsm = plan.attacks[0]
    assert [v for v in ("base", "fp-0.1", "hashed-1_8", "hashed-0.015625", "inq") if fgsm.attacks_unit("m", v)] == [
        "base", "hashed-1_8", "hashed-0.015625"]
    from edgebench.runner.graph import sources_for
    from edgebench.runner.pipeline import Pipeline
    from edgebench.runner.units import Unit

    pipe = Pipeline(plan, out_dir=tmp_path)
    assert sources_for(plan, Unit("m", "fp-0.1"), fgsm) == []
    assert sources_for(plan, Unit("m", "hashed-1_8"), fgsm) == [Unit("m", "hashed-1_8")]
    assert not [s.name for s in pipe.stages() if s.name.startswith("craft/m/fp")]
    with pytest.raises(ConfigError, match=r"attacks\[0\]\.victims: 'hashd-\*' matches no variant"):
        load_plan(write(tmp_path, COMPRESS.replace('eps = [0.1]', 'eps = [0.1]\nvictims = "hashd-*"')))


def test_attack_victims_qualified_by_model(tmp_path: Path) -> None:
    """``model/variant`` victims pick one model's variants: a surrogate in the plan is not attacked as a victim
    too (seed 003's plan attacks the base of every model with ``victims = ["base", ...]``, its substitutes
    included)."""
    two = COMPRESS.replace("[[attacks]]", '[[models]]\nname = "sub"\narch = "digits_cnn"\n[[attacks]]', 1)
    plan = load_plan(write(tmp_path, two.replace('eps = [0.1]', 'eps = [0.1]\nvictims = ["m/base", "m/hashed-*"]')))
    fgsm = plan.attacks[0]
    assert [u for u in ("m/base", "m/fp-0.1", "m/hashed-1_8", "sub/base") if fgsm.attacks_unit(*u.split("/"))] == [
        "m/base", "m/hashed-1_8"]
    from edgebench.runner.pipeline import Pipeline

    crafted = {s.name for s in Pipeline(plan, out_dir=tmp_path).stages() if s.name.startswith("craft/")}
    assert crafted == {"craft/m/fgsm", "craft/m/hashed-1_8/fgsm", "craft/m/hashed-0.015625/fgsm"}
    # unqualified, the same names match every model's variant of that name: the substitute's base too
    plan = load_plan(write(tmp_path, two.replace('eps = [0.1]', 'eps = [0.1]\nvictims = ["base"]')))
    assert {s.name for s in Pipeline(plan, out_dir=tmp_path).stages() if s.name.startswith("craft/")} == {
        "craft/m/fgsm", "craft/sub/fgsm"}
    with pytest.raises(ConfigError, match=r"attacks\[0\]\.victims: 'subs/\*' matches no model/variant of this "
                                          r"plan; variants are \['base', .*model/variant names such as "
                                          r"\['m/base', "):
        load_plan(write(tmp_path, two.replace('eps = [0.1]', 'eps = [0.1]\nvictims = ["base", "subs/*"]')))


@pytest.mark.parametrize("plan", sorted((Path(__file__).resolve().parents[2] / "plans").glob("*.toml")),
                         ids=lambda p: p.stem)
def test_every_shipped_plan_loads_at_both_sizes(plan: Path) -> None:
    """The plans in plans/ (the seeds' reproductions) stay valid as the code changes: full and quick."""
    full, quick = load_plan(str(plan)), load_plan(str(plan), quick=True)
    assert full.models and quick.name == f"{full.name}-quick" and quick.quick


def test_measure_defaults_are_the_agents_protocols(tmp_path: Path) -> None:
    """One source of truth for the latency and energy protocol defaults (the agent's dataclasses), and the
    numbers in effect stay: a plan without [measure] gets 20 warm-up and >= 200 timed runs of >= 1 s, as
    before; the default plan sets its own (50, 500, 2 s)."""
    from edgebench.agent.protocol import EnergyProtocol, LatencyProtocol

    m = load_plan(write(tmp_path, BASE)).measure
    lat, en = LatencyProtocol(), EnergyProtocol()
    assert (m.warmup, m.min_runs, m.min_duration_s, m.max_runs) == (20, 200, 1.0, 1_000_000)
    assert (m.warmup, m.min_runs, m.min_duration_s, m.max_runs) == (lat.warmup, lat.min_runs, lat.min_duration_s,
                                                                    lat.max_runs)
    assert (m.energy_idle_s, m.energy_min_window_s, m.energy_windows, m.energy_min_samples) == (5.0, 10.0, 3, 10)
    assert (m.energy_idle_s, m.energy_min_window_s, m.energy_windows, m.energy_min_samples) == (
        en.idle_s, en.min_window_s, en.windows, en.min_samples)
    assert load_target("local").power["rate_hz"] == en.rate_hz == 10.0
    default = load_plan().measure
    assert (default.warmup, default.min_runs, default.min_duration_s) == (50, 500, 2.0)
