"""The plan's ``[gates]`` (:class:`~edgebench.specs.GatesSpec`) checked against one stored run: a verdict per
gate × unit × target × backend, the report section listing them, and the violations ``edgebench run`` exits 3 on.

Read from the store only (like every report section), so ``edgebench report`` and ``edgebench run`` agree and a
finished run can be re-checked. A gate whose figure was not measured is a violation marked *not measured*: a CI
gate that silently passes when its measurement failed would hide the failure it exists to catch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgebench.report.data import RunData, middle_eps, unit_label
from edgebench.report.tables import Bullets, Cell, Mark, Num, Para, Section, Table
from edgebench.store import BASE

__all__ = ["Verdict", "check_gates", "gates_section", "violations"]


@dataclass(frozen=True)
class Verdict:
    gate: str
    unit: str
    target: str
    backend: str
    value: float | None  #: the measured figure in the gate's unit (None: not measured)
    limit: float
    upper: bool  #: the limit is a maximum (else a minimum)
    what: str  #: the figure in words, with its unit

    @property
    def ok(self) -> bool:
        if self.value is None:
            return False
        return self.value <= self.limit + 1e-12 if self.upper else self.value >= self.limit - 1e-12

    def line(self) -> str:
        got = "not measured" if self.value is None else f"{self.value:.4g}"
        sign = "≤" if self.upper else "≥"
        return (f"{self.unit} on {self.target}/{self.backend}: {self.gate} — {self.what} {got}, "
                f"the gate asks {sign} {self.limit:g}")


def _valid_energy_mj(r: dict[str, Any]) -> float | None:
    e = r.get("energy_j")
    return e * 1e3 if e is not None and r.get("energy_valid") else None


#: the row-wise gates: key → (figure in words, its value in a clean-result row, the limit is a maximum)
_ROW_GATES: dict[str, tuple[str, Callable[[dict[str, Any]], float | None], bool]] = {
    "min_clean_acc": ("clean accuracy", lambda r: r.get("clean_acc"), False),
    "max_p50_ms": ("p50 latency in ms", lambda r: r.get("p50_ms"), True),
    "max_p99_ms": ("p99 latency in ms", lambda r: r.get("p99_ms"), True),
    "max_energy_mj": ("energy per inference in mJ (valid windows)", _valid_energy_mj, True),
    "max_peak_rss_mb": ("peak resident memory over the agent's baseline in MB", lambda r: r.get("peak_rss_mb"), True),
}


#: the gates on timings, which an emulated target does not measure (its accuracy gates still apply)
_TIMED = ("max_p50_ms", "max_p99_ms", "max_energy_mj", "max_peak_rss_mb")


def check_gates(d: RunData) -> list[Verdict]:
    """Every gate of the run's plan on every unit it applies to (``units``: the variants, or all), per target and
    backend, in the order of the clean results."""
    gates = d.plan.get("gates") or {}
    every = gates.get("units") == "all"
    clean = [r for r in d.clean if every or r["variant"] != BASE]
    base = {(r["model"], r["target"], r["backend"]): r.get("clean_acc") for r in d.clean if r["variant"] == BASE}
    sizes = d.onnx_sizes()
    stored_bytes = {(v["model"], v["variant"]): (v.get("stats") or {}).get("stored_bytes") for v in d.variants}
    white = [r for r in d.adversarial if r.get("threat") == "white-box" and r.get("robust_acc") is not None]
    mid = middle_eps(white)
    emulated = {f["target"] for f in d.flags if f["kind"] == "emulated"}  # no timing there is the board's
    out: list[Verdict] = []
    for r in clean:
        where = (unit_label(r["model"], r["variant"]), r["target"], r["backend"])

        def verdict(gate: str, value: float | None, upper: bool, what: str, limit: float | None = None,
                    where: tuple[str, str, str] = where) -> None:
            out.append(Verdict(gate, *where, value, float(gates[gate] if limit is None else limit), upper, what))

        if gates.get("max_clean_drop") is not None and r["variant"] != BASE:
            b, v = base.get((r["model"], r["target"], r["backend"])), r.get("clean_acc")
            verdict("max_clean_drop", None if b is None or v is None else b - v, True,
                    "clean accuracy below the base's")
        for gate, (what, value, upper) in _ROW_GATES.items():
            if gates.get(gate) is not None and not (gate in _TIMED and r["target"] in emulated):
                verdict(gate, value(r), upper, what)
        if gates.get("max_size_mb") is not None:
            size = sizes.get((r["model"], r["variant"]))
            verdict("max_size_mb", None if size is None else size / 1e6, True, "ONNX artifact in MB")
        if gates.get("max_stored_mb") is not None:
            stored = stored_bytes.get((r["model"], r["variant"]))
            verdict("max_stored_mb", None if stored is None else stored / 1e6, True, "true stored size in MB")
        for label, g in (gates.get("min_robust_acc") or {}).items():
            eps = g.get("eps") if g.get("eps") is not None else mid.get(label)
            accs = [w["robust_acc"] for w in white if w["attack"] == label and eps is not None
                    and abs(float(w["eps"]) - eps) <= 1e-9 * max(1.0, abs(eps))
                    and (w["model"], w["variant"], w["target"], w["backend"]) == (r["model"], r["variant"],
                                                                                   r["target"], r["backend"])]
            at = "" if eps is None else f" at ε={eps:g}"
            verdict(f"min_robust_acc.{label}", min(accs) if accs else None, False,
                    f"robust accuracy against {label}{at}", g["acc"])
    return out


def violations(d: RunData) -> list[Verdict]:
    return [v for v in check_gates(d) if not v.ok]


def gates_section(d: RunData) -> Section | None:
    """The gates and their verdicts: the broken ones listed first, then a table of every check."""
    if not (d.plan.get("gates") or {}):
        return None
    verdicts = check_gates(d)
    if not verdicts:
        return None
    bad = [v for v in verdicts if not v.ok]
    blocks: list[Any] = []
    if bad:
        blocks.append(Para(f"**{len(bad)} of {len(verdicts)} gate checks failed** (`edgebench run` exits 3):"))
        blocks.append(Bullets([v.line() for v in bad]))
    else:
        blocks.append(Para(f"All {len(verdicts)} gate checks passed."))
    rows: list[list[Cell]] = [
        [v.unit, v.target, v.backend, v.gate,
         Mark("not measured", "missing") if v.value is None else Num(v.value, None),
         f"{'≤' if v.upper else '≥'} {v.limit:g}", Mark("pass", "ok") if v.ok else Mark("FAIL", "bad")]
        for v in verdicts]
    blocks.append(Table("gates", "Gate checks", ["unit", "target", "backend", "gate", "measured", "limit", "verdict"],
                        rows, "From the plan's [gates]; clean drop and robust accuracy are fractions."))
    return Section("gates", "Gates", blocks)
