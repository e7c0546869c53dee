"""GET /healthz: whether this hookrunner can do its work, as plain JSON.

For load balancers and monitoring; always on and public. 200 whenever the database
answers, with "status" "ok" or "degraded" (the receiver still works, but runs may wait:
pipelines.yaml is invalid, no worker is alive, a live worker cannot sandbox steps, a
queue waits too long or no live worker takes it); 503 with "fail" when the database does
not answer. It tells no secret and no host, user, worker or database name; the database
driver's error goes to the log.
README ("Monitoring") lists what it does show.
"""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Max, Min, QuerySet
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from runner.config.store import pipelines_in_force, pipelines_store
from runner.models import Run, WorkerSeen

logger = logging.getLogger(__name__)

OK, DEGRADED, FAIL = "ok", "degraded", "fail"


def workers_alive_since(now: datetime) -> QuerySet:
    """Workers that said they were alive within HEALTH_WORKER_SILENT_SECONDS of `now`."""
    silent_since = now - timedelta(seconds=settings.HEALTH_WORKER_SILENT_SECONDS)
    return WorkerSeen.objects.filter(seen_at__gte=silent_since)


def queued_by_queue() -> QuerySet:
    """(queue, number of queued runs, when the oldest was queued) for each queue with any."""
    return (
        Run.objects.queued()
        .order_by("queue")
        .values_list("queue")
        .annotate(n=Count("pk"), oldest=Min("created_at"))
    )


def sandbox_problems(now: datetime) -> list[str]:
    """What keeps live workers from sandboxing steps (bwrap missing, say), each once, as
    `health` finds it."""
    return distinct(workers_alive_since(now).values_list("sandbox_problem", flat=True))


def distinct(problems: Iterable[str]) -> list[str]:
    """Each problem once, sorted; "" (none) left out."""
    return sorted({problem for problem in problems if problem})


def takes_queue(queues: str, queue: str) -> bool:
    """Whether a worker started with --queues `queues` runs the runs of `queue`."""
    names = {name.strip() for name in queues.split(",")}
    return "*" in names or queue in names


def _seconds(since: datetime, now: datetime) -> float:
    return round(max((now - since).total_seconds(), 0.0), 1)


def pipelines_state() -> str:
    """The pipelines file's state as last loaded: ok, or invalid and its first problem
    (admin shows the rest). A change is loaded in the background, as for the receiver:
    a health check never waits for it, a later one reports it."""
    pipelines_in_force()  # looks whether the file changed, as the receiver would
    error = pipelines_store().error
    return f"invalid: {error.splitlines()[0]}" if error else OK


def health() -> dict[str, Any]:
    """The report /healthz answers with; "status" says how it went."""
    problems: list[str] = []
    report: dict[str, Any] = {"status": OK, "problems": problems, "database": OK}
    report["pipelines"] = pipelines_state()
    if report["pipelines"] != OK:
        problems.append("pipelines.yaml is invalid")
    now = timezone.now()
    try:
        queued = [(queue, n, _seconds(oldest, now)) for queue, n, oldest in queued_by_queue()]
        workers = list(workers_alive_since(now).values_list("queues", "sandbox_problem"))
        last_seen = WorkerSeen.objects.aggregate(last=Max("seen_at"))["last"]
    except DatabaseError as error:
        logger.warning("health: the database did not answer: %s", error)
        report.update(
            status=FAIL,
            database=f"unreachable ({type(error).__name__}; the server log has why)",
            queued=None,
            oldest_queued_seconds=None,
            queues=None,
            workers=None,
            sandbox=None,
        )
        problems.insert(0, "the database does not answer")
        return report

    report["queued"] = sum(n for _, n, _ in queued)
    report["oldest_queued_seconds"] = max((age for _, _, age in queued), default=None)
    report["queues"] = {
        queue: {"queued": n, "oldest_queued_seconds": age} for queue, n, age in queued
    }
    alive = [queues for queues, _ in workers]
    report["workers"] = {
        "alive": len(alive),
        "queues": sorted(set(alive)),
        "last_seen_seconds_ago": _seconds(last_seen, now) if last_seen else None,
    }
    unsandboxed = distinct(problem for _, problem in workers)
    report["sandbox"] = unsandboxed[0] if unsandboxed else OK
    problems.extend(f"a worker cannot sandbox steps: {problem}" for problem in unsandboxed)
    if not alive:
        silent = f"{settings.HEALTH_WORKER_SILENT_SECONDS:g}"
        problems.append(f"no worker has said it is alive in the last {silent} s")
    limit = settings.HEALTH_QUEUE_AGE_SECONDS
    for queue, _, age in queued:
        if alive and not any(takes_queue(queues, queue) for queues in alive):
            problems.append(f"runs wait in queue {queue!r}, which no live worker takes")
        elif age > limit:
            problems.append(f"the oldest run in queue {queue!r} has waited {age:g} s")
    if problems:
        report["status"] = DEGRADED
    return report


@csrf_exempt  # so that a POST is answered 405, not CSRF's 403
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    try:
        report = health()
    except Exception:
        # A load balancer reads any 5xx as down; 503 with a body beats a 500 page.
        logger.exception("health check failed")
        report = {"status": FAIL, "problems": ["the health check itself failed (see the log)"]}
    response = JsonResponse(report, status=503 if report["status"] == FAIL else 200)
    response["Cache-Control"] = "no-store"
    return response
