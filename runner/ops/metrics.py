"""GET /metrics: Prometheus metrics, read from the database when scraped.

Receivers (possibly several gunicorn processes) and workers are separate processes, so
counters kept in any one of them would each see a part. Everything here is therefore
computed from the database at scrape time, in a fixed number of queries (six) whatever
the number of rows, with histogram buckets counted by SQL. The registry is our own: the
process metrics of whichever gunicorn process answered one scrape would describe a
different process at the next.

Off unless METRICS_ENABLED (404). Not public: with METRICS_TOKEN set, a request needs
`Authorization: Bearer <token>`; without one, only loopback clients that came through no
proxy are answered.
"""

import hmac
import ipaddress
import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, F, Q, QuerySet, Sum
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseNotFound,
)
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.gzip import gzip_page
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from runner.config.store import pipelines_in_force
from runner.models import Delivery, Run, Step
from runner.ops.health import OK, pipelines_state, queued_by_queue, workers_alive_since

logger = logging.getLogger(__name__)

# Upper bounds in seconds, for runs and steps alike (a pipeline's default timeout is 1h).
BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)

# Headers a reverse proxy adds: a request carrying one only looks local.
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


class DatabaseCollector(Collector):
    """hookrunner's state as metric families, read from the database on every collect."""

    def describe(self) -> Iterable[Metric]:
        # The registry asks for names at registration (import time): no query then.
        return _families()

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        window_start = now - timedelta(seconds=settings.METRICS_WINDOW_SECONDS)
        deliveries, runs, depth, oldest, run_durations, step_durations, workers, valid = _families()
        _count_deliveries(deliveries)
        _count_runs(runs)
        _measure_queues(depth, oldest, now)
        _histogram(
            run_durations,
            Run.objects.filter(created_at__gte=window_start),
            ("repository", "pipeline"),
        )
        _histogram(
            step_durations,
            Step.objects.filter(run__created_at__gte=window_start),
            ("run__repository", "run__pipeline", "name"),
        )
        _count_workers(workers, now)
        valid.add_metric([], 1 if pipelines_state() == OK else 0)
        return iter(
            (deliveries, runs, depth, oldest, run_durations, step_durations, workers, valid)
        )


def _families() -> list[Metric]:
    window = f"{settings.METRICS_WINDOW_SECONDS:g}"
    return [
        GaugeMetricFamily(
            "hookrunner_deliveries_kept",
            "Deliveries now in the database, by status. Old ones are purged, so this is "
            "what is kept, not a running total.",
            labels=["status"],
        ),
        GaugeMetricFamily(
            "hookrunner_runs_kept",
            "Runs now in the database, by status, repository and pipeline. Old ones are "
            "purged, so this is what is kept, not a running total.",
            labels=["status", "repository", "pipeline"],
        ),
        GaugeMetricFamily(
            "hookrunner_queue_depth",
            "Runs queued (waiting for a worker or their concurrency group), by queue.",
            labels=["queue"],
        ),
        GaugeMetricFamily(
            "hookrunner_oldest_queued_seconds",
            "How long the oldest queued run of each queue has waited; 0 when none waits.",
            labels=["queue"],
        ),
        GaugeHistogramMetricFamily(
            "hookrunner_run_duration_seconds",
            f"From start to finish, runs queued in the last {window} seconds that have "
            "finished (a window, not a running total: no rate() needed).",
            labels=["repository", "pipeline"],
        ),
        GaugeHistogramMetricFamily(
            "hookrunner_step_duration_seconds",
            f"From start to finish, steps of runs queued in the last {window} seconds "
            "that have finished (a window, not a running total: no rate() needed).",
            labels=["repository", "pipeline", "step"],
        ),
        GaugeMetricFamily(
            "hookrunner_workers_alive",
            "Workers that said they were alive within HEALTH_WORKER_SILENT_SECONDS, by "
            "the queues they take (* for all).",
            labels=["queues"],
        ),
        GaugeMetricFamily(
            "hookrunner_pipelines_valid",
            "1 if pipelines.yaml is valid as this process read it, 0 if not (the last "
            "valid configuration, if any, stays in force).",
        ),
    ]


def _count_deliveries(family: GaugeMetricFamily) -> None:
    counts = dict.fromkeys(Delivery.Status.values, 0)
    rows = Delivery.objects.order_by().values_list("status").annotate(n=Count("pk"))
    counts.update(rows)
    for status, n in counts.items():
        family.add_metric([status], n)


