"""Report rendering on a big run: ``write_report`` from a synthetic store vs reading that store, same run.

The store is made by :func:`tests.fixtures.synthetic.fill_synthetic` (made-up but internally consistent
numbers, every table filled as a real run fills it) in a temporary folder: by default 1 model × 50 variants ×
10 attacks × 1 ε × 3 targets × 1 backend on 1000 samples. The script prints the exact row counts it made and
the time the fill took, then times

- ``cold``: the first ``write_report`` call of the process with every format (imports included: what
  ``edgebench report`` pays once);
- each format alone (``formats=("md",)``, ...) and all together, warm, interleaved round-robin ``--reps``
  times (median);
- the reference, interleaved with them: reading every table of the run through the store's own readers and
  ``json.dumps`` of all of it, the floor any renderer pays. The ratio is render ÷ reference.

Goal: render all formats < 10 s on this 2-core machine (cold and warm). ``write_report`` takes ``formats``
since the renderer rewrite; with an older one the script times its single default call instead.

    python bench/bench_report.py [--variants 50] [--attacks 10] [--targets 3] [--eps-grid 1] [--n 1000]
        [--models 1] [--backends 1] [--reps 3] [--formats md,html,csv,json] [--keep]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's edgebench, installed or not
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_timing.py

from _timing import interleaved  # noqa: E402

RUN_ID = "synthetic-big"
GOAL_S = 10.0
TABLES = ("runs", "stages", "artifacts", "variants", "results", "environments", "min_eps", "flags", "samples")


def read_everything(store: Any, run_id: str) -> int:
    """The floor of any renderer: every row of the run through the store's readers, then one JSON text of it
    all. Returns the text's length (so the work cannot be skipped)."""
    data = {"run": store.run(run_id), "stages": store.stages(run_id), "results": store.results(run_id),
            "variants": store.variants(run_id), "artifacts": store.artifacts(run_id),
            "environments": store.environments(run_id), "min_eps": store.min_eps(run_id),
            "flags": store.flags(run_id), "samples": store.samples(run_id)}
    return len(json.dumps(data, default=str))


def _counts(store: Any, run_id: str) -> dict[str, int]:
    out = {t: store.conn.execute(f"SELECT COUNT(*) FROM {t} WHERE run_id=?", (run_id,)).fetchone()[0] for t in TABLES}
    for kind in ("correct", "latency"):
        out[f"samples ({kind})"] = store.conn.execute("SELECT COUNT(*) FROM samples WHERE run_id=? AND kind=?",
                                                      (run_id, kind)).fetchone()[0]
    out["results (clean)"] = store.conn.execute("SELECT COUNT(*) FROM results WHERE run_id=? AND attack='none'",
                                                (run_id,)).fetchone()[0]
    out["results (transfer)"] = store.conn.execute(
        "SELECT COUNT(*) FROM results WHERE run_id=? AND threat='transfer'", (run_id,)).fetchone()[0]
    return out


def _size(folder: Path, paths: list[Path]) -> str:
    """Every file under the report folder (plots included), and the paths ``write_report`` returned."""
    files = [f for f in folder.rglob("*") if f.is_file()]
    total = sum(f.stat().st_size for f in files)
    names = ", ".join(p.name for p in paths[:4]) + (f", … ({len(paths) - 4} more)" if len(paths) > 4 else "")
    return f"{len(files)} files, {total / 1e6:.2f} MB; returned {len(paths)}: {names}"


