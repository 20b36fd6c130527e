"""The ``edgebench`` command: ``run | search | report | compare | runs | models | attacks | targets [check|prepare
NAME]``.

Errors a user can cause print one line and exit non-zero (2 for a bad plan or usage; 3 when ``run`` breaks a
gate of the plan), without a traceback and without losing results already stored.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from edgebench import __version__
from edgebench.errors import ConfigError, EdgebenchError, is_disk_full
from edgebench.logs import setup_logging

log = logging.getLogger("edgebench")


def _cmd_run(args: argparse.Namespace) -> int:
    from edgebench.config import load_plan
    from edgebench.runner.pipeline import run_plan

    plan = load_plan(args.plan, quick=args.quick)
    if args.device is not None:
        from edgebench.hostdevice import with_device

        plan = with_device(plan, args.device)
    if args.gpu_workers is not None:
        from edgebench.hostdevice import with_gpu_workers

        plan = with_gpu_workers(plan, args.gpu_workers)
    if args.seeds is not None:
        from edgebench.runner.seeds import with_seeds

        plan = with_seeds(plan, args.seeds)
    if args.dry_run:
        return _dry_run(plan, args)
    from edgebench.runner.executors import create_executor

    executor = create_executor(args.executor, workers=args.workers, address=args.address)
    from edgebench.provenance import command_line

    summary = run_plan(plan, out_dir=args.out, run_id=args.run_id, executor=executor,
                       command=command_line(args.argv))
    log.info("run %s finished in %.1f s: %s", summary.run_id, summary.seconds, summary.run_dir / "report.md")
    if summary.failed:
        for stage, why in summary.failed.items():
            print(f"edgebench: {stage} failed: {why}", file=sys.stderr)
        print(f"edgebench: {len(summary.failed)} stage(s) failed; finished results are in {summary.run_dir}",
              file=sys.stderr)
        return 1
    print(summary.run_dir / "report.md")
    for line in summary.violations:
        print(f"edgebench: gate failed: {line}", file=sys.stderr)
    if summary.violations:
        print(f"edgebench: {len(summary.violations)} gate check(s) failed; the report lists them under Gates: "
              f"{summary.run_dir / 'report.md'}", file=sys.stderr)
        return 3
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from edgebench.runner.executors import create_executor
    from edgebench.search.study import run_search

    def executor() -> object:
        return create_executor(args.executor, workers=args.workers, address=args.address)

    executor()  # a bad --executor or --workers fails before any trial
    summary = run_search(args.plan, out_dir=args.out, run_id=args.run_id, trials=args.trials, timeout=args.timeout,
                         quick=args.quick, executor=executor)
    log.info("search %s: %d trial(s) run now, %d in all, in %.1f s", summary.run_id, summary.ran,
             len(summary.trials), summary.seconds)
    print(summary.report)
    if summary.chosen_toml is None:
        print("edgebench: no trial met the budget; the report lists every trial and what it broke", file=sys.stderr)
        return 1
    print(summary.chosen_toml)
    return 0


def _dry_run(plan: object, args: argparse.Namespace) -> int:
    """Print the plan's stage graph: its size, what is cached, what a run would compute."""
    from edgebench.runner.pipeline import Pipeline

    pipe = Pipeline(plan, out_dir=args.out, run_id=args.run_id)  # type: ignore[arg-type]
    rows = pipe.dry_run()
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    states = ("cached", "measured", "run", "unknown", "always")
    edges = sum(len(r["deps"]) for r in rows)
    count = {s: sum(r["status"] == s for r in rows) for s in states}
    print(f"plan {plan.name} (run {pipe.run_id}): {len(rows)} stages, {edges} dependencies; "  # type: ignore[attr-defined]
          f"{count['cached']} cached, {count['measured']} already measured in this run, {count['run']} to run, "
          f"{count['unknown']} after stages that run first (may turn out cached)")
    print(f"{'kind':10s} {'stages':>6s} " + " ".join(f"{s:>8s}" for s in states))
    for k in kinds:
        mine = [r for r in rows if r["kind"] == k]
        print(f"{k:10s} {len(mine):6d} " + " ".join(f"{sum(r['status'] == s for r in mine):8d}" for s in states))
    todo = [r["stage"] for r in rows if r["status"] in ("run", "unknown")]
    if todo:
        print("to run: " + ", ".join(todo[:12]) + (f", … ({len(todo) - 12} more)" if len(todo) > 12 else ""))
    else:
        print("nothing to run: everything is cached or measured")
    resumes = [f"{r['stage']} ({r['resumes']})" for r in rows if r.get("resumes")]
    if resumes:  # an interrupted training picks up here; none listed means it starts again from epoch 0
        print("resumes from a checkpoint: " + ", ".join(resumes))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from edgebench.report.render import FORMATS, write_report
    from edgebench.report.runs import resolve_run
    from edgebench.store import Store

    if args.update_doc or args.from_results:
        return _report_rebuild(args)
    if args.run is None:
        raise ConfigError("edgebench report: which run? Give RUN (a run id or folder), or --from-results DIR or "
                          "--update-doc FILE")
    if args.add_seeds and not args.results:
        raise ConfigError("edgebench report: --add-seeds adds the run's seeds to a results folder: give --results DIR")
    db = resolve_run(args.run, args.out)
    with Store.open(db, create=False) as store:
        run_ids = [r["run_id"] for r in store.conn.execute("SELECT run_id FROM runs")]
        run_id = db.parent.name if db.parent.name in run_ids or not run_ids else run_ids[-1]
        if args.results and args.add_seeds:
            from edgebench.report.results_merge import add_seeds

            add_seeds(store, run_id, args.results)
            print(f"{args.results}/ (run {run_id}'s seeds added to its tables and run.json)")
            return 0
        if args.results:
            from edgebench.report.results_files import write_results

            write_results(store, run_id, args.results)
            print(f"{args.results}/ (run.json and the tables of run {run_id})")
            return 0
        paths = write_report(store, run_id, db.parent, formats=args.format or FORMATS)
    for p in paths:
        if p.suffix != ".csv":
            print(p)
    csvs = [p for p in paths if p.suffix == ".csv"]
    if csvs:
        print(f"{csvs[0].parent}/ ({len(csvs)} CSV files)")
    return 0