def _count_runs(family: GaugeMetricFamily) -> None:
    """Every status of every pipeline that has a run, 0 included: a failure shows as a
    change of value, not as a series that appears from nowhere."""
    rows = (
        Run.objects.order_by()
        .values_list("repository", "pipeline", "status")
        .annotate(n=Count("pk"))
    )
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for repository, pipeline, status, n in rows:
        per_status = counts.setdefault((repository, pipeline), dict.fromkeys(Run.Status.values, 0))
        per_status[status] = n
    for (repository, pipeline), per_status in sorted(counts.items()):
        for status, n in per_status.items():
            family.add_metric([status, repository, pipeline], n)


def _measure_queues(depth: GaugeMetricFamily, oldest: GaugeMetricFamily, now: datetime) -> None:
    """Every queue pipelines.yaml names, and any that has queued runs, empty ones as 0."""
    config = pipelines_in_force()
    known = {"default"} | {
        pipeline.runs_on
        for entry in (config.repositories if config else ())
        for pipeline in entry.pipelines
    }
    queues = {queue: (0, 0.0) for queue in known}
    for queue, n, created_at in queued_by_queue():
        queues[queue] = (n, max((now - created_at).total_seconds(), 0.0))
    for queue, (n, waited) in sorted(queues.items()):
        depth.add_metric([queue], n)
        oldest.add_metric([queue], waited)


def _histogram(family: GaugeHistogramMetricFamily, rows: QuerySet, labels: Sequence[str]) -> None:
    """One grouped query: per value of the `labels` fields, how many finished rows took at
    most each bound, how many finished, and how long they took in all."""
    per_bucket = {
        f"le_{index}": Count("pk", filter=Q(took__lte=timedelta(seconds=bound)))
        for index, bound in enumerate(BUCKETS)
    }
    # Aliased, since the fields' own names (repository...) cannot be annotations.
    fields = {f"label_{index}": F(path) for index, path in enumerate(labels)}
    grouped = (
        rows.filter(started_at__isnull=False, finished_at__isnull=False)
        .alias(took=F("finished_at") - F("started_at"))
        .values(**fields)
        .order_by(*fields)
        .annotate(count=Count("pk"), total=Sum("took"), **per_bucket)
    )
    for row in grouped:
        buckets = [
            (floatToGoString(bound), row[f"le_{index}"]) for index, bound in enumerate(BUCKETS)
        ]
        buckets.append(("+Inf", row["count"]))
        total = row["total"] or timedelta(0)
        family.add_metric([row[name] for name in fields], buckets, total.total_seconds())


def _count_workers(family: GaugeMetricFamily, now: datetime) -> None:
    rows = workers_alive_since(now).order_by("queues").values_list("queues").annotate(n=Count("pk"))
    for queues, n in rows:
        family.add_metric([queues], n)


REGISTRY = CollectorRegistry()
REGISTRY.register(DatabaseCollector())


def refusal(request: HttpRequest) -> HttpResponse | None:
    """Why this request may not read the metrics, or None if it may."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            response = HttpResponse(
                "metrics need Authorization: Bearer <METRICS_TOKEN>\n",
                status=401,
                content_type="text/plain; charset=utf-8",
            )
            response["WWW-Authenticate"] = 'Bearer realm="hookrunner metrics"'
            return response
        if not _same_token(given.strip(), token):
            return _forbidden("wrong metrics token")
        return None
    if not _from_loopback(request):
        return _forbidden("without METRICS_TOKEN, metrics are served to local clients only")
    if any(header in request.headers for header in PROXY_HEADERS):
        return _forbidden("without METRICS_TOKEN, metrics are not served through a proxy")
    return None


def _same_token(given: str, token: str) -> bool:
    # A header arrives as latin-1 text of its bytes; compare bytes with the token's UTF-8.
    try:
        given_bytes = given.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(given_bytes, token.encode())


def _from_loopback(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def _forbidden(reason: str) -> HttpResponse:
    return HttpResponse(f"{reason}\n", status=403, content_type="text/plain; charset=utf-8")


@csrf_exempt  # so that a POST is answered 405, not CSRF's 403
@gzip_page  # Prometheus asks for gzip; label values repeat a lot
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_ENABLED:
        return HttpResponseNotFound("not found\n", content_type="text/plain; charset=utf-8")
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    if (refused := refusal(request)) is not None:
        return refused
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    try:
        body = encode(REGISTRY)
    except DatabaseError as error:
        logger.warning("metrics unavailable, the database did not answer: %s", error)
        return HttpResponse(
            "database unavailable\n", status=503, content_type="text/plain; charset=utf-8"
        )
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
