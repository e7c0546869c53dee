"""Find runs whose worker died mid-run, mark them lost, and end what they left running."""

import logging
import signal
import socket
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.execution.processes import kill_group
from runner.models import Run, Step

logger = logging.getLogger(__name__)


def reap_stale_runs() -> list[int]:
    """Mark every running run silent for RUN_STALE_SECONDS as lost; the ids of those reaped."""
    silent_since = timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS)
    reaped = []
    for run in Run.objects.stale(silent_since):
        if _reap(run, silent_since):
            reaped.append(run.pk)
    return reaped


def _reap(run: Run, silent_since: datetime) -> bool:
    """Mark `run` lost, with its steps and task, in one transaction: anyone reading sees
    all of it or none. False if its worker woke up meanwhile."""
    detail = (
        f"worker lost: {run.worker} stopped answering (no heartbeat since "
        f"{run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC)"
    )
    with transaction.atomic():
        if not run.end(Run.objects.stale(silent_since), Run.Status.ERROR, detail):
            return False
        _end_steps(run)
        # The dead worker's task would stay RUNNING forever (a django-tasks-db limitation).
        DBTaskResult.objects.filter(id=run.task_id, status="RUNNING").update(
            status="FAILED", finished_at=timezone.now()
        )
    logger.warning("run=%s reaped: %s", run.pk, detail)
    return True


def _end_steps(run: Run) -> None:
    for step in run.steps.filter(status=Step.Status.RUNNING):
        if step.pid and run.worker.rsplit(":", 1)[0] == socket.gethostname():
            # The step ran in its own session, so its group outlived its worker.
            kill_group(step.pid, signal.SIGKILL)
            logger.warning("killed process group %s left by a dead worker", step.pid)
        step.finish(Step.Status.FAILED, None)
    run.skip_pending_steps()
