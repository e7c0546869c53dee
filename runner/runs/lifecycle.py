"""Every change of a Run's state, and what follows from each.

A run is created queued (with its task), or waiting: for the pipelines it needs, or for
its turn in its concurrency group. A worker claims a queued run, starts its steps one by
one and finishes it; a person cancels it; the reaper marks it lost; a person runs it
again. Each of these is one write transaction that also writes everything that follows:
the run's commit statuses and notifications (Outgoing rows with their tasks), the waiting
runs its end releases or skips, and the next run of its concurrency group made runnable.
A process killed between two writes therefore leaves nothing stranded: every change is
there with its consequences, or none of it is.
"""

import logging
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.config.definition import RunDefinition
from runner.config.github import Event
from runner.config.pipelines import Pipeline, is_from_fork
from runner.models import Run, Step, clipped
from runner.models.db import write_transaction
from runner.models.runs import RunQuerySet
from runner.outgoing.queue import queue_ended, queue_started
from runner.runs.concurrency import has_turn_taken, lock_group, next_in_line, older_in_line
from runner.runs.needs import Readiness, newest_needed, verdict
from runner.runs.queue import queue_execution

logger = logging.getLogger(__name__)

# What a re-run takes over from the run it repeats.
REPEATED_FIELDS = (
    "delivery_id", "repository", "pipeline", "event", "sha", "ref", "pr_number", "from_fork",
    "definition", "queue", "concurrency_group",
)  # fmt: skip


class Cancel(StrEnum):
    """What asking to cancel a run did."""

    CANCELLED = "cancelled"
    ASKED_TO_STOP = "asked to stop"
    ALREADY_ENDED = "already finished"


# Created


def create_runs(delivery_pk: int, event: Event, pipelines: list[Pipeline]) -> list[int]:
    """A run per pipeline, queued with its task or waiting; their ids. Call inside the
    caller's write_transaction: a delivery's outcome commits with its runs."""
    from_fork = is_from_fork(event)
    taken: set[str] = set()
    runs = []
    for pipeline in pipelines:
        definition = RunDefinition.of(pipeline, from_fork)
        runs.append(
            Run(
                delivery_id=delivery_pk,
                pr_number=event.pr_number,
                from_fork=from_fork,
                definition=definition,
                queue=definition.runs_on,
                **_entry(definition, taken, waits_for_needs=True),
                **clipped(
                    Run,
                    repository=event.repository,
                    pipeline=pipeline.name,
                    event=event.name,
                    sha=event.sha,
                    ref=event.ref,
                    concurrency_group=definition.concurrency_group,
                ),
            )
        )
    _admit(Run.objects.bulk_create(runs))
    return [run.pk for run in runs]


def rerun(run: Run, by: str = "") -> Run:
    """A new run of the same definition, commit and delivery; `by` is who asked for it.
    Asked for by a person, it does not wait for what its pipeline needs."""
    with write_transaction():
        again = Run.objects.create(
            **{name: getattr(run, name) for name in REPEATED_FIELDS},
            **_entry(run.definition, set(), waits_for_needs=False),
            rerun_of=run,
            **clipped(Run, rerun_by=by),
        )
        _admit([again])
        return again


def _entry(definition: RunDefinition, taken: set[str], waits_for_needs: bool) -> dict:
    """How a new run starts out: waiting for what it needs, or for its turn in its group
    (`taken`: groups given to a run created just before it), or queued with a task."""
    if waits_for_needs and definition.needs:
        detail = "waiting for " + ", ".join(definition.needs)
        return {"status": Run.Status.WAITING, "waiting_for": Run.WaitingFor.NEEDS, "detail": detail}
    group = definition.concurrency_group
    if group:
        lock_group(group)
        if group in taken or has_turn_taken(group) or next_in_line(group) is not None:
            return _waiting_for_turn(group)
        taken.add(group)
    return {"status": Run.Status.QUEUED, "task_id": queue_execution(definition.runs_on)}


def _waiting_for_turn(group: str) -> dict:
    detail = f"waiting for its turn in concurrency group {group}"
    return {"status": Run.Status.WAITING, "waiting_for": Run.WaitingFor.TURN, "detail": detail}


def _admit(runs: list[Run]) -> None:
    """What follows new runs: their pending commit statuses, older runs of their group
    cancelled where they cancel in progress, and needs that are decided already."""
    queue_started(runs)
    for run in runs:
        if run.waiting_for == Run.WaitingFor.TURN and run.definition.cancels_in_progress:
            _cancel_older(run)
    for repository, sha in {
        (r.repository, r.sha) for r in runs if r.waiting_for == Run.WaitingFor.NEEDS
    }:
        _after_end(_settle(repository, sha))


def _cancel_older(run: Run) -> None:
    group = run.concurrency_group
    why = f"cancelled by run {run.pk}, newer in concurrency group {group}"
    ended = [other for other in older_in_line(run) if _cancel(other, why) == Cancel.CANCELLED]
    # Their ends give the turn on: to this run, unless an older one is still running.
    _after_end(ended)


