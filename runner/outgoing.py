"""Commit statuses and notifications about runs.

Each is an Outgoing row, created in the transaction that queues the run (its `pending`
status) or right after it ends (its final status, its notifications), with a task that
sends it. That task goes to the run's own queue, ahead of runs: whoever runs a pipeline
also reports it, and reports before running. Answers are classified by runner.github_api:
5xx and network errors are tried again after OUTGOING_RETRY_SECONDS, doubling, up to
OUTGOING_ATTEMPTS times; a rate limit is waited out; any other 4xx gives up at once.
Every attempt is kept on the row. Tokens and signing secrets are read from the
environment when sending, and never stored or logged.

Commit statuses of one pipeline and commit go out in the order they were made: one waits
while an earlier one is still being tried (unless that one is stuck, silent for longer than
any wait between attempts). A status whose news is stale is not sent: a
`pending` once its run has ended, any status once a newer run of the same pipeline and
commit reports its own.
"""

import json
import logging
import os
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.tasks import task
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner import github_api
from runner.github import sign
from runner.github_api import Outcome
from runner.models import Outgoing, Run, clipped

logger = logging.getLogger(__name__)

# Ahead of execute_run (priority 0) on the same queue: a worker about to start a run says
# "pending" first, and reports a run it just ended before starting the next one.
PRIORITY = 10
# Past its timeout, how long a send task may still be RUNNING before it counts as lost.
LOST_AFTER_SECONDS = 60
# GitHub refuses a longer status description.
DESCRIPTION_LIMIT = 140
# Rate-limit waits do not use up OUTGOING_ATTEMPTS, but a request is not waited for forever.
MOST_RATE_LIMITED = 10
# A status waiting for an earlier one looks again after RETRY, 2 RETRY, ... up to this.
MOST_ORDER_WAIT_SECONDS = 60
RATE_LIMITED = "rate limited"

# GitHub's commit status states have no "cancelled" and no "skipped".
STATES = {
    Run.Status.SUCCEEDED: "success",
    Run.Status.FAILED: "failure",
    Run.Status.TIMED_OUT: "failure",
    # Not the code's verdict: the run was stopped, or hookrunner could not run it.
    Run.Status.CANCELLED: "error",
    Run.Status.ERROR: "error",
    # Nothing of it ran, because something it needs did not succeed (that one has its own
    # failure) or did not run for this commit: as GitHub treats a skipped job, not a
    # failure of its own. The description says "skipped: ...".
    Run.Status.SKIPPED: "success",
}
NOTIFY_RULES = ("always", "failure", "changes")


class Unsendable(Exception):
    """Cannot be sent as things are (a token not set): given up without an attempt."""


# Creating: in the transaction that queues or ends the run.


def queue_started(runs: list[Run]) -> None:
    """A `pending` commit status for each run whose pipeline reports them."""
    for run in runs:
        if _reports_status(run):
            if run.status == Run.Status.WAITING:
                description = "waiting for " + ", ".join(run.definition.get("needs") or ["?"])
            else:
                description = "queued"
            _create(
                run,
                Outgoing.Kind.COMMIT_STATUS,
                status_url(run),
                status_body(run, "pending", description),
            )


def queue_ended(run: Run) -> None:
    """The final commit status of an ended run, and the notifications its rules ask for."""
    if _reports_status(run):
        _create(run, Outgoing.Kind.COMMIT_STATUS, status_url(run), final_status_body(run))
    entries = run.definition.get("notify") or []
    if not entries:
        return
    previous = _previous_status(run)
    for entry in entries:
        if entry.get("url") and notifies(entry.get("on") or "always", run.status, previous):
            _create(run, Outgoing.Kind.NOTIFICATION, entry["url"], notification_body(run, previous))


def _reports_status(run: Run) -> bool:
    return bool(run.definition.get("report_status")) and bool(run.sha)


def _create(run: Run, kind: str, url: str, body: dict[str, Any]) -> None:
    with transaction.atomic():
        if len(url) > Outgoing._meta.get_field("url").max_length:
            Outgoing.objects.create(
                run=run, kind=kind, url=url[:1000], body=body, state=Outgoing.State.GAVE_UP,
                error="not sent: the URL is longer than 1000 characters",
            )  # fmt: skip
            return
        outgoing = Outgoing.objects.create(run=run, kind=kind, url=url, body=body)
        _enqueue(outgoing.pk, run.queue)


def _enqueue(outgoing_id: int, queue: str, delay: float = 0, waited: int = 0) -> None:
    run_after = timezone.now() + timedelta(seconds=delay) if delay else None
    send_outgoing.using(queue_name=queue, priority=PRIORITY, run_after=run_after).enqueue(
        outgoing_id, waited
    )


