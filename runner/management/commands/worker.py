"""Execute queued runs: django-tasks-db's worker, woken when work is queued, with a graceful
stop and a reaper for runs whose worker died."""

import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.crypto import get_random_string
from django_tasks_db.compat import DEFAULT_TASK_BACKEND_ALIAS
from django_tasks_db.management.commands import db_worker

from runner.execution.sandbox import sandbox_problem
from runner.execution.task_loop import GracefulWorker
from runner.execution.upkeep import look_after, reap
from runner.execution.worker import worker_name
from runner.models import WorkerSeen


class Command(BaseCommand):
    help = "Run queued runs (from QUEUES, * for all) and mark those whose worker died."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--queues", default="*", help="comma-separated runs_on names, or *")
        parser.add_argument(
            "--interval", type=float, help="seconds between polls when not woken "
            "(default: WORKER_POLL_SECONDS)",
        )  # fmt: skip
        parser.add_argument("--batch", action="store_true", help="run what is queued, then exit")

    def handle(self, *args, queues: str, interval: float | None, batch: bool, **options) -> None:
        reap()
        WorkerSeen.beat(worker_name(), queues, sandbox_problem())
        if not batch:
            threading.Thread(
                target=look_after, args=(worker_name(), queues), daemon=True, name="upkeep"
            ).start()
        db_worker.Command(stdout=self.stdout, stderr=self.stderr).configure_logging(
            options["verbosity"]
        )
        worker = GracefulWorker(
            queue_names=queues.split(","), batch=batch,
            interval=settings.WORKER_POLL_SECONDS if interval is None else interval,
            backend_name=DEFAULT_TASK_BACKEND_ALIAS, startup_delay=False, max_tasks=None,
            worker_id=get_random_string(32), excluded_queue_names=[],
        )  # fmt: skip
        worker.configure_signals()
        worker.run()
