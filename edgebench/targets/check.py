"""``edgebench targets check NAME``: what works on a target, in one table. Host side."""

from __future__ import annotations

from typing import Any

from edgebench.agent.protocol import MIN_PYTHON, python_version_text

#: below this much free memory a board will swap or be OOM-killed with a realistic model and test set
MIN_FREE_MB = 200


def _rows(target: Any, r: dict[str, Any], seconds: float) -> list[tuple[str, str, str]]:
    env = r.get("environment") or {}
    where = f"ssh {target.transport_options['host']}" if target.transport == "ssh" else "this machine"
    emu = r.get("emulated")
    if emu:
        where = f"qemu-{emu['arch']} -cpu {emu['cpu']} on this machine (Debian {emu['distro']})"
    too_old = "" if r.get("python_ok") else f"; the agent needs Python >= {python_version_text(MIN_PYTHON)}"
    rows = [("connection", "ok", f"{where}: agent bundle sent and started in {seconds:.2f} s"),
            ("python", "ok" if r.get("python_ok") else "FAIL", f"{r.get('python')} ({r.get('executable')}){too_old}"),
            ("numpy", "ok" if r.get("numpy") else "FAIL", r.get("numpy") or "not installed: pip install numpy"),
            ("torch-free", "ok" if not r.get("torch_loaded") else "WARN",
             "the agent loaded no torch" if not r.get("torch_loaded") else "torch was imported")]
    for name, rt in (r.get("runtimes") or {}).items():
        if rt.get("version"):
            extra = rt.get("providers") or rt.get("devices") or []
            rows.append((name, "ok", f"{rt['version']}; {', '.join(extra)}"))
        else:
            rows.append((name, "–", f"not installed ({rt.get('error', '')})"))
    for name, b in (r.get("backends") or {}).items():
        opts = target.backends.get(name, {})
        rows.append((f"backend {name}", "ok" if b.get("ok") else "FAIL",
                     ", ".join(f"{k}={v}" for k, v in opts.items()) if b.get("ok") else b.get("error", "")))
    if emu:
        rows.append(("emulated", "–", "accuracy and logits are the ARM build's; latency and energy are qemu's, "
                                      "not the board's: marked emulated, never reported as measured"))
    p = r.get("power") or {}
    if p.get("sensor", "none") == "none":
        rows.append(("power sensor", "–", "none configured: energy will be absent from the report"))
    elif p.get("ok"):
        unit = "J (counter)" if p.get("kind") == "energy" else "W"
        rows.append(("power sensor", "ok", f"{p['sensor']}: {p.get('reading'):.3f} {unit}"))
    else:
        rows.append(("power sensor", "FAIL", f"{p.get('sensor')}: {p.get('error')}"))
    mem = env.get("memory_available_mb")
    if mem is not None:
        total = env.get("memory_total_mb")
        rows.append(("memory", "ok" if mem >= MIN_FREE_MB else "WARN",
                     f"{mem:.0f} MB free" + (f" of {total:.0f} MB" if total else "")))
    disk = r.get("disk_free_mb")
    if disk is not None:
        rows.append(("disk", "ok" if disk >= 500 else "WARN", f"{disk / 1024:.1f} GB free in the work folder"))
    gov = env.get("governors") or ([env["governor"]] if env.get("governor") else [])
    if gov:
        steady = set(gov) <= {"performance"}
        rows.append(("governor", "ok" if steady else "WARN", ", ".join(sorted(set(gov))) +
                     ("" if steady else " (set 'performance' for steady latency)")))
    thr = env.get("throttled")
    if thr:
        rows.append(("throttling", "ok" if not thr.get("now") else "WARN",
                     f"{thr.get('raw')} now: {', '.join(thr.get('now') or []) or 'none'}; since boot: "
                     f"{', '.join(thr.get('since_boot') or []) or 'none'}"))
    if env.get("jetson_power_mode"):
        rows.append(("power mode", "ok", str(env["jetson_power_mode"])))
    temps = env.get("temperatures_c") or {}
    if temps:
        rows.append(("temperature", "ok", ", ".join(f"{k} {v:.0f} °C" for k, v in list(temps.items())[:4])))
    return rows


def usable(target: Any, report: dict[str, Any]) -> bool:
    """True when jobs can run: Python and numpy fine and at least one configured backend works."""
    backends = report.get("backends") or {}
    return bool(report.get("python_ok") and report.get("numpy") and any(b.get("ok") for b in backends.values()))


def check_table(target: Any, report: dict[str, Any] | None, error: str | None, seconds: float) -> str:
    """The check as a plain-text table (fits a terminal; no colour codes)."""
    head = f"target {target.name} ({target.source})"
    if report is None:
        rows = [("connection", "FAIL", error or "no answer")]
    else:
        rows = _rows(target, report, seconds)
    w1 = max(len("check"), *(len(r[0]) for r in rows))
    w2 = max(len("status"), *(len(r[1]) for r in rows))
    lines = [head, f"{'check':{w1}}  {'status':{w2}}  detail"]
    lines += [f"{a:{w1}}  {b:{w2}}  {c}" for a, b, c in rows]
    if report is not None:
        lines.append("usable: yes" if usable(target, report) else
                     "usable: NO — fix the FAIL lines above (or remove the backend from the target file)")
    return "\n".join(lines)
