"""Execute queued runs: django-tasks-db's worker, with a graceful stop and a reaper for
runs whose worker died."""

import logging
import threading
from types import FrameType

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.crypto import get_random_string
from django_tasks_db.compat import DEFAULT_TASK_BACKEND_ALIAS
from django_tasks_db.management.commands import db_worker

from runner.execution.stop import WORKER_STOP
from runner.execution.upkeep import look_after, reap
from runner.execution.worker import worker_name
from runner.models import WorkerSeen

logger = logging.getLogger(__name__)


class GracefulWorker(db_worker.Worker):
    """Told to stop, django-tasks-db's worker would finish the whole run first, however
    long it takes, and when idle it exits at once, even between claiming a task and
    running it (the task would then stay claimed forever). This one ends its loop
    instead: a run just claimed is handed back to the queue, and a running step gets
    WORKER_STOP_GRACE_SECONDS, then is cancelled. A second signal cancels it now."""

    def shutdown(self, signum: int, frame: FrameType | None) -> None:
        logger.warning(
            "worker stopping (signal %s); a running step gets %ss to finish",
            signum, 0 if WORKER_STOP.requested() else settings.WORKER_STOP_GRACE_SECONDS,
        )  # fmt: skip
        WORKER_STOP.request()
        self.running = False


class Command(BaseCommand):
    help = "Run queued runs (from QUEUES, * for all) and mark those whose worker died."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--queues", default="*", help="comma-separated runs_on names, or *")
        parser.add_argument("--interval", type=float, default=0.1, help="seconds between polls")
        parser.add_argument("--batch", action="store_true", help="run what is queued, then exit")

    def handle(self, *args, queues: str, interval: float, batch: bool, **options) -> None:
        reap()
        WorkerSeen.beat(worker_name(), queues)
        if not batch:
            threading.Thread(
                target=look_after, args=(worker_name(), queues), daemon=True, name="upkeep"
            ).start()
        db_worker.Command(stdout=self.stdout, stderr=self.stderr).configure_logging(
            options["verbosity"]
        )
        worker = GracefulWorker(
            queue_names=queues.split(","), interval=interval, batch=batch,
            backend_name=DEFAULT_TASK_BACKEND_ALIAS, startup_delay=False, max_tasks=None,
            worker_id=get_random_string(32), excluded_queue_names=[],
        )  # fmt: skip
        worker.configure_signals()
        worker.run()
