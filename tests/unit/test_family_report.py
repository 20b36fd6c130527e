"""The report's family section from stored rows: the worst case is the member fooled least, held-out and base
transfer beside it, and a plan without threat ``transfer`` for the attack is said to have nothing to compare."""

from __future__ import annotations

from edgebench.report.data import RunData
from edgebench.report.family import family_section
from edgebench.report.tables import Mark, Table

SOURCE = "cnn/family[base,kbit-2]"


def row(variant: str, threat: str, source: str, asr: float, robust: float) -> dict:
    return {"target": "local", "backend": "onnxruntime", "model": "cnn", "variant": variant, "attack": "pgd",
            "eps": 0.1, "source": source, "threat": threat, "asr": asr, "robust_acc": robust}


def data(rows: list[dict]) -> RunData:
    stage = {"stage": f"craft/{SOURCE}/pgd", "info": {"note": "EOT over 2 members: 24 forward + 20 backward passes"}}
    return RunData("r", {}, {}, rows, [], [], [], [], [], [stage])


def table(d: RunData) -> list:
    sec = family_section(d)
    return next(b for b in sec.blocks if isinstance(b, Table)).rows[0]


FAMILY = [row("base", "family", SOURCE, 0.47, 0.51), row("kbit-2", "family", SOURCE, 0.55, 0.36),
          row("kbit-8", "family-holdout", SOURCE, 0.39, 0.58)]


def test_worst_case_is_the_member_fooled_least_beside_transfer_from_the_base() -> None:
    transfer = [row("base", "white-box", "cnn", 0.49, 0.48), row("kbit-2", "transfer", "cnn", 0.44, 0.41),
                row("kbit-8", "transfer", "cnn", 0.41, 0.56)]
    cells = table(data(FAMILY + transfer))
    assert cells[4] == "base 0.470 · kbit-2 0.550"
    assert cells[5] == Mark("0.470 (base, robust acc 0.510)", "plain", 0.47)
    assert cells[6] is None  # no per-sample results stored here (the end-to-end test checks that column)
    assert cells[7] == Mark("0.440 (kbit-2, robust acc 0.410)", "plain", 0.44)
    assert cells[9:] == ["kbit-8 0.390", "kbit-8 0.410"]
    text = " ".join(getattr(b, "text", "") for b in family_section(data(FAMILY + transfer)).blocks)
    assert "No threat `transfer`" not in text and "24 forward + 20 backward" in text


def test_without_threat_transfer_the_section_says_so() -> None:
    d = data(FAMILY + [row("base", "white-box", "cnn", 0.49, 0.48)])  # the base's own row is not transfer
    assert table(d)[7] == Mark("no transfer", "missing")
    assert any("No threat `transfer` in the plan for pgd" in getattr(b, "text", "") for b in family_section(d).blocks)
    assert family_section(data([row("base", "white-box", "cnn", 0.49, 0.48)])) is None
