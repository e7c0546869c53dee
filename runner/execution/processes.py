"""Run one step as its own process group and stream its output. No ORM.

Measured before it was written (DESIGN.md): Popen with a pipe read in 64 KiB chunks
moves 200 MB in 0.31 s at 25 MiB RSS; `sh` buffered it all in memory and left
grandchildren alive on timeout. The pipe is widened to READ_BYTES where Linux allows: a
step that floods its output is read in fewer, larger reads, into one buffer.
"""

import contextlib
import fcntl
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import IO

READ_BYTES = 1024 * 1024
# A read shorter than this (the pipe's usual size) found a step printing slowly.
SLOW_READ_BYTES = 64 * 1024
# What is read is passed on in pieces of at most this: larger short-lived objects, one a
# read, made the worker's heap grow with the output (glibc's malloc kept them).
PASS_BYTES = 64 * 1024
POLL_SECONDS = 0.25
# After the step's own process ends, what it left running may still hold the pipe.
DRAIN_SECONDS = 0.5
GATHER_SECONDS = 0.005
MASK = b"***"


class Stop(Enum):
    """Why a process group was stopped before it ended by itself."""

    TIMEOUT = "timeout"
    CANCEL = "cancel"


@dataclass(frozen=True)
class ProcessOutcome:
    exit_code: int | None
    timed_out: bool = False
    cancelled: bool = False

    @classmethod
    def stopped(cls, stop: Stop) -> "ProcessOutcome":
        return cls(None, timed_out=stop is Stop.TIMEOUT, cancelled=stop is Stop.CANCEL)


class SecretMasker:
    """Replaces secret values in a byte stream, also when one spans two chunks."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self.secrets = sorted({s.encode() for s in secrets if s}, key=len, reverse=True)
        self.keep = max((len(s) for s in self.secrets), default=1) - 1
        self.pending = b""

    def feed(self, data: bytes) -> bytes:
        """What of `data` can be released now, masked; the tail waits for the next chunk."""
        if not self.secrets:
            return data
        text = self._mask(self.pending + data)
        cut = max(len(text) - self.keep, 0)
        self.pending = text[cut:]
        return text[:cut]

    def flush(self) -> bytes:
        released, self.pending = self._mask(self.pending), b""
        return released

    def _mask(self, data: bytes) -> bytes:
        for secret in self.secrets:
            data = data.replace(secret, MASK)
        return data


def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str,
    timeout: float,
    on_output: Callable[[bytes], None],
    should_cancel: Callable[[], bool] = lambda: False,
    on_start: Callable[[int], None] = lambda pid: None,
    grace: float = 5.0,
    sandboxed: bool = False,
) -> ProcessOutcome:
    """Run `argv` in a new session; `on_start` gets its process (and group) id,
    `on_output` stdout and stderr as they come, and b"" on every quiet poll so it can
    flush by time. Past `timeout`, or once `should_cancel()`, the whole group gets
    SIGTERM, then SIGKILL after `grace`; `sandboxed` says `argv` is bwrap's, whose own
    process is spared the SIGTERM (see `end_group`)."""
    process = subprocess.Popen(
        argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    _widen(process.stdout)
    on_start(process.pid)
    with _Watched(process, on_output, sandboxed) as watched:
        stopped_by = watched.follow(time.monotonic() + timeout, should_cancel, grace)
    exit_code = process.wait()
    return ProcessOutcome.stopped(stopped_by) if stopped_by else ProcessOutcome(exit_code)


def _widen(pipe: IO[bytes]) -> None:
    """Let the pipe hold READ_BYTES: a step then writes on while the worker stores what
    it read. Linux may refuse a process more pipe memory: the pipe then stays as it is."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, READ_BYTES)


class _Watched:
    """A running step: its output pipe, its process group, and how it ends."""

    def __init__(
        self, process: subprocess.Popen, on_output: Callable[[bytes], None], sandboxed: bool
    ) -> None:
        self.process = process
        self.sandboxed = sandboxed
        self.on_output = on_output
        self.selector = selectors.DefaultSelector()
        self.selector.register(process.stdout, selectors.EVENT_READ)
        self.pipe_open = True
        self.buffer = bytearray(READ_BYTES)  # every read's: no new object as large as a read

    def __enter__(self) -> "_Watched":
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Whatever the step left behind in its group goes with it.
        kill_group(self.process.pid, signal.SIGKILL)
        self.selector.close()
        self.process.stdout.close()

    def follow(
        self, deadline: float, should_cancel: Callable[[], bool], grace: float
    ) -> Stop | None:
        """Pass output on until the step ends; why it was stopped, or None."""
        exited_at = None
        while True:
            if time.monotonic() >= deadline or should_cancel():
                reason = Stop.TIMEOUT if time.monotonic() >= deadline else Stop.CANCEL
                self.stop(grace)
                return reason
            if self.process.poll() is not None:
                exited_at = exited_at or time.monotonic()
                if not self.pipe_open or time.monotonic() - exited_at >= DRAIN_SECONDS:
                    return None
            self.pass_output()

    def pass_output(self) -> None:
        """Wait up to one poll for output and pass it on (b"" when there was none)."""
        if not self.pipe_open:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(POLL_SECONDS)
            self.on_output(b"")
        elif not self.selector.select(POLL_SECONDS):
            self.on_output(b"")
        elif size := os.readv(self.process.stdout.fileno(), [self.buffer]):
            read = memoryview(self.buffer)[:size]
            for start in range(0, size, PASS_BYTES):
                self.on_output(bytes(read[start : start + PASS_BYTES]))
            if size < SLOW_READ_BYTES:
                # A step printing line by line would wake us per line, and each wake-up
                # slows the step (measured +13-37% on 50,000 flushed lines, bench/output.py);
                # a short pause lets its output gather in the pipe instead.
                time.sleep(GATHER_SECONDS)
        else:
            self.pipe_open = False

    def stop(self, grace: float) -> None:
        # The pipe is read meanwhile: a step that prints as it dies must not block on it.
        end_group(
            self.process.pid, grace, lambda: self.process.poll() is None, self.pass_output,
            spare_leader=self.sandboxed,
        )  # fmt: skip
        self.process.wait()
        while self.pipe_open and self.selector.select(0):
            self.pass_output()


def end_group(
    pgid: int,
    grace: float,
    alive: Callable[[], bool],
    meanwhile: Callable[[], None] = lambda: time.sleep(0.05),
    *,
    spare_leader: bool = False,
) -> None:
    """SIGTERM to a process group, then SIGKILL once its leader is no longer `alive()` or
    `grace` seconds have passed, whatever comes first: what it left behind goes too.

    `spare_leader` for bwrap's group: bwrap dies of SIGTERM and its sandbox at once with
    it, so SIGTERM goes to the rest of the group (the step's processes; the sandbox's
    init ignores it), which ends bwrap when they end. SIGKILL goes to all."""
    if spare_leader:
        _signal_members(pgid, signal.SIGTERM)
    else:
        kill_group(pgid, signal.SIGTERM)
    give_up = time.monotonic() + grace
    while alive() and time.monotonic() < give_up:
        meanwhile()
    kill_group(pgid, signal.SIGKILL)


def kill_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _signal_members(pgid: int, signum: int) -> None:
    """`signum` to every process of group `pgid` but its leader."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != pgid and _group_of(entry.name) == pgid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signum)


def _group_of(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # The command name, in parentheses, may hold spaces: fields count from its end.
            return int(stat.read().rsplit(b")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None
