"""Find runs whose worker died mid-run and mark them lost (runner.runs.lifecycle.lose),
and queued runs whose worker died as it took them up, given to a new task. What the dead
worker left running is for a worker on its host to end (runner.execution.upkeep): the
reaper only says which process groups those were."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.models import Run
from runner.runs.lifecycle import hand_back, lose

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reaped:
    run_id: int
    # The dead worker, "host:pid", and the process groups of the steps it was running.
    worker: str
    process_groups: list[int]


def reap_stale_runs() -> list[Reaped]:
    """Mark every running run silent for RUN_STALE_SECONDS as lost; those reaped."""
    silent_since = timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS)
    reaped = []
    for run in Run.objects.stale(silent_since):
        detail = (
            f"worker lost: {run.worker} stopped answering (no heartbeat since "
            f"{run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC)"
        )
        groups = lose(run, silent_since, detail)
        if groups is not None:
            logger.warning("run=%s reaped: %s", run.pk, detail)
            reaped.append(Reaped(run.pk, run.worker, groups))
    return reaped


def requeue_unclaimed() -> list[int]:
    """Give a new task to every queued run whose task a worker took up RUN_STALE_SECONDS
    ago without claiming the run: it died in between (a claim takes milliseconds), and
    django-tasks-db would leave that task RUNNING forever. The runs' ids."""
    silent_since = timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS)
    dead = DBTaskResult.objects.filter(status="RUNNING", started_at__lt=silent_since)
    # Run.task_id holds the task's id as text, which a UUID column does not compare with.
    dead_ids = [str(task_id) for task_id in dead.values_list("id", flat=True)]
    requeued = []
    for run in Run.objects.queued().filter(task_id__in=dead_ids):
        DBTaskResult.objects.filter(id=run.task_id, status="RUNNING").update(
            status="FAILED", finished_at=timezone.now()
        )
        hand_back(run)
        logger.warning("run=%s requeued: its worker died as it took it up", run.pk)
        requeued.append(run.pk)
    return requeued
