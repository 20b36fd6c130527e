"""The report's section on emulated targets (issue 19): the same artifacts on this x86 host and on an emulated
ARM board (:mod:`edgebench.targets.emulated`), side by side. The ARM builds of the runtimes (their own kernels
and numerics, int8's above all) computed the emulated target's logits, so its accuracy, attack success and
deployment gap against the host's torch twin are real; its timings are qemu's and appear nowhere (the
``emulated`` trust flags say so). Reads only the store's rows."""

from __future__ import annotations

from typing import Any

from edgebench.report.data import RunData, unit_label
from edgebench.report.tables import Cell, Num, Para, Prop, Section, Table


def emulated_targets(d: RunData) -> dict[str, dict[str, Any]]:
    """Each emulated target of the run with its emulation (arch, cpu, distro, wheels), from its flags."""
    return {f["target"]: f.get("detail") or {} for f in d.flags if f["kind"] == "emulated"}


def emulation_section(d: RunData) -> Section | None:
    """Per emulated target: each unit and set on it beside the same on every measured target of the same backend
    (this host's x86 build): clean accuracy, attack success, both deployment gaps and the ARM minus x86
    difference. None when the run has no emulated target."""
    emulated = emulated_targets(d)
    if not emulated:
        return None
    rows_of: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in d.results:
        if r.get("threat") == "suite":
            continue
        key = (r["model"], r["variant"], r["backend"], r["attack"], float(r["eps"]), r["source"])
        rows_of.setdefault(key, {})[r["target"]] = r
    blocks: list[Any] = []
    for emu, how in sorted(emulated.items()):
        rows: list[list[Cell]] = []
        for (model, variant, backend, attack, eps, _), by_target in rows_of.items():
            arm = by_target.get(emu)
            for other, x86 in sorted(by_target.items()):
                if arm is None or other == emu or other in emulated:
                    continue
                clean = attack == "none"
                field = "clean_acc" if clean else "asr"
                a, b = arm.get(field), x86.get(field)
                rows.append([unit_label(model, variant), backend, "clean" if clean else f"{attack} ε={eps:g}",
                             other, "accuracy" if clean else "attack success", Prop.of(x86, field),
                             Prop.of(arm, field), None if a is None or b is None else Num((a - b) * 100, 1, " pt"),
                             None if clean else Num(x86.get("deployment_gap"), 4),
                             None if clean else Num(arm.get("deployment_gap"), 4)])
        if not rows:
            continue
        blocks.append(Para(f"**{emu}**: qemu-{how.get('arch')} -cpu {how.get('cpu')}, Debian {how.get('distro')}, "
                           + ", ".join(f"{k} {v}" for k, v in sorted((how.get("wheels") or {}).items()))
                           + ". Its latency, energy and memory are not measurements and are shown nowhere."))
        blocks.append(Table(f"emulated-{emu}", f"x86 vs {how.get('arch')} — {emu}",
                            ["unit", "backend", "set", "x86 target", "figure", "x86", how.get("arch") or "emulated",
                             "Δ (emulated − x86)", "gap vs twin (x86)", "gap vs twin (emulated)"], rows,
                            "The same artifact's figure on the x86 build of the runtime (a measured target) and on "
                            "the emulated ARM build, with 95 % Wilson intervals; the gaps are each one's attack "
                            "success minus the host torch twin's on the same examples."))
    return Section("emulated", "Emulated targets: x86 vs ARM", blocks) if blocks else None
