"""One attempt at sending an Outgoing row, and what comes after it.

Answers are classified by runner.outgoing.github_api: 5xx and network errors are tried again after
OUTGOING_RETRY_SECONDS, doubling, up to OUTGOING_ATTEMPTS times; a rate limit is waited
out (at most MOST_RATE_LIMITED times); any other 4xx gives up at once. Every attempt is
kept on the row with its outcome, and counted in its fields (failures, rate_limited,
last_attempt_at): those, never the text of an error, decide what comes next. Tokens and
signing secrets are read from the environment when sending, and never stored or logged.

Commit statuses of one pipeline and commit go out in the order they were made: one waits
while an earlier one is still being tried (unless that one is stuck, silent for longer than
any wait between attempts). A status whose news is stale is not sent: a
`pending` once its run has ended, any status once a newer run of the same pipeline and
commit reports its own.

A GitHub deployment's statuses follow runner.outgoing.deployment_requests: each waits for
the deployment's id, and for the earlier statuses of the same deployment; a `queued` or
`in_progress` once the run has ended is stale.

The task that makes attempts, send_outgoing, is in runner.outgoing.
"""

import json
import logging
import os
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from runner.config.github import sign
from runner.models import Outgoing, Run, clipped
from runner.outgoing import github_api
from runner.outgoing.bodies import reports_status
from runner.outgoing.deployment_requests import (
    deployment_pending,
    described,
    earlier_statuses,
    keep_deployment_id,
    status_refusal,
    statuses_url,
)
from runner.outgoing.github_api import Outcome, Verdict

logger = logging.getLogger(__name__)

# Rate-limit waits do not use up OUTGOING_ATTEMPTS, but a request is not waited for forever.
MOST_RATE_LIMITED = 10
# A status waiting for an earlier one looks again after RETRY, 2 RETRY, ... up to this.
MOST_ORDER_WAIT_SECONDS = 60
# Sent with the token in the run's token_env.
TO_GITHUB = frozenset(
    {Outgoing.Kind.COMMIT_STATUS, Outgoing.Kind.DEPLOYMENT, Outgoing.Kind.DEPLOYMENT_STATUS}
)


class Unsendable(Exception):
    """Cannot be sent as things are (a token not set): given up without an attempt."""


def attempt(outgoing: Outgoing, waited: int = 0) -> tuple[float, int] | None:
    """Send `outgoing` once if it may go now, and record how that went; (seconds, waited)
    until it is tried again, or None when it was sent or given up."""
    run = outgoing.run
    if refusal := _refusal(outgoing, run):
        _finish(outgoing, Outgoing.State.GAVE_UP, refusal)
        return None
    if _must_wait(outgoing, run):
        delay = github_api.backoff(waited)
        return min(delay, MOST_ORDER_WAIT_SECONDS), waited + 1
    try:
        url, headers, body, secret = _prepared(outgoing, run)
    except Unsendable as problem:
        _finish(outgoing, Outgoing.State.GAVE_UP, str(problem))
        logger.warning("outgoing=%s run=%s not sent: %s", outgoing.pk, run.pk, problem)
        return None
    response = github_api.send("POST", url, headers, body, settings.OUTGOING_TIMEOUT_SECONDS)
    verdict = github_api.classify(response)
    if outgoing.kind == Outgoing.Kind.DEPLOYMENT:
        verdict = _with_deployment_id(run, response, verdict)
    reason = _hidden(verdict.reason, secret)
    return _record(outgoing, response.status, verdict.outcome, reason, verdict.wait)


def _with_deployment_id(run: Run, response: github_api.Response, verdict: Verdict) -> Verdict:
    """Keep the id GitHub gave the run's deployment. An answer without one is given up
    (its statuses, which need the id, then give up too)."""
    if verdict.outcome != Outcome.OK or keep_deployment_id(run, response.json):
        return verdict
    return Verdict(Outcome.GIVE_UP, f"{verdict.reason}, with no deployment id")


def _refusal(outgoing: Outgoing, run: Run) -> str:
    """Why `outgoing` is given up without an attempt (old news, or nothing to report on),
    or ""."""
    if outgoing.kind == Outgoing.Kind.COMMIT_STATUS:
        return _stale_status(outgoing, run)
    if outgoing.kind == Outgoing.Kind.DEPLOYMENT_STATUS:
        return status_refusal(outgoing, run)
    return ""


def _must_wait(outgoing: Outgoing, run: Run) -> bool:
    """Whether `outgoing` waits for a request that must reach GitHub before it."""
    if outgoing.kind == Outgoing.Kind.COMMIT_STATUS:
        return _still_tried(_earlier_statuses(outgoing, run))
    if outgoing.kind == Outgoing.Kind.DEPLOYMENT_STATUS:
        # Its URL needs the deployment's id: no skipping a stuck deployment.
        return deployment_pending(run) or _still_tried(earlier_statuses(outgoing))
    return False