def _row(name: str, t: float, ref: float, goal: str, ok: bool | None) -> list[str]:
    verdict = "info" if ok is None else ("met" if ok else "NOT met")
    return [name, f"{t:.3f} s", f"{ref:.3f} s", f"{t / ref:.1f}×", goal, verdict]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=1)
    ap.add_argument("--variants", type=int, default=50, help="units per model, the base included")
    ap.add_argument("--attacks", type=int, default=10)
    ap.add_argument("--eps-grid", type=int, default=1, help="ε per attack")
    ap.add_argument("--targets", type=int, default=3)
    ap.add_argument("--backends", type=int, default=1, help="backends per target (onnxruntime, openvino, null)")
    ap.add_argument("--n", type=int, default=1000, help="test samples")
    ap.add_argument("--reps", type=int, default=3, help="warm repetitions of each case, interleaved")
    ap.add_argument("--formats", default="md,html,csv,json", help="comma-separated formats to time one by one")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (store and reports)")
    args = ap.parse_args()

    from edgebench.store import Store
    from tests.fixtures.synthetic import fill_synthetic

    workdir = Path(tempfile.mkdtemp(prefix="bench_report_"))
    sizes = {"models": args.models, "variants": args.variants, "attacks": args.attacks, "eps_grid": args.eps_grid,
             "targets": args.targets, "backends": args.backends, "n": args.n}
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    store = Store.open(workdir / "results.sqlite")
    fill_synthetic(store, RUN_ID, **sizes)
    fill_s = time.perf_counter() - t0
    counts = _counts(store, RUN_ID)
    db_mb = sum(p.stat().st_size for p in workdir.glob("results.sqlite*")) / 1e6

    from edgebench.report.render import write_report

    takes_formats = "formats" in inspect.signature(write_report).parameters
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    everything = tuple(formats) if takes_formats else None
    written: dict[str, list[Path]] = {}

    def render(name: str, fmts: tuple[str, ...] | None) -> None:
        out = workdir / "report" / name
        written[name] = write_report(store, RUN_ID, out) if fmts is None else \
            write_report(store, RUN_ID, out, formats=fmts)

    t1 = time.perf_counter()
    render("all", everything)  # cold: the first call of the process, imports included
    cold_s = time.perf_counter() - t1

    cases: dict[str, Any] = {"reference": lambda: read_everything(store, RUN_ID)}
    if takes_formats:
        for f in formats:
            cases[f] = lambda f=f: render(f, (f,))
    cases["all"] = lambda: render("all", everything)
    times = interleaved(cases, reps=args.reps, warmup=0)
    load1 = os.getloadavg()
    med = {k: statistics.median(v) for k, v in times.items()}
    ref = med["reference"]
    ref_chars = read_everything(store, RUN_ID)
    all_label = f"all formats ({', '.join(formats)})" if takes_formats else "write_report() default (no formats=)"

    rows = [_row(f"{all_label}, cold (first call, imports included)", cold_s, ref, f"< {GOAL_S:g} s",
                 cold_s < GOAL_S),
            _row(f"{all_label}, warm median", med["all"], ref, f"< {GOAL_S:g} s", med["all"] < GOAL_S)]
    if takes_formats:
        rows += [_row(f"  {f} alone, warm median", med[f], ref, "—", None) for f in formats]
    rows.append(_row("  reference: read every table + json.dumps", ref, ref, "—", None))

    print(f"## report rendering, synthetic run ({', '.join(f'{k} {v}' for k, v in sizes.items())}), "
          f"{args.reps} warm reps, nproc {os.cpu_count()}, loadavg(1 min) {load0[0]:.2f} -> {load1[0]:.2f}\n")
    print(f"store: filled in {fill_s:.2f} s, {db_mb:.1f} MB; rows: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()) + "\n")
    head = ["measurement", "edgebench", "reference", "ratio", "goal", "verdict"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    print(f"- reference: {ref_chars / 1e6:.1f} MB of JSON from the store's readers; "
          f"warm ranges: " + "; ".join(f"{k} {min(v):.3f}-{max(v):.3f} s" for k, v in times.items()))
    for name, paths in written.items():
        print(f"- wrote ({name}): {_size(workdir / 'report' / name, paths)}")
    if not takes_formats:
        print("- write_report does not take formats= yet: timed its single default call")
    store.close()
    if args.keep:
        print(f"- kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
