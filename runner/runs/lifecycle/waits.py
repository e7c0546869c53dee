"""What a run waits for before a worker may take it, in order (Stage): what it needs,
a person's approval, its environment's lock, its concurrency group's turn; and moving a
waiting run on to the next of these, or to the queue."""

from datetime import timedelta
from enum import IntEnum

from django.utils import timezone

from runner.config.definition import RunDefinition
from runner.models import EnvironmentLock, Run, clipped
from runner.outgoing.queue import queue_started
from runner.runs.concurrency import has_turn_taken, lock_group, next_in_line
from runner.runs.queue import queue_execution


class Stage(IntEnum):
    """What a run may wait for, in the order it waits: a wait passed is not waited again."""

    NEEDS = 0
    APPROVAL = 1
    LOCK = 2
    TURN = 3


def entry(definition: RunDefinition, repository: str, taken: set[str], first: Stage) -> dict:
    """How a new run starts out: waiting for what it needs, a person's approval or its
    environment's unlocking, or for its turn in its group (`taken`: groups given to a run
    created just before it), or queued with a task."""
    if waiting := waiting_from(definition, repository, first):
        return waiting
    group = definition.concurrency_group
    if group:
        lock_group(group)
        if group in taken or has_turn_taken(group) or next_in_line(group) is not None:
            return waiting_for_turn(group)
        taken.add(group)
    return {"status": Run.Status.QUEUED, "task_id": queue_execution(definition.runs_on)}


def waiting_from(definition: RunDefinition, repository: str, first: Stage) -> dict | None:
    """What a run waits for first from the stage `first` on, before its group's turn;
    None if nothing."""
    if first <= Stage.NEEDS and definition.needs:
        detail = "waiting for " + ", ".join(definition.needs)
        return waiting_state(Run.WaitingFor.NEEDS, detail)
    if first <= Stage.APPROVAL and definition.approval:
        expires = timezone.now() + timedelta(seconds=definition.approval.expires)
        return {
            **waiting_state(Run.WaitingFor.APPROVAL, "waiting for approval"),
            "approval_expires_at": expires,
        }
    if first <= Stage.LOCK and (lock := lock_of(repository, definition.environment_name)):
        return waiting_state(Run.WaitingFor.LOCK, f"waiting: {lock.words}")
    return None


def waiting_state(waiting_for: str, detail: str) -> dict:
    return {"status": Run.Status.WAITING, "waiting_for": waiting_for, **clipped(Run, detail=detail)}


def waiting_for_turn(group: str) -> dict:
    return waiting_state(Run.WaitingFor.TURN, f"waiting for its turn in concurrency group {group}")


def lock_of(repository: str, environment: str) -> EnvironmentLock | None:
    if not environment:
        return None
    return EnvironmentLock.objects.filter(repository=repository, environment=environment).first()


def release(run: Run) -> None:
    """A run whose needs succeeded moves on to what it waits for next."""
    advance(run, Stage.APPROVAL)


def advance(run: Run, stage: Stage) -> None:
    """Move a waiting run on to what it waits for from `stage` on: approval, its
    environment's lock, its turn in its group; or queue it."""
    waiting = waiting_from(run.definition, run.repository, stage)
    group = run.concurrency_group
    if waiting is None and not group:
        queue_run(run)
        return
    waiting = waiting or waiting_for_turn(group)
    Run.objects.filter(pk=run.pk).update(**waiting)
    for name, value in waiting.items():
        setattr(run, name, value)
    released = give_turn(group) if run.waiting_for == Run.WaitingFor.TURN else None
    if released is None or released.pk != run.pk:
        # GitHub showed what it waited for; it now says what it waits for next.
        queue_started([run])


def give_turn(group: str) -> Run | None:
    """Queue the next run of `group` if none of it is queued or running; that run."""
    lock_group(group)
    if has_turn_taken(group):
        return None
    run = next_in_line(group)
    if run is not None:
        queue_run(run)
    return run


def queue_run(run: Run) -> None:
    task_id = queue_execution(run.queue)
    values = {"status": Run.Status.QUEUED, "task_id": task_id, "waiting_for": "", "detail": ""}
    if Run.objects.waiting().filter(pk=run.pk).update(**values):
        for name, value in values.items():
            setattr(run, name, value)
        # GitHub showed "waiting for ..."; it now says the run is queued.
        queue_started([run])
