"""What a run's admin page shows, and what its script asks for while the run goes on.

A bounded number of queries whatever the run holds: the run with its delivery, its
steps, all its output in one ordered query, the previous run of its pipeline, and the
commit statuses and notifications sent about it.
"""

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.utils.safestring import SafeString

from runner.admin.ansi import ansi_to_html
from runner.admin.display import (
    badge_of,
    commit_link,
    duration_text,
    repository_url_in,
    status_badge,
)
from runner.models import LogChunk, Outgoing, Run, Step
from runner.outgoing.attempt import MOST_RATE_LIMITED
from runner.outgoing.github_api import Outcome

# Chunks sent per poll; a step printing faster is caught up over the next polls.
LIVE_CHUNKS = 64


@dataclass(frozen=True)
class StepShown:
    step: Step
    output: SafeString
    status: SafeString
    took: str


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
    texts = _output_by_step(run, last_chunk)
    steps = [
        StepShown(
            step,
            ansi_to_html("".join(texts.get(step.pk, []))),
            badge_of(step),
            duration_text(step.duration),
        )
        for step in run.steps.all()
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
        "outgoing": [_outgoing_shown(outgoing) for outgoing in run.outgoing.order_by("pk")],
    }


def _outgoing_shown(outgoing: Outgoing) -> OutgoingShown:
    body = outgoing.body if isinstance(outgoing.body, dict) else {}
    if outgoing.kind == Outgoing.Kind.COMMIT_STATUS:
        what = f"status {body.get('state')} {body.get('context')}: {body.get('description')}"
    else:
        what = f"notification {body.get('event', '')} {body.get('delivery', '')}"
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
        .values_list("pk", "step_id", "text")[:LIVE_CHUNKS]
    )
    return {
        "status": str(badge_of(run)),
        "detail": run.detail,
        "took": duration_text(run.duration),
        "finished": run.status in Run.ENDED and len(chunks) < LIVE_CHUNKS,
        "steps": [
            {
                "id": step.pk,
                "status": str(badge_of(step)),
                "exit_code": step.exit_code,
                "took": duration_text(step.duration),
            }
            for step in run.steps.all()
        ],
        "chunks": [
            {"id": pk, "step": step, "html": ansi_to_html(text)} for pk, step, text in chunks
        ],
    }


def _output_by_step(run: Run, last_chunk: int) -> dict[int, list[str]]:
    texts: dict[int, list[str]] = {}
    rows = LogChunk.objects.filter(step__run=run, pk__lte=last_chunk).order_by("step_id", "seq")
    for step_id, text in rows.values_list("step_id", "text"):
        texts.setdefault(step_id, []).append(text)
    return texts


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