def requeue_lost() -> list[int]:
    """Give a new task to every pending request whose task was lost with its worker (the
    worker killed mid-send); the ids of those requeued. A send task runs for at most
    OUTGOING_TIMEOUT_SECONDS and a little bookkeeping, so one still RUNNING long past
    that died with its worker (django-tasks-db would leave it RUNNING forever)."""
    now = timezone.now()
    lost_after = now - timedelta(seconds=settings.OUTGOING_TIMEOUT_SECONDS + LOST_AFTER_SECONDS)
    tasks = DBTaskResult.objects.filter(task_path=send_outgoing.module_path)
    tasks.filter(status="RUNNING", started_at__lt=lost_after).update(
        status="FAILED", finished_at=now
    )
    alive = tasks.filter(status__in=["READY", "RUNNING"]).values_list("args_kwargs", flat=True)
    has_task = {args_kwargs["args"][0] for args_kwargs in alive}
    lost = (
        Outgoing.objects.filter(state=Outgoing.State.PENDING, created_at__lt=lost_after)
        .exclude(pk__in=has_task)
        .select_related("run")
    )
    requeued = []
    for outgoing in lost:
        _enqueue(outgoing.pk, outgoing.run.queue)
        requeued.append(outgoing.pk)
    if requeued:
        logger.warning("requeued %d outgoing requests whose task was lost", len(requeued))
    return requeued


# What is sent.


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
    """success, failure or error (STATES), with what happened and how long it took."""
    description = run.detail or run.get_status_display()
    if run.duration is not None:
        description += f" ({took(run.duration.total_seconds())})"
    return status_body(run, STATES.get(run.status, "error"), description)


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


def _previous_status(run: Run) -> str | None:
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


