"""Commit statuses, GitHub deployments and notifications about runs: creating them, and
the task that sends them.

Each is an Outgoing row, created in the transaction that queues the run (its `pending`
status, its deployment: runner.outgoing.deployments), claims it (the deployment's
`in_progress`) or ends it (its final statuses, its notifications), with a task that sends
it. That task goes to the run's own queue, ahead of runs: whoever runs a pipeline also
reports it, and reports before running.

What each says is in runner.outgoing.bodies and runner.outgoing.deployment_requests; one
attempt at sending, with its retries, rate limits and ordering, is in
runner.outgoing.attempt. Queued tasks are stored by their path,
"runner.outgoing.queue.send_outgoing": a migration moves them when it changes.
"""

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.tasks import task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.models import Outgoing, Run
from runner.outgoing.attempt import attempt
from runner.outgoing.bodies import (
    final_status_body,
    notification_body,
    notifies,
    previous_status,
    reports_status,
    status_body,
    status_url,
)
from runner.outgoing.deployment_requests import (
    deployments_url,
    final_body,
    has_deployment,
    inactive_body,
    previous_live,
)

logger = logging.getLogger(__name__)

# Ahead of execute_run (priority 0) on the same queue: a worker about to start a run says
# "pending" first, and reports a run it just ended before starting the next one.
PRIORITY = 10
# Past its timeout, how long a send task may still be RUNNING before it counts as lost.
LOST_AFTER_SECONDS = 60


# Creating: in the transaction that queues or ends the run.


def queue_started(runs: list[Run]) -> None:
    """A `pending` commit status for each run whose pipeline reports them."""
    for run in runs:
        if reports_status(run):
            # A waiting run's detail says what for.
            description = run.detail if run.status == Run.Status.WAITING else "queued"
            create(
                run,
                Outgoing.Kind.COMMIT_STATUS,
                status_url(run),
                status_body(run, "pending", description),
            )


def queue_ended(run: Run) -> None:
    """The final commit status and deployment status of an ended run, and the
    notifications its rules ask for."""
    if reports_status(run):
        create(run, Outgoing.Kind.COMMIT_STATUS, status_url(run), final_status_body(run))
    if has_deployment(run):
        _queue_deployment_ended(run)
    entries = run.definition.notify
    if not entries:
        return
    previous = previous_status(run)
    for entry in entries:
        if notifies(entry.on, run.status, previous):
            create(run, Outgoing.Kind.NOTIFICATION, entry.url, notification_body(run, previous))


def _queue_deployment_ended(run: Run) -> None:
    """The final status of the run's deployment; once it succeeded, the deployment it
    replaces is no longer live."""
    create(run, Outgoing.Kind.DEPLOYMENT_STATUS, deployments_url(run), final_body(run))
    if run.status == Run.Status.SUCCEEDED and (previous := previous_live(run)):
        url = deployments_url(previous)
        create(previous, Outgoing.Kind.DEPLOYMENT_STATUS, url, inactive_body(previous, run))


def create(run: Run, kind: str, url: str, body: dict[str, Any]) -> None:
    """An Outgoing row about `run`, with the task that sends it on the run's queue."""
    with transaction.atomic():
        if len(url) > Outgoing._meta.get_field("url").max_length:
            Outgoing.objects.create(
                run=run, kind=kind, url=url[:1000], body=body, state=Outgoing.State.GAVE_UP,
                error="not sent: the URL is longer than 1000 characters",
            )  # fmt: skip
            return
        outgoing = Outgoing.objects.create(run=run, kind=kind, url=url, body=body)
        _enqueue(outgoing.pk, run.queue)


def _enqueue(outgoing_id: int, queue: str, delay: float = 0, waited: int = 0) -> None:
    run_after = timezone.now() + timedelta(seconds=delay) if delay else None
    send_outgoing.using(queue_name=queue, priority=PRIORITY, run_after=run_after).enqueue(
        outgoing_id, waited
    )


def requeue_lost() -> list[int]:
    """Give a new task to every pending request whose task was lost with its worker (the
    worker killed mid-send); the ids of those requeued. A send task runs for at most
    OUTGOING_TIMEOUT_SECONDS and a little bookkeeping, so one still RUNNING long past
    that died with its worker (django-tasks-db would leave it RUNNING forever)."""
    now = timezone.now()
    lost_after = now - timedelta(seconds=settings.OUTGOING_TIMEOUT_SECONDS + LOST_AFTER_SECONDS)
    tasks = DBTaskResult.objects.filter(task_path=send_outgoing.module_path)
    tasks.filter(status="RUNNING", started_at__lt=lost_after).update(
        status="FAILED", finished_at=now
    )
    alive = tasks.filter(status__in=["READY", "RUNNING"]).values_list("args_kwargs", flat=True)
    has_task = {args_kwargs["args"][0] for args_kwargs in alive}
    lost = (
        Outgoing.objects.filter(state=Outgoing.State.PENDING, created_at__lt=lost_after)
        .exclude(pk__in=has_task)
        .select_related("run")
    )
    requeued = []
    for outgoing in lost:
        _enqueue(outgoing.pk, outgoing.run.queue)
        requeued.append(outgoing.pk)
    if requeued:
        logger.warning("requeued %d outgoing requests whose task was lost", len(requeued))
    return requeued


# Sending: one task per attempt.


@task()
def send_outgoing(outgoing_id: int, waited: int = 0) -> None:
    """Try to send one Outgoing; queue the next try if one is due."""
    outgoing = (
        Outgoing.objects.select_related("run")
        .filter(pk=outgoing_id, state=Outgoing.State.PENDING)
        .first()
    )
    if outgoing is None:
        return  # sent or given up meanwhile, or deleted with its run
    again = attempt(outgoing, waited)
    if again is not None:
        delay, next_waited = again
        _enqueue(outgoing.pk, outgoing.run.queue, delay, next_waited)
