"""Two variants of one run compared per training seed, on the same samples: per seed, each one's accuracy,
their difference and McNemar's exact test on the stored per-sample correctness; over seeds, the mean difference
with its paired t interval. The report pairs every variant with its base only; this pairs any two (issue 20:
the evidence behind a verdict such as "proposed vs DNS + plain INQ").

    python bench/paired_variants.py RUN original/dns+proposed original/dns+dns-inq --out /work/fullruns \
        [--backend onnxruntime] [--target local]

Units are ``model`` or ``model/variant``; every attack, ε and source the two share is printed (clean first).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgebench.metrics.robustness import mcnemar  # noqa: E402
from edgebench.metrics.samples import unpack_correct  # noqa: E402
from edgebench.metrics.seeds import paired_seed_difference  # noqa: E402
from edgebench.store import BASE, Store  # noqa: E402


def _unit(text: str) -> tuple[str, str]:
    model, _, variant = text.partition("/")
    return model, variant or BASE


def compare(store: Store, run_id: str, a: str, b: str, *, backend: str, target: str) -> list[dict[str, Any]]:
    """One row per (attack, ε, source) the two units share: per-seed accuracies, McNemar p, the mean difference."""
    bits: dict[tuple[tuple[str, str], str, float, str, int], Any] = {}
    for s in store.samples(run_id, "correct"):
        if s["backend"] == backend and s["target"] == target:
            key = ((s["model"], s["variant"]), s["attack"], float(s["eps"]), s["source"], int(s.get("seed") or 0))
            bits[key] = s["data"]
    ua, ub = _unit(a), _unit(b)
    rows = []
    cases = sorted({(k[1], k[2], k[3]) for k in bits if k[0] == ua}, key=lambda c: (c[0] != "none", c))
    for attack, eps, source in cases:
        # a white-box attack's source is the unit itself: pair A's own with B's own
        src_b = "/".join(ub).removesuffix(f"/{BASE}") if source == "/".join(ua).removesuffix(f"/{BASE}") else source
        seeds = sorted(k[4] for k in bits if k[:4] == (ua, attack, eps, source) and (ub, attack, eps, src_b, k[4])
                       in bits)
        per = []
        for seed in seeds:
            ca = unpack_correct(bits[(ua, attack, eps, source, seed)])
            cb = unpack_correct(bits[(ub, attack, eps, src_b, seed)])
            if ca.shape != cb.shape:
                continue
            per.append((seed, float(ca.mean()), float(cb.mean()), mcnemar(ca, cb)["p_value"], len(ca)))
        if per:
            diff = paired_seed_difference([p[1] for p in per], [p[2] for p in per])
            rows.append({"attack": attack, "eps": eps, "source": source, "per_seed": per, "diff": diff})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--out", type=Path, default=Path("reports"))
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--target", default="local")
    args = ap.parse_args(argv)
    path = args.out / args.run / "results.sqlite"
    if not path.is_file():
        print(f"paired_variants: no {path}; give the run id and --out folder", file=sys.stderr)
        return 2
    with Store.open(path, create=False) as store:
        rows = compare(store, args.run, args.a, args.b, backend=args.backend, target=args.target)
    print(f"{args.a} vs {args.b}, run {args.run}, {args.target}/{args.backend}")
    for r in rows:
        seeds = "; ".join(f"seed {s}: {x:.3f} vs {y:.3f} (p = {p:.2g}, n = {n})" for s, x, y, p, n in r["per_seed"])
        d = r["diff"]
        ci = f" [{d.lo * 100:+.1f}, {d.hi * 100:+.1f}]" if d is not None and d.lo is not None else ""
        mean = f"{d.mean * 100:+.1f}{ci} points" if d is not None else "–"
        print(f"{r['attack']} eps={r['eps']:g} source={r['source']}: {mean}; {seeds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
