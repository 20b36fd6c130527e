"""The live stage view: counts, per-kind and per-target lines, ETA from measured (non-cached) means, the
redraw rate limit, silence off a terminal, EDGEBENCH_PROGRESS, and execute() feeding it."""

from __future__ import annotations

import io
import logging
import re

import pytest

from edgebench.errors import EdgebenchError
from edgebench.runner.progress import Progress, fmt_clock, fmt_eta, fmt_rate, group_of, is_cached, mode_for
from edgebench.runner.stages import Stage, execute

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class TTY(io.StringIO):
    """A StringIO that says it is a terminal."""

    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


NAMES = ["data", "model/cnn", "compress/cnn/int8", "compress/cnn/prune", "compress/cnn/gi",
         "craft/cnn/fgsm", "craft/cnn/pgd",
         "device/local/onnxruntime/cnn", "device/local/onnxruntime/cnn/int8",
         "device/pi/openvino/cnn"]


def make(clock: Clock, stream: io.StringIO | None = None, **kw: object) -> Progress:
    return Progress(stream if stream is not None else TTY(), mode=kw.pop("mode", None), clock=clock,  # type: ignore[arg-type]
                    tick=0, width=kw.pop("width", 200), height=kw.pop("height", 50), **kw)  # type: ignore[arg-type]


def last_block(text: str) -> list[str]:
    """The block as it stands on screen after the last redraw (the text after the last erase code)."""
    tail = re.split(r"\r\x1b\[\d+A\x1b\[J", text)[-1]
    return tail.splitlines()


def line(block: list[str], label: str) -> str:
    return next(ln for ln in block[1:] if re.match(rf"\s+{re.escape(label)}\s+\d+/\d+ ", ln))


def test_group_names_and_formats() -> None:
    assert group_of("device/local/onnxruntime/cnn/int8") == ("device", "device local/onnxruntime")
    assert group_of("compress/cnn/int8") == ("compress", "compress")
    assert group_of("data") == ("data", "data")
    assert [fmt_clock(s) for s in (5, 192, 3780)] == ["5s", "3m12s", "1h03m"]
    assert [fmt_eta(s) for s in (40, 359, 3900)] == ["~40s", "~6m", "~1h05m"]
    assert [fmt_rate(s) for s in (0.001, 0.043, 12.34, 125)] == ["<0.01 s/stage", "0.04 s/stage", "12.3 s/stage",
                                                                 "2m05s/stage"]


def test_block_counts_per_kind_per_target_and_eta() -> None:
    clock, tty = Clock(), TTY()
    p = make(clock, tty)
    p.begin(NAMES)
    first = last_block(tty.getvalue())
    assert first[0] == "stages 0/10 done · 0 running · 10 queued · elapsed 0s · ETA –"
    for name, status, secs in [("data", "done", 2.0), ("model/cnn", "cached", 0.01),
                               ("compress/cnn/int8", "done", 10.0), ("compress/cnn/prune", "done", 20.0),
                               ("compress/cnn/gi", "failed", 1.0), ("device/local/onnxruntime/cnn", "done", 6.0)]:
        p.started(name)
        clock.advance(secs)
        p.finished(name, status, secs)
    p.started("craft/cnn/fgsm")
    clock.advance(4.0)
    # a log-driven redraw shows the state as it is now (no rate limit on a forced redraw)
    p._erase()
    p._draw()
    block = last_block(tty.getvalue())
    # 5 done (1 cached) + 1 running + 3 queued + 1 failed = 10
    # ETA: craft has nothing measured -> overall mean of measured non-cached stages (2+10+20+6)/4 = 9.5,
    # running for 4 s: 5.5 left + 9.5 for craft/cnn/pgd; device local/onnxruntime: 1 x 6.0; device pi: kind mean 6.0,
    # the two targets beside each other -> 5.5 + 9.5 + max(6, 6) = 21 s
    assert block[0] == "stages 5/10 done · 1 running · 3 queued · 1 failed · elapsed 43s · ETA ~21s"
    assert p.eta() == pytest.approx(21.0)
    p.workers = 2  # two host stages at once: the host share halves -> (5.5 + 9.5) / 2 + 6 = 13.5 s
    assert p.eta() == pytest.approx(13.5)
    p.workers = 1
    model = line(block, "model")
    assert "1/1" in model and "1 cached" in model and "s/stage" not in model  # a cached stage is not a rate
    comp = line(block, "compress")
    assert "2/3" in comp and "15.0 s/stage" in comp and "1 failed" in comp and "finished" in comp
    craft = line(block, "craft")
    assert "0/2" in craft and "▸ craft/cnn/fgsm 4s" in craft
    local = line(block, "device local/onnxruntime")
    assert "1/2" in local and "1 queued" in local and "6.0 s/stage" in local
    pi = line(block, "device pi/openvino")
    assert "0/1" in pi and "1 queued" in pi
    assert len(block) == 1 + 6  # header + data, model, compress, craft, two device targets
    assert [ln.split()[0] for ln in block[1:5]] == ["data", "model", "compress", "craft"]


