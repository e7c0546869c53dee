"""Queueing a run's execution: a django.tasks task on the run's queue, in the caller's
transaction, so a run and its task are committed together or not at all."""

from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import transaction
from django.tasks import Task
from django.utils import timezone
from django.utils.module_loading import import_string

from runner.models import Run

# The worker's task, named by the path django-tasks stores and the worker imports it by:
# the lifecycle queues work for the worker without depending on it (import-linter holds
# that), and a receiver never loads the worker's code.
EXECUTE_RUN = "runner.execution.tasks.execute_run"


@cache
def _execute_run() -> Task:
    return import_string(EXECUTE_RUN)


def queue_execution(queue: str, run_after: datetime | None = None) -> str:
    """Enqueue an execute_run task on `queue`; its id, for the Run it will execute."""
    return str(_execute_run().using(queue_name=queue, run_after=run_after).enqueue().id)


def try_again_later(run: Run) -> None:
    """Hand the run to a new task that starts after CONCURRENCY_RETRY_SECONDS."""
    run_after = timezone.now() + timedelta(seconds=settings.CONCURRENCY_RETRY_SECONDS)
    with transaction.atomic():
        task_id = queue_execution(run.queue, run_after)
        Run.objects.queued().filter(pk=run.pk).update(task_id=task_id)