# Released


def _settle(repository: str, sha: str) -> list[Run]:
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
            _release(run)
        elif decided.readiness == Readiness.SKIP and _end(
            run, Run.objects.waiting(), Run.Status.SKIPPED, decided.why
        ):
            skipped.append(run)
    return skipped


def _release(run: Run) -> None:
    """A run whose needs succeeded: queued, or in line for its group's turn."""
    group = run.concurrency_group
    if not group:
        _queue(run)
        return
    waiting = _waiting_for_turn(group)
    Run.objects.filter(pk=run.pk).update(**waiting)
    for name, value in waiting.items():
        setattr(run, name, value)
    released = _give_turn(group)
    if released is None or released.pk != run.pk:
        queue_started([run])


def _give_turn(group: str) -> Run | None:
    """Queue the next run of `group` if none of it is queued or running; that run."""
    lock_group(group)
    if has_turn_taken(group):
        return None
    run = next_in_line(group)
    if run is not None:
        _queue(run)
    return run


def _queue(run: Run) -> None:
    task_id = queue_execution(run.queue)
    values = {"status": Run.Status.QUEUED, "task_id": task_id, "waiting_for": "", "detail": ""}
    if Run.objects.waiting().filter(pk=run.pk).update(**values):
        for name, value in values.items():
            setattr(run, name, value)
        # GitHub showed "waiting for ..."; it now says the run is queued.
        queue_started([run])


# Claimed, started, steps


def claim(run: Run, worker: str) -> bool:
    """Move a queued run to running; False if it was not queued (someone else has it, or
    it was cancelled)."""
    now = timezone.now()
    values = {
        "status": Run.Status.RUNNING,
        "started_at": now,
        "heartbeat_at": now,
        "worker": worker,
    }
    if not Run.objects.queued().filter(pk=run.pk).update(**values):
        return False
    for name, value in values.items():
        setattr(run, name, value)
    return True


def hand_back(run: Run) -> None:
    """A stopping worker gives a queued run it did not start to a new task."""
    with write_transaction():
        Run.objects.queued().filter(pk=run.pk).update(task_id=queue_execution(run.queue))


def start_steps(run: Run, names: Iterable[str]) -> list[Step]:
    """The claimed run's steps, pending, in order."""
    steps = (Step(run=run, index=index, name=name) for index, name in enumerate(names))
    return Step.objects.bulk_create(steps)


def step_started(step: Step, pid: int | None) -> None:
    step.status, step.started_at, step.pid = Step.Status.RUNNING, timezone.now(), pid
    step.save(update_fields=["status", "started_at", "pid"])


def step_ended(step: Step, status: str, exit_code: int | None) -> None:
    step.status, step.exit_code, step.finished_at = status, exit_code, timezone.now()
    step.save(update_fields=["status", "exit_code", "finished_at", "output_bytes", "dropped_bytes"])


# Ended


def finish(run: Run, status: str, detail: str) -> bool:
    """Record how the running run ended; False, changing nothing, if it was no longer
    running (a reaper took its worker for dead and marked it lost meanwhile)."""
    with write_transaction():
        if not _end(run, Run.objects.running(), status, detail, kept_workspace=run.kept_workspace):
            return False
        _after_end([run])
    return True


def cancel(run: Run, reason: str = "cancelled") -> Cancel:
    """End a waiting or queued run now, or ask the worker of a running one to stop it.
    `reason` starts the run's detail ("cancelled by ... before it started")."""
    with write_transaction():
        outcome = _cancel(run, reason)
        if outcome == Cancel.CANCELLED:
            _after_end([run])
    return outcome


def _cancel(run: Run, reason: str) -> Cancel:
    not_started = Run.objects.filter(status__in=[Run.Status.QUEUED, Run.Status.WAITING])
    if _end(run, not_started, Run.Status.CANCELLED, f"{reason} before it started"):
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
        if not _end(run, Run.objects.stale(silent_since), Run.Status.ERROR, detail):
            return None
        running = run.steps.filter(status=Step.Status.RUNNING)
        groups = [pid for pid in running.values_list("pid", flat=True) if pid]
        running.update(status=Step.Status.FAILED, finished_at=timezone.now())
        # The dead worker's task would stay RUNNING forever (a django-tasks-db limitation).
        DBTaskResult.objects.filter(id=run.task_id, status="RUNNING").update(
            status="FAILED", finished_at=timezone.now()
        )
        _after_end([run])
    return groups


def _end(run: Run, among: RunQuerySet, status: str, detail: str, **fields) -> bool:
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


def _after_end(ended: list[Run]) -> None:
    """What follows each end: the run's final commit status and notifications, the next
    run of its concurrency group, and the runs that need it, whose skips follow in turn."""
    while ended:
        run = ended.pop()
        queue_ended(run)
        if run.concurrency_group:
            _give_turn(run.concurrency_group)
        if run.sha:
            ended.extend(_settle(run.repository, run.sha))
