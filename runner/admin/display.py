"""How runs and steps look in admin: status badges that read without colour too."""

from datetime import timedelta

from django.utils.html import format_html
from django.utils.safestring import SafeString

from runner.config.github import short_ref
from runner.config.text import duration_words
from runner.models import Run, Step
from runner.models.statuses import look_of


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


def commit_link(run: Run) -> SafeString:
    if not run.sha:
        return format_html("\u2013")
    return format_html(
        '<a href="https://github.com/{}/commit/{}" title="{}">{}</a>',
        run.repository,
        run.sha,
        run.sha,
        run.sha[:7],
    )