def _stale_status(outgoing: Outgoing, run: Run) -> str:
    """Why this commit status would be old news, or ""."""
    if outgoing.body.get("state") == "pending" and run.status in Run.ENDED:
        return "not sent: the run ended first; its final status is sent instead"
    newer = Run.objects.filter(
        repository=run.repository, sha=run.sha, pipeline=run.pipeline, pk__gt=run.pk
    ).only("pk", "definition")
    for other in newer.order_by("-pk"):
        if reports_status(other):
            return f"not sent: run {other.pk} of the same pipeline and commit reports instead"
    return ""


def _earlier_statuses(outgoing: Outgoing, run: Run) -> QuerySet[Outgoing]:
    """The commit statuses of the same pipeline and commit made before this one and still
    being tried."""
    return Outgoing.objects.filter(
        kind=Outgoing.Kind.COMMIT_STATUS,
        state=Outgoing.State.PENDING,
        pk__lt=outgoing.pk,
        run__repository=run.repository,
        run__sha=run.sha,
        run__pipeline=run.pipeline,
    )


def _still_tried(earlier: QuerySet[Outgoing]) -> bool:
    """Whether any of `earlier` is still being tried. One silent for longer than any wait
    between its attempts is stuck (its worker died while sending) and waited for no more."""
    silent_since = timezone.now() - timedelta(
        seconds=settings.OUTGOING_MAX_WAIT_SECONDS + 2 * settings.OUTGOING_TIMEOUT_SECONDS
    )
    heard = Coalesce("last_attempt_at", "created_at")
    return earlier.alias(heard=heard).filter(heard__gte=silent_since).exists()


def _prepared(outgoing: Outgoing, run: Run) -> tuple[str, dict[str, str], bytes, str]:
    """URL, headers, body and the secret they hold (to keep out of what is recorded)."""
    body = json.dumps(outgoing.body, separators=(",", ":")).encode()
    if outgoing.kind in TO_GITHUB:
        name = run.definition.token_env
        token = os.environ.get(name, "") if name else ""
        if not token:
            raise Unsendable(
                f"not sent: token_env {name} is not set in hookrunner's environment"
                if name
                else "not sent: report_status needs token_env, the variable holding a token"
            )
        headers = {**github_api.api_headers(token), "Content-Type": "application/json"}
        url = outgoing.url
        if outgoing.kind == Outgoing.Kind.DEPLOYMENT_STATUS:
            url = statuses_url(outgoing, run)
        return url, headers, body, token
    headers = {
        "Content-Type": "application/json",
        "User-Agent": github_api.USER_AGENT,
        "X-Hookrunner-Event": "run.finished",
        "X-Hookrunner-Delivery": str(outgoing.body.get("delivery", "")),
    }
    secret_env = run.definition.notify_secret_env(outgoing.url)
    secret = ""
    if secret_env:
        secret = os.environ.get(secret_env, "")
        if not secret:
            raise Unsendable(
                f"not sent: secret_env {secret_env} is not set, so it cannot be signed"
            )
        headers["X-Hub-Signature-256"] = sign(secret, body)
    return outgoing.url, headers, body, secret


def _record(
    outgoing: Outgoing, status: int | None, outcome: Outcome, reason: str, wait: float | None
) -> tuple[float, int] | None:
    """Keep this attempt, and count it; what comes next (see attempt)."""
    now = timezone.now()
    entry = {"at": now.isoformat(), "status": status, "outcome": outcome.value, "error": ""}
    outgoing.attempts = [*outgoing.attempts, entry]
    outgoing.last_attempt_at = now
    again: tuple[float, int] | None = None
    if outcome == Outcome.OK:
        outgoing.state, outgoing.error = Outgoing.State.SENT, ""
    elif outcome == Outcome.GIVE_UP:
        outgoing.failures += 1
        outgoing.state, outgoing.error = Outgoing.State.GAVE_UP, reason
        entry["error"] = reason
    elif outcome == Outcome.RATE_LIMITED:
        outgoing.rate_limited += 1
        delay = min(wait or 0.0, settings.OUTGOING_MAX_WAIT_SECONDS)
        entry["error"] = f"{reason}; next attempt in {delay:g}s"
        if outgoing.rate_limited >= MOST_RATE_LIMITED:
            outgoing.state = Outgoing.State.GAVE_UP
            outgoing.error = (
                f"gave up after being rate limited {outgoing.rate_limited} times: {reason}"
            )
        else:
            again = delay, 0
    else:
        outgoing.failures += 1
        entry["error"] = reason
        if outgoing.failures >= settings.OUTGOING_ATTEMPTS:
            outgoing.state = Outgoing.State.GAVE_UP
            outgoing.error = f"gave up after {outgoing.failures} failed attempts: {reason}"
        else:
            again = github_api.backoff(outgoing.failures - 1), 0
    outgoing.error = clipped(Outgoing, error=outgoing.error)["error"]
    counted = ["attempts", "failures", "rate_limited", "last_attempt_at"]
    outgoing.save(update_fields=[*counted, "state", "error"])
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
    elif outgoing.kind in TO_GITHUB:
        target = described(outgoing)
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
