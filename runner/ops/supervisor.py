"""What `manage.py serve` does once it is set up: run its children (gunicorn and a worker),
restart one that crashes, and stop them all on SIGTERM or Ctrl-C.

Each child leads a session of its own, so a terminal's Ctrl-C (SIGINT to its foreground
process group) reaches serve alone: serve then sends each child one SIGTERM, and each
further signal serve receives one more (the worker's second signal cancels its running
step at once). A child still dies with serve, even with a SIGKILLed serve: Linux sends it
SIGTERM then (PR_SET_PDEATHSIG).

A child that exits while serve has not told it to is restarted after a backoff that
doubles with each crash in a row (1, 2, 4, 8 s); a child that ran for `reset_after`
seconds before crashing starts a new row. At the `limit`th crash in a row serve gives up:
it stops the other children and says which child crashed.
"""

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
# How often serve looks at its children and at the signals it was sent.
POLL_SECONDS = 0.1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True)
class Backoff:
    """When to restart a child after its crash number n in a row, and when to give up."""

    first_seconds: float = 1
    limit: int = 5
    reset_after: float = 60

    def delay(self, crashes: int) -> float | None:
        """Seconds to wait before restarting after crash `crashes` in a row; None: give up."""
        if crashes >= self.limit:
            return None
        return self.first_seconds * 2 ** (crashes - 1)

    def in_a_row(self, crashes_before: int, ran_seconds: float) -> int:
        """The crash count of a child that ran `ran_seconds` after `crashes_before` in a row."""
        return 1 if ran_seconds >= self.reset_after else crashes_before + 1


@dataclass(frozen=True)
class GaveUp:
    """A child that crashed `crashes` times in a row, the last time with `returncode`."""

    name: str
    crashes: int
    returncode: int

    def __str__(self) -> str:
        return (
            f"{self.name} crashed {self.crashes} times in a row"
            f" (last exit: {exit_status(self.returncode)})"
        )


def exit_status(returncode: int) -> str:
    """A Popen returncode as said in the log: `1`, or `-9 (SIGKILL)`."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"{returncode} ({signal.Signals(-returncode).name})"
    return str(returncode)


def die_with_parent(parent: int) -> None:
    """In a child, before it runs its command: ask Linux for SIGTERM when serve dies, even
    by SIGKILL; and exit should serve have died already, before the request was made."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(1)


class Child:
    def __init__(self, name: str, command: list[str]) -> None:
        self.name = name
        self.command = command
        self.process: subprocess.Popen | None = None
        self.started = 0.0
        self.crashes = 0
        self.restart_at = 0.0

    def start(self) -> None:
        parent = os.getpid()
        self.process = subprocess.Popen(
            self.command, start_new_session=True, preexec_fn=lambda: die_with_parent(parent)
        )
        self.started = time.monotonic()

    def end_leftovers(self) -> None:
        """SIGKILL the child's process group: what it left there on exiting (gunicorn's
        workers), or all of it. Only while the group's id cannot have been reused: its
        leader just reaped, or not reaped yet."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


class Supervisor:
    """Runs `children` (name: command) until a stop signal, or until one of them has
    crashed `backoff.limit` times in a row. A stop gives the children `stop_seconds` to
    exit after serve's first signal, then SIGKILLs them."""

    def __init__(
        self, children: dict[str, list[str]], stop_seconds: float, backoff: Backoff = Backoff()
    ) -> None:
        self.children = [Child(name, command) for name, command in children.items()]
        self.stop_seconds = stop_seconds
        self.backoff = backoff
        self.signals: list[int] = []

    def run(self) -> GaveUp | None:
        """Supervise until stopped: None after a stop signal, else the child given up on."""
        previous = {signum: signal.signal(signum, self._received) for signum in STOP_SIGNALS}
        try:
            for child in self.children:
                child.start()
            gave_up = None
            while not self.signals and gave_up is None:
                time.sleep(POLL_SECONDS)
                for child in self.children:
                    gave_up = gave_up or self._look_after(child)
            self._stop()
            return gave_up
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _received(self, signum: int, frame) -> None:
        # Only noted here; the loops above send what follows from it.
        self.signals.append(signum)

    def _look_after(self, child: Child) -> GaveUp | None:
        """Restart `child` if it is due, or note that it exited; None unless giving up."""
        now = time.monotonic()
        if child.process is None:
            if now >= child.restart_at:
                logger.info("restarting %s", child.name)
                child.start()
            return None
        returncode = child.process.poll()
        if returncode is None:
            return None
        child.end_leftovers()
        child.crashes = self.backoff.in_a_row(child.crashes, now - child.started)
        delay = self.backoff.delay(child.crashes)
        status = exit_status(returncode)
        if delay is None:
            logger.error(
                "%s exited with %s: crash %s in a row, giving up", child.name, status, child.crashes
            )
            child.process = None
            return GaveUp(child.name, child.crashes, returncode)
        logger.error(
            "%s exited with %s; restarting in %gs (crash %s in a row)",
            child.name, status, delay, child.crashes,
        )  # fmt: skip
        child.process = None
        child.restart_at = now + delay
        return None

    def _stop(self) -> None:
        """SIGTERM the running children once, and once more for each further signal to
        serve; SIGKILL those still running `stop_seconds` after the first."""
        running = [child for child in self.children if child.process is not None]
        self._tell_to_stop(running)
        told = len(self.signals)
        deadline = time.monotonic() + self.stop_seconds
        while running:
            time.sleep(POLL_SECONDS)
            for child in [child for child in running if child.process.poll() is not None]:
                child.end_leftovers()
                running.remove(child)
            if len(self.signals) > told:
                told = len(self.signals)
                self._tell_to_stop(running)
            if running and time.monotonic() >= deadline:
                logger.error(
                    "%s still running %gs after SIGTERM: killing it",
                    " and ".join(child.name for child in running), self.stop_seconds,
                )  # fmt: skip
                for child in running:
                    child.end_leftovers()
                    child.process.wait()
                running = []

    def _tell_to_stop(self, running: list[Child]) -> None:
        if not running:
            return
        cause = signal.Signals(self.signals[-1]).name if self.signals else "giving up"
        again = " again" if len(self.signals) > 1 else ""
        logger.warning(
            "stopping (%s%s): SIGTERM to %s",
            cause, again, " and ".join(child.name for child in running),
        )  # fmt: skip
        for child in running:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
