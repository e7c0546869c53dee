"""The loop that takes tasks off the queue: django-tasks-db's worker, with a graceful stop
and a database that may go away."""

import logging
import time
from types import FrameType

from django.conf import settings
from django.db import connections
from django_tasks_db.management.commands import db_worker

from runner.execution.database import UNAVAILABLE, backoff, describe
from runner.execution.stop import WORKER_STOP

logger = logging.getLogger(__name__)


class GracefulWorker(db_worker.Worker):
    """Told to stop, django-tasks-db's worker would finish the whole run first, however
    long it takes, and when idle it exits at once, even between claiming a task and
    running it (the task would then stay claimed forever). This one ends its loop
    instead: a run just claimed is handed back to the queue, and a running step gets
    WORKER_STOP_GRACE_SECONDS, then is cancelled. A second signal cancels it now.

    And where django-tasks-db's worker exits when the database does not answer (looking
    for a task, or recording one), this one waits for it, trying again with growing waits
    on a new connection, until it is told to stop."""

    def shutdown(self, signum: int, frame: FrameType | None) -> None:
        logger.warning(
            "worker stopping (signal %s); a running step gets %ss to finish",
            signum, 0 if WORKER_STOP.requested() else settings.WORKER_STOP_GRACE_SECONDS,
        )  # fmt: skip
        WORKER_STOP.request()
        self.running = False

    def run(self) -> None:
        failures = 0
        while self.running:
            try:
                super().run()
                return
            except UNAVAILABLE as error:
                failures += 1
                wait = backoff(failures)
                logger.warning(
                    "worker: the database does not answer (%s); trying again in %gs "
                    "(%d in a row)", describe(error), wait, failures,
                )  # fmt: skip
                connections.close_all()
                time.sleep(wait)
