"""Find runs whose worker died mid-run and mark them lost (runner.runs.lifecycle.lose).
What the dead worker left running is for a worker on its host to end
(runner.execution.upkeep): the reaper only says which process groups those were."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from runner.models import Run
from runner.runs.lifecycle import lose

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
