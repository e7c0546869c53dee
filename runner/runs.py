"""Turn a delivery's matching pipelines into Run rows and their queued tasks."""

from runner.github import Event
from runner.models import Run
from runner.pipelines import Verdict, is_from_fork
from runner.tasks import execute_run


def start_runs(delivery_pk: int, event: Event, verdicts: list[Verdict]) -> list[int]:
    """Create a queued Run and its task per starting verdict; call inside a transaction."""
    from_fork = is_from_fork(event)
    run_ids = []
    for verdict in verdicts:
        if not verdict.starts:
            continue
        pipeline = verdict.pipeline
        run = Run.objects.create(
            delivery_id=delivery_pk,
            repository=event.repository[:200],
            pipeline=pipeline.name[:200],
            event=event.name,
            sha=event.sha[:64],
            ref=event.ref[:255],
            pr_number=event.pr_number,
            from_fork=from_fork,
            definition=pipeline.snapshot(from_fork),
            queue=pipeline.runs_on,
        )
        task = execute_run.using(queue_name=pipeline.runs_on).enqueue(run.pk)
        Run.objects.filter(pk=run.pk).update(task_id=str(task.id))
        run_ids.append(run.pk)
    return run_ids
