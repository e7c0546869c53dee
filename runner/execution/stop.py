"""A worker process told to stop: its running step gets a grace period, then is cancelled.

Set from the signal handler of `manage.py worker`; read by the run being executed.
"""

import time

from django.conf import settings


class WorkerStop:
    # No lock: only signal handlers write, in the main thread, and a second signal may
    # interrupt the first handler (a lock would deadlock there).
    def __init__(self) -> None:
        self._cancel_at: float | None = None

    def request(self) -> None:
        """The first request starts the grace period; a second one ends it now."""
        if self._cancel_at is None:
            self._cancel_at = time.monotonic() + settings.WORKER_STOP_GRACE_SECONDS
        else:
            self._cancel_at = time.monotonic()

    def requested(self) -> bool:
        return self._cancel_at is not None

    def overdue(self) -> bool:
        """Whether the running step must be cancelled now."""
        return self._cancel_at is not None and time.monotonic() >= self._cancel_at


WORKER_STOP = WorkerStop()
