"""A plan shrunk to minutes, to check on the CPU that every stage of a long plan runs before a GPU's scarce time
is spent on it (issue 20: the seed plans at full size run on a lent GPU, 15 minutes per session). Its numbers
mean nothing and are never reported.

Every size the plan sets is capped: the data (``n_train``, ``n_test``), training and method epochs, attack and
defense steps, binary-search steps and attacked samples; one training seed. The stage graph is the plan's own:
the same models, methods, defenses, attacks, victims, targets and backends.

    python bench/smoke_plan.py plans/song2020-quantized.toml > /tmp/smoke.toml
    EDGEBENCH_DATA=../shared/data python -m edgebench.cli run /tmp/smoke.toml --workers 1 --out /tmp/smoke
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgebench.search.chosen import toml_text  # noqa: E402

# key: the largest value the smoke plan keeps (a list of values keeps its distinct capped values)
CAPS = {"epochs": 1, "compress_epochs": 1, "epochs_per_step": 1, "eps_ramp_epochs": 1, "steps": 3,
        "binary_search_steps": 1, "n": 20, "max_iter": 3, "restarts": 1, "queries": 50, "nb_grads": 3}
# steps of an iterative method (pruning steps, INQ's partition) are structure, not size: kept
STRUCTURE = {"compress"}


def _cap(value: Any, cap: int) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return min(value, cap) if isinstance(value, int) else min(value, float(cap))


def _shrink(entry: dict[str, Any], section: str) -> dict[str, Any]:
    out = {}
    for k, v in entry.items():
        if k == "steps" and section in STRUCTURE:
            out[k] = v
        elif k in CAPS and isinstance(v, list):
            out[k] = list(dict.fromkeys(_cap(x, CAPS[k]) for x in v))
        elif k in CAPS:
            out[k] = _cap(v, CAPS[k])
        elif k == "train" and isinstance(v, dict):
            out[k] = _shrink(v, "train")
        else:
            out[k] = v
    return out


def smoke(raw: dict[str, Any], *, n_train: int = 600, n_test: int = 200) -> dict[str, Any]:
    doc = {k: v for k, v in raw.items() if k not in ("quick", "reference", "gates")}
    doc["plan"] = {k: v for k, v in raw.get("plan", {}).items() if k != "seeds"} | {
        "name": f"{raw.get('plan', {}).get('name', 'plan')}-smoke", "seed": 0}
    doc["data"] = dict(raw.get("data", {})) | {"n_train": n_train, "n_test": n_test}
    for section in ("models", "compress", "defend", "attacks"):
        if section in raw:
            doc[section] = [_shrink(e, section) for e in raw[section]]
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("plan", type=Path)
    ap.add_argument("--n-train", type=int, default=600)
    ap.add_argument("--n-test", type=int, default=200)
    args = ap.parse_args(argv)
    raw = tomllib.loads(args.plan.read_text())
    sys.stdout.write(toml_text(smoke(raw, n_train=args.n_train, n_test=args.n_test),
                               f"# {args.plan}, shrunk by bench/smoke_plan.py: its numbers mean nothing\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
