"""The loop that takes tasks off the queue: django-tasks-db's worker, woken when work is
queued, with a graceful stop and a database that may go away."""

import logging
import time
from types import FrameType

from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import Min
from django.utils import timezone
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult, DBTaskResultQuerySet, get_date_max
from django_tasks_db.utils import exclusive_transaction

from runner.execution.database import UNAVAILABLE, backoff, describe
from runner.execution.stop import WORKER_STOP
from runner.execution.wakeup import Wakeups

logger = logging.getLogger(__name__)


class GracefulWorker(db_worker.Worker):
    """Idle, django-tasks-db's worker polls every `interval`; this one waits for a
    wake-up (runner.execution.wakeup), with `interval` as the fallback poll.

    Told to stop, django-tasks-db's worker would finish the whole run first, however
    long it takes, and when idle it exits at once, even between claiming a task and
    running it (the task would then stay claimed forever). This one ends its loop
    instead: a run just claimed is handed back to the queue, and a running step gets
    WORKER_STOP_GRACE_SECONDS, then is cancelled. A second signal cancels it now.

    And where django-tasks-db's worker exits when the database does not answer (looking
    for a task, or recording one), this one waits for it, trying again with growing waits
    on a new connection, until it is told to stop."""

    wakeups: Wakeups | None = None

    def shutdown(self, signum: int, frame: FrameType | None) -> None:
        logger.warning(
            "worker stopping (signal %s); a running step gets %ss to finish",
            signum, 0 if WORKER_STOP.requested() else settings.WORKER_STOP_GRACE_SECONDS,
        )  # fmt: skip
        WORKER_STOP.request()
        self.running = False
        if self.wakeups is not None:
            self.wakeups.interrupt()

    def run(self) -> None:
        db_worker.logger.info(
            "Starting worker worker_id=%s queues=%s", self.worker_id, ",".join(self.queue_names)
        )
        if not self.batch:
            self.wakeups = Wakeups(self.queue_names)
        try:
            self._loop()
        finally:
            if self.wakeups is not None:
                self.wakeups.close()

    def _loop(self) -> None:
        failures = 0
        while self.running:
            try:
                if not self._run_next():
                    if self.batch:
                        return
                    self.wakeups.wait(self._idle_seconds())
                failures = 0
            except UNAVAILABLE as error:
                failures += 1
                wait = backoff(failures)
                logger.warning(
                    "worker: the database does not answer (%s); trying again in %gs "
                    "(%d in a row)", describe(error), wait, failures,
                )  # fmt: skip
                connections.close_all()
                time.sleep(wait)

    def _run_next(self) -> bool:
        """Claim the next ready task and run it; False if there was none."""
        close_old_connections()  # a connection dropped while idle is replaced
        tasks = self._tasks().ready()
        with exclusive_transaction(tasks.db):
            task_result = tasks.get_locked()
            if task_result is not None:
                task_result.claim(self.worker_id)
        if task_result is None:
            return False
        self.run_task(task_result)
        return True

    def _tasks(self) -> DBTaskResultQuerySet:
        tasks = DBTaskResult.objects.filter(backend_name=self.backend_name)
        if self.process_all_queues:
            return tasks
        return tasks.filter(queue_name__in=self.queue_names)

    def _idle_seconds(self) -> float:
        """The fallback poll's wait, cut short for the next delayed task (a retry's
        run_after): nobody wakes the worker when it comes due."""
        delayed = self._tasks().filter(
            status="READY", run_after__gt=timezone.now(), run_after__lt=get_date_max()
        )
        due = delayed.aggregate(due=Min("run_after"))["due"]
        if due is None:
            return self.interval
        return min(self.interval, max((due - timezone.now()).total_seconds(), 0.0))
