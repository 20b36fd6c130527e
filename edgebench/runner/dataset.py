"""The data stages: loading the plan's data set, sharing it with workers as a cache entry, and the clean test
set every device job runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgebench.data import Dataset, load_dataset
from edgebench.runner.cache import content_key
from edgebench.runner.context import RunContext
from edgebench.runner.keys import testset_key

PARTS = ("x_train", "y_train", "x_test", "y_test")


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load_data(ctx: RunContext) -> Dataset:
    """The data stage: the plan's data set, after its subset (loaded once per context)."""
    if ctx.data is not None:  # loaded already (by a dry run deciding how to run)
        return ctx.data
    d = ctx.plan.data
    ds = load_dataset(d.dataset, where=f"{ctx.plan.source}: data", **d.params)
    if d.n_train is not None or d.n_test is not None:
        ds = ds.subset(n_train=d.n_train, n_test=d.n_test, seed=d.seed)
    ctx.data = ds
    return ds


def data_entry(ctx: RunContext) -> str:
    """The loaded data set (after its subset) as a cache entry of ``.npy`` arrays, made once per run, that
    workers map instead of loading the source again: no scikit-learn import, no IDX parsing, no data files
    needed on a Ray node, and the pages of one machine's workers are shared."""
    if ctx.data_entry is None:
        ds = ctx.ds
        key = content_key("dataset", {"fingerprint": ds.fingerprint()})
        if not ctx.cache.signed("dataset", key):
            with ctx.cache.build("dataset", key) as tmp:
                for part in PARTS:
                    np.save(tmp / f"{part}.npy", np.ascontiguousarray(getattr(ds, part)))
                (tmp / "dataset.json").write_text(json.dumps({"name": ds.name, "classes": list(ds.classes),
                                                              "fingerprint": ds.fingerprint()}))
        ctx.data_entry = key
    return ctx.data_entry


def use_data_entry(ctx: RunContext, key: str) -> bool:
    """Take the data set from cache entry ``key`` (see :func:`data_entry`), mapped copy-on-write; False when this
    cache does not hold it intact (the data stage then loads the source)."""
    if ctx.data is not None:
        return True
    entry = ctx.cache.get("dataset", key)
    if entry is None:
        return False
    meta = json.loads((entry / "dataset.json").read_text())
    arrays = {part: np.load(entry / f"{part}.npy", mmap_mode="c", allow_pickle=False) for part in PARTS}
    ds = Dataset(name=meta["name"], classes=tuple(meta["classes"]), **arrays)
    if ds.fingerprint() != meta["fingerprint"]:  # the arrays are hashed again: a key needs them anyway
        return False
    ctx.data = ds
    return True


def clean_set(ctx: RunContext) -> Path:
    """The clean test set every device job runs: one float32 ``.npz`` (``x``, ``y``)."""
    ds = ctx.ds
    key = testset_key(ds.fingerprint())
    entry = ctx.cache.get("testset", key)
    if entry is None:
        with ctx.cache.build("testset", key) as tmp:
            save_npz(tmp / "clean.npz", x=ds.x_test.astype(np.float32), y=ds.y_test)
        entry = ctx.cache.path("testset", key)
    return entry / "clean.npz"
