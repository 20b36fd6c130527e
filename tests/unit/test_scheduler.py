"""The scheduler's rules (edgebench.runner.stages), with stages that sleep and note when they ran: host stages
run as many at once as the executor has workers; device jobs run at once across devices and one at a time on
each; a job on this host never overlaps host work; failures skip dependents; a lost worker's stage is retried.

The executor here is a real one on threads, implementing the executor interface of
:mod:`edgebench.runner.executors` with callables as tasks (the process pool and Ray are tested end to end in
tests/integration/test_executors.py and test_ray.py)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from edgebench.errors import DataError
from edgebench.runner.executors.base import Needs
from edgebench.runner.stages import Deferred, Stage, execute


class WorkerGone(Exception):
    pass


class ThreadExecutor:
    name, retries = "threads", 1

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = ThreadPoolExecutor(workers)
        self.submitted = 0

    def submit(self, task: Any, needs: Needs) -> Future:
        self.submitted += 1
        return self.pool.submit(task)

    def lost(self, exc: BaseException, fut: Future | None = None) -> str | None:
        return "its worker thread was lost" if isinstance(exc, WorkerGone) else None

    def collect(self, report: dict[str, Any]) -> None:
        pass

    def shutdown(self, cancel: bool = False) -> None:
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)

    def describe(self) -> str:
        return f"{self.workers} threads"


@dataclass
class Value:
    note: str = ""
    cached: bool = False
    worker: Any = None


class Clock:
    """When each piece of work ran (monotonic seconds)."""

    def __init__(self) -> None:
        self.spans: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def work(self, name: str, seconds: float) -> dict[str, Any]:
        t0 = time.monotonic()
        time.sleep(seconds)
        with self.lock:
            self.spans[name] = (t0, time.monotonic())
        return {"note": f"{name} worked", "cached": False, "pid": threading.get_ident()}

    def most_at_once(self) -> int:
        """The largest number of spans running at one instant (each span's start is such an instant)."""
        return max(sum(s0 <= t0 < s1 for s0, s1 in self.spans.values()) for t0, _ in self.spans.values())

    def overlap(self, a: str, b: str) -> bool:
        (a0, a1), (b0, b1) = self.spans[a], self.spans[b]
        return a0 < b1 and b0 < a1


def host(clock: Clock, name: str, seconds: float = 0.3, deps: tuple[str, ...] = ()) -> Stage:
    return Stage(name, Value, deps, kind="host", task=lambda: (lambda: clock.work(name, seconds), Needs()))


def device(clock: Clock, name: str, dev: str, *, exclusive: bool = False, deps: tuple[str, ...] = (),
           seconds: float = 0.3) -> Stage:
    return Stage(name, lambda: Deferred(work=lambda: clock.work(name, seconds), finish=lambda r: Value(r["note"])),
                 deps, kind="device", device=dev, exclusive=exclusive)


def test_host_stages_run_as_many_at_once_as_workers() -> None:
    clock, ex = Clock(), ThreadExecutor(2)
    out = execute([host(clock, f"h{i}") for i in range(4)], executor=ex)
    assert sorted(out.values) == ["h0", "h1", "h2", "h3"] and ex.submitted == 4
    assert all(v.note.endswith("worked") and not v.cached for v in out.values.values())
    assert clock.most_at_once() == 2  # two at a time, never three


def test_gpu_stages_take_the_gpu_slots_and_cpu_stages_run_beside_them() -> None:
    """``gpu_slots`` (the plan's ``[host] gpu_workers``): three GPU stages on three workers run one at a time,
    while a CPU stage runs beside them."""
    import dataclasses

    clock, ex = Clock(), ThreadExecutor(3)
    gpu = [dataclasses.replace(host(clock, f"g{i}", 0.2), gpu=lambda: True) for i in range(3)]
    out = execute([*gpu, host(clock, "cpu", 0.5)], executor=ex, gpu_slots=1)
    assert sorted(out.values) == ["cpu", "g0", "g1", "g2"]
    assert not any(clock.overlap(f"g{i}", f"g{j}") for i in range(3) for j in range(i + 1, 3))
    assert clock.overlap("g0", "cpu")
    clock2 = Clock()
    gpu2 = [dataclasses.replace(host(clock2, f"g{i}", 0.2), gpu=lambda: True) for i in range(2)]
    execute(gpu2, executor=ThreadExecutor(2), gpu_slots=2)
    assert clock2.overlap("g0", "g1")


def test_devices_run_at_once_but_one_job_per_device() -> None:
    clock = Clock()
    stages = [device(clock, "a1", "pi-a"), device(clock, "a2", "pi-a"), device(clock, "b1", "pi-b"),
              device(clock, "b2", "pi-b")]
    out = execute(stages, executor=ThreadExecutor(2))
    assert sorted(out.values) == ["a1", "a2", "b1", "b2"]
    assert not clock.overlap("a1", "a2") and not clock.overlap("b1", "b2")
    assert clock.overlap("a1", "b1")  # the first job of each device starts at once


def test_a_job_on_this_host_never_overlaps_host_work() -> None:
    clock = Clock()
    stages = [host(clock, "h0", 0.4), host(clock, "h1", 0.4), device(clock, "local", "local", exclusive=True),
              host(clock, "h2", 0.2), host(clock, "h3", 0.2), device(clock, "remote", "pi-a")]
    out = execute(stages, executor=ThreadExecutor(2))
    assert len(out.values) == 6
    for h in ("h0", "h1", "h2", "h3"):
        assert not clock.overlap("local", h), h
    assert clock.overlap("remote", "h0")  # a job on another device goes on beside host work


def test_a_job_waiting_for_this_host_leaves_no_worker_idle() -> None:
    """A long host stage in flight and a job on this host waiting for it: the other worker still takes the next
    host stage (holding it back would idle that core for as long as the long stage runs); the job runs after."""
    clock = Clock()
    stages = [host(clock, "long", 0.6), device(clock, "local", "local", exclusive=True), host(clock, "next", 0.2)]
    out = execute(stages, executor=ThreadExecutor(2))
    assert len(out.values) == 3
    assert clock.overlap("long", "next")
    assert not clock.overlap("local", "long") and not clock.overlap("local", "next")


def test_a_failed_stage_skips_its_dependents_and_the_rest_goes_on() -> None:
    clock = Clock()

    def broken() -> dict[str, Any]:
        raise DataError("bad.npz: holds pickled objects")

    stages = [Stage("bad", Value, kind="host", task=lambda: (broken, Needs())), host(clock, "good"),
              device(clock, "job", "pi-a", deps=("bad",)), device(clock, "job2", "pi-a", deps=("good",))]
    seen: list[tuple[str, str]] = []
    out = execute(stages, executor=ThreadExecutor(2), on_status=lambda n, s, note, dt: seen.append((n, s)))
    assert out.failed == {"bad": "bad.npz: holds pickled objects"}
    assert out.skipped == {"job": "needs bad, which did not finish"}
    assert sorted(out.values) == ["good", "job2"]
    assert sorted(seen) == [("bad", "failed"), ("good", "done"), ("job", "skipped"), ("job2", "done")]


def test_a_lost_worker_is_retried_then_the_stage_fails(caplog: pytest.LogCaptureFixture) -> None:
    tries = {"flaky": 0, "doomed": 0}

    def flaky() -> dict[str, Any]:
        tries["flaky"] += 1
        if tries["flaky"] == 1:
            raise WorkerGone()
        return {"note": "second time lucky"}

    def doomed() -> dict[str, Any]:
        tries["doomed"] += 1
        raise WorkerGone()

    stages = [Stage("flaky", Value, kind="host", task=lambda: (flaky, Needs())),
              Stage("doomed", Value, kind="host", task=lambda: (doomed, Needs())),
              Stage("after", Value, ("doomed",), kind="host", task=lambda: (flaky, Needs()))]
    with caplog.at_level("WARNING", logger="edgebench"):
        out = execute(stages, executor=ThreadExecutor(2))
    assert tries == {"flaky": 2, "doomed": 2}  # one retry each (the executor's retries = 1)
    assert out.values["flaky"].note == "second time lucky"
    assert out.failed == {"doomed": "its worker thread was lost, 2 time(s); nothing of it was kept"}
    assert out.skipped == {"after": "needs doomed, which did not finish"}
    assert "flaky: its worker thread was lost; retrying (attempt 2 of 2)" in caplog.text


def test_a_device_job_that_fails_is_recorded_with_its_reason() -> None:
    from edgebench.errors import DeviceError

    def drop() -> None:
        raise DeviceError("target 'pi-a': connection lost mid-job (exit 255); run again to resume")

    stages = [Stage("job", lambda: Deferred(work=drop, finish=lambda r: Value()), kind="device", device="pi-a"),
              device(Clock(), "other", "pi-b")]
    out = execute(stages, executor=ThreadExecutor(1))
    assert out.failed == {"job": "target 'pi-a': connection lost mid-job (exit 255); run again to resume"}
    assert "other" in out.values


def test_an_unexpected_error_in_a_worker_is_raised_not_hidden() -> None:
    def bug() -> dict[str, Any]:
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        execute([Stage("h", Value, kind="host", task=lambda: (bug, Needs()))], executor=ThreadExecutor(1))


def test_stages_without_workers_run_in_place_in_order() -> None:
    order: list[str] = []
    stages = [Stage(n, lambda n=n: order.append(n) or Value(), kind="host", task=lambda: (None, Needs()))
              for n in ("a", "b", "c")]
    out = execute(stages)  # the inline executor: no task is ever submitted
    assert order == ["a", "b", "c"] and len(out.values) == 3
