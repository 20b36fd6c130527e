"""Planning a big sweep: load the plan, expand it into its stage graph and compute every stage's status
(``edgebench run --dry-run``), against a floor measured in the same run.

The plan is generated: ``--models`` tiny models (digits_cnn on the synthetic data set) × ``--variants``
compressed variants each (k-bit at several widths, INQ, magnitude pruning) × ``--attacks`` attacks ×
``--targets`` targets (the built-in ``local`` target under several names is not needed: one target with
``--backends`` backends stands in for several devices; the graph is the same size). With the defaults it has
over 1,000 stages. Nothing is trained or run: the cache is empty, so every key is computed and looked up.

Timed, interleaved ``--reps`` times (median):
- ``plan``: ``load_plan`` of the TOML (validation included);
- ``graph``: ``Pipeline.stages()`` (the expansion into stages and their dependencies);
- ``dry-run``: ``Pipeline.dry_run()``: every stage's content key and cache lookup, the data set's
  fingerprint included (the data is loaded once, before timing, as a run does);
- ``schedule``: the local executor (``runner.stages.execute``) running as many no-op stages, each recorded
  in a real SQLite store as the pipeline records it (``set_stage``), with the progress view on (rendered to
  a buffer that claims to be a terminal): the executor's own cost per job;
- reference: ``content_key`` of one small spec per stage plus ``Path.is_file`` of one manifest per stage: the
  floor of keying and looking up that many stages.

Goals (issue: scale and faults): planning a 1,000-job sweep < 2 s on this 2-core machine; the local
executor's scheduling overhead < 50 ms per job.

    python bench/bench_planning.py [--models 6] [--variants 20] [--attacks 5] [--eps 2] [--backends 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's edgebench, installed or not
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_timing.py

from _timing import interleaved, table  # noqa: E402

ATTACKS = ("fgsm", "pgd", "bim", "mim", "cw", "deepfool", "apgd")


def plan_text(models: int, variants: int, attacks: int, eps: int, backends: int) -> str:
    out = ['[plan]\nname = "sweep"\n\n[data]\ndataset = "synthetic"\nn_train = 64\nn_test = 32\nshape = [1, 8, 8]\n']
    for m in range(models):
        out.append(f'[[models]]\nname = "m{m}"\narch = "digits_cnn"\ntrain = {{ epochs = 1 }}\n')
        for v in range(variants):
            kind = v % 3
            if kind == 0:
                out.append(f'[[compress]]\nmethod = "kbit"\nlabel = "k{v}"\nmodel = "m{m}"\nbits = {2 + v % 7}\n')
            elif kind == 1:
                out.append(f'[[compress]]\nmethod = "inq"\nlabel = "q{v}"\nmodel = "m{m}"\nbits = {3 + v % 5}\n')
            else:
                out.append(f'[[compress]]\nmethod = "magnitude_pruning"\nlabel = "p{v}"\nmodel = "m{m}"\n'
                           f'ratio = {0.1 + 0.8 * (v % 9) / 9:.3f}\n')
    grid = ", ".join(f"{0.05 * (i + 1):.2f}" for i in range(eps))
    for a in ATTACKS[:attacks]:
        out.append(f'[[attacks]]\nname = "{a}"\neps = [{grid}]\n' if a not in ("cw", "deepfool") else
                   f'[[attacks]]\nname = "{a}"\n')
    names = ", ".join(f'"{b}"' for b in ("onnxruntime", "openvino", "null")[:backends])
    out.append(f'[[targets]]\ntarget = "local"\nbackends = [{names}]\n')
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=6)
    ap.add_argument("--variants", type=int, default=20)
    ap.add_argument("--attacks", type=int, default=5)
    ap.add_argument("--eps", type=int, default=2)
    ap.add_argument("--backends", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()

    import os

    tmp = Path(tempfile.mkdtemp(prefix="eb-plan-"))
    os.environ["EDGEBENCH_CACHE"] = str(tmp / "cache")  # empty: every stage is keyed and looked up
    from edgebench.config import load_plan
    from edgebench.runner.cache import content_key
    from edgebench.runner.pipeline import Pipeline

    src = tmp / "sweep.toml"
    src.write_text(plan_text(args.models, args.variants, args.attacks, args.eps, args.backends))
    plan = load_plan(src)
    pipe = Pipeline(plan, out_dir=tmp / "reports")
    stages = pipe.stages()
    rows = pipe.dry_run()  # loads the data once, as a run does
    kinds: dict[str, int] = {}
    for r in rows:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    print(f"plan: {len(stages)} stages ({', '.join(f'{k} {n}' for k, n in kinds.items())}), "
          f"{sum(len(s.deps) for s in stages)} dependencies")

    def reference() -> None:
        for i, s in enumerate(stages):
            key = content_key("ref", {"stage": s.name, "i": i})
            (tmp / "cache" / key / "manifest.json").is_file()

    import io

    from edgebench.runner.progress import Progress
    from edgebench.runner.stages import Stage, execute
    from edgebench.store import Store

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    store = Store.open(tmp / "schedule.sqlite")
    noop = [Stage(s.name, lambda: None, s.deps) for s in stages]

    def schedule() -> None:
        def record(name: str, status: str, note: str, seconds: float) -> None:
            store.set_stage("bench", name, key="", status=status, info={"note": note, "seconds": seconds})
        execute(noop, on_status=record, progress=Progress(Tty(), mode="live", tick=0))

    import logging

    logging.getLogger("edgebench").setLevel(logging.WARNING)  # the per-stage lines are not what is timed
    times = interleaved({"reference (key + lookup per stage)": reference, "plan (load_plan)": lambda: load_plan(src),
                         "graph (stages)": pipe.stages, "dry-run (keys + cache lookups)": pipe.dry_run,
                         "schedule (execute no-op stages + store)": schedule}, reps=args.reps)
    store.close()
    print(table(times, "reference (key + lookup per stage)"))
    total = sum(statistics.median(times[k]) for k in ("plan (load_plan)", "graph (stages)",
                                                      "dry-run (keys + cache lookups)"))
    per_stage = total / len(stages) * 1e3
    verdict = "met" if total < 2.0 else "NOT met"
    print(f"\nplanning total (load + graph + dry run): {total:.3f} s for {len(stages)} stages "
          f"({per_stage:.2f} ms per stage); goal < 2 s for 1,000 jobs: {verdict}")
    sched = statistics.median(times["schedule (execute no-op stages + store)"]) / len(stages) * 1e3
    print(f"local executor overhead: {sched:.2f} ms per job (no-op stage, store record, live progress); "
          f"goal < 50 ms: {'met' if sched < 50 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
