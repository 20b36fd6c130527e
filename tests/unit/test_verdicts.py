"""``verdicts.toml`` (issue 20): the fixed format loads, every bad entry is one line naming the file and the
key, and the rebuild shows the entries as a "Verdicts" table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from edgebench.errors import ConfigError
from edgebench.report.rebuild import folder_markdown
from edgebench.report.verdicts import Verdict, load_verdicts

GOOD = '''
[[verdict]]
id = "fig10a-inhibition"
figure = "Fig. 10a"
claim = "Gradient inhibition lowers FGSM success."
verdict = "holds"
evidence = "0.98 -> 0.45 at tau 0.5, run liu-quick-1"
size = "quick"

[[verdict]]
id = "fig4-hashnets"
figure = "Fig. 4"
claim = "HashNets resist HFGSM better than the base."
verdict = "does-not-hold"
evidence = "0.22 vs 0.10 at eps 0.1"
reason = "under-trained HashNets | quick size"
size = "full"

[[verdict]]
id = "fig10b-cifar"
figure = "Fig. 10b"
claim = "Inhibition works on CIFAR-10."
verdict = "untested"
evidence = "no CIFAR-10 run: plans/liu2018-cifar10.toml on a GPU would test it"
'''

ENTRY = '''[[verdict]]
id = "a-1"
figure = "Fig. 1"
claim = "c"
verdict = "holds"
evidence = "e"
size = "quick"
'''


def test_loads_in_file_order(tmp_path: Path) -> None:
    p = tmp_path / "verdicts.toml"
    p.write_text(GOOD)
    got = load_verdicts(p)
    assert [v.id for v in got] == ["fig10a-inhibition", "fig4-hashnets", "fig10b-cifar"]
    assert got[1] == Verdict("fig4-hashnets", "Fig. 4", "HashNets resist HFGSM better than the base.", "does-not-hold",
                             "0.22 vs 0.10 at eps 0.1", "under-trained HashNets | quick size", "full")
    assert got[2].size is None and got[2].reason == ""


@pytest.mark.parametrize(("text", "message"), [
    (ENTRY + 'note = "x"\n', "verdict[0].note: unknown key; allowed keys here: ['claim', 'evidence'"),
    (ENTRY.replace('"holds"', '"hold"'), "verdict[0].verdict: 'hold' is not one of ['holds', 'does-not-hold', "
                                         "'untested'] (did you mean 'holds'?)"),
    (ENTRY.replace('"holds"', '"does-not-hold"'), "verdict[0].reason: is required when verdict = \"does-not-hold\""),
    (ENTRY.replace('"holds"', '"untested"'), "verdict[0].size: must be left out when verdict = \"untested\""),
    (ENTRY.replace('size = "quick"\n', ""), "verdict[0].size: is required when verdict = 'holds'"),
    (ENTRY.replace('"quick"', '"small"'), "verdict[0].size: 'small' is not one of ['quick', 'full']"),
    (ENTRY.replace('"a-1"', '"A_1"'), "verdict[0].id: 'A_1' may hold only lower-case letters, digits and '-'"),
    (ENTRY.replace('claim = "c"', 'claim = " "'), "verdict[0].claim: must not be empty"),
    (ENTRY.replace('evidence = "e"\n', ""), "verdict[0].evidence: is required"),
    (ENTRY.replace('figure = "Fig. 1"', "figure = 1"), "verdict[0].figure: must be str, got 1"),
    (ENTRY + ENTRY, "verdict[1].id: 'a-1' is already the id of verdict[0]"),
    ('title = "x"\n' + ENTRY, "title: unknown key; allowed keys here: ['verdict']"),
    ("[verdict]\nid = 'a'\n", "verdict: must be list"),
    ("[[verdict]\n", "not valid TOML"),
])
def test_bad_entries_are_one_line_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "verdicts.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_verdicts(p)
    line = str(err.value)
    assert "\n" not in line and line.startswith(str(p)) and message in line, line


def test_rebuild_renders_the_verdicts(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "r1"}))
    (tmp_path / "verdicts.toml").write_text(GOOD)
    md = folder_markdown(tmp_path)
    assert md.startswith("### Verdicts\n\n| figure | claim | verdict | evidence | reason | size |")
    assert ("| Fig. 4 | HashNets resist HFGSM better than the base. | **does not hold** | 0.22 vs 0.10 at eps 0.1 | "
            "under-trained HashNets \\| quick size | full |") in md
    assert re.search(r"\| Fig\. 10b \| .* \| \*untested\* \| no CIFAR-10 run: .* \| – \| – \|", md)
    assert f"*Verdicts: [{tmp_path}/verdicts.toml]({tmp_path}/verdicts.toml); each names the runs its evidence " \
           "comes from.*" in md
