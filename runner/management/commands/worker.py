"""Execute queued runs: django-tasks-db's worker, plus a reaper for runs of dead workers."""

import logging
import threading

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from runner.reaper import reap_stale_runs

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run queued runs (from QUEUES, * for all) and fail those whose worker died."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--queues", default="*", help="comma-separated runs_on names, or *")
        parser.add_argument("--interval", type=float, default=0.1, help="seconds between polls")
        parser.add_argument("--batch", action="store_true", help="run what is queued, then exit")

    def handle(self, *args, queues: str, interval: float, batch: bool, **options) -> None:
        reap_stale_runs()
        if not batch:
            threading.Thread(target=reap_forever, daemon=True, name="reaper").start()
        call_command(
            "db_worker", queue_name=queues, interval=interval, batch=batch,
            startup_delay=False, reload=False, verbosity=options["verbosity"],
        )  # fmt: skip


def reap_forever() -> None:
    stop = threading.Event()
    while not stop.wait(settings.REAP_SECONDS):
        try:
            reap_stale_runs()
        except Exception:
            logger.exception("reaping stale runs failed; trying again later")
        finally:
            close_old_connections()