def test_cached_stages_do_not_shorten_the_eta() -> None:
    clock = Clock()
    p = make(clock)
    p.begin([f"craft/m{i}/pgd" for i in range(6)])
    for i in range(3):  # three cache hits: near-free, nothing measured yet
        p.started(f"craft/m{i}/pgd")
        p.finished(f"craft/m{i}/pgd", "cached", 0.02)
    assert p.eta() is None and p.header().endswith("ETA –")
    p.started("craft/m3/pgd")
    clock.advance(30.0)
    p.finished("craft/m3/pgd", "done", 30.0)
    assert p.eta() == pytest.approx(2 * 30.0)  # the mean of the one measured stage, not (3 x 0.02 + 30) / 4
    assert p.header().endswith("ETA ~1m")
    c = p.counts()
    assert (c.done, c.cached, c.queued, c.running, c.failed) == (4, 3, 2, 0, 0)


def test_redraw_is_rate_limited() -> None:
    clock, tty = Clock(), TTY()
    p = make(clock, tty, min_interval=0.25)
    names = [f"export/m{i}" for i in range(40)]
    p.begin(names)
    assert p.draws == 1
    for name in names[:20]:  # 20 stages in 1 s: 40 events
        p.started(name)
        clock.advance(0.025)
        p.finished(name, "done", 0.025)
        clock.advance(0.025)
    assert 4 <= p.draws <= 5  # ~4 per second, not 40
    assert tty.getvalue().count("\x1b[J") == p.draws - 1
    clock.advance(0.3)
    p.started(names[20])  # the next event after the interval draws the pending state
    assert last_block(tty.getvalue())[0].startswith("stages 20/40 done · 1 running · 19 queued")


def test_log_lines_interleave_with_the_block() -> None:
    clock, tty = Clock(), TTY()
    handler = logging.StreamHandler(tty)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("edgebench")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        p = make(clock, tty)
        p.begin(["model/a", "model/b"])
        assert logger.handlers[-1] is not handler  # swapped for the block-aware one while live
        logger.info("[1/2] model/a: hello (1.0 s)")
        text = tty.getvalue()
        # erased, then the log line on its own line, then the block again
        before, after = text.split("[1/2] model/a: hello (1.0 s)\n")
        assert before.endswith("\r\x1b[2A\x1b[J") and after.startswith("stages 0/2 done")
        p.close()
        assert logger.handlers[-1] is handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert tty.getvalue().endswith("stages 0/2 done, 2 not run in 0s\n")  # block erased, summary logged


