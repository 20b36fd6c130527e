"""The ``edgebench`` command: ``run | report | models | attacks | targets [check NAME]``.

Errors a user can cause print one line and exit non-zero (2 for a bad plan or usage), without a traceback
and without losing results already stored.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edgebench import __version__
from edgebench.errors import EdgebenchError

log = logging.getLogger("edgebench")


def _cmd_run(args: argparse.Namespace) -> int:
    from edgebench.config import load_plan
    from edgebench.runner.pipeline import run_plan

    plan = load_plan(args.plan, quick=args.quick)
    summary = run_plan(plan, out_dir=args.out, run_id=args.run_id)
    log.info("run %s finished in %.1f s: %s", summary.run_id, summary.seconds, summary.run_dir / "report.md")
    if summary.failed:
        for stage, why in summary.failed.items():
            print(f"edgebench: {stage} failed: {why}", file=sys.stderr)
        print(f"edgebench: {len(summary.failed)} stage(s) failed; finished results are in {summary.run_dir}",
              file=sys.stderr)
        return 1
    print(summary.run_dir / "report.md")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from edgebench.report.render import write_report
    from edgebench.store import Store

    run_dir = Path(args.run)
    if not run_dir.is_dir():
        run_dir = args.out / args.run
    db = run_dir / "results.sqlite"
    if not db.is_file():
        existing = sorted(p.parent.name for p in args.out.glob("*/results.sqlite"))
        raise EdgebenchError(f"run {args.run!r} not found under {args.out}; runs there: {existing or 'none'}")
    with Store.open(db, create=False) as store:
        paths = write_report(store, run_dir.name, run_dir)
    for p in paths:
        print(p)
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
    for name, where in available_targets().items():
        try:
            t = load_target(name)
        except EdgebenchError as exc:
            print(f"{name:20s} ERROR  {exc}")
            continue
        host = t.transport_options.get("host", "")
        print(f"{name:20s} {t.transport:5s} {host:24s} backends={','.join(t.backends)} "
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
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a plan (no argument: the built-in default plan)")
    r.add_argument("plan", nargs="?", help="plan TOML file")
    r.add_argument("--out", type=Path, default=Path("reports"), help="where run folders go (default: reports)")
    r.add_argument("--run-id", help="run id (default: <plan name>-<plan hash>; the same id resumes)")
    r.add_argument("--quick", action="store_true", help="the plan's declared quick size")
    r.set_defaults(func=_cmd_run)
    rep = sub.add_parser("report", help="re-render a stored run's report")
    rep.add_argument("run", help="run id or run folder")
    rep.add_argument("--out", type=Path, default=Path("reports"))
    rep.set_defaults(func=_cmd_report)
    for name, fn, text in (("models", _cmd_models, "list zoo models"), ("attacks", _cmd_attacks, "list attacks")):
        sub.add_parser(name, help=text).set_defaults(func=fn)
    t = sub.add_parser("targets", help="list targets, or check one: edgebench targets check NAME")
    t.add_argument("action", nargs="?", choices=("list", "check"), default="list")
    t.add_argument("name", nargs="?", help="target name or .toml path (for check)")
    t.set_defaults(func=_cmd_targets)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s",
                        stream=sys.stderr)
    try:
        return int(args.func(args))
    except EdgebenchError as exc:
        print(f"edgebench: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("edgebench: interrupted; finished stages are kept, run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
