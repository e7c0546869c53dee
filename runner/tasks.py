"""The background task that executes one Run, queued by the receiver."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.tasks import TaskContext, task
from django.utils import timezone

from runner.concurrency import WAITING
from runner.models import Run
from runner.worker_stop import WORKER_STOP


@task(takes_context=True)
def execute_run(context: TaskContext) -> None:
    """Execute the Run created together with this task (it holds this task's id)."""
    # Only workers execute runs: the receiver, which imports this module to enqueue, never
    # loads the executor, git and all that comes with them.
    from runner import worker

    run = Run.objects.filter(task_id=context.task_result.id).first()
    if run is None:
        return  # cancelled while waiting for its turn, after this task was queued
    # A stopping worker hands it back, for another worker or this one restarted.
    if WORKER_STOP.requested() or worker.execute(run) == WAITING:
        try_again_later(run)


def queue_execution(queue: str, run_after: datetime | None = None) -> str:
    """Enqueue an execute_run task on `queue`; its id, for the Run it will execute."""
    return str(execute_run.using(queue_name=queue, run_after=run_after).enqueue().id)


def try_again_later(run: Run) -> None:
    """Hand the run to a new task that starts after CONCURRENCY_RETRY_SECONDS."""
    run_after = timezone.now() + timedelta(seconds=settings.CONCURRENCY_RETRY_SECONDS)
    with transaction.atomic():
        task_id = queue_execution(run.queue, run_after)
        Run.objects.queued().filter(pk=run.pk).update(task_id=task_id)