def took(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m {seconds:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment else None


# Sending: one task per attempt.


@task()
def send_outgoing(outgoing_id: int, waited: int = 0) -> None:
    """Try to send one Outgoing; queue the next try if one is due."""
    outgoing = (
        Outgoing.objects.select_related("run")
        .filter(pk=outgoing_id, state=Outgoing.State.PENDING)
        .first()
    )
    if outgoing is None:
        return  # sent or given up meanwhile, or deleted with its run
    again = attempt(outgoing, waited)
    if again is not None:
        delay, next_waited = again
        _enqueue(outgoing.pk, outgoing.run.queue, delay, next_waited)


def attempt(outgoing: Outgoing, waited: int = 0) -> tuple[float, int] | None:
    """Send `outgoing` once if it may go now, and record how that went; (seconds, waited)
    until it is tried again, or None when it was sent or given up."""
    run = outgoing.run
    if outgoing.kind == Outgoing.Kind.COMMIT_STATUS:
        if stale := _stale_status(outgoing, run):
            _finish(outgoing, Outgoing.State.GAVE_UP, stale)
            return None
        if _behind_earlier_status(outgoing, run):
            delay = settings.OUTGOING_RETRY_SECONDS * 2**waited
            return min(delay, MOST_ORDER_WAIT_SECONDS), waited + 1
    try:
        url, headers, body, secret = _prepared(outgoing, run)
    except Unsendable as problem:
        _finish(outgoing, Outgoing.State.GAVE_UP, str(problem))
        logger.warning("outgoing=%s run=%s not sent: %s", outgoing.pk, run.pk, problem)
        return None
    response = github_api.send("POST", url, headers, body, settings.OUTGOING_TIMEOUT_SECONDS)
    verdict = github_api.classify(response)
    reason = _hidden(verdict.reason, secret)
    return _record(outgoing, response.status, verdict.outcome, reason, verdict.wait)


def _stale_status(outgoing: Outgoing, run: Run) -> str:
    """Why this commit status would be old news, or ""."""
    if outgoing.body.get("state") == "pending" and run.status in Run.ENDED:
        return "not sent: the run ended first; its final status is sent instead"
    newer = Run.objects.filter(
        repository=run.repository, sha=run.sha, pipeline=run.pipeline, pk__gt=run.pk
    ).only("pk", "definition")
    for other in newer.order_by("-pk"):
        if _reports_status(other):
            return f"not sent: run {other.pk} of the same pipeline and commit reports instead"
    return ""


def _behind_earlier_status(outgoing: Outgoing, run: Run) -> bool:
    """Whether an earlier status of the same pipeline and commit is still being tried. One
    silent for longer than any wait between its attempts is stuck (its worker died while
    sending) and waited for no more."""
    earlier = Outgoing.objects.filter(
        kind=Outgoing.Kind.COMMIT_STATUS,
        state=Outgoing.State.PENDING,
        pk__lt=outgoing.pk,
        run__repository=run.repository,
        run__sha=run.sha,
        run__pipeline=run.pipeline,
    )
    silent_since = timezone.now() - timedelta(
        seconds=settings.OUTGOING_MAX_WAIT_SECONDS + 2 * settings.OUTGOING_TIMEOUT_SECONDS
    )
    for created_at, attempts in earlier.values_list("created_at", "attempts"):
        last = attempts[-1]["at"] if attempts else created_at.isoformat()
        if datetime.fromisoformat(last) >= silent_since:
            return True
    return False


def _prepared(outgoing: Outgoing, run: Run) -> tuple[str, dict[str, str], bytes, str]:
    """URL, headers, body and the secret they hold (to keep out of what is recorded)."""
    body = json.dumps(outgoing.body, separators=(",", ":")).encode()
    if outgoing.kind == Outgoing.Kind.COMMIT_STATUS:
        name = run.definition.get("token_env") or ""
        token = os.environ.get(name, "") if name else ""
        if not token:
            raise Unsendable(
                f"not sent: token_env {name} is not set in hookrunner's environment"
                if name
                else "not sent: report_status needs token_env, the variable holding a token"
            )
        headers = {**github_api.api_headers(token), "Content-Type": "application/json"}
        return outgoing.url, headers, body, token
    headers = {
        "Content-Type": "application/json",
        "User-Agent": github_api.USER_AGENT,
        "X-Hookrunner-Event": "run.finished",
        "X-Hookrunner-Delivery": str(outgoing.body.get("delivery", "")),
    }
    secret_env = _secret_env(outgoing, run)
    secret = ""
    if secret_env:
        secret = os.environ.get(secret_env, "")
        if not secret:
            raise Unsendable(
                f"not sent: secret_env {secret_env} is not set, so it cannot be signed"
            )
        headers["X-Hub-Signature-256"] = sign(secret, body)
    return outgoing.url, headers, body, secret


def _secret_env(outgoing: Outgoing, run: Run) -> str:
    """The secret_env of the notify entry this notification was made for."""
    for entry in run.definition.get("notify") or []:
        if entry.get("url") == outgoing.url:
            return entry.get("secret_env") or ""
    return ""


def _record(
    outgoing: Outgoing, status: int | None, outcome: Outcome, reason: str, wait: float | None
) -> tuple[float, int] | None:
    """Keep this attempt; what comes next (see attempt)."""
    entry = {"at": timezone.now().isoformat(), "status": status, "error": ""}
    outgoing.attempts = [*outgoing.attempts, entry]
    again: tuple[float, int] | None = None
    if outcome == Outcome.OK:
        outgoing.state, outgoing.error = Outgoing.State.SENT, ""
    elif outcome == Outcome.GIVE_UP:
        outgoing.state, outgoing.error = Outgoing.State.GAVE_UP, reason
        entry["error"] = reason
    elif outcome == Outcome.RATE_LIMITED:
        limited = sum(1 for a in outgoing.attempts[:-1] if a["error"].startswith(RATE_LIMITED))
        delay = min(wait or 0.0, settings.OUTGOING_MAX_WAIT_SECONDS)
        entry["error"] = f"{reason}; next attempt in {delay:g}s"
        if limited + 1 >= MOST_RATE_LIMITED:
            outgoing.state = Outgoing.State.GAVE_UP
            outgoing.error = f"gave up after being rate limited {limited + 1} times: {reason}"
        else:
            again = delay, 0
    else:
        failures = 1 + sum(
            1
            for a in outgoing.attempts[:-1]
            if a["error"] and not a["error"].startswith(RATE_LIMITED)
        )
        entry["error"] = reason
        if failures >= settings.OUTGOING_ATTEMPTS:
            outgoing.state = Outgoing.State.GAVE_UP
            outgoing.error = f"gave up after {failures} failed attempts: {reason}"
        else:
            again = settings.OUTGOING_RETRY_SECONDS * 2 ** (failures - 1), 0
    outgoing.error = clipped(Outgoing, error=outgoing.error)["error"]
    outgoing.save(update_fields=["attempts", "state", "error"])
    _log(outgoing, status, entry["error"], again)
    return again


def _finish(outgoing: Outgoing, state: str, error: str) -> None:
    outgoing.state, outgoing.error = state, clipped(Outgoing, error=error)["error"]
    outgoing.save(update_fields=["state", "error"])


def _hidden(text: str, secret: str) -> str:
    """`text` (a server's answer may quote the request) without the secret in it."""
    return text.replace(secret, "[hidden]") if secret else text


def _log(
    outgoing: Outgoing, status: int | None, error: str, again: tuple[float, int] | None
) -> None:
    if outgoing.kind == Outgoing.Kind.COMMIT_STATUS:
        target = f"status {outgoing.body.get('state')} {outgoing.body.get('context')}"
    else:
        # Only the host: a notification URL may itself be a credential (chat webhooks).
        target = f"notification to {urlsplit(outgoing.url).hostname}"
    answer = f"HTTP {status}" if status else "no answer"
    then = f"again in {again[0]:g}s" if again else outgoing.get_state_display()
    level = logging.WARNING if outgoing.state == Outgoing.State.GAVE_UP else logging.INFO
    logger.log(
        level, "outgoing=%s run=%s %s: %s%s, %s",
        outgoing.pk, outgoing.run_id, target, answer, f" ({error})" if error else "", then,
    )  # fmt: skip
