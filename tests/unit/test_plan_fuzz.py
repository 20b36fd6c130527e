"""A malformed or hostile plan, fuzzed with hypothesis: whatever the plan file holds, loading it (and expanding
it into stages) either gives a :class:`~edgebench.config.Plan` or raises an
:class:`~edgebench.errors.EdgebenchError` whose message is one line naming the file — never another exception,
never a traceback.

Three generators: (a) TOML documents built from the real plan keys with plausible, wrong-typed and hostile values
(NaN, huge integers, dates, control characters, paths to unreadable target files), (b) structural mutations of
the shipped plans (a key deleted, a value of another type, an unknown key, an entry duplicated) and (c) byte-level
damage of the shipped plans' text (garbage bytes, truncation, lines dropped or repeated).

``EDGEBENCH_FUZZ_EXAMPLES=2000`` runs a deeper, randomized search; by default the examples are derandomized (the
same on every run) so that the suite is stable.
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
import os
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgebench.config import Plan, load_plan
from edgebench.errors import EdgebenchError

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted([REPO / "edgebench" / "plans" / "default.toml", *(REPO / "plans").glob("*.toml")])

_DEEP = int(os.environ.get("EDGEBENCH_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_DEEP or 150, deadline=None, database=None, derandomize=not _DEEP,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])


# a TOML writer for the documents the strategies build (tomllib only reads) ------------------------------------
def _toml_str(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(v: Any) -> str:
    """``v`` as an inline TOML value (tables inline, so a whole document is ``key = value`` lines)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, (dt.date, dt.time)):  # datetime is a date
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_str(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def toml_document(doc: dict[str, Any]) -> str:
    return "".join(f"{_toml_str(k)} = {toml_value(v)}\n" for k, v in doc.items())


# what the strategies draw from ------------------------------------------------------------------------------
def _tomlable(v: Any) -> bool:
    if isinstance(v, (bool, int, float, str)):
        return not isinstance(v, float) or math.isfinite(v)
    return isinstance(v, (list, tuple)) and all(_tomlable(x) for x in v)


@cache
def _names() -> dict[str, Any]:
    """Registered names, each entry's parameter names, and every default value seen per parameter name (import
    time: the registries import torch, so not at collection)."""
    from edgebench.attacks import ATTACKS
    from edgebench.compress import COMPRESSORS
    from edgebench.data import DATASETS
    from edgebench.defenses import DEFENSES
    from edgebench.models import MODELS
    from edgebench.runtime import BACKENDS
    from edgebench.targets import available_targets

    defaults: dict[str, list[Any]] = {}

    def params(reg: Any) -> dict[str, list[str]]:
        out = {}
        for name, obj in reg.items():
            sig = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
            ps = [p for p in sig.parameters.values() if p.name not in ("self", "args", "kwargs")]
            out[name] = [p.name for p in ps]
            for p in ps:
                if p.default is not inspect.Parameter.empty and _tomlable(p.default):
                    v = list(p.default) if isinstance(p.default, tuple) else p.default
                    if v not in defaults.setdefault(p.name, []):
                        defaults[p.name].append(v)
        return out

    return {"datasets": DATASETS.names(), "archs": MODELS.names(), "backends": BACKENDS.names(),
            "targets": list(available_targets()), "attack": params(ATTACKS), "compress": params(COMPRESSORS),
            "defend": params(DEFENSES), "dataset": params(DATASETS), "defaults": defaults}


PLAN_KEYS = ["name", "seed"]
DATA_KEYS = ["n_train", "n_test", "seed"]
MODEL_KEYS = ["params", "train", "attack_source", "checkpoint"]
TRAIN_KEYS = ["epochs", "batch_size", "lr", "weight_decay", "optimizer"]
VARIANT_KEYS = ["label", "model", "on"]
ATTACK_KEYS = ["label", "eps", "n", "batch_size", "threat", "surrogate", "min_eps", "targeted", "round_8bit",
               "victims"]
MEASURE_KEYS = ["batch_size", "warmup", "min_runs", "min_duration_s", "max_runs", "parity_atol", "parity_n",
                "energy_idle_s", "energy_min_window_s", "energy_windows", "energy_min_samples"]
QUICK_KEYS = ["n_train", "n_test", "epochs", "attack_n", "compress_epochs"]
REFERENCE_KEYS = ["model", "variant", "attack", "eps", "source", "note"]
TOP_KEYS = ["plan", "data", "models", "compress", "defend", "export", "attacks", "targets", "measure", "quick",
            "reference"]
MODEL_NAMES = ["m", "s", "cnn"]
UNIT_NAMES = [*MODEL_NAMES, "base", "kbit-3", "q", "m/q", "m/kbit-3", "*", "q*", "x"]
HOSTILE = ["", " ", "../../etc/passwd", "/etc/passwd", "a\x00b", "$(touch pwned)", "; rm -rf ~", "`id`", "é" * 3,
           "\u202e", "a\nb", "x" * 300, "nan", "inf", "-1", "0", "true", "1/8", "local.toml", "mypkg.mod:build"]


@cache
def _scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.integers(-3, 300),
        st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 1), st.text(max_size=12),
        st.sampled_from(HOSTILE), st.dates(min_value=dt.date(1000, 1, 1)), st.times(),
        st.datetimes(min_value=dt.datetime(1000, 1, 1)),
    )


