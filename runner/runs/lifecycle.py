"""Turn a delivery's matching pipelines into Run rows and their queued tasks."""

from runner.config.github import Event
from runner.config.pipelines import Pipeline, is_from_fork
from runner.models import Run, clipped
from runner.models.db import write_transaction
from runner.outgoing.queue import queue_started
from runner.runs.ended import runs_ended
from runner.runs.needs import settle_waiting
from runner.runs.queue import queue_execution

# What a re-run takes over from the run it repeats.
REPEATED_FIELDS = (
    "delivery_id", "repository", "pipeline", "event", "sha", "ref", "pr_number", "from_fork",
    "definition", "queue", "concurrency_group",
)  # fmt: skip


def start_runs(delivery_pk: int, event: Event, pipelines: list[Pipeline]) -> list[int]:
    """Queue a task and create its Run per pipeline; call inside a transaction.

    The task is enqueued first so each Run is inserted knowing its task: one statement
    less per run than inserting, enqueueing, then linking the two.
    """
    from_fork = is_from_fork(event)
    runs = Run.objects.bulk_create(
        Run(
            delivery_id=delivery_pk,
            pr_number=event.pr_number,
            from_fork=from_fork,
            definition=pipeline.snapshot(from_fork),
            queue=pipeline.runs_on,
            # A run that needs others gets its task once they have succeeded.
            status=Run.Status.WAITING if pipeline.needs else Run.Status.QUEUED,
            task_id=None if pipeline.needs else queue_execution(pipeline.runs_on),
            **clipped(
                Run,
                repository=event.repository,
                pipeline=pipeline.name,
                event=event.name,
                sha=event.sha,
                ref=event.ref,
                concurrency_group=pipeline.concurrency.group if pipeline.concurrency else "",
            ),
        )
        for pipeline in pipelines
    )
    queue_started(runs)
    if any(pipeline.needs for pipeline in pipelines):
        # What they need may have succeeded already, or may not run for this commit: a
        # run skipped at once ends here, and goes through run_ended like any other.
        runs_ended(settle_waiting(event.repository, event.sha))
    return [run.pk for run in runs]


def rerun(run: Run, by: str = "") -> Run:
    """A new queued run of the same pipeline definition, commit and delivery; `by` is who
    asked for it. Asked for by a person, it does not wait for what its pipeline needs."""
    with write_transaction():
        again = Run.objects.create(
            **{name: getattr(run, name) for name in REPEATED_FIELDS},
            task_id=queue_execution(run.queue),
            rerun_of=run,
            **clipped(Run, rerun_by=by),
        )
        queue_started([again])
        return again
