"""A running step outlives a database that goes away for a while.

While the database does not answer (a PostgreSQL connection terminated, SQLite's disk
I/O errors or a write lock held too long), the worker lets the step go on: its output
waits in memory within the step's usual bounds, its heartbeat and cancel checks are
skipped, and what must be recorded (a step's start and end, the run's end) is tried again
with growing waits, on a fresh connection each time. Only when the database has been away
for DATABASE_OUTAGE_SECONDS does the run end, as `error: database unavailable`, which is
itself recorded once the database is back.
"""

import contextlib
import logging
import time
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, connection

from runner.execution.stop import WORKER_STOP

logger = logging.getLogger(__name__)

# The database did not answer: a connection lost or refused, a disk or a lock that failed.
# Any other database error is a bug, not an outage, and is not waited out.
UNAVAILABLE = (OperationalError, InterfaceError)
FIRST_WAIT_SECONDS = 0.5
MOST_WAIT_SECONDS = 10.0


class DatabaseUnavailable(Exception):
    """The database has been away longer than this run may wait for it."""


class Outage:
    """What one run's worker knows of the database: answering, or away since when and
    when to try again. `limit` is how long a run waits for it."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.since: float | None = None
        self.failures = 0
        self.next_try = 0.0
        # Writes that failed and wait for the database, oldest first.
        self.deferred: list[Callable[[], object]] = []

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def away_for(self) -> float:
        return 0.0 if self.since is None else time.monotonic() - self.since

    def over_limit(self) -> bool:
        return self.since is not None and self.away_for() >= self.limit

    def may_try(self) -> bool:
        return self.since is None or time.monotonic() >= self.next_try

    def failed(self, error: Exception) -> None:
        """The database did not answer: when to try again, on a new connection."""
        if self.since is None:
            self.since = time.monotonic()
            logger.warning(
                "database unavailable (%s): the running step goes on, its output waits in "
                "memory; giving up after %ss", describe(error), self.limit,
            )  # fmt: skip
        self.failures += 1
        self.next_try = time.monotonic() + backoff(self.failures)
        # A broken connection is not reused: the next query opens a new one.
        with contextlib.suppress(Exception):
            connection.close()

    def answered(self) -> None:
        if self.since is not None:
            logger.warning("database back after %.1fs", self.away_for())
        self.since, self.failures = None, 0

    def attempt(self, write: Callable[[], object], defer: bool = True) -> bool:
        """Do the deferred writes, then `write`, if the database may be tried now; False
        if it could not be. A failed `write` waits in `deferred` unless `defer` is False."""
        if not self.may_try():
            if defer:
                self.deferred.append(write)
            return False
        pending = [*self.deferred, write]
        self.deferred = []
        for index, each in enumerate(pending):
            try:
                each()
            except UNAVAILABLE as error:
                self.failed(error)
                self.deferred = pending[index:] if defer else pending[index:-1]
                return False
        self.answered()
        return True

    def wait_for(self, write: Callable[[], object], give_up: bool = True) -> None:
        """Do `write` (and what was deferred), trying again while the database is away;
        DatabaseUnavailable once it has been away past the limit (unless not `give_up`:
        then until it answers, or the worker is told to stop at once)."""
        while not self.attempt(write, defer=False):
            if give_up and self.over_limit():
                raise DatabaseUnavailable(self.reason())
            if not give_up and WORKER_STOP.overdue():
                raise DatabaseUnavailable(f"{self.reason()}; the worker was stopped")
            time.sleep(max(self.next_try - time.monotonic(), 0.0))

    def reason(self) -> str:
        return f"database unavailable for {self.away_for():.0f}s"


def backoff(failures: int) -> float:
    """Seconds to wait after `failures` failures in a row: 0.5, 1, 2, ... up to 10."""
    return min(FIRST_WAIT_SECONDS * 2 ** (failures - 1), MOST_WAIT_SECONDS)


def describe(error: Exception) -> str:
    """The first line of a database error, for one log line."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
