"""How a run ends (finished, cancelled, lost, skipped) and what follows each end: its
final statuses and notifications, its group's next turn, the runs that need it."""

from datetime import datetime
from enum import StrEnum

from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.models import Run, Step, clipped
from runner.models.db import write_transaction
from runner.models.runs import RunQuerySet
from runner.outgoing.queue import queue_ended
from runner.runs.lifecycle.waits import give_turn, release
from runner.runs.needs import Readiness, newest_needed, verdict


class Cancel(StrEnum):
    """What asking to cancel a run did."""

    CANCELLED = "cancelled"
    ASKED_TO_STOP = "asked to stop"
    ALREADY_ENDED = "already finished"


def finish(run: Run, status: str, detail: str) -> bool:
    """Record how the running run ended; False, changing nothing, if it was no longer
    running (a reaper took its worker for dead and marked it lost meanwhile)."""
    with write_transaction():
        if not end(run, Run.objects.running(), status, detail, kept_workspace=run.kept_workspace):
            return False
        after_end([run])
    return True


def cancel(run: Run, reason: str = "cancelled") -> Cancel:
    """End a waiting or queued run now, or ask the worker of a running one to stop it.
    `reason` starts the run's detail ("cancelled by ... before it started")."""
    with write_transaction():
        outcome = cancel_run(run, reason)
        if outcome == Cancel.CANCELLED:
            after_end([run])
    return outcome


def cancel_run(run: Run, reason: str) -> Cancel:
    not_started = Run.objects.filter(status__in=[Run.Status.QUEUED, Run.Status.WAITING])
    if end(run, not_started, Run.Status.CANCELLED, f"{reason} before it started"):
        return Cancel.CANCELLED
    # The worker reads the reason back from detail when it stops the run.
    asked = {"cancel_requested_at": timezone.now(), **clipped(Run, detail=reason)}
    if Run.objects.running().filter(pk=run.pk).update(**asked):
        return Cancel.ASKED_TO_STOP
    return Cancel.ALREADY_ENDED


def lose(run: Run, silent_since: datetime, detail: str) -> list[int] | None:
    """Mark a running run whose worker fell silent before `silent_since` lost, with its
    steps and task; the process groups its running steps had, or None if its worker
    spoke up meanwhile."""
    with write_transaction():
        if not end(run, Run.objects.stale(silent_since), Run.Status.ERROR, detail):
            return None
        running = run.steps.filter(status=Step.Status.RUNNING)
        groups = [pid for pid in running.values_list("pid", flat=True) if pid]
        running.update(status=Step.Status.FAILED, finished_at=timezone.now())
        # The dead worker's task would stay RUNNING forever (a django-tasks-db limitation).
        DBTaskResult.objects.filter(id=run.task_id, status="RUNNING").update(
            status="FAILED", finished_at=timezone.now()
        )
        after_end([run])
    return groups


def end(run: Run, among: RunQuerySet, status: str, detail: str, **fields) -> bool:
    """End the run with `status` if it is still one of `among`; its steps never started
    are skipped. False, changing nothing, if it was not."""
    values = {"status": status, "finished_at": timezone.now(), "waiting_for": "", **fields}
    values.update(clipped(Run, detail=detail))
    if not among.filter(pk=run.pk).update(**values):
        run.refresh_from_db()
        return False
    for name, value in values.items():
        setattr(run, name, value)
    run.steps.filter(status=Step.Status.PENDING).update(status=Step.Status.SKIPPED)
    return True


def after_end(ended: list[Run]) -> None:
    """What follows each end: the run's final commit status and notifications, the next
    run of its concurrency group, and the runs that need it, whose skips follow in turn."""
    while ended:
        run = ended.pop()
        queue_ended(run)
        if run.concurrency_group:
            give_turn(run.concurrency_group)
        if run.sha:
            ended.extend(settle(run.repository, run.sha))


def settle(repository: str, sha: str) -> list[Run]:
    """Release or skip every run of `repository` at `sha` waiting for what it needs, where
    that is decided; the runs skipped (their ends may decide others in turn)."""
    waiting = list(Run.objects.waiting_for_needs(repository, sha).order_by("pk"))
    if not waiting:
        return []
    newest = newest_needed(waiting)
    skipped = []
    for run in waiting:
        decided = verdict(run.definition.needs, newest)
        if decided.readiness == Readiness.READY:
            release(run)
        elif decided.readiness == Readiness.SKIP and end(
            run, Run.objects.waiting(), Run.Status.SKIPPED, decided.why
        ):
            skipped.append(run)
    return skipped
