"""The admin index: the runs waiting for approval (with Approve and Reject for who may),
then each pipeline's last run, its last 20 runs as a strip of squares and the median time
of its last 20 successful runs, above the list of models."""

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from itertools import groupby
from operator import or_

from django.contrib import admin
from django.db.models import Max, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from runner.admin.deployments import approvable
from runner.admin.display import badge_of, duration_text, time_ago
from runner.config.text import duration_words
from runner.models import Run
from runner.runs.deployments import User

# How many runs a strip shows, and how many successful runs the median is of.
STRIP_LENGTH = 20
# The runs waiting for approval listed, oldest first.
AWAITING_SHOWN = 20
TREND_WIDTH, TREND_HEIGHT = 80, 16


@dataclass(frozen=True)
class LastRun:
    """A pipeline's newest run, and the last thing that happened to it (finished, started,
    queued) and when."""

    run: Run
    moment: str
    when: datetime

    @property
    def badge(self) -> SafeString:
        return badge_of(self.run)

    @property
    def ago(self) -> str:
        return time_ago(self.when, timezone.now())

    @classmethod
    def of(cls, run: Run) -> "LastRun":
        if run.finished_at:
            return cls(run, "finished", run.finished_at)
        if run.started_at:
            return cls(run, "started", run.started_at)
        return cls(run, "queued", run.created_at)


@dataclass(frozen=True)
class PipelineHistory:
    """A pipeline's last runs, oldest first, and the durations of its last successful
    ones, oldest first."""

    runs: list[Run]
    durations: list[timedelta]

    @property
    def last(self) -> LastRun:
        return LastRun.of(self.runs[-1])

    @property
    def strip(self) -> SafeString:
        squares = ((run.status, run_url(run), square_title(run)) for run in self.runs)
        return format_html_join(
            "", '<a class="hr-square hr-status-{}" href="{}" title="{}"></a>', squares
        )

    @property
    def median(self) -> str:
        return duration_text(statistics.median(self.durations) if self.durations else None)

    @property
    def trend(self) -> SafeString:
        return trend_svg(self.durations)


def run_url(run: Run) -> str:
    return reverse("admin:runner_run_change", args=[run.pk])


def square_title(run: Run) -> str:
    took = f", {duration_text(run.duration)}" if run.duration is not None else ""
    return f"#{run.pk} {run.get_status_display()}{took}"


def trend_svg(durations: list[timedelta]) -> SafeString:
    """The durations as a line, oldest at the left, longest at the top; nothing for fewer
    than two. Inline SVG: no script, no image request."""
    if len(durations) < 2:
        return SafeString("")
    seconds = [duration.total_seconds() for duration in durations]
    longest = max(seconds) or 1
    step = TREND_WIDTH / (len(seconds) - 1)
    points = " ".join(
        f"{index * step:.1f},{TREND_HEIGHT - 1 - each / longest * (TREND_HEIGHT - 2):.1f}"
        for index, each in enumerate(seconds)
    )
    title = (
        f"the last {len(seconds)} successful runs, oldest first: "
        f"from {duration_words(min(seconds))} to {duration_words(longest)}"
    )
    return format_html(
        '<svg class="hr-trend" width="{}" height="{}" viewBox="0 0 {} {}" role="img">'
        '<title>{}</title><polyline points="{}" fill="none" stroke="currentColor"/></svg>',
        TREND_WIDTH, TREND_HEIGHT, TREND_WIDTH, TREND_HEIGHT, title, points,
    )  # fmt: skip


def nth_newest_id(runs: QuerySet, n: int) -> Subquery:
    """The id of the `n`th newest of `runs` in the outer row's pipeline; None if fewer."""
    same_pipeline = runs.filter(repository=OuterRef("repository"), pipeline=OuterRef("pipeline"))
    return Subquery(same_pipeline.order_by("-pk").values("pk")[n - 1 : n])


def pipeline_histories() -> list[PipelineHistory]:
    """Each (repository, pipeline)'s history, by repository then pipeline, in two queries
    however many runs and pipelines there are."""
    newest = Run.objects.values("repository", "pipeline").annotate(newest=Max("pk"))
    succeeded = Run.objects.filter(status=Run.Status.SUCCEEDED)
    # Asked of each pipeline's newest run, each subquery runs once per pipeline along the
    # run_pipeline_newest index (asked of the grouped query, Django would group by them
    # too, running them for every run); a window function numbering every run took
    # 276 ms at 100,000 runs.
    pipelines = Run.objects.filter(pk__in=newest.values("newest")).values(
        "repository",
        "pipeline",
        strip_from=nth_newest_id(Run.objects.all(), STRIP_LENGTH),
        successes_from=nth_newest_id(succeeded, STRIP_LENGTH),
    )
    bounds = {(row["repository"], row["pipeline"]): row for row in pipelines}
    if not bounds:
        return []
    runs = (
        Run.objects.filter(reduce(or_, (recent_runs(row) for row in bounds.values())))
        .only("pk", "repository", "pipeline", "status", "created_at", "started_at", "finished_at")
        .order_by("repository", "pipeline", "pk")
    )
    return [
        history_of(list(rows), bounds[pipeline])
        for pipeline, rows in groupby(runs, key=lambda run: (run.repository, run.pipeline))
    ]


def recent_runs(bounds: dict) -> Q:
    """A pipeline's runs in its strip or in its median; each range is read from the
    run_pipeline_newest index."""
    pipeline = Q(repository=bounds["repository"], pipeline=bounds["pipeline"])
    in_strip = Q(pk__gte=bounds["strip_from"] or 0)
    in_median = Q(status=Run.Status.SUCCEEDED, pk__gte=bounds["successes_from"] or 0)
    return pipeline & (in_strip | in_median)


def history_of(runs: list[Run], bounds: dict) -> PipelineHistory:
    strip = [run for run in runs if run.pk >= (bounds["strip_from"] or 0)]
    durations = [
        run.duration
        for run in runs
        if run.status == Run.Status.SUCCEEDED
        and run.pk >= (bounds["successes_from"] or 0)
        and run.duration is not None
    ]
    return PipelineHistory(strip, durations)


@dataclass(frozen=True)
class Awaiting:
    run: Run
    may_approve: bool


def awaiting_approval(user: User) -> list[Awaiting]:
    """The oldest runs waiting for approval, in one query, and whether `user` may decide."""
    runs = list(
        Run.objects.filter(status=Run.Status.WAITING, waiting_for=Run.WaitingFor.APPROVAL)
        .only("pk", "repository", "pipeline", "sha", "ref", "environment", "requested_by",
              "created_at", "definition", "status", "waiting_for")
        .order_by("pk")[:AWAITING_SHOWN]
    )  # fmt: skip
    allowed = approvable(user, runs)
    return [Awaiting(run, run.pk in allowed) for run in runs]


def _index_with_history(request: HttpRequest, extra_context: dict | None = None):
    # Only on the index, and only for who may see runs: no query on any other admin page.
    viewer = request.user.has_perm("runner.view_run")
    shown = {
        "histories": pipeline_histories() if viewer else [],
        "awaiting": awaiting_approval(request.user) if viewer else [],
        "viewer": viewer,
    }
    return _django_index(request, {**shown, **(extra_context or {})})


# The site builds its URLs after every admin module is imported, so they use this view.
_django_index = admin.site.index
admin.site.index = _index_with_history
# The sidebar repeats the index's list of models and took 250 of the 1440 px a wide
# screen gives the runs list's twelve columns.
admin.site.enable_nav_sidebar = False
