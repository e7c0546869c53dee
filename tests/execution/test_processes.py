"""Steps as real process groups: output, exit codes, timeouts, cancels, masking."""

import os
import time

import pytest

from runner.execution import processes
from runner.execution.processes import SecretMasker, run_process
from tests.conftest import alive

ENV = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}


def run(script: str, timeout: float = 10, **options):
    output = bytearray()
    outcome = run_process(
        ["/bin/sh", "-c", script], env=options.pop("env", ENV), cwd=options.pop("cwd", "/"),
        timeout=timeout, on_output=output.extend, **options,
    )  # fmt: skip
    return outcome, bytes(output)


def test_stdout_and_stderr_arrive_interleaved_in_order():
    outcome, output = run("echo one; echo two >&2; echo three")
    assert (outcome.exit_code, output) == (0, b"one\ntwo\nthree\n")


def test_exit_code_is_reported():
    outcome, _ = run("exit 3")
    assert (outcome.exit_code, outcome.timed_out) == (3, False)


def test_large_output_streams_through_whole():
    outcome, output = run("head -c 5000000 /dev/zero")
    assert (outcome.exit_code, len(output)) == (0, 5_000_000)


def test_a_flood_fills_a_pipe_wider_than_the_default_and_is_passed_on_in_pieces(tmp_path):
    """The step writes 600 KB, ten times a default pipe, before anything is read: it does
    not block, and its output comes whole, in pieces of at most PASS_BYTES."""
    written = tmp_path / "written"
    seen_before_reading, pieces = [], []

    def wait_for_the_step(pid: int) -> None:
        deadline = time.monotonic() + 10
        while not written.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen_before_reading.append(written.exists())

    outcome = run_process(
        ["/bin/sh", "-c", f"head -c 600000 /dev/zero; touch {written}"], env=ENV, cwd="/",
        timeout=20, on_output=pieces.append, on_start=wait_for_the_step,
    )  # fmt: skip
    assert seen_before_reading == [True], "the step wrote it all without a read"
    assert outcome.exit_code == 0
    assert b"".join(pieces) == bytes(600_000)
    assert max(len(piece) for piece in pieces) == processes.PASS_BYTES


def test_timeout_kills_the_whole_process_group(tmp_path):
    pids = tmp_path / "pids"
    started = time.monotonic()
    outcome, _ = run(f"sleep 60 & echo $! > {pids}; sleep 60", timeout=1, grace=1)
    assert outcome.timed_out
    assert outcome.exit_code is None
    assert time.monotonic() - started < 10
    assert not alive(int(pids.read_text()))


def test_step_that_ignores_sigterm_is_killed_after_the_grace(tmp_path):
    outcome, output = run("trap '' TERM; echo ready; sleep 60", timeout=1, grace=0.5)
    assert outcome.timed_out
    assert output == b"ready\n"


def test_cancel_stops_the_step():
    calls = []

    def cancel_after_two_polls():
        calls.append(1)
        return len(calls) > 2

    outcome, _ = run("sleep 60", should_cancel=cancel_after_two_polls, grace=1)
    assert outcome.cancelled and not outcome.timed_out


def test_background_child_left_running_is_killed_when_the_step_ends(tmp_path):
    pids = tmp_path / "pids"
    outcome, _ = run(f"sleep 60 > /dev/null 2>&1 & echo $! > {pids}")
    assert outcome.exit_code == 0
    assert not alive(int(pids.read_text()))


def test_background_child_holding_the_pipe_does_not_hold_the_step(tmp_path):
    started = time.monotonic()
    outcome, _ = run("sleep 60 & echo done")
    assert outcome.exit_code == 0
    assert time.monotonic() - started < 5


def test_step_that_closes_its_output_keeps_running_until_it_exits():
    outcome, _ = run("exec >&- 2>&-; sleep 1; exit 4")
    assert outcome.exit_code == 4


def test_step_sees_only_the_environment_it_is_given():
    _, output = run("env | sort", env={"PATH": "/usr/bin:/bin", "ONLY": "this"})
    names = {line.split(b"=")[0] for line in output.splitlines()}
    assert names <= {b"PATH", b"ONLY", b"PWD", b"SHLVL", b"_"}
    assert b"ONLY" in names


def test_payload_values_in_the_environment_are_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    env = {**ENV, "GITHUB_REF_NAME": f"$(touch {marker})"}
    _, output = run('echo "$GITHUB_REF_NAME"', env=env)
    assert output == f"$(touch {marker})\n".encode()
    assert not marker.exists()


def test_step_runs_in_its_working_directory(tmp_path):
    _, output = run("pwd", cwd=str(tmp_path))
    assert output.decode().strip() == str(tmp_path)


@pytest.mark.parametrize(
    "chunks",
    [
        [b"token=hunter2 done"],
        [b"token=hun", b"ter2 done"],
        [b"token=h", b"u", b"nter2", b" done"],
    ],
)
def test_secret_is_masked_even_across_chunks(chunks):
    masker = SecretMasker(["hunter2", ""])
    released = b"".join(masker.feed(chunk) for chunk in chunks) + masker.flush()
    assert released == b"token=*** done"


def test_longer_secret_is_masked_before_a_shorter_one_inside_it():
    masker = SecretMasker(["abc", "xxabcxx"])
    assert masker.feed(b"1 xxabcxx 2 abc 3") + masker.flush() == b"1 *** 2 *** 3"


def test_without_secrets_output_passes_untouched():
    masker = SecretMasker([])
    assert masker.feed(b"plain") + masker.flush() == b"plain"