def test_not_a_terminal_gets_no_block_and_one_summary(caplog: pytest.LogCaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGEBENCH_PROGRESS", raising=False)
    clock, pipe = Clock(), io.StringIO()
    p = Progress(pipe, clock=clock, tick=0)
    assert p.mode == "log"
    with caplog.at_level("INFO", logger="edgebench"):
        p.begin(["model/a", "craft/a/fgsm"])
        p.started("model/a")
        clock.advance(3.0)
        p.finished("model/a", "done", 3.0)
        p.finished("craft/a/fgsm", "skipped", 0.0)
        p.close()
    assert pipe.getvalue() == "" and p.draws == 0
    assert [r.getMessage() for r in caplog.records] == ["stages 1/2 done, 1 skipped in 3s"]
    assert not ANSI.search(caplog.text)


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("EDGEBENCH_PROGRESS", "0")
    assert mode_for(TTY()) == "off"
    tty = TTY()
    p = Progress(tty, clock=Clock(), tick=0)
    with caplog.at_level("INFO", logger="edgebench"):
        p.begin(["model/a"])
        p.finished("model/a", "done", 1.0)
        p.close()
    assert tty.getvalue() == "" and caplog.records == []  # off: no block, no summary
    monkeypatch.setenv("EDGEBENCH_PROGRESS", "1")
    pipe = io.StringIO()
    assert mode_for(pipe) == "live"
    p = Progress(pipe, clock=Clock(), tick=0, width=120, height=20)
    p.begin(["model/a"])
    assert pipe.getvalue().startswith("stages 0/1 done · 0 running · 1 queued")
    p.close()
    assert pipe.getvalue().endswith("\r\x1b[2A\x1b[J")
    monkeypatch.setenv("EDGEBENCH_PROGRESS", "")
    assert mode_for(TTY()) == "live" and mode_for(io.StringIO()) == "log"
    assert mode_for(io.StringIO(), env="off") == "off"


def test_block_fits_the_terminal() -> None:
    clock, tty = Clock(), TTY()
    p = make(clock, tty, width=40, height=5)
    p.begin([f"device/t{i}/onnxruntime/m" for i in range(10)])
    block = last_block(tty.getvalue())
    assert len(block) == 4 and block[-1] == "  ... 8 more"
    assert all(len(ln) < 40 for ln in block)


def test_is_cached() -> None:
    class V:
        def __init__(self, note: str) -> None:
            self.note = note

    assert is_cached(V("host clean acc 0.9812 (cached)")) and is_cached(V("already measured in this run"))
    assert not is_cached(V("host success ε=0.1: 0.500 in 3.2 s")) and not is_cached(object())


def test_execute_reports_final_counts(caplog: pytest.LogCaptureFixture) -> None:
    class Value:
        note = "(cached)"

    def fail() -> None:
        raise EdgebenchError("no such board")

    clock, tty = Clock(), TTY()
    p = make(clock, tty)
    stages = [Stage("model/a", lambda: 1), Stage("craft/a/fgsm", lambda: Value(), ("model/a",)),
              Stage("device/pi/onnxruntime/a", fail, ("craft/a/fgsm",))]
    with caplog.at_level("INFO", logger="edgebench"):
        out = execute(stages, progress=p)
    assert out.values["model/a"] == 1 and "device/pi/onnxruntime/a" in out.failed
    c = p.counts()
    assert (c.total, c.done, c.cached, c.failed, c.running, c.queued, c.skipped) == (3, 2, 1, 1, 0, 0, 0)
    assert [st.status for st in p.stages.values()] == ["done", "cached", "failed"]
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs[0].startswith("[1/3] model/a (") and msgs[1].startswith("[2/3] craft/a/fgsm: (cached) (")
    assert msgs[2] == "[3/3] device/pi/onnxruntime/a: FAILED: no such board"
    assert msgs[-1] == "stages 2/3 done (1 cached), 1 failed in 0s"
    assert tty.getvalue().endswith("\x1b[J")  # the block is gone at the end


def test_interrupt_erases_the_block_and_restores_logging(caplog: pytest.LogCaptureFixture) -> None:
    tty = TTY()
    handler = logging.StreamHandler(tty)
    logger = logging.getLogger("edgebench")
    logger.addHandler(handler)
    try:
        p = make(Clock(), tty)

        def stop() -> None:
            raise KeyboardInterrupt

        with caplog.at_level("INFO", logger="edgebench"), pytest.raises(KeyboardInterrupt):
            execute([Stage("model/a", lambda: 1), Stage("model/b", stop), Stage("craft/b/fgsm", lambda: 2)],
                    progress=p)
        assert handler in logger.handlers and p._swapped == []
    finally:
        logger.removeHandler(handler)
    assert caplog.records[-1].getMessage() == "stages 1/3 done, 2 not run in 0s"
    assert tty.getvalue().endswith("stages 1/3 done, 2 not run in 0s\n")
