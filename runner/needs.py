"""Pipelines that need others: a run waits until the runs it needs for the same sha have
succeeded, then is queued; if one of them ends any other way, it is skipped, saying why."""

from django.db import transaction
from django.utils import timezone

from runner.models import Run, clipped
from runner.outgoing import queue_started
from runner.tasks import queue_execution


def settle_waiting(repository: str, sha: str) -> list[Run]:
    """Queue or skip every waiting run of `repository` at `sha` whose needs are decided;
    the runs skipped (their own end may release others)."""
    skipped = []
    waiting = Run.objects.filter(repository=repository, sha=sha, status=Run.Status.WAITING)
    for run in waiting:
        verdict = _verdict(run)
        if verdict == "ready":
            _queue(run)
        elif verdict and _skip(run, verdict):
            skipped.append(run)
    return skipped


def _verdict(run: Run) -> str:
    """ "ready", or why the run is skipped, or "" while a run it needs has not ended."""
    newest = _newest_runs(run, run.definition.get("needs", []))
    for name in run.definition.get("needs", []):
        needed = newest.get(name)
        if needed is None:
            return f"skipped: it needs {name}, which has no run for this commit"
        if needed.status not in Run.ENDED:
            return ""
        if needed.status != Run.Status.SUCCEEDED:
            return f"skipped: it needs {name}, whose run {needed.pk} {needed.get_status_display()}"
    return "ready"


def _newest_runs(run: Run, names: list[str]) -> dict[str, Run]:
    newest: dict[str, Run] = {}
    candidates = Run.objects.filter(repository=run.repository, sha=run.sha, pipeline__in=names)
    for candidate in candidates.order_by("pk").only("pk", "pipeline", "status"):
        newest[candidate.pipeline] = candidate
    return newest


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
    return bool(
        Run.objects.filter(pk=run.pk, status=Run.Status.WAITING).update(
            status=Run.Status.SKIPPED, finished_at=timezone.now(), **clipped(Run, detail=why)
        )
    )
