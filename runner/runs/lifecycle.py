"""Every change of a Run's state, and what follows from each.

A run is created queued (with its task), or waiting: for the pipelines it needs, then for
a person's approval, then for its environment to be unlocked, then for its turn in its
concurrency group (Stage: each wait is passed in that order, those that do not apply
skipped). A worker claims a queued run (or, finding its environment locked meanwhile,
puts it back to wait), starts its steps one by one and finishes it; a person approves,
rejects or cancels it; the reaper marks it lost; an approval expires; a person runs it
again, starts a pipeline by hand, or rolls an environment back. Each of these is one
write transaction that also writes everything that follows: the run's commit statuses,
GitHub deployment statuses and notifications (Outgoing rows with their tasks), the
waiting runs its end releases or skips, and the next run of its concurrency group made
runnable.
A process killed between two writes therefore leaves nothing stranded: every change is
there with its consequences, or none of it is.
"""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum

from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.config.definition import RunDefinition
from runner.config.github import Event
from runner.config.pipelines import Pipeline, is_from_fork
from runner.models import Decision, EnvironmentLock, Run, Step, clipped
from runner.models.db import write_transaction
from runner.models.runs import RunQuerySet
from runner.outgoing.deployments import queue_deployments, queue_in_progress
from runner.outgoing.queue import queue_ended, queue_started
from runner.runs.concurrency import has_turn_taken, lock_group, next_in_line, older_in_line
from runner.runs.needs import Readiness, newest_needed, verdict
from runner.runs.queue import queue_execution

logger = logging.getLogger(__name__)

# What a re-run takes over from the run it repeats.
REPEATED_FIELDS = (
    "delivery_id", "repository", "pipeline", "event", "sha", "ref", "pr_number", "from_fork",
    "definition", "queue", "concurrency_group", "environment", "inputs",
)  # fmt: skip


class Cancel(StrEnum):
    """What asking to cancel a run did."""

    CANCELLED = "cancelled"
    ASKED_TO_STOP = "asked to stop"
    ALREADY_ENDED = "already finished"


# Created


class Stage(IntEnum):
    """What a run may wait for, in the order it waits: a wait passed is not waited again."""

    NEEDS = 0
    APPROVAL = 1
    LOCK = 2
    TURN = 3


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
                **_entry(definition, event.repository, taken, Stage.NEEDS),
                **clipped(
                    Run,
                    repository=event.repository,
                    pipeline=pipeline.name,
                    event=event.name,
                    sha=event.sha,
                    ref=event.ref,
                    concurrency_group=definition.concurrency_group,
                    environment=definition.environment_name,
                ),
            )
        )
    _admit(Run.objects.bulk_create(runs))
    return [run.pk for run in runs]


def create_manual_run(delivery_pk: int, pipeline: Pipeline, started: dict, by: str) -> Run:
    """A run a person started (`started`: repository, sha, ref, inputs, and for a rollback
    rollback_of and reason). Call inside the caller's write_transaction, with its delivery.
    A rollback does not wait for what its pipeline needs: its commit was deployed before."""
    definition = RunDefinition.of(pipeline, from_fork=False)
    rollback_of = started.get("rollback_of")
    first = Stage.APPROVAL if rollback_of else Stage.NEEDS
    run = Run.objects.create(
        delivery_id=delivery_pk,
        definition=definition,
        queue=definition.runs_on,
        inputs=started.get("inputs") or {},
        rollback_of=rollback_of,
        **_entry(definition, started["repository"], set(), first),
        **clipped(
            Run,
            repository=started["repository"],
            pipeline=pipeline.name,
            event="manual",
            sha=started["sha"],
            ref=started.get("ref", ""),
            concurrency_group=definition.concurrency_group,
            environment=definition.environment_name,
            requested_by=by,
            reason=started.get("reason", ""),
        ),
    )
    _admit([run])
    return run


def rerun(run: Run, by: str = "") -> Run:
    """A new run of the same definition, commit and delivery; `by` is who asked for it.
    Asked for by a person, it does not wait for what its pipeline needs."""
    with write_transaction():
        again = Run.objects.create(
            **{name: getattr(run, name) for name in REPEATED_FIELDS},
            **_entry(run.definition, run.repository, set(), Stage.APPROVAL),
            rerun_of=run,
            **clipped(Run, rerun_by=by),
        )
        _admit([again])
        return again


def _entry(definition: RunDefinition, repository: str, taken: set[str], first: Stage) -> dict:
    """How a new run starts out: waiting for what it needs, a person's approval or its
    environment's unlocking, or for its turn in its group (`taken`: groups given to a run
    created just before it), or queued with a task."""
    if waiting := _waiting_from(definition, repository, first):
        return waiting
    group = definition.concurrency_group
    if group:
        lock_group(group)
        if group in taken or has_turn_taken(group) or next_in_line(group) is not None:
            return _waiting_for_turn(group)
        taken.add(group)
    return {"status": Run.Status.QUEUED, "task_id": queue_execution(definition.runs_on)}


def _waiting_from(definition: RunDefinition, repository: str, first: Stage) -> dict | None:
    """What a run waits for first from the stage `first` on, before its group's turn;
    None if nothing."""
    if first <= Stage.NEEDS and definition.needs:
        detail = "waiting for " + ", ".join(definition.needs)
        return _waiting(Run.WaitingFor.NEEDS, detail)
    if first <= Stage.APPROVAL and definition.approval:
        expires = timezone.now() + timedelta(seconds=definition.approval.expires)
        return {
            **_waiting(Run.WaitingFor.APPROVAL, "waiting for approval"),
            "approval_expires_at": expires,
        }
    if first <= Stage.LOCK and (lock := _lock_of(repository, definition.environment_name)):
        return _waiting(Run.WaitingFor.LOCK, f"waiting: {lock.words}")
    return None