@cache
def _keys() -> st.SearchStrategy[str]:
    n = _names()
    every = sorted({*TOP_KEYS, *MODEL_KEYS, *TRAIN_KEYS, *ATTACK_KEYS, *MEASURE_KEYS, *REFERENCE_KEYS,
                    *n["defaults"]})
    return st.sampled_from(every) | st.text(max_size=8)


@cache
def anything() -> st.SearchStrategy[Any]:
    """Any TOML value, nested."""
    return st.recursive(_scalars(), lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(_keys(), inner, max_size=3), max_leaves=6)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any], odds: int = 8) -> st.SearchStrategy[Any]:
    """``good``, but one time in ``odds`` ``bad``: deep enough to reach the later checks, wrong often enough."""
    return st.integers(0, odds - 1).flatmap(lambda i: bad if i == odds // 2 else good)  # not a bound: hypothesis
    # draws the bounds of a range far more often than 1 / odds


@cache
def plausible(key: str, bad_files: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """Values that are valid for ``key`` somewhere in a plan (or nearly), to get past the first check."""
    n = _names()
    eps = st.floats(0, 0.5) | st.sampled_from([math.inf, -0.1, math.nan])
    units = st.sampled_from(UNIT_NAMES)
    models = mostly(st.sampled_from(MODEL_NAMES), units, 3)
    by_key: dict[str, st.SearchStrategy[Any]] = {
        "name": st.sampled_from(MODEL_NAMES), "arch": st.sampled_from(n["archs"]),
        "label": st.sampled_from(["q", "kbit-3", "adv", "base", "x y", ""]), "model": models,
        "attack_source": models, "surrogate": units, "variant": units, "on": units | st.lists(units, max_size=3),
        "victims": units | st.lists(units, max_size=3), "eps": eps | st.lists(eps, max_size=4),
        "attack": st.sampled_from(["none", "fgsm", "pgd", "q"]),
        "threat": st.sampled_from(["white-box", "transfer", "matrix", "grey"])
        | st.lists(st.sampled_from(["white-box", "transfer", "matrix"]), max_size=3),
        "targeted": st.sampled_from(["none", "next", "random", "all"]),
        "optimizer": st.sampled_from(["adam", "sgd", "lbfgs"]),
        "metric": st.sampled_from(["clean_acc", "robust_acc", "asr", "top5"]),
        "target": mostly(st.just("local"), st.sampled_from(n["targets"] + list(bad_files) + ["nowhere",
                                                                                           "nowhere.toml"]), 3),
        "backends": st.lists(st.sampled_from(n["backends"] + ["tflite"]), max_size=3),
        "factory": st.sampled_from(["tests.fixtures.usermodels:tiny", "nomodule", "os:system"]),
        "onnx": st.sampled_from(["m.onnx", "../../etc/passwd"]), "checkpoint": st.sampled_from(["w.pt", "/dev/zero"]),
        "test": st.sampled_from(["t.npz", "/dev/zero"]), "train": st.sampled_from(["t.npz", "/dev/zero"]),
        "classes": st.lists(st.text(max_size=3), max_size=4), "shape": st.lists(st.integers(-1, 9), max_size=4),
        "params": st.dictionaries(_keys(), _scalars(), max_size=2), "value": st.floats(-1, 2),
        "figure": st.text(max_size=5), "note": st.text(max_size=5), "source": units,
        "openvino": st.booleans(), "fp16": st.booleans(), "min_eps": st.booleans(), "round_8bit": st.booleans(),
    }
    numbers = mostly(st.integers(1, 20), st.integers(-2, 50) | st.floats(-1, 100) | st.booleans()
                     | st.floats(allow_nan=True, allow_infinity=True), 4)
    seen = n["defaults"].get(key)
    return by_key.get(key, (st.sampled_from(seen) if seen else st.nothing()) | numbers)


def _value(key: str, bad_files: tuple[str, ...], odds: int) -> st.SearchStrategy[Any]:
    return mostly(plausible(key, bad_files), anything(), odds)


def _merge(*parts: dict[str, Any]) -> dict[str, Any]:
    return {k: v for p in parts for k, v in p.items()}


def _table(required: dict[str, st.SearchStrategy[Any]], optional: list[str], bad_files: tuple[str, ...],
           odds: int) -> st.SearchStrategy[dict[str, Any]]:
    """A table: its required keys, a subset of its optional ones (values mostly plausible), and now and then an
    unknown key or a required one missing (one time in ``odds``)."""
    req = st.fixed_dictionaries(required)
    opt = st.fixed_dictionaries({}, optional={k: _value(k, bad_files, odds) for k in optional})
    extra = mostly(st.just({}), st.dictionaries(_keys(), anything(), min_size=1, max_size=2), odds)
    table = st.builds(_merge, req, opt, extra)
    if not required:
        return table
    return mostly(table, st.builds(_merge, st.fixed_dictionaries({}, optional=required), opt), odds)


def plan_documents(bad_files: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """(a) Whole plan documents over the real keys, each table with its required keys and a subset of its
    optional ones, values mostly plausible and sometimes (at one of three rates) of any type, an unknown key now
    and then, and any top-level entry sometimes replaced by anything."""
    return st.sampled_from([4, 24, 200]).flatmap(lambda odds: _plan_documents(bad_files, odds))


@cache
def _plan_documents(bad_files: tuple[str, ...], odds: int) -> st.SearchStrategy[dict[str, Any]]:
    n = _names()
    f = bad_files
    just = st.just

    def with_params(kind: str, required: dict[str, st.SearchStrategy[Any]], optional: list[str],
                    name_key: str) -> st.SearchStrategy[dict[str, Any]]:
        return st.sampled_from(sorted(n[kind]) + ["nope"]).flatmap(
            lambda name: _table({**required, name_key: just(name)}, optional + n[kind].get(name, []), f, odds))

    train = st.fixed_dictionaries({}, optional={k: _value(k, f, odds) for k in TRAIN_KEYS})
    model = mostly(_table({"name": _value("name", f, odds), "arch": _value("arch", f, odds)}, MODEL_KEYS, f, odds),
                   _table({"name": _value("name", f, odds)}, ["factory", "onnx", *MODEL_KEYS, "arch"], f, odds), odds)
    model = st.builds(lambda m, t, odd: {**m, "train": t} if "train" in m and odd else m, model, train,
                      st.integers(0, 7))
    parts: dict[str, st.SearchStrategy[Any]] = {
        "plan": _table({}, PLAN_KEYS, f, odds),
        "data": st.sampled_from(n["datasets"] + ["nope"]).flatmap(
            lambda d: _table({"dataset": just(d)}, DATA_KEYS + n["dataset"].get(d, []), f, odds)),
        "compress": st.lists(with_params("compress", {}, VARIANT_KEYS, "method"), max_size=3),
        "defend": st.lists(with_params("defend", {}, VARIANT_KEYS, "method"), max_size=2),
        "export": _table({}, ["openvino", "fp16"], f, odds),
        "attacks": st.lists(with_params("attack", {}, ATTACK_KEYS, "name"), max_size=3),
        "targets": st.lists(_table({"target": _value("target", f, odds)}, ["backends"], f, odds), max_size=2),
        "measure": _table({}, MEASURE_KEYS, f, odds), "quick": _table({}, QUICK_KEYS, f, odds),
        "reference": st.lists(_table({"figure": _value("figure", f, odds), "metric": _value("metric", f, odds),
                                      "value": _value("value", f, odds)}, REFERENCE_KEYS, f, odds), max_size=2),
    }
    return st.builds(_merge, st.fixed_dictionaries({"models": mostly(st.lists(model, min_size=1, max_size=3,
                                                                              unique_by=lambda m: repr(m.get("name"))),
                                                                     anything(), 4 * odds)}),
                     st.fixed_dictionaries({}, optional={k: mostly(v, anything(), 4 * odds) for k, v in parts.items()}),
                     mostly(st.just({}), st.dictionaries(st.text(max_size=6), anything(), max_size=1), 4 * odds))


# the property -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_target_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, ...]:
    """Target files a hostile plan may point at: binary garbage, not TOML, TOML of the wrong shape."""
    d = tmp_path_factory.mktemp("targets")
    files = {"binary.toml": b"\xff\xfe\x00garbage\x80\x81", "nottoml.toml": b"[target\nname =",
             "shape.toml": b"target = 3\n", "nobackend.toml": b'[target]\nname = "x"\n[backends]\nonnxruntime = 1\n'}
    for name, data in files.items():
        (d / name).write_bytes(data)
    (d / "dir.toml").mkdir()
    return tuple(str(d / name) for name in [*files, "dir.toml"])


def check_outcome(path: Path, *, quick: bool, others: tuple[str, ...] = ()) -> Plan | None:
    """Load ``path``: a Plan that expands into stages, or one EdgebenchError line naming the file at fault (the
    plan, or one of the ``others``, the target files it points at)."""
    from edgebench.runner.pipeline import Pipeline

    try:
        plan = load_plan(path, quick=quick)
    except EdgebenchError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg and "\r" not in msg, f"not one line: {msg!r}"
        assert any(f in msg for f in (str(path), *others)), f"does not name the file: {msg!r}"
        return None
    assert isinstance(plan, Plan) and plan.models
    assert len(plan.digest()) == 64
    Pipeline(plan, out_dir=path.parent / "reports").stages()  # what `edgebench run` does next: no crash there
    return plan


def test_toml_writer_round_trips() -> None:
    doc = {"a": [1, 2.5, "x\"\n\x7f\\", True, {"b": dt.date(2020, 1, 2)}], "n": {"m": math.inf}}
    assert tomllib.loads(toml_document(doc)) == doc


def test_shipped_plans_load(tmp_path: Path) -> None:
    """The mutations below start from plans that load."""
    assert len(SHIPPED) >= 6
    for p in SHIPPED:
        assert check_outcome(p, quick=False) is not None


@FUZZ
@given(data=st.data(), quick=st.booleans())
def test_fuzzed_plan_documents(bad_target_files: tuple[str, ...], tmp_path_factory: pytest.TempPathFactory,
                               data: st.DataObject, quick: bool) -> None:
    doc = data.draw(plan_documents(bad_target_files), label="plan")
    path = tmp_path_factory.mktemp("fuzz") / "plan.toml"
    path.write_text(toml_document(doc))
    check_outcome(path, quick=quick, others=bad_target_files)


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of a parsed TOML document (list indices included)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    out = []
    for k, v in items:
        out.append((*at, k))
        out.extend(_paths(v, (*at, k)))
    return out


def _mutate(doc: dict[str, Any], data: st.DataObject, bad_files: tuple[str, ...]) -> None:
    paths = _paths(doc)
    path = data.draw(st.sampled_from(paths), label="where")
    parent: Any = doc
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1]
    op = data.draw(st.sampled_from(["delete", "retype", "plausible", "unknown", "duplicate"]), label="op")
    if op == "delete":
        del parent[key]
    elif op == "retype":
        parent[key] = data.draw(anything(), label="value")
    elif op == "plausible":
        parent[key] = data.draw(plausible(str(key), bad_files), label="value")
    elif op == "unknown" and isinstance(parent[key], dict):
        parent[key][data.draw(_keys(), label="key")] = data.draw(anything(), label="value")
    elif op == "duplicate" and isinstance(parent, list):
        parent.append(parent[key])
    else:
        parent[key] = data.draw(anything(), label="value")


@FUZZ
@given(data=st.data(), quick=st.booleans())
def test_mutated_shipped_plans(bad_target_files: tuple[str, ...], tmp_path_factory: pytest.TempPathFactory,
                               data: st.DataObject, quick: bool) -> None:
    source = data.draw(st.sampled_from(SHIPPED), label="plan")
    doc = tomllib.loads(source.read_text())
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        if not doc:
            break
        _mutate(doc, data, bad_target_files)
    path = tmp_path_factory.mktemp("fuzz") / f"{source.stem}.toml"
    path.write_text(toml_document(doc))
    check_outcome(path, quick=quick, others=bad_target_files)


@FUZZ
@given(data=st.data())
def test_damaged_shipped_plan_bytes(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(SHIPPED), label="plan")
    raw = bytearray(source.read_bytes())
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        i = data.draw(st.integers(0, len(raw)), label="at")
        op = data.draw(st.sampled_from(["insert", "overwrite", "truncate", "drop-line", "repeat-line"]), label="op")
        garbage = data.draw(st.binary(min_size=1, max_size=8), label="bytes")
        if op == "insert":
            raw[i:i] = garbage
        elif op == "overwrite":
            raw[i:i + len(garbage)] = garbage
        elif op == "truncate":
            del raw[i:]
        else:
            lines = bytes(raw).splitlines(keepends=True)
            j = min(raw[:i].count(b"\n"), len(lines) - 1)
            if lines:
                lines[j:j + 1] = [] if op == "drop-line" else [lines[j], lines[j]]
            raw = bytearray(b"".join(lines))
    path = tmp_path_factory.mktemp("fuzz") / f"{source.stem}.toml"
    path.write_bytes(bytes(raw))
    check_outcome(path, quick=False)


MINIMAL = '[[models]]\nname = "m"\narch = "digits_cnn"\n'


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('[[targets]]\ntarget = "local"\nbackends = [[]]\n', "targets[0].backends: give backend names (strings)"),
        ('[plan]\n"a\\nb" = 1\n', "plan.'a\\nb': unknown key"),
        ('[[compress]]\nmethod = "inq"\nschedule = 3\n', "compress[0] (variant 'inq'): bad parameter value"),
        ('[[targets]]\ntarget = "{binary}"\n', "targets[0].target: cannot read target file"),
    ],
)
def test_what_the_fuzzer_found(tmp_path: Path, extra: str, expected: str) -> None:
    """Each was a traceback (or a message over two lines) before: now one line naming the plan and the key."""
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    path = tmp_path / "plan.toml"
    path.write_text(MINIMAL + extra.replace("{binary}", str(binary)))
    with pytest.raises(EdgebenchError) as info:
        load_plan(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and expected in msg and "\n" not in msg


def test_subset_sizes_in_data_work_for_every_dataset(tmp_path: Path) -> None:
    """``[data] n_test = ...`` (as the README shows) was refused for datasets whose loader does not take it."""
    for dataset in ("mnist", "digits", "synthetic"):
        path = tmp_path / f"{dataset}.toml"
        path.write_text(f'[data]\ndataset = "{dataset}"\nn_train = 500\nn_test = 100\nseed = 3\n' + MINIMAL)
        plan = load_plan(path)
        assert (plan.data.n_train, plan.data.n_test, plan.data.seed) == (500, 100, 3)
        takes = {"synthetic": {"n_train": 500, "n_test": 100, "seed": 3}, "digits": {"seed": 3}}.get(dataset, {})
        assert plan.data.params == takes  # passed to the loader only where it takes them
