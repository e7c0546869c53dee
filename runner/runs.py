"""Turn a delivery's matching pipelines into Run rows and their queued tasks."""

from django.db import transaction

from runner.github import Event
from runner.models import Run
from runner.pipelines import Verdict, is_from_fork
from runner.tasks import execute_run


def start_runs(delivery_pk: int, event: Event, verdicts: list[Verdict]) -> list[int]:
    """Queue a task and create its Run per starting verdict; call inside a transaction.

    The task is enqueued first so each Run is inserted knowing its task: one statement
    less per run than inserting, enqueueing, then linking the two.
    """
    from_fork = is_from_fork(event)
    runs = Run.objects.bulk_create(
        Run(
            delivery_id=delivery_pk,
            repository=event.repository[:200],
            pipeline=verdict.pipeline.name[:200],
            event=event.name,
            sha=event.sha[:64],
            ref=event.ref[:255],
            pr_number=event.pr_number,
            from_fork=from_fork,
            definition=verdict.pipeline.snapshot(from_fork),
            queue=verdict.pipeline.runs_on,
            task_id=str(execute_run.using(queue_name=verdict.pipeline.runs_on).enqueue().id),
            concurrency_group=(
                verdict.pipeline.concurrency.group if verdict.pipeline.concurrency else ""
            ),
        )
        for verdict in verdicts
        if verdict.starts
    )
    return [run.pk for run in runs]


def rerun(run: Run) -> Run:
    """A new queued run of the same pipeline definition, commit and delivery."""
    with transaction.atomic():
        task = execute_run.using(queue_name=run.queue).enqueue()
        return Run.objects.create(
            delivery_id=run.delivery_id,
            repository=run.repository,
            pipeline=run.pipeline,
            event=run.event,
            sha=run.sha,
            ref=run.ref,
            pr_number=run.pr_number,
            from_fork=run.from_fork,
            definition=run.definition,
            queue=run.queue,
            task_id=str(task.id),
            rerun_of=run,
            concurrency_group=run.concurrency_group,
        )