def _waiting(waiting_for: str, detail: str) -> dict:
    return {"status": Run.Status.WAITING, "waiting_for": waiting_for, **clipped(Run, detail=detail)}


def _waiting_for_turn(group: str) -> dict:
    return _waiting(Run.WaitingFor.TURN, f"waiting for its turn in concurrency group {group}")


def _lock_of(repository: str, environment: str) -> EnvironmentLock | None:
    if not environment:
        return None
    return EnvironmentLock.objects.filter(repository=repository, environment=environment).first()


def _admit(runs: list[Run]) -> None:
    """What follows new runs: their pending commit statuses, older runs of their group
    cancelled where they cancel in progress, and needs that are decided already."""
    queue_started(runs)
    queue_deployments(runs)
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
    """A run whose needs succeeded moves on to what it waits for next."""
    _advance(run, Stage.APPROVAL)


def _advance(run: Run, stage: Stage) -> None:
    """Move a waiting run on to what it waits for from `stage` on: approval, its
    environment's lock, its turn in its group; or queue it."""
    waiting = _waiting_from(run.definition, run.repository, stage)
    group = run.concurrency_group
    if waiting is None and not group:
        _queue(run)
        return
    waiting = waiting or _waiting_for_turn(group)
    Run.objects.filter(pk=run.pk).update(**waiting)
    for name, value in waiting.items():
        setattr(run, name, value)
    released = _give_turn(group) if run.waiting_for == Run.WaitingFor.TURN else None
    if released is None or released.pk != run.pk:
        # GitHub showed what it waited for; it now says what it waits for next.
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
    it was cancelled), or if its environment was locked since it was queued: it then
    waits for the unlocking."""
    now = timezone.now()
    values = {
        "status": Run.Status.RUNNING,
        "started_at": now,
        "heartbeat_at": now,
        "worker": worker,
    }
    with write_transaction():
        if lock := _lock_of(run.repository, run.environment):
            waiting = _waiting(Run.WaitingFor.LOCK, f"waiting: {lock.words}")
            if Run.objects.queued().filter(pk=run.pk).update(**waiting):
                run.refresh_from_db()
                queue_started([run])
            return False
        if not Run.objects.queued().filter(pk=run.pk).update(**values):
            return False
        for name, value in values.items():
            setattr(run, name, value)
        queue_in_progress(run)
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


# Decided by people


def approve(run: Run, by: str, reason: str = "") -> bool:
    """A person approves a run waiting for approval, which moves on; False, changing
    nothing, if it was not waiting for approval."""
    with write_transaction():
        if not _waiting_for_approval(run):
            return False
        Decision.objects.create(run=run, approved=True, **clipped(Decision, by=by, reason=reason))
        Run.objects.filter(pk=run.pk).update(approval_expires_at=None)
        _advance(run, Stage.LOCK)
    return True


def reject(run: Run, by: str, reason: str = "") -> bool:
    """A person rejects a run waiting for approval: it ends cancelled, saying who and why;
    False, changing nothing, if it was not waiting for approval."""
    with write_transaction():
        if not _waiting_for_approval(run):
            return False
        Decision.objects.create(run=run, approved=False, **clipped(Decision, by=by, reason=reason))
        why = f"rejected by {by}" + (f": {reason}" if reason else "")
        among = Run.objects.waiting().filter(waiting_for=Run.WaitingFor.APPROVAL)
        if _end(run, among, Run.Status.CANCELLED, why):
            _after_end([run])
    return True


def _waiting_for_approval(run: Run) -> bool:
    run.refresh_from_db()
    return run.status == Run.Status.WAITING and run.waiting_for == Run.WaitingFor.APPROVAL


def expire_approvals() -> list[int]:
    """Skip every run that waited for approval past its pipeline's `expires`; their ids."""
    expired = []
    for run in Run.objects.approval_expired(timezone.now()):
        with write_transaction():
            among = Run.objects.approval_expired(timezone.now())
            if _end(run, among, Run.Status.SKIPPED, "skipped: approval expired"):
                _after_end([run])
                expired.append(run.pk)
    if expired:
        logger.info("runs %s skipped: approval expired", ", ".join(map(str, expired)))
    return expired


def lock(repository: str, environment: str, by: str, reason: str) -> EnvironmentLock:
    """Freeze an environment: its runs not yet started wait until it is unlocked (a
    queued one when a worker claims it). Locked again, it keeps the first lock."""
    with write_transaction():
        held, _ = EnvironmentLock.objects.get_or_create(
            repository=repository,
            environment=environment,
            defaults=clipped(EnvironmentLock, by=by, reason=reason),
        )
    return held


def unlock(repository: str, environment: str) -> list[int] | None:
    """End an environment's freeze; the runs released, oldest first, or None if it was
    not locked."""
    with write_transaction():
        deleted, _ = EnvironmentLock.objects.filter(
            repository=repository, environment=environment
        ).delete()
        if not deleted:
            return None
        waiting = list(Run.objects.waiting_for_lock(repository, environment).order_by("pk"))
        for run in waiting:
            _advance(run, Stage.TURN)
    return [run.pk for run in waiting]


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
