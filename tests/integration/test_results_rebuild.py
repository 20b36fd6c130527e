"""Issue 20, "traceable", end to end through the CLI: a tiny digits run, its results folder written from the
store, and the Markdown tables rebuilt from that folder alone (the run folder deleted first) into a document
with markers; the tables hold the run's real values and cite its run id, commit and command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgebench.cli import main
from edgebench.provenance import code_commit
from tests.integration.test_public_api_run import PLAN as API_PLAN
from tests.unit.test_verdicts import GOOD as VERDICTS

#: the public-API test's tiny digits plan (FGSM at ε 0.05 and 0.2 on 50 samples), with a paper number to compare
PLAN = API_PLAN.replace('name = "api"', 'name = "traced"') + """
[[reference]]
figure = "Fig. 1"
metric = "clean_acc"
value = 0.95
"""

DOC = """# Page

<!-- results:traced:clean -->
<!-- /results -->

<!-- results:traced:robust eps=0.2 -->
<!-- /results -->

<!-- results:traced:paper -->
<!-- /results -->

<!-- results:traced:verdicts -->
<!-- /results -->
"""

def shown(v: float) -> str:
    """A proportion as the rebuilt table shows it: 3 decimals of the 6 the CSV keeps."""
    return f"{float(f'{v:.6f}'):.3f}"


def test_run_write_results_rebuild(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan, out = tmp_path / "traced.toml", tmp_path / "reports"
    plan.write_text(PLAN)
    assert main(["run", str(plan), "--out", str(out), "--workers", "0"]) == 0
    (run_dir,) = [p.parent for p in out.glob("*/results.sqlite")]
    records = json.loads((run_dir / "results.json").read_text())
    clean = next(r for r in records if r["attack"] == "none")
    fgsm = next(r for r in records if r["attack"] == "fgsm" and r["eps"] == 0.2)
    results = tmp_path / "docs" / "results" / "traced"
    assert main(["report", run_dir.name, "--out", str(out), "--results", str(results)]) == 0
    (results / "verdicts.toml").write_text(VERDICTS)
    shutil.rmtree(out)  # the rebuild reads the results folder alone

    run = json.loads((results / "run.json").read_text())
    assert run["run_id"] == run_dir.name and run["plan"] == "traced" and run["size"] == "full"
    assert run["commit"] == code_commit() and run["status"] == "done"
    assert run["command"] == f"edgebench run {plan} --out {out} --workers 0"
    assert run["machine"]["targets"][0]["runtime"].startswith("onnxruntime ")
    assert sorted(run["tables"]) == ["amplitude", "clean", "latency", "paper", "robust", "sizes"]
    # the weight range of the one model (the report's amplitude section), its own base: 1.00×
    amp = (results / "amplitude.csv").read_text().splitlines()
    assert amp[0].startswith("model,variant,init,rate,tau,max_w,") and len(amp) == 2
    row = dict(zip(amp[0].split(","), amp[1].split(","), strict=True))
    assert (row["model"], row["variant"], row["init"], row["rate"]) == ("cnn", "base", "–", "1")
    assert 0 < float(row["max_w_last_layer"]) <= float(row["max_w"]) < 10 and row["max_w_base_shown"] == "1.00×"

    doc = tmp_path / "docs" / "reproductions.md"
    doc.write_text(DOC)
    capsys.readouterr()
    assert main(["report", "--update-doc", str(doc)]) == 0
    assert "4 table(s) rewritten" in capsys.readouterr().out
    text = doc.read_text()
    acc = f"{shown(clean['clean_acc'])} [{shown(clean['clean_acc_lo'])}, {shown(clean['clean_acc_hi'])}]"
    assert f"| cnn | {acc} | {clean['n']} |" in text
    assert (f"| cnn | fgsm | 0.2 | white-box | cnn | {shown(fgsm['robust_acc'])} [{shown(fgsm['robust_acc_lo'])}, "
            f"{shown(fgsm['robust_acc_hi'])}] | {fgsm['n']} | {shown(fgsm['asr'])} [{shown(fgsm['asr_lo'])}, "
            f"{shown(fgsm['asr_hi'])}] | {fgsm['asr_n']} |") in text
    assert "| fgsm | 0.05 |" not in text
    # the paper table as the report shows it: the paper's 0.95 beside the measured value and its interval
    report = f"{clean['clean_acc']:.3f} [{clean['clean_acc_lo']:.3f}, {clean['clean_acc_hi']:.3f}]"  # its text
    delta = (clean["clean_acc"] - 0.95) * 100
    assert f"| Fig. 1 | cnn | clean_acc | 0.95 | {report} (n={clean['n']}) | {delta:+.2f} |" in text
    assert "| Fig. 10b | Inhibition works on CIFAR-10. | *untested* | no CIFAR-10 run: plans/" in text
    cite = (f"*Run `{run_dir.name}` (full size, status done, {run['finished'][:10]}), edgebench `{code_commit()}`, "
            f"`edgebench run {plan} --out {out} --workers 0`")
    assert text.count(cite) == 3
    assert main(["report", "--update-doc", str(doc), "--check"]) == 0
