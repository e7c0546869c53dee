"""A worker's part: claiming a queued run (or putting it back to wait for its
environment's lock), handing it back, and its steps starting and ending."""

from collections.abc import Iterable

from django.utils import timezone

from runner.models import Run, Step
from runner.models.db import write_transaction
from runner.outgoing.deployments import queue_in_progress
from runner.outgoing.queue import queue_started
from runner.runs.lifecycle.waits import lock_of, waiting_state
from runner.runs.queue import queue_execution


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
        if lock := lock_of(run.repository, run.environment):
            waiting = waiting_state(Run.WaitingFor.LOCK, f"waiting: {lock.words}")
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
