"""A Ctrl-C in disguise ends a command as interrupted, never as a failure: a SIGINT that lands while a C extension
initialises comes out of the import as ImportError('initialization failed') caused by the KeyboardInterrupt
(measured: 2 of 60 SIGINTs sent during ``import numpy, onnxruntime``), and the code around it may wrap that in a
clear line of its own. Its timing cannot be arranged from a test, so the errors here are raised as it makes them;
the agent's side is in tests/unit/test_agent.py, the real Ctrl-C end to end in tests/integration/test_faults.py."""

from __future__ import annotations

import pytest

from edgebench.agent.protocol import interrupt_behind
from edgebench.errors import DeviceError
from edgebench.runner.stages import Stage, execute

INTERRUPTED = "edgebench: interrupted; finished stages are kept, run the same command again to resume"


def disguised(cause: BaseException | None) -> DeviceError:
    """What a backend says when the runtime's import fails: a clear line, from the ImportError."""
    try:
        try:
            raise ImportError("initialization failed") from cause
        except ImportError as exc:
            raise DeviceError("onnxruntime does not load here: pip install onnxruntime") from exc
    except DeviceError as exc:
        return exc


def test_the_interrupt_behind_an_error_is_found_through_causes_and_contexts() -> None:
    from edgebench.cli import Terminated

    ki, term = KeyboardInterrupt(), Terminated()
    assert interrupt_behind(disguised(ki)) is ki and interrupt_behind(disguised(term)) is term
    assert interrupt_behind(ki) is ki
    assert interrupt_behind(disguised(None)) is None and interrupt_behind(ValueError("x")) is None
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a  # a cycle ends the walk
    assert interrupt_behind(a) is None


def test_a_stage_failing_from_a_ctrl_c_interrupts_the_run_instead_of_failing() -> None:
    ran: list[str] = []

    def interrupted() -> object:
        raise disguised(KeyboardInterrupt())

    stages = [Stage("a", interrupted, kind="host"), Stage("b", lambda: ran.append("b"), kind="host")]
    with pytest.raises(KeyboardInterrupt):
        execute(stages)
    assert ran == []  # the run stopped there: no later stage ran, none was recorded as failed


def test_the_same_error_without_a_ctrl_c_is_the_stages_failure() -> None:
    def broken() -> object:
        raise disguised(None)

    out = execute([Stage("a", broken, kind="host")])
    assert out.failed == {"a": "onnxruntime does not load here: pip install onnxruntime"}


@pytest.mark.parametrize("wrapped", [True, False])
def test_the_cli_ends_a_disguised_ctrl_c_as_interrupted(wrapped: bool, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import edgebench.cli as cli

    def command(args: object) -> int:
        exc = disguised(KeyboardInterrupt())
        raise exc if wrapped else exc.__cause__  # the clear line, or the bare ImportError

    monkeypatch.setattr(cli, "_cmd_models", command)
    assert cli.main(["models"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == INTERRUPTED and "Traceback" not in err
