"""A worker that does not share the scheduler's cache (a Ray node; :mod:`edgebench.runner.worker`) ships back what
the scheduler lacks: the entries a stage built, and also those it found already in the worker's own cache, which
a node keeps from run to run (else the scheduler, missing them, would compute the stage again itself)."""

from __future__ import annotations

from pathlib import Path

from edgebench.config import load_plan
from edgebench.runner import worker
from edgebench.runner.executors.base import HostTask
from edgebench.runner.worker import run_host_task
from tests.integration.test_executors import sweep


def test_a_worker_ships_what_it_built_or_found_and_the_sender_lacks(tmp_path: Path) -> None:
    plan = load_plan(sweep(tmp_path, n=1, epochs=1))
    task = HostTask(plan=plan, stage="model/cnn0", cache_root=str(tmp_path / "node"), ship_outputs=True)
    built = run_host_task(task)
    assert not built["cached"]
    [(kind, key, blob)] = [e for e in built["entries"] if e[0] == "model"]
    assert isinstance(blob, bytes) and len(blob) > 1000
    worker._REPLICAS.clear()  # a later run's worker process: it holds nothing in memory
    found = run_host_task(task)  # the node kept its cache: found there, and still shipped
    assert found["cached"] and [(k, kk) for k, kk, _ in found["entries"] if k == "model"] == [(kind, key)]
    worker._REPLICAS.clear()
    sent = run_host_task(HostTask(plan=plan, stage="model/cnn0", cache_root=str(tmp_path / "node"),
                                  ship_outputs=True, inputs=((kind, key, None),)))  # the sender has it already
    assert sent["cached"] and not [e for e in sent["entries"] if e[0] == "model"]
    in_place = run_host_task(HostTask(plan=plan, stage="model/cnn0", cache_root=str(tmp_path / "node")))
    assert "entries" not in in_place  # a worker that shares the scheduler's cache ships nothing
