"""Pipelines that need others: a run waits until the runs it needs for the same sha have
succeeded, then is queued; if one of them ends any other way, it is skipped, saying why."""

from django.db import transaction
from django.utils import timezone

from runner.models import Run, clipped
from runner.outgoing.queue import queue_started
from runner.runs.queue import queue_execution


def settle_waiting(repository: str, sha: str) -> list[Run]:
    """Queue or skip every waiting run of `repository` at `sha` whose needs are decided;
    the runs skipped (their own end may release others)."""
    runs = list(Run.objects.filter(repository=repository, sha=sha).order_by("pk"))
    # The newest run of each pipeline at this sha: what a waiting run's needs look at.
    newest = {run.pipeline: run for run in runs}
    skipped = []
    for run in (run for run in runs if run.status == Run.Status.WAITING):
        verdict = _verdict(run.definition.get("needs", []), newest)
        if verdict == "ready":
            _queue(run)
        elif verdict and _skip(run, verdict):
            skipped.append(run)
    return skipped


def _verdict(needs: list[str], newest: dict[str, Run]) -> str:
    """ "ready", or why the run is skipped, or "" while a run it needs has not ended."""
    for name in needs:
        needed = newest.get(name)
        if needed is None:
            return f"skipped: it needs {name}, which has no run for this commit"
        if needed.status not in Run.ENDED:
            return ""
        if needed.status != Run.Status.SUCCEEDED:
            return f"skipped: it needs {name}, whose run {needed.pk} {needed.get_status_display()}"
    return "ready"


def _queue(run: Run) -> None:
    with transaction.atomic():
        task_id = queue_execution(run.queue)
        if Run.objects.filter(pk=run.pk, status=Run.Status.WAITING).update(
            status=Run.Status.QUEUED, task_id=task_id
        ):
            run.status, run.task_id = Run.Status.QUEUED, task_id
            # GitHub showed "waiting for ..."; it now says the run is queued.
            queue_started([run])


def _skip(run: Run, why: str) -> bool:
    values = {
        "status": Run.Status.SKIPPED,
        "finished_at": timezone.now(),
        **clipped(Run, detail=why),
    }
    if not Run.objects.filter(pk=run.pk, status=Run.Status.WAITING).update(**values):
        return False
    for name, value in values.items():
        setattr(run, name, value)
    return True
