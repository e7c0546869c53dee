"""What a run's admin page shows, and what its script asks for while the run goes on.

A bounded number of queries whatever the run holds: the run with its delivery, its
steps, the shape of their output (runner/admin/log_lines.py, when each chunk was stored
included), the lines drawn in one query, the first chunks holding `::error` or
`::warning` lines (listed at the top), the previous run of its pipeline, and the commit
statuses and notifications sent about it.

The page opens where it matters: the step that failed (else the one running, else the
last with output) open at its last lines; the others folded, their output drawn only
when small. Everything else is fetched by the page's script (log.js) when asked for.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.utils import timezone
from django.utils.safestring import SafeString

from runner.admin.ansi import ansi_lines
from runner.admin.display import (
    badge_of,
    commit_link,
    duration_text,
    repository_url_in,
    status_badge,
)
from runner.admin.log_lines import (
    LineRange,
    StoredLog,
    annotations,
    epoch_ms,
    lines_html,
    read_lines,
    stored_logs,
)
from runner.models import LogChunk, Outgoing, Run, Step
from runner.outgoing.attempt import MOST_RATE_LIMITED
from runner.outgoing.deployment_requests import described
from runner.outgoing.github_api import Outcome

# Chunks sent per poll; a step printing faster is caught up over the next polls.
LIVE_CHUNKS = 64
# A folded step's output is drawn with the page while it is this small, and while all
# drawn so far stays within the page's budget; a larger one is fetched when unfolded.
SMALL_STEP_CHARS = 16 * 1024
INLINE_BUDGET_CHARS = 256 * 1024
# Steps that ended like this are the ones to read first.
FAILED_STEPS = (Step.Status.FAILED, Step.Status.TIMED_OUT, Step.Status.CANCELLED)


@dataclass(frozen=True)
class StepShown:
    step: Step
    number: int
    output: SafeString
    status: SafeString
    took: str
    opened: bool
    # The numbers of the lines drawn (first > last: none) and of its lines in all.
    first: int
    last: int
    unfinished: bool
    # When each chunk's lines began and the step began (ms since the epoch), for the
    # lines' times; when it began running while it runs, for its duration to tick.
    times: str
    started: int | None
    running_since: int | None


@dataclass(frozen=True)
class OutgoingShown:
    outgoing: Outgoing
    what: str
    state: SafeString
    attempts: list[dict[str, Any]]
    # What its counters say, "" before its first attempt.
    counts: str


# Outgoing states drawn with the run statuses' badges they resemble.
OUTGOING_BADGES = {"pending": "pending", "sent": "succeeded", "gave_up": "failed"}
# Each attempt's outcome (runner.outgoing.github_api.Outcome) as the page says it.
OUTCOMES_SHOWN = {
    Outcome.OK: "ok",
    Outcome.RETRY: "failed, worth retrying",
    Outcome.RATE_LIMITED: "rate limited",
    Outcome.GIVE_UP: "failed, not worth retrying",
}


def run_page_context(run: Run) -> dict[str, Any]:
    # The page's script asks for what came after `last_chunk`; drawing only up to it means
    # a chunk stored meanwhile is sent by the script, not lost between the two.
    last_chunk = LogChunk.objects.filter(step__run=run).aggregate(last=Max("pk"))["last"] or 0
    all_steps = list(run.steps.all())
    logs = stored_logs([step.pk for step in all_steps], last_chunk)
    focus = _step_to_open(all_steps, logs)
    ranges = _ranges_drawn(all_steps, logs, focus)
    drawn = read_lines(ranges)
    flagged, more_flagged = annotations(all_steps, logs)
    steps = [
        StepShown(
            step,
            step.index + 1,
            lines_html(step.index + 1, lines),
            badge_of(step),
            duration_text(step.duration),
            step == focus,
            shown.first,
            shown.last,
            logs[step.pk].unfinished,
            json.dumps(logs[step.pk].times()),
            _started(step, logs[step.pk]),
            _running_since(step),
        )
        for step, shown, lines in zip(all_steps, ranges, drawn, strict=True)
    ]
    return {
        "run": run,
        "steps": steps,
        "status": badge_of(run),
        "commit": commit_link(run, repository_url_in(run.delivery.payload)),
        "took": duration_text(run.duration),
        "finished": run.status in Run.ENDED,
        "definition": json.dumps(run.definition.to_json(), indent=2),
        "sandbox": run.definition.sandbox,
        "previous": _previous(run),
        "last_chunk": last_chunk,
        "annotations": flagged,
        "more_annotations": more_flagged,
        "now": epoch_ms(timezone.now()),
        "outgoing": [_outgoing_shown(outgoing) for outgoing in run.outgoing.order_by("pk")],
        "environment": run.definition.environment,
        "decisions": list(run.decisions.all()),
    }


def _started(step: Step, log: StoredLog) -> int | None:
    """When the step began, else when its output did."""
    if step.started_at:
        return epoch_ms(step.started_at)
    return epoch_ms(log.chunks[0].stored_at) if log.chunks else None


def _running_since(step: Step) -> int | None:
    running = step.status == Step.Status.RUNNING and step.started_at
    return epoch_ms(step.started_at) if running else None


def _step_to_open(steps: list[Step], logs: dict[int, StoredLog]) -> Step | None:
    """The step that failed, else the one running, else the last with output."""
    for wanted in (lambda step: step.status in FAILED_STEPS,
                   lambda step: step.status == Step.Status.RUNNING,
                   lambda step: logs[step.pk].total > 0):  # fmt: skip
        found = [step for step in steps if wanted(step)]
        if found:
            return found[0] if found[0].status in FAILED_STEPS else found[-1]
    return None


def _ranges_drawn(
    steps: list[Step], logs: dict[int, StoredLog], focus: Step | None
) -> list[LineRange]:
    """The lines drawn of each step: the last ones of the step opened, all of the small
    ones within the budget, none of the others (first > last)."""
    budget = INLINE_BUDGET_CHARS
    ranges = []
    for step in steps:
        log = logs[step.pk]
        if step == focus:
            first, last = log.tail()
        elif log.chars <= min(SMALL_STEP_CHARS, budget):
            first, last = 1, log.total
            budget -= log.chars
        else:
            first, last = log.total + 1, log.total
        ranges.append(LineRange(log, first, last))
    return ranges


def _outgoing_shown(outgoing: Outgoing) -> OutgoingShown:
    body = outgoing.body if isinstance(outgoing.body, dict) else {}
    if outgoing.kind == Outgoing.Kind.COMMIT_STATUS:
        what = f"status {body.get('state')} {body.get('context')}: {body.get('description')}"
    elif outgoing.kind == Outgoing.Kind.NOTIFICATION:
        what = f"notification {body.get('event', '')} {body.get('delivery', '')}"
    else:
        what = described(outgoing)
    attempts = [
        {
            "at": str(attempt.get("at", ""))[:19].replace("T", " "),
            "status": attempt.get("status"),
            "outcome": OUTCOMES_SHOWN.get(attempt.get("outcome", ""), ""),
            "error": attempt.get("error", ""),
        }
        for attempt in outgoing.attempts
    ]
    badge = status_badge(OUTGOING_BADGES.get(outgoing.state, ""), outgoing.get_state_display())
    return OutgoingShown(outgoing, what, badge, attempts, _counts(outgoing))


def _counts(outgoing: Outgoing) -> str:
    """Its failures and rate limits, each with how many give up."""
    if outgoing.last_attempt_at is None:
        return ""
    return (
        f"{outgoing.failures} failed (gives up at {settings.OUTGOING_ATTEMPTS}), "
        f"{outgoing.rate_limited} rate limited (gives up at {MOST_RATE_LIMITED})"
    )


def live_update(run: Run, after: int) -> dict[str, Any]:
    """The run's and its steps' state now, and the output stored after chunk `after`."""
    chunks = list(
        LogChunk.objects.filter(step__run=run, pk__gt=after)
        .order_by("pk")
        .values_list("pk", "step_id", "text", "created_at")[:LIVE_CHUNKS]
    )
    return {
        "status": str(badge_of(run)),
        "detail": run.detail,
        "took": duration_text(run.duration),
        "finished": run.status in Run.ENDED and len(chunks) < LIVE_CHUNKS,
        # The server's clock: a running step's duration is counted by it, not the browser's.
        "now": epoch_ms(timezone.now()),
        "steps": [
            {
                "id": step.pk,
                "status": str(badge_of(step)),
                "exit_code": step.exit_code,
                "took": duration_text(step.duration),
                "running_since": _running_since(step),
            }
            for step in run.steps.all()
        ],
        "chunks": [_live_chunk(*chunk) for chunk in chunks],
    }


def _live_chunk(pk: int, step: int, text: str, stored_at: datetime) -> dict[str, Any]:
    """A chunk as the pieces of lines it holds, for the script to add to its step: the
    first continues the step's last line unless that one ended."""
    pieces = text.split("\n", 1)
    return {
        "id": pk,
        "step": step,
        "at": epoch_ms(stored_at),
        "lines": [str(line) for line in ansi_lines(text)],
        # Its first piece went back to the start of the line: it draws that line over.
        "redraws": "\r" in pieces[0].rstrip("\r"),
        # It stopped at the start of a line, so what comes next draws over it.
        "returns": text.endswith("\r"),
        "ends_line": text.endswith("\n"),
    }


def _previous(run: Run) -> Run | None:
    """The run before this one of the same pipeline on the same branch (or PR)."""
    return (
        Run.objects.filter(
            repository=run.repository, pipeline=run.pipeline, ref=run.ref, pk__lt=run.pk
        )
        .only("pk", "status", "created_at")
        .order_by("-pk")
        .first()
    )
