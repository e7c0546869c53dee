"""What commit statuses and notifications about runs say, and which are sent.

Pure builders for the bodies of Outgoing rows (runner.outgoing.queue creates the rows, and
runner.outgoing.attempt sends them): a commit status's URL, context and description, a
notification's JSON, and whether a run reports statuses or a `notify` rule fires.
"""

import logging
import uuid
from typing import Any

from django.conf import settings
from django.urls import reverse

from runner.config.text import duration_words
from runner.models import Run
from runner.models.statuses import look_of

logger = logging.getLogger(__name__)

# GitHub refuses a longer status description.
DESCRIPTION_LIMIT = 140


def reports_status(run: Run) -> bool:
    """Whether the run's pipeline asks for commit statuses (and the run has a commit)."""
    return run.definition.report_status and bool(run.sha)


def status_url(run: Run) -> str:
    return f"{settings.GITHUB_API_URL}/repos/{run.repository}/statuses/{run.sha}"


def status_context(pipeline: str) -> str:
    return f"hookrunner/{pipeline}"


def run_page_url(run: Run) -> str | None:
    """The run's page in admin under PUBLIC_URL, or None without PUBLIC_URL."""
    if not settings.PUBLIC_URL:
        return None
    return settings.PUBLIC_URL + reverse("admin:runner_run_change", args=[run.pk])


def status_body(run: Run, state: str, description: str) -> dict[str, Any]:
    body = {
        "state": state,
        "context": status_context(run.pipeline),
        "description": one_line(description, DESCRIPTION_LIMIT),
    }
    if url := run_page_url(run):
        body["target_url"] = url
    return body


def final_status_body(run: Run) -> dict[str, Any]:
    """success, failure or error (models.statuses), with what happened and how long it took."""
    description = run.detail or run.get_status_display()
    if run.duration is not None:
        description += f" ({duration_words(run.duration.total_seconds())})"
    return status_body(run, look_of(run.status).github_state or "error", description)


def notification_body(run: Run, previous: str | None) -> dict[str, Any]:
    return {
        "event": "run.finished",
        # Also X-Hookrunner-Delivery: the same across retries, so receivers can dedupe.
        "delivery": str(uuid.uuid4()),
        "repository": run.repository,
        "pipeline": run.pipeline,
        "run": run.pk,
        "status": run.status,
        "detail": run.detail,
        "previous_status": previous,
        "github_event": run.event,
        "sha": run.sha,
        "ref": run.ref,
        "pr_number": run.pr_number,
        "rerun_of": run.rerun_of_id,
        "duration_seconds": run.duration.total_seconds() if run.duration is not None else None,
        "url": run_page_url(run),
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
    }


def notifies(rule: str, status: str, previous: str | None) -> bool:
    """Whether a `notify` entry with `on: rule` is sent for a run that ended as `status`,
    the previous ended run of its repository, pipeline and ref having ended as `previous`."""
    succeeded = status == Run.Status.SUCCEEDED
    if rule == "always":
        return True
    if rule == "failure":
        return not succeeded
    if rule == "changes":
        return not succeeded or (previous is not None and previous != Run.Status.SUCCEEDED)
    logger.warning("unknown notify rule %r: nothing sent", rule)
    return False


def previous_status(run: Run) -> str | None:
    """How the previous ended run of the run's repository, pipeline and ref ended, if any."""
    return (
        Run.objects.filter(
            repository=run.repository,
            pipeline=run.pipeline,
            ref=run.ref,
            pk__lt=run.pk,
            status__in=Run.ENDED,
        )
        .order_by("-pk")
        .values_list("status", flat=True)
        .first()
    )


def one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment else None
