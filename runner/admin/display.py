"""How runs and steps look in admin: status badges that read without colour too, and
commit links."""

from datetime import timedelta
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString

from runner.config.github import short_ref
from runner.config.text import duration_words
from runner.models import Run, Step
from runner.models.statuses import look_of

# A payload is signed but comes from outside: only these become links (no javascript:).
WEB_SCHEMES = ("https://", "http://")


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
        return format_html("\u2013")
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