def _report_rebuild(args: argparse.Namespace) -> int:
    """``report --from-results DIR`` (print the tables) or ``report --update-doc FILE [--check]``."""
    from edgebench.report.rebuild import folder_markdown, update_doc

    if args.run is not None or args.results:
        raise ConfigError("edgebench report: --from-results and --update-doc read results folders, not a run; "
                          "leave out RUN and --results")
    if args.from_results:
        print(folder_markdown(args.from_results), end="")
        return 0
    blocks, changed = update_doc(args.update_doc, args.results_root, check=args.check)
    if args.check and changed:
        print(f"edgebench: {args.update_doc}: tables out of date; run edgebench report --update-doc "
              f"{args.update_doc}", file=sys.stderr)
        return 1
    print(f"{args.update_doc}: {blocks} table(s) {'rewritten' if changed else 'already up to date'}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from edgebench.naming import slug
    from edgebench.report.compare import compare_sections
    from edgebench.report.html import html
    from edgebench.report.render import csv_text, markdown, tables_of
    from edgebench.report.runs import open_run

    a, b = open_run(args.run_a, args.out), open_run(args.run_b, args.out)
    sections = compare_sections(a, b) if args.floor is None else compare_sections(a, b, floor=args.floor)
    to = args.to or args.out / "compare" / f"{a.run_id}--{b.run_id}"
    to.mkdir(parents=True, exist_ok=True)
    title = f"edgebench compare: {a.run_id} vs {b.run_id}"
    lead = f"A = `{a.run_id}`, B = `{b.run_id}`; differences are B − A."
    (to / "compare.md").write_text(markdown(title, lead, sections, {}))
    (to / "compare.html").write_text(html(title, lead, sections, {}))
    for t in tables_of(sections):
        (to / f"{slug(t.name, default='table')}.csv").write_text(csv_text(t))
    print(to / "compare.md")
    print(to / "compare.html")
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    from edgebench.report.runs import list_runs

    runs = list_runs(args.out)
    if not runs:
        print(f"no runs under {args.out} (edgebench run PLAN makes one; --out DIR looks elsewhere)")
        return 0
    w = max(len("run"), *(len(r.run_id) for r in runs))
    print(f"{'run':{w}s}  {'status':11s} {'created':20s} {'rows':>6s}  plan / targets")
    for r in runs:
        what = r.problem or f"{r.plan_name}  {', '.join(r.pairs) or '–'}"
        print(f"{r.run_id:{w}s}  {str(r.status):11s} {r.when:20s} {r.results:6d}  {what}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from edgebench.models import MODELS

    for name, factory in MODELS.items():
        print(f"{name:16s} {(factory.__doc__ or '').strip().splitlines()[0]}")
    return 0


def _cmd_attacks(args: argparse.Namespace) -> int:
    from edgebench.attacks import ATTACKS

    for name, cls in ATTACKS.items():
        print(f"{name:10s} {cls.norm:5s} {(cls.__doc__ or '').strip().splitlines()[0]}")
    return 0


def _cmd_targets(args: argparse.Namespace) -> int:
    from edgebench.targets import available_targets, load_target

    if args.action == "check":
        if not args.name:
            raise EdgebenchError("edgebench targets check NAME: which target? (edgebench targets lists them)")
        return _targets_check(args.name)
    if args.action == "prepare":
        if not args.name:
            raise EdgebenchError("edgebench targets prepare NAME: which emulated target? (edgebench targets)")
        from edgebench.targets.emulated import prepare_target

        return prepare_target(args.name)
    found = available_targets()
    width = max([20, *(len(n) for n in found)])
    for name, where in found.items():
        try:
            t = load_target(name)
        except EdgebenchError as exc:
            print(f"{name:{width}s} ERROR  {exc}")
            continue
        host = t.transport_options.get("host", "")
        print(f"{name:{width}s} {t.transport:8s} {host:24s} backends={','.join(t.backends)} "
              f"power={t.power.get('sensor', 'none')}  ({where})")
    return 0


def _targets_check(name: str) -> int:
    """Connect to a target and say, in one table, what works there."""
    import time

    from edgebench.targets import load_target, open_transport
    from edgebench.targets.check import check_table, usable

    target = load_target(name)
    t0 = time.perf_counter()
    with open_transport(target) as transport:
        try:
            report = transport.info()
        except EdgebenchError as exc:
            print(check_table(target, None, str(exc), 0.0))
            return 1
    print(check_table(target, report, None, time.perf_counter() - t0))
    return 0 if usable(target, report) else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgebench", description="Compression x robustness x edge deployment benchmark")
    p.add_argument("--version", action="version", version=f"edgebench {__version__}")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="debug logging, other libraries' INFO and DEBUG included (default: theirs at WARNING)")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a plan (no argument: the built-in default plan)")
    r.add_argument("plan", nargs="?", help="plan TOML file")
    r.add_argument("--out", type=Path, default=Path("reports"), help="where run folders go (default: reports)")
    r.add_argument("--run-id", help="run id (default: <plan name>-<plan hash>; the same id resumes)")
    r.add_argument("--quick", action="store_true", help="the plan's declared quick size")
    r.add_argument("--executor", default="local", help="who computes host stages: local (a pool of worker "
                   "processes on this machine, the default) or ray (a Ray cluster: pip install edgebench[ray])")
    r.add_argument("--workers", default=os.environ.get("EDGEBENCH_WORKERS", "auto"),
                   help="host stages at once: auto (one per core, as memory allows; on Ray, the cluster's CPUs), "
                   "a number, or 0 to compute in this process (default: $EDGEBENCH_WORKERS or auto)")
    r.add_argument("--address", help="the Ray cluster to join (--executor ray; default: start a local one)")
    r.add_argument("--device", help="the host stages' compute device: auto, cpu, cuda or cuda:N (overrides the "
                   "plan's [host] device; default: the plan's, else auto: CUDA where torch sees one)")
    r.add_argument("--gpu-workers", type=int, help="host stages on the GPU at once, e.g. one per training seed "
                   "(overrides the plan's [host] gpu_workers; needs --workers at least as large)")
    r.add_argument("--seeds", help="training seeds, e.g. 0,1,2: the whole plan once per seed (overrides [plan] seed "
                   "or seeds; the test subset stays the plan's)")
    r.add_argument("--dry-run", action="store_true",
                   help="print the stage graph, what is cached and what would run; run nothing")
    r.set_defaults(func=_cmd_run)
    se = sub.add_parser("search", help="search a plan's [search] space for the most robust variant within its "
                        "[budget], every trial measured on the target (pip install 'edgebench[search]')")
    se.add_argument("plan", help="search plan TOML file (a plan with [search] and [budget])")
    se.add_argument("--trials", type=int, help="finished trials to reach (default: the plan's [search] trials)")
    se.add_argument("--timeout", type=float, help="start no trial after this many seconds")
    se.add_argument("--quick", action="store_true", help="the plan's declared quick size")
    se.add_argument("--out", type=Path, default=Path("reports"), help="where run folders go (default: reports)")
    se.add_argument("--run-id", help="run id (default: search-<plan name>-<hash>; the same id resumes)")
    se.add_argument("--executor", default="local", help="who computes host stages: local or ray (as for run)")
    se.add_argument("--workers", default=os.environ.get("EDGEBENCH_WORKERS", "auto"),
                    help="host stages at once, as for run (0: in this process)")
    se.add_argument("--address", help="the Ray cluster to join (--executor ray)")
    se.set_defaults(func=_cmd_search)
    rep = sub.add_parser("report", help="re-render a stored run's report from its store")
    rep.add_argument("run", nargs="?", help="run id or run folder")
    rep.add_argument("--out", type=Path, default=Path("reports"), help="where run folders are (default: reports)")
    rep.add_argument("--format", action="append", choices=("md", "html", "csv", "json"),
                     help="md, html, csv or json (repeat for several; default: all four)")
    rep.add_argument("--results", type=Path, metavar="DIR", help="write the run's summary tables (CSV) and run.json "
                     "(run id, commit, command, size, dates, machines) into DIR, e.g. docs/results/PLAN, instead")
    rep.add_argument("--add-seeds", action="store_true",
                     help="with --results: add the run's training seeds to DIR, written from another run of the same "
                          "plan with other --seeds (the tables then give the mean over all their seeds)")
    rep.add_argument("--from-results", type=Path, metavar="DIR",
                     help="print the Markdown tables of a results folder (no store needed)")
    rep.add_argument("--update-doc", type=Path, metavar="FILE", help="rewrite the tables between <!-- results:PLAN:"
                     "TABLE --> and <!-- /results --> markers in FILE from its results folders")
    rep.add_argument("--results-root", type=Path, metavar="DIR",
                     help="where --update-doc finds PLAN/ (default: results/ beside FILE)")
    rep.add_argument("--check", action="store_true", help="with --update-doc: change nothing, exit 1 if out of date")
    rep.set_defaults(func=_cmd_report)
    cmp_ = sub.add_parser("compare", help="two stored runs side by side, with differences and their significance")
    cmp_.add_argument("run_a", help="run id or run folder (A)")
    cmp_.add_argument("run_b", help="run id or run folder (B)")
    cmp_.add_argument("--out", type=Path, default=Path("reports"), help="where run folders are (default: reports)")
    cmp_.add_argument("--to", type=Path, help="where to write compare.md/.html/CSV (default: OUT/compare/A--B)")
    cmp_.add_argument("--floor", type=float, default=None,
                      help="latency ratios within 1 ± FLOOR of each other are never resolved between two runs "
                           "(default 0.10: the run-to-run drift that rounds inside one run cannot see)")
    cmp_.set_defaults(func=_cmd_compare)
    runs = sub.add_parser("runs", help="list the stored runs")
    runs.add_argument("--out", type=Path, default=Path("reports"), help="where run folders are (default: reports)")
    runs.set_defaults(func=_cmd_runs)
    for name, fn, text in (("models", _cmd_models, "list zoo models"), ("attacks", _cmd_attacks, "list attacks")):
        sub.add_parser(name, help=text).set_defaults(func=fn)
    t = sub.add_parser("targets", help="list targets, or check one: edgebench targets check NAME")
    t.add_argument("action", nargs="?", choices=("list", "check", "prepare"), default="list")
    t.add_argument("name", nargs="?", help="target name or .toml path (for check, and prepare: an emulated "
                   "target's sysroot and wheels, downloaded once)")
    t.set_defaults(func=_cmd_targets)
    return p


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill PID``, a batch scheduler's preemption, ``docker stop``), stopped as Ctrl-C stops a run: the
    workers and the device agents end, the run is stored as interrupted, and the same command resumes it."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM raises :class:`Terminated` in the main thread, once: a second SIGTERM kills
    at once, as it would have. A SIGTERM that the parent ignores (or handles) stays as it is."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def terminated(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated

    signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run(args: argparse.Namespace) -> int:
    """The command, with a Ctrl-C in disguise (an error it caused: an interrupted import of a C extension, say,
    see :func:`~edgebench.agent.protocol.interrupt_behind`) raised as the interrupt it was."""
    try:
        return int(args.func(args))
    except Exception as exc:
        from edgebench.agent.protocol import raise_interrupt_behind

        raise_interrupt_behind(exc)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the run's provenance records the command line
    setup_logging(args.verbose)
    try:
        with _sigterm_as_interrupt():
            return _run(args)
    except EdgebenchError as exc:
        print(f"edgebench: {exc}", file=sys.stderr)
        return exc.exit_code
    except (OSError, sqlite3.OperationalError) as exc:
        if not is_disk_full(exc):
            raise
        print(f"edgebench: the disk is full ({exc}); free space and run the same command again: finished stages "
              "and stored results are kept", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        how, code = ("terminated (SIGTERM)", 143) if isinstance(exc, Terminated) else ("interrupted", 130)
        print(f"edgebench: {how}; finished stages are kept, run the same command again to resume", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
