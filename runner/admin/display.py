"""How runs and steps look in admin: status badges that read without colour too, and
commit links."""

from datetime import datetime, timedelta
from typing import Any

from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timesince import timesince

from runner.config.github import short_ref
from runner.config.text import duration_words
from runner.models import Run, Step
from runner.models.statuses import look_of

# A payload is signed but comes from outside: only these become links (no javascript:).
WEB_SCHEMES = ("https://", "http://")
# The ends whose detail says what went wrong; the others' detail says what happened.
FAILURES = frozenset({Run.Status.FAILED, Run.Status.TIMED_OUT, Run.Status.ERROR})


def status_badge(status: str, label: str) -> SafeString:
    return format_html(
        '<span class="hr-status hr-status-{}">{} {}</span>', status, look_of(status).symbol, label
    )


def badge_of(row: Run | Step) -> SafeString:
    """The status badge of a run or a step."""
    return status_badge(row.status, row.get_status_display())


def duration_text(duration: timedelta | None) -> str:
    return "\u2013" if duration is None else duration_words(duration.total_seconds())


def branch_or_pull_request(run: Run) -> str:
    if run.pr_number:
        return f"PR #{run.pr_number}"
    return short_ref(run.ref)


def commit_link(run: Run, repository_url: Any) -> SafeString:
    """The run's short sha, linked to the commit's page under `repository_url` (the
    repository's web address as its delivery gave it: on github.com, GitHub Enterprise
    or another host) when that is an http(s) address, and shown unlinked otherwise."""
    if not run.sha:
        return SafeString("\u2013")
    if not (isinstance(repository_url, str) and repository_url.startswith(WEB_SCHEMES)):
        return format_html('<span title="{}">{}</span>', run.sha, run.sha[:7])
    return format_html(
        '<a href="{}/commit/{}" title="{}">{}</a>',
        repository_url.rstrip("/"),
        run.sha,
        run.sha,
        run.sha[:7],
    )


def repository_url_in(payload: Any) -> Any:
    """The repository's web address a delivery's payload gives (`repository.html_url`),
    whatever it holds; None if it gives none."""
    repository = payload.get("repository") if isinstance(payload, dict) else None
    return repository.get("html_url") if isinstance(repository, dict) else None


def first_line(text: Any) -> str:
    """The first line of a text (a commit message, a reason), or "" for anything else."""
    return text.strip().split("\n", 1)[0].strip() if isinstance(text, str) else ""


def failure_reason(run: Run) -> str:
    """Why a failed, timed-out or errored run ended, in one line; "" for any other run."""
    return first_line(run.detail) if run.status in FAILURES else ""


def run_summary(run: Run, commit_message: Any) -> SafeString:
    """A run in a line or three: its commit message's first line, why it failed, and
    which run it repeats; each only when there is one."""
    lines = (
        ("hr-message", first_line(commit_message)),
        ("hr-reason", failure_reason(run)),
    )
    said = format_html_join("", '<span class="{}">{}</span>', (ln for ln in lines if ln[1]))
    return format_html("{}{}", said, rerun_mark(run))


def rerun_mark(run: Run) -> SafeString:
    if not run.rerun_of_id:
        return SafeString("")
    by = f" by {run.rerun_by}" if run.rerun_by else ""
    return format_html(
        '<span class="hr-rerun">↻ re-run of <a href="{}">#{}</a>{}</span>',
        reverse("admin:runner_run_change", args=[run.rerun_of_id]),
        run.rerun_of_id,
        by,
    )


def time_ago(when: datetime, now: datetime) -> str:
    """How long ago `when` was, as people say it: Django's timesince says "0 minutes"
    for the first minute, when a refreshed page most wants to say something."""
    seconds = int((now - when).total_seconds())
    if seconds < 5:
        return "just now"
    if seconds < 60:
        return f"{seconds} seconds ago"
    return f"{timesince(when, now)} ago"
